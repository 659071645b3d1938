/* CKKS keys and encryption: secret/public-key encryption precision in bits, seeded secret-key
 * ciphertexts (c1 regenerated from the seed), decryption of every level, parameter mismatch. */
#include <string.h>

#include "ckks_tu.h"

/* Fresh-ciphertext floors (N = 8192, scale 2^28). Slot error = canonical embedding of the
 * coefficient noise, ~ sqrt(N) * coefficient sigma, max over 4096 slots ~ 4 sigma:
 *   sk: e with sigma 3.24 -> 2^(1.7 + 6.5 + 2) = 2^10.2 / 2^28 -> >= 17 bits (floor 15)
 *   pk: v*e + e0 + e1*s, variance ~ 2 * N * (2/3) * 10.5 = 14N -> sigma 2^8.4, slot sigma
 *       2^(8.4 + 6) = 2^14.4, max ~ 2^16.5 / 2^28 -> ~11.2 bits measured (floor 10, a margin
 *       of ~7 sigma). */
#define FLOOR_SK 15.0
#define FLOOR_PK 10.0

static void test_encrypt(const ckks_params *p, const ckks_secret_key *sk,
                         const ckks_public_key *pk)
{
    size_t h = p->slots;
    double *v = malloc(h * sizeof *v), *out = malloc(h * sizeof *out);
    ctu_values(v, h, 3);
    ckks_plaintext pt = {0};
    ckks_ciphertext ct = {0};
    for (size_t level = 0; level < p->nq; level += p->nq - 1) {
        CHECK_OK(ckks_encode(&pt, p, v, h, level, p->scale));
        CHECK_OK(ckks_encrypt_sk(&ct, sk, &pt));
        CHECK(ct.level == level && ct.size == 2 && ct.scale == p->scale && ct.has_seed);
        ctu_decrypt(out, h, sk, &ct);
        double bits = ctu_bits(out, v, h);
        printf("  encrypt_sk level %zu: %.1f bits\n", level, bits);
        CHECK_MSG(bits >= FLOOR_SK, "sk %.1f bits", bits);
        /* c1 is exactly the expansion of the seed. */
        uint64_t *c1 = malloc((level + 1) * p->n * sizeof *c1);
        ckks_expand_seed(c1, p, level, ct.seed);
        CHECK(!memcmp(c1, ckks_ct_poly(&ct, 1, 0), (level + 1) * p->n * sizeof *c1));
        /* A wrong seed gives garbage (c1 is not all-zero noise). */
        ct.seed[0] ^= 1;
        ckks_expand_seed(c1, p, level, ct.seed);
        CHECK(memcmp(c1, ckks_ct_poly(&ct, 1, 0), (level + 1) * p->n * sizeof *c1) != 0);
        free(c1);
        CHECK_OK(ckks_encrypt_pk(&ct, pk, &pt));
        CHECK(ct.level == level && ct.size == 2 && !ct.has_seed);
        ctu_decrypt(out, h, sk, &ct);
        bits = ctu_bits(out, v, h);
        printf("  encrypt_pk level %zu: %.1f bits\n", level, bits);
        CHECK_MSG(bits >= FLOOR_PK, "pk %.1f bits", bits);
    }
    /* Two encryptions of the same plaintext differ (fresh randomness). */
    ckks_ciphertext ct2 = {0};
    CHECK_OK(ckks_encrypt_sk(&ct, sk, &pt));
    CHECK_OK(ckks_encrypt_sk(&ct2, sk, &pt));
    CHECK(memcmp(ct.data, ct2.data, p->n * sizeof(uint64_t)) != 0);
    ckks_ct_free(&ct2);
    ckks_ct_free(&ct);
    ckks_pt_free(&pt);
    free(v);
    free(out);
}

static void test_mismatch(const ckks_params *p, const ckks_secret_key *sk)
{
    ckks_params *other = ctu_params(5, 2, 30, 30, 30);
    ckks_secret_key sk2;
    CHECK_OK(ckks_keygen_secret(&sk2, other));
    double v[2] = {1, 2};
    ckks_plaintext pt = {0};
    ckks_ciphertext ct = {0};
    CHECK_OK(ckks_encode(&pt, p, v, 2, 0, p->scale));
    CHECK_ERR(ckks_encrypt_sk(&ct, &sk2, &pt), PPNN_ERR_MISMATCH);
    CHECK_OK(ckks_encrypt_sk(&ct, sk, &pt));
    CHECK_ERR(ckks_decrypt(&pt, &sk2, &ct), PPNN_ERR_MISMATCH);
    ckks_ct_free(&ct);
    ckks_pt_free(&pt);
    ckks_secret_key_free(&sk2);
    ckks_params_free(other);
}

/* The release path floods: the deviation from the exact values has the standard deviation
 * ckks_flood_slot_sigma promises (checked within 10% over 4096 values: the sample standard
 * deviation of 4096 Gaussians is within 10% with probability 1 - 1e-20) and is fresh on every
 * call; without a flooding the decode is exact (bit-identical to decrypt + ckks_decode). */
static void test_release(const ckks_params *p, const ckks_secret_key *sk)
{
    size_t h = p->slots;
    double *v = malloc(h * sizeof *v), *r1 = malloc(h * sizeof *r1), *r2 = malloc(h * sizeof *r2);
    ctu_values(v, h, 21);
    ckks_ciphertext ct = {0};
    ctu_encrypt(&ct, sk, v, h, 0, p->scale);
    /* E such that each slot gets noise of 2^-6 at s = 4, tau = 1: E ~ 1.2e-5, far above the
     * fresh encryption noise (max ~3e-6 over the slots), which the release's imaginary-part
     * check compares with 2E (at s = 10 E was 1.6e-6: refused in about 1 run in 8). */
    ckks_flood f = {ldexp(1.0, -6) / (sqrt(12.0 * (double)p->n) * 4), 4, 1};
    double sigma = ckks_flood_slot_sigma(&f, p);
    CHECK(fabs(sigma - ldexp(1.0, -6)) < 1e-12);
    CHECK_OK(ckks_decrypt_release(r1, h, sk, &ct, &f));
    CHECK_OK(ckks_decrypt_release(r2, h, sk, &ct, &f));
    double var = 0;
    size_t same = 0;
    for (size_t i = 0; i < h; i++) {
        var += (r1[i] - v[i]) * (r1[i] - v[i]);
        same += r1[i] == r2[i];
    }
    double sd = sqrt(var / (double)h);
    printf("  release: sd %.3g (sigma %.3g), %zu of %zu equal across calls\n", sd, sigma, same, h);
    CHECK_MSG(sd > 0.9 * sigma && sd < 1.1 * sigma, "flood sd %g vs %g", sd, sigma);
    CHECK(same < h / 8);
    ckks_plaintext pt = {0};
    CHECK_OK(ckks_decrypt(&pt, sk, &ct));
    CHECK_OK(ckks_decode(r2, h, &pt));
    CHECK_OK(ckks_decrypt_release(r1, h, sk, &ct, NULL));
    CHECK(memcmp(r1, r2, h * sizeof *r1) == 0);
    ckks_pt_free(&pt);
    f.stat_bits = 0;
    CHECK_ERR(ckks_decrypt_release(r1, h, sk, &ct, &f), PPNN_ERR_PARAM);
    ckks_ct_free(&ct);
    free(v);
    free(r1);
    free(r2);
}

int main(void)
{
    ckks_spec s;
    CHECK_OK(ckks_preset(&s, "n13"));
    ckks_params *p = NULL;
    CHECK_OK(ckks_params_new(&p, &s));
    if (!p)
        return tu_finish("test_ckks_encrypt");
    ckks_secret_key sk;
    ckks_public_key pk;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    CHECK_OK(ckks_keygen_public(&pk, &sk));
    test_encrypt(p, &sk, &pk);
    test_mismatch(p, &sk);
    test_release(p, &sk);
    ckks_public_key_free(&pk);
    ckks_secret_key_free(&sk);
    ckks_secret_key_free(NULL);
    ckks_params_free(p);
    return tu_finish("test_ckks_encrypt");
}
