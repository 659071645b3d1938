/* Data-parallel execution (dist.h): batch b runs whole on rank b mod R with hnn_infer. Rank 0
 * loads each batch, sends it to its rank (or, every_rank, each rank loads its own) and gathers
 * the results, one round of R batches at a time. In the statistics, input bytes count on the first step and result bytes on the last. */
#include <stdlib.h>
#include <string.h>

#include "dist/mpi_inner.h"

typedef struct step_clock {
    dist_stats *ss;
} step_clock;

static void on_step(void *vctx, size_t k, const hnn_step *s, double seconds)
{
    step_clock *c = vctx;
    (void)s;
    if (k < DIST_MAX_STEPS)
        c->ss->compute_seconds[k] += seconds;
    c->ss->compute_total += seconds;
}

static void clear_cts(ckks_ciphertext *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        ckks_ct_free(&c[i]);
}

/* Moves n ciphertexts from rank `from` (src) to rank `to` (dst); every rank calls it. */
static ppnn_status move_batch(dist_ctx *dc, ckks_ciphertext *dst, const ckks_ciphertext *src,
                              size_t n, size_t from, size_t to, const ckks_params *prm)
{
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank;
    dist_xfer x;
    ppnn_status st = _dist_xfer_new(&x, R);
    if (!st && me == from)
        st = _dist_xfer_reserve(&x, to, n, 0);
    if (!st && me == to)
        st = _dist_xfer_reserve(&x, from, 0, n);
    for (size_t i = 0; !st && i < n; i++) {
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

ppnn_status dist_infer_data(dist_ctx *dc, const hnn_plan *p, const dist_batches *io,
                            const ckks_relin_key *rk, const hnn_exec_opts *opts,
                            dist_stats *stats)
{
    hnn_exec_opts dflt = {.threads = 0};
    const hnn_exec_opts *o = opts ? opts : &dflt;
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank, nb = io->nbatches;
    const size_t nin = p->n_inputs, nout = p->n_outputs;
    const ckks_params *prm = rk ? rk->params : NULL;
    dist_stats local;
    dist_stats *ss = stats ? stats : &local;
    memset(ss, 0, sizeof *ss);
    ss->nsteps = p->nsteps < DIST_MAX_STEPS ? p->nsteps : DIST_MAX_STEPS;
    ppnn_status st = prm ? PPNN_OK
                         : ppnn_fail(PPNN_ERR_PARAM, "distributed inference needs the "
                                                     "relinearization key");
    step_clock clock = {ss};
    hnn_exec_opts ro = *o;
    ro.progress = on_step, ro.progress_ctx = &clock, ro.on_tile = NULL;
    /* rank 0: the batch in flight (send) and its own; every rank: its inputs and results */
    ckks_ciphertext *bin = calloc(nin ? nin : 1, sizeof *bin);
    ckks_ciphertext *send = calloc(nin ? nin : 1, sizeof *send);
    ckks_ciphertext *bout = calloc(nout ? nout : 1, sizeof *bout);
    if (!st && (!bin || !send || !bout))
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    st = dist_agree(dc, st);
    const size_t last = ss->nsteps ? ss->nsteps - 1 : 0;
    for (size_t round = 0; !st && round * R < nb; round++) {
        uint64_t s0 = dc->sent, r0 = dc->recv;
        double c0 = dc->comm_seconds;
        for (size_t t = 1; !st && !io->every_rank && t < R && round * R + t < nb; t++) {
            ppnn_status ls = me == 0 ? io->load(io->ctx, round * R + t, send) : PPNN_OK;
            if (!(st = dist_agree(dc, ls)))
                st = move_batch(dc, bin, send, nin, 0, t, prm);
            if (me == 0)
                clear_cts(send, nin);
        }
        ss->bytes_sent[0] += dc->sent - s0, ss->bytes_recv[0] += dc->recv - r0;
        const size_t b = round * R + me;
        if (!st && (me == 0 || io->every_rank) && b < nb)
            st = io->load(io->ctx, b, bin);
        if (!st)
            st = _dist_fault(dc, round, "round");
        if (!st && b < nb)
            st = hnn_infer(bout, p, bin, rk, &ro);
        clear_cts(bin, nin);
        st = dist_agree(dc, st);
        /* Results in batch order: rank 0's own first, then each rank's. */
        if (!st && me == 0)
            st = io->store(io->ctx, round * R, bout);
        st = dist_agree(dc, st);
        s0 = dc->sent, r0 = dc->recv;
        for (size_t t = 1; !st && t < R && round * R + t < nb; t++) {
            if (!(st = move_batch(dc, bout, bout, nout, t, 0, prm)) && me == 0)
                st = io->store(io->ctx, round * R + t, bout);
            st = dist_agree(dc, st);
        }
        clear_cts(bout, nout);
        ss->bytes_sent[last] += dc->sent - s0, ss->bytes_recv[last] += dc->recv - r0;
        ss->comm_total += dc->comm_seconds - c0;
    }
    clear_cts(bin, nin), clear_cts(send, nin), clear_cts(bout, nout);
    free(bin), free(send), free(bout);
    return st;
}
