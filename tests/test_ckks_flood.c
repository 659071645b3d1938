/* Error-aware flooding (src/ckks/flood.c, ring_sample_gaussian): the sigma formula, the
 * measured standard deviation of the coefficient-domain Gaussian (sampler and plaintext), the
 * same integer noise in every RNS row, freshness, and the refusals. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_tu.h"

/* Sample standard deviation of n values within 12/sqrt(2n) (the relative standard error of a
 * Gaussian sample std is 1/sqrt(2n): 12 standard errors, 4.7 % at n = 2^15 coefficients), mean
 * within 12 standard errors, a tail (max > 3 sigma: P(fail) < e^-20 for n >= 2^13) and no
 * value beyond the sampler's 8.6 sigma. */
static void check_sd(const int64_t *z, size_t n, double sigma, const char *what)
{
    double s = 0, ss = 0, mx = 0;
    for (size_t i = 0; i < n; i++) {
        s += (double)z[i];
        ss += (double)z[i] * (double)z[i];
        mx = fmax(mx, fabs((double)z[i]));
    }
    double mean = s / (double)n, sd = sqrt(ss / (double)n - mean * mean);
    printf("  %s: sd %.4g (sigma %.4g), mean %.3g, max %.2f sigma\n", what, sd, sigma, mean,
           mx / sigma);
    const double se = 1 / sqrt(2.0 * (double)n);
    CHECK_MSG(fabs(sd / sigma - 1) < 12 * se, "%s: sd %g vs sigma %g", what, sd, sigma);
    CHECK_MSG(fabs(mean) < 12 * sigma / sqrt((double)n), "%s: mean %g", what, mean);
    CHECK(mx < 8.6 * sigma + 1);
    CHECK(mx > 3 * sigma);
}

static void test_sampler(void)
{
    enum { N = 1 << 16 };
    int64_t *z = malloc(N * sizeof *z);
    uint8_t seed[RING_SEED_BYTES] = {7};
    ring_prg g;
    const double sigmas[] = {3.0, 1000.0, 0x1p40};
    for (size_t k = 0; k < 3; k++) {
        ring_prg_init(&g, seed, k);
        ring_sample_gaussian(z, N, sigmas[k], &g);
        check_sd(z, N, sigmas[k], "ring_sample_gaussian");
    }
    ring_prg_wipe(&g);
    free(z);
}

static void test_sigma_formula(const ckks_params *p)
{
    /* sqrt(12·3)·2^20·sqrt(2)·1e-3·2^30 and its slot image sqrt(12·3·N)·2^20·1e-3. */
    ckks_flood f = {1e-3, 40, 3};
    double want = 6.0 * 0x1p20 * M_SQRT2 * 1e-3 * 0x1p30;
    CHECK(fabs(ckks_flood_sigma(&f, 0x1p30) / want - 1) < 1e-12);
    double slot = sqrt(36.0 * (double)p->n) * 0x1p20 * 1e-3;
    CHECK(fabs(ckks_flood_slot_sigma(&f, p) / slot - 1) < 1e-12);
}

/* Coefficient r of row i, centred mod q_i. */
static double centred(uint64_t v, uint64_t q)
{
    return v > q / 2 ? -(double)(q - v) : (double)v;
}

static void test_plaintext(const ckks_params *p)
{
    const size_t n = p->n, level = p->nq - 1;
    double *v = malloc(p->slots * sizeof *v);
    ctu_values(v, p->slots, 5);
    ckks_plaintext a = {0}, b = {0};
    CHECK_OK(ckks_encode(&a, p, v, p->slots, level, p->scale));
    CHECK_OK(ckks_encode(&b, p, v, p->slots, level, p->scale));
    ckks_flood f = {0x1p-20, 20, 1}; /* sigma = sqrt(12)·2^10·sqrt(2)·2^-20·scale */
    double sigma = ckks_flood_sigma(&f, p->scale);
    CHECK_OK(ckks_flood_plaintext(&b, &f));
    ring_poly_ntt_inverse(a.data, p->ring, level + 1);
    ring_poly_ntt_inverse(b.data, p->ring, level + 1);
    int64_t *z = malloc(n * sizeof *z);
    size_t rows_agree = 1;
    for (size_t j = 0; j < n; j++) {
        uint64_t q0 = p->q[0];
        z[j] = (int64_t)centred((b.data[j] + q0 - a.data[j]) % q0, q0);
        for (size_t i = 1; i <= level; i++) { /* the same integer in every prime */
            uint64_t qi = p->q[i], d = (b.data[i * n + j] + qi - a.data[i * n + j]) % qi;
            rows_agree &= centred(d, qi) == (double)z[j];
        }
    }
    CHECK(rows_agree);
    check_sd(z, n, sigma, "ckks_flood_plaintext");
    /* Fresh on every call: two floodings of the same plaintext differ. */
    ckks_plaintext c = {0};
    CHECK_OK(ckks_encode(&c, p, v, p->slots, level, p->scale));
    CHECK_OK(ckks_flood_plaintext(&c, &f));
    ring_poly_ntt_inverse(c.data, p->ring, level + 1);
    CHECK(memcmp(b.data, c.data, n * sizeof *c.data) != 0);
    /* Refusals: invalid figures; noise whose tail does not fit the modulus at level 0. */
    ckks_flood bad[] = {{0, 20, 1}, {NAN, 20, 1}, {1e-3, 0, 1}, {1e-3, 129, 1}, {1e-3, 20, 0.5}};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        CHECK_ERR(ckks_flood_plaintext(&c, &bad[k]), PPNN_ERR_PARAM);
    ckks_plaintext low = {0};
    CHECK_OK(ckks_encode(&low, p, v, p->slots, 0, p->scale));
    ckks_flood huge = {1.0, 60, 1e6};
    CHECK_ERR(ckks_flood_plaintext(&low, &huge), PPNN_ERR_NUMERIC);
    CHECK(strstr(ppnn_last_error(), "does not fit") != NULL);
    free(v), free(z);
    ckks_pt_free(&a), ckks_pt_free(&b), ckks_pt_free(&c), ckks_pt_free(&low);
}

/* The release check: a real computation passes, one whose imaginary parts carry more than
 * 2·E is refused before anything is flooded or released. */
static void test_check_real(const ckks_params *p)
{
    ckks_secret_key sk = {0};
    CHECK_OK(ckks_keygen_secret(&sk, p));
    const size_t h = p->slots;
    double complex *z = malloc(h * sizeof *z);
    double *v = malloc(h * sizeof *v), *out = malloc(h * sizeof *out);
    ctu_values(v, h, 9);
    for (size_t i = 0; i < h; i++)
        z[i] = CMPLX(v[i], i == 17 ? 1e-3 : 0.0);
    ckks_plaintext pt = {0};
    ckks_ciphertext real = {0}, cplx = {0};
    ctu_encrypt(&real, &sk, v, h, 0, p->scale);
    CHECK_OK(ckks_encode_complex(&pt, p, z, h, 0, p->scale));
    CHECK_OK(ckks_encrypt_sk(&cplx, &sk, &pt));
    ckks_flood f = {1e-4, 10, 1};
    CHECK_OK(ckks_decrypt_release(out, h, &sk, &real, &f));
    CHECK_ERR(ckks_decrypt_release(out, h, &sk, &cplx, &f), PPNN_ERR_NUMERIC);
    CHECK(strstr(ppnn_last_error(), "nothing released") != NULL);
    f.error = 1e-2; /* an error figure that covers it */
    CHECK_OK(ckks_decrypt_release(out, h, &sk, &cplx, &f));
    ckks_pt_free(&pt);
    ckks_ct_free(&real), ckks_ct_free(&cplx);
    ckks_secret_key_free(&sk);
    free(z), free(v), free(out);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    ckks_params *p = ctu_params(15, 3, 50, 30, 50);
    test_sampler();
    test_sigma_formula(p);
    test_plaintext(p);
    test_check_real(p);
    ckks_params_free(p);
    return tu_finish("test_ckks_flood");
}
