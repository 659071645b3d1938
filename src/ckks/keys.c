/* Key generation: ternary secret, public key, key-switching keys (relinearization, Galois).
 * Key-switching layout and scheme: see ckks.h (SEAL-style, one special prime P, one digit per
 * ciphertext prime). */
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"

/* NTT form of a fresh centered-binomial error over the first np primes. e_int: N scratch. */
void ckks_sample_error_ntt(uint64_t *out, const ckks_params *params, size_t np, ring_prg *g,
                           int64_t *e_int)
{
    ring_sample_cbd(e_int, params->n, g);
    ring_poly_from_int64(out, e_int, params->ring, np);
    ring_poly_ntt_forward(out, params->ring, np);
}

ppnn_status ckks_keygen_secret(ckks_secret_key *sk, const ckks_params *params)
{
    memset(sk, 0, sizeof *sk);
    size_t n = params->n, np = params->nq + 1;
    int64_t *s_int = sodium_malloc(n * sizeof *s_int);
    sk->s = sodium_malloc(np * n * sizeof *sk->s);
    if (!s_int || !sk->s) {
        sodium_free(s_int);
        sodium_free(sk->s);
        sk->s = NULL;
        return ppnn_fail(PPNN_ERR_NOMEM, "out of secure memory for the secret key");
    }
    ring_prg g;
    ring_prg_init_fresh(&g);
    ring_sample_ternary(s_int, n, &g);
    ring_prg_wipe(&g);
    ring_poly_from_int64(sk->s, s_int, params->ring, np);
    ring_poly_ntt_forward(sk->s, params->ring, np);
    sodium_free(s_int); /* sodium_free wipes */
    sk->params = params;
    return PPNN_OK;
}

void ckks_secret_key_free(ckks_secret_key *sk)
{
    if (!sk)
        return;
    sodium_free(sk->s);
    sk->s = NULL;
    sk->params = NULL;
}

ppnn_status ckks_keygen_public(ckks_public_key *pk, const ckks_secret_key *sk)
{
    const ckks_params *params = sk->params;
    size_t n = params->n, np = params->nq;
    memset(pk, 0, sizeof *pk);
    pk->b = malloc(np * n * sizeof *pk->b);
    pk->a = malloc(np * n * sizeof *pk->a);
    int64_t *e_int = malloc(n * sizeof *e_int);
    uint64_t *e = malloc(np * n * sizeof *e);
    if (!pk->a || !pk->b || !e_int || !e) {
        free(e_int);
        free(e);
        ckks_public_key_free(pk);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the public key");
    }
    ring_seed_random(pk->seed);
    ring_sample_uniform(pk->a, params->ring, np, pk->seed, 0);
    ring_prg g;
    ring_prg_init_fresh(&g);
    ckks_sample_error_ntt(e, params, np, &g, e_int);
    ring_prg_wipe(&g);
    /* b = e - a*s */
    ring_poly_mul(pk->b, pk->a, sk->s, params->ring, np);
    ring_poly_sub(pk->b, e, pk->b, params->ring, np);
    sodium_memzero(e, np * n * sizeof *e);
    sodium_memzero(e_int, n * sizeof *e_int);
    free(e);
    free(e_int);
    pk->params = params;
    return PPNN_OK;
}

void ckks_public_key_free(ckks_public_key *pk)
{
    if (!pk)
        return;
    free(pk->a);
    free(pk->b);
    memset(pk, 0, sizeof *pk);
}

void ckks_switch_key_expand_a(ckks_switch_key *k, const ckks_params *params)
{
    size_t np = params->nq + 1, dw = np * params->n;
    for (size_t j = 0; j < params->nq; j++)
        ring_sample_uniform(k->a + j * dw, params->ring, np, k->seed, j);
}

/* Key switching key from s2 (NTT form over all nq+1 primes) to sk->s. */
static ppnn_status gen_switch_key(ckks_switch_key *k, const ckks_secret_key *sk,
                                  const uint64_t *s2)
{
    const ckks_params *params = sk->params;
    size_t n = params->n, nq = params->nq, np = nq + 1, dw = np * n;
    size_t bytes = 2 * nq * dw * sizeof(uint64_t);
    if (bytes > CKKS_MAX_SWITCH_KEY_BYTES)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "a key-switching key for N = %zu with %zu primes would take %.1f GiB "
                         "(limit 2 GiB): use fewer primes",
                         n, nq, (double)bytes / (double)(1u << 30));
    k->a = malloc(nq * dw * sizeof *k->a);
    k->b = malloc(nq * dw * sizeof *k->b);
    int64_t *e_int = malloc(n * sizeof *e_int);
    uint64_t *as = malloc(dw * sizeof *as);
    if (!k->a || !k->b || !e_int || !as) {
        free(e_int);
        free(as);
        free(k->a);
        free(k->b);
        k->a = k->b = NULL;
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for a key-switching key");
    }
    ring_seed_random(k->seed); /* public: a_j = expand(seed) */
    ckks_switch_key_expand_a(k, params);
    ring_prg g;
    ring_prg_init_fresh(&g);
    uint64_t p_big = params->ring->primes[nq].q;
    for (size_t j = 0; j < nq; j++) {
        uint64_t *a = k->a + j * dw, *b = k->b + j * dw;
        const ring_prime *pj = &params->ring->primes[j];
        ckks_sample_error_ntt(b, params, np, &g, e_int);
        /* b = e - a*s in every row, then + (P mod q_j) * s2 in row j only. */
        ring_poly_mul(as, a, sk->s, params->ring, np);
        ring_poly_sub(b, b, as, params->ring, np);
        _ring_mul_scalar(as, s2 + j * n, mq_reduce64(p_big, &pj->mod), pj);
        _ring_add(b + j * n, b + j * n, as, pj);
    }
    sodium_memzero(as, dw * sizeof *as);
    free(as);
    ring_prg_wipe(&g);
    sodium_memzero(e_int, n * sizeof *e_int);
    free(e_int);
    return PPNN_OK;
}

static void free_switch_key(ckks_switch_key *k)
{
    free(k->a);
    free(k->b);
    k->a = k->b = NULL;
}

ppnn_status ckks_keygen_relin(ckks_relin_key *rk, const ckks_secret_key *sk)
{
    const ckks_params *params = sk->params;
    size_t np = params->nq + 1, n = params->n;
    memset(rk, 0, sizeof *rk);
    uint64_t *s2 = sodium_malloc(np * n * sizeof *s2);
    if (!s2)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of secure memory for s^2");
    ring_poly_mul(s2, sk->s, sk->s, params->ring, np);
    ppnn_status st = gen_switch_key(&rk->k, sk, s2);
    sodium_free(s2);
    if (st)
        return st;
    rk->params = params;
    return PPNN_OK;
}

void ckks_relin_key_free(ckks_relin_key *rk)
{
    if (!rk)
        return;
    free_switch_key(&rk->k);
    rk->params = NULL;
}

uint64_t ckks_galois_rotation(const ckks_params *params, int step)
{
    uint64_t m = 2 * (uint64_t)params->n, slots = params->slots;
    int64_t s = step % (int64_t)slots;
    if (s < 0)
        s += (int64_t)slots;
    uint64_t g = 1;
    for (int64_t i = 0; i < s; i++)
        g = g * 5 % m;
    return g;
}

uint64_t ckks_galois_conjugation(const ckks_params *params)
{
    return 2 * (uint64_t)params->n - 1;
}

/* Permutation of NTT positions realising X -> X^g: (sigma_g a)[k] = a[perm[k]]. Position k
 * holds the evaluation at psi^(2 brv(k) + 1) (ring.h); sigma_g(a) there equals a at
 * psi^(g (2 brv(k) + 1)), whose exponent is odd, 2m+1 -> position brv(m). */
void ckks_galois_perm(uint32_t *perm, const ckks_params *params, uint64_t g)
{
    size_t n = params->n;
    const uint32_t *brv = params->inner->brv;
    uint64_t mask = 2 * (uint64_t)n - 1;
    for (size_t k = 0; k < n; k++) {
        uint64_t e = (g * (2 * (uint64_t)brv[k] + 1)) & mask;
        perm[k] = brv[(e - 1) >> 1];
    }
}

void ckks_switch_key_permute(ckks_switch_key *k, const ckks_params *params, const uint32_t *perm,
                             int to_hoisted, uint64_t *tmp)
{
    const size_t n = params->n, rows = params->nq * (params->nq + 1);
    for (int part = 0; part < 2; part++)
        for (size_t r = 0; r < rows; r++) {
            uint64_t *row = (part ? k->a : k->b) + r * n;
            memcpy(tmp, row, n * sizeof *tmp);
            if (to_hoisted)
                for (size_t x = 0; x < n; x++)
                    row[perm[x]] = tmp[x];
            else
                for (size_t x = 0; x < n; x++)
                    row[x] = tmp[perm[x]];
        }
}

ppnn_status ckks_keygen_galois(ckks_galois_keys *gk, const ckks_secret_key *sk, const int *steps,
                               size_t nsteps, int conjugate)
{
    const ckks_params *params = sk->params;
    size_t n = params->n, np = params->nq + 1;
    memset(gk, 0, sizeof *gk);
    gk->params = params;
    size_t cap = nsteps + (conjugate ? 1 : 0);
    gk->elements = malloc((cap ? cap : 1) * sizeof *gk->elements);
    gk->keys = calloc(cap ? cap : 1, sizeof *gk->keys);
    uint32_t *perm = malloc(n * sizeof *perm);
    uint64_t *s2 = sodium_malloc(np * n * sizeof *s2), *tmp = malloc(n * sizeof *tmp);
    ppnn_status st = PPNN_OK;
    if (!gk->elements || !gk->keys || !perm || !s2 || !tmp) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory for Galois keys");
        goto done;
    }
    for (size_t t = 0; t < cap; t++) {
        uint64_t g = t < nsteps ? ckks_galois_rotation(params, steps[t])
                                : ckks_galois_conjugation(params);
        int dup = g == 1;
        for (size_t u = 0; u < gk->count; u++)
            dup |= gk->elements[u] == g;
        if (dup)
            continue;
        ckks_galois_perm(perm, params, g);
        for (size_t i = 0; i < np; i++)
            for (size_t x = 0; x < n; x++)
                s2[i * n + x] = sk->s[i * n + perm[x]];
        st = gen_switch_key(&gk->keys[gk->count], sk, s2);
        if (st)
            goto done;
        ckks_switch_key_permute(&gk->keys[gk->count], params, perm, 1, tmp);
        gk->elements[gk->count++] = g;
    }
done:
    free(tmp);
    free(perm);
    sodium_free(s2);
    if (st)
        ckks_galois_keys_free(gk);
    return st;
}

void ckks_galois_keys_free(ckks_galois_keys *gk)
{
    if (!gk)
        return;
    for (size_t i = 0; gk->keys && i < gk->count; i++)
        free_switch_key(&gk->keys[i]);
    free(gk->keys);
    free(gk->elements);
    memset(gk, 0, sizeof *gk);
}
