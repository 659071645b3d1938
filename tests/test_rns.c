/* RNS basis: context refusals, int64 -> RNS, exact rescale / mod-down (NTT and coefficient
 * domains) vs a 128-bit CRT reference, single-prime basis extension, poly-level products. */
#include <stdlib.h>
#include <string.h>

#include "ppnn/ring.h"
#include "testrng.h"
#include "testutil.h"

__extension__ typedef __int128 s128;

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p)
        abort();
    return p;
}

/* CRT reference: the value in [0, M) with residues r[i] mod q[i], M = prod q[i] < 2^127. */
static mq_u128 crt(const uint64_t *r, const uint64_t *q, size_t k)
{
    mq_u128 x = 0, M = 1;
    for (size_t i = 0; i < k; i++) {
        /* x' = x + M * t with t = (r_i - x) * M^-1 mod q_i. */
        mq_modulus m;
        mq_modulus_init(&m, q[i]);
        uint64_t xm = (uint64_t)(x % q[i]), Mm = (uint64_t)(M % q[i]);
        uint64_t t = mq_mul(mq_sub(r[i], xm, q[i]), mq_inv(Mm, &m), &m);
        x += M * t;
        M *= q[i];
    }
    return x;
}

static void test_context(void)
{
    ring_context *ctx = NULL;
    uint64_t q[3];
    CHECK_OK(mq_find_ntt_primes(q, 3, 30, 1 << 11, NULL, 0));
    uint64_t dup[2] = {q[0], q[0]};
    CHECK_ERR(ring_context_new(&ctx, 10, dup, 2, RING_IMPL_AUTO), PPNN_ERR_PARAM);
    CHECK(ctx == NULL);
    uint64_t bad[2] = {q[0], 7681}; /* 7681 - 1 = 15 * 2^9: not 1 mod 2N = 2^11 */
    CHECK_ERR(ring_context_new(&ctx, 10, bad, 2, RING_IMPL_AUTO), PPNN_ERR_PARAM);
    CHECK_ERR(ring_context_new(&ctx, 10, q, 0, RING_IMPL_AUTO), PPNN_ERR_PARAM);
    CHECK_ERR(ring_context_new(&ctx, 18, q, 3, RING_IMPL_AUTO), PPNN_ERR_PARAM);
    uint64_t big[2];
    CHECK_OK(mq_find_ntt_primes(big, 1, 55, 1 << 11, NULL, 0));
    if (ring_cpu_has_avx512ifma())
        CHECK_ERR(ring_context_new(&ctx, 10, big, 1, RING_IMPL_AVX512), PPNN_ERR_UNSUPPORTED);
    ring_context_free(NULL);
    CHECK_OK(ring_context_new(&ctx, 10, q, 3, RING_IMPL_AUTO));
    if (ctx) {
        CHECK(ctx->n == 1024 && ctx->nprimes == 3);
        for (size_t i = 0; i < 3; i++)
            for (size_t j = 0; j < 3; j++)
                if (i != j)
                    CHECK(mq_mul(ctx->qinv[i * 3 + j], q[j] % q[i], &ctx->primes[i].mod) == 1);
        int64_t small[1024];
        uint64_t s = 4, *r = xmalloc(3 * 1024 * sizeof *r);
        for (size_t j = 0; j < 1024; j++)
            small[j] = (int64_t)trng_next(&s) >> (j % 64);
        small[0] = INT64_MIN;
        small[1] = -1;
        /* Pass 0: full int64 range (Barrett path); pass 1: |a_j| < q (fast path). */
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1)
                for (size_t j = 0; j < 1024; j++)
                    small[j] = (int64_t)(trng_next(&s) % (2 * q[2] - 1)) - (int64_t)(q[2] - 1);
            ring_poly_from_int64(r, small, ctx, 3);
            int badv = 0;
            for (size_t i = 0; i < 3; i++)
                for (size_t j = 0; j < 1024; j++) {
                    s128 ref = (s128)small[j] % (s128)q[i];
                    badv += r[i * 1024 + j] != (uint64_t)(ref < 0 ? ref + q[i] : ref);
                }
            CHECK_MSG(badv == 0, "pass %d", pass);
        }
        free(r);
    }
    ring_context_free(ctx);
}

/* Rescale by the last prime and mod-down by a "special" prime that is not adjacent (basis
 * {q0, q1, q2, P}, dividing {q0, q1} by P), both domains, vs round(x / q_last) from CRT. */
static void test_rescale(void)
{
    const unsigned logn = 6;
    const size_t n = 64;
    uint64_t q[4];
    /* 31-bit primes: x < q^4 < 2^124 fits the 128-bit reference. */
    CHECK_OK(mq_find_ntt_primes(q, 4, 31, 2 * n, NULL, 0));
    for (int impl = RING_IMPL_PORTABLE; impl <= RING_IMPL_AVX512DQ; impl++) {
        if (impl == RING_IMPL_AVX512 && !ring_cpu_has_avx512ifma())
            continue;
        if (impl == RING_IMPL_AVX512DQ && ring_best_impl(q[0]) == RING_IMPL_PORTABLE)
            continue;
        ring_context *ctx;
        CHECK_OK(ring_context_new(&ctx, logn, q, 4, (ring_impl)impl));
        if (!ctx)
            return;
        uint64_t *a = xmalloc(4 * n * 8), *orig = xmalloc(4 * n * 8), *tmp = xmalloc(2 * n * 8);
        uint64_t s = 99 + (uint64_t)impl;
        static const struct {
            size_t nkeep, last;
        } cases[] = {{3, 3}, {2, 3}, {1, 2}, {2, 2}, {0, 1}};
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            const size_t nkeep = cases[c].nkeep, last = cases[c].last;
            for (int ntt = 0; ntt < 2; ntt++) {
                for (size_t i = 0; i < 4 * n; i++)
                    orig[i] = trng_mod(&s, q[i / n]);
                memcpy(a, orig, 4 * n * 8);
                if (ntt) {
                    ring_poly_ntt_forward(a, ctx, 4);
                    ring_rescale_ntt(a, nkeep, a + last * n, last, ctx, tmp);
                    ring_poly_ntt_inverse(a, ctx, nkeep);
                } else {
                    ring_rescale_coeff(a, nkeep, a + last * n, last, ctx, tmp);
                }
                int bad = 0;
                uint64_t qs[4], rs[4];
                for (size_t j = 0; j < n; j++) {
                    for (size_t i = 0; i < nkeep; i++)
                        qs[i] = q[i], rs[i] = orig[i * n + j];
                    qs[nkeep] = q[last], rs[nkeep] = orig[last * n + j];
                    mq_u128 x = crt(rs, qs, nkeep + 1);
                    mq_u128 rounded = (x + q[last] / 2) / q[last]; /* q odd: no ties */
                    for (size_t i = 0; i < nkeep; i++)
                        bad += a[i * n + j] != (uint64_t)(rounded % q[i]);
                }
                CHECK_MSG(bad == 0, "nkeep %zu last %zu ntt %d impl %d: %d wrong", nkeep, last,
                          ntt, impl, bad);
            }
        }
        free(a), free(orig), free(tmp);
        ring_context_free(ctx);
    }
}

static void test_extend(void)
{
    const unsigned logn = 5;
    const size_t n = 32;
    uint64_t q[4];
    CHECK_OK(mq_find_ntt_primes(q, 1, 60, 2 * n, NULL, 0));
    CHECK_OK(mq_find_ntt_primes(q + 1, 1, 25, 2 * n, NULL, 0));
    CHECK_OK(mq_find_ntt_primes(q + 2, 1, 45, 2 * n, NULL, 0));
    CHECK_OK(mq_find_ntt_primes(q + 3, 1, 49, 2 * n, NULL, 0));
    for (int impl = RING_IMPL_AUTO; impl <= RING_IMPL_PORTABLE; impl++) {
        ring_context *ctx;
        CHECK_OK(ring_context_new(&ctx, logn, q, 4, (ring_impl)impl));
        if (!ctx)
            return;
        uint64_t a[32], r[32], s = 8;
        int bad = 0;
        for (size_t from = 0; from < 4; from++)
            for (size_t to = 0; to < 4; to++) {
                for (size_t j = 0; j < n; j++)
                    a[j] = trng_mod(&s, q[from]);
                a[0] = q[from] / 2;     /* largest positive */
                a[1] = q[from] / 2 + 1; /* most negative */
                /* -q_to and +q_to (multiples of q_to: the result must be 0, not q_to). */
                a[2] = q[from] > q[to] ? q[from] - q[to] : q[from] - 1;
                a[3] = q[to] <= q[from] / 2 ? q[to] : 1;
                _ring_extend_single(r, a, &ctx->primes[from], &ctx->primes[to]);
                for (size_t j = 0; j < n; j++) {
                    s128 v = (s128)a[j] > (s128)(q[from] / 2) ? (s128)a[j] - (s128)q[from]
                                                             : (s128)a[j];
                    s128 ref = v % (s128)q[to];
                    bad += r[j] != (uint64_t)(ref < 0 ? ref + q[to] : ref);
                }
            }
        CHECK_MSG(bad == 0, "impl %d: %d wrong", impl, bad);
        ring_context_free(ctx);
    }
}

/* Poly-level helpers against the per-prime kernels and a negacyclic product at N = 16. */
static void test_poly_ops(void)
{
    const unsigned logn = 4;
    const size_t n = 16;
    uint64_t q[2];
    CHECK_OK(mq_find_ntt_primes(q, 2, 40, 2 * n, NULL, 0));
    ring_context *ctx;
    CHECK_OK(ring_context_new(&ctx, logn, q, 2, RING_IMPL_AUTO));
    if (!ctx)
        return;
    int64_t x[16] = {0}, y[16] = {0};
    x[15] = 3;  /* 3 X^15 */
    y[1] = -2;  /* -2 X   */
    y[0] = 5;
    uint64_t a[32], b[32], r[32], acc[32];
    ring_poly_from_int64(a, x, ctx, 2);
    ring_poly_from_int64(b, y, ctx, 2);
    ring_poly_ntt_forward(a, ctx, 2);
    ring_poly_ntt_forward(b, ctx, 2);
    ring_poly_mul(r, a, b, ctx, 2);
    memset(acc, 0, sizeof acc);
    ring_poly_muladd(acc, a, b, ctx, 2);
    ring_poly_muladd(acc, a, b, ctx, 2);
    ring_poly_ntt_inverse(r, ctx, 2);
    ring_poly_ntt_inverse(acc, ctx, 2);
    /* 3X^15 (5 - 2X) = 15 X^15 - 6 X^16 = 6 + 15 X^15 (mod X^16 + 1). */
    for (size_t i = 0; i < 2; i++) {
        for (size_t j = 0; j < n; j++) {
            uint64_t want = j == 0 ? 6 : j == 15 ? 15 : 0;
            CHECK(r[i * n + j] == want);
            CHECK(acc[i * n + j] == 2 * want);
        }
    }
    uint64_t w[2] = {q[0] - 1, 7};
    ring_poly_mul_scalar(r, r, w, ctx, 2); /* times -1 mod q0, 7 mod q1 */
    CHECK(r[0] == q[0] - 6 && r[15] == q[0] - 15 && r[n] == 42 && r[n + 15] == 105);
    ring_poly_neg(r, r, ctx, 2);
    CHECK(r[0] == 6 && r[n] == q[1] - 42);
    ring_poly_add(r, r, r, ctx, 2);
    CHECK(r[0] == 12 && r[15] == 30);
    ring_poly_sub(r, r, r, ctx, 2);
    int zero = 1;
    for (size_t j = 0; j < 2 * n; j++)
        zero &= r[j] == 0;
    CHECK(zero);
    ring_context_free(ctx);
}

int main(void)
{
    test_context();
    test_rescale();
    test_extend();
    test_poly_ops();
    return tu_finish("test_rns");
}
