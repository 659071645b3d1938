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

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

ppnn_status dist_share_plan(hnn_plan **out, const hnn_plan *p, const dist_partition *d, size_t g,
                            size_t rank)
{
    *out = NULL;
    const dist_part_stage *st = &d->stages[g];
    const hnn_step *a = st->a != HNN_NO_STEP ? &p->steps[st->a] : NULL;
    const hnn_step *act = st->act != HNN_NO_STEP ? &p->steps[st->act] : NULL;
    const hnn_step *b = &p->steps[st->b];
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
    sp->n_inputs = nneed, sp->n_outputs = nr;
    sp->top_level = sp->steps[0].level_in;
    for (size_t k = 0; k < sp->nsteps; k++)
        sp->depth += sp->steps[k].drop;
    sp->max_logit = p->max_logit, sp->est_error = p->est_error;
    sp->precision_bits = p->precision_bits;
    *out = sp;
    return PPNN_OK;
}

static void free_cts(ckks_ciphertext *c, size_t n)
{
    for (size_t i = 0; c && i < n; i++)
        ckks_ct_free(&c[i]);
    free(c);
}

ppnn_status dist_share_cols(ckks_ciphertext *part, const hnn_plan *p, const dist_partition *d,
                            size_t g, size_t rank, const ckks_ciphertext *in,
                            const ckks_relin_key *rk, const hnn_exec_opts *o)
{
    const dist_part_stage *st = &d->stages[g];
    const hnn_step *a = st->a != HNN_NO_STEP ? &p->steps[st->a] : NULL;
    const hnn_step *act = st->act != HNN_NO_STEP ? &p->steps[st->act] : NULL;
    const hnn_step *b = &p->steps[st->b];
    const size_t ni = st->nitems[rank], nneed = st->nneed[rank], tile = HNN_SCHED_TILE;
    const uint32_t *items = st->items[rank], *need = st->need[rank];
    uint32_t *nmap = malloc((st->n_in ? st->n_in : 1) * sizeof *nmap);
    uint32_t *ic = malloc(tile * sizeof *ic), *ident = malloc(tile * sizeof *ident);
    ckks_ciphertext *tmp = calloc(tile, sizeof *tmp), *pp = calloc(b->n_out, sizeof *pp);
    ppnn_status rc = !nmap || !ic || !ident || !tmp || !pp ? nomem() : PPNN_OK;
    for (size_t j = 0; !rc && j < nneed; j++)
        nmap[need[j]] = (uint32_t)j;
    for (size_t j = 0; !rc && j < tile; j++)
        ident[j] = (uint32_t)j;
    for (size_t c0 = 0; c0 < ni && !rc; c0 += tile) {
        const size_t m = ni - c0 < tile ? ni - c0 : tile;
        hnn_step da, dact;
        memset(&da, 0, sizeof da), memset(&dact, 0, sizeof dact);
        /* The tile's intermediates (B inputs): A's outputs, or the stage inputs themselves. */
        for (size_t j = 0; j < m; j++)
            ic[j] = (uint32_t)(a ? out_of_row(a, items[c0 + j]) : items[c0 + j]);
        if (a) {
            rc = derive_linear(&da, a, items + c0, m, ident, nmap, nneed, m);
            if (!rc)
                rc = hnn_step_linear_sums(tmp, in, &da, o);
            if (!rc)
                rc = hnn_step_linear_finish(tmp, m, &da, rk, o->threads);
        } else {
            for (size_t j = 0; j < m && !rc; j++)
                rc = ckks_ct_copy(&tmp[j], &in[nmap[items[c0 + j]]]);
        }
        if (!rc && act && !(rc = derive_act(&dact, act, ic, m)))
            rc = hnn_step_act(tmp, tmp, &dact, o);
        /* B restricted to the tile's columns, its bias once (bias_rank's first tile). */
        if (!rc) {
            hnn_step bs = *b;
            double *w = malloc(b->n_out * m * sizeof *w);
            if (!w)
                rc = nomem();
            for (size_t r = 0; !rc && r < b->n_out; r++)
                for (size_t j = 0; j < m; j++)
                    w[r * m + j] = b->w[r * b->n_in + ic[j]];
            bs.n_in = m, bs.w = w;
            double *zero = !rc ? calloc(b->n_out, sizeof *zero) : NULL;
            if (!rc && !zero)
                rc = nomem();
            bs.bias = rank == st->bias_rank && c0 == 0 ? b->bias : zero;
            if (!rc)
                rc = hnn_step_linear_sums(c0 ? pp : part, tmp, &bs, o);
            for (size_t r = 0; !rc && c0 && r < b->n_out; r++)
                rc = ckks_add_inplace(&part[r], &pp[r]);
            free(w), free(zero);
        }
        free(da.row_start), free(da.col), free(da.row_out), free(da.w), free(da.bias);
        free(dact.beta), free(dact.square), free(dact.umax), free(dact.utyp);
    }
    free_cts(tmp, tile);
    free_cts(pp, b->n_out);
    free(nmap), free(ic), free(ident);
    return rc;
}

/* Follows the allocations of the model-parallel executor (model_mpi.c): the stage inputs a rank
 * holds (relinearized, rescaled: 2 components), those it receives, then a ROWS share's own
 * peak as the streaming executor reports it (its inputs and outputs included), or a COLS
 * share's partial sums (two sets: the running sum and a tile's), one tile of intermediates and
 * the partial sums it receives for the outputs it owns. */
uint64_t dist_partition_peak_bytes(const dist_partition *d, const hnn_plan *p, size_t rank,
                                   size_t n, int consume)
{
    const uint64_t row = (uint64_t)n * sizeof(uint64_t);
    uint64_t held = rank == 0 ? (uint64_t)p->n_inputs * 2 * (p->top_level + 1) * row : 0;
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
        const uint64_t recv = (st->nneed[rank] - mine) * in_ct;
        if (g == 0 && rank == 0 && consume) /* the batch is released once sent */
            held = mine * in_ct;
        uint64_t during;
        if (st->tiling == HNN_TILE_ROWS) {
            hnn_plan *sp = NULL;
            uint64_t share = 0;
            if (st->nitems[rank]) {
                if (dist_share_plan(&sp, p, d, g, rank) != PPNN_OK)
                    return UINT64_MAX;
                share = hnn_plan_peak_bytes(sp, n);
                hnn_plan_free(sp);
            }
            during = held - mine * in_ct + share;
        } else {
            const uint64_t pre = 3 * (b->level_in + 1) * row;
            const hnn_step *a = st->a != HNN_NO_STEP ? &p->steps[st->a] : NULL;
            const uint64_t inter = 3 * ((a ? a->level_in : b->level_in) + 1) * row;
            size_t senders = 0;
            for (size_t t = 0; t < d->nranks; t++)
                senders += st->nitems[t] && t != rank;
            during = held + recv;
            const size_t tile = st->nitems[rank] < HNN_SCHED_TILE ? st->nitems[rank]
                                                                  : HNN_SCHED_TILE;
            if (st->nitems[rank])
                during += 2 * st->n_out * pre + tile * inter;
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
        uint8_t *mark = malloc(b->n_in ? b->n_in : 1);
        for (size_t t = 0; mark && t < d->nranks; t++) {
            if (!st->nitems[t])
                continue;
            /* A partial sum has 3 components when the rank's intermediates include a square */
            size_t size = 2;
            share_inter(mark, p, st, t);
            for (size_t c = 0; st->act != HNN_NO_STEP && c < b->n_in; c++)
                size = mark[c] && p->steps[st->act].square[c] ? 3 : size;
            const uint64_t part = size * (b->level_in + 1) * n * wb + hdr;
            for (size_t o = 0; t == rank && o < st->n_out; o++)
                *sent += st->owner[o] != rank ? part : 0;
            *recv += t != rank ? nown * part : 0;
        }
        free(mark);
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
