/* CKKS micro-benchmarks: median single-thread time of each public operation at the top level
 * of a parameter set (the level at which SEAL's reference numbers are measured). Setup of
 * every timed call (fresh copies for the in-place relinearize and rescale) is not timed. */
#include "bench_ckks.h"

#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ppnn/ckks.h"

const char *const bench_ckks_ops[BENCH_CKKS_NOPS] = {
    "ntt", "encode", "encrypt_pk", "encrypt_sk", "decrypt", "decode",
    "add", "mul_scalar", "mul", "relin", "rescale", "rotate"};

enum { OP_NTT, OP_ENCODE, OP_ENC_PK, OP_ENC_SK, OP_DECRYPT, OP_DECODE, OP_ADD, OP_MUL_SCALAR,
       OP_MUL, OP_RELIN, OP_RESCALE, OP_ROTATE };

/* Parameter chains for ring degrees without a preset: 2^12: 40 + 30 + P 39 = 109;
 * 2^15 and 2^16: 50 + 10x40 + P 50 = 500 (10 levels; far below their limits 881 and 1747,
 * because a key-switching key has (L+1)(L+2) rows of N words — longer chains need hybrid key
 * switching, see ckks.h). */
static ppnn_status bench_spec(ckks_spec *s, unsigned logn)
{
    if (logn == 13)
        return ckks_preset(s, "n13");
    if (logn == 14)
        return ckks_preset(s, "n14");
    memset(s, 0, sizeof *s);
    s->logn = logn;
    unsigned q0 = 50, qb, p = 50;
    size_t nq;
    switch (logn) {
    case 12: q0 = 39; qb = 30; nq = 2; p = 40; break; /* 109 bits, P > q_i */
    case 15:
    case 16: qb = 40; nq = 11; break;
    default:
        return ppnn_fail(PPNN_ERR_PARAM, "bench ckks: --logn must be 12..16 (got %u)", logn);
    }
    s->nq = nq;
    s->q_bits[0] = q0;
    for (size_t i = 1; i < nq; i++)
        s->q_bits[i] = qb;
    s->p_bits = p;
    return PPNN_OK;
}

typedef struct bench_state {
    ckks_params *p;
    ckks_secret_key sk;
    ckks_public_key pk;
    ckks_relin_key rk;
    ckks_galois_keys gk;
    double *vals;
    ckks_plaintext pt, pt2;
    ckks_ciphertext a, b, c, prod;
} bench_state;

/* One timed execution of op (untimed setup first). Returns microseconds or -1. */
static double run_once(bench_state *s, int op)
{
    ppnn_status st = PPNN_OK;
    size_t top = s->p->nq - 1;
    if (op == OP_RELIN || op == OP_RESCALE)
        st = ckks_ct_copy(&s->c, &s->prod);
    if (st)
        return -1;
    double t0 = ppnn_now();
    switch (op) {
    case OP_ENCODE: st = ckks_encode(&s->pt2, s->p, s->vals, s->p->slots, top, s->p->scale); break;
    case OP_ENC_PK: st = ckks_encrypt_pk(&s->c, &s->pk, &s->pt); break;
    case OP_ENC_SK: st = ckks_encrypt_sk(&s->c, &s->sk, &s->pt); break;
    case OP_DECRYPT: st = ckks_decrypt(&s->pt2, &s->sk, &s->a); break;
    case OP_DECODE: st = ckks_decode(s->vals, s->p->slots, &s->pt); break;
    case OP_ADD: st = ckks_add(&s->c, &s->a, &s->b); break;
    case OP_MUL_SCALAR: st = ckks_mul_scalar(&s->c, &s->a, 0.123, (double)s->p->q[top]); break;
    case OP_MUL: st = ckks_mul(&s->c, &s->a, &s->b); break;
    case OP_RELIN: st = ckks_relinearize(&s->c, &s->rk); break;
    case OP_RESCALE: st = ckks_rescale(&s->c); break;
    case OP_ROTATE: st = ckks_rotate(&s->c, &s->a, 1, &s->gk); break;
    default: return -1;
    }
    double t = (ppnn_now() - t0) * 1e6;
    return st ? -1 : t;
}

static ppnn_status setup(bench_state *s, unsigned logn)
{
    ckks_spec spec;
    ppnn_status st = bench_spec(&spec, logn);
    if (!st)
        st = ckks_params_new(&s->p, &spec);
    if (st)
        return st;
    int step = 1;
    if ((st = ckks_keygen_secret(&s->sk, s->p)) || (st = ckks_keygen_public(&s->pk, &s->sk)) ||
        (st = ckks_keygen_relin(&s->rk, &s->sk)) ||
        (st = ckks_keygen_galois(&s->gk, &s->sk, &step, 1, 0)))
        return st;
    size_t h = s->p->slots, top = s->p->nq - 1;
    s->vals = malloc(h * sizeof *s->vals);
    if (!s->vals)
        return ppnn_fail(PPNN_ERR_NOMEM, "bench: out of memory");
    for (size_t i = 0; i < h; i++)
        s->vals[i] = (double)(i % 17) / 17.0 - 0.5;
    if ((st = ckks_encode(&s->pt, s->p, s->vals, h, top, s->p->scale)) ||
        (st = ckks_encrypt_sk(&s->a, &s->sk, &s->pt)) ||
        (st = ckks_encrypt_sk(&s->b, &s->sk, &s->pt)) || (st = ckks_mul(&s->prod, &s->a, &s->b)))
        return st;
    return PPNN_OK;
}

static void teardown(bench_state *s)
{
    ckks_ct_free(&s->a);
    ckks_ct_free(&s->b);
    ckks_ct_free(&s->c);
    ckks_ct_free(&s->prod);
    ckks_pt_free(&s->pt);
    ckks_pt_free(&s->pt2);
    free(s->vals);
    ckks_galois_keys_free(&s->gk);
    ckks_relin_key_free(&s->rk);
    ckks_public_key_free(&s->pk);
    ckks_secret_key_free(&s->sk);
}

ppnn_status bench_ckks(double us[BENCH_CKKS_NOPS], ckks_params **params_out, unsigned logn)
{
    bench_state s;
    memset(&s, 0, sizeof s);
    *params_out = NULL;
    ppnn_status st = setup(&s, logn);
    if (st) {
        teardown(&s);
        ckks_params_free(s.p);
        return st;
    }
    /* Runs per op: enough for a stable median, bounded in time at large N. */
    int runs = logn <= 13 ? 51 : logn == 14 ? 21 : 7;
    double *t = malloc((size_t)runs * sizeof *t);
    if (!t) {
        teardown(&s);
        ckks_params_free(s.p);
        return ppnn_fail(PPNN_ERR_NOMEM, "bench: out of memory");
    }
    unsigned qbits = 0;
    for (uint64_t q = s.p->q[s.p->nq - 1]; q; q >>= 1)
        qbits++;
    us[OP_NTT] = bench_ntt_us((int)logn, (int)qbits, 0);
    for (int op = 1; op < BENCH_CKKS_NOPS && !st; op++) {
        (void)run_once(&s, op); /* warm-up: first-touch of buffers */
        for (int r = 0; r < runs; r++) {
            t[r] = run_once(&s, op);
            if (t[r] < 0) {
                st = ppnn_fail(PPNN_ERR_PARAM, "bench: %s failed: %s", bench_ckks_ops[op],
                               ppnn_last_error());
                break;
            }
        }
        us[op] = bench_median(t, (size_t)runs);
    }
    free(t);
    teardown(&s);
    if (st) {
        ckks_params_free(s.p);
        return st;
    }
    *params_out = s.p;
    return PPNN_OK;
}
