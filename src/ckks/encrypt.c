/* Encryption (public key, seeded secret key) and decryption. */
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"

void ckks_expand_seed(uint64_t *out, const ckks_params *params, size_t level,
                      const uint8_t seed[CKKS_SEED_BYTES])
{
    /* ring_sample_uniform consumes the stream prime by prime, so the expansion at a lower
     * level is a prefix of the expansion at a higher one. */
    ring_sample_uniform(out, params->ring, level + 1, seed, 0);
}

ppnn_status ckks_encrypt_pk(ckks_ciphertext *ct, const ckks_public_key *pk,
                            const ckks_plaintext *pt)
{
    ppnn_status st = ckks_check_params(pk->params, pt->params, "encrypt");
    if (st)
        return st;
    const ckks_params *params = pk->params;
    size_t n = params->n, np = pt->level + 1, cw = np * n;
    int64_t *v_int = malloc(n * sizeof *v_int);
    uint64_t *v = malloc(cw * sizeof *v);
    if (!v_int || !v) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "encrypt: out of memory");
        goto done;
    }
    st = ckks_ct_shape(ct, params, pt->level, 2, pt->scale);
    if (st)
        goto done;
    ring_prg g;
    ring_prg_init_fresh(&g);
    ring_sample_ternary(v_int, n, &g);
    ring_poly_from_int64(v, v_int, params->ring, np);
    ring_poly_ntt_forward(v, params->ring, np);
    uint64_t *c0 = ct->data, *c1 = ct->data + cw;
    /* c0 = v*b + e0 + m, c1 = v*a + e1 (pk rows 0..level are the key at this level). */
    ckks_sample_error_ntt(c0, params, np, &g, v_int);
    ring_poly_muladd(c0, v, pk->b, params->ring, np);
    ring_poly_add(c0, c0, pt->data, params->ring, np);
    ckks_sample_error_ntt(c1, params, np, &g, v_int);
    ring_poly_muladd(c1, v, pk->a, params->ring, np);
    ring_prg_wipe(&g);
    sodium_memzero(v, cw * sizeof *v);
    sodium_memzero(v_int, n * sizeof *v_int);
done:
    free(v_int);
    free(v);
    return st;
}

/* c0 <- c0 - c1*s over np primes, row by row through the N-word scratch t (wiped after: a
 * row of a*s with c1 would give a row of s). */
static void sub_a_s(ckks_ciphertext *ct, const ckks_secret_key *sk, size_t np, uint64_t *t)
{
    const ckks_params *params = sk->params;
    size_t n = params->n, cw = np * n;
    uint64_t *c0 = ct->data, *c1 = ct->data + cw;
    for (size_t i = 0; i < np; i++) {
        const ring_prime *pr = &params->ring->primes[i];
        _ring_mul(t, c1 + i * n, sk->s + i * n, pr);
        _ring_sub(c0 + i * n, c0 + i * n, t, pr);
    }
    sodium_memzero(t, n * sizeof *t);
}

/* Fresh seed -> c1; fresh error e -> added to c0 (rows: NTT form when ntt, else coefficient
 * form, then c0 is transformed). Randomness is drawn in the same order on both paths: the
 * seed (randombytes), then the error's PRG key (randombytes). */
static void add_c1_and_error(ckks_ciphertext *ct, const ckks_params *params, size_t np,
                             int64_t *e_int, uint64_t *e_row, int ntt)
{
    size_t n = params->n, cw = np * n;
    uint64_t *c0 = ct->data, *c1 = ct->data + cw;
    ring_seed_random(ct->seed);
    ckks_expand_seed(c1, params, np - 1, ct->seed);
    ring_prg g;
    ring_prg_init_fresh(&g);
    ring_sample_cbd(e_int, n, &g);
    ring_prg_wipe(&g);
    for (size_t i = 0; i < np; i++) {
        const ring_prime *pr = &params->ring->primes[i];
        /* |e| <= RING_CBD_K < q_i: e mod q_i is e + (q_i if e < 0), branch-free (the sign
         * of e is a coin flip: a branch mispredicts half the time). */
        for (size_t j = 0; j < n; j++)
            e_row[j] = (uint64_t)e_int[j] + (pr->q & -(uint64_t)(e_int[j] < 0));
        if (ntt)
            _ring_ntt_forward(e_row, pr);
        _ring_add(c0 + i * n, c0 + i * n, e_row, pr);
        if (!ntt)
            _ring_ntt_forward(c0 + i * n, pr);
    }
    sodium_memzero(e_row, n * sizeof *e_row);
}

/* Both secret-key encryptions: c0 starts as m, from pt (NTT form) or encoded from values
 * (coefficient form), then c0 = (m + e) - a*s. */
static ppnn_status encrypt_sk(ckks_ciphertext *ct, const ckks_secret_key *sk,
                              const ckks_plaintext *pt, const double *values, size_t count,
                              size_t level, double scale)
{
    const ckks_params *params = sk->params;
    size_t n = params->n, np = level + 1;
    int64_t *e_int = malloc(n * sizeof *e_int);
    uint64_t *e_row = malloc(n * sizeof *e_row);
    ppnn_status st = e_int && e_row ? PPNN_OK
                                    : ppnn_fail(PPNN_ERR_NOMEM, "encrypt: out of memory");
    if (!st)
        st = ckks_ct_shape(ct, params, level, 2, scale);
    if (!st && pt)
        memcpy(ct->data, pt->data, np * n * sizeof *pt->data);
    else if (!st)
        st = ckks_encode_coeffs(ct->data, params, values, count, level, scale);
    if (!st) {
        add_c1_and_error(ct, params, np, e_int, e_row, pt != NULL);
        sub_a_s(ct, sk, np, e_row);
        ct->has_seed = 1;
    }
    if (e_int)
        sodium_memzero(e_int, n * sizeof *e_int);
    free(e_int);
    free(e_row);
    return st;
}

ppnn_status ckks_encrypt_sk(ckks_ciphertext *ct, const ckks_secret_key *sk,
                            const ckks_plaintext *pt)
{
    ppnn_status st = ckks_check_params(sk->params, pt->params, "encrypt");
    return st ? st : encrypt_sk(ct, sk, pt, NULL, 0, pt->level, pt->scale);
}

ppnn_status ckks_encrypt_sk_values(ckks_ciphertext *ct, const ckks_secret_key *sk,
                                   const double *values, size_t count, size_t level,
                                   double scale)
{
    const ckks_params *params = sk->params;
    if (level >= params->nq) /* checked again by the encoder; needed to shape ct first */
        return ppnn_fail(PPNN_ERR_PARAM, "encode: level %zu above the top level %zu", level,
                         params->nq - 1);
    return encrypt_sk(ct, sk, NULL, values, count, level, scale);
}

ppnn_status ckks_decrypt(ckks_plaintext *pt, const ckks_secret_key *sk, const ckks_ciphertext *ct)
{
    ppnn_status st = ckks_check_params(sk->params, ct->params, "decrypt");
    if (st)
        return st;
    const ckks_params *params = sk->params;
    size_t n = params->n, np = ct->level + 1, cw = np * n;
    st = ckks_pt_init(pt, params, ct->level, ct->scale);
    if (st)
        return st;
    /* Horner: m = ((c_{k-1} s + c_{k-2}) s + ...) + c_0, per prime row. */
    for (size_t i = 0; i < np; i++) {
        const ring_prime *pr = &params->ring->primes[i];
        uint64_t *r = pt->data + i * n;
        const uint64_t *s = sk->s + i * n;
        memcpy(r, ct->data + (ct->size - 1) * cw + i * n, n * sizeof *r);
        for (size_t k = ct->size - 1; k-- > 0;) {
            _ring_mul(r, r, s, pr);
            _ring_add(r, r, ct->data + k * cw + i * n, pr);
        }
    }
    return PPNN_OK;
}

ppnn_status ckks_decrypt_release(double *values, size_t count, const ckks_secret_key *sk,
                                 const ckks_ciphertext *ct, const ckks_flood *f)
{
    ckks_plaintext pt = {0};
    ppnn_status st = ckks_decrypt(&pt, sk, ct);
    if (!st && f)
        st = ckks_flood_check_real(&pt, f);
    if (!st && f)
        st = ckks_flood_plaintext(&pt, f);
    if (!st)
        st = ckks_decode(values, count, &pt);
    ckks_pt_free(&pt); /* wipes m + e */
    return st;
}
