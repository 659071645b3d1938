/* CKKS encoder: special FFT against the definition, encode/decode precision in bits, refusals. */
#include <complex.h>
#include <string.h>

#include "ckks/inner.h"
#include "ckks_tu.h"

/* The special FFT equals evaluating m(X) at zeta^(5^j), zeta = exp(2 pi i / 2N). */
static void test_fft_definition(void)
{
    for (size_t n = 8; n <= 256; n *= 2) {
        ckks_fft f;
        CHECK_OK(ckks_fft_init(&f, n));
        size_t h = n / 2;
        double *m = malloc(n * sizeof *m);
        double complex *w = malloc(h * sizeof *w), *ref = malloc(h * sizeof *ref);
        ctu_values(m, n, n);
        for (size_t i = 0; i < h; i++)
            w[i] = CMPLX(m[i], m[i + h]);
        size_t g = 1;
        for (size_t j = 0; j < h; j++) {
            double complex s = 0;
            for (size_t i = 0; i < n; i++) {
                double a = M_PI * (double)((i * g) % (2 * n)) / (double)n;
                s += m[i] * CMPLX(cos(a), sin(a));
            }
            ref[j] = s;
            g = g * 5 % (2 * n);
        }
        ckks_fft_forward(&f, w);
        double err = 0;
        for (size_t j = 0; j < h; j++)
            err = fmax(err, cabs(w[j] - ref[j]));
        CHECK_MSG(err < 1e-12 * (double)n, "n=%zu err=%g", n, err);
        ckks_fft_inverse(&f, w);
        err = 0;
        for (size_t i = 0; i < h; i++)
            err = fmax(err, cabs(w[i] - CMPLX(m[i], m[i + h])));
        CHECK_MSG(err < 1e-13 * (double)n, "n=%zu inverse err=%g", n, err);
        free(m);
        free(w);
        free(ref);
        ckks_fft_free(&f);
    }
}

/* The AVX-512 butterflies give exactly the portable ones' doubles, forward and inverse, at
 * every ring size from the smallest they take (8 slots: every stage shape, lenh 1, 2, >= 4). */
static void test_fft_avx512_identical(void)
{
    ckks_fft f;
    CHECK_OK(ckks_fft_init(&f, 16));
    const int avx = f.avx512;
    ckks_fft_free(&f);
    if (!avx) {
        fprintf(stderr, "test_ckks_encoder: no AVX-512, butterfly identity not checked\n");
        return;
    }
    for (size_t n = 16; n <= 16384; n *= 2) {
        CHECK_OK(ckks_fft_init(&f, n));
        size_t h = n / 2;
        double *m = malloc(n * sizeof *m);
        double complex *a = malloc(h * sizeof *a), *b = malloc(h * sizeof *b);
        ctu_values(m, n, 7 * n);
        for (size_t i = 0; i < h; i++)
            a[i] = b[i] = CMPLX(1e3 * m[i], -1e3 * m[i + h]);
        _ckks_fft_forward_impl(&f, a, 1);
        _ckks_fft_forward_impl(&f, b, 0);
        CHECK_MSG(!memcmp(a, b, h * sizeof *a), "n=%zu: forward AVX-512 != portable", n);
        _ckks_fft_inverse_impl(&f, a, 1);
        _ckks_fft_inverse_impl(&f, b, 0);
        CHECK_MSG(!memcmp(a, b, h * sizeof *a), "n=%zu: inverse AVX-512 != portable", n);
        double err = 0;
        for (size_t i = 0; i < h; i++)
            err = fmax(err, cabs(a[i] - CMPLX(1e3 * m[i], -1e3 * m[i + h])));
        CHECK_MSG(err < 1e-9 * (double)n, "n=%zu round trip err=%g", n, err);
        free(m), free(a), free(b);
        ckks_fft_free(&f);
    }
}

/* Rounding each of N coefficients by <= 1/2 moves a slot by <= N/2 / scale: the worst-case
 * floor is log2(scale) - logn + 1 bits; the typical error is ~sqrt(N) smaller. */
static void check_roundtrip(const ckks_params *p, size_t level, double scale, double floor_bits)
{
    size_t h = p->slots;
    double *v = malloc(h * sizeof *v), *out = malloc(h * sizeof *out);
    ctu_values(v, h, level + 7);
    ckks_plaintext pt = {0};
    CHECK_OK(ckks_encode(&pt, p, v, h, level, scale));
    CHECK(pt.level == level && pt.scale == scale);
    CHECK_OK(ckks_decode(out, h, &pt));
    double bits = ctu_bits(out, v, h);
    CHECK_MSG(bits >= floor_bits, "N=%zu level=%zu scale=2^%.0f: %.1f bits < %.1f", p->n, level,
              log2(scale), bits, floor_bits);
    printf("  encode/decode N=%zu level %zu scale 2^%.0f: %.1f bits\n", p->n, level,
           log2(scale), bits);
    ckks_pt_free(&pt);
    free(v);
    free(out);
}

static void test_complex(const ckks_params *p)
{
    size_t h = p->slots;
    double *re = malloc(h * sizeof *re), *im = malloc(h * sizeof *im);
    double complex *v = malloc(h * sizeof *v), *out = malloc(h * sizeof *out);
    ctu_values(re, h, 11);
    ctu_values(im, h, 12);
    for (size_t i = 0; i < h; i++)
        v[i] = CMPLX(re[i], im[i]);
    ckks_plaintext pt = {0};
    CHECK_OK(ckks_encode_complex(&pt, p, v, h, p->nq - 1, p->scale));
    CHECK_OK(ckks_decode_complex(out, h, &pt));
    double err = 0;
    for (size_t i = 0; i < h; i++)
        err = fmax(err, cabs(out[i] - v[i]));
    CHECK_MSG(-log2(err) >= log2(p->scale) - p->logn, "complex: %.1f bits", -log2(err));
    ckks_pt_free(&pt);
    free(re);
    free(im);
    free(v);
    free(out);
}

static void test_refusals(const ckks_params *p)
{
    ckks_plaintext pt = {0};
    double v[4] = {1, 2, 3, 4};
    CHECK_ERR(ckks_encode(&pt, p, v, p->slots + 1, 0, p->scale), PPNN_ERR_PARAM);
    CHECK_ERR(ckks_encode(&pt, p, v, 4, p->nq, p->scale), PPNN_ERR_PARAM);
    CHECK_ERR(ckks_encode(&pt, p, v, 4, 0, 0.0), PPNN_ERR_PARAM);
    v[2] = NAN;
    CHECK_ERR(ckks_encode(&pt, p, v, 4, 0, p->scale), PPNN_ERR_NUMERIC);
    v[2] = INFINITY;
    CHECK_ERR(ckks_encode(&pt, p, v, 4, 0, p->scale), PPNN_ERR_NUMERIC);
    /* q_0 has 38 bits: the constant vector 2^12 encodes to the constant coefficient
     * 2^12 * 2^28 = 2^40 >= q_0/2 ~ 2^37, which would wrap around at level 0; at level 1
     * (Q ~ 2^66) it fits. */
    double *big = malloc(p->slots * sizeof *big);
    for (size_t i = 0; i < p->slots; i++)
        big[i] = 0x1p12;
    big[3] = 4;
    CHECK_ERR(ckks_encode(&pt, p, big, p->slots, 0, p->scale), PPNN_ERR_NUMERIC);
    CHECK(strstr(ppnn_last_error(), "does not fit") != NULL);
    CHECK_OK(ckks_encode(&pt, p, big, p->slots, 1, p->scale));
    free(big);
    double out[4];
    CHECK_OK(ckks_decode(out, 4, &pt));
    CHECK(fabs(out[2] - 0x1p12) < 1e-3 && fabs(out[3] - 4) < 1e-3);
    CHECK_ERR(ckks_decode(out, p->slots + 1, &pt), PPNN_ERR_PARAM);
    /* Release decode: flooded (slot sigma ~2^-13 here), but close; a zero error bound is
     * refused. */
    ckks_flood f = {0, 8, 1};
    CHECK_ERR(ckks_decode_release(out, 4, &pt, &f), PPNN_ERR_PARAM);
    f.error = 0x1p-30;
    CHECK_OK(ckks_decode_release(out, 4, &pt, &f));
    CHECK(fabs(out[3] - 4) < 0x1p-8);
    ckks_pt_free(&pt);
}

/* CRT reconstruction (fast int64 path and multi-word fallback) against known integers: small
 * values |v| < 2^61 must come back exactly; 120-bit values to double rounding. */
static void test_crt(const ckks_params *p)
{
    size_t level = p->nq - 1, n = p->n;
    uint64_t *poly = calloc((level + 1) * n, sizeof *poly), scratch[2 * (CKKS_MAX_PRIMES + 2)];
    double *vals = malloc(n * sizeof *vals);
    ctu_values(vals, n, 77);
    for (size_t j = 0; j < n; j++) {
        /* j even: |v| < 2^61 (fast path); j odd: |v| ~ 2^119 (fallback). */
        int neg = vals[j] < 0;
        mq_u128 mag = (mq_u128)(uint64_t)(fabs(vals[j]) * 0x1p61);
        if (j & 1)
            mag = (mag << 58) | (uint64_t)j;
        for (size_t i = 0; i <= level; i++) {
            const mq_modulus *m = &p->ring->primes[i].mod;
            uint64_t r = mq_reduce128(mag, m);
            poly[i * n + j] = neg ? mq_neg(r, m->q) : r;
        }
        double want = ((double)(uint64_t)(mag >> 64) * 0x1p64 + (double)(uint64_t)mag);
        want = neg ? -want : want;
        double got = ckks_crt_to_double(p, level, poly, j, scratch);
        if (j & 1)
            CHECK_MSG(fabs(got - want) <= fabs(want) * 0x1p-50, "crt j=%zu %g vs %g", j, got, want);
        else
            CHECK_MSG(got == want, "crt j=%zu %.17g vs %.17g", j, got, want);
    }
    free(poly);
    free(vals);
}

int main(void)
{
    test_fft_definition();
    test_fft_avx512_identical();
    ckks_spec s;
    CHECK_OK(ckks_preset(&s, "n13"));
    ckks_params *p = NULL;
    CHECK_OK(ckks_params_new(&p, &s));
    if (!p)
        return tu_finish("test_ckks_encoder");
    check_roundtrip(p, 0, p->scale, log2(p->scale) - p->logn + 1);
    check_roundtrip(p, p->nq - 1, p->scale, log2(p->scale) - p->logn + 1);
    /* Big scales exercise the multi-word CRT in decode and the >= 2^62 path in encode. */
    check_roundtrip(p, p->nq - 1, 0x1p100, 45);
    check_roundtrip(p, 3, 0x1p70, 45);
    test_complex(p);
    test_crt(p);
    test_refusals(p);
    ckks_params_free(p);
    /* The smallest test ring and the largest secure one (reduced runs skip N = 2^16). */
    ckks_params *t = ctu_params(4, 2, 30, 30, 30);
    check_roundtrip(t, 1, 0x1p30, 30 - 4 + 1);
    ckks_params_free(t);
    if (!tu_reduced()) {
        t = ctu_params(16, 2, 50, 40, 50);
        check_roundtrip(t, 1, 0x1p40, 40 - 16 + 1);
        ckks_params_free(t);
    }
    return tu_finish("test_ckks_encoder");
}
