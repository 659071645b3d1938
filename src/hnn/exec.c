/* Streaming executor: runs a plan's schedule (schedule.c) on element-wise packed ciphertexts.
 *
 * Levels and scales. Inputs at level L, scale s. A LINEAR step at level l that drops one
 * prime multiplies by integers round(w·q_l) (scale s·q_l), adds round(bias·s)·q_l to c_0 (the
 * NTT of a constant polynomial is that constant in every coefficient), relinearizes its outputs
 * when the inputs had 3 components, and rescales by q_l: the scale returns exactly to s. An ACT
 * step adds β (unless folded into the previous bias) and squares: scale s², 3 components, not
 * relinearized, not rescaled; its linear elements are multiplied by the integer round(s) and
 * labelled with scale s² (relative error 2^-(log2 s + 1), far below the CKKS noise). The
 * LINEAR step after it reads inputs at scale S = s² and drops two primes: weights at
 * Δw = q_l·q_{l-1}/sqrt(S), bias round(b·sqrt(S))·q_l·q_{l-1}, output scale sqrt(S)·q_l·q_{l-1},
 * which the two rescales bring back exactly to sqrt(S) = s.
 *
 * Same answers for every schedule. Each output residue is bias + Σ w·x mod q whatever the tile
 * split (the kernels return exact residues and the accumulating kernel adds mod q), every
 * output is relinearized once and rescaled in the same order, so the ciphertexts are identical
 * bit for bit for every budget, fused or not, spilled or not. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <omp.h>

#include "hnn/inner.h"

__extension__ typedef unsigned __int128 u128;

void hnn_budget_from_params(hnn_budget *b, const ckks_params *params, const char *name)
{
    b->name = name;
    b->levels = params->nq - 1;
    b->log2_scale = log2(params->scale);
    b->log2_q0 = log2((double)params->q[0]);
    b->logn = params->logn;
}

/* Per-prime integer weights round(w·Δw) mod q_i and biases round(b·s)·D mod q_i for the
 * primes q_0..q_l: arrays nw x (l+1) and n_out x (l+1) (biases in row order), prime-major.
 * scale_out: the scale the outputs return to after the step's rescales. */
ppnn_status _hnn_encode_linear(uint64_t *wq, uint64_t *bq, const hnn_step *s,
                              const ckks_params *prm, size_t l, double scale_out)
{
    const size_t nw = s->dense ? s->n_out * s->n_in : s->nnz;
    /* The dropped primes: their product D (mod each q_i, and as a real number). */
    double D = 1;
    for (size_t d = 0; d < s->drop; d++)
        D *= (double)prm->q[l - d];
    const double dw = s->drop == 1 ? (double)prm->q[l] : D / scale_out;
    for (size_t t = 0; t < nw; t++) {
        double v = round(s->w[t] * dw);
        if (!(fabs(v) < 0x1p62))
            return ppnn_fail(PPNN_ERR_NUMERIC, "layer %zu (%s): weight %g too large to encode",
                             s->layer, s->name, s->w[t]);
        for (size_t i = 0; i <= l; i++)
            wq[i * nw + t] = mq_from_int64((int64_t)v, &prm->ring->primes[i].mod);
    }
    for (size_t r = 0; r < s->n_out; r++) {
        size_t o = s->dense ? r : s->row_out[r];
        double v = round(s->bias[o] * scale_out);
        if (!(fabs(v) < 0x1p62))
            return ppnn_fail(PPNN_ERR_NUMERIC, "layer %zu (%s): bias %g too large to encode",
                             s->layer, s->name, s->bias[o]);
        for (size_t i = 0; i <= l; i++) {
            uint64_t q = prm->q[i], dq = 1;
            for (size_t d = 0; d < s->drop; d++)
                dq = (uint64_t)((u128)dq * (prm->q[l - d] % q) % q);
            /* Row order: the sparse kernel adds bias[r] to its row r. */
            bq[i * s->n_out + r] =
                (uint64_t)((u128)mq_from_int64((int64_t)v, &prm->ring->primes[i].mod) * dq % q);
        }
    }
    return PPNN_OK;
}

static int nthreads(int t)
{
    return t > 0 ? t : omp_get_max_threads();
}

/* Called on a worker thread after a failure: the first failure's code and message (recorded
 * on that thread) are kept for the caller's thread. */
void _hnn_keep_first_error(ppnn_status *err, char *msg, size_t len, ppnn_status e)
{
#pragma omp critical(hnn_err)
    if (!*err) {
        *err = e;
        snprintf(msg, len, "%s", ppnn_last_error());
    }
}

/* Scale of a linear step's outputs before its rescales (= the kernels' output scale) and after
 * them, for inputs at scale `in`, following exactly the arithmetic ckks_rescale does. */
void _hnn_linear_scales(double *pre, double *post, double *scale_out, const hnn_step *s,
                        const ckks_params *prm, double in)
{
    const size_t l = s->level_in;
    *scale_out = s->drop == 1 ? in : sqrt(in);
    double v = *scale_out;
    for (size_t d = 0; d < s->drop; d++)
        v *= (double)prm->q[l - d];
    *pre = v;
    for (size_t d = 0; d < s->drop; d++)
        v /= (double)prm->q[l - d];
    *post = v;
}

/* ---- sources of stage inputs ---------------------------------------------------------------- */

typedef struct {
    const ckks_ciphertext *in;
} array_src;

static ppnn_status array_get(hnn_source *s, size_t i, size_t level, const ckks_ciphertext **out)
{
    (void)level;
    *out = &((array_src *)s->ctx)->in[i];
    return PPNN_OK;
}

static void array_release(hnn_source *s, size_t i) { (void)s, (void)i; }

static void owned_release(hnn_source *s, size_t i)
{
    ckks_ct_free(&((ckks_ciphertext *)((array_src *)s->ctx)->in)[i]);
}

typedef struct {
    hnn_spill *sp;
    ckks_ciphertext *cache;
    ckks_ct_pool *pool;
} spill_src;

static ppnn_status spill_get(hnn_source *s, size_t i, size_t level, const ckks_ciphertext **out)
{
    (void)level;
    spill_src *c = s->ctx;
    ckks_ct_attach(&c->cache[i], c->pool);
    ppnn_status st = _hnn_spill_get(c->sp, i, &c->cache[i]);
    *out = &c->cache[i];
    return st;
}

static void spill_release(hnn_source *s, size_t i)
{
    ckks_ct_free(&((spill_src *)s->ctx)->cache[i]);
}

/* ---- one stage ------------------------------------------------------------------------------ */

typedef struct {
    const hnn_plan *p;
    const hnn_stage *g;
    const ckks_params *prm;
    const ckks_relin_key *rk;
    const hnn_exec_opts *o;
    const hnn_step *a, *act, *b;
    size_t n, la, lb, nwa, nwb, lin, inter_words;
    double in_scale, a_pre, a_post, a_sout, b_in_scale, b_pre, b_post, b_sout;
    uint64_t *wqa, *bqa, *wqb, *bqb;
    uint32_t *cs_start, *cs_col;       /* COLS over a sparse B: per-tile CSR (regroup_cols) */
    ckks_ciphertext *inter;            /* b->n_in slots; live only inside a tile */
    const ckks_ciphertext **cur;       /* stage inputs currently held (NULL: not held) */
    uint64_t *zero;
    uint32_t *rows;                    /* scratch: a tile's B rows sorted */
    ckks_ciphertext *out;              /* B outputs (caller's out for the last stage) */
    hnn_spill *spill_out;              /* non-NULL: outputs go there */
    ckks_ct_pool *pool;                /* buffers of inter and (but in the last stage) out */
    int pool_out;
    int raw;                           /* outputs left unfinished (hnn_exec_opts.raw_outputs) */
    const ckks_ciphertext *held0;      /* stage input 0, already got (the run's first look) */
    size_t stage;
    double t_a, t_act, t_b;
} stage_run;

/* Buffers of one _hnn_linear_run call: jobs, the moduli, and per job its output row pointers
 * and per plane (prime x component) its input pointers. */
typedef struct {
    hnn_linear_job *jobs;
    hnn_modulus *mods;
    uint64_t **y;
    const uint64_t **x;
} job_bufs;

static void job_bufs_free(job_bufs *b)
{
    free(b->jobs), free(b->mods), free(b->y), free((void *)b->x);
}

static ppnn_status job_bufs_init(job_bufs *b, const stage_run *r, size_t njobs, size_t nprimes,
                                 size_t ny, size_t nx, const hnn_step *s)
{
    b->jobs = malloc((njobs ? njobs : 1) * sizeof *b->jobs);
    b->mods = malloc(nprimes * sizeof *b->mods);
    b->y = malloc((ny ? ny : 1) * sizeof *b->y);
    b->x = calloc(nx ? nx : 1, sizeof *b->x); /* NULL: an input this tile does not hold */
    if (!b->jobs || !b->mods || !b->y || !b->x) {
        job_bufs_free(b);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory in layer %zu", s->layer);
    }
    for (size_t i = 0; i < nprimes; i++)
        hnn_modulus_init(&b->mods[i], r->prm->q[i]);
    return PPNN_OK;
}

/* Runs the rows list[0..cnt) (sorted) of linear step s at level l in contiguous runs, the row
 * computing output o writing dst[o]; inputs src[srcidx[0..nsrc)] (missing components read 0).
 * Every prime, component and run is one job of a single _hnn_linear_run (one parallel
 * region). Each plane has its own input array, NULL outside the tile's inputs: the sparse
 * kernel packs whole input windows, skipping only NULL entries. */
static ppnn_status linear_rows(stage_run *r, const hnn_step *s, const uint32_t *list, size_t cnt,
                               ckks_ciphertext *dst, const uint64_t *wq, const uint64_t *bq,
                               size_t l, size_t size, const ckks_ciphertext *const *src,
                               size_t nsrc, const uint32_t *srcidx, int split)
{
    const size_t nw = s->dense ? s->n_out * s->n_in : s->nnz, planes = (l + 1) * size;
    size_t nruns = 0;
    for (size_t u = 0; u < cnt; u++)
        nruns += u == 0 || list[u] != list[u - 1] + 1;
    job_bufs b;
    ppnn_status st = job_bufs_init(&b, r, planes * nruns, l + 1, planes * cnt, planes * s->n_in, s);
    if (st)
        return st;
    size_t nj = 0;
    for (size_t i = 0; i <= l; i++) {
        for (size_t k = 0; k < size; k++) {
            const size_t pl = i * size + k;
            const uint64_t **x = b.x + pl * s->n_in;
            for (size_t t = 0; t < nsrc; t++) {
                const ckks_ciphertext *c = src[srcidx[t]];
                x[srcidx[t]] = k < c->size ? ckks_ct_poly(c, k, i) : r->zero;
            }
            for (size_t u = 0; u < cnt;) {
                size_t v = u + 1;
                while (v < cnt && list[v] == list[v - 1] + 1)
                    v++;
                size_t r0 = list[u], nr = v - u;
                uint64_t **y = b.y + pl * cnt + u;
                for (size_t j = 0; j < nr; j++) {
                    size_t row = r0 + j, o = s->dense ? row : s->row_out[row];
                    y[j] = split ? ckks_ct_split_poly(&dst[o], k, i) : ckks_ct_poly(&dst[o], k, i);
                }
                const uint64_t *bias = k == 0 ? bq + i * s->n_out + r0 : NULL;
                hnn_tile_args a = {y, s->dense ? wq + i * nw + r0 * s->n_in : wq + i * nw,
                                   s->dense ? NULL : s->row_start + r0, s->dense ? NULL : s->col,
                                   bias, s->dense ? s->n_in : 0, x, &b.mods[i], NULL};
                b.jobs[nj++] = (hnn_linear_job){a, nr};
                u = v;
            }
        }
    }
    _hnn_linear_run(b.jobs, nj, r->n, r->o->threads, r->o->kernel);
    job_bufs_free(&b);
    return PPNN_OK;
}

/* The activation on intermediate c (in place). */
ppnn_status _hnn_act_one(ckks_ciphertext *ct, const hnn_step *s, size_t c)
{
    if (s->square[c]) {
        ppnn_status e = s->beta[c] != 0 ? ckks_add_const(ct, ct, s->beta[c]) : PPNN_OK;
        return e ? e : ckks_square(ct, ct);
    }
    const int64_t k = (int64_t)llround(ct->scale); /* carries linear elements to scale ≈ s² */
    return ckks_mul_int_to_scale(ct, ct, k, ct->scale * ct->scale);
}

/* Shapes a ciphertext of this stage (an intermediate, or an output when out is 1): from the
 * run's pool (the last stage's outputs are the caller's), with room for `words` words so
 * that it grows into its square without reallocating. */
static ppnn_status stage_ct(stage_run *r, ckks_ciphertext *ct, int out, size_t words,
                            size_t level, size_t size, double scale)
{
    if (!ct->data && (!out || r->pool_out))
        ckks_ct_attach(ct, r->pool);
    ppnn_status st = ckks_ct_reserve(ct, words);
    return st ? st : ckks_ct_prepare(ct, r->prm, level, size, scale);
}

/* Computes the intermediates nd->inter of a tile: A rows + rescale (+ act), or copies of the
 * stage inputs (+ act); nothing when B reads the stage inputs directly. */
static ppnn_status tile_intermediates(stage_run *r, const hnn_tile_needs *nd)
{
    ppnn_status err = PPNN_OK, act_err = PPNN_OK;
    char msg[256] = "", act_msg[256] = "";
    const int T = nthreads(r->o->threads);
    if (!r->a && !r->act)
        return PPNN_OK;
    double t0 = ppnn_now();
    if (r->a) {
#pragma omp parallel for schedule(static) num_threads(T)
        for (size_t k = 0; k < nd->ninter; k++) {
            ppnn_status e = stage_ct(r, &r->inter[nd->inter[k]], 0, r->inter_words, r->la, 2,
                                     r->a_pre);
            if (e)
                _hnn_keep_first_error(&err, msg, sizeof msg, e);
        }
        if (err)
            return ppnn_fail(err, "%s", msg);
        /* Rescale fused into the kernel's pass when A drops one prime and the intermediates
         * have room: the kernel writes each output in the split layout (ckks.h), so the
         * rescale neither moves component 1 nor copies the dropped rows. */
        const int split = r->a->drop == 1 && r->inter_words >= (2 * r->la + 2) * r->n;
        ppnn_status st = linear_rows(r, r->a, nd->a_rows, nd->na_rows, r->inter, r->wqa,
                                     r->bqa, r->la, 2, r->cur, nd->ninputs, nd->inputs, split);
        if (st)
            return st;
        /* Rescale and activation in one parallel region (fewer barriers). The rescales are
         * A's (a LINEAR step ends with its rescales, as version 1 timed them): the region's
         * wall time is split between A and the activation in the ratio of the threads' time
         * in each. */
        double t1 = ppnn_now(), t_rescale = 0, t_square = 0;
#pragma omp parallel for schedule(dynamic) num_threads(T) reduction(+ : t_rescale, t_square)
        for (size_t k = 0; k < nd->ninter; k++) {
            ppnn_status e = PPNN_OK;
            ckks_ciphertext *ct = &r->inter[nd->inter[k]];
            double u0 = ppnn_now();
            if (split)
                e = ckks_rescale_split(ct);
            for (size_t d = 0; d < r->a->drop && !split && !e; d++)
                e = ckks_rescale(ct);
            double u1 = ppnn_now();
            t_rescale += u1 - u0;
            if (e) {
                _hnn_keep_first_error(&err, msg, sizeof msg, e);
                continue;
            }
            if (r->act && (e = _hnn_act_one(ct, r->act, nd->inter[k])))
                _hnn_keep_first_error(&act_err, act_msg, sizeof act_msg, e);
            t_square += ppnn_now() - u1;
        }
        if (err)
            return ppnn_fail(err, "layer %zu (%s): %s", r->a->layer, r->a->name, msg);
        if (act_err)
            return ppnn_fail(act_err, "layer %zu (activation): %s", r->act->layer, act_msg);
        const double region = ppnn_now() - t1, busy = t_rescale + t_square;
        const double to_a = busy > 0 ? region * t_rescale / busy : region;
        r->t_a += t1 - t0 + to_a;
        r->t_act += region - to_a;
        return PPNN_OK;
    } else {
#pragma omp parallel for schedule(static) num_threads(T)
        for (size_t k = 0; k < nd->ninter; k++) {
            size_t c = nd->inter[k];
            const ckks_ciphertext *src = r->cur[c];
            ckks_ciphertext *dst = &r->inter[c];
            ppnn_status e = stage_ct(r, dst, 0, r->inter_words, r->lin, 2, src->scale);
            for (size_t comp = 0; comp < 2 && !e; comp++)
                memcpy(ckks_ct_poly(dst, comp, 0), ckks_ct_poly(src, comp, 0),
                       (r->lin + 1) * r->n * sizeof(uint64_t));
            if (e)
                _hnn_keep_first_error(&err, msg, sizeof msg, e);
        }
        if (err)
            return ppnn_fail(err, "%s", msg);
    }
    double t1 = ppnn_now();
    if (r->act) {
#pragma omp parallel for schedule(dynamic) num_threads(T)
        for (size_t k = 0; k < nd->ninter; k++) {
            ppnn_status e = _hnn_act_one(&r->inter[nd->inter[k]], r->act, nd->inter[k]);
            if (e)
                _hnn_keep_first_error(&err, msg, sizeof msg, e);
        }
        if (err)
            return ppnn_fail(err, "layer %zu (activation): %s", r->act->layer, msg);
        r->t_act += ppnn_now() - t1;
    }
    return PPNN_OK;
}

/* Relinearizes, rescales and trims B outputs idx[0..cnt), then spills them if asked. */
static ppnn_status finish_outputs(stage_run *r, const uint32_t *idx, size_t cnt)
{
    ppnn_status err = PPNN_OK;
    char msg[256] = "";
#pragma omp parallel for schedule(dynamic) num_threads(nthreads(r->o->threads))
    for (size_t k = 0; k < cnt; k++) {
        ckks_ciphertext *ct = &r->out[idx[k]];
        ppnn_status e = r->rk && ct->size == 3 ? ckks_relinearize(ct, r->rk) : PPNN_OK;
        for (size_t d = 0; d < r->b->drop && !e; d++)
            e = ckks_rescale(ct);
        if (!e)
            ckks_ct_shrink(ct);
        if (!e && r->spill_out) {
            e = _hnn_spill_put(r->spill_out, idx[k], ct);
            ckks_ct_free(ct);
        }
        if (e)
            _hnn_keep_first_error(&err, msg, sizeof msg, e);
    }
    return err ? ppnn_fail(err, "layer %zu (%s): %s", r->b->layer, r->b->name, msg) : PPNN_OK;
}

static int cmp_u32(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return (a > b) - (a < b);
}

/* ROWS tile: B rows of tile t into their outputs. */
static ppnn_status tile_rows(stage_run *r, const hnn_tile_needs *nd, size_t t)
{
    const hnn_stage *g = r->g;
    const size_t cnt = g->tile_start[t + 1] - g->tile_start[t];
    memcpy(r->rows, g->tile_items + g->tile_start[t], cnt * sizeof *r->rows);
    qsort(r->rows, cnt, sizeof *r->rows, cmp_u32);
    const size_t size = r->act ? 3 : 2;
    ppnn_status err = PPNN_OK;
    char msg[256] = "";
    double t0 = ppnn_now();
#pragma omp parallel for schedule(static) num_threads(nthreads(r->o->threads))
    for (size_t k = 0; k < cnt; k++) {
        size_t o = r->b->dense ? r->rows[k] : r->b->row_out[r->rows[k]];
        ppnn_status e = stage_ct(r, &r->out[o], 1, size * (r->lb + 1) * r->n, r->lb, size,
                                 r->b_pre);
        if (e)
            _hnn_keep_first_error(&err, msg, sizeof msg, e);
    }
    if (err)
        return ppnn_fail(err, "%s", msg);
    const ckks_ciphertext *const *src = r->cur;
    const ckks_ciphertext **bsrc = malloc(r->b->n_in * sizeof *bsrc);
    if (!bsrc)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory in layer %zu", r->b->layer);
    for (size_t k = 0; k < nd->ninter; k++) {
        size_t c = nd->inter[k];
        bsrc[c] = (r->a || r->act) ? &r->inter[c] : src[c];
    }
    ppnn_status lst = linear_rows(r, r->b, r->rows, cnt, r->out, r->wqb, r->bqb, r->lb, size,
                                  bsrc, nd->ninter, nd->inter, 0);
    free(bsrc);
    if (lst)
        return lst;
    /* Outputs as indices for finish_outputs. */
    for (size_t k = 0; k < cnt; k++)
        r->rows[k] = r->b->dense ? r->rows[k] : r->b->row_out[r->rows[k]];
    ppnn_status st = r->raw ? PPNN_OK : finish_outputs(r, r->rows, cnt);
    r->t_b += ppnn_now() - t0;
    return st;
}

/* COLS tile: absorb the tile's intermediates into every B accumulator (every prime and
 * component one job of a single _hnn_linear_run). */
static ppnn_status tile_cols(stage_run *r, const hnn_tile_needs *nd, size_t t)
{
    const hnn_step *b = r->b;
    const size_t len = nd->ninter, nout = b->n_out;
    const size_t off = r->g->tile_start[t], planes = (r->lb + 1) * 3;
    const int sparse = !b->dense;
    double t0 = ppnn_now();
    job_bufs jb;
    ppnn_status st = job_bufs_init(&jb, r, planes, r->lb + 1, planes * nout, planes * len, b);
    if (st)
        return st;
    for (size_t i = 0; i <= r->lb; i++) {
        const uint64_t *blk = sparse ? r->wqb + i * r->nwb : r->wqb + i * r->nwb + nout * off;
        for (size_t k = 0; k < 3; k++) {
            const size_t pl = i * 3 + k;
            const uint64_t **x = jb.x + pl * len;
            uint64_t **y = jb.y + pl * nout;
            for (size_t j = 0; j < len; j++) {
                const ckks_ciphertext *c = &r->inter[nd->inter[j]];
                x[j] = k < c->size ? ckks_ct_poly(c, k, i) : r->zero;
            }
            /* Kernel row o writes output o (dense) or row_out[o] (sparse: CSR row o). */
            for (size_t o = 0; o < nout; o++)
                y[o] = ckks_ct_poly(&r->out[sparse ? b->row_out[o] : o], k, i);
            /* The first tile starts from the bias, later ones accumulate into y in place. */
            hnn_tile_args a = {y, blk, sparse ? r->cs_start + t * (nout + 1) : NULL,
                               sparse ? r->cs_col : NULL,
                               t == 0 && k == 0 ? r->bqb + i * nout : NULL, sparse ? 0 : len, x,
                               &jb.mods[i], t == 0 ? NULL : (const uint64_t *const *)y};
            jb.jobs[pl] = (hnn_linear_job){a, nout};
        }
    }
    _hnn_linear_run(jb.jobs, planes, r->n, r->o->threads, r->o->kernel);
    job_bufs_free(&jb);
    r->t_b += ppnn_now() - t0;
    return PPNN_OK;
}

/* B weights regrouped per COLS tile. Dense: block t holds columns inter(t) (in tile order) of
 * every row, row-major n_out x len_t, at offset n_out * tile_start[t] within a prime's slab.
 * Sparse (a pruned dense layer): tile t's terms form a CSR of every row over the tile's local
 * inputs 0 .. len_t (cs_col), its n_out + 1 row offsets at cs_start + t * (n_out + 1), absolute
 * into cs_col and into each prime's slab of the regrouped weights; every term lies in the one
 * tile holding its input, so the slabs keep nnz words. */
static ppnn_status regroup_cols(stage_run *r)
{
    const hnn_step *b = r->b;
    const size_t nout = b->n_out, nin = b->n_in, nw = r->nwb, nt = r->g->ntiles;
    uint64_t *w = malloc((nw ? nw : 1) * (r->lb + 1) * sizeof *w);
    uint32_t *tile_of = !b->dense ? malloc((nin ? nin : 1) * sizeof *tile_of) : NULL;
    uint32_t *pos_of = !b->dense ? malloc((nin ? nin : 1) * sizeof *pos_of) : NULL;
    if (!b->dense) {
        r->cs_start = calloc(nt * (nout + 1) + 1, sizeof *r->cs_start);
        r->cs_col = malloc((nw ? nw : 1) * sizeof *r->cs_col);
    }
    hnn_tile_needs nd;
    ppnn_status st = !w || (!b->dense && (!tile_of || !pos_of || !r->cs_start || !r->cs_col))
                         ? ppnn_fail(PPNN_ERR_NOMEM, "out of memory in layer %zu", b->layer)
                         : _hnn_needs_init(&nd, r->p, r->g);
    if (st) {
        free(w), free(tile_of), free(pos_of);
        return st;
    }
    if (!b->dense)
        for (size_t c = 0; c < nin; c++)
            tile_of[c] = UINT32_MAX;
    for (size_t t = 0; t < nt; t++) {
        _hnn_tile_needs(&nd, r->p, r->g, t);
        const size_t off = r->g->tile_start[t], len = nd.ninter;
        if (!b->dense) {
            for (size_t j = 0; j < len; j++)
                tile_of[nd.inter[j]] = (uint32_t)t, pos_of[nd.inter[j]] = (uint32_t)j;
            continue;
        }
        for (size_t i = 0; i <= r->lb; i++)
            for (size_t o = 0; o < nout; o++)
                for (size_t j = 0; j < len; j++)
                    w[i * nw + nout * off + o * len + j] = r->wqb[i * nw + o * nin + nd.inter[j]];
    }
    _hnn_needs_free(&nd);
    if (!b->dense) {
        /* Counts per (tile, row), then prefix sums in tile-major, row-minor order. */
        uint32_t *cnt = r->cs_start + 1;
        for (size_t o = 0; o < nout; o++)
            for (size_t u = b->row_start[o]; u < b->row_start[o + 1]; u++)
                if (tile_of[b->col[u]] != UINT32_MAX)
                    cnt[tile_of[b->col[u]] * (nout + 1) + o]++;
        uint32_t run = 0;
        for (size_t t = 0; t < nt; t++) {
            uint32_t *rs = r->cs_start + t * (nout + 1);
            for (size_t o = 0; o <= nout; o++) {
                uint32_t c = o < nout ? rs[o + 1] : 0;
                rs[o] = run, run += c;
            }
        }
        /* Row offsets become fill cursors (rs[o + 1] = end of row o) while terms are placed. */
        uint32_t *fill = malloc((nt * (nout + 1) + 1) * sizeof *fill);
        if (!fill) {
            free(w), free(tile_of), free(pos_of);
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory in layer %zu", b->layer);
        }
        memcpy(fill, r->cs_start, nt * (nout + 1) * sizeof *fill);
        for (size_t o = 0; o < nout; o++)
            for (size_t u = b->row_start[o]; u < b->row_start[o + 1]; u++) {
                const uint32_t c = b->col[u], t = tile_of[c];
                if (t == UINT32_MAX)
                    continue;
                const uint32_t at = fill[t * (nout + 1) + o]++;
                r->cs_col[at] = pos_of[c];
                for (size_t i = 0; i <= r->lb; i++)
                    w[i * nw + at] = r->wqb[i * nw + u];
            }
        free(fill);
    }
    free(tile_of), free(pos_of);
    free(r->wqb);
    r->wqb = w;
    return PPNN_OK;
}

static ppnn_status prepare_weights(stage_run *r)
{
    const hnn_step *a = r->a, *b = r->b;
    if (a) {
        r->nwa = a->dense ? a->n_out * a->n_in : a->nnz;
        r->wqa = malloc((r->nwa ? r->nwa : 1) * (r->la + 1) * sizeof *r->wqa);
        r->bqa = malloc(a->n_out * (r->la + 1) * sizeof *r->bqa);
        if (!r->wqa || !r->bqa)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory in layer %zu", a->layer);
        ppnn_status st = _hnn_encode_linear(r->wqa, r->bqa, a, r->prm, r->la, r->a_sout);
        if (st)
            return st;
    }
    r->nwb = b->dense ? b->n_out * b->n_in : b->nnz;
    r->wqb = malloc((r->nwb ? r->nwb : 1) * (r->lb + 1) * sizeof *r->wqb);
    r->bqb = malloc(b->n_out * (r->lb + 1) * sizeof *r->bqb);
    if (!r->wqb || !r->bqb)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory in layer %zu", b->layer);
    ppnn_status st = _hnn_encode_linear(r->wqb, r->bqb, b, r->prm, r->lb, r->b_sout);
    if (!st && r->g->tiling == HNN_TILE_COLS)
        st = regroup_cols(r);
    return st;
}

/* Pulls the stage inputs tile t needs that are not held yet (in parallel: file sources
 * unpack and expand seeds). */
static ppnn_status load_inputs(stage_run *r, hnn_source *src, const hnn_tile_needs *nd)
{
    ppnn_status err = PPNN_OK;
    char msg[256] = "";
#pragma omp parallel for schedule(dynamic) num_threads(nthreads(r->o->threads))
    for (size_t k = 0; k < nd->ninputs; k++) {
        size_t c = nd->inputs[k];
        if (r->cur[c])
            continue;
        const ckks_ciphertext *ct = NULL;
        ppnn_status e = src->get(src, c, r->lin, &ct);
        if (!e)
            r->cur[c] = ct;
        else
            _hnn_keep_first_error(&err, msg, sizeof msg, e);
    }
    return err ? ppnn_fail(err, "%s", msg) : PPNN_OK;
}

static ppnn_status run_stage(stage_run *r, hnn_source *src)
{
    const hnn_stage *g = r->g;
    const size_t nin = g->n_in;
    size_t *first = malloc((nin ? nin : 1) * sizeof *first);
    size_t *last = malloc((nin ? nin : 1) * sizeof *last);
    r->cur = calloc(nin ? nin : 1, sizeof *r->cur);
    r->inter = calloc(r->b->n_in, sizeof *r->inter);
    r->zero = calloc(r->n, sizeof *r->zero);
    r->rows = malloc((r->b->n_out ? r->b->n_out : 1) * sizeof *r->rows);
    hnn_tile_needs nd;
    memset(&nd, 0, sizeof nd);
    ppnn_status st = PPNN_OK;
    if (r->held0 && r->cur)
        r->cur[0] = r->held0; /* released after its last tile, or at the end of the stage */
    else if (r->held0)
        src->release(src, 0);
    if (!first || !last || !r->cur || !r->inter || !r->zero || !r->rows)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory in layer %zu", r->b->layer);
    if (!st)
        st = prepare_weights(r);
    if (!st)
        st = _hnn_input_uses(first, last, r->p, g);
    if (!st)
        st = _hnn_needs_init(&nd, r->p, g);
    if (!st && g->tiling == HNN_TILE_COLS) {
        /* Accumulators: every B output, 3 components at B's level, written by the first tile. */
        for (size_t o = 0; o < r->b->n_out && !st; o++)
            st = stage_ct(r, &r->out[o], 1, 3 * (r->lb + 1) * r->n, r->lb, 3, r->b_pre);
    }
    for (size_t t = 0; t < g->ntiles && !st; t++) {
        if (r->o->cancel && *r->o->cancel) {
            st = ppnn_fail(PPNN_ERR_IO, "interrupted");
            break;
        }
        _hnn_tile_needs(&nd, r->p, g, t);
        double t0 = ppnn_now();
        st = load_inputs(r, src, &nd);
        if (r->o->input_seconds)
            *r->o->input_seconds += ppnn_now() - t0;
        if (st)
            break;
        if ((st = tile_intermediates(r, &nd)))
            break;
        if (g->tiling == HNN_TILE_ROWS)
            st = tile_rows(r, &nd, t);
        else
            st = tile_cols(r, &nd, t);
        if (st)
            break;
        for (size_t k = 0; k < nd.ninter; k++)
            ckks_ct_free(&r->inter[nd.inter[k]]);
        for (size_t k = 0; k < nd.ninputs; k++) {
            size_t c = nd.inputs[k];
            if ((last[c] == t || (g->reload && g->input == HNN_INPUT_STREAMED)) && r->cur[c]) {
                src->release(src, c);
                r->cur[c] = NULL;
            }
        }
        if (r->o->on_tile)
            r->o->on_tile(r->o->progress_ctx, r->stage, t + 1, g->ntiles);
    }
    if (!st && g->tiling == HNN_TILE_COLS && !r->raw) {
        uint32_t *all = r->rows;
        for (size_t o = 0; o < r->b->n_out; o++)
            all[o] = (uint32_t)o;
        double t0 = ppnn_now();
        st = finish_outputs(r, all, r->b->n_out);
        r->t_b += ppnn_now() - t0;
    }
    for (size_t c = 0; c < nin; c++)
        if (r->cur && r->cur[c])
            src->release(src, c);
    if (r->inter)
        for (size_t c = 0; c < r->b->n_in; c++)
            ckks_ct_free(&r->inter[c]);
    _hnn_needs_free(&nd);
    free(first), free(last), free((void *)r->cur), free(r->inter);
    free(r->zero), free(r->rows);
    free(r->wqa), free(r->bqa), free(r->wqb), free(r->bqb);
    free(r->cs_start), free(r->cs_col);
    return st;
}

/* ---- whole plan ----------------------------------------------------------------------------- */

static ppnn_status check_schedule(const hnn_plan *p, const hnn_schedule *s, size_t n)
{
    if (s->n != n || !s->nstages || s->stages[s->nstages - 1].b != p->nsteps - 1 ||
        s->stages[0].n_in != p->n_inputs)
        return ppnn_fail(PPNN_ERR_PARAM, "the schedule was made for another plan or ring degree");
    return PPNN_OK;
}

ppnn_status hnn_infer_source(ckks_ciphertext *out, const hnn_plan *p, hnn_source *src,
                             const ckks_relin_key *rk, const hnn_exec_opts *opts)
{
    hnn_exec_opts dflt;
    memset(&dflt, 0, sizeof dflt);
    const hnn_exec_opts *o = opts ? opts : &dflt;
    if (src->count != p->n_inputs)
        return ppnn_fail(PPNN_ERR_MISMATCH, "%zu input ciphertexts, the model needs %zu",
                         src->count, p->n_inputs);
    for (size_t k = 0; k < p->nsteps && !rk; k++)
        if (p->steps[k].kind == HNN_STEP_ACT)
            return ppnn_fail(PPNN_ERR_PARAM, "the model has activations: inference needs the "
                                             "relinearization key");
    /* The first input fixes the parameters and scale (the caller checked every input). It
     * stays held: stage 0 starts with it loaded (hnn_source: a source that frees on release
     * could not give it again). */
    const ckks_ciphertext *c0;
    ppnn_status st = src->get(src, 0, p->top_level, &c0);
    if (st)
        return st;
    const ckks_params *prm = c0->params;
    const double in_scale = c0->scale;
    hnn_schedule *own = NULL;
    const hnn_schedule *s = o->schedule;
    if (rk && !ckks_params_same(rk->params, prm))
        st = ppnn_fail(PPNN_ERR_MISMATCH, "relinearization key of other parameters");
    if (!st && !s && !(st = hnn_schedule_new(&own, p, prm->n, NULL)))
        s = own;
    if (!st)
        st = check_schedule(p, s, prm->n);
    if (st) {
        src->release(src, 0);
        hnn_schedule_free(own);
        return st;
    }
    /* One pool for the run's buffers: its cap is the schedule's peak (less the caller's
     * resident inputs, which are not pool buffers), which the live ciphertexts never exceed,
     * so reuse costs no memory beyond the schedule's. */
    ckks_ct_pool *own_pool = NULL, *pool = o->pool;
    if (!pool) {
        if ((st = ckks_ct_pool_new(&own_pool, prm->n, s->peak_bytes - s->resident_bytes, 0))) {
            src->release(src, 0);
            hnn_schedule_free(own);
            return st;
        }
        pool = own_pool;
    }
    ckks_ciphertext *vec = NULL; /* outputs of the previous stage (owned) */
    hnn_spill *prev_spill = NULL;
    spill_src sps = {NULL, NULL, pool};
    array_src arr = {NULL};
    double scale = in_scale;
    int c0_held = 1;
    for (size_t k = 0; k < s->nstages && !st; k++) {
        const hnn_stage *g = &s->stages[k];
        const int last = k + 1 == s->nstages;
        stage_run r;
        memset(&r, 0, sizeof r);
        r.p = p, r.g = g, r.prm = prm, r.rk = rk, r.o = o, r.n = prm->n, r.stage = k;
        r.pool = pool, r.pool_out = !last;
        r.raw = last && o->raw_outputs;
        r.held0 = k == 0 ? c0 : NULL;
        r.inter_words = (size_t)(_hnn_inter_bytes(p, g, prm->n) / sizeof(uint64_t));
        r.a = g->a != HNN_NO_STEP ? &p->steps[g->a] : NULL;
        r.act = g->act != HNN_NO_STEP ? &p->steps[g->act] : NULL;
        r.b = &p->steps[g->b];
        r.lin = _hnn_stage_level_in(p, g);
        r.in_scale = scale;
        double s_mid = scale;
        if (r.a) {
            r.la = r.a->level_in;
            _hnn_linear_scales(&r.a_pre, &r.a_post, &r.a_sout, r.a, prm, scale);
            s_mid = r.a_post;
        }
        r.b_in_scale = r.act ? s_mid * s_mid : s_mid;
        r.lb = r.b->level_in;
        _hnn_linear_scales(&r.b_pre, &r.b_post, &r.b_sout, r.b, prm, r.b_in_scale);
        if (r.lin < (r.a ? r.a->drop : 0) || r.lb < r.b->drop) {
            st = ppnn_fail(PPNN_ERR_DEPTH, "layer %zu (%s): no level left", r.b->layer,
                           r.b->name);
            break;
        }
        r.out = last ? out : calloc(r.b->n_out, sizeof *r.out);
        if (!r.out) {
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory for intermediate ciphertexts");
            break;
        }
        if (g->spill && !last)
            st = _hnn_spill_open(&r.spill_out, o->scratch_dir, r.b->n_out, prm);
        /* This stage's input source. */
        hnn_source stage_src;
        if (k == 0) {
            stage_src = *src;
        } else if (prev_spill) {
            sps.sp = prev_spill;
            stage_src = (hnn_source){g->n_in, spill_get, spill_release, &sps};
        } else {
            arr.in = vec;
            stage_src = (hnn_source){g->n_in, array_get, owned_release, &arr};
        }
        if (!st) {
            st = run_stage(&r, &stage_src);
            c0_held = 0; /* run_stage released it */
        }
        if (k == 0)
            *src = stage_src; /* callers' sources may keep state in the struct */
        /* The previous stage's vector / scratch is no longer needed. */
        if (vec) {
            for (size_t c = 0; c < g->n_in; c++)
                ckks_ct_free(&vec[c]);
            free(vec);
            vec = NULL;
        }
        if (sps.cache) {
            for (size_t c = 0; c < g->n_in; c++)
                ckks_ct_free(&sps.cache[c]);
            free(sps.cache);
            sps.cache = NULL;
        }
        if (prev_spill && o->spilled_bytes)
            *o->spilled_bytes += _hnn_spill_written(prev_spill);
        _hnn_spill_close(prev_spill);
        prev_spill = r.spill_out;
        if (prev_spill && !st) {
            sps.cache = calloc(r.b->n_out, sizeof *sps.cache);
            if (!sps.cache)
                st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory for intermediate ciphertexts");
        }
        if (!last) {
            if (r.spill_out) { /* after an error, outputs not yet spilled are still held */
                for (size_t c = 0; c < r.b->n_out; c++)
                    ckks_ct_free(&r.out[c]);
                free(r.out);
                r.out = NULL;
            }
            vec = r.out;
        }
        if (!st && o->progress) {
            if (r.a)
                o->progress(o->progress_ctx, g->a, r.a, r.t_a);
            if (r.act)
                o->progress(o->progress_ctx, g->act, r.act, r.t_act);
            o->progress(o->progress_ctx, g->b, r.b, r.t_b);
        }
        scale = r.b_post;
        if (st && vec) {
            for (size_t c = 0; c < r.b->n_out; c++)
                ckks_ct_free(&vec[c]);
            free(vec);
            vec = NULL;
        }
    }
    if (c0_held) /* stage 0 did not start (an error) */
        src->release(src, 0);
    if (vec) { /* only after an error */
        free(vec);
    }
    if (sps.cache) {
        free(sps.cache);
    }
    if (prev_spill && o->spilled_bytes)
        *o->spilled_bytes += _hnn_spill_written(prev_spill);
    _hnn_spill_close(prev_spill);
    ckks_ct_pool_free(own_pool);
    hnn_schedule_free(own);
    return st;
}

static ppnn_status check_inputs(const hnn_plan *p, const ckks_ciphertext *in)
{
    const ckks_params *prm = in[0].params;
    /* A plan may use fewer levels than the parameters offer: rows above its top level are
     * never read (every unused prime would only cost time). */
    if (p->top_level > prm->nq - 1)
        return ppnn_fail(PPNN_ERR_MISMATCH,
                         "plan was made for %zu levels but the parameters have only %zu",
                         p->top_level, prm->nq - 1);
    for (size_t i = 0; i < p->n_inputs; i++) {
        const ckks_ciphertext *c = &in[i];
        if (!ckks_params_same(c->params, prm) || c->level < p->top_level || c->size != 2)
            return ppnn_fail(PPNN_ERR_MISMATCH,
                             "input ciphertext %zu: parameters, level %zu or size %zu differ "
                             "from the plan's inputs (level >= %zu, size 2)",
                             i, c->level, c->size, p->top_level);
        /* The plan folds its weights for inputs at the parameters' default scale. */
        if (!(fabs(c->scale / prm->scale - 1) <= 0x1p-30))
            return ppnn_fail(PPNN_ERR_MISMATCH,
                             "input ciphertext %zu has scale 2^%.2f; the plan needs the "
                             "parameters' scale 2^%.2f", i, log2(c->scale), log2(prm->scale));
    }
    return PPNN_OK;
}

ppnn_status hnn_infer(ckks_ciphertext *out, const hnn_plan *p, const ckks_ciphertext *in,
                      const ckks_relin_key *rk, const hnn_exec_opts *opts)
{
    ppnn_status st = check_inputs(p, in);
    if (st)
        return st;
    array_src arr = {in};
    hnn_source src = {p->n_inputs, array_get, array_release, &arr};
    return hnn_infer_source(out, p, &src, rk, opts);
}
