/* Partition of a plan between R ranks (dist.h): which rank computes which outputs of every
 * step, and which inputs it must read. Pure code on the plan: every rank computes the same
 * partition, so no index list is ever sent. */
#include <stdlib.h>
#include <string.h>

#include "dist/inner.h"

/* A sparse step's rows go to the rank holding most of their inputs when the heaviest rank then
 * carries at most this factor of the average work (plus one row); else contiguous blocks. */
#define OWNER_COMPUTES_SLACK 1.15
/* A dense step may be split by input columns only when no rank holds more than this factor
 * of the average share of the inputs (else the partial sums would serialise on one rank). */
#define COLS_BALANCE 1.25

static void step_free(dist_part_step *s, size_t R)
{
    for (size_t t = 0; s->rows && t < R; t++)
        free(s->rows[t]);
    for (size_t t = 0; s->need && t < R; t++)
        free(s->need[t]);
    free(s->rows), free(s->need), free(s->nrows), free(s->nneed), free(s->owner);
}

void dist_partition_free(dist_partition *d)
{
    if (!d)
        return;
    for (size_t k = 0; d->steps && k < d->nsteps; k++)
        step_free(&d->steps[k], d->nranks);
    free(d->steps);
    free(d);
}

static ppnn_status step_alloc(dist_part_step *s, size_t R, size_t n_out)
{
    s->owner = calloc(n_out ? n_out : 1, sizeof *s->owner);
    s->nrows = calloc(R, sizeof *s->nrows);
    s->rows = calloc(R, sizeof *s->rows);
    s->nneed = calloc(R, sizeof *s->nneed);
    s->need = calloc(R, sizeof *s->need);
    if (!s->owner || !s->nrows || !s->rows || !s->nneed || !s->need)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
    return PPNN_OK;
}

/* rank_of[0 .. n) -> for each rank t the ascending list of i with rank_of[i] == t. */
static ppnn_status lists_by_rank(size_t *count, uint32_t **list, const uint32_t *rank_of,
                                 size_t n, size_t R)
{
    for (size_t i = 0; i < n; i++)
        count[rank_of[i]]++;
    for (size_t t = 0; t < R; t++) {
        list[t] = malloc((count[t] ? count[t] : 1) * sizeof **list);
        if (!list[t])
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
        count[t] = 0;
    }
    for (size_t i = 0; i < n; i++)
        list[rank_of[i]][count[rank_of[i]]++] = (uint32_t)i;
    return PPNN_OK;
}

/* Contiguous blocks of items of equal total weight: item i (prefix weight before it `before`,
 * total `total`) goes to rank floor(before · R / total). */
static uint32_t block_rank(uint64_t before, uint64_t total, size_t R)
{
    uint64_t t = total ? (uint64_t)((ppnn_u128)before * R / total) : 0;
    return (uint32_t)(t < R ? t : R - 1);
}

static uint64_t row_weight(const hnn_step *s, size_t r)
{
    return 1 + (s->dense ? s->n_in : s->row_start[r + 1] - s->row_start[r]);
}

/* Rows of a sparse step: owner-computes when balanced, else contiguous blocks of work. */
static ppnn_status assign_sparse_rows(uint32_t *rank_of, const hnn_step *s, const uint32_t *held,
                                      int all_on_root, size_t R)
{
    uint64_t total = 0, *load = calloc(R, sizeof *load), maxrow = 0;
    uint32_t *cnt = calloc(R, sizeof *cnt);
    if (!load || !cnt) {
        free(load), free(cnt);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
    }
    for (size_t r = 0; r < s->n_out; r++) {
        uint64_t w = row_weight(s, r);
        total += w;
        maxrow = w > maxrow ? w : maxrow;
    }
    int balanced = 0;
    if (!all_on_root && R > 1) {
        for (size_t r = 0; r < s->n_out; r++) {
            uint32_t best = 0;
            for (size_t t = s->row_start[r]; t < s->row_start[r + 1]; t++)
                cnt[held[s->col[t]]]++;
            for (size_t t = s->row_start[r]; t < s->row_start[r + 1]; t++) {
                uint32_t h = held[s->col[t]];
                if (cnt[h] > cnt[best] || (cnt[h] == cnt[best] && h < best))
                    best = h;
            }
            for (size_t t = s->row_start[r]; t < s->row_start[r + 1]; t++)
                cnt[held[s->col[t]]] = 0;
            rank_of[r] = best;
            load[best] += row_weight(s, r);
        }
        uint64_t mx = 0;
        for (size_t t = 0; t < R; t++)
            mx = load[t] > mx ? load[t] : mx;
        balanced = (double)mx <= OWNER_COMPUTES_SLACK * (double)total / (double)R + (double)maxrow;
    }
    if (!balanced) {
        uint64_t before = 0;
        for (size_t r = 0; r < s->n_out; r++) {
            rank_of[r] = block_rank(before, total, R);
            before += row_weight(s, r);
        }
    }
    free(load), free(cnt);
    return PPNN_OK;
}

/* need[t]: the ascending, distinct inputs read by rows[t] of a sparse step. */
static ppnn_status sparse_needs(dist_part_step *ps, const hnn_step *s, size_t R)
{
    uint32_t *stamp = malloc((s->n_in ? s->n_in : 1) * sizeof *stamp);
    if (!stamp)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
    for (size_t i = 0; i < s->n_in; i++)
        stamp[i] = UINT32_MAX;
    ppnn_status st = PPNN_OK;
    for (size_t t = 0; t < R && !st; t++) {
        size_t n = 0;
        for (size_t j = 0; j < ps->nrows[t]; j++) {
            uint32_t r = ps->rows[t][j];
            for (size_t x = s->row_start[r]; x < s->row_start[r + 1]; x++)
                if (stamp[s->col[x]] != t)
                    stamp[s->col[x]] = (uint32_t)t, n++;
        }
        ps->need[t] = malloc((n ? n : 1) * sizeof **ps->need);
        if (!ps->need[t]) {
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
            break;
        }
        ps->nneed[t] = 0;
        for (size_t i = 0; i < s->n_in; i++) /* ascending: scan the stamps */
            if (stamp[i] == t)
                ps->need[t][ps->nneed[t]++] = (uint32_t)i;
    }
    free(stamp);
    return st;
}

static ppnn_status all_inputs(dist_part_step *ps, size_t t, size_t n_in)
{
    ps->need[t] = malloc((n_in ? n_in : 1) * sizeof **ps->need);
    if (!ps->need[t])
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
    for (size_t i = 0; i < n_in; i++)
        ps->need[t][i] = (uint32_t)i;
    ps->nneed[t] = n_in;
    return PPNN_OK;
}

static ppnn_status split_step(dist_part_step *ps, const hnn_step *s, const uint32_t *held,
                              size_t R)
{
    ppnn_status st = step_alloc(ps, R, s->n_out);
    if (st)
        return st;
    int all_on_root = 1;
    size_t *nheld = calloc(R, sizeof *nheld);
    uint32_t *rank_of = malloc((s->n_out ? s->n_out : 1) * sizeof *rank_of);
    if (!nheld || !rank_of) {
        free(nheld), free(rank_of);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
    }
    for (size_t i = 0; i < s->n_in; i++)
        nheld[held[i]]++, all_on_root &= held[i] == 0;
    if (s->kind == HNN_STEP_ACT) {
        ps->split = DIST_SPLIT_ELEMS;
        memcpy(ps->owner, held, s->n_out * sizeof *held);
        st = lists_by_rank(ps->nneed, ps->need, held, s->n_in, R);
    } else if (!s->dense) {
        ps->split = DIST_SPLIT_ROWS;
        st = assign_sparse_rows(rank_of, s, held, all_on_root, R);
        if (!st)
            st = lists_by_rank(ps->nrows, ps->rows, rank_of, s->n_out, R);
        for (size_t r = 0; !st && r < s->n_out; r++)
            ps->owner[s->row_out[r]] = rank_of[r];
        if (!st)
            st = sparse_needs(ps, s, R);
    } else {
        /* Dense: outputs in contiguous blocks either way. ROWS moves every input a rank with
         * rows lacks; COLS moves every partial sum of an output owned elsewhere. */
        for (size_t o = 0; o < s->n_out; o++)
            rank_of[o] = block_rank(o, s->n_out, R);
        size_t *nown = calloc(R, sizeof *nown), maxheld = 0;
        if (!nown) {
            free(nheld), free(rank_of);
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
        }
        for (size_t o = 0; o < s->n_out; o++)
            nown[rank_of[o]]++;
        uint64_t vrows = 0, vcols = 0;
        for (size_t t = 0; t < R; t++) {
            vrows += nown[t] ? s->n_in - nheld[t] : 0;
            vcols += nheld[t] ? s->n_out - nown[t] : 0;
            maxheld = nheld[t] > maxheld ? nheld[t] : maxheld;
        }
        free(nown);
        int balanced = (double)maxheld <= COLS_BALANCE * (double)s->n_in / (double)R + 1;
        ps->split = !all_on_root && balanced && vcols < vrows ? DIST_SPLIT_COLS : DIST_SPLIT_ROWS;
        memcpy(ps->owner, rank_of, s->n_out * sizeof *rank_of);
        st = lists_by_rank(ps->nrows, ps->rows, rank_of, s->n_out, R);
        if (!st && ps->split == DIST_SPLIT_COLS) {
            st = lists_by_rank(ps->nneed, ps->need, held, s->n_in, R);
            ps->bias_rank = R;
            for (size_t t = 0; t < R && ps->bias_rank == R; t++)
                if (ps->nneed[t])
                    ps->bias_rank = t;
            if (ps->bias_rank == R)
                ps->bias_rank = 0;
        }
        for (size_t t = 0; !st && ps->split == DIST_SPLIT_ROWS && t < R; t++) {
            if (ps->nrows[t])
                st = all_inputs(ps, t, s->n_in);
            else if (!(ps->need[t] = malloc(sizeof **ps->need)))
                st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
        }
    }
    free(nheld), free(rank_of);
    return st;
}

ppnn_status dist_partition_new(dist_partition **out, const hnn_plan *p, size_t nranks)
{
    *out = NULL;
    if (nranks == 0 || nranks > DIST_MAX_RANKS)
        return ppnn_fail(PPNN_ERR_PARAM, "%zu ranks: between 1 and %u are supported", nranks,
                         DIST_MAX_RANKS);
    dist_partition *d = calloc(1, sizeof *d);
    uint32_t *held = calloc(p->n_inputs ? p->n_inputs : 1, sizeof *held); /* all on rank 0 */
    if (!d || !held || !(d->steps = calloc(p->nsteps ? p->nsteps : 1, sizeof *d->steps))) {
        free(d), free(held);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory partitioning the plan");
    }
    d->nranks = nranks;
    d->nsteps = p->nsteps;
    ppnn_status st = PPNN_OK;
    const uint32_t *cur = held;
    for (size_t k = 0; k < p->nsteps && !st; k++) {
        st = split_step(&d->steps[k], &p->steps[k], cur, nranks);
        cur = d->steps[k].owner;
    }
    free(held);
    if (st) {
        dist_partition_free(d);
        return st;
    }
    *out = d;
    return PPNN_OK;
}

/* Owner of each input of step k: the previous step's owners, or rank 0 for the plan inputs. */
static uint32_t owner_in(const dist_partition *d, size_t k, size_t i)
{
    return k ? d->steps[k - 1].owner[i] : 0;
}

size_t dist_partition_moves(const dist_partition *d, const hnn_plan *p, size_t k)
{
    const dist_part_step *ps = &d->steps[k];
    const hnn_step *s = &p->steps[k];
    size_t moves = 0;
    if (ps->split == DIST_SPLIT_ROWS) {
        for (size_t t = 0; t < d->nranks; t++)
            for (size_t j = 0; j < ps->nneed[t]; j++)
                moves += owner_in(d, k, ps->need[t][j]) != t;
    } else if (ps->split == DIST_SPLIT_COLS) {
        for (size_t t = 0; t < d->nranks; t++)
            for (size_t o = 0; ps->nneed[t] && o < s->n_out; o++)
                moves += ps->owner[o] != t;
    }
    if (k + 1 == p->nsteps) /* the results are gathered on rank 0 */
        for (size_t o = 0; o < s->n_out; o++)
            moves += ps->owner[o] != 0;
    return moves;
}

/* Follows the allocations of the model-parallel executor (model_mpi.c) with the step pieces
 * of hnn (step.c): a LINEAR share allocates its outputs at the input size and level, then
 * relinearizes, rescales and shrinks them to 2 x (l + 1 - drop) rows; an activation squares
 * in place (3 components); a COLS share holds a partial sum of every output plus the partial
 * sums it receives for its own outputs. */
uint64_t dist_partition_peak_bytes(const dist_partition *d, const hnn_plan *p, size_t rank,
                                   size_t n)
{
    const uint64_t row = (uint64_t)n * sizeof(uint64_t);
    uint64_t held = rank == 0 ? (uint64_t)p->n_inputs * 2 * (p->top_level + 1) * row : 0;
    uint64_t peak = held, held_ct = 2 * (p->top_level + 1) * row;
    size_t size = 2;
    for (size_t k = 0; k < p->nsteps; k++) {
        const dist_part_step *ps = &d->steps[k];
        const hnn_step *s = &p->steps[k];
        const size_t l = s->level_in;
        const uint64_t pre = (uint64_t)size * (l + 1) * row, post = 2 * (l + 1 - s->drop) * row;
        uint64_t during, after;
        if (ps->split == DIST_SPLIT_ELEMS) {
            held_ct = 3 * (l + 1) * row;
            held = ps->nneed[rank] * held_ct;
            peak = held > peak ? held : peak;
            size = 3;
            continue;
        }
        if (ps->split == DIST_SPLIT_ROWS) {
            size_t recv = 0;
            for (size_t j = 0; j < ps->nneed[rank]; j++)
                recv += owner_in(d, k, ps->need[rank][j]) != rank;
            during = held + recv * held_ct + ps->nrows[rank] * pre;
        } else {
            size_t senders = 0;
            for (size_t t = 0; t < d->nranks; t++)
                senders += ps->nneed[t] && t != rank;
            during = held + (ps->nneed[rank] ? s->n_out * pre : 0) +
                     senders * ps->nrows[rank] * pre;
        }
        after = ps->nrows[rank] * post;
        if (k + 1 == p->nsteps && rank == 0) /* gathering every result */
            during += (uint64_t)s->n_out * post;
        peak = during > peak ? during : peak;
        held = after, held_ct = post;
        size = 2;
    }
    return peak;
}
