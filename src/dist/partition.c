/* Partition of a plan between R ranks (dist.h): the executor's stages, each split into one
 * share per rank, and which stage inputs every share reads. Pure code on the plan: every rank
 * computes the same partition, so no index list is ever sent. */
#include <stdlib.h>
#include <string.h>

#include "dist/inner.h"

static ppnn_status nomem(void)
{
    return ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
}

static void stage_free(dist_part_stage *g, size_t R)
{
    for (size_t t = 0; g->items && t < R; t++)
        free(g->items[t]);
    for (size_t t = 0; g->need && t < R; t++)
        free(g->need[t]);
    free(g->items), free(g->need), free(g->nitems), free(g->nneed), free(g->owner);
}

void dist_partition_free(dist_partition *d)
{
    if (!d)
        return;
    for (size_t k = 0; d->stages && k < d->nstages; k++)
        stage_free(&d->stages[k], d->nranks);
    free(d->stages);
    free(d);
}

/* Terms of row r of linear step s: [*t0, *t1) into col / w (dense: the whole row). */
static void row_terms(const hnn_step *s, size_t r, size_t *t0, size_t *t1)
{
    *t0 = s->dense ? r * s->n_in : s->row_start[r];
    *t1 = s->dense ? (r + 1) * s->n_in : s->row_start[r + 1];
}

static uint32_t term_col(const hnn_step *s, size_t t)
{
    return s->dense ? (uint32_t)(t % s->n_in) : s->col[t];
}

static size_t out_of_row(const hnn_step *s, size_t r)
{
    return s->dense ? r : s->row_out[r];
}

/* rank_of[0 .. n) -> for each rank t the ascending list of i with rank_of[i] == t. */
static ppnn_status lists_by_rank(size_t *count, uint32_t **list, const uint32_t *rank_of,
                                 size_t n, size_t R)
{
    for (size_t i = 0; i < n; i++)
        count[rank_of[i]]++;
    for (size_t t = 0; t < R; t++) {
        if (!(list[t] = malloc((count[t] ? count[t] : 1) * sizeof **list)))
            return nomem();
        count[t] = 0;
    }
    for (size_t i = 0; i < n; i++)
        list[rank_of[i]][count[rank_of[i]]++] = (uint32_t)i;
    return PPNN_OK;
}

/* Item k of `order` (prefix weight before it `before`, total `total`) goes to rank
 * floor(before · R / total): contiguous runs of equal work. */
static uint32_t block_rank(uint64_t before, uint64_t total, size_t R)
{
    uint64_t t = total ? (uint64_t)((ppnn_u128)before * R / total) : 0;
    return (uint32_t)(t < R ? t : R - 1);
}

/* ROWS: B's rows in the executor's tile order (its tiles concatenated: by the first A row, or
 * stage input, they read, i.e. bands of positions across all channels), cut into R runs of
 * equal work (B terms plus the A terms of the intermediates they read). */
static ppnn_status split_rows(uint32_t *rank_of, const hnn_plan *p, const dist_part_stage *g,
                              const hnn_stage *eg, size_t R)
{
    const hnn_step *a = g->a != HNN_NO_STEP ? &p->steps[g->a] : NULL, *b = &p->steps[g->b];
    uint64_t *wt = malloc((b->n_out ? b->n_out : 1) * sizeof *wt), total = 0;
    if (!wt)
        return nomem();
    for (size_t r = 0; r < b->n_out; r++) {
        size_t t0, t1;
        row_terms(b, r, &t0, &t1);
        uint64_t w = 1 + (t1 - t0);
        for (size_t u = t0; a && u < t1; u++) {
            size_t a0, a1;
            row_terms(a, eg->a_row_of[term_col(b, u)], &a0, &a1);
            w += a1 - a0;
        }
        wt[r] = w, total += w;
    }
    uint64_t before = 0;
    for (size_t k = 0; k < b->n_out; k++) {
        uint32_t r = eg->tile_items[k];
        rank_of[r] = block_rank(before, total, R);
        before += wt[r];
    }
    free(wt);
    return PPNN_OK;
}

/* need[t]: the distinct stage inputs rank t's items read, ascending. */
static ppnn_status stage_needs(dist_part_stage *g, const hnn_plan *p, size_t R)
{
    const hnn_step *a = g->a != HNN_NO_STEP ? &p->steps[g->a] : NULL, *b = &p->steps[g->b];
    uint32_t *stamp = malloc((g->n_in ? g->n_in : 1) * sizeof *stamp);
    uint32_t *a_row_of = a ? malloc(a->n_out * sizeof *a_row_of) : NULL;
    uint8_t *inter = calloc(b->n_in ? b->n_in : 1, 1);
    ppnn_status st = !stamp || (a && !a_row_of) || !inter ? nomem() : PPNN_OK;
    for (size_t i = 0; !st && i < g->n_in; i++)
        stamp[i] = UINT32_MAX;
    for (size_t r = 0; !st && a && r < a->n_out; r++)
        a_row_of[out_of_row(a, r)] = (uint32_t)r;
    for (size_t t = 0; t < R && !st; t++) {
        /* The A rows (or stage inputs) this share computes from. */
        memset(inter, 0, b->n_in ? b->n_in : 1);
        if (g->tiling == HNN_TILE_ROWS) {
            for (size_t j = 0; j < g->nitems[t]; j++) {
                size_t t0, t1;
                row_terms(b, g->items[t][j], &t0, &t1);
                for (size_t u = t0; u < t1; u++)
                    inter[term_col(b, u)] = 1;
            }
        } else {
            for (size_t j = 0; j < g->nitems[t]; j++)
                inter[a ? out_of_row(a, g->items[t][j]) : g->items[t][j]] = 1;
        }
        size_t n = 0;
        for (size_t c = 0; c < b->n_in; c++) {
            if (!inter[c])
                continue;
            if (!a) {
                n += stamp[c] != t, stamp[c] = (uint32_t)t;
                continue;
            }
            size_t t0, t1;
            row_terms(a, a_row_of[c], &t0, &t1);
            for (size_t u = t0; u < t1; u++) {
                uint32_t i = term_col(a, u);
                n += stamp[i] != t, stamp[i] = (uint32_t)t;
            }
        }
        if (!(g->need[t] = malloc((n ? n : 1) * sizeof **g->need))) {
            st = nomem();
            break;
        }
        g->nneed[t] = 0;
        for (size_t i = 0; i < g->n_in; i++)
            if (stamp[i] == t)
                g->need[t][g->nneed[t]++] = (uint32_t)i;
    }
    free(stamp), free(a_row_of), free(inter);
    return st;
}

static ppnn_status split_stage(dist_part_stage *g, const hnn_plan *p, const hnn_stage *eg,
                               const uint32_t *held, size_t R)
{
    const hnn_step *a = g->a != HNN_NO_STEP ? &p->steps[g->a] : NULL, *b = &p->steps[g->b];
    g->owner = calloc(b->n_out ? b->n_out : 1, sizeof *g->owner);
    g->nitems = calloc(R, sizeof *g->nitems), g->items = calloc(R, sizeof *g->items);
    g->nneed = calloc(R, sizeof *g->nneed), g->need = calloc(R, sizeof *g->need);
    if (!g->owner || !g->nitems || !g->items || !g->nneed || !g->need)
        return nomem();
    ppnn_status st;
    if (g->tiling == HNN_TILE_ROWS) {
        if ((st = split_rows(g->owner, p, g, eg, R)))
            return st;
        st = lists_by_rank(g->nitems, g->items, g->owner, b->n_out, R);
        /* owner is indexed by output: B row r computes output out_of_row(b, r) */
        uint32_t *by_out = malloc((b->n_out ? b->n_out : 1) * sizeof *by_out);
        if (!by_out)
            return nomem();
        for (size_t r = 0; r < b->n_out; r++)
            by_out[out_of_row(b, r)] = g->owner[r];
        memcpy(g->owner, by_out, b->n_out * sizeof *by_out);
        free(by_out);
    } else {
        /* COLS: contiguous runs of A's rows; without A the inputs each rank holds. Outputs
         * in contiguous blocks. */
        const size_t nitems = a ? a->n_out : g->n_in;
        uint32_t *rank_of = malloc((nitems ? nitems : 1) * sizeof *rank_of);
        if (!rank_of)
            return nomem();
        for (size_t i = 0; i < nitems; i++)
            rank_of[i] = a ? block_rank(i, nitems, R) : held[i];
        st = lists_by_rank(g->nitems, g->items, rank_of, nitems, R);
        free(rank_of);
        for (size_t o = 0; o < b->n_out; o++)
            g->owner[o] = block_rank(o, b->n_out, R);
        g->bias_rank = 0;
        while (g->bias_rank + 1 < R && !g->nitems[g->bias_rank])
            g->bias_rank++;
    }
    return st ? st : stage_needs(g, p, R);
}

ppnn_status dist_partition_new(dist_partition **out, const hnn_plan *p, size_t nranks)
{
    *out = NULL;
    if (nranks == 0 || nranks > DIST_MAX_RANKS)
        return ppnn_fail(PPNN_ERR_PARAM, "%zu ranks: between 1 and %u are supported", nranks,
                         DIST_MAX_RANKS);
    dist_partition *d = calloc(1, sizeof *d);
    uint32_t *root = calloc(p->n_inputs ? p->n_inputs : 1, sizeof *root); /* all on rank 0 */
    if (!d || !root || !(d->stages = calloc(p->nsteps ? p->nsteps : 1, sizeof *d->stages))) {
        free(d), free(root);
        return nomem();
    }
    d->nranks = nranks;
    /* The executor's stages and tile order (the ring degree only scales its byte counts). */
    hnn_schedule *sched = NULL;
    ppnn_status st = hnn_schedule_new(&sched, p, 1, NULL);
    const uint32_t *held = root;
    for (size_t k = 0; !st && k < sched->nstages; k++) {
        const hnn_stage *eg = &sched->stages[k];
        dist_part_stage *g = &d->stages[d->nstages++];
        g->a = eg->a, g->act = eg->act, g->b = eg->b, g->tiling = eg->tiling;
        g->n_in = eg->n_in, g->n_out = p->steps[eg->b].n_out;
        st = split_stage(g, p, eg, held, nranks);
        held = g->owner;
    }
    hnn_schedule_free(sched);
    free(root);
    if (st) {
        dist_partition_free(d);
        return st;
    }
    *out = d;
    return PPNN_OK;
}

/* Owner of input i of stage g: the previous stage's owners, or rank 0 for the plan inputs. */
static uint32_t owner_in(const dist_partition *d, size_t g, size_t i)
{
    return g ? d->stages[g - 1].owner[i] : 0;
}

size_t dist_partition_moves(const dist_partition *d, size_t g)
{
    const dist_part_stage *s = &d->stages[g];
    size_t moves = 0;
    for (size_t t = 0; t < d->nranks; t++) {
        for (size_t j = 0; j < s->nneed[t]; j++)
            moves += owner_in(d, g, s->need[t][j]) != t;
        /* COLS: every rank with items sends the partial sums of outputs owned elsewhere */
        for (size_t o = 0; s->tiling == HNN_TILE_COLS && s->nitems[t] && o < s->n_out; o++)
            moves += s->owner[o] != t;
    }
    for (size_t o = 0; g + 1 == d->nstages && o < s->n_out; o++) /* results to rank 0 */
        moves += s->owner[o] != 0;
    return moves;
}
