/* Channel-wise packing: the planner. Turns an nn_model into the list of homomorphic steps of
 * hnn/channel_inner.h with every plaintext (conv masks, dense diagonals, biases, betas) encoded
 * once at the level and scale where it is used. The layout is tracked per tensor element:
 * pos[j] is the slot of element j (first copy) and the whole vector is periodic with `period`
 * (a power of two dividing the slots; period = slots means "not periodic": every slot that is
 * not some pos[j] holds 0). */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "hnn/channel_inner.h"

/* Planner state between layers. */
typedef struct ch_build {
    hnn_channel_plan *plan;
    const ckks_params *params;
    size_t slots;
    size_t level;
    double scale;  /* scale of the ciphertext entering the next step */
    size_t numel;  /* elements of the current tensor */
    size_t *pos;   /* slots elements (first copy) */
    size_t period;
    int folded;    /* a pending activation: x_true = fold_a * x_ct + fold_g */
    double *fold_a, *fold_g;
    double *vec;   /* slots scratch doubles */
} ch_build;

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Appends a rotation step to the plan's (unsorted, possibly repeated) list. */
static ppnn_status note_rotation(hnn_channel_plan *p, int step)
{
    if (step == 0)
        return PPNN_OK;
    int *r = realloc(p->rotations, (p->nrotations + 1) * sizeof *r);
    if (!r)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (rotation list)");
    p->rotations = r;
    r[p->nrotations++] = step;
    return PPNN_OK;
}

static void dedupe_rotations(hnn_channel_plan *p)
{
    if (!p->nrotations)
        return;
    qsort(p->rotations, p->nrotations, sizeof *p->rotations, cmp_int);
    size_t k = 1;
    for (size_t i = 1; i < p->nrotations; i++)
        if (p->rotations[i] != p->rotations[k - 1])
            p->rotations[k++] = p->rotations[i];
    p->nrotations = k;
}

static ppnn_status encode_vec(ckks_plaintext *pt, const ch_build *b, double scale)
{
    ppnn_status st = ckks_encode(pt, b->params, b->vec, b->slots, b->level, scale);
    if (st)
        ppnn_error_context("channel-wise plan, level %zu", b->level);
    return st;
}

/* The level consumed by every step: the scale after the rescale that drops q_level. */
static void drop_level(ch_build *b, double product_scale)
{
    b->scale = product_scale / (double)b->params->q[b->level];
    b->level--;
}

static ppnn_status need_level(const ch_build *b, size_t li, const nn_layer *l)
{
    if (b->level == 0)
        return ppnn_fail(PPNN_ERR_DEPTH, "layer %zu (%s): no level left (the parameters have "
                         "%zu levels)", li, nn_layer_type_name(l->type), b->params->nq - 1);
    return PPNN_OK;
}

/* Allocates the baby/giant rotation lists and the n2*n1 plaintexts of a linear step. */
static ppnn_status alloc_bsgs(ch_step *sp, size_t n1, size_t n2)
{
    sp->n1 = n1;
    sp->n2 = n2;
    sp->baby = calloc(n1, sizeof *sp->baby);
    sp->giant = calloc(n2, sizeof *sp->giant);
    sp->pt = calloc(n1 * n2, sizeof *sp->pt);
    if (!sp->baby || !sp->giant || !sp->pt)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (linear step of the channel-wise plan)");
    return PPNN_OK;
}

/* ---- conv: first layer only, on the replicated 1-channel input ----------------------------- */
static ppnn_status plan_conv(ch_build *b, size_t li, const nn_layer *l)
{
    const size_t H = l->in.h, W = l->in.w, K = l->kernel, S = l->stride, P = l->pad;
    const size_t OC = l->out.c, OH = l->out.h, OW = l->out.w, F = b->plan->frame;
    if (li != 0 || l->in.c != 1 || b->plan->reps != OC)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "layer %zu (conv2d %ux%ux%u): the channel-wise packing runs a conv only "
                         "as the first layer on a 1-channel image",
                         li, l->in.c, l->in.h, l->in.w);
    if ((OH - 1) * S >= H || (OW - 1) * S >= W)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "layer %zu (conv2d): output grid %zux%zu with stride %zu does not fit "
                         "the %zux%zu input grid (padding too large)",
                         li, OH, OW, S, H, W);
    ppnn_status st = need_level(b, li, l);
    if (st)
        return st;
    ch_step *sp = &b->plan->steps[b->plan->nsteps];
    sp->kind = CH_STEP_CONV;
    sp->layer = li;
    sp->level = b->level;
    b->plan->nsteps++; /* owned by the plan from here on (freed with it on error) */
    if ((st = alloc_bsgs(sp, K, K)))
        return st;
    sp->m = sp->period = b->slots;
    const double wq = (double)b->params->q[b->level];
    for (size_t k = 0; k < K; k++) {
        /* Tap (ky, kx) of output (oy, ox) reads pixel (oy*S+ky-P, ox*S+kx-P), which sits
         * (ky-P)*W + (kx-P) slots after the output's slot oy*S*W + ox*S. */
        sp->baby[k] = (int)k - (int)P;
        sp->giant[k] = ((int)k - (int)P) * (int)W;
        if ((st = note_rotation(b->plan, sp->baby[k])) ||
            (st = note_rotation(b->plan, sp->giant[k])))
            return st;
    }
    for (size_t ky = 0; ky < K; ky++) {
        for (size_t kx = 0; kx < K; kx++) {
            /* Mask value at output slot s, stored at s + giant (pre-rotated right). */
            const size_t shift = (size_t)((ptrdiff_t)sp->giant[ky] + (ptrdiff_t)b->slots);
            memset(b->vec, 0, b->slots * sizeof *b->vec);
            for (size_t o = 0; o < OC; o++) {
                double w = l->weight[(o * K + ky) * K + kx];
                for (size_t oy = 0; oy < OH; oy++) {
                    ptrdiff_t iy = (ptrdiff_t)(oy * S + ky) - (ptrdiff_t)P;
                    if (iy < 0 || iy >= (ptrdiff_t)H)
                        continue;
                    for (size_t ox = 0; ox < OW; ox++) {
                        ptrdiff_t ix = (ptrdiff_t)(ox * S + kx) - (ptrdiff_t)P;
                        if (ix >= 0 && ix < (ptrdiff_t)W)
                            b->vec[(o * F + oy * S * W + ox * S + shift) % b->slots] = w;
                    }
                }
            }
            if ((st = encode_vec(&sp->pt[ky * K + kx], b, wq)))
                return st;
        }
    }
    /* New layout: output (o, oy, ox) at o*F + oy*S*W + ox*S; bias on exactly those slots. */
    memset(b->vec, 0, b->slots * sizeof *b->vec);
    for (size_t o = 0; o < OC; o++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++) {
                size_t j = (o * OH + oy) * OW + ox, s = o * F + oy * S * W + ox * S;
                b->pos[j] = s;
                b->vec[s] = l->bias[o];
            }
    b->numel = OC * OH * OW;
    b->period = b->slots;
    if ((st = encode_vec(&sp->add, b, b->scale * wq)))
        return st;
    drop_level(b, b->scale * wq);
    return PPNN_OK;
}

/* log2(q_0 * ... * q_level). */
static double log2_modulus(const ckks_params *params, size_t level)
{
    double bits = 0;
    for (size_t i = 0; i <= level; i++)
        bits += log2((double)params->q[i]);
    return bits;
}

/* Refuses a value bound that would wrap around the modulus: |v| * scale must stay below
 * Q_level / 2. The bound comes from the ranges recorded on training data, doubled as margin for
 * unseen inputs. */
static ppnn_status check_fits(const ch_build *b, size_t li, const char *what, double bound,
                              double scale, size_t level)
{
    if (!(bound > 0))
        return PPNN_OK; /* range not recorded */
    double need = log2(2 * bound) + log2(scale), have = log2_modulus(b->params, level) - 1;
    if (need >= have)
        return ppnn_fail(PPNN_ERR_NUMERIC,
                         "layer %zu: %s up to %.3g needs %.1f bits at level %zu, the modulus has "
                         "%.1f (use a preset with a larger q_0 / fewer levels used, e.g. n14)",
                         li, what, bound, need, level, have);
    return PPNN_OK;
}

/* ---- activation: a*(x+beta)^2 + gamma ------------------------------------------------------ */
static ppnn_status plan_act(ch_build *b, size_t li, const nn_layer *l)
{
    if (b->folded)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "layer %zu (poly): two activations without a dense layer in between",
                         li);
    ppnn_status st = need_level(b, li, l);
    if (st)
        return st;
    ch_step *sp = &b->plan->steps[b->plan->nsteps++];
    sp->kind = CH_STEP_ACT;
    sp->layer = li;
    sp->level = b->level;
    /* Bound on |x| for the |a| ~ 0 guard: the recorded input range, else 1. */
    double range = fmax(fabs(l->in_range.min), fabs(l->in_range.max));
    if (!(range > 0) || !isfinite(range))
        range = 1.0;
    memset(b->vec, 0, b->slots * sizeof *b->vec);
    for (size_t j = 0; j < b->numel; j++) {
        float fa, fb, fc;
        nn_poly_coef(l, j, &fa, &fb, &fc);
        double a = fa, bb = fb, c = fc;
        if (!isfinite(a) || !isfinite(bb) || !isfinite(c))
            return ppnn_fail(PPNN_ERR_NUMERIC, "layer %zu (poly): non-finite coefficient", li);
        /* |a| ~ 0 would make beta = b/2a explode. Raising |a| to a_min = |b|*2^-10/range changes
         * the output by at most a_min*range^2 = 2^-10 * |b|*range on the input range, i.e.
         * 2^-10 of the linear term, and keeps |beta| <= 2^9 * range. */
        double a_min = fmax(fabs(bb) * 0x1p-10 / range, 1e-12);
        if (fabs(a) < a_min)
            a = a < 0 ? -a_min : a_min;
        double beta = bb / (2 * a);
        b->fold_a[j] = a;
        b->fold_g[j] = c - bb * bb / (4 * a);
        for (size_t s = b->pos[j]; s < b->slots; s += b->period)
            b->vec[s] = beta;
    }
    b->folded = 1;
    double max_beta = 0;
    for (size_t j = 0; j < b->numel; j++)
        max_beta = fmax(max_beta, fabs(b->vec[b->pos[j]]));
    const double sq = (2 * range + max_beta) * (2 * range + max_beta);
    if ((st = check_fits(b, li, "(x + beta)^2", l->in_range.max != l->in_range.min ? sq : 0,
                         b->scale * b->scale, b->level)) ||
        (st = encode_vec(&sp->add, b, b->scale)))
        return st;
    drop_level(b, b->scale * b->scale);
    return PPNN_OK;
}

/* ---- dense: extended diagonals, baby-step giant-step --------------------------------------- */
static size_t pow2_at_least(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static ppnn_status plan_dense(ch_build *b, size_t li, const nn_layer *l)
{
    const size_t n_in = b->numel, n_out = l->out.c, slots = b->slots;
    assert(n_in == nn_numel(l->in));
    const size_t m = pow2_at_least(n_out);
    if (m > slots)
        return ppnn_fail(PPNN_ERR_PARAM, "layer %zu (dense %zu -> %zu): %zu outputs exceed the "
                         "%zu slots", li, n_in, n_out, n_out, slots);
    ppnn_status st = need_level(b, li, l);
    if (st)
        return st;
    const size_t per = b->period > m ? b->period : m; /* x is periodic with per too */
    size_t n1 = 1;
    while (n1 * n1 < m)
        n1 <<= 1;
    const size_t n2 = m / n1;
    ch_step *sp = &b->plan->steps[b->plan->nsteps];
    sp->kind = CH_STEP_DENSE;
    sp->layer = li;
    sp->level = b->level;
    sp->m = m;
    sp->period = per;
    b->plan->nsteps++;
    st = alloc_bsgs(sp, n1, n2);
    double *wp = calloc(m * per, sizeof *wp); /* W' (m x per), activation folded in */
    double *bias = calloc(m, sizeof *bias);
    if (st || !wp || !bias) {
        free(wp);
        free(bias);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (dense diagonals)");
    }
    for (size_t i = 0; i < n_out; i++) {
        double acc = l->bias[i];
        for (size_t j = 0; j < n_in; j++) {
            double w = l->weight[i * n_in + j];
            double a = b->folded ? b->fold_a[j] : 1.0, g = b->folded ? b->fold_g[j] : 0.0;
            wp[i * per + b->pos[j] % per] += w * a;
            acc += w * g;
        }
        bias[i] = acc;
    }
    const double wq = (double)b->params->q[b->level];
    for (size_t g = 0; g < n2 && !st; g++) {
        for (size_t bs = 0; bs < n1 && !st; bs++) {
            size_t d = g * n1 + bs;
            /* diag_d[k] = W'[k mod m][(k+d) mod per], stored rotated right by g*n1 so that
             * rot(diag_d (.) rot(x, d), .) = rot(stored (.) rot(x, bs), g*n1). */
            for (size_t i = 0; i < slots; i++) {
                size_t k = (i + slots - g * n1) % slots;
                b->vec[i] = wp[(k % m) * per + (k + d) % per];
            }
            st = encode_vec(&sp->pt[d], b, wq);
        }
    }
    for (size_t i = 0; i < slots && !st; i++)
        b->vec[i] = i % m < n_out ? bias[i % m] : 0.0;
    free(wp);
    free(bias);
    if (st || (st = encode_vec(&sp->add, b, b->scale * wq)))
        return st;
    for (size_t bs = 0; bs < n1; bs++) {
        sp->baby[bs] = (int)bs;
        if ((st = note_rotation(b->plan, sp->baby[bs])))
            return st;
    }
    for (size_t g = 0; g < n2; g++) {
        sp->giant[g] = (int)(g * n1);
        if ((st = note_rotation(b->plan, sp->giant[g])))
            return st;
    }
    for (size_t sh = m; sh < per; sh <<= 1)
        if ((st = note_rotation(b->plan, (int)sh)))
            return st;
    /* New layout: y_j at every slot i with i mod m = j. */
    for (size_t j = 0; j < n_out; j++)
        b->pos[j] = j;
    b->numel = n_out;
    b->period = m;
    b->folded = 0;
    drop_level(b, b->scale * wq);
    return PPNN_OK;
}

/* ---- plan ---------------------------------------------------------------------------------- */
/* Copies of the image the client writes: the output channels of a leading conv. */
static size_t input_copies(const nn_model *m)
{
    return m->layers[0].type == NN_LAYER_CONV2D ? m->layers[0].out.c : 1;
}

static ppnn_status plan_layers(ch_build *b, const nn_model *m)
{
    ppnn_status st = PPNN_OK;
    for (size_t li = 0; li < m->nlayers && !st; li++) {
        const nn_layer *l = &m->layers[li];
        for (size_t k = 0; k < l->nweight + l->nbias + l->ncoef; k++) {
            float v = k < l->nweight ? l->weight[k]
                      : k < l->nweight + l->nbias ? l->bias[k - l->nweight]
                                                  : l->coef[k - l->nweight - l->nbias];
            if (!isfinite(v))
                return ppnn_fail(PPNN_ERR_NUMERIC, "layer %zu (%s): non-finite parameter", li,
                                 nn_layer_type_name(l->type));
        }
        switch (l->type) {
        case NN_LAYER_FLATTEN: break;
        case NN_LAYER_CONV2D: st = plan_conv(b, li, l); break;
        case NN_LAYER_POLY: st = plan_act(b, li, l); break;
        case NN_LAYER_DENSE: st = plan_dense(b, li, l); break;
        case NN_LAYER_RELU:
        case NN_LAYER_AVGPOOL:
        default:
            st = ppnn_fail(PPNN_ERR_UNSUPPORTED,
                           "layer %zu (%s) is not supported by the channel-wise packing "
                           "(conv2d first, then dense/flatten/poly)",
                           li, nn_layer_type_name(l->type));
        }
    }
    if (st)
        return st;
    if (b->folded || b->plan->nsteps == 0 || b->plan->steps[b->plan->nsteps - 1].kind !=
                                                 CH_STEP_DENSE)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "the channel-wise packing needs a dense layer last (logits in slots "
                         "0..%u)", m->nclasses - 1);
    return PPNN_OK;
}

static size_t model_levels(const nn_model *m)
{
    size_t d = 0;
    for (size_t i = 0; i < m->nlayers; i++)
        d += m->layers[i].type != NN_LAYER_FLATTEN;
    return d;
}

ppnn_status hnn_channel_plan_new(hnn_channel_plan **out, const nn_model *m,
                                 const ckks_params *params)
{
    *out = NULL;
    if (m->nlayers == 0 || m->nlayers > NN_MAX_LAYERS)
        return ppnn_fail(PPNN_ERR_PARAM, "model has %zu layers (1..%d)", m->nlayers,
                         NN_MAX_LAYERS);
    const size_t slots = params->slots, numel = nn_numel(m->input), reps = input_copies(m);
    if (m->layers[0].type == NN_LAYER_CONV2D && m->input.c != 1)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "layer 0 (conv2d): the channel-wise packing runs a conv only on a "
                         "1-channel image (this one has %u channels)", m->input.c);
    if (numel == 0 || reps * numel > slots)
        return ppnn_fail(PPNN_ERR_PARAM,
                         "channel-wise packing: %zu channel(s) x %zu values = %zu slots needed, "
                         "the parameters have %zu (use a larger ring, e.g. n14)",
                         reps, numel, reps * numel, slots);
    size_t levels = model_levels(m);
    if (levels > params->nq - 1)
        return ppnn_fail(PPNN_ERR_DEPTH,
                         "model needs %zu levels, the parameters have %zu (use n14 for up to 10)",
                         levels, params->nq - 1);
    hnn_channel_plan *p = calloc(1, sizeof *p);
    ch_build b = {0};
    b.pos = calloc(slots, sizeof *b.pos);
    b.fold_a = calloc(slots, sizeof *b.fold_a);
    b.fold_g = calloc(slots, sizeof *b.fold_g);
    b.vec = calloc(slots, sizeof *b.vec);
    ppnn_status st = PPNN_OK;
    if (!p || !b.pos || !b.fold_a || !b.fold_g || !b.vec) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise plan)");
    } else {
        p->params = params;
        p->top_level = params->nq - 1;
        p->in_scale = params->scale;
        p->in_numel = numel;
        p->frame = numel;
        p->reps = reps;
        p->nclasses = m->nclasses;
        b.plan = p;
        b.params = params;
        b.slots = slots;
        b.level = p->top_level;
        b.scale = p->in_scale;
        b.numel = numel;
        b.period = slots;
        for (size_t j = 0; j < numel; j++)
            b.pos[j] = j;
        st = plan_layers(&b, m);
        if (!st)
            st = check_fits(&b, m->nlayers - 1, "a logit",
                            fmax(fabs(m->out_range.min), fabs(m->out_range.max)), b.scale,
                            b.level);
        if (!st && b.numel != m->nclasses)
            st = ppnn_fail(PPNN_ERR_PARAM, "model ends with %zu values, not %u logits", b.numel,
                           m->nclasses);
    }
    free(b.pos);
    free(b.fold_a);
    free(b.fold_g);
    free(b.vec);
    if (st) {
        hnn_channel_plan_free(p);
        return st;
    }
    dedupe_rotations(p);
    *out = p;
    return PPNN_OK;
}

void hnn_channel_plan_free(hnn_channel_plan *plan)
{
    if (!plan)
        return;
    for (size_t i = 0; i < plan->nsteps; i++) {
        ch_step *s = &plan->steps[i];
        if (s->pt)
            for (size_t t = 0; t < s->n1 * s->n2; t++)
                ckks_pt_free(&s->pt[t]);
        free(s->pt);
        free(s->baby);
        free(s->giant);
        ckks_pt_free(&s->add);
    }
    free(plan->rotations);
    free(plan);
}

size_t hnn_channel_rotations(int *steps, size_t cap, const hnn_channel_plan *plan)
{
    for (size_t i = 0; i < plan->nrotations && i < cap; i++)
        steps[i] = plan->rotations[i];
    return plan->nrotations;
}

size_t hnn_channel_nclasses(const hnn_channel_plan *plan) { return plan->nclasses; }

void hnn_channel_plan_stats(hnn_channel_stats *st, const hnn_channel_plan *plan)
{
    memset(st, 0, sizeof *st);
    st->distinct_steps = plan->nrotations;
    st->levels = plan->nsteps;
    for (size_t i = 0; i < plan->nsteps; i++) {
        const ch_step *s = &plan->steps[i];
        size_t pts = s->pt ? s->n1 * s->n2 : 0;
        for (size_t t = 0; t < pts; t++)
            st->plaintext_bytes += (s->pt[t].level + 1) * plan->params->n * sizeof(uint64_t);
        st->plaintext_bytes += (s->add.level + 1) * plan->params->n * sizeof(uint64_t);
        if (s->kind == CH_STEP_ACT) {
            st->relins++;
            continue;
        }
        for (size_t k = 0; k < s->n1; k++)
            st->rotations += s->baby[k] != 0;
        for (size_t k = 0; k < s->n2; k++)
            st->rotations += s->giant[k] != 0;
        for (size_t sh = s->m; sh < s->period; sh <<= 1)
            st->rotations++;
        st->mul_plain += pts;
    }
}
