/* Helpers for tests of encrypted inference (header-only, static): a small insecure ring, the
 * model's plan for it and a key pair. */
#ifndef PPNN_HNN_TU_H
#define PPNN_HNN_TU_H

#include "ckks_tu.h"
#include "ppnn/hnn.h"

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
