/* One rank's share of a stage (dist.h): a ROWS share as a plan of its own, run by the
 * streaming executor; a COLS share as partial sums, tile by tile, with the hnn step pieces.
 * Both compute every output residue with the same kernels from the same inputs as hnn_infer.
 * Plain code (no MPI): test_dist_partition runs whole partitions in one process. */
#include <stdlib.h>
#include <string.h>

#include "dist/inner.h"

static ppnn_status nomem(void)
{
    return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for a rank's share");
}

static void row_terms(const hnn_step *s, size_t r, size_t *t0, size_t *t1)
{
    *t0 = s->dense ? r * s->n_in : s->row_start[r];
    *t1 = s->dense ? (r + 1) * s->n_in : s->row_start[r + 1];
}

static size_t out_of_row(const hnn_step *s, size_t r)
{
    return s->dense ? r : s->row_out[r];
}

/* d = the rows rows[0 .. nr) of linear step s (d's output j = row rows[j]; its row_out[j] =
 * out_idx[j]), reading inputs renumbered by in_map (s's input i -> d's input in_map[i]) among
 * n_in. A dense s gives a dense d (every input read; in_map must be the identity). d's arrays
 * are fresh (freed by hnn_plan_free). */
static ppnn_status derive_linear(hnn_step *d, const hnn_step *s, const uint32_t *rows, size_t nr,
                                 const uint32_t *out_idx, const uint32_t *in_map, size_t n_in,
                                 size_t n_out)
{
    *d = *s;
    d->row_start = d->col = d->row_out = NULL, d->w = d->bias = NULL;
    d->beta = NULL, d->square = NULL, d->umax = d->utyp = NULL; /* ACT-only arrays */
    d->n_in = n_in, d->n_out = n_out;
    size_t nnz = 0;
    for (size_t j = 0; j < nr; j++) {
        size_t t0, t1;
        row_terms(s, rows[j], &t0, &t1);
        nnz += t1 - t0;
    }
    d->bias = calloc(n_out ? n_out : 1, sizeof *d->bias);
    d->w = malloc((nnz ? nnz : 1) * sizeof *d->w);
    if (!d->bias || !d->w)
        return nomem();
    if (s->dense) {
        for (size_t j = 0; j < nr; j++) {
            memcpy(d->w + j * n_in, s->w + (size_t)rows[j] * s->n_in, n_in * sizeof *d->w);
            d->bias[out_idx[j]] = s->bias[rows[j]];
        }
        return PPNN_OK;
    }
    d->row_start = malloc((nr + 1) * sizeof *d->row_start);
    d->col = malloc((nnz ? nnz : 1) * sizeof *d->col);
    d->row_out = malloc((nr ? nr : 1) * sizeof *d->row_out);
    if (!d->row_start || !d->col || !d->row_out)
        return nomem();
    size_t t = 0;
    for (size_t j = 0; j < nr; j++) {
        size_t r = rows[j], t0, t1;
        row_terms(s, r, &t0, &t1);
        d->row_start[j] = (uint32_t)t;
        d->row_out[j] = out_idx[j];
        d->bias[out_idx[j]] = s->bias[s->row_out[r]];
        for (size_t u = t0; u < t1; u++, t++)
            d->col[t] = in_map[s->col[u]], d->w[t] = s->w[u];
    }
    d->row_start[nr] = (uint32_t)t;
    d->nnz = nnz;
    return PPNN_OK;
}

/* d = activation s on the elements idx[0 .. n). */
static ppnn_status derive_act(hnn_step *d, const hnn_step *s, const uint32_t *idx, size_t n)
{
    *d = *s;
    d->n_in = d->n_out = n;
    d->beta = malloc((n ? n : 1) * sizeof *d->beta);
    d->square = malloc(n ? n : 1);
    /* The noise model's per-element sizes (noise.c) travel with their elements. */
    d->umax = s->umax ? malloc((n ? n : 1) * sizeof *d->umax) : NULL;
    d->utyp = s->utyp ? malloc((n ? n : 1) * sizeof *d->utyp) : NULL;
    if (!d->beta || !d->square || (s->umax && !d->umax) || (s->utyp && !d->utyp))
        return nomem();
    for (size_t j = 0; j < n; j++) {
        d->beta[j] = s->beta[idx[j]], d->square[j] = s->square[idx[j]];
        if (d->umax)
            d->umax[j] = s->umax[idx[j]];
        if (d->utyp)
            d->utyp[j] = s->utyp[idx[j]];
    }
    return PPNN_OK;
}

/* d = linear step s restricted to its input columns cols[0 .. m) (d's input j = s's input
 * cols[j]), every output; s's bias when with_bias, else zero (a partial sum carries the bias
 * once). A sparse s (a pruned dense layer) gives a sparse d: every row, only its terms on
 * those columns. */
static ppnn_status derive_cols(hnn_step *d, const hnn_step *s, const uint32_t *cols, size_t m,
                               int with_bias)
{
    *d = *s;
    d->row_start = d->col = d->row_out = NULL, d->w = d->bias = NULL;
    d->beta = NULL, d->square = NULL, d->umax = d->utyp = NULL;
    d->n_in = m;
    d->bias = calloc(s->n_out ? s->n_out : 1, sizeof *d->bias);
    if (!d->bias)
        return nomem();
    if (with_bias)
        memcpy(d->bias, s->bias, s->n_out * sizeof *d->bias);
    if (s->dense) {
        d->w = malloc((s->n_out * m + 1) * sizeof *d->w);
        if (!d->w)
            return nomem();
        for (size_t r = 0; r < s->n_out; r++)
            for (size_t j = 0; j < m; j++)
                d->w[r * m + j] = s->w[r * s->n_in + cols[j]];
        return PPNN_OK;
    }
    uint32_t *pos = malloc((s->n_in ? s->n_in : 1) * sizeof *pos);
    d->row_start = malloc((s->n_out + 1) * sizeof *d->row_start);
    d->row_out = malloc((s->n_out ? s->n_out : 1) * sizeof *d->row_out);
    d->col = malloc((s->nnz ? s->nnz : 1) * sizeof *d->col);
    d->w = malloc((s->nnz ? s->nnz : 1) * sizeof *d->w);
    if (!pos || !d->row_start || !d->row_out || !d->col || !d->w) {
        free(pos);
        return nomem();
    }
    for (size_t i = 0; i < s->n_in; i++)
        pos[i] = UINT32_MAX;
    for (size_t j = 0; j < m; j++)
        pos[cols[j]] = (uint32_t)j;
    size_t t = 0;
    for (size_t r = 0; r < s->n_out; r++) {
        d->row_start[r] = (uint32_t)t;
        d->row_out[r] = s->row_out[r];
        for (size_t u = s->row_start[r]; u < s->row_start[r + 1]; u++)
            if (pos[s->col[u]] != UINT32_MAX)
                d->col[t] = pos[s->col[u]], d->w[t++] = s->w[u];
    }
    d->row_start[s->n_out] = (uint32_t)t;
    d->nnz = t;
    free(pos);
    return PPNN_OK;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

static void share_plan_finish(hnn_plan *sp, const hnn_plan *p, size_t n_inputs, size_t n_outputs)
{
    sp->n_inputs = n_inputs, sp->n_outputs = n_outputs;
    sp->top_level = sp->steps[0].level_in;
    for (size_t k = 0; k < sp->nsteps; k++)
        sp->depth += sp->steps[k].drop;
    sp->max_logit = p->max_logit, sp->est_error = p->est_error;
    sp->precision_bits = p->precision_bits;
}

/* COLS: A's rows items[rank] (ascending; row j' writes intermediate j'), the activation on
 * those intermediates, and B on those columns (all outputs; the bias on bias_rank). Without A
 * the intermediates are the stage inputs items[rank] (= need[rank]). */
static ppnn_status share_plan_cols(hnn_plan **out, const hnn_plan *p, const dist_partition *d,
                                   size_t g, size_t rank)
{
    const dist_part_stage *st = &d->stages[g];
    const hnn_step *a = st->a != HNN_NO_STEP ? &p->steps[st->a] : NULL;
    const hnn_step *act = st->act != HNN_NO_STEP ? &p->steps[st->act] : NULL;
    const hnn_step *b = &p->steps[st->b];
    const size_t ni = st->nitems[rank], nneed = st->nneed[rank];
    const uint32_t *items = st->items[rank], *need = st->need[rank];
    hnn_plan *sp = calloc(1, sizeof *sp);
    uint32_t *nmap = malloc((st->n_in ? st->n_in : 1) * sizeof *nmap); /* stage in -> need */
    uint32_t *ic = malloc((ni ? ni : 1) * sizeof *ic);    /* intermediate j' -> B column */
    uint32_t *ident = malloc((ni ? ni : 1) * sizeof *ident);
    ppnn_status rc = !sp || !nmap || !ic || !ident ? nomem() : PPNN_OK;
    if (!rc && !(sp->steps = calloc(3, sizeof *sp->steps)))
        rc = nomem();
    for (size_t j = 0; !rc && j < nneed; j++)
        nmap[need[j]] = (uint32_t)j;
    for (size_t j = 0; !rc && j < ni; j++) {
        ic[j] = (uint32_t)(a ? out_of_row(a, items[j]) : items[j]);
        ident[j] = (uint32_t)j;
    }
    if (!rc && a)
        rc = derive_linear(&sp->steps[sp->nsteps++], a, items, ni, ident, nmap, nneed, ni);
    if (!rc && act)
        rc = derive_act(&sp->steps[sp->nsteps++], act, ic, ni);
    if (!rc)
        rc = derive_cols(&sp->steps[sp->nsteps++], b, ic, ni, rank == st->bias_rank);
    free(nmap), free(ic), free(ident);
    if (rc) {
        hnn_plan_free(sp);
        return rc;
    }
    share_plan_finish(sp, p, nneed, b->n_out);
    *out = sp;
    return PPNN_OK;
}

ppnn_status dist_share_plan(hnn_plan **out, const hnn_plan *p, const dist_partition *d, size_t g,
                            size_t rank)
{
    *out = NULL;
    const dist_part_stage *st = &d->stages[g];
    const hnn_step *a = st->a != HNN_NO_STEP ? &p->steps[st->a] : NULL;
    const hnn_step *act = st->act != HNN_NO_STEP ? &p->steps[st->act] : NULL;
    const hnn_step *b = &p->steps[st->b];
    if (st->tiling == HNN_TILE_COLS)
        return share_plan_cols(out, p, d, g, rank);
    const size_t nr = st->nitems[rank], nneed = st->nneed[rank];
    const uint32_t *rows = st->items[rank], *need = st->need[rank];
    hnn_plan *sp = calloc(1, sizeof *sp);
    uint32_t *imap = malloc((b->n_in ? b->n_in : 1) * sizeof *imap);   /* B input -> inter */
    uint32_t *nmap = malloc((st->n_in ? st->n_in : 1) * sizeof *nmap); /* stage in -> need */
    uint32_t *inter = malloc((b->n_in ? b->n_in : 1) * sizeof *inter), *ident = NULL;
    uint32_t *arows = NULL, *aout = NULL;
    ppnn_status rc = !sp || !imap || !nmap || !inter ? nomem() : PPNN_OK;
    if (!rc && !(sp->steps = calloc(3, sizeof *sp->steps)))
        rc = nomem();
    /* The intermediates B's rows read, ascending; without A they are stage inputs. */
    size_t ni = 0;
    for (size_t c = 0; !rc && c < b->n_in; c++)
        imap[c] = UINT32_MAX;
    for (size_t j = 0; !rc && j < nr; j++) {
        size_t t0, t1;
        row_terms(b, rows[j], &t0, &t1);
        for (size_t u = t0; u < t1; u++) {
            uint32_t c = b->dense ? (uint32_t)(u % b->n_in) : b->col[u];
            if (imap[c] == UINT32_MAX)
                imap[c] = 0, inter[ni++] = c;
        }
    }
    if (!rc)
        qsort(inter, ni, sizeof *inter, cmp_u32);
    for (size_t j = 0; !rc && j < ni; j++)
        imap[inter[j]] = (uint32_t)j;
    for (size_t j = 0; !rc && j < nneed; j++)
        nmap[need[j]] = (uint32_t)j;
    if (!rc && !(ident = malloc((ni > nr ? ni : nr) * sizeof *ident + 1)))
        rc = nomem();
    for (size_t j = 0; !rc && j < (ni > nr ? ni : nr); j++)
        ident[j] = (uint32_t)j;
    if (!rc && a) {
        /* A's rows computing the intermediates, in A's row order (the kernels share inputs
         * between adjacent rows); row j' writes intermediate aout[j']. */
        uint32_t *a_row_of = malloc(a->n_out * sizeof *a_row_of);
        arows = malloc((ni ? ni : 1) * sizeof *arows), aout = malloc((ni ? ni : 1) * sizeof *aout);
        if (!a_row_of || !arows || !aout)
            rc = nomem();
        for (size_t r = 0; !rc && r < a->n_out; r++)
            a_row_of[out_of_row(a, r)] = (uint32_t)r;
        for (size_t j = 0; !rc && j < ni; j++)
            arows[j] = a_row_of[inter[j]];
        if (!rc)
            qsort(arows, ni, sizeof *arows, cmp_u32);
        for (size_t j = 0; !rc && j < ni; j++)
            aout[j] = imap[out_of_row(a, arows[j])];
        free(a_row_of);
        if (!rc)
            rc = derive_linear(&sp->steps[sp->nsteps++], a, arows, ni, aout, nmap, nneed, ni);
    }
    if (!rc && act)
        rc = derive_act(&sp->steps[sp->nsteps++], act, inter, ni);
    if (!rc) {
        /* without A the intermediates are the stage inputs: need == inter */
        rc = derive_linear(&sp->steps[sp->nsteps++], b, rows, nr, ident, imap, ni, nr);
    }
    free(imap), free(nmap), free(inter), free(ident), free(arows), free(aout);
    if (rc) {
        hnn_plan_free(sp);
        return rc;
    }
    share_plan_finish(sp, p, nneed, nr);
    *out = sp;
    return PPNN_OK;
}

ppnn_status _dist_share_schedule(hnn_schedule **out, const hnn_plan *sp, size_t n,
                                 size_t nranks, uint64_t budget, int streamed)
{
    /* HNN_SCHED_TILE is two of the linear kernels' 120-output chunks (hnn/inner.h,
     * HNN_TILE_OUT): on two ranks or more, a rank's tile is one chunk, so the kernels still
     * run whole chunks while two ranks together hold one process's tile working set (the
     * intermediates of a tile, which do not shrink with the share). */
    hnn_schedule_opts so = {.budget_bytes = budget, .inputs_streamed = streamed,
                            .tile = nranks > 1 ? HNN_SCHED_TILE / 2 : 0};
    return hnn_schedule_new(out, sp, n, &so);
}

/* Follows the allocations of the model-parallel executor (model_mpi.c): the stage inputs a rank
 * holds (relinearized, rescaled: 2 components) and does not read, then its share's own peak
 * as the streaming executor computes it (_dist_share_schedule; the inputs it reads, held or
 * received, counted as resident — an upper bound for those freed after their last tile — but
 * streamed stage-0 inputs as streamed; outputs, or a COLS share's partial sums of every
 * output, included), plus in a COLS stage the partial sums it receives for the outputs it
 * owns. */
uint64_t dist_partition_peak_bytes(const dist_partition *d, const hnn_plan *p, size_t rank,
                                   size_t n, unsigned flags)
{
    const uint64_t row = (uint64_t)n * sizeof(uint64_t);
    const int streamed = (flags & DIST_PEAK_STREAMED) != 0;
    const int consume = (flags & DIST_PEAK_CONSUME) != 0;
    uint64_t held = rank == 0 && !streamed
                        ? (uint64_t)p->n_inputs * 2 * (p->top_level + 1) * row : 0;
    uint64_t peak = held;
    for (size_t g = 0; g < d->nstages; g++) {
        const dist_part_stage *st = &d->stages[g];
        const hnn_step *b = &p->steps[st->b];
        const size_t first = st->a != HNN_NO_STEP ? st->a : st->act != HNN_NO_STEP ? st->act
                                                                                   : st->b;
        const uint64_t in_ct = 2 * (p->steps[first].level_in + 1) * row;
        const uint64_t post = 2 * (b->level_in + 1 - b->drop) * row;
        size_t mine = 0, nown = 0;
        for (size_t j = 0; j < st->nneed[rank]; j++)
            mine += (g ? d->stages[g - 1].owner[st->need[rank][j]] : 0) == rank;
        for (size_t o = 0; o < st->n_out; o++)
            nown += st->owner[o] == rank;
        if (g == 0 && rank == 0 && consume && !streamed) /* the batch is released once sent */
            held = mine * in_ct;
        if (g == 0 && streamed) /* nothing held: the share's schedule counts what it reads */
            held = mine * in_ct;
        uint64_t share = 0;
        if (st->nitems[rank]) {
            hnn_plan *sp = NULL;
            hnn_schedule *sc = NULL;
            ppnn_status rc = dist_share_plan(&sp, p, d, g, rank);
            if (!rc)
                rc = _dist_share_schedule(&sc, sp, n, d->nranks, 0, g == 0 && streamed);
            share = rc ? 0 : sc->peak_bytes;
            hnn_schedule_free(sc);
            hnn_plan_free(sp);
            if (rc)
                return UINT64_MAX;
        }
        uint64_t during = held - mine * in_ct + share;
        if (st->tiling == HNN_TILE_COLS) {
            const uint64_t pre = 3 * (b->level_in + 1) * row; /* a partial sum */
            size_t senders = 0;
            for (size_t t = 0; t < d->nranks; t++)
                senders += st->nitems[t] && t != rank;
            during += senders * nown * pre;
        }
        if (g + 1 == d->nstages && rank == 0) /* gathering every result */
            during += st->n_out * post;
        peak = during > peak ? during : peak;
        held = nown * post;
    }
    return peak;
}

/* The intermediates (B inputs) of rank's share of stage g: ROWS, those its B rows read;
 * COLS, its items' A outputs (or the items themselves). mark: b->n_in bytes, set to 1. */
static void share_inter(uint8_t *mark, const hnn_plan *p, const dist_part_stage *st,
                        size_t rank)
{
    const hnn_step *a = st->a != HNN_NO_STEP ? &p->steps[st->a] : NULL, *b = &p->steps[st->b];
    memset(mark, 0, b->n_in ? b->n_in : 1);
    for (size_t j = 0; j < st->nitems[rank]; j++) {
        uint32_t r = st->items[rank][j];
        if (st->tiling == HNN_TILE_COLS) {
            mark[a ? out_of_row(a, r) : r] = 1;
            continue;
        }
        size_t t0, t1;
        row_terms(b, r, &t0, &t1);
        for (size_t u = t0; u < t1; u++)
            mark[b->dense ? u % b->n_in : b->col[u]] = 1;
    }
}

void dist_partition_traffic(uint64_t *sent, uint64_t *recv, const dist_partition *d,
                            const hnn_plan *p, size_t g, size_t rank, size_t n)
{
    const uint64_t hdr = 7 * sizeof(uint64_t), wb = sizeof(uint64_t); /* comm_mpi.c header */
    const dist_part_stage *st = &d->stages[g];
    const hnn_step *b = &p->steps[st->b];
    const size_t first = st->a != HNN_NO_STEP ? st->a : st->act != HNN_NO_STEP ? st->act : st->b;
    const uint64_t in_ct = (g ? 2 : 1) * (p->steps[first].level_in + 1) * n * wb + hdr;
    *sent = *recv = 0;
    for (size_t t = 0; t < d->nranks; t++)
        for (size_t j = 0; j < st->nneed[t]; j++) {
            uint32_t o = g ? d->stages[g - 1].owner[st->need[t][j]] : 0;
            *sent += o == rank && t != rank ? in_ct : 0;
            *recv += t == rank && o != rank ? in_ct : 0;
        }
    size_t nown = 0;
    for (size_t o = 0; o < st->n_out; o++)
        nown += st->owner[o] == rank;
    if (st->tiling == HNN_TILE_COLS) {
        /* A partial sum is one of the executor's accumulators: 3 components at B's level. */
        const uint64_t part = 3 * (b->level_in + 1) * n * wb + hdr;
        for (size_t t = 0; t < d->nranks; t++) {
            if (!st->nitems[t])
                continue;
            for (size_t o = 0; t == rank && o < st->n_out; o++)
                *sent += st->owner[o] != rank ? part : 0;
            *recv += t != rank ? nown * part : 0;
        }
    }
    if (g + 1 == d->nstages) { /* the results, to rank 0 */
        const uint64_t res = 2 * (b->level_in + 1 - b->drop) * n * wb + hdr;
        *sent += rank ? nown * res : 0;
        *recv += rank ? 0 : (st->n_out - nown) * res;
    }
}

void dist_partition_work(dist_work *w, const dist_partition *d, const hnn_plan *p, size_t g,
                         size_t rank)
{
    const dist_part_stage *st = &d->stages[g];
    const hnn_step *a = st->a != HNN_NO_STEP ? &p->steps[st->a] : NULL, *b = &p->steps[st->b];
    memset(w, 0, sizeof *w);
    uint8_t *mark = malloc(b->n_in ? b->n_in : 1);
    uint32_t *a_row_of = a ? malloc(a->n_out * sizeof *a_row_of) : NULL;
    if (!mark || (a && !a_row_of)) {
        free(mark), free(a_row_of);
        return;
    }
    for (size_t r = 0; a && r < a->n_out; r++)
        a_row_of[out_of_row(a, r)] = (uint32_t)r;
    share_inter(mark, p, st, rank);
    for (size_t c = 0; c < b->n_in; c++) {
        if (!mark[c])
            continue;
        w->acts += st->act != HNN_NO_STEP;
        if (a) {
            size_t t0, t1;
            row_terms(a, a_row_of[c], &t0, &t1);
            w->a_terms += t1 - t0;
        }
    }
    if (st->tiling == HNN_TILE_ROWS) {
        for (size_t j = 0; j < st->nitems[rank]; j++) {
            size_t t0, t1;
            row_terms(b, st->items[rank][j], &t0, &t1);
            w->b_terms += t1 - t0;
        }
        w->finishes = st->nitems[rank];
    } else {
        w->b_terms = (uint64_t)st->n_out * st->nitems[rank];
        for (size_t o = 0; o < st->n_out; o++)
            w->finishes += st->owner[o] == rank;
    }
    free(mark), free(a_row_of);
}
