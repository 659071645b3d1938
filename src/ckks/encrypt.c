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

ppnn_status ckks_encrypt_sk(ckks_ciphertext *ct, const ckks_secret_key *sk,
                            const ckks_plaintext *pt)
{
    ppnn_status st = ckks_check_params(sk->params, pt->params, "encrypt");
    if (st)
        return st;
    const ckks_params *params = sk->params;
    size_t n = params->n, np = pt->level + 1, cw = np * n;
    int64_t *e_int = malloc(n * sizeof *e_int);
    uint64_t *e = malloc(cw * sizeof *e);
    if (!e_int || !e) {
        free(e_int);
        free(e);
        return ppnn_fail(PPNN_ERR_NOMEM, "encrypt: out of memory");
    }
    st = ckks_ct_shape(ct, params, pt->level, 2, pt->scale);
    if (st) {
        free(e_int);
        free(e);
        return st;
    }
    uint64_t *c0 = ct->data, *c1 = ct->data + cw;
    ring_seed_random(ct->seed);
    ckks_expand_seed(c1, params, pt->level, ct->seed);
    ring_prg g;
    ring_prg_init_fresh(&g);
    ckks_sample_error_ntt(e, params, np, &g, e_int);
    ring_prg_wipe(&g);
    /* c0 = (e + m) - a*s */
    ring_poly_mul(c0, c1, sk->s, params->ring, np);
    ring_poly_add(e, e, pt->data, params->ring, np);
    ring_poly_sub(c0, e, c0, params->ring, np);
    sodium_memzero(e_int, n * sizeof *e_int);
    sodium_memzero(e, cw * sizeof *e);
    free(e_int);
    free(e);
    ct->has_seed = 1;
    return PPNN_OK;
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
