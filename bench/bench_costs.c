/* `ppnn bench costs`: the single-thread operation costs the packing cost model multiplies by
 * the plans' operation counts (hnn_op_costs). Linear-kernel MACs come from the element-wise
 * kernels themselves (bench_linear_gmacs: a 100 x 845 dense product like CryptoNets' fc1, and
 * 25-term sparse rows like a 5x5 conv); the rest are CKKS operations at the top level. */
#include "bench_costs.h"

#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "bench_infer.h"
#include "ppnn/ckks.h"

enum { C_ADD, C_MUL_PLAIN, C_SQUARE, C_RELIN, C_RESCALE, C_ROTATE, C_HOIST, C_NOPS };
#define HOIST_GROUP 8

typedef struct costs_state {
    ckks_params *p;
    ckks_secret_key sk;
    ckks_relin_key rk;
    ckks_galois_keys gk;
    ckks_plaintext pt;
    ckks_ciphertext a, b, c, prod, rot[HOIST_GROUP];
    int steps[HOIST_GROUP];
} costs_state;

/* One timed run of op, in seconds (untimed setup first); negative on failure. */
static double run_once(costs_state *s, int op)
{
    ppnn_status st = PPNN_OK;
    if (op == C_RELIN || op == C_RESCALE)
        st = ckks_ct_copy(&s->c, &s->prod);
    if (st)
        return -1;
    double t0 = ppnn_now();
    switch (op) {
    case C_ADD: st = ckks_add(&s->c, &s->a, &s->b); break;
    case C_MUL_PLAIN: st = ckks_mul_plain(&s->c, &s->a, &s->pt); break;
    case C_SQUARE: st = ckks_square(&s->c, &s->a); break;
    case C_RELIN: st = ckks_relinearize(&s->c, &s->rk); break;
    case C_RESCALE: st = ckks_rescale(&s->c); break;
    case C_ROTATE: st = ckks_rotate(&s->c, &s->a, 1, &s->gk); break;
    case C_HOIST: st = ckks_rotate_hoisted(s->rot, &s->a, s->steps, HOIST_GROUP, &s->gk); break;
    default: return -1;
    }
    double t = ppnn_now() - t0;
    return st ? -1 : op == C_HOIST ? t / HOIST_GROUP : t;
}

static ppnn_status setup(costs_state *s, unsigned logn)
{
    ckks_spec spec;
    ppnn_status st = logn == 13 ? ckks_preset(&spec, "n13")
                     : logn == 14 ? ckks_preset(&spec, "n14")
                                  : ppnn_fail(PPNN_ERR_PARAM, "bench costs: --logn 13 or 14");
    if (!st)
        st = ckks_params_new(&s->p, &spec);
    if (st)
        return st;
    for (int i = 0; i < HOIST_GROUP; i++)
        s->steps[i] = 1 << i;
    size_t h = s->p->slots, top = s->p->nq - 1;
    double *v = malloc(h * sizeof *v);
    if (!v)
        return ppnn_fail(PPNN_ERR_NOMEM, "bench: out of memory");
    for (size_t i = 0; i < h; i++)
        v[i] = (double)(i % 13) / 13.0 - 0.5;
    if (!(st = ckks_keygen_secret(&s->sk, s->p)) && !(st = ckks_keygen_relin(&s->rk, &s->sk)) &&
        !(st = ckks_keygen_galois(&s->gk, &s->sk, s->steps, HOIST_GROUP, 0)) &&
        !(st = ckks_encode(&s->pt, s->p, v, h, top, s->p->scale)) &&
        !(st = ckks_encrypt_sk(&s->a, &s->sk, &s->pt)) &&
        !(st = ckks_encrypt_sk(&s->b, &s->sk, &s->pt)))
        st = ckks_mul(&s->prod, &s->a, &s->b);
    free(v);
    return st;
}

static void teardown(costs_state *s)
{
    ckks_ct_free(&s->a);
    ckks_ct_free(&s->b);
    ckks_ct_free(&s->c);
    ckks_ct_free(&s->prod);
    for (int i = 0; i < HOIST_GROUP; i++)
        ckks_ct_free(&s->rot[i]);
    ckks_pt_free(&s->pt);
    ckks_galois_keys_free(&s->gk);
    ckks_relin_key_free(&s->rk);
    ckks_secret_key_free(&s->sk);
    ckks_params_free(s->p);
}

ppnn_status bench_costs(hnn_op_costs *c, unsigned logn, int reps)
{
    costs_state s;
    memset(&s, 0, sizeof s);
    memset(c, 0, sizeof *c);
    ppnn_status st = setup(&s, logn);
    double *t = malloc((size_t)(reps > 0 ? reps : 1) * sizeof *t), med[C_NOPS] = {0};
    if (!st && !t)
        st = ppnn_fail(PPNN_ERR_NOMEM, "bench: out of memory");
    for (int op = 0; op < C_NOPS && !st; op++) {
        for (int r = 0; r < reps && !st; r++)
            if ((t[r] = run_once(&s, op)) < 0)
                st = ppnn_fail(PPNN_ERR_PARAM, "bench costs: operation %d failed", op);
        med[op] = bench_median(t, (size_t)reps);
    }
    if (!st) {
        c->logn = logn;
        c->nq = s.p->nq;
        c->add = med[C_ADD], c->mul_plain = med[C_MUL_PLAIN], c->square = med[C_SQUARE];
        c->relin = med[C_RELIN], c->rescale = med[C_RESCALE], c->rotate = med[C_ROTATE];
        c->rotate_hoisted = med[C_HOIST];
        /* Per multiply-add on one prime, averaged over the chain's primes (the kernel's speed
         * depends on the prime's size): q_0 and one rescale prime timed, the rest like q_1. */
        double td = 0, ts = 0;
        for (size_t i = 0; i < 2 && i < s.p->nq && !st; i++) {
            double gd = bench_linear_gmacs(100, 845, s.p->n, 0, 1, HNN_KERNEL_AUTO, s.p->q[i]);
            double gs = bench_linear_gmacs(845, 784, s.p->n, 25, 1, HNN_KERNEL_AUTO, s.p->q[i]);
            if (!(gd > 0) || !(gs > 0))
                st = ppnn_fail(PPNN_ERR_NOMEM, "bench costs: linear kernel benchmark failed");
            double wgt = i == 0 ? 1.0 : (double)(s.p->nq - 1);
            td += wgt * 1e-9 / gd, ts += wgt * 1e-9 / gs;
        }
        c->mac_dense = td / (double)s.p->nq;
        c->mac_sparse = ts / (double)s.p->nq;
    }
    free(t);
    teardown(&s);
    return st;
}
