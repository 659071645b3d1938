/* Model-parallel execution (dist.h): every rank runs its share of every stage of the plan, as
 * the partition says; the stage inputs a share reads arrive by point-to-point messages.
 *
 * Each rank keeps the current vector (a stage's inputs) as an array of one ciphertext struct
 * per element, with data only where it holds the element. A share is a plan of its own
 * (dist_share_plan) that the streaming executor runs, fused and tiled, under what is left of
 * the rank's budget, each input freed after its last tile; a COLS share's outputs are partial
 * sums of every output (left unfinished), which travel to the outputs' owners to be added and
 * relinearized / rescaled once (hnn_step_linear_finish).
 * Every output residue equals hnn_infer's: the same kernels on the same inputs, or exact sums
 * of exact partial sums mod q_i. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "dist/mpi_inner.h"

typedef struct vec {
    size_t n;
    ckks_ciphertext *ct; /* n structs; data where this rank holds the element */
    int borrowed;        /* rank 0's view of the caller's inputs: never freed */
} vec;

static void vec_release(vec *v)
{
    for (size_t i = 0; !v->borrowed && v->ct && i < v->n; i++)
        ckks_ct_free(&v->ct[i]);
    free(v->ct);
    memset(v, 0, sizeof *v);
}

static ppnn_status vec_new(vec *v, size_t n)
{
    v->n = n, v->borrowed = 0;
    v->ct = calloc(n ? n : 1, sizeof *v->ct);
    return v->ct ? PPNN_OK : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
}

static uint64_t ct_bytes(const ckks_ciphertext *c)
{
    return c->data ? (uint64_t)c->size * (c->level + 1) * c->params->n * sizeof(uint64_t) : 0;
}

static uint32_t owner_in(const dist_partition *d, size_t g, size_t i)
{
    return g ? d->stages[g - 1].owner[i] : 0;
}

/* Sends each peer the stage inputs it needs and this rank holds; receives its own. */
static ppnn_status exchange_inputs(dist_ctx *dc, vec *v, const dist_partition *part, size_t g,
                                   const ckks_params *prm, ckks_ct_pool *pool)
{
    const dist_part_stage *ps = &part->stages[g];
    const size_t R = part->nranks, me = (size_t)dc->rank;
    dist_xfer x;
    ppnn_status st = _dist_xfer_new(&x, R);
    for (size_t t = 0; t < R && !st; t++) {
        if (t == me)
            continue;
        size_t ns = 0, nr = 0;
        for (size_t j = 0; j < ps->nneed[t]; j++)
            ns += owner_in(part, g, ps->need[t][j]) == me;
        for (size_t j = 0; j < ps->nneed[me]; j++)
            nr += owner_in(part, g, ps->need[me][j]) == t;
        if ((st = _dist_xfer_reserve(&x, t, ns, nr)))
            break;
        ns = nr = 0;
        for (size_t j = 0; j < ps->nneed[t]; j++)
            if (owner_in(part, g, ps->need[t][j]) == me)
                x.send[t][ns++] = &v->ct[ps->need[t][j]];
        for (size_t j = 0; j < ps->nneed[me]; j++)
            if (owner_in(part, g, ps->need[me][j]) == t) {
                ckks_ct_attach(&v->ct[ps->need[me][j]], pool);
                x.recv[t][nr++] = &v->ct[ps->need[me][j]];
            }
    }
    if (!(st = dist_agree(dc, st)))
        st = _dist_exchange(dc, &x, prm);
    if (x.nsend)
        _dist_xfer_free(&x, R);
    return st;
}

/* Rank 0 with consume: the inputs it has sent and its own share does not read are freed (in
 * the caller's array, which the borrowed vector mirrors). */
static void release_unread(vec *v, ckks_ciphertext *in, const uint32_t *need, size_t nneed)
{
    uint8_t *keep = calloc(v->n ? v->n : 1, 1);
    if (!keep)
        return; /* only memory is at stake: keep everything */
    for (size_t j = 0; j < nneed; j++)
        keep[need[j]] = 1;
    for (size_t i = 0; i < v->n; i++)
        if (!keep[i]) {
            ckks_ct_free(&in[i]);
            memset(&v->ct[i], 0, sizeof v->ct[i]);
        }
    free(keep);
}

/* A share's stage-0 inputs pulled from the rank's own reader (dist_inputs) as the streaming
 * executor needs them, into buffers of the rank's pool, and freed after their last tile: the
 * rank never holds its whole share of the batch. Input j of the share plan is stage input
 * need[j]. */
typedef struct share_source {
    const dist_inputs *src;
    const uint32_t *need;
    ckks_ciphertext *slot; /* one per share input; data while held */
    ckks_ct_pool *pool;
} share_source;

static ppnn_status share_get(hnn_source *s, size_t i, size_t level, const ckks_ciphertext **out)
{
    share_source *ss = s->ctx;
    ckks_ciphertext *c = &ss->slot[i];
    (void)level; /* the reader gives the plan's top level, the level of every stage-0 input */
    if (!c->data) {
        ckks_ct_attach(c, ss->pool);
        ppnn_status st = ss->src->get(ss->src->ctx, ss->need[i], c);
        if (st)
            return st;
    }
    *out = c;
    return PPNN_OK;
}

static void share_release(hnn_source *s, size_t i)
{
    share_source *ss = s->ctx;
    ckks_ct_free(&ss->slot[i]);
}

/* A share's inputs held in v (this rank's outputs of the previous stage and those received),
 * freed after their last tile, so the stage's inputs shrink as its outputs grow; rank 0's
 * borrowed view of the caller's batch is never freed here. */
typedef struct vec_source {
    vec *v;
    const uint32_t *need;
} vec_source;

static ppnn_status vec_get(hnn_source *s, size_t i, size_t level, const ckks_ciphertext **out)
{
    vec_source *vs = s->ctx;
    (void)level; /* every stage input is at the stage's level */
    *out = &vs->v->ct[vs->need[i]];
    assert((*out)->data); /* need[] lists what the exchange delivered */
    return PPNN_OK;
}

static void vec_release1(hnn_source *s, size_t i)
{
    vec_source *vs = s->ctx;
    if (!vs->v->borrowed)
        ckks_ct_free(&vs->v->ct[vs->need[i]]);
}

/* Runs this rank's share of stage g (dist_share_plan) through the streaming executor into
 * out[0 .. outputs of the share): with what is left of the budget beside the held inputs the
 * share does not read, its inputs from v or (src) read by this rank as the tiles need them;
 * the run's buffers from the rank's pool. COLS: the outputs are partial sums (raw). */
static ppnn_status run_share(ckks_ciphertext *out, vec *v, const hnn_plan *p,
                             const dist_partition *part, size_t g, size_t me,
                             const ckks_relin_key *rk, const hnn_exec_opts *o, uint64_t budget,
                             const dist_inputs *src, ckks_ct_pool *pool)
{
    const dist_part_stage *ps = &part->stages[g];
    hnn_plan *sp = NULL;
    hnn_schedule *sched = NULL;
    ppnn_status st = dist_share_plan(&sp, p, part, g, me);
    if (!st) {
        /* The held inputs this share does not read stay alive during the stage. */
        uint64_t other = 0;
        uint8_t *read = calloc(v->n ? v->n : 1, 1);
        for (size_t j = 0; read && j < ps->nneed[me]; j++)
            read[ps->need[me][j]] = 1;
        for (size_t i = 0; read && i < v->n; i++)
            other += read[i] ? 0 : ct_bytes(&v->ct[i]);
        free(read);
        st = _dist_share_schedule(&sched, sp, rk->params->n, part->nranks,
                                  !budget ? 0 : budget > other ? budget - other : 1, src != NULL);
    }
    hnn_exec_opts ro = *o;
    ro.progress = NULL, ro.on_tile = NULL, ro.schedule = sched, ro.pool = pool;
    ro.raw_outputs = ps->tiling == HNN_TILE_COLS;
    if (!st && src) {
        share_source ss = {src, ps->need[me], calloc(ps->nneed[me] ? ps->nneed[me] : 1,
                                                     sizeof *ss.slot), pool};
        hnn_source hs = {ps->nneed[me], share_get, share_release, &ss};
        st = ss.slot ? hnn_infer_source(out, sp, &hs, rk, &ro)
                     : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        for (size_t j = 0; ss.slot && j < ps->nneed[me]; j++)
            ckks_ct_free(&ss.slot[j]);
        free(ss.slot);
    } else if (!st) {
        vec_source vs = {v, ps->need[me]};
        hnn_source hs = {ps->nneed[me], vec_get, vec_release1, &vs};
        st = hnn_infer_source(out, sp, &hs, rk, &ro);
    }
    hnn_schedule_free(sched);
    hnn_plan_free(sp);
    return st;
}

/* ROWS: the share's outputs are this rank's B outputs (from opool: NULL for the results). */
static ppnn_status run_rows(vec *v, const hnn_plan *p, const dist_partition *part, size_t g,
                            size_t me, const ckks_relin_key *rk, const hnn_exec_opts *o,
                            uint64_t budget, const dist_inputs *src, ckks_ct_pool *pool,
                            ckks_ct_pool *opool)
{
    const dist_part_stage *ps = &part->stages[g];
    const hnn_step *b = &p->steps[ps->b];
    const size_t nr = ps->nitems[me];
    vec w;
    ppnn_status st = vec_new(&w, b->n_out);
    if (st)
        return st;
    ckks_ciphertext *out = calloc(nr ? nr : 1, sizeof *out);
    if (!out)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t j = 0; out && j < nr; j++)
        ckks_ct_attach(&out[j], opool);
    if (!st && nr)
        st = run_share(out, v, p, part, g, me, rk, o, budget, src, pool);
    for (size_t j = 0; out && j < nr; j++)
        w.ct[b->dense ? ps->items[me][j] : b->row_out[ps->items[me][j]]] = out[j];
    free(out);
    vec_release(v);
    *v = w;
    return st;
}

/* COLS: partial sums of every output, sent to each output's owner and added there. */
static ppnn_status run_cols(dist_ctx *dc, vec *v, const hnn_plan *p,
                            const dist_partition *part, size_t g, const ckks_relin_key *rk,
                            const hnn_exec_opts *o, const ckks_params *prm, uint64_t budget,
                            const dist_inputs *src, ckks_ct_pool *pool, ckks_ct_pool *opool)
{
    const dist_part_stage *ps = &part->stages[g];
    const hnn_step *b = &p->steps[ps->b];
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank;
    size_t nown = 0;
    for (size_t o2 = 0; o2 < b->n_out; o2++)
        nown += ps->owner[o2] == me;
    uint32_t *own = malloc((nown ? nown : 1) * sizeof *own);
    vec sums, w;
    dist_xfer x;
    memset(&x, 0, sizeof x);
    memset(&sums, 0, sizeof sums);
    ppnn_status st = own ? vec_new(&w, b->n_out) : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st && (st = vec_new(&sums, b->n_out)))
        vec_release(&w);
    if (st) {
        free(own);
        return st;
    }
    nown = 0;
    for (size_t o2 = 0; o2 < b->n_out; o2++)
        if (ps->owner[o2] == me)
            own[nown++] = (uint32_t)o2;
    for (size_t o2 = 0; o2 < b->n_out; o2++)
        ckks_ct_attach(&sums.ct[o2], opool);
    if (ps->nitems[me])
        st = run_share(sums.ct, v, p, part, g, me, rk, o, budget, src, pool);
    vec_release(v); /* the stage inputs are consumed */
    if (!(st = dist_agree(dc, st)))
        st = _dist_xfer_new(&x, R);
    ckks_ciphertext **tmp = calloc(R, sizeof *tmp);
    if (!st && !tmp)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t t = 0; t < R && !st; t++) {
        if (t == me)
            continue;
        size_t ns = 0, nr = ps->nitems[t] ? nown : 0;
        for (size_t o2 = 0; ps->nitems[me] && o2 < b->n_out; o2++)
            ns += ps->owner[o2] == t;
        tmp[t] = calloc(nr ? nr : 1, sizeof **tmp);
        if (!tmp[t] || (st = _dist_xfer_reserve(&x, t, ns, nr))) {
            st = st ? st : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
            break;
        }
        ns = 0;
        for (size_t o2 = 0; ps->nitems[me] && o2 < b->n_out; o2++)
            if (ps->owner[o2] == t)
                x.send[t][ns++] = &sums.ct[o2];
        for (size_t j = 0; j < nr; j++) {
            ckks_ct_attach(&tmp[t][j], opool);
            x.recv[t][j] = &tmp[t][j];
        }
    }
    if (!(st = dist_agree(dc, st)))
        st = _dist_exchange(dc, &x, prm);
    /* Own outputs: the partial sums of every contributing rank, in rank order. */
    ckks_ciphertext *acc = calloc(nown ? nown : 1, sizeof *acc);
    if (!st && !acc)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t j = 0; j < nown && !st; j++) {
        int first = 1;
        for (size_t t = 0; t < R && !st; t++) {
            if (!ps->nitems[t])
                continue;
            ckks_ciphertext *c = t == me ? &sums.ct[own[j]] : &tmp[t][j];
            if (first)
                acc[j] = *c, memset(c, 0, sizeof *c), first = 0;
            else
                st = ckks_add_inplace(&acc[j], c);
        }
    }
    if (!st && nown)
        st = hnn_step_linear_finish(acc, nown, b, rk, o->threads);
    for (size_t j = 0; acc && j < nown; j++)
        w.ct[own[j]] = acc[j];
    free(acc);
    for (size_t t = 0; tmp && t < R; t++) {
        for (size_t j = 0; tmp[t] && x.nrecv && j < x.nrecv[t]; j++)
            ckks_ct_free(&tmp[t][j]);
        free(tmp[t]);
    }
    free(tmp), free(own);
    if (x.nsend)
        _dist_xfer_free(&x, R);
    vec_release(&sums);
    *v = w;
    return st;
}

/* Rank 0 receives every result into out[0 .. n) (its own moved, the others' received). */
static ppnn_status gather_results(dist_ctx *dc, ckks_ciphertext *out, vec *v,
                                  const dist_part_stage *ps, const ckks_params *prm)
{
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank, n = v->n;
    dist_xfer x;
    ppnn_status st = _dist_xfer_new(&x, R);
    for (size_t t = 1; t < R && !st; t++) {
        if (me != 0 && t != me)
            continue;
        size_t cnt = 0;
        for (size_t o = 0; o < n; o++)
            cnt += ps->owner[o] == t;
        if ((st = _dist_xfer_reserve(&x, me ? 0 : t, me ? cnt : 0, me ? 0 : cnt)))
            break;
        cnt = 0;
        for (size_t o = 0; o < n; o++)
            if (ps->owner[o] == t) {
                if (me)
                    x.send[0][cnt++] = &v->ct[o];
                else
                    x.recv[t][cnt++] = &out[o];
            }
    }
    if (!(st = dist_agree(dc, st)))
        st = _dist_exchange(dc, &x, prm);
    if (!st && me == 0)
        for (size_t o = 0; o < n; o++)
            if (ps->owner[o] == 0) {
                ckks_ct_free(&out[o]);
                out[o] = v->ct[o];
                memset(&v->ct[o], 0, sizeof v->ct[o]);
            }
    if (x.nsend)
        _dist_xfer_free(&x, R);
    return st;
}

/* in (rank 0) or src (every rank): where the stage-0 inputs come from. */
static ppnn_status run_model(dist_ctx *dc, ckks_ciphertext *out, const hnn_plan *p,
                             ckks_ciphertext *in, int consume, const dist_inputs *src,
                             const ckks_relin_key *rk, const hnn_exec_opts *opts,
                             uint64_t budget, dist_stats *stats)
{
    hnn_exec_opts dflt = {.threads = 0};
    const hnn_exec_opts *o = opts ? opts : &dflt;
    const size_t R = (size_t)dc->size, me = (size_t)dc->rank;
    const ckks_params *prm = rk ? rk->params : NULL;
    dist_stats local;
    dist_stats *ss = stats ? stats : &local;
    memset(ss, 0, sizeof *ss);
    dist_partition *part = NULL;
    ppnn_status st = PPNN_OK;
    if (!prm)
        st = ppnn_fail(PPNN_ERR_PARAM, "distributed inference needs the relinearization key");
    if (!st)
        st = dist_partition_new(&part, p, R);
    if (!st && part->nstages > DIST_MAX_STEPS)
        st = ppnn_fail(PPNN_ERR_UNSUPPORTED, "plan of %zu stages (at most %d)", part->nstages,
                       DIST_MAX_STEPS);
    /* Every rank computes every rank's peak: all refuse together, naming the minimum. */
    uint64_t worst = 0;
    for (size_t t = 0; !st && t < R; t++) {
        uint64_t b = dist_partition_peak_bytes(part, p, t, prm->n,
                                               src ? DIST_PEAK_STREAMED
                                                   : consume ? DIST_PEAK_CONSUME : 0);
        worst = b > worst ? b : worst;
        if (t == me)
            ss->peak_estimate = b;
    }
    if (!st && budget && worst > budget)
        st = ppnn_fail(PPNN_ERR_NOMEM, "the model needs about %.0f MB per rank on %zu ranks "
                       "(budget %.0f MB per rank): use more ranks or a larger --memory",
                       (double)worst / 1048576.0, R, (double)budget / 1048576.0);
    if (!st && me == 0 && !src) /* the inputs are checked where they are: rank 0 */
        for (size_t i = 0; i < p->n_inputs && !st; i++)
            if (!ckks_params_same(in[i].params, prm) || in[i].level != p->top_level ||
                in[i].size != 2)
                st = ppnn_fail(PPNN_ERR_MISMATCH, "input ciphertext %zu: parameters, level "
                               "%zu or size %zu differ from the plan's inputs (level %zu, "
                               "size 2)", i, in[i].level, in[i].size, p->top_level);
    /* Rank 0's view of the caller's inputs is borrowed; inputs received or read belong to v. */
    vec v = {p->n_inputs, NULL, me == 0 && !src};
    if (!st && !(v.ct = calloc(p->n_inputs ? p->n_inputs : 1, sizeof *v.ct)))
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st && me == 0 && !src)
        memcpy(v.ct, in, p->n_inputs * sizeof *in);
    /* One buffer pool for the rank's ciphertexts (inputs read or received, every share's
     * intermediates, the stage outputs but the results), capped at its peak estimate: buffers
     * are reused across tiles and stages instead of faulting in fresh pages each time. */
    ckks_ct_pool *own_pool = NULL, *pool = o->pool;
    if (!st && !pool && !(st = ckks_ct_pool_new(&own_pool, prm->n, ss->peak_estimate, 0)))
        pool = own_pool;
    if ((st = dist_agree(dc, st))) {
        free(v.ct);
        ckks_ct_pool_free(own_pool);
        dist_partition_free(part);
        return st;
    }
    for (size_t g = 0; g < part->nstages && !st; g++) {
        const dist_part_stage *ps = &part->stages[g];
        double t0 = MPI_Wtime(), c0 = dc->comm_seconds;
        uint64_t s0 = dc->sent, r0 = dc->recv;
        st = dist_agree(dc, _dist_fault(dc, g, "stage"));
        /* Own reads: the share streams them itself. */
        const dist_inputs *own = g == 0 ? src : NULL;
        /* The results leave the run: not from the rank's pool. */
        ckks_ct_pool *opool = g + 1 < part->nstages ? pool : NULL;
        if (!st && !own)
            st = exchange_inputs(dc, &v, part, g, prm, pool);
        if (!st && g == 0 && me == 0 && consume && !src)
            release_unread(&v, in, ps->need[0], ps->nneed[0]);
        if (!st && ps->tiling == HNN_TILE_ROWS)
            st = run_rows(&v, p, part, g, me, rk, o, budget, own, pool, opool);
        else if (!st)
            st = run_cols(dc, &v, p, part, g, rk, o, prm, budget, own, pool, opool);
        st = dist_agree(dc, st);
        if (!st && g + 1 == part->nstages)
            st = gather_results(dc, out, &v, ps, prm);
        double dt = MPI_Wtime() - t0, dcm = dc->comm_seconds - c0;
        ss->comm_seconds[g] = dcm, ss->compute_seconds[g] = dt - dcm;
        ss->bytes_sent[g] = dc->sent - s0, ss->bytes_recv[g] = dc->recv - r0;
        ss->compute_total += dt - dcm, ss->comm_total += dcm;
        ss->nsteps = g + 1;
        for (size_t k = ps->a != HNN_NO_STEP ? ps->a : ps->act != HNN_NO_STEP ? ps->act : ps->b;
             !st && o->progress && k <= ps->b; k++)
            o->progress(o->progress_ctx, k, &p->steps[k], k == ps->b ? dt : 0);
    }
    vec_release(&v);
    ckks_ct_pool_free(own_pool);
    dist_partition_free(part);
    return st;
}

ppnn_status dist_infer_model(dist_ctx *dc, ckks_ciphertext *out, const hnn_plan *p,
                             ckks_ciphertext *in, int consume, const ckks_relin_key *rk,
                             const hnn_exec_opts *o, uint64_t budget, dist_stats *stats)
{
    return run_model(dc, out, p, in, consume, NULL, rk, o, budget, stats);
}

ppnn_status dist_infer_model_read(dist_ctx *dc, ckks_ciphertext *out, const hnn_plan *p,
                                  const dist_inputs *src, const ckks_relin_key *rk,
                                  const hnn_exec_opts *o, uint64_t budget, dist_stats *stats)
{
    return run_model(dc, out, p, NULL, 1, src, rk, o, budget, stats);
}
