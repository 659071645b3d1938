/* Data-parallel execution (dist.h): batch b runs whole on rank b mod R with hnn_infer. Rank 0
 * sends each batch's inputs and gathers its results, one round of R batches at a time, so a
 * rank holds one batch (inputs, intermediates, results) at once. In the statistics, the
 * input bytes are counted on the first step and the result bytes on the last. */
#include <stdlib.h>
#include <string.h>

#include "dist/mpi_inner.h"

typedef struct step_clock {
    dist_stats *ss;
    const hnn_exec_opts *user;
} step_clock;

static void on_step(void *vctx, size_t k, const hnn_step *s, double seconds)
{
    step_clock *c = vctx;
    if (k < DIST_MAX_STEPS)
        c->ss->compute_seconds[k] += seconds;
    c->ss->compute_total += seconds;
    if (c->user->progress)
        c->user->progress(c->user->progress_ctx, k, s, seconds);
}

static void free_cts(ckks_ciphertext *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        ckks_ct_free(&c[i]);
    free(c);
}

/* Moves n ciphertexts of batch data from rank `from` to rank `to` (src on `from`, dst on
 * `to`; every rank calls it). Returns the bytes this rank moved in *sent / *recv. */
static ppnn_status move_batch(dist_ctx *dc, ckks_ciphertext *dst, const ckks_ciphertext *src,
                              size_t n, size_t from, size_t to, const ckks_params *prm)
{
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank;
    dist_xfer x;
    ppnn_status st = _dist_xfer_new(&x, R);
    if (!st && from != to && me == from)
        st = _dist_xfer_reserve(&x, to, n, 0);
    if (!st && from != to && me == to)
        st = _dist_xfer_reserve(&x, from, 0, n);
    for (size_t i = 0; !st && from != to && i < n; i++) {
        if (me == from)
            x.send[to][i] = &src[i];
        if (me == to)
            x.recv[from][i] = &dst[i];
    }
    if (!(st = dist_agree(dc, st)))
        st = _dist_exchange(dc, &x, prm);
    if (x.nsend)
        _dist_xfer_free(&x, R);
    return st;
}

ppnn_status dist_infer_data(dist_ctx *dc, ckks_ciphertext *const *out, const hnn_plan *p,
                            const ckks_ciphertext *const *in, size_t nbatches,
                            const ckks_relin_key *rk, const hnn_exec_opts *opts,
                            dist_stats *stats)
{
    hnn_exec_opts dflt = {.threads = 0};
    const hnn_exec_opts *o = opts ? opts : &dflt;
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank;
    const ckks_params *prm = rk ? rk->params : NULL;
    dist_stats local;
    dist_stats *ss = stats ? stats : &local;
    memset(ss, 0, sizeof *ss);
    ss->nsteps = p->nsteps < DIST_MAX_STEPS ? p->nsteps : DIST_MAX_STEPS;
    ppnn_status st = prm ? PPNN_OK
                         : ppnn_fail(PPNN_ERR_PARAM, "distributed inference needs the "
                                                     "relinearization key");
    if ((st = dist_agree(dc, st)))
        return st;
    step_clock clock = {ss, o};
    hnn_exec_opts ro = *o;
    ro.progress = on_step, ro.progress_ctx = &clock;
    ckks_ciphertext *bin = calloc(p->n_inputs ? p->n_inputs : 1, sizeof *bin);
    ckks_ciphertext *bout = calloc(p->n_outputs ? p->n_outputs : 1, sizeof *bout);
    if (!bin || !bout)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t round = 0; !st && round * R < nbatches; round++) {
        uint64_t s0 = dc->sent, r0 = dc->recv;
        double c0 = dc->comm_seconds;
        /* Inputs of this round's batches: rank 0 -> rank t. */
        for (size_t t = 1; !st && t < R && round * R + t < nbatches; t++)
            st = move_batch(dc, bin, me == 0 ? in[round * R + t] : NULL, p->n_inputs, 0, t,
                            prm);
        ss->bytes_sent[0] += dc->sent - s0, ss->bytes_recv[0] += dc->recv - r0;
        const size_t b = round * R + me;
        if (!st)
            st = _dist_fault(dc, round, "round");
        if (!st && b < nbatches)
            st = hnn_infer(me == 0 ? out[b] : bout, p, me == 0 ? in[b] : bin, rk, &ro);
        st = dist_agree(dc, st);
        s0 = dc->sent, r0 = dc->recv;
        for (size_t t = 1; !st && t < R && round * R + t < nbatches; t++)
            st = move_batch(dc, me == 0 ? out[round * R + t] : NULL, bout, p->n_outputs, t, 0,
                            prm);
        const size_t last = ss->nsteps ? ss->nsteps - 1 : 0;
        ss->bytes_sent[last] += dc->sent - s0, ss->bytes_recv[last] += dc->recv - r0;
        for (size_t i = 0; i < p->n_inputs; i++)
            ckks_ct_free(&bin[i]);
        ss->comm_total += dc->comm_seconds - c0;
    }
    free_cts(bin, p->n_inputs);
    free_cts(bout, p->n_outputs);
    return st;
}
