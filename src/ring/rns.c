/* RNS basis (ring_context), polynomial-level helpers, exact rescale / mod-down. */
#include "inner.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#define RING_MAX_PRIMES 64

ppnn_status ring_context_new(ring_context **out, unsigned logn, const uint64_t *primes,
                             size_t nprimes, ring_impl impl)
{
    *out = NULL;
    if (nprimes < 1 || nprimes > RING_MAX_PRIMES)
        return ppnn_fail(PPNN_ERR_PARAM, "RNS basis needs 1..%d primes (got %zu)",
                         RING_MAX_PRIMES, nprimes);
    for (size_t i = 0; i < nprimes; i++)
        for (size_t j = 0; j < i; j++)
            if (primes[i] == primes[j])
                return ppnn_fail(PPNN_ERR_PARAM, "RNS basis lists prime %llu twice",
                                 (unsigned long long)primes[i]);
    ring_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for an RNS context");
    ctx->logn = logn;
    ctx->n = (size_t)1 << logn;
    ctx->primes = calloc(nprimes, sizeof *ctx->primes);
    ctx->qinv = calloc(nprimes * nprimes, sizeof(uint64_t));
    if (!ctx->primes || !ctx->qinv) {
        ring_context_free(ctx);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for an RNS context");
    }
    for (size_t i = 0; i < nprimes; i++) {
        ppnn_status st = ring_prime_init_impl(&ctx->primes[i], primes[i], logn, impl);
        ctx->nprimes = i + 1; /* so that free releases what was built */
        if (st != PPNN_OK) {
            ring_context_free(ctx);
            return st;
        }
    }
    for (size_t i = 0; i < nprimes; i++) {
        const ring_prime *pi = &ctx->primes[i];
        for (size_t j = 0; j < nprimes; j++) {
            if (i == j)
                continue;
            ctx->qinv[i * nprimes + j] = mq_inv(mq_reduce64(primes[j], &pi->mod), &pi->mod);
        }
    }
    *out = ctx;
    return PPNN_OK;
}

void ring_context_free(ring_context *ctx)
{
    if (!ctx)
        return;
    if (ctx->primes)
        for (size_t i = 0; i < ctx->nprimes; i++)
            ring_prime_free(&ctx->primes[i]);
    free(ctx->primes);
    free(ctx->qinv);
    free(ctx);
}

/* ---- polynomial-level loops over the primes ---- */
void ring_poly_ntt_forward(uint64_t *a, const ring_context *ctx, size_t nprimes)
{
    assert(nprimes <= ctx->nprimes);
    for (size_t i = 0; i < nprimes; i++)
        _ring_ntt_forward(a + i * ctx->n, &ctx->primes[i]);
}

void ring_poly_ntt_inverse(uint64_t *a, const ring_context *ctx, size_t nprimes)
{
    assert(nprimes <= ctx->nprimes);
    for (size_t i = 0; i < nprimes; i++)
        _ring_ntt_inverse(a + i * ctx->n, &ctx->primes[i]);
}

typedef void (*binary_kernel)(uint64_t *, const uint64_t *, const uint64_t *, const ring_prime *);

static void poly_binary(binary_kernel k, uint64_t *r, const uint64_t *a, const uint64_t *b,
                        const ring_context *ctx, size_t nprimes)
{
    assert(nprimes <= ctx->nprimes);
    const size_t n = ctx->n;
    for (size_t i = 0; i < nprimes; i++)
        k(r + i * n, a + i * n, b + i * n, &ctx->primes[i]);
}

void ring_poly_add(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_context *ctx,
                   size_t nprimes)
{
    poly_binary(_ring_add, r, a, b, ctx, nprimes);
}

void ring_poly_sub(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_context *ctx,
                   size_t nprimes)
{
    poly_binary(_ring_sub, r, a, b, ctx, nprimes);
}

void ring_poly_mul(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_context *ctx,
                   size_t nprimes)
{
    poly_binary(_ring_mul, r, a, b, ctx, nprimes);
}

void ring_poly_muladd(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_context *ctx,
                      size_t nprimes)
{
    poly_binary(_ring_muladd, r, a, b, ctx, nprimes);
}

void ring_poly_neg(uint64_t *r, const uint64_t *a, const ring_context *ctx, size_t nprimes)
{
    assert(nprimes <= ctx->nprimes);
    for (size_t i = 0; i < nprimes; i++)
        _ring_neg(r + i * ctx->n, a + i * ctx->n, &ctx->primes[i]);
}

void ring_poly_mul_scalar(uint64_t *r, const uint64_t *a, const uint64_t *w,
                          const ring_context *ctx, size_t nprimes)
{
    assert(nprimes <= ctx->nprimes);
    for (size_t i = 0; i < nprimes; i++)
        _ring_mul_scalar(r + i * ctx->n, a + i * ctx->n, w[i], &ctx->primes[i]);
}

void ring_poly_from_int64(uint64_t *r, const int64_t *a, const ring_context *ctx, size_t nprimes)
{
    assert(nprimes <= ctx->nprimes);
    const size_t n = ctx->n;
    /* Common case (secrets, errors, small messages): every |a_j| < q_i, so a_j mod q_i is
     * a_j or a_j + q_i, a branch-free loop the compiler vectorises. */
    uint64_t maxabs = 0;
    for (size_t j = 0; j < n; j++) {
        uint64_t v = a[j] < 0 ? (uint64_t)0 - (uint64_t)a[j] : (uint64_t)a[j];
        maxabs = v > maxabs ? v : maxabs;
    }
    for (size_t i = 0; i < nprimes; i++) {
        const mq_modulus *m = &ctx->primes[i].mod;
        const uint64_t q = m->q;
        uint64_t *ri = r + i * n;
        if (maxabs < q) {
            for (size_t j = 0; j < n; j++) /* branch-free: signs of errors are coin flips */
                ri[j] = (uint64_t)a[j] + (q & -(uint64_t)(a[j] < 0));
        } else {
            for (size_t j = 0; j < n; j++)
                ri[j] = mq_from_int64(a[j], m);
        }
    }
}

/* ---- rescale / mod-down ----
 * With c = the centered representative of x mod q_l (in (-q_l/2, q_l/2], computed from the
 * last component alone), x - c is divisible by q_l and (x - c) / q_l = round(x / q_l) exactly
 * (q_l is odd, so there are no ties). Modulo each kept q_i that is (a_i - [c]_{q_i}) * q_l^-1,
 * and [c]_{q_i} is the single-prime basis extension of the last component. */
/* Kept row i: a_i <- (a_i - [c]_{q_i}) * q_last^-1 with lc = c in coefficient form. */
static void rescale_row(uint64_t *ai, size_t i, const uint64_t *lc, size_t last_idx,
                        const ring_context *ctx, uint64_t *e, int ntt)
{
    const ring_prime *pi = &ctx->primes[i], *pl = &ctx->primes[last_idx];
    _ring_extend_single(e, lc, pl, pi);
    if (ntt)
        _ring_ntt_forward(e, pi);
    _ring_sub_mul_scalar(ai, ai, e, ctx->qinv[i * ctx->nprimes + last_idx], pi);
}

static void rescale(uint64_t *a, size_t nkeep, const uint64_t *last, size_t last_idx,
                    const ring_context *ctx, uint64_t *tmp, int ntt)
{
    assert(nkeep <= last_idx && last_idx < ctx->nprimes);
    const size_t n = ctx->n;
    uint64_t *y = tmp, *e = tmp + n;
    const uint64_t *lc = last;
    if (ntt) {
        memcpy(y, last, n * sizeof *y);
        _ring_ntt_inverse(y, &ctx->primes[last_idx]);
        lc = y;
    }
    for (size_t i = 0; i < nkeep; i++)
        rescale_row(a + i * n, i, lc, last_idx, ctx, e, ntt);
}

void ring_rescale_row_ntt(uint64_t *ai, size_t i, const uint64_t *last_coeff, size_t last_idx,
                          const ring_context *ctx, uint64_t *tmp)
{
    assert(i < last_idx && last_idx < ctx->nprimes);
    rescale_row(ai, i, last_coeff, last_idx, ctx, tmp, 1);
}

void ring_rescale_ntt(uint64_t *a, size_t nkeep, const uint64_t *last, size_t last_idx,
                      const ring_context *ctx, uint64_t *tmp)
{
    rescale(a, nkeep, last, last_idx, ctx, tmp, 1);
}

void ring_rescale_coeff(uint64_t *a, size_t nkeep, const uint64_t *last, size_t last_idx,
                        const ring_context *ctx, uint64_t *tmp)
{
    rescale(a, nkeep, last, last_idx, ctx, tmp, 0);
}
