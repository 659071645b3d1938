/* Streaming schedule: stages, tiles and their peak memory (hnn.h), computed from the plan and
 * the ring degree before any ciphertext exists. The executor (exec.c) allocates exactly what
 * stage_peak() below counts, in the same order, so the peak it reports is the peak the run has
 * (up to the allocator's rounding and per-thread kernel scratch). */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "hnn/inner.h"

/* ---- what a tile reads ---------------------------------------------------------------------- */

ppnn_status _hnn_needs_init(hnn_tile_needs *nd, const hnn_plan *p, const hnn_stage *g)
{
    memset(nd, 0, sizeof *nd);
    const hnn_step *b = &p->steps[g->b];
    size_t n_inter = b->n_in, n_in = g->n_in;
    nd->inter = malloc((n_inter ? n_inter : 1) * sizeof *nd->inter);
    nd->a_rows = malloc((n_inter ? n_inter : 1) * sizeof *nd->a_rows);
    nd->inputs = malloc((n_in ? n_in : 1) * sizeof *nd->inputs);
    nd->mark_inter = calloc(n_inter ? n_inter : 1, sizeof *nd->mark_inter);
    nd->mark_in = calloc(n_in ? n_in : 1, sizeof *nd->mark_in);
    if (!nd->inter || !nd->a_rows || !nd->inputs || !nd->mark_inter || !nd->mark_in) {
        _hnn_needs_free(nd);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the tile schedule");
    }
    return PPNN_OK;
}

void _hnn_needs_free(hnn_tile_needs *nd)
{
    free(nd->inter), free(nd->a_rows), free(nd->inputs), free(nd->mark_inter), free(nd->mark_in);
    memset(nd, 0, sizeof *nd);
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

/* Terms [t0, t1) of row r of a linear step: sparse rows index col[], dense rows all inputs. */
static void row_terms(const hnn_step *s, size_t r, size_t *t0, size_t *t1)
{
    *t0 = s->dense ? 0 : s->row_start[r];
    *t1 = s->dense ? s->n_in : s->row_start[r + 1];
}

static uint32_t term_col(const hnn_step *s, size_t t) { return s->dense ? (uint32_t)t : s->col[t]; }

/* A's output index of A row r. */
static uint32_t a_out_of_row(const hnn_step *a, size_t r)
{
    return a->dense ? (uint32_t)r : a->row_out[r];
}

/* Adds the stage inputs read by A row r. */
static void add_a_inputs(hnn_tile_needs *nd, const hnn_step *a, size_t r)
{
    size_t t0, t1;
    row_terms(a, r, &t0, &t1);
    for (size_t t = t0; t < t1; t++) {
        uint32_t c = term_col(a, t);
        if (nd->mark_in[c] != nd->epoch)
            nd->mark_in[c] = nd->epoch, nd->inputs[nd->ninputs++] = c;
    }
}

void _hnn_tile_needs(hnn_tile_needs *nd, const hnn_plan *p, const hnn_stage *g, size_t t)
{
    const hnn_step *a = g->a != HNN_NO_STEP ? &p->steps[g->a] : NULL, *b = &p->steps[g->b];
    const uint32_t *it = g->tile_items + g->tile_start[t];
    const size_t nit = g->tile_start[t + 1] - g->tile_start[t];
    nd->epoch++;
    if (nd->epoch == 0) { /* wrapped: clear the marks once every 2^32 tiles */
        memset(nd->mark_inter, 0, b->n_in * sizeof *nd->mark_inter);
        memset(nd->mark_in, 0, g->n_in * sizeof *nd->mark_in);
        nd->epoch = 1;
    }
    nd->ninter = nd->na_rows = nd->ninputs = 0;
    if (g->tiling == HNN_TILE_ROWS) {
        for (size_t k = 0; k < nit; k++) {
            size_t t0, t1;
            row_terms(b, it[k], &t0, &t1);
            for (size_t u = t0; u < t1; u++) {
                uint32_t c = term_col(b, u);
                if (nd->mark_inter[c] != nd->epoch)
                    nd->mark_inter[c] = nd->epoch, nd->inter[nd->ninter++] = c;
            }
        }
        qsort(nd->inter, nd->ninter, sizeof *nd->inter, cmp_u32);
        if (a) {
            for (size_t k = 0; k < nd->ninter; k++)
                nd->a_rows[k] = g->a_row_of[nd->inter[k]];
            nd->na_rows = nd->ninter;
            qsort(nd->a_rows, nd->na_rows, sizeof *nd->a_rows, cmp_u32);
        }
    } else if (a) { /* COLS over A rows */
        for (size_t k = 0; k < nit; k++) {
            nd->a_rows[k] = it[k];
            nd->inter[k] = a_out_of_row(a, it[k]);
        }
        nd->na_rows = nd->ninter = nit;
    } else { /* COLS over the stage inputs */
        memcpy(nd->inter, it, nit * sizeof *it);
        nd->ninter = nit;
    }
    if (a) {
        for (size_t k = 0; k < nd->na_rows; k++)
            add_a_inputs(nd, a, nd->a_rows[k]);
        qsort(nd->inputs, nd->ninputs, sizeof *nd->inputs, cmp_u32);
    } else {
        memcpy(nd->inputs, nd->inter, nd->ninter * sizeof *nd->inter);
        nd->ninputs = nd->ninter;
    }
}

ppnn_status _hnn_input_uses(size_t *first, size_t *last, const hnn_plan *p, const hnn_stage *g)
{
    hnn_tile_needs nd;
    ppnn_status st = _hnn_needs_init(&nd, p, g);
    if (st)
        return st;
    for (size_t i = 0; i < g->n_in; i++)
        first[i] = SIZE_MAX, last[i] = 0;
    for (size_t t = 0; t < g->ntiles; t++) {
        _hnn_tile_needs(&nd, p, g, t);
        for (size_t k = 0; k < nd.ninputs; k++) {
            size_t i = nd.inputs[k];
            if (first[i] == SIZE_MAX)
                first[i] = t;
            last[i] = t;
        }
    }
    _hnn_needs_free(&nd);
    return PPNN_OK;
}

/* ---- stages and tiles ----------------------------------------------------------------------- */

size_t _hnn_stage_level_in(const hnn_plan *p, const hnn_stage *g)
{
    size_t k = g->a != HNN_NO_STEP ? g->a : g->act != HNN_NO_STEP ? g->act : g->b;
    return p->steps[k].level_in;
}

static void stage_free(hnn_stage *g)
{
    free(g->tile_start), free(g->tile_items), free(g->a_row_of);
    g->tile_start = NULL, g->tile_items = NULL, g->a_row_of = NULL;
}

void hnn_schedule_free(hnn_schedule *s)
{
    if (!s)
        return;
    for (size_t k = 0; k < s->nstages; k++)
        stage_free(&s->stages[k]);
    free(s->stages);
    free(s);
}

/* Groups the steps into stages [LINEAR A] [ACT] LINEAR B. */
static size_t group_stages(hnn_stage *g, const hnn_plan *p, int fuse)
{
    size_t ns = 0;
    for (size_t k = 0; k < p->nsteps;) {
        hnn_stage *s = &g[ns++];
        memset(s, 0, sizeof *s);
        s->a = s->act = HNN_NO_STEP;
        const hnn_step *st = &p->steps[k];
        if (st->kind == HNN_STEP_LINEAR && fuse && k + 2 < p->nsteps &&
            p->steps[k + 1].kind == HNN_STEP_ACT && p->steps[k + 2].kind == HNN_STEP_LINEAR) {
            s->a = k, s->act = k + 1, s->b = k + 2, k += 3;
        } else if (st->kind == HNN_STEP_ACT) {
            assert(k + 1 < p->nsteps && p->steps[k + 1].kind == HNN_STEP_LINEAR);
            s->act = k, s->b = k + 1, k += 2;
        } else {
            s->b = k, k += 1;
        }
        size_t first = s->a != HNN_NO_STEP ? s->a : s->act != HNN_NO_STEP ? s->act : s->b;
        s->n_in = p->steps[first].n_in;
    }
    return ns;
}

typedef struct {
    uint32_t key, row;
} keyed;

static int cmp_keyed(const void *x, const void *y)
{
    const keyed *a = x, *b = y;
    if (a->key != b->key)
        return (a->key > b->key) - (a->key < b->key);
    return (a->row > b->row) - (a->row < b->row);
}

/* Cuts the stage into tiles of about `items` items (ROWS with A: `items` intermediates). */
static ppnn_status build_tiles(hnn_stage *g, const hnn_plan *p, size_t items)
{
    const hnn_step *a = g->a != HNN_NO_STEP ? &p->steps[g->a] : NULL, *b = &p->steps[g->b];
    free(g->tile_start), free(g->tile_items);
    g->tile_start = NULL, g->tile_items = NULL;
    if (!g->a_row_of && a) {
        g->a_row_of = malloc(a->n_out * sizeof *g->a_row_of);
        if (!g->a_row_of)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the tile schedule");
        for (size_t r = 0; r < a->n_out; r++)
            g->a_row_of[a_out_of_row(a, r)] = (uint32_t)r;
    }
    g->tiling = (b->dense || g->sparse_cols) && (a || g->act != HNN_NO_STEP) ? HNN_TILE_COLS
                                                                           : HNN_TILE_ROWS;
    size_t nitems = g->tiling == HNN_TILE_ROWS ? b->n_out : a ? a->n_out : g->n_in;
    g->tile_items = malloc((nitems ? nitems : 1) * sizeof *g->tile_items);
    g->tile_start = malloc((nitems + 1) * sizeof *g->tile_start);
    if (!g->tile_items || !g->tile_start)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the tile schedule");
    if (items == 0)
        items = 1;
    if (g->tiling == HNN_TILE_COLS) {
        for (size_t i = 0; i < nitems; i++)
            g->tile_items[i] = (uint32_t)i;
        g->ntiles = 0;
        for (size_t i = 0; i < nitems; i += items)
            g->tile_start[g->ntiles++] = i;
        g->tile_start[g->ntiles] = nitems;
        g->recomputed = 0;
        return PPNN_OK;
    }
    /* ROWS: B rows in the order of the first A row (or stage input) they read. */
    keyed *kr = malloc((nitems ? nitems : 1) * sizeof *kr);
    uint32_t *mark = calloc(b->n_in ? b->n_in : 1, sizeof *mark);
    if (!kr || !mark) {
        free(kr), free(mark);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the tile schedule");
    }
    for (size_t r = 0; r < nitems; r++) {
        size_t t0, t1;
        row_terms(b, r, &t0, &t1);
        uint32_t key = UINT32_MAX;
        for (size_t u = t0; u < t1; u++) {
            uint32_t c = term_col(b, u), k = a ? g->a_row_of[c] : c;
            key = k < key ? k : key;
        }
        kr[r] = (keyed){key, (uint32_t)r};
    }
    qsort(kr, nitems, sizeof *kr, cmp_keyed);
    /* Greedy cut: a tile closes when it has `items` distinct intermediates (A outputs it must
     * compute; without A, the B inputs it reads). */
    size_t count = 0, total = 0;
    uint32_t epoch = 1;
    g->ntiles = 0;
    for (size_t k = 0; k < nitems; k++) {
        if (k == 0 || count >= items) {
            g->tile_start[g->ntiles++] = k;
            total += count, count = 0, epoch++;
        }
        size_t r = kr[k].row, t0, t1;
        g->tile_items[k] = (uint32_t)r;
        row_terms(b, r, &t0, &t1);
        for (size_t u = t0; u < t1; u++) {
            uint32_t c = term_col(b, u);
            if (mark[c] != epoch)
                mark[c] = epoch, count++;
        }
    }
    total += count;
    g->tile_start[g->ntiles] = nitems;
    g->recomputed = a && total > a->n_out ? total - a->n_out : 0;
    free(kr), free(mark);
    return PPNN_OK;
}

/* *pay = 1 when g (A, a sparse B) would recompute more than 1/16 of A's outputs in ROWS tiles
 * of the default size (a pruned dense layer after a conv): COLS tiles then pay. Leaves g in
 * ROWS tiles of that size. */
static ppnn_status sparse_cols_pay(int *pay, hnn_stage *g, const hnn_plan *p)
{
    *pay = 0;
    if (g->a == HNN_NO_STEP || p->steps[g->b].dense)
        return PPNN_OK;
    g->sparse_cols = 0;
    ppnn_status st = build_tiles(g, p, HNN_SCHED_TILE);
    *pay = !st && g->recomputed > p->steps[g->a].n_out / 16;
    return st;
}

/* ---- peak memory ---------------------------------------------------------------------------- */

static uint64_t ct_bytes(size_t size, size_t level, size_t n)
{
    return (uint64_t)size * (level + 1) * n * sizeof(uint64_t);
}

uint64_t _hnn_inter_bytes(const hnn_plan *p, const hnn_stage *g, size_t n)
{
    if (g->a != HNN_NO_STEP) {
        const hnn_step *a = &p->steps[g->a];
        size_t lo = a->level_in - a->drop;
        uint64_t x = ct_bytes(2, a->level_in, n), y = ct_bytes(3, lo, n);
        return g->act != HNN_NO_STEP ? (x > y ? x : y) : x;
    }
    if (g->act != HNN_NO_STEP)
        return ct_bytes(3, p->steps[g->act].level_in, n);
    return 0;
}

uint64_t _hnn_out_work_bytes(const hnn_plan *p, const hnn_stage *g, size_t n)
{
    const hnn_step *b = &p->steps[g->b];
    return ct_bytes(g->act != HNN_NO_STEP ? 3 : 2, b->level_in, n);
}

static uint64_t out_final_bytes(const hnn_plan *p, const hnn_stage *g, size_t n)
{
    const hnn_step *b = &p->steps[g->b];
    return ct_bytes(2, b->level_in - b->drop, n);
}

static uint64_t weight_bytes(const hnn_step *s)
{
    size_t nw = s->dense ? s->n_out * s->n_in : s->nnz;
    return (uint64_t)(s->level_in + 1) * (nw + s->n_out) * sizeof(uint64_t);
}

/* Simulates stage k of s: the bytes alive at every tile (inputs per their kind, the tile's
 * intermediates, outputs in the making or accumulators, finished outputs kept in memory,
 * encoded weights). */
static ppnn_status stage_peak(uint64_t *peak, const hnn_plan *p, const hnn_schedule *s, size_t k)
{
    const hnn_stage *g = &s->stages[k];
    const size_t n = s->n;
    const hnn_step *b = &p->steps[g->b];
    const uint64_t in_ct = ct_bytes(2, _hnn_stage_level_in(p, g), n);
    const uint64_t inter = _hnn_inter_bytes(p, g, n), work = _hnn_out_work_bytes(p, g, n);
    const uint64_t fin = out_final_bytes(p, g, n);
    uint64_t wts = weight_bytes(b) + (g->a != HNN_NO_STEP ? weight_bytes(&p->steps[g->a]) : 0);
    size_t *first = malloc((g->n_in ? g->n_in : 1) * sizeof *first);
    size_t *last = malloc((g->n_in ? g->n_in : 1) * sizeof *last);
    /* ends[t]: inputs whose last use is tile t; begins[t]: first use (streamed). */
    size_t *ends = calloc(g->ntiles + 1, sizeof *ends), *begins = calloc(g->ntiles + 1, sizeof *begins);
    hnn_tile_needs nd;
    ppnn_status st = PPNN_OK;
    if (!first || !last || !ends || !begins)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the tile schedule");
    if (!st)
        st = _hnn_input_uses(first, last, p, g);
    if (!st)
        st = _hnn_needs_init(&nd, p, g);
    if (st) {
        free(first), free(last), free(ends), free(begins);
        return st;
    }
    size_t live = 0;
    for (size_t i = 0; i < g->n_in; i++) {
        if (first[i] == SIZE_MAX) { /* never read (e.g. zero-padded pixels of no tile) */
            if (g->input != HNN_INPUT_STREAMED)
                live += g->input == HNN_INPUT_RESIDENT;
            continue;
        }
        ends[last[i]]++;
        begins[first[i]]++;
        if (g->input != HNN_INPUT_STREAMED)
            live++;
    }
    const int keep_out = !g->spill; /* the last stage writes the caller's outputs: kept too */
    uint64_t done = 0, best = 0;
    const uint64_t acc = g->tiling == HNN_TILE_COLS ? (uint64_t)b->n_out * work : 0;
    for (size_t t = 0; t < g->ntiles; t++) {
        _hnn_tile_needs(&nd, p, g, t);
        if (g->input == HNN_INPUT_STREAMED)
            live = g->reload ? nd.ninputs : live + begins[t];
        uint64_t rows = g->tiling == HNN_TILE_ROWS ? g->tile_start[t + 1] - g->tile_start[t] : 0;
        uint64_t total = live * in_ct + nd.ninter * inter + acc + rows * work + done * fin + wts +
                         (k > 0 ? s->resident_bytes : 0);
        best = total > best ? total : best;
        if (keep_out)
            done += rows;
        if (g->input != HNN_INPUT_RESIDENT && !(g->input == HNN_INPUT_STREAMED && g->reload))
            live -= ends[t];
    }
    _hnn_needs_free(&nd);
    free(first), free(last), free(ends), free(begins);
    *peak = best;
    return PPNN_OK;
}

static ppnn_status compute_peaks(hnn_schedule *s, const hnn_plan *p)
{
    /* The caller's resident inputs stay allocated for the whole run (counted by stage 0 as its
     * inputs, by the later stages here). */
    s->resident_bytes = 0;
    s->peak_bytes = 0;
    s->spill_bytes = 0;
    for (size_t k = 0; k < s->nstages; k++) {
        hnn_stage *g = &s->stages[k];
        if (s->stages[0].input == HNN_INPUT_RESIDENT)
            s->resident_bytes = (uint64_t)p->n_inputs * ct_bytes(2, p->top_level, s->n);
        ppnn_status st = stage_peak(&g->peak_bytes, p, s, k);
        if (st)
            return st;
        s->peak_bytes = g->peak_bytes > s->peak_bytes ? g->peak_bytes : s->peak_bytes;
        if (g->spill)
            s->spill_bytes += (uint64_t)p->steps[g->b].n_out * out_final_bytes(p, g, s->n);
    }
    return PPNN_OK;
}

static void set_input_kinds(hnn_schedule *s, int inputs_streamed)
{
    for (size_t k = 0; k < s->nstages; k++)
        s->stages[k].input = k == 0 ? (inputs_streamed ? HNN_INPUT_STREAMED : HNN_INPUT_RESIDENT)
                             : s->stages[k - 1].spill ? HNN_INPUT_STREAMED
                                                      : HNN_INPUT_OWNED;
}

/* Builds a schedule with every stage at `items` items per tile; spill flags as given. */
static ppnn_status schedule_build(hnn_schedule **out, const hnn_plan *p, size_t n, int fuse,
                                  int inputs_streamed)
{
    hnn_schedule *s = calloc(1, sizeof *s);
    hnn_stage *g = s ? calloc(p->nsteps, sizeof *g) : NULL;
    if (!g) {
        free(s);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the tile schedule");
    }
    s->stages = g;
    s->nstages = group_stages(g, p, fuse);
    s->n = n;
    set_input_kinds(s, inputs_streamed);
    *out = s;
    return PPNN_OK;
}

uint64_t hnn_schedule_min_bytes(const hnn_plan *p, size_t n, int inputs_streamed, int allow_spill)
{
    hnn_schedule *s;
    uint64_t best = UINT64_MAX;
    if (schedule_build(&s, p, n, 1, inputs_streamed))
        return best;
    for (size_t k = 0; k < s->nstages; k++) {
        s->stages[k].spill = allow_spill && k + 1 < s->nstages;
        if (build_tiles(&s->stages[k], p, 1))
            goto out;
    }
    set_input_kinds(s, inputs_streamed);
    for (size_t k = 0; k < s->nstages; k++)
        s->stages[k].reload = s->stages[k].input == HNN_INPUT_STREAMED;
    if (compute_peaks(s, p))
        goto out;
    /* A stage hnn_schedule_new runs in COLS tiles over a sparse B may need less there (its
     * accumulators instead of the intermediates one B row reads), or less back in ROWS tiles
     * (its fallback): the smaller of the two. */
    for (size_t k = 0; k < s->nstages; k++) {
        hnn_stage *g = &s->stages[k];
        uint64_t rows = g->peak_bytes, cols = UINT64_MAX;
        int pick = 0;
        if (sparse_cols_pay(&pick, g, p) || build_tiles(g, p, 1))
            goto out;
        if (!pick)
            continue;
        g->sparse_cols = 1;
        if (build_tiles(g, p, 1) || stage_peak(&cols, p, s, k))
            goto out;
        if (cols >= rows) {
            g->sparse_cols = 0;
            if (build_tiles(g, p, 1))
                goto out;
        }
    }
    if (!compute_peaks(s, p))
        best = s->peak_bytes;
out:
    hnn_schedule_free(s);
    return best;
}

ppnn_status hnn_schedule_new(hnn_schedule **out, const hnn_plan *p, size_t n,
                             const hnn_schedule_opts *opts)
{
    *out = NULL;
    hnn_schedule_opts dflt;
    memset(&dflt, 0, sizeof dflt);
    const hnn_schedule_opts *o = opts ? opts : &dflt;
    hnn_schedule *s;
    ppnn_status st = schedule_build(&s, p, n, !o->no_fusion, o->inputs_streamed);
    if (st)
        return st;
    size_t *items = malloc(s->nstages * sizeof *items);
    if (!items) {
        hnn_schedule_free(s);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the tile schedule");
    }
    for (size_t k = 0; k < s->nstages && !st; k++) {
        hnn_stage *g = &s->stages[k];
        /* Without fusion a stage materialises its layer (one tile), as version 1 did. */
        items[k] = o->tile ? o->tile : o->no_fusion ? SIZE_MAX : HNN_SCHED_TILE;
        g->spill = o->force_spill && o->allow_spill && k + 1 < s->nstages;
        /* ROWS tiles of a sparse B (a pruned dense layer in CSR) share A's outputs: every tile
         * computes again the ones its rows read. After the CryptoNets conv, 240-item tiles of a
         * 90 %-pruned dense layer computed the 845 conv outputs ~8 times over (25x the conv's
         * time). When more than 1/16 of A's outputs would be recomputed, the stage runs in
         * COLS tiles over A's rows (each A output once, absorbed into every B accumulator
         * through a per-tile CSR; one tile of all of them held 1.5 GB at 90 % pruning); with
         * rows_only, in one ROWS tile. The loop below halves tiles if the budget requires. */
        int pick = 0;
        st = sparse_cols_pay(&pick, g, p);
        if (!st && pick && !o->rows_only)
            g->sparse_cols = 1;
        else if (!st && pick && !o->tile)
            items[k] = SIZE_MAX;
        if (!st)
            st = build_tiles(g, p, items[k]);
    }
    set_input_kinds(s, o->inputs_streamed);
    if (!st)
        st = compute_peaks(s, p);
    /* Fit the budget: at the stage with the peak, halve the tiles while tiles can still make
     * the difference (the peak with one-item tiles would fit), else spill that stage's outputs,
     * then its inputs (the previous stage's outputs). */
    while (!st && o->budget_bytes && s->peak_bytes > o->budget_bytes) {
        size_t k = 0;
        for (size_t j = 0; j < s->nstages; j++)
            if (s->stages[j].peak_bytes == s->peak_bytes)
                k = j;
        hnn_stage *g = &s->stages[k];
        size_t cur = items[k];
        uint64_t at_min = 0;
        if (cur > 1) {
            if ((st = build_tiles(g, p, 1)) || (st = stage_peak(&at_min, p, s, k)))
                break;
        }
        if (cur > 1 && at_min <= o->budget_bytes) {
            size_t now = cur;
            if (now == SIZE_MAX) /* one tile: all intermediates (ROWS) or all items (COLS) */
                now = g->tiling == HNN_TILE_ROWS ? p->steps[g->b].n_in : g->tile_start[g->ntiles];
            items[k] = now / 2 ? now / 2 : 1;
            st = build_tiles(g, p, items[k]);
        } else if (g->sparse_cols) { /* COLS accumulators too big: ROWS tiles, recomputing */
            g->sparse_cols = 0;
            items[k] = HNN_SCHED_TILE;
            st = build_tiles(g, p, items[k]);
        } else if (g->input == HNN_INPUT_STREAMED && !g->reload) {
            g->reload = 1;
            st = build_tiles(g, p, cur);
        } else if (o->allow_spill && k + 1 < s->nstages && !g->spill) {
            g->spill = 1;
            st = build_tiles(g, p, cur);
        } else if (o->allow_spill && k > 0 && !s->stages[k - 1].spill) {
            s->stages[k - 1].spill = 1;
            st = build_tiles(g, p, cur);
        } else {
            if (cur > 1)
                st = build_tiles(g, p, cur);
            if (!st) {
                uint64_t min_spill = hnn_schedule_min_bytes(p, n, o->inputs_streamed, 1);
                uint64_t min_mem = hnn_schedule_min_bytes(p, n, o->inputs_streamed, 0);
                st = ppnn_fail(PPNN_ERR_NOMEM,
                               "memory budget %.0f MB is below the minimum this model needs at "
                               "N = %zu: %.0f MB%s (%.0f MB without spilling to scratch)",
                               (double)o->budget_bytes / 1e6, n,
                               (double)(o->allow_spill ? min_spill : min_mem) / 1e6,
                               o->allow_spill ? " with spilling" : "", (double)min_mem / 1e6);
            }
            break;
        }
        if (!st) {
            set_input_kinds(s, o->inputs_streamed);
            st = compute_peaks(s, p);
        }
    }
    free(items);
    if (st) {
        hnn_schedule_free(s);
        return st;
    }
    s->budget_bytes = o->budget_bytes;
    *out = s;
    return PPNN_OK;
}

uint64_t hnn_plan_peak_bytes(const hnn_plan *p, size_t n)
{
    hnn_schedule *s;
    if (hnn_schedule_new(&s, p, n, NULL))
        return UINT64_MAX;
    uint64_t b = s->peak_bytes;
    hnn_schedule_free(s);
    return b;
}
