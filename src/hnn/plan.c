/* Planner: compiles a trained polynomial network into LINEAR / ACT steps for a level budget
 * (hnn.h). Folding: after an activation the encrypted vector holds z_i = (x_i + β_i)^2 while
 * the network's value is a_i·z_i + γ_i; this pending per-element affine map (a, γ) is folded
 * into the next linear layer: W'[o,i] = W[o,i]·a_i, b'[o] = b[o] + Σ_i W[o,i]·γ_i. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hnn/inner.h"

/* Pending affine map value_i = a[i]·z_i + g[i] on the current vector (identity when !active). */
typedef struct {
    size_t n;
    double *a, *g;
    int active;
} affine;

typedef struct {
    const nn_model *m;
    const hnn_budget *b;
    hnn_plan *p;
    size_t cap;
    affine pend;
    double cur_max; /* bound on |z| of the current encrypted vector */
    size_t used;    /* levels consumed so far */
} builder;

/* Margin on recorded ranges: test inputs may exceed what training showed. */
#define RANGE_MARGIN 1.5
/* Below this, a·x² is invisible next to b·x + c at CKKS precision: treat the element as
 * linear (avoids β = b/2a blowing up). */
#define QUAD_NEGLIGIBLE 0x1p-30
#define HNN_TYPICAL_OF_P999 0.5

static double range_abs(nn_range r)
{
    double v = fmax(fabs((double)r.min), fabs((double)r.max));
    return v > 0 ? v * RANGE_MARGIN : 0;
}

static ppnn_status new_step(builder *bd, hnn_step **out, hnn_step_kind kind, size_t layer,
                            const char *name, size_t n_in, size_t n_out)
{
    hnn_plan *p = bd->p;
    if (p->nsteps == bd->cap) {
        size_t cap = bd->cap ? 2 * bd->cap : 8;
        hnn_step *s = realloc(p->steps, cap * sizeof *s);
        if (!s)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory building the plan");
        p->steps = s, bd->cap = cap;
    }
    hnn_step *s = &p->steps[p->nsteps++];
    memset(s, 0, sizeof *s);
    s->kind = kind, s->layer = layer, s->name = name, s->n_in = n_in, s->n_out = n_out;
    /* Lazy rescale: an activation keeps its square at scale s² (no rescale) and the linear
     * step after it drops two primes at once, so 845 squares are never rescaled. */
    s->drop = kind == HNN_STEP_ACT ? 0
              : p->nsteps >= 2 && p->steps[p->nsteps - 2].kind == HNN_STEP_ACT ? 2
                                                                               : 1;
    s->level_in = bd->b->levels >= bd->used ? bd->b->levels - bd->used : 0;
    *out = s;
    bd->used += s->drop;
    if (bd->used > bd->b->levels)
        return ppnn_fail(PPNN_ERR_DEPTH,
                         "layer %zu (%s) needs level %zu but parameter set %s has only %zu "
                         "levels (model depth %zu)",
                         layer, nn_layer_type_name(bd->m->layers[layer].type), bd->used,
                         bd->b->name, bd->b->levels, p->depth);
    return PPNN_OK;
}

/* Allocates the CSR arrays of a linear step with at most nnz_max terms. */
static ppnn_status alloc_linear(hnn_step *s, size_t nnz_max, int dense)
{
    if (nnz_max > UINT32_MAX)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "linear layer with %zu weights", nnz_max);
    s->dense = dense;
    s->bias = calloc(s->n_out, sizeof *s->bias);
    s->w = malloc((nnz_max ? nnz_max : 1) * sizeof *s->w);
    if (!dense) {
        s->row_start = malloc((s->n_out + 1) * sizeof *s->row_start);
        s->col = malloc((nnz_max ? nnz_max : 1) * sizeof *s->col);
        s->row_out = malloc(s->n_out * sizeof *s->row_out);
    }
    if (!s->bias || !s->w || (!dense && (!s->row_start || !s->col || !s->row_out)))
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory building the plan");
    return PPNN_OK;
}

/* Appends term (input i, raw weight wt) to the current row, folding the pending affine map. */
static void add_term(hnn_step *s, const affine *pd, size_t o, size_t i, double wt)
{
    double a = pd->active ? pd->a[i] : 1.0, g = pd->active ? pd->g[i] : 0.0;
    if (s->dense) {
        s->w[o * s->n_in + i] = wt * a;
    } else {
        s->col[s->nnz] = (uint32_t)i;
        s->w[s->nnz] = wt * a;
    }
    s->nnz++;
    s->bias[o] += wt * g;
}

static void begin_row(hnn_step *s, size_t r, size_t o, double bias)
{
    if (!s->dense) {
        s->row_start[r] = (uint32_t)s->nnz;
        s->row_out[r] = (uint32_t)o;
    }
    s->bias[o] += bias;
}

static void build_conv(hnn_step *s, const nn_layer *l, const affine *pd)
{
    const long k = l->kernel, st = l->stride, pad = l->pad, H = l->in.h, W = l->in.w;
    const size_t P = (size_t)l->out.h * l->out.w, C = l->in.c;
    size_t r = 0;
    /* Position-major rows: the out.c channels at one position read the same inputs. */
    for (size_t pos = 0; pos < P; pos++) {
        long oy = (long)(pos / l->out.w), ox = (long)(pos % l->out.w);
        for (size_t oc = 0; oc < l->out.c; oc++, r++) {
            size_t o = oc * P + pos;
            begin_row(s, r, o, l->bias[oc]);
            for (size_t c = 0; c < C; c++)
                for (long ki = 0; ki < k; ki++)
                    for (long kj = 0; kj < k; kj++) {
                        long iy = oy * st + ki - pad, ix = ox * st + kj - pad;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= W)
                            continue;
                        size_t i = (c * (size_t)H + (size_t)iy) * (size_t)W + (size_t)ix;
                        float wt = l->weight[((oc * C + c) * k + ki) * k + kj];
                        if (wt == 0)
                            continue; /* e.g. the off-diagonal taps of an imported pooling */
                        add_term(s, pd, o, i, wt);
                    }
        }
    }
    s->row_start[r] = (uint32_t)s->nnz;
}

static void build_pool(hnn_step *s, const nn_layer *l, const affine *pd)
{
    const size_t k = l->kernel, st = l->stride, H = l->in.h, W = l->in.w;
    const size_t Ho = l->out.h, Wo = l->out.w;
    const double inv = 1.0 / (double)(k * k);
    size_t r = 0;
    for (size_t c = 0; c < l->in.c; c++)
        for (size_t oy = 0; oy < Ho; oy++)
            for (size_t ox = 0; ox < Wo; ox++, r++) {
                begin_row(s, r, r, 0);
                for (size_t i = 0; i < k; i++)
                    for (size_t j = 0; j < k; j++)
                        add_term(s, pd, r, (c * H + oy * st + i) * W + ox * st + j, inv);
            }
    s->row_start[r] = (uint32_t)s->nnz;
}

/* A dense layer as a matrix, or in CSR without its zero weights (pruned, see dense_as_csr). */
static void build_dense(hnn_step *s, const nn_layer *l, const affine *pd)
{
    for (size_t o = 0; o < s->n_out; o++) {
        begin_row(s, o, o, l->bias[o]);
        for (size_t i = 0; i < s->n_in; i++)
            if (s->dense || l->weight[o * s->n_in + i] != 0)
                add_term(s, pd, o, i, l->weight[o * s->n_in + i]);
    }
    if (!s->dense)
        s->row_start[s->n_out] = (uint32_t)s->nnz;
}

/* A dense layer runs in CSR when at most half its weights are non-zero (a pruned layer): the
 * sparse kernel then costs less than the dense one, which runs ~1.8x more multiply-adds per
 * second (AVX-512, 100 x 845, N = 2^13, CPU time per thread: dense 26-27 G MAC/s; sparse
 * 15.1 at density 0.5, 13.3 at 0.3, 8.1 at 0.1 — equal cost near density 0.55). */
static int dense_as_csr(const nn_layer *l)
{
    size_t nz = 0;
    for (size_t t = 0; t < l->nweight; t++)
        nz += l->weight[t] != 0;
    return 2 * nz <= l->nweight;
}

static void build_scale(hnn_step *s, const affine *pd)
{
    for (size_t o = 0; o < s->n_out; o++) {
        begin_row(s, o, o, 0);
        add_term(s, pd, o, o, 1.0);
    }
    s->row_start[s->n_out] = (uint32_t)s->nnz;
}

/* Bounds and overflow check of the linear step s just built. The value bound is worst case
 * (Σ|w|·max|x| + |bias|, tightened by the recorded range). The plan's error figures come from
 * hnn_plan_noise (noise.c) once every step is built. */
static ppnn_status finish_linear(builder *bd, hnn_step *s, const nn_layer *next_in)
{
    double bound = 0, terms = 0;
    for (size_t r = 0; r < s->n_out; r++) {
        size_t t0 = s->dense ? r * s->n_in : s->row_start[r];
        size_t t1 = s->dense ? (r + 1) * s->n_in : s->row_start[r + 1];
        size_t o = s->dense ? r : s->row_out[r];
        double sum = 0;
        for (size_t t = t0; t < t1; t++) {
            if (!isfinite(s->w[t]))
                return ppnn_fail(PPNN_ERR_NUMERIC, "layer %zu (%s): non-finite weight",
                                 s->layer, s->name);
            sum += fabs(s->w[t]);
        }
        terms = fmax(terms, (double)(t1 - t0));
        bound = fmax(bound, sum * bd->cur_max + fabs(s->bias[o]));
    }
    if (terms > HNN_LINEAR_MAX_TERMS)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "layer %zu (%s): %.0f inputs per output, more than the %u the lazy "
                         "reduction bound allows", s->layer, s->name, terms, HNN_LINEAR_MAX_TERMS);
    s->max_in = bd->cur_max;
    /* The recorded range of the next layer's input is this step's output (tighter). */
    double rec = next_in ? range_abs(next_in->in_range) : range_abs(bd->m->out_range);
    s->max_out = rec > 0 ? fmin(rec, bound) : bound;
    bd->cur_max = s->max_out;
    bd->pend.active = 0;
    return PPNN_OK;
}

static ppnn_status check_overflow(const builder *bd, const hnn_step *s)
{
    /* The output of a linear step sits at scale ≈ Δ in Q_{l'} = q_0·Δ^l' (l' = level after
     * its rescales; the same bound holds before them, with the dropped primes in both scale
     * and modulus); a square sits at scale Δ² at its input level. |value|·scale must stay
     * below half the modulus. */
    size_t lout = s->level_in - s->drop;
    double room = bd->b->log2_q0 + (double)lout * bd->b->log2_scale - 1;
    double need = log2(fmax(s->max_out, 1e-300)) +
                  (s->kind == HNN_STEP_ACT ? 2 : 1) * bd->b->log2_scale;
    if (need > room)
        return ppnn_fail(PPNN_ERR_NUMERIC,
                         "layer %zu (%s): values up to %.3g need %.1f bits at level %zu but "
                         "parameter set %s has %.1f (the modulus would overflow)",
                         s->layer, s->name, s->max_out, need, lout, bd->b->name, room);
    return PPNN_OK;
}

static ppnn_status emit_linear(builder *bd, size_t li, const nn_layer *l, const nn_layer *next)
{
    hnn_step *s;
    size_t n_in = bd->pend.n, n_out = l ? nn_numel(l->out) : n_in;
    const char *name = !l ? "scale" : l->type == NN_LAYER_CONV2D ? "conv2d"
                                    : l->type == NN_LAYER_DENSE  ? "dense"
                                                                 : "avgpool";
    ppnn_status st = new_step(bd, &s, HNN_STEP_LINEAR, li, name, n_in, n_out);
    if (st)
        return st;
    int dense = l && l->type == NN_LAYER_DENSE && !dense_as_csr(l);
    size_t nnz_max = !l ? n_out
                     : l->type == NN_LAYER_DENSE ? n_out * n_in
                     : l->type == NN_LAYER_CONV2D
                         ? n_out * (size_t)l->in.c * l->kernel * l->kernel
                         : n_out * (size_t)l->kernel * l->kernel;
    if ((st = alloc_linear(s, nnz_max, dense)))
        return st;
    if (!l)
        build_scale(s, &bd->pend);
    else if (l->type == NN_LAYER_CONV2D)
        build_conv(s, l, &bd->pend);
    else if (l->type == NN_LAYER_DENSE)
        build_dense(s, l, &bd->pend);
    else
        build_pool(s, l, &bd->pend);
    if ((st = finish_linear(bd, s, next)))
        return st;
    return check_overflow(bd, s);
}

/* x + β is free when a linear step produced x: add β to its bias, so the activation is a bare
 * square (no constant addition on 845 ciphertexts). Its output bound grows by max|β|. */
static void fold_shift(builder *bd, hnn_step *act)
{
    if (bd->p->nsteps < 2)
        return;
    hnn_step *prev = &bd->p->steps[bd->p->nsteps - 2];
    if (prev->kind != HNN_STEP_LINEAR)
        return;
    double shift = 0;
    for (size_t i = 0; i < act->n_in; i++) {
        prev->bias[i] += act->beta[i];
        shift = fmax(shift, fabs(act->beta[i]));
        act->beta[i] = 0;
    }
    prev->max_out += shift;
}

/* Divides output i of the linear step s (its weights and bias) by f[i]. */
static void scale_rows(hnn_step *s, const double *f)
{
    if (s->dense) {
        for (size_t o = 0; o < s->n_out; o++) {
            for (size_t i = 0; i < s->n_in; i++)
                s->w[o * s->n_in + i] /= f[o];
            s->bias[o] /= f[o];
        }
        return;
    }
    for (size_t r = 0; r < s->n_out; r++) {
        size_t o = s->row_out[r];
        for (size_t t = s->row_start[r]; t < s->row_start[r + 1]; t++)
            s->w[t] /= f[o];
        s->bias[o] /= f[o];
    }
}

/* Conditioning of a(x+β)² + γ when |a| is small: β = b/2a is then large, the square (x+β)² is
 * huge, and the folded weight W·a is tiny, so its rounding at Δw (absolute 2^-1/Δw) times
 * (x+β)² — cancelled against γ in the bias — dominates the error (0.1 and more on the logits of
 * trained models). Squaring u = (x+β)/σ instead (1/σ folded into the previous linear layer,
 * σ² into the next one's weights) trades that rounding error, δ·t²/σ² for |x+β| <= t, against
 * the CKKS noise e of u amplified to 2·|a|·σ·t·e; σ = cbrt(δ·t / (|a|·e)) minimises the sum.
 * σ is kept in [1, t]. Needs the previous step to be linear (it usually is). */
static void condition_squares(builder *bd, hnn_step *act, double rin)
{
    if (bd->p->nsteps < 2 || bd->p->steps[bd->p->nsteps - 2].kind != HNN_STEP_LINEAR)
        return;
    hnn_step *prev = &bd->p->steps[bd->p->nsteps - 2];
    double delta = 0.5 / exp2(bd->b->log2_scale), e = _hnn_rescale_noise(bd->b);
    double *sigma = malloc(act->n_in * sizeof *sigma);
    if (!sigma)
        return; /* conditioning is an optimisation: the plan stays correct without it */
    double zmax = 0;
    for (size_t i = 0; i < act->n_in; i++) {
        double a = bd->pend.a[i], t = rin + fabs(act->beta[i]);
        double sg = act->square[i] && a != 0 ? cbrt(delta * t / (fabs(a) * e)) : 1.0;
        sg = fmin(fmax(sg, 1.0), fmax(t, 1.0));
        sigma[i] = sg;
        if (act->square[i]) {
            act->beta[i] /= sg;
            act->umax[i] /= sg;
            act->utyp[i] /= sg;
            bd->pend.a[i] = a * sg * sg;
            zmax = fmax(zmax, (t / sg) * (t / sg));
        } else {
            zmax = fmax(zmax, rin);
        }
    }
    /* A linear (unsquared) element carries x itself: it keeps σ = 1. */
    scale_rows(prev, sigma);
    act->max_out = zmax;
    free(sigma);
}

static ppnn_status emit_act(builder *bd, size_t li, const nn_layer *l)
{
    ppnn_status st;
    if (bd->pend.active && (st = emit_linear(bd, li, NULL, l)))
        return st; /* two activations in a row: apply the pending map first */
    hnn_step *s;
    size_t n = nn_numel(l->in);
    if ((st = new_step(bd, &s, HNN_STEP_ACT, li, "act", n, n)))
        return st;
    s->beta = calloc(n, sizeof *s->beta);
    s->square = calloc(n, 1);
    s->umax = calloc(n, sizeof *s->umax);
    s->utyp = calloc(n, sizeof *s->utyp);
    if (!s->beta || !s->square || !s->umax || !s->utyp)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory building the plan");
    double rin = range_abs(l->in_range);
    if (rin == 0)
        rin = bd->cur_max;
    rin = fmin(rin, bd->cur_max);
    s->max_in = rin;
    /* Typical |x| for the noise estimate: the recorded p99.9 (no margin), within the bound. */
    double rtyp = l->in_range.abs_p999 > 0 ? fmin(HNN_TYPICAL_OF_P999 * (double)l->in_range.abs_p999, rin) : rin;
    double zmax = 0;
    for (size_t i = 0; i < n; i++) {
        float fa, fb, fc;
        nn_poly_coef(l, i, &fa, &fb, &fc);
        double a = fa, b = fb, c = fc;
        if (!isfinite(a) || !isfinite(b) || !isfinite(c))
            return ppnn_fail(PPNN_ERR_NUMERIC, "layer %zu (poly): non-finite coefficient", li);
        if (fabs(a) * rin * rin <= QUAD_NEGLIGIBLE * fmax(1.0, fabs(b) * rin + fabs(c))) {
            s->square[i] = 0; /* linear element: z = x, value = b·x + c */
            bd->pend.a[i] = b, bd->pend.g[i] = c;
            zmax = fmax(zmax, rin);
        } else {
            s->square[i] = 1;
            s->beta[i] = b / (2 * a);
            bd->pend.a[i] = a, bd->pend.g[i] = c - b * b / (4 * a);
            double u = rin + fabs(s->beta[i]);
            zmax = fmax(zmax, u * u);
            s->umax[i] = u;
            s->utyp[i] = rtyp + fabs(s->beta[i]);
        }
    }
    bd->pend.active = 1;
    s->max_out = zmax;
    condition_squares(bd, s, rin);
    zmax = s->max_out;
    fold_shift(bd, s);
    /* No rescale here (the next linear step's rescales are counted there). */
    bd->cur_max = zmax;
    if (bd->p->nsteps >= 2 && (st = check_overflow(bd, &bd->p->steps[bd->p->nsteps - 2])))
        return st;
    return check_overflow(bd, s);
}

static ppnn_status plan_build(hnn_plan *p, const nn_model *m, const hnn_budget *b)
{
    if (m->nlayers == 0)
        return ppnn_fail(PPNN_ERR_PARAM, "model has no layers");
    builder bd = {m, b, p, 0, {0, NULL, NULL, 0}, 0, 0};
    size_t maxn = nn_numel(m->input);
    for (size_t i = 0; i < m->nlayers; i++)
        maxn = nn_numel(m->layers[i].out) > maxn ? nn_numel(m->layers[i].out) : maxn;
    bd.pend.a = malloc(maxn * sizeof(double));
    bd.pend.g = malloc(maxn * sizeof(double));
    ppnn_status st = PPNN_OK;
    if (!bd.pend.a || !bd.pend.g)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory building the plan");
    p->n_inputs = bd.pend.n = nn_numel(m->input);
    p->top_level = b->levels;
    p->depth = nn_model_depth(m);
    double rin = m->nlayers ? range_abs(m->layers[0].in_range) : 0;
    bd.cur_max = rin > 0 ? rin : 1.0;
    if (!st && m->norm_std > 0) {
        /* The client encrypts raw pixels p/255 in [0,1]; the model's normalisation
         * x = (p/255 - mean)/std is a pending affine map folded into the first linear layer
         * exactly (zero-padded conv taps are skipped, so padding stays 0 in normalised units). */
        bd.pend.active = 1;
        for (size_t i = 0; i < bd.pend.n; i++) {
            bd.pend.a[i] = 1.0 / m->norm_std;
            bd.pend.g[i] = -(double)m->norm_mean / m->norm_std;
        }
        bd.cur_max = 1.0;
    }
    for (size_t i = 0; i < m->nlayers && !st; i++) {
        const nn_layer *l = &m->layers[i];
        const nn_layer *next = i + 1 < m->nlayers ? &m->layers[i + 1] : NULL;
        switch (l->type) {
        case NN_LAYER_CONV2D:
        case NN_LAYER_DENSE:
        case NN_LAYER_AVGPOOL: st = emit_linear(&bd, i, l, next); break;
        case NN_LAYER_POLY: st = emit_act(&bd, i, l); break;
        case NN_LAYER_FLATTEN: break;
        case NN_LAYER_RELU:
            st = ppnn_fail(PPNN_ERR_UNSUPPORTED,
                           "layer %zu is ReLU: encrypted inference needs polynomial "
                           "activations (train a student with --act element)", i);
            break;
        }
        bd.pend.n = nn_numel(l->out);
    }
    if (!st && bd.pend.active)
        st = emit_linear(&bd, m->nlayers - 1, NULL, NULL);
    if (!st) {
        p->n_outputs = bd.pend.n;
        p->depth = bd.used;
        p->max_logit = bd.cur_max;
        hnn_noise nz;
        st = hnn_plan_noise(&nz, p, b);
        p->est_error = nz.estimate;
        p->bound_error = nz.bound;
        p->precision_bits = -log2(p->est_error);
    }
    free(bd.pend.a);
    free(bd.pend.g);
    return st;
}

static void plan_clear(hnn_plan *p)
{
    for (size_t i = 0; i < p->nsteps; i++) {
        hnn_step *s = &p->steps[i];
        free(s->row_start), free(s->col), free(s->row_out), free(s->w), free(s->bias);
        free(s->beta), free(s->square), free(s->umax), free(s->utyp);
    }
    free(p->steps);
    memset(p, 0, sizeof *p);
}

void hnn_plan_free(hnn_plan *p)
{
    if (!p)
        return;
    plan_clear(p);
    free(p);
}

ppnn_status hnn_plan_new(hnn_plan **out, const nn_model *m, const hnn_budget *budget,
                         const hnn_budget *alternatives, size_t nalt)
{
    *out = NULL;
    hnn_plan *p = calloc(1, sizeof *p);
    if (!p)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory building the plan");
    ppnn_status st = plan_build(p, m, budget);
    if (st == PPNN_OK) {
        *out = p;
        return PPNN_OK;
    }
    char msg[512];
    snprintf(msg, sizeof msg, "%s", ppnn_last_error());
    const char *fit = NULL;
    for (size_t k = 0; k < nalt && !fit && (st == PPNN_ERR_DEPTH || st == PPNN_ERR_NUMERIC);
         k++) {
        plan_clear(p);
        if (plan_build(p, m, &alternatives[k]) == PPNN_OK)
            fit = alternatives[k].name;
    }
    hnn_plan_free(p);
    if (fit)
        return ppnn_fail(st, "%s; parameter set %s would fit", msg, fit);
    if (st == PPNN_ERR_DEPTH || st == PPNN_ERR_NUMERIC)
        return ppnn_fail(st, "%s; no known parameter set fits", msg);
    return ppnn_fail(st, "%s", msg);
}

void hnn_plan_forward(const hnn_plan *p, double *logits, const double *x)
{
    size_t maxn = p->n_inputs;
    for (size_t k = 0; k < p->nsteps; k++)
        maxn = p->steps[k].n_out > maxn ? p->steps[k].n_out : maxn;
    double *cur = malloc(maxn * sizeof *cur), *nxt = malloc(maxn * sizeof *nxt);
    assert(cur && nxt);
    memcpy(cur, x, p->n_inputs * sizeof *cur);
    for (size_t k = 0; k < p->nsteps; k++) {
        const hnn_step *s = &p->steps[k];
        if (s->kind == HNN_STEP_ACT) {
            for (size_t i = 0; i < s->n_in; i++) {
                double u = cur[i] + s->beta[i];
                nxt[i] = s->square[i] ? u * u : cur[i];
            }
        } else {
            for (size_t r = 0; r < s->n_out; r++) {
                size_t o = s->dense ? r : s->row_out[r];
                double acc = s->bias[o];
                if (s->dense)
                    for (size_t i = 0; i < s->n_in; i++)
                        acc += s->w[r * s->n_in + i] * cur[i];
                else
                    for (size_t t = s->row_start[r]; t < s->row_start[r + 1]; t++)
                        acc += s->w[t] * cur[s->col[t]];
                nxt[o] = acc;
            }
        }
        double *t = cur;
        cur = nxt, nxt = t;
    }
    memcpy(logits, cur, p->n_outputs * sizeof *logits);
    free(cur);
    free(nxt);
}
