/* CKKS encoder: complex slot vectors <-> plaintext polynomials (canonical embedding via the
 * special FFT of fft.c), scaled and rounded to integers, in RNS/NTT form. */
#include <assert.h>
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"

ppnn_status ckks_pt_init(ckks_plaintext *pt, const ckks_params *params, size_t level,
                         double scale)
{
    assert(level < params->nq);
    size_t words = (level + 1) * params->n;
    if (!pt->data || pt->cap < words) {
        uint64_t *d = malloc(words * sizeof *d);
        if (!d)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for a plaintext");
        if (pt->data)
            sodium_memzero(pt->data, pt->cap * sizeof *pt->data);
        free(pt->data);
        pt->data = d;
        pt->cap = words;
    }
    pt->params = params;
    pt->level = level;
    pt->scale = scale;
    return PPNN_OK;
}

/* Plaintexts hold decrypted results (m + e, which with the ciphertext reveals the secret) and
 * encoded private inputs: every one is wiped before it is freed, whoever frees it. */
void ckks_pt_free(ckks_plaintext *pt)
{
    if (!pt)
        return;
    if (pt->data)
        sodium_memzero(pt->data, pt->cap * sizeof *pt->data);
    free(pt->data);
    memset(pt, 0, sizeof *pt);
}

/* x mod q for a double x holding an integer, any magnitude: x = mant * 2^e with |mant| < 2^53
 * (frexp), so x mod q = mant * 2^e mod q, exact. */
static uint64_t double_mod(double x, const mq_modulus *m)
{
    if (fabs(x) < 0x1p62)
        return mq_from_int64((int64_t)x, m);
    int e;
    double f = frexp(x, &e); /* x = f * 2^e, 0.5 <= |f| < 1 */
    int64_t mant = (int64_t)ldexp(f, 53);
    uint64_t r = mq_from_int64(mant, m);
    return mq_mul(r, mq_pow(2, (uint64_t)(e - 53), m), m);
}

ppnn_status ckks_encode_scalar(uint64_t *residues, const ckks_params *params, size_t level,
                               double value, double scale)
{
    if (level >= params->nq)
        return ppnn_fail(PPNN_ERR_PARAM, "encode: level %zu above the top level %zu", level,
                         params->nq - 1);
    double v = nearbyint(value * scale), log2q = params->inner->crt[level].log2_q;
    if (!isfinite(v) || (fabs(v) >= 1 && log2(fabs(v)) + 1.0 >= log2q))
        return ppnn_fail(PPNN_ERR_NUMERIC,
                         "encode: constant %g at scale 2^%.1f does not fit the modulus Q_%zu of "
                         "2^%.1f",
                         value, log2(scale), level, log2q);
    for (size_t i = 0; i <= level; i++)
        residues[i] = double_mod(v, &params->ring->primes[i].mod);
    return PPNN_OK;
}

static ppnn_status check_encode_args(const ckks_params *params, size_t count, size_t level,
                                     double scale)
{
    if (count > params->slots)
        return ppnn_fail(PPNN_ERR_PARAM, "encode: %zu values exceed the %zu slots", count,
                         params->slots);
    if (level >= params->nq)
        return ppnn_fail(PPNN_ERR_PARAM, "encode: level %zu above the top level %zu", level,
                         params->nq - 1);
    if (!(isfinite(scale) && scale > 0))
        return ppnn_fail(PPNN_ERR_PARAM, "encode: scale %g must be positive and finite", scale);
    return PPNN_OK;
}

/* Takes the slot values in buf to packed coefficients (inverse FFT) and checks that they fit
 * Q_level at this scale; *maxabs: the largest scaled magnitude. */
static ppnn_status encode_packed_check(double *maxabs_out, const ckks_params *params,
                                       double complex *buf, size_t level, double scale)
{
    size_t h = params->slots;
    ckks_fft_inverse(&params->inner->fft, buf);
    /* Largest |coefficient| must stay below Q_level/2 so that the centered lift in decode
     * recovers it; checked before writing anything. */
    double maxabs = 0;
    for (size_t i = 0; i < h; i++) {
        double re = fabs(creal(buf[i]) * scale), im = fabs(cimag(buf[i]) * scale);
        if (!(re < INFINITY && im < INFINITY))
            return ppnn_fail(PPNN_ERR_NUMERIC, "encode: value times scale is not finite");
        maxabs = fmax(maxabs, fmax(re, im));
    }
    double log2q = params->inner->crt[level].log2_q;
    if (maxabs >= 1 && log2(maxabs) + 1.0 >= log2q)
        return ppnn_fail(PPNN_ERR_NUMERIC,
                         "encode: scaled coefficient of magnitude 2^%.1f does not fit the "
                         "modulus Q_%zu of 2^%.1f (reduce the scale or the values)",
                         log2(maxabs), level, log2q);
    *maxabs_out = maxabs;
    return PPNN_OK;
}

/* Scales and rounds the checked packed coefficients in buf into rows ((level+1) x N,
 * coefficient form, canonical). */
static ppnn_status encode_packed_rns(uint64_t *rows, const ckks_params *params,
                                     const double complex *buf, double maxabs, size_t level,
                                     double scale)
{
    size_t n = params->n, h = params->slots;
    if (maxabs < 0x1p62) {
        /* Round once per coefficient, then reduce the integers for every prime at once. */
        int64_t *coef = malloc(n * sizeof *coef);
        if (!coef)
            return ppnn_fail(PPNN_ERR_NOMEM, "encode: out of memory");
        for (size_t j = 0; j < h; j++) {
            coef[j] = (int64_t)llrint(creal(buf[j]) * scale);
            coef[j + h] = (int64_t)llrint(cimag(buf[j]) * scale);
        }
        ring_poly_from_int64(rows, coef, params->ring, level + 1);
        sodium_memzero(coef, n * sizeof *coef);
        free(coef);
    } else {
        for (size_t i = 0; i <= level; i++) {
            const ring_prime *pr = &params->ring->primes[i];
            uint64_t *row = rows + i * n;
            for (size_t j = 0; j < h; j++) {
                row[j] = double_mod(nearbyint(creal(buf[j]) * scale), &pr->mod);
                row[j + h] = double_mod(nearbyint(cimag(buf[j]) * scale), &pr->mod);
            }
        }
    }
    return PPNN_OK;
}

/* Exactly one of re (real values) and cv (complex values) is non-NULL. With pt, writes the
 * plaintext (NTT form); without, writes rows in coefficient form (ckks_encode_coeffs). */
static ppnn_status encode_values(ckks_plaintext *pt, uint64_t *rows, const ckks_params *params,
                                 const double *re, const double complex *cv, size_t count,
                                 size_t level, double scale)
{
    ppnn_status st = check_encode_args(params, count, level, scale);
    if (st)
        return st;
    double complex *buf = malloc(params->slots * sizeof *buf);
    if (!buf)
        return ppnn_fail(PPNN_ERR_NOMEM, "encode: out of memory");
    for (size_t i = 0; i < params->slots; i++) {
        buf[i] = i >= count ? 0 : re ? re[i] : cv[i];
        if (!isfinite(creal(buf[i])) || !isfinite(cimag(buf[i]))) {
            sodium_memzero(buf, i * sizeof *buf); /* the values before it are private inputs */
            free(buf);
            return ppnn_fail(PPNN_ERR_NUMERIC, "encode: value %zu is not finite", i);
        }
    }
    double maxabs = 0;
    st = encode_packed_check(&maxabs, params, buf, level, scale);
    /* A plaintext is shaped only once the values are known to fit. */
    if (!st && pt)
        st = ckks_pt_init(pt, params, level, scale);
    if (!st)
        st = encode_packed_rns(pt ? pt->data : rows, params, buf, maxabs, level, scale);
    for (size_t i = 0; !st && pt && i <= level; i++)
        _ring_ntt_forward(pt->data + i * params->n, &params->ring->primes[i]);
    sodium_memzero(buf, params->slots * sizeof *buf);
    free(buf);
    return st;
}

ppnn_status ckks_encode_coeffs(uint64_t *rows, const ckks_params *params, const double *values,
                               size_t count, size_t level, double scale)
{
    return encode_values(NULL, rows, params, values, NULL, count, level, scale);
}

ppnn_status ckks_encode_complex(ckks_plaintext *pt, const ckks_params *params,
                                const double complex *values, size_t count, size_t level,
                                double scale)
{
    return encode_values(pt, NULL, params, NULL, values, count, level, scale);
}

ppnn_status ckks_encode(ckks_plaintext *pt, const ckks_params *params, const double *values,
                        size_t count, size_t level, double scale)
{
    return encode_values(pt, NULL, params, values, NULL, count, level, scale);
}

/* ---- decoding ----
 * Fast path of the CRT. With y_i = [a_i * qhat_inv_i]_{q_i}, the centered value is
 * x = sum_i y_i * qhat_i - r * Q with r = round(sum_i y_i / q_i). The float sum has absolute
 * error < (l+1) * 2^-50, so when its distance to the nearest half-integer is larger than
 * 2^-20 the rounding r is certainly right; then x is computed modulo 2^64 (qhat_i and Q taken
 * mod 2^64 = their low words), and the int64 candidate v is accepted only when |v| < 2^62 and
 * v = a_i mod q_i for every i: v = x mod Q with |v| < Q/2 makes v = x exactly. Decoded
 * coefficients are usually far below 2^62, so the multi-word path is a rare fallback. */
static int crt_fast(int64_t *out, const ckks_params *params, size_t level, const uint64_t *poly,
                    size_t j)
{
    const ckks_crt_level *c = &params->inner->crt[level];
    size_t n = params->n, w = c->words;
    double f = 0;
    uint64_t v = 0;
    for (size_t i = 0; i <= level; i++) {
        uint64_t y = mq_mul(poly[i * n + j], c->qhat_inv[i], &params->ring->primes[i].mod);
        f += (double)y * c->inv_q[i];
        v += y * c->qhat[i * (w + 1)];
    }
    double r = nearbyint(f);
    if (fabs(fabs(f - r) - 0.5) < 0x1p-20)
        return 0;
    v -= (uint64_t)(int64_t)r * c->big_q[0];
    int64_t sv = (int64_t)v;
    if (sv >= ((int64_t)1 << 62) || sv <= -((int64_t)1 << 62))
        return 0;
    for (size_t i = 0; i <= level; i++)
        if (mq_from_int64(sv, &params->ring->primes[i].mod) != poly[i * n + j])
            return 0;
    *out = sv;
    return 1;
}

double ckks_crt_to_double(const ckks_params *params, size_t level, const uint64_t *poly,
                          size_t j, uint64_t *acc)
{
    int64_t fast;
    if (crt_fast(&fast, params, level, poly, j))
        return (double)fast;
    const ckks_crt_level *c = &params->inner->crt[level];
    size_t n = params->n, w = c->words;
    /* acc = sum_i [a_i * qhat_inv_i]_{q_i} * qhat_i  <  (l+1) * Q_l  (w+1 words). */
    memset(acc, 0, (w + 1) * sizeof *acc);
    for (size_t i = 0; i <= level; i++) {
        const ring_prime *pr = &params->ring->primes[i];
        uint64_t y = mq_mul(poly[i * n + j], c->qhat_inv[i], &pr->mod);
        const uint64_t *qh = c->qhat + i * (w + 1);
        mq_u128 carry = 0;
        for (size_t k = 0; k <= w; k++) {
            mq_u128 t = (mq_u128)qh[k] * y + acc[k] + carry;
            acc[k] = (uint64_t)t;
            carry = t >> 64;
        }
    }
    /* Reduce mod Q_l: at most l subtractions. */
    for (;;) {
        int ge = 1;
        for (size_t k = w + 1; k-- > 0;) {
            uint64_t qk = c->big_q[k];
            if (acc[k] != qk) {
                ge = acc[k] > qk;
                break;
            }
        }
        if (!ge)
            break;
        uint64_t borrow = 0;
        for (size_t k = 0; k <= w; k++) {
            mq_u128 t = (mq_u128)acc[k] - c->big_q[k] - borrow;
            acc[k] = (uint64_t)t;
            borrow = (uint64_t)(t >> 64) & 1;
        }
    }
    /* Centered lift: x > (Q-1)/2 (Q odd) -> the value is x - Q. */
    int neg = 0;
    for (size_t k = w + 1; k-- > 0;)
        if (acc[k] != c->half_q[k]) {
            neg = acc[k] > c->half_q[k];
            break;
        }
    if (neg) { /* acc = Q - acc */
        uint64_t borrow = 0;
        for (size_t k = 0; k <= w; k++) {
            mq_u128 t = (mq_u128)c->big_q[k] - acc[k] - borrow;
            acc[k] = (uint64_t)t;
            borrow = (uint64_t)(t >> 64) & 1;
        }
    }
    double v = 0;
    for (size_t k = w + 1; k-- > 0;)
        v = v * 0x1p64 + (double)acc[k];
    return neg ? -v : v;
}

/* Decodes pt into buf (slots complex values): inverse NTT, CRT, special FFT. */
static ppnn_status decode_packed(double complex *buf, const ckks_plaintext *pt)
{
    const ckks_params *params = pt->params;
    size_t n = params->n, h = params->slots, np = pt->level + 1;
    uint64_t *tmp = malloc((np * n + 2 * (np + 2)) * sizeof *tmp);
    if (!tmp)
        return ppnn_fail(PPNN_ERR_NOMEM, "decode: out of memory");
    memcpy(tmp, pt->data, np * n * sizeof *tmp);
    ring_poly_ntt_inverse(tmp, params->ring, np);
    double inv = 1.0 / pt->scale;
    if (np == 1) {
        uint64_t q = params->q[0];
        for (size_t j = 0; j < h; j++)
            buf[j] = CMPLX((double)mq_center(tmp[j], q) * inv,
                           (double)mq_center(tmp[j + h], q) * inv);
    } else {
        uint64_t *scratch = tmp + np * n;
        for (size_t j = 0; j < h; j++) {
            double re = ckks_crt_to_double(params, pt->level, tmp, j, scratch);
            double im = ckks_crt_to_double(params, pt->level, tmp, j + h, scratch);
            buf[j] = CMPLX(re * inv, im * inv);
        }
    }
    sodium_memzero(tmp, np * n * sizeof *tmp); /* m + e of a decrypted plaintext */
    free(tmp);
    ckks_fft_forward(&params->inner->fft, buf);
    return PPNN_OK;
}

static ppnn_status decode_common(double complex **buf, size_t count, const ckks_plaintext *pt)
{
    if (count > pt->params->slots)
        return ppnn_fail(PPNN_ERR_PARAM, "decode: %zu values requested, only %zu slots", count,
                         pt->params->slots);
    *buf = malloc(pt->params->slots * sizeof **buf);
    if (!*buf)
        return ppnn_fail(PPNN_ERR_NOMEM, "decode: out of memory");
    ppnn_status st = decode_packed(*buf, pt);
    if (st) {
        sodium_memzero(*buf, pt->params->slots * sizeof **buf);
        free(*buf);
        *buf = NULL;
    }
    return st;
}

/* The decoded slots include those the caller did not ask for (and, before any release noise,
 * the exact error): wiped before free. */
static void wipe_decoded(double complex *buf, const ckks_plaintext *pt)
{
    sodium_memzero(buf, pt->params->slots * sizeof *buf);
    free(buf);
}

ppnn_status ckks_decode_complex(double complex *values, size_t count, const ckks_plaintext *pt)
{
    double complex *buf;
    ppnn_status st = decode_common(&buf, count, pt);
    if (st)
        return st;
    memcpy(values, buf, count * sizeof *values);
    wipe_decoded(buf, pt);
    return PPNN_OK;
}

ppnn_status ckks_decode(double *values, size_t count, const ckks_plaintext *pt)
{
    double complex *buf;
    ppnn_status st = decode_common(&buf, count, pt);
    if (st)
        return st;
    for (size_t i = 0; i < count; i++)
        values[i] = creal(buf[i]);
    wipe_decoded(buf, pt);
    return PPNN_OK;
}
