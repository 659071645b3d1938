/* Helpers for tests of encrypted inference (header-only, static): a small insecure ring, the
 * model's plan for it and a key pair. */
#ifndef PPNN_HNN_TU_H
#define PPNN_HNN_TU_H

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_tu.h"
#include "ppnn/hnn.h"

/* Every trainable value of m from the seeded stream `tag`, scaled per kind: weights ~
 * 1/sqrt(fan-in), quadratics near a ReLU fit (a in [0, 0.2], b near 0.5). */
static inline void htu_seed_params(nn_model *m, unsigned char tag)
{
    unsigned char seed[randombytes_SEEDBYTES] = {tag};
    uint32_t *r = malloc(m->nparams * sizeof *r);
    CHECK(r != NULL);
    if (!r)
        return;
    randombytes_buf_deterministic(r, m->nparams * sizeof *r, seed);
    for (size_t i = 0; i < m->nparams; i++)
        m->params[i] = (float)(r[i] / 4294967296.0 - 0.5);
    free(r);
    for (size_t k = 0; k < m->nlayers; k++) {
        nn_layer *l = &m->layers[k];
        for (size_t i = 0; i < l->nweight; i++)
            l->weight[i] *= (float)(2.0 / sqrt((double)l->nweight / l->nbias));
        size_t n = l->ncoef / 3;
        for (size_t i = 0; i < n; i++) {
            l->coef[i] = 0.1f + 0.2f * l->coef[i];
            l->coef[n + i] = 0.5f + 0.2f * l->coef[n + i];
        }
    }
}

/* How many of the n ciphertext pairs differ (size, level, scale or any coefficient). */
static inline size_t htu_cts_differing(const ckks_ciphertext *a, const ckks_ciphertext *b,
                                       size_t n)
{
    size_t bad = 0;
    for (size_t c = 0; c < n; c++) {
        size_t words = a[c].size * (a[c].level + 1) * a[c].params->n;
        bad += a[c].size != b[c].size || a[c].level != b[c].level || a[c].scale != b[c].scale ||
               memcmp(a[c].data, b[c].data, words * sizeof(uint64_t)) != 0;
    }
    return bad;
}

typedef struct htu_world {
    ckks_params *prm;
    hnn_plan *plan;
    ckks_secret_key sk;
    ckks_relin_key rk;
} htu_world;

/* Ring N = 2^logn with nq primes (q_0 q0bits, others qbits, P pbits), m's plan for all its
 * levels, secret and relinearization keys. Returns 0 (after CHECK failures) when any fails. */
static inline int htu_world_new(htu_world *w, const nn_model *m, unsigned logn, size_t nq,
                                unsigned q0bits, unsigned qbits, unsigned pbits)
{
    memset(w, 0, sizeof *w);
    w->prm = ctu_params(logn, nq, q0bits, qbits, pbits);
    hnn_budget bud;
    hnn_budget_from_params(&bud, w->prm, "test");
    CHECK_OK(hnn_plan_new(&w->plan, m, &bud, NULL, 0));
    CHECK_OK(ckks_keygen_secret(&w->sk, w->prm));
    CHECK_OK(ckks_keygen_relin(&w->rk, &w->sk));
    return w->plan && w->sk.s && w->rk.k.b;
}

static inline void htu_world_free(htu_world *w)
{
    ckks_relin_key_free(&w->rk);
    ckks_secret_key_free(&w->sk);
    hnn_plan_free(w->plan);
    ckks_params_free(w->prm);
}

#endif
