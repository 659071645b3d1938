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

static unsigned log2_exact(size_t n)
{
    unsigned l = 0;
    while (((size_t)1 << l) < n)
        l++;
    return l;
}

ppnn_status ckks_fft_init(ckks_fft *f, size_t n)
{
    assert(n >= 4 && (n & (n - 1)) == 0);
    size_t m = 2 * n, slots = n / 2;
    f->n = n;
    f->slots = slots;
    f->roots = malloc((m + 1) * sizeof *f->roots);
    f->rot_group = malloc(slots * sizeof *f->rot_group);
    f->tw_fwd = malloc(slots * sizeof *f->tw_fwd);
    f->tw_inv = malloc(slots * sizeof *f->tw_inv);
    if (!f->roots || !f->rot_group || !f->tw_fwd || !f->tw_inv) {
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
    /* Stage twiddles: zeta^((5^j mod 4len) * N/(2 len)) forward, its conjugate inverse. */
    const unsigned log_m = log2_exact(m), log_slots = log2_exact(slots);
    for (unsigned loglen = 1; loglen <= log_slots; loglen++) {
        size_t len = (size_t)1 << loglen, lenh = len >> 1, lenq = len << 2;
        unsigned log_gap = log_m - 2 - loglen;
        size_t mask = lenq - 1;
        for (size_t j = 0; j < lenh; j++) {
            f->tw_fwd[lenh - 1 + j] = f->roots[(f->rot_group[j] & mask) << log_gap];
            f->tw_inv[lenh - 1 + j] = f->roots[(lenq - (f->rot_group[j] & mask)) << log_gap];
        }
    }
    f->tw_fwd[slots - 1] = f->tw_inv[slots - 1] = 0; /* unused: slots - 1 entries in all */
    f->avx512 = slots >= 8 && ring_cpu_has_avx512dq();
    return PPNN_OK;
}

void ckks_fft_free(ckks_fft *f)
{
    if (!f)
        return;
    free(f->roots);
    free(f->rot_group);
    free(f->tw_fwd);
    free(f->tw_inv);
    f->roots = NULL;
    f->rot_group = NULL;
    f->tw_fwd = f->tw_inv = NULL;
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

/* Complex product (ac − bd) + (ad + bc)i without C's infinity/NaN recovery (__muldc3): the
 * operands are finite, and the AVX-512 butterflies compute exactly this. */
static inline double complex cmul(double complex x, double complex w)
{
    double a = creal(x), b = cimag(x), c = creal(w), d = cimag(w);
    return CMPLX(a * c - b * d, a * d + b * c);
}

static void stage_fwd(double complex *v, const double complex *tw, size_t slots, size_t lenh)
{
    for (size_t i = 0; i < slots; i += 2 * lenh)
        for (size_t j = 0; j < lenh; j++) {
            double complex u = v[i + j], w = cmul(v[i + j + lenh], tw[j]);
            v[i + j] = u + w;
            v[i + j + lenh] = u - w;
        }
}

static void stage_inv(double complex *v, const double complex *tw, size_t slots, size_t lenh)
{
    for (size_t i = 0; i < slots; i += 2 * lenh)
        for (size_t j = 0; j < lenh; j++) {
            double complex u = v[i + j] + v[i + j + lenh];
            double complex w = v[i + j] - v[i + j + lenh];
            v[i + j] = u;
            v[i + j + lenh] = cmul(w, tw[j]);
        }
}

/* Coefficients (packed as w_i = m_i + i m_{i+N/2}) -> slot values, in place. */
void _ckks_fft_forward_impl(const ckks_fft *f, double complex *v, int avx)
{
    size_t slots = f->slots;
    assert(!avx || f->avx512);
    bit_reverse(v, slots);
    for (size_t lenh = 1; lenh < slots; lenh <<= 1) {
        if (avx)
            _ckks_fft_stage_fwd_avx512(v, f->tw_fwd + lenh - 1, slots, lenh);
        else
            stage_fwd(v, f->tw_fwd + lenh - 1, slots, lenh);
    }
}

/* Slot values -> packed coefficients, in place (exact inverse of ckks_fft_forward). */
void _ckks_fft_inverse_impl(const ckks_fft *f, double complex *v, int avx)
{
    size_t slots = f->slots;
    assert(!avx || f->avx512);
    for (size_t lenh = slots >> 1; lenh >= 1; lenh >>= 1) {
        if (avx)
            _ckks_fft_stage_inv_avx512(v, f->tw_inv + lenh - 1, slots, lenh);
        else
            stage_inv(v, f->tw_inv + lenh - 1, slots, lenh);
    }
    double inv = 1.0 / (double)slots;
    if (avx)
        _ckks_fft_scale_avx512(v, slots, inv);
    else
        for (size_t i = 0; i < slots; i++)
            v[i] = CMPLX(creal(v[i]) * inv, cimag(v[i]) * inv);
    bit_reverse(v, slots);
}

void ckks_fft_forward(const ckks_fft *f, double complex *v) { _ckks_fft_forward_impl(f, v, f->avx512); }

void ckks_fft_inverse(const ckks_fft *f, double complex *v) { _ckks_fft_inverse_impl(f, v, f->avx512); }
