/* Key switching: relinearization at every level, rotations by several steps (left, right,
 * wrap-around), conjugation of complex slots, missing keys. Small insecure ring for speed plus
 * one rotation on n13. */
#include <complex.h>
#include <string.h>

#include "ckks/inner.h"
#include "ckks_tu.h"

/* Rotation and conjugation add one key-switching noise, sum_j [c]_{q_j} e_j / P, dominated by
 * the q_0 digit: ~2^(bits(q_0) - bits(P) + 8) per coefficient. N = 2^10, q_0 = P = 50 bits,
 * scale 2^30: ~18 bits measured, floor 16 (fresh is ~22). n13 (q_0 38, P 40 bits, scale 2^28):
 * ~14 bits expected, floor 12. */
#define FLOOR_SMALL 16.0
#define FLOOR_N13 12.0

static void rotate_check(const ckks_params *p, const ckks_secret_key *sk,
                         const ckks_galois_keys *gk, int step, double floor_bits)
{
    size_t h = p->slots;
    double *x = malloc(h * sizeof *x), *want = malloc(h * sizeof *want),
           *got = malloc(h * sizeof *got);
    ctu_values(x, h, (uint64_t)(step + 100));
    ckks_ciphertext ct = {0}, r = {0};
    ctu_encrypt(&ct, sk, x, h, p->nq - 1, p->scale);
    CHECK_OK(ckks_rotate(&r, &ct, step, gk));
    CHECK_OK(ckks_rotate(&ct, &ct, step, gk)); /* in place: the same result */
    long hs = (long)h;
    for (size_t i = 0; i < h; i++)
        want[i] = x[(size_t)((((long)i + step) % hs + hs) % hs)];
    for (int pass = 0; pass < 2; pass++) {
        ctu_decrypt(got, h, sk, pass ? &ct : &r);
        double bits = ctu_bits(got, want, h);
        printf("  N=%zu rotate %+d%s: %.1f bits (floor %.0f)\n", p->n, step,
               pass ? " in place" : "", bits, floor_bits);
        CHECK_MSG(bits >= floor_bits, "rotate %d: %.1f bits", step, bits);
    }
    ckks_ct_free(&ct);
    ckks_ct_free(&r);
    free(x);
    free(want);
    free(got);
}

static void conjugate_check(const ckks_params *p, const ckks_secret_key *sk,
                            const ckks_galois_keys *gk)
{
    size_t h = p->slots;
    double *re = malloc(h * sizeof *re), *im = malloc(h * sizeof *im);
    double complex *v = malloc(h * sizeof *v), *out = malloc(h * sizeof *out);
    ctu_values(re, h, 5);
    ctu_values(im, h, 6);
    for (size_t i = 0; i < h; i++)
        v[i] = CMPLX(re[i], im[i]);
    ckks_plaintext pt = {0};
    ckks_ciphertext ct = {0}, r = {0};
    CHECK_OK(ckks_encode_complex(&pt, p, v, h, p->nq - 1, p->scale));
    CHECK_OK(ckks_encrypt_sk(&ct, sk, &pt));
    CHECK_OK(ckks_conjugate(&r, &ct, gk));
    CHECK_OK(ckks_decrypt(&pt, sk, &r));
    CHECK_OK(ckks_decode_complex(out, h, &pt));
    double err = 0;
    for (size_t i = 0; i < h; i++)
        err = fmax(err, cabs(out[i] - conj(v[i])));
    printf("  N=%zu conjugate: %.1f bits\n", p->n, -log2(err));
    CHECK_MSG(-log2(err) >= FLOOR_SMALL, "conjugate %.1f bits", -log2(err));
    ckks_pt_free(&pt);
    ckks_ct_free(&ct);
    ckks_ct_free(&r);
    free(re);
    free(im);
    free(v);
    free(out);
}

/* Textbook key switch of c2 (k = level+1 rows, NTT form) from ring primitives, the way SEAL
 * writes it: every digit [c2]_{q_j} extended to all k+1 primes of Q_l P and multiplied into a
 * full (k+1)-row accumulator pair, then mod-down by P over all rows, then added to (c0, c1).
 * An independent restatement of ckks_relinearize's arithmetic (which fuses the target loop with
 * the mod-down and the addition): the two must agree bit for bit. */
static void relin_reference(uint64_t *c0, uint64_t *c1, const uint64_t *c2, size_t level,
                            const ckks_relin_key *rk, const ckks_params *p)
{
    size_t n = p->n, k = level + 1, nq = p->nq, dw = (nq + 1) * n;
    const ring_context *ctx = p->ring;
    uint64_t *acc = calloc(2 * (k + 1) * n, sizeof *acc), *dig = malloc(k * n * sizeof *dig);
    uint64_t *tmp = malloc(2 * n * sizeof *tmp);
    memcpy(dig, c2, k * n * sizeof *dig);
    ring_poly_ntt_inverse(dig, ctx, k);
    for (size_t j = 0; j < k; j++)
        for (size_t t = 0; t <= k; t++) {
            size_t kt = t < k ? t : nq;
            const ring_prime *pt = &ctx->primes[kt];
            _ring_extend_single(tmp, dig + j * n, &ctx->primes[j], pt);
            _ring_ntt_forward(tmp, pt);
            for (size_t x = 0; x < n; x++) {
                acc[t * n + x] = mq_add(acc[t * n + x],
                                        mq_mul(tmp[x], rk->k.b[j * dw + kt * n + x], &pt->mod),
                                        pt->q);
                acc[(k + 1 + t) * n + x] =
                    mq_add(acc[(k + 1 + t) * n + x],
                           mq_mul(tmp[x], rk->k.a[j * dw + kt * n + x], &pt->mod), pt->q);
            }
        }
    uint64_t *ab = acc, *aa = acc + (k + 1) * n;
    ring_rescale_ntt(ab, k, ab + k * n, nq, ctx, tmp);
    ring_rescale_ntt(aa, k, aa + k * n, nq, ctx, tmp);
    ring_poly_add(c0, c0, ab, ctx, k);
    ring_poly_add(c1, c1, aa, ctx, k);
    free(acc);
    free(dig);
    free(tmp);
}

/* Relinearization at every level of a 4-prime ring, against x*y, and bit for bit against
 * relin_reference. */
static void relin_levels(const ckks_params *p, const ckks_secret_key *sk)
{
    ckks_relin_key rk;
    CHECK_OK(ckks_keygen_relin(&rk, sk));
    size_t h = p->slots;
    double *x = malloc(h * sizeof *x), *y = malloc(h * sizeof *y), *want = malloc(h * sizeof *want),
           *got = malloc(h * sizeof *got);
    ctu_values(x, h, 8);
    ctu_values(y, h, 9);
    for (size_t i = 0; i < h; i++)
        want[i] = x[i] * y[i];
    ckks_ciphertext a = {0}, b = {0};
    for (size_t level = 1; level < p->nq; level++) { /* scale^2 > q_0 at level 0 */
        ctu_encrypt(&a, sk, x, h, level, p->scale);
        ctu_encrypt(&b, sk, y, h, level, p->scale);
        CHECK_OK(ckks_mul(&a, &a, &b));
        size_t cw = (level + 1) * p->n;
        uint64_t *ref = malloc(2 * cw * sizeof *ref);
        memcpy(ref, a.data, 2 * cw * sizeof *ref);
        relin_reference(ref, ref + cw, a.data + 2 * cw, level, &rk, p);
        CHECK_OK(ckks_relinearize(&a, &rk));
        CHECK_MSG(a.size == 2 && !memcmp(a.data, ref, 2 * cw * sizeof *ref),
                  "relin level %zu differs from the reference key switch", level);
        free(ref);
        CHECK_OK(ckks_relinearize(&a, &rk)); /* size 2: no-op */
        a.scale = p->scale;                   /* decode at scale^2 by hand below */
        ctu_decrypt(got, h, sk, &a);
        for (size_t i = 0; i < h; i++)
            got[i] /= p->scale;
        double bits = ctu_bits(got, want, h);
        printf("  N=%zu relin level %zu: %.1f bits, bit-identical to the reference\n", p->n, level,
               bits);
        CHECK_MSG(bits >= FLOOR_SMALL, "relin level %zu: %.1f bits", level, bits);
    }
    ckks_ct_free(&a);
    ckks_ct_free(&b);
    ckks_relin_key_free(&rk);
    free(x);
    free(y);
    free(want);
    free(got);
}

/* The evaluator has no shared mutable state: relinearizing and rotating ciphertexts on several
 * OpenMP threads gives bit-identical results to doing it serially (both are deterministic). */
static void test_threads(const ckks_params *p, const ckks_secret_key *sk,
                         const ckks_galois_keys *gk)
{
    enum { COUNT = 4 };
    ckks_relin_key rk;
    CHECK_OK(ckks_keygen_relin(&rk, sk));
    ckks_ciphertext in[COUNT] = {{0}}, ser[COUNT] = {{0}}, par[COUNT] = {{0}};
    double *v = malloc(p->slots * sizeof *v);
    for (int i = 0; i < COUNT; i++) {
        ctu_values(v, p->slots, (uint64_t)i + 40);
        ctu_encrypt(&in[i], sk, v, p->slots, p->nq - 1, p->scale);
        CHECK_OK(ckks_square(&in[i], &in[i]));
        CHECK_OK(ckks_ct_copy(&ser[i], &in[i]));
        CHECK_OK(ckks_relinearize(&ser[i], &rk));
        CHECK_OK(ckks_rotate(&ser[i], &ser[i], 1, gk));
    }
    int fails = 0;
#pragma omp parallel for num_threads(2) reduction(+ : fails)
    for (int i = 0; i < COUNT; i++) {
        fails += ckks_ct_copy(&par[i], &in[i]) != PPNN_OK;
        fails += ckks_relinearize(&par[i], &rk) != PPNN_OK;
        fails += ckks_rotate(&par[i], &par[i], 1, gk) != PPNN_OK;
    }
    CHECK(fails == 0);
    size_t bytes = 2 * p->nq * p->n * sizeof(uint64_t);
    for (int i = 0; i < COUNT; i++) {
        CHECK(!memcmp(ser[i].data, par[i].data, bytes));
        ckks_ct_free(&in[i]);
        ckks_ct_free(&ser[i]);
        ckks_ct_free(&par[i]);
    }
    free(v);
    ckks_relin_key_free(&rk);
}

/* Hoisted rotations equal ckks_rotate bit for bit, at the top level and one level down, for
 * positive, negative, wrapping and zero steps; a missing key is refused before any output. */
static void hoisted_check(const ckks_params *p, const ckks_secret_key *sk,
                          const ckks_galois_keys *gk)
{
    int steps[] = {1, 0, 2, 5, -1, -7, 511, 1};
    const size_t ns = sizeof steps / sizeof *steps;
    double v[512];
    ctu_values(v, p->slots, 99);
    for (size_t lv = p->nq - 1; lv + 2 >= p->nq; lv--) {
        ckks_ciphertext ct = {0}, one = {0}, many[8] = {{0}};
        ctu_encrypt(&ct, sk, v, p->slots, lv, p->scale);
        CHECK_OK(ckks_rotate_hoisted(many, &ct, steps, ns, gk));
        for (size_t i = 0; i < ns; i++) {
            CHECK_OK(ckks_rotate(&one, &ct, steps[i], gk));
            size_t words = one.size * (one.level + 1) * p->n;
            CHECK(many[i].level == one.level && many[i].size == 2 &&
                  memcmp(many[i].data, one.data, words * sizeof *one.data) == 0);
            /* In place (out = a: rows are overwritten while later rows are still read). */
            ckks_ciphertext self = {0};
            CHECK_OK(ckks_ct_copy(&self, &ct));
            CHECK_OK(ckks_rotate(&self, &self, steps[i], gk));
            CHECK(!memcmp(self.data, one.data, words * sizeof *one.data));
            ckks_ct_free(&self);
        }
        int bad[] = {1, 3};
        CHECK_ERR(ckks_rotate_hoisted(many, &ct, bad, 2, gk), PPNN_ERR_PARAM);
        CHECK(strstr(ppnn_last_error(), "3") != NULL);
        for (size_t i = 0; i < ns; i++)
            ckks_ct_free(&many[i]);
        ckks_ct_free(&one);
        ckks_ct_free(&ct);
    }
    printf("  hoisted rotations: bit-identical to ckks_rotate (%zu steps, 2 levels)\n", ns);
}

/* Coefficients of a Galois key in the standard layout that break its defining relation
 * b_j + a_j s = e_j + P s(X^g) [row j], |e_j| <= RING_CBD_K, over every digit j and prime row t
 * (q_0..q_{nq-1}, P). */
static size_t key_relation_bad(const ckks_params *p, const ckks_secret_key *sk,
                               const ckks_switch_key *k, uint64_t g)
{
    const size_t n = p->n, nq = p->nq, dw = (nq + 1) * n;
    uint32_t *perm = malloc(n * sizeof *perm);
    uint64_t *r = malloc(n * sizeof *r), *t2 = malloc(n * sizeof *t2);
    ckks_galois_perm(perm, p, g);
    size_t bad = 0;
    for (size_t j = 0; j < nq; j++)
        for (size_t t = 0; t <= nq; t++) {
            const ring_prime *pt = &p->ring->primes[t];
            const uint64_t *s = sk->s + t * n;
            _ring_mul(r, k->a + j * dw + t * n, s, pt);
            _ring_add(r, r, k->b + j * dw + t * n, pt);
            if (t == j) { /* minus (P mod q_t) s(X^g): the NTT positions of s through perm */
                for (size_t x = 0; x < n; x++)
                    t2[x] = s[perm[x]];
                _ring_mul_scalar(t2, t2, mq_reduce64(p->ring->primes[nq].q, &pt->mod), pt);
                _ring_sub(r, r, t2, pt);
            }
            _ring_ntt_inverse(r, pt);
            for (size_t x = 0; x < n; x++) {
                uint64_t v = r[x], m = v > pt->q / 2 ? pt->q - v : v;
                bad += m > RING_CBD_K;
            }
        }
    free(perm), free(r), free(t2);
    return bad;
}

/* The hoisting layout is only in memory: a Galois key from keygen or from its file, permuted
 * back (to_hoisted = 0), satisfies the standard key-switching relation exactly, and the file
 * round trip keeps it; the held layout itself does not (so the check can fail). */
static void galois_key_layout(void)
{
    ckks_params *p = ctu_file_params(30);
    ckks_secret_key sk;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    int st3[] = {3};
    ckks_galois_keys gk, gk2;
    CHECK_OK(ckks_keygen_galois(&gk, &sk, st3, 1, 1)); /* a rotation and the conjugation */
    const char *path = ctu_tmp_path("galois.key");
    uint8_t id[CKKS_KEY_ID_BYTES] = {0};
    CHECK_OK(ckks_galois_keys_save(path, &gk, id));
    ckks_params *p2 = NULL;
    CHECK_OK(ckks_galois_keys_load(&gk2, &p2, id, path));
    uint64_t *tmp = malloc(p->n * sizeof *tmp);
    uint32_t *perm = malloc(p->n * sizeof *perm);
    for (size_t g = 0; g < gk.count; g++) {
        CHECK(gk2.elements[g] == gk.elements[g]);
        CHECK_MSG(key_relation_bad(p, &sk, &gk.keys[g], gk.elements[g]) > 0,
                  "element %llu: the held (hoisting) layout passed the standard relation",
                  (unsigned long long)gk.elements[g]);
        ckks_galois_perm(perm, p, gk.elements[g]);
        for (int loaded = 0; loaded < 2; loaded++) {
            ckks_switch_key *k = loaded ? &gk2.keys[g] : &gk.keys[g];
            ckks_switch_key_permute(k, p, perm, 0, tmp);
            size_t bad = key_relation_bad(p, &sk, k, gk.elements[g]);
            CHECK_MSG(bad == 0, "element %llu (%s): %zu coefficients break the key relation",
                      (unsigned long long)gk.elements[g], loaded ? "loaded" : "generated", bad);
        }
    }
    free(tmp), free(perm);
    ckks_galois_keys_free(&gk);
    ckks_galois_keys_free(&gk2);
    ckks_params_free(p2);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
}

int main(void)
{
    /* N = 2^10, primes 50 (q_0), 3 x 30, P 50; scale 2^30. */
    ckks_params *p = ctu_params(10, 4, 50, 30, 50);
    ckks_secret_key sk;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    int steps[] = {1, 2, 5, -1, -7, 511};
    ckks_galois_keys gk;
    CHECK_OK(ckks_keygen_galois(&gk, &sk, steps, 6, 1));
    CHECK(gk.count == 6); /* -1 and 511 are the same rotation mod 512 slots */
    for (size_t i = 0; i < 6; i++)
        rotate_check(p, &sk, &gk, steps[i], FLOOR_SMALL);
    rotate_check(p, &sk, &gk, 0, FLOOR_SMALL); /* no key needed: a copy */
    conjugate_check(p, &sk, &gk);
    hoisted_check(p, &sk, &gk);
    /* Missing keys. */
    ckks_ciphertext ct = {0}, r = {0};
    double v[1] = {1};
    ctu_encrypt(&ct, &sk, v, 1, 0, p->scale);
    CHECK_ERR(ckks_rotate(&r, &ct, 3, &gk), PPNN_ERR_PARAM);
    CHECK(strstr(ppnn_last_error(), "3") != NULL);
    ckks_galois_keys none;
    CHECK_OK(ckks_keygen_galois(&none, &sk, NULL, 0, 0));
    CHECK_ERR(ckks_conjugate(&r, &ct, &none), PPNN_ERR_PARAM);
    ckks_galois_keys_free(&none);
    ckks_ct_free(&ct);
    ckks_ct_free(&r);
    relin_levels(p, &sk);
    test_threads(p, &sk, &gk);
    /* The a part of a Galois key is the expansion of its seed, held in the hoisting layout:
     * every row permuted by sigma^-1 (ckks_switch_key_permute), and back again exactly. */
    size_t kw = p->nq * (p->nq + 1) * p->n;
    uint64_t *a = malloc(kw * sizeof *a), *b = calloc(kw, sizeof *b);
    uint64_t *tmp = malloc(p->n * sizeof *tmp);
    uint32_t *perm = malloc(p->n * sizeof *perm);
    ckks_switch_key copy = gk.keys[0];
    copy.a = a;
    copy.b = b;
    ckks_switch_key_expand_a(&copy, p);
    CHECK(memcmp(a, gk.keys[0].a, kw * sizeof *a) != 0); /* not the standard layout */
    ckks_galois_perm(perm, p, gk.elements[0]);
    ckks_switch_key_permute(&copy, p, perm, 1, tmp); /* b: whatever the buffer held */
    CHECK(!memcmp(a, gk.keys[0].a, kw * sizeof *a));
    memcpy(b, gk.keys[0].b, kw * sizeof *b);
    ckks_switch_key_permute(&copy, p, perm, 0, tmp);
    ckks_switch_key_permute(&copy, p, perm, 1, tmp);
    CHECK(!memcmp(a, gk.keys[0].a, kw * sizeof *a) && !memcmp(b, gk.keys[0].b, kw * sizeof *b));
    free(a), free(b), free(tmp), free(perm);
    ckks_galois_keys_free(&gk);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
    galois_key_layout();

    ckks_spec s;
    CHECK_OK(ckks_preset(&s, "n13"));
    CHECK_OK(ckks_params_new(&p, &s));
    CHECK_OK(ckks_keygen_secret(&sk, p));
    int st13[] = {3};
    CHECK_OK(ckks_keygen_galois(&gk, &sk, st13, 1, 0));
    rotate_check(p, &sk, &gk, 3, FLOOR_N13);
    ckks_galois_keys_free(&gk);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
    return tu_finish("test_ckks_keyswitch");
}
