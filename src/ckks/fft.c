/* The CKKS "special FFT": evaluation of a real polynomial m(X) of degree < N at the primitive
 * 2N-th roots zeta^(5^j), j = 0..N/2-1 (the canonical embedding restricted to one root per
 * conjugate pair), and its inverse. Same layout as SEAL/Lattigo: the slot vector is handled in
 * bit-reversed order so the butterflies run in place, and slot j corresponds to the root
 * zeta^(5^j mod 2N) — so the Galois map X -> X^(5^k) rotates the slots left by k and
 * X -> X^(2N-1) conjugates them.
 *
 * Packing of the N real coefficients into N/2 complex numbers: w_i = m_i + i*m_{i+N/2}. Since
 * zeta^(5^j * N/2) = i for every j (5^j = 1 mod 4), m(zeta^(5^j)) = sum_{i<N/2} w_i zeta^(i 5^j):
 * an N/2-point transform, computed by log2(N/2) in-place butterfly stages whose twiddles are
 * zeta^((5^j mod 4len) * N/(2 len)) (Lattigo's SpecialFFT). tests/test_ckks_encoder.c checks it
 * against the definition. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>

#include "ckks/inner.h"

ppnn_status ckks_fft_init(ckks_fft *f, size_t n)
{
    assert(n >= 4 && (n & (n - 1)) == 0);
    size_t m = 2 * n, slots = n / 2;
    f->n = n;
    f->slots = slots;
    f->roots = malloc((m + 1) * sizeof *f->roots);
    f->rot_group = malloc(slots * sizeof *f->rot_group);
    if (!f->roots || !f->rot_group) {
        ckks_fft_free(f);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for encoder tables (N=%zu)", n);
    }
    /* roots[k] = exp(2*pi*i*k/m); computed directly (not by repeated multiplication) so every
     * entry carries only one rounding error. */
    for (size_t k = 0; k <= m; k++) {
        double a = 2.0 * M_PI * (double)k / (double)m;
        f->roots[k] = cos(a) + sin(a) * I;
    }
    size_t g = 1;
    for (size_t j = 0; j < slots; j++) {
        f->rot_group[j] = g;
        g = (g * 5) % m;
    }
    return PPNN_OK;
}

void ckks_fft_free(ckks_fft *f)
{
    if (!f)
        return;
    free(f->roots);
    free(f->rot_group);
    f->roots = NULL;
    f->rot_group = NULL;
}

static void bit_reverse(double complex *v, size_t n)
{
    for (size_t i = 1, j = 0; i < n; i++) {
        size_t bit = n >> 1;
        for (; j & bit; bit >>= 1)
            j ^= bit;
        j ^= bit;
        if (i < j) {
            double complex t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
    }
}

static unsigned log2_exact(size_t n)
{
    unsigned l = 0;
    while (((size_t)1 << l) < n)
        l++;
    return l;
}

/* Coefficients (packed as w_i = m_i + i m_{i+N/2}) -> slot values, in place. */
void ckks_fft_forward(const ckks_fft *f, double complex *v)
{
    size_t slots = f->slots;
    unsigned log_m = log2_exact(2 * f->n), log_slots = log2_exact(slots);
    bit_reverse(v, slots);
    for (unsigned loglen = 1; loglen <= log_slots; loglen++) {
        size_t len = (size_t)1 << loglen, lenh = len >> 1, lenq = len << 2;
        unsigned log_gap = log_m - 2 - loglen;
        size_t mask = lenq - 1;
        for (size_t i = 0; i < slots; i += len) {
            for (size_t j = 0; j < lenh; j++) {
                double complex u = v[i + j];
                double complex w = v[i + j + lenh] * f->roots[(f->rot_group[j] & mask) << log_gap];
                v[i + j] = u + w;
                v[i + j + lenh] = u - w;
            }
        }
    }
}

/* Slot values -> packed coefficients, in place (exact inverse of ckks_fft_forward). */
void ckks_fft_inverse(const ckks_fft *f, double complex *v)
{
    size_t slots = f->slots;
    unsigned log_m = log2_exact(2 * f->n), log_slots = log2_exact(slots);
    for (unsigned loglen = log_slots; loglen >= 1; loglen--) {
        size_t len = (size_t)1 << loglen, lenh = len >> 1, lenq = len << 2;
        unsigned log_gap = log_m - 2 - loglen;
        size_t mask = lenq - 1;
        for (size_t i = 0; i < slots; i += len) {
            for (size_t j = 0; j < lenh; j++) {
                double complex u = v[i + j] + v[i + j + lenh];
                double complex w = v[i + j] - v[i + j + lenh];
                v[i + j] = u;
                v[i + j + lenh] = w * f->roots[(lenq - (f->rot_group[j] & mask)) << log_gap];
            }
        }
    }
    double inv = 1.0 / (double)slots;
    for (size_t i = 0; i < slots; i++)
        v[i] *= inv;
    bit_reverse(v, slots);
}
