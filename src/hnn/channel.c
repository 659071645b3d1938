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
    size_t slots, blocks;
    size_t level;
    double scale;  /* scale of the ciphertexts entering the next step */
    size_t numel;  /* elements of the current tensor */
    size_t nct;    /* ciphertexts holding it */
    size_t *ct, *pos; /* ciphertext and slot of every element (first copy) */
    size_t period; /* nct == 1: values repeat with this period; else slots */
    /* Spatial layout (while the tensor is C x H x W from the image, a conv or a pool): element
     * (c, y, x) at pos(c, 0, 0) + y*sy + x*sx. The input image exists in `copies` frames. */
    int spatial;
    size_t C, H, W, sy, sx, copies;
    int folded;    /* a pending affine map: x_true = fold_a * x_ct + fold_g */
    double *fold_a, *fold_g;
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

static ppnn_status encode_vec(ckks_plaintext *pt, const ch_build *b, const double *vec,
                              double scale)
{
    ppnn_status st = ckks_encode(pt, b->params, vec, b->slots, b->level, scale);
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
                         "%zu levels; the channel-wise plan uses one per conv, dense and "
                         "activation, and one per pool after per-element activations)",
                         li, nn_layer_type_name(l->type), b->params->nq - 1);
    return PPNN_OK;
}

/* Takes the next step slot of the plan (owned by the plan from here on: freed with it). */
static ppnn_status new_step(ch_step **out, ch_build *b, ch_step_kind kind, size_t li,
                            size_t nin, size_t nout)
{
    if (b->plan->nsteps == CH_MAX_STEPS)
        return ppnn_fail(PPNN_ERR_PARAM, "layer %zu: more than %d channel-wise steps", li,
                         CH_MAX_STEPS);
    ch_step *sp = &b->plan->steps[b->plan->nsteps++];
    sp->kind = kind;
    sp->layer = li;
    sp->level = b->level;
    sp->nin = nin;
    sp->nout = nout;
    sp->add = calloc(nout, sizeof *sp->add);
    if (!sp->add)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise step)");
    if (nout > b->plan->max_cts)
        b->plan->max_cts = nout;
    *out = sp;
    return PPNN_OK;
}

/* Sets the baby/giant rotation lists of a step (and notes the rotations) and, for LINEAR,
 * allocates its nout*n2*nin*n1 plaintexts. */
static ppnn_status set_bsgs(ch_build *b, ch_step *sp, const int *baby, size_t n1,
                            const int *giant, size_t n2)
{
    sp->n1 = n1;
    sp->n2 = n2;
    sp->baby = malloc(n1 * sizeof *sp->baby);
    sp->giant = malloc(n2 * sizeof *sp->giant);
    if (!sp->baby || !sp->giant)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise rotations)");
    ppnn_status st = PPNN_OK;
    for (size_t i = 0; i < n1 && !st; i++)
        st = note_rotation(b->plan, sp->baby[i] = baby[i]);
    for (size_t i = 0; i < n2 && !st; i++)
        st = note_rotation(b->plan, sp->giant[i] = giant[i]);
    if (st || sp->kind != CH_STEP_LINEAR)
        return st;
    size_t npt = sp->nout * n2 * sp->nin * n1;
    sp->pt = calloc(npt, sizeof *sp->pt);
    sp->nz = calloc(npt, 1);
    if (!sp->pt || !sp->nz)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise plaintexts)");
    return PPNN_OK;
}

/* Encodes the non-zero slot vectors vec[t*slots ..] of a LINEAR step at weight scale q_level,
 * its biases bias[h*slots ..] at the product scale, and drops the level. */
static ppnn_status finish_linear(ch_build *b, ch_step *sp, const double *vec, const double *bias)
{
    const double wq = (double)b->params->q[b->level];
    size_t npt = sp->nout * sp->n2 * sp->nin * sp->n1;
    ppnn_status st = PPNN_OK;
    for (size_t t = 0; t < npt && !st; t++) {
        const double *v = vec + t * b->slots;
        for (size_t i = 0; i < b->slots && !sp->nz[t]; i++)
            sp->nz[t] = v[i] != 0.0;
        /* An output ciphertext whose weights are all zero keeps its first plaintext (zero),
         * so that it is still a ciphertext at the right level and scale. */
        size_t per_out = sp->n2 * sp->nin * sp->n1;
        if (t % per_out == per_out - 1) {
            int any = 0;
            for (size_t u = t + 1 - per_out; u <= t; u++)
                any |= sp->nz[u];
            if (!any && !(st = encode_vec(&sp->pt[t + 1 - per_out], b, v - (per_out - 1) * b->slots, wq)))
                sp->nz[t + 1 - per_out] = 1;
        }
        if (sp->nz[t] && !sp->pt[t].data)
            st = encode_vec(&sp->pt[t], b, v, wq);
    }
    for (size_t h = 0; h < sp->nout && !st; h++)
        st = encode_vec(&sp->add[h], b, bias + h * b->slots, b->scale * wq);
    if (!st)
        drop_level(b, b->scale * wq);
    return st;
}

/* Scratch of nvec slot vectors, refused above 1 GiB (a model far beyond the packing). */
static ppnn_status alloc_vecs(double **v, const ch_build *b, size_t nvec, size_t li)
{
    if (nvec > ((size_t)1 << 27) / b->slots)
        return ppnn_fail(PPNN_ERR_PARAM, "layer %zu: the channel-wise plan would need %zu "
                         "plaintexts of %zu slots", li, nvec, b->slots);
    *v = calloc(nvec * b->slots, sizeof **v);
    if (!*v)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise plan)");
    return PPNN_OK;
}

static double fold_a_of(const ch_build *b, size_t j) { return b->folded ? b->fold_a[j] : 1.0; }
static double fold_g_of(const ch_build *b, size_t j) { return b->folded ? b->fold_g[j] : 0.0; }

/* Where copy r of input channel c lies: ciphertext and slot of its (0, 0) element. */
static void chan_loc(const ch_build *b, size_t c, size_t r, size_t *ct, size_t *base)
{
    if (b->copies > 1) { /* the replicated 1-channel image */
        *ct = 0;
        *base = r * b->plan->frame;
        return;
    }
    size_t j0 = c * b->H * b->W;
    *ct = b->ct[j0];
    *base = b->pos[j0];
}

/* ---- conv: any number of input and output channels ----------------------------------------
 * Output channel o goes to ciphertext o / blocks, frame o % blocks; output (o, oy, ox) sits at
 * the slot of input position (oy*S, ox*S). Input channel c is read from a copy in the same
 * frame when there is one (no channel rotation), else from its frame, by a rotation of
 * (base_in - base_out) mod slots: the giant steps. Tap (ky, kx) adds (ky-P)*sy + (kx-P)*sx. */
static ppnn_status plan_conv(ch_build *b, size_t li, const nn_layer *l)
{
    const size_t C = l->in.c, H = l->in.h, W = l->in.w, K = l->kernel, S = l->stride,
                 P = l->pad, OC = l->out.c, OH = l->out.h, OW = l->out.w, F = b->plan->frame;
    const size_t slots = b->slots, B = b->blocks;
    if (!b->spatial || b->C != C || b->H != H || b->W != W)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "layer %zu (conv2d): the channel-wise packing "
                         "runs a conv only on an image or on the output of a conv or pool", li);
    if ((OH - 1) * S >= H || (OW - 1) * S >= W)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "layer %zu (conv2d): output grid %zux%zu with stride %zu does not fit "
                         "the %zux%zu input grid (padding too large)",
                         li, OH, OW, S, H, W);
    ppnn_status st = need_level(b, li, l);
    if (st)
        return st;
    const size_t nout = (OC + B - 1) / B, nin = b->nct;
    /* Frame shift of every (output channel, input channel) pair, and the distinct shifts. */
    size_t *src_ct = malloc(OC * C * sizeof *src_ct), *shift = malloc(OC * C * sizeof *shift);
    int *giant = malloc((OC * C + K) * sizeof *giant), *baby = malloc((K * K) * sizeof *baby);
    size_t *gidx = malloc(OC * C * sizeof *gidx);
    double *vec = NULL, *bias = NULL;
    size_t n1, n2 = 0;
    if (!src_ct || !shift || !giant || !baby || !gidx) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise conv)");
        goto done;
    }
    int moves = 0;
    for (size_t o = 0; o < OC; o++)
        for (size_t c = 0; c < C; c++) {
            size_t out_base = (o % B) * F, ct = 0, base = 0, pick = SIZE_MAX;
            for (size_t r = 0; r < b->copies; r++) {
                chan_loc(b, c, r, &ct, &base);
                if (base == out_base || pick == SIZE_MAX) {
                    pick = r;
                    src_ct[o * C + c] = ct;
                    shift[o * C + c] = (base + slots - out_base) % slots;
                    if (base == out_base)
                        break;
                }
            }
            moves |= shift[o * C + c] != 0;
        }
    if (!moves) { /* columns as baby steps, rows as giant steps: 2(K-1) rotations */
        n1 = K;
        n2 = K;
        for (size_t k = 0; k < K; k++) {
            baby[k] = ((int)k - (int)P) * (int)b->sx;
            giant[k] = ((int)k - (int)P) * (int)b->sy;
        }
    } else { /* every tap as a (hoisted) baby step, frame shifts as giant steps */
        n1 = K * K;
        for (size_t ky = 0; ky < K; ky++)
            for (size_t kx = 0; kx < K; kx++)
                baby[ky * K + kx] = ((int)ky - (int)P) * (int)b->sy + ((int)kx - (int)P) * (int)b->sx;
        for (size_t t = 0; t < OC * C; t++) {
            size_t g = 0;
            while (g < n2 && giant[g] != (int)shift[t])
                g++;
            if (g == n2)
                giant[n2++] = (int)shift[t];
            gidx[t] = g;
        }
    }
    ch_step *sp;
    if ((st = new_step(&sp, b, CH_STEP_LINEAR, li, nin, nout)) ||
        (st = set_bsgs(b, sp, baby, n1, giant, n2)))
        goto done;
    sp->m = sp->period = slots;
    if ((st = alloc_vecs(&vec, b, nout * n2 * nin * n1, li)) ||
        (st = alloc_vecs(&bias, b, nout, li)))
        goto done;
    size_t *npos = malloc(OC * OH * OW * sizeof *npos), *nct = malloc(OC * OH * OW * sizeof *nct);
    if (!npos || !nct) {
        free(npos);
        free(nct);
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise conv)");
        goto done;
    }
    for (size_t o = 0; o < OC; o++) {
        const size_t h = o / B;
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++) {
                const size_t s = (o % B) * F + oy * S * b->sy + ox * S * b->sx;
                const size_t jo = (o * OH + oy) * OW + ox;
                npos[jo] = s;
                nct[jo] = h;
                double acc = l->bias[o];
                for (size_t c = 0; c < C; c++)
                    for (size_t ky = 0; ky < K; ky++) {
                        ptrdiff_t iy = (ptrdiff_t)(oy * S + ky) - (ptrdiff_t)P;
                        if (iy < 0 || iy >= (ptrdiff_t)H)
                            continue;
                        for (size_t kx = 0; kx < K; kx++) {
                            ptrdiff_t ix = (ptrdiff_t)(ox * S + kx) - (ptrdiff_t)P;
                            if (ix < 0 || ix >= (ptrdiff_t)W)
                                continue;
                            size_t j = (c * H + (size_t)iy) * W + (size_t)ix;
                            double w = l->weight[((o * C + c) * K + ky) * K + kx];
                            size_t gi = moves ? gidx[o * C + c] : ky, bi = moves ? ky * K + kx : kx;
                            size_t t = ((h * n2 + gi) * nin + src_ct[o * C + c]) * n1 + bi;
                            /* Stored rotated right by the giant step (channel_inner.h). */
                            size_t at = (s + (size_t)(giant[gi] + (int)slots)) % slots;
                            vec[t * slots + at] += w * fold_a_of(b, j);
                            acc += w * fold_g_of(b, j);
                        }
                    }
                bias[h * slots + s] = acc;
            }
    }
    /* New layout. */
    b->numel = OC * OH * OW;
    memcpy(b->pos, npos, b->numel * sizeof *npos);
    memcpy(b->ct, nct, b->numel * sizeof *nct);
    free(npos);
    free(nct);
    b->nct = nout;
    b->period = slots;
    b->C = OC;
    b->H = OH;
    b->W = OW;
    b->sy *= S;
    b->sx *= S;
    b->copies = 1;
    b->folded = 0;
    st = finish_linear(b, sp, vec, bias);
done:
    free(src_ct);
    free(shift);
    free(giant);
    free(baby);
    free(gidx);
    free(vec);
    free(bias);
    return st;
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
                         "layer %zu (poly): the channel-wise packing needs a conv or dense "
                         "layer before every activation",
                         li);
    ppnn_status st = need_level(b, li, l);
    if (st)
        return st;
    ch_step *sp;
    if ((st = new_step(&sp, b, CH_STEP_ACT, li, b->nct, b->nct)))
        return st;
    /* Bound on |x| for the |a| ~ 0 guard: the recorded input range, else 1. */
    double range = fmax(fabs(l->in_range.min), fabs(l->in_range.max));
    if (!(range > 0) || !isfinite(range))
        range = 1.0;
    double *vec = NULL;
    if ((st = alloc_vecs(&vec, b, b->nct, li)))
        return st;
    double max_beta = 0;
    for (size_t j = 0; j < b->numel; j++) {
        float fa, fb, fc;
        nn_poly_coef(l, j, &fa, &fb, &fc);
        double a = fa, bb = fb, c = fc;
        if (!isfinite(a) || !isfinite(bb) || !isfinite(c)) {
            free(vec);
            return ppnn_fail(PPNN_ERR_NUMERIC, "layer %zu (poly): non-finite coefficient", li);
        }
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
            vec[b->ct[j] * b->slots + s] = beta;
        max_beta = fmax(max_beta, fabs(beta));
    }
    b->folded = 1;
    const double sq = (2 * range + max_beta) * (2 * range + max_beta);
    st = check_fits(b, li, "(x + beta)^2", l->in_range.max != l->in_range.min ? sq : 0,
                    b->scale * b->scale, b->level);
    for (size_t h = 0; h < b->nct && !st; h++)
        st = encode_vec(&sp->add[h], b, vec + h * b->slots, b->scale);
    free(vec);
    if (!st)
        drop_level(b, b->scale * b->scale);
    return st;
}

/* ---- avgpool: window sums by rotations, 1/k^2 folded into the next linear layer ------------
 * The sum of a k x k window is sum_dy rot(sum_dx rot(x, dx*sx), dy*sy): 2(k-1) hoisted
 * rotations, no level. A pending activation x_true = a*x + g folds through the sum when a is
 * the same on the whole window (per-channel or per-layer coefficients); per-element a is applied
 * first by a SCALE step (one level), which also zeroes the slots between elements. */
static ppnn_status plan_pool(ch_build *b, size_t li, const nn_layer *l)
{
    const size_t K = l->kernel, S = l->stride, C = l->in.c, H = l->in.h, W = l->in.w,
                 OH = l->out.h, OW = l->out.w;
    if (!b->spatial || b->C != C || b->H != H || b->W != W || b->copies > 1)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "layer %zu (avgpool): the channel-wise packing "
                         "pools only the output of a conv or activation", li);
    ppnn_status st;
    int uniform = 1;
    for (size_t c = 0; c < C && b->folded && uniform; c++)
        for (size_t oy = 0; oy < OH && uniform; oy++)
            for (size_t ox = 0; ox < OW && uniform; ox++) {
                double a0 = b->fold_a[(c * H + oy * S) * W + ox * S];
                for (size_t dy = 0; dy < K; dy++)
                    for (size_t dx = 0; dx < K; dx++)
                        uniform &= b->fold_a[(c * H + oy * S + dy) * W + ox * S + dx] == a0;
            }
    ch_step *sp;
    if (!uniform) {
        if ((st = need_level(b, li, l)) || (st = new_step(&sp, b, CH_STEP_SCALE, li, b->nct, b->nct)))
            return st;
        sp->pt = calloc(b->nct, sizeof *sp->pt);
        double *vec = NULL;
        if (!sp->pt)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise pool)");
        if ((st = alloc_vecs(&vec, b, b->nct, li)))
            return st;
        for (size_t j = 0; j < b->numel; j++)
            vec[b->ct[j] * b->slots + b->pos[j]] = b->fold_a[j];
        const double wq = (double)b->params->q[b->level];
        for (size_t h = 0; h < b->nct && !st; h++)
            st = encode_vec(&sp->pt[h], b, vec + h * b->slots, wq);
        free(vec);
        if (st)
            return st;
        drop_level(b, b->scale * wq);
        for (size_t j = 0; j < b->numel; j++)
            b->fold_a[j] = 1.0;
    }
    if ((st = new_step(&sp, b, CH_STEP_POOL, li, b->nct, b->nct)))
        return st;
    int baby[NN_MAX_DIM], giant[NN_MAX_DIM];
    if (K > NN_MAX_DIM)
        return ppnn_fail(PPNN_ERR_PARAM, "layer %zu (avgpool): window %zu too large", li, K);
    for (size_t k = 0; k < K; k++) {
        baby[k] = (int)(k * b->sx);
        giant[k] = (int)(k * b->sy);
    }
    if ((st = set_bsgs(b, sp, baby, K, giant, K)))
        return st;
    /* New layout: output (c, py, px) at the slot of input (c, py*S, px*S). */
    const double inv = 1.0 / (double)(K * K);
    size_t j = 0;
    for (size_t c = 0; c < C; c++)
        for (size_t oy = 0; oy < OH; oy++)
            for (size_t ox = 0; ox < OW; ox++, j++) {
                size_t j0 = (c * H + oy * S) * W + ox * S;
                double g = 0;
                for (size_t dy = 0; dy < K; dy++)
                    for (size_t dx = 0; dx < K; dx++)
                        g += fold_g_of(b, j0 + dy * W + dx);
                /* j <= j0: overwriting in place is safe. */
                b->fold_a[j] = fold_a_of(b, j0) * inv;
                b->fold_g[j] = g * inv;
                b->ct[j] = b->ct[j0];
                b->pos[j] = b->pos[j0];
            }
    b->folded = 1;
    b->numel = C * OH * OW;
    b->H = OH;
    b->W = OW;
    b->sy *= S;
    b->sx *= S;
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
    const size_t n_in = b->numel, n_out = l->out.c, slots = b->slots, nin = b->nct;
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
    ch_step *sp;
    int *baby = malloc(n1 * sizeof *baby), *giant = malloc(n2 * sizeof *giant);
    double *wp = NULL, *vec = NULL, *bias = NULL;
    if (!baby || !giant) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory (dense diagonals)");
        goto done;
    }
    for (size_t i = 0; i < n1; i++)
        baby[i] = (int)i;
    for (size_t g = 0; g < n2; g++)
        giant[g] = (int)(g * n1);
    if ((st = new_step(&sp, b, CH_STEP_LINEAR, li, nin, 1)) ||
        (st = set_bsgs(b, sp, baby, n1, giant, n2)))
        goto done;
    sp->m = m;
    sp->period = per;
    /* W'_g (m x per) per input ciphertext g, activation folded in. */
    if (nin * m > ((size_t)1 << 27) / per) {
        st = ppnn_fail(PPNN_ERR_PARAM, "layer %zu (dense): too large for the channel-wise "
                       "packing", li);
        goto done;
    }
    wp = calloc(nin * m * per, sizeof *wp);
    if (!wp || (st = alloc_vecs(&vec, b, n2 * nin * n1, li)) ||
        (st = alloc_vecs(&bias, b, 1, li))) {
        if (!st)
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory (dense diagonals)");
        goto done;
    }
    for (size_t i = 0; i < n_out; i++) {
        double acc = l->bias[i];
        for (size_t j = 0; j < n_in; j++) {
            double w = l->weight[i * n_in + j];
            wp[(b->ct[j] * m + i) * per + b->pos[j] % per] += w * fold_a_of(b, j);
            acc += w * fold_g_of(b, j);
        }
        for (size_t s = i; s < slots; s += m)
            bias[s] = acc;
    }
    for (size_t g = 0; g < n2; g++)
        for (size_t ci = 0; ci < nin; ci++)
            for (size_t bs = 0; bs < n1; bs++) {
                size_t d = g * n1 + bs;
                double *v = vec + ((g * nin + ci) * n1 + bs) * slots;
                const double *w = wp + ci * m * per;
                /* diag_d[k] = W'[k mod m][(k+d) mod per], stored rotated right by g*n1 so
                 * that rot(stored (.) rot(x, bs), g*n1) = diag_d (.) rot(x, d). */
                for (size_t i = 0; i < slots; i++) {
                    size_t k = (i + slots - g * n1) % slots;
                    v[i] = w[(k % m) * per + (k + d) % per];
                }
            }
    for (size_t sh = m; sh < per && !st; sh <<= 1)
        st = note_rotation(b->plan, (int)sh);
    if (st)
        goto done;
    /* New layout: y_j at every slot i with i mod m = j. */
    for (size_t j = 0; j < n_out; j++) {
        b->pos[j] = j;
        b->ct[j] = 0;
    }
    b->numel = n_out;
    b->nct = 1;
    b->period = m;
    b->spatial = 0;
    b->folded = 0;
    st = finish_linear(b, sp, vec, bias);
done:
    free(baby);
    free(giant);
    free(wp);
    free(vec);
    free(bias);
    return st;
}

/* ---- plan ---------------------------------------------------------------------------------- */
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
        case NN_LAYER_AVGPOOL: st = plan_pool(b, li, l); break;
        case NN_LAYER_RELU:
        default:
            st = ppnn_fail(PPNN_ERR_UNSUPPORTED,
                           "layer %zu (%s) is not supported by the channel-wise packing "
                           "(conv2d, avgpool, dense, flatten and polynomial activations are)",
                           li, nn_layer_type_name(l->type));
        }
    }
    if (st)
        return st;
    if (b->folded || b->plan->nsteps == 0 ||
        b->plan->steps[b->plan->nsteps - 1].kind != CH_STEP_LINEAR || b->spatial)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "the channel-wise packing needs a dense layer last (logits in slots "
                         "0..%u)", m->nclasses - 1);
    return PPNN_OK;
}

/* 1 if some conv reads several channels (channels then move between frames). */
static int moves_channels(const nn_model *m)
{
    for (size_t i = 0; i < m->nlayers; i++)
        if (m->layers[i].type == NN_LAYER_CONV2D && m->layers[i].in.c > 1)
            return 1;
    return 0;
}

ppnn_status hnn_channel_plan_new(hnn_channel_plan **out, const nn_model *m,
                                 const ckks_params *params)
{
    *out = NULL;
    if (m->nlayers == 0 || m->nlayers > NN_MAX_LAYERS)
        return ppnn_fail(PPNN_ERR_PARAM, "model has %zu layers (1..%d)", m->nlayers,
                         NN_MAX_LAYERS);
    const size_t slots = params->slots, numel = nn_numel(m->input);
    const size_t C = m->input.c, HW = (size_t)m->input.h * m->input.w;
    const nn_layer_type first = m->layers[0].type;
    const int spatial = first == NN_LAYER_CONV2D || first == NN_LAYER_AVGPOOL;
    /* Frames: exactly H*W slots when channels never move between frames (the image is copied
     * into as many frames as the first conv has outputs); a power of two when they do, so that
     * frame shifts wrap around the slots cyclically and each conv needs at most `blocks`
     * distinct channel rotations. */
    size_t frame = spatial ? HW : numel;
    if (spatial && (C > 1 || moves_channels(m)))
        frame = pow2_at_least(HW);
    if (numel == 0 || frame > slots)
        return ppnn_fail(PPNN_ERR_PARAM, "channel-wise packing: %zu values per channel, the "
                         "parameters have %zu slots (use a larger ring, e.g. n14)", frame, slots);
    const size_t blocks = slots / frame;
    size_t reps = 1;
    if (first == NN_LAYER_CONV2D && C == 1)
        reps = m->layers[0].out.c < blocks ? m->layers[0].out.c : blocks;
    if (spatial && C > blocks)
        return ppnn_fail(PPNN_ERR_PARAM,
                         "channel-wise packing: %zu channels x %zu slots = %zu slots needed, "
                         "the parameters have %zu (use a larger ring, e.g. n14)",
                         C, frame, C * frame, slots);
    hnn_channel_plan *p = calloc(1, sizeof *p);
    ch_build b = {0};
    /* Element arrays hold the largest tensor of the network (a conv may have more outputs
     * than slots: they then span several ciphertexts). */
    size_t cap = slots > numel ? slots : numel;
    for (size_t i = 0; i < m->nlayers; i++)
        cap = nn_numel(m->layers[i].out) > cap ? nn_numel(m->layers[i].out) : cap;
    b.pos = calloc(cap, sizeof *b.pos);
    b.ct = calloc(cap, sizeof *b.ct);
    b.fold_a = calloc(cap, sizeof *b.fold_a);
    b.fold_g = calloc(cap, sizeof *b.fold_g);
    ppnn_status st = PPNN_OK;
    if (!p || !b.pos || !b.ct || !b.fold_a || !b.fold_g) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory (channel-wise plan)");
    } else {
        p->params = params;
        p->top_level = params->nq - 1;
        p->in_scale = params->scale;
        p->in_c = spatial ? C : 1;
        p->in_hw = spatial ? HW : numel;
        p->frame = frame;
        p->reps = reps;
        p->nclasses = m->nclasses;
        p->max_cts = 1;
        b.plan = p;
        b.params = params;
        b.slots = slots;
        b.blocks = blocks;
        b.level = p->top_level;
        b.scale = p->in_scale;
        b.numel = numel;
        b.nct = 1;
        b.period = slots;
        b.spatial = spatial;
        b.C = C;
        b.H = m->input.h;
        b.W = m->input.w;
        b.sy = m->input.w;
        b.sx = 1;
        b.copies = reps;
        for (size_t j = 0; j < numel; j++)
            b.pos[j] = spatial ? (j / HW) * frame + j % HW : j;
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
    free(b.ct);
    free(b.fold_a);
    free(b.fold_g);
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
        size_t npt = s->kind == CH_STEP_LINEAR ? s->nout * s->n2 * s->nin * s->n1
                     : s->kind == CH_STEP_SCALE ? s->nout : 0;
        if (s->pt)
            for (size_t t = 0; t < npt; t++)
                ckks_pt_free(&s->pt[t]);
        if (s->add)
            for (size_t h = 0; h < s->nout; h++)
                ckks_pt_free(&s->add[h]);
        free(s->pt);
        free(s->nz);
        free(s->add);
        free(s->baby);
        free(s->giant);
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

static size_t pt_bytes(const ckks_plaintext *pt, size_t n)
{
    return pt->data ? (pt->level + 1) * n * sizeof(uint64_t) : 0;
}

void _ch_step_counts(ch_counts *c, const ch_step *s)
{
    memset(c, 0, sizeof *c);
    for (size_t k = 0; k < s->n1; k++)
        c->babies += s->baby[k] != 0;
    for (size_t k = 0; k < s->n2; k++)
        c->giants += s->giant[k] != 0;
    if (s->kind != CH_STEP_LINEAR)
        return;
    for (size_t h = 0; h < s->nout; h++)
        for (size_t g = 0; g < s->n2; g++) {
            int any = 0;
            for (size_t u = 0; u < s->nin * s->n1; u++) {
                int nz = s->nz[(h * s->n2 + g) * s->nin * s->n1 + u];
                c->products += (size_t)nz;
                any |= nz;
            }
            c->giant_rotations += any && s->giant[g] != 0;
        }
    for (size_t sh = s->m; sh < s->period; sh <<= 1)
        c->reductions += s->nout;
}

void hnn_channel_plan_stats(hnn_channel_stats *st, const hnn_channel_plan *plan)
{
    memset(st, 0, sizeof *st);
    st->distinct_steps = plan->nrotations;
    const size_t n = plan->params->n;
    for (size_t i = 0; i < plan->nsteps; i++) {
        const ch_step *s = &plan->steps[i];
        ch_counts k;
        _ch_step_counts(&k, s);
        st->levels += s->kind != CH_STEP_POOL;
        for (size_t h = 0; h < s->nout; h++)
            st->plaintext_bytes += pt_bytes(&s->add[h], n);
        switch (s->kind) {
        case CH_STEP_ACT: st->relins += s->nout; break;
        case CH_STEP_SCALE:
            st->mul_plain += s->nout;
            for (size_t h = 0; h < s->nout; h++)
                st->plaintext_bytes += pt_bytes(&s->pt[h], n);
            break;
        case CH_STEP_POOL:
            st->rotations += s->nout * (k.babies + k.giants);
            st->hoisted += s->nout * (k.babies + k.giants);
            break;
        case CH_STEP_LINEAR:
            st->rotations += s->nin * k.babies + k.giant_rotations + k.reductions;
            st->hoisted += s->nin * k.babies;
            st->mul_plain += k.products;
            for (size_t t = 0; t < s->nout * s->n2 * s->nin * s->n1; t++)
                st->plaintext_bytes += pt_bytes(&s->pt[t], n);
            break;
        }
    }
}
