/* Folding: an affine poly layer (a = 0 everywhere: BatchNormalization, Mul/Add by constants)
 * costs a level if kept, so it is merged, exactly, into a neighbour:
 *   after conv2d (per output channel) or dense        -> scaled weights and bias
 *   after / before another poly                        -> composed quadratic
 *   before dense (any granularity)                     -> W' = W·diag(s), b' = b + W·t
 *   before conv2d without padding (per input channel)  -> likewise (with padding the shift
 *                                                         would wrongly reach the zero pads)
 *   first layer, one (s > 0, t) for the whole tensor   -> the input normalisation
 * and the nn_model is then built, each poly with the coarsest granularity its coefficients
 * allow (square, layer, channel, element). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onnx/inner.h"

ppnn_status pl_push(pl_list *p, const pl_layer *l)
{
    if (p->n >= NN_MAX_LAYERS) /* before folding; also bounds the lowering's work */
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "more than %d layers", NN_MAX_LAYERS);
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 16;
        pl_layer *nl = realloc(p->l, cap * sizeof *nl);
        if (!nl)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        p->l = nl, p->cap = cap;
    }
    p->l[p->n++] = *l;
    return PPNN_OK;
}

static void layer_free(pl_layer *l)
{
    free(l->w), free(l->bias), free(l->a), free(l->b), free(l->c);
    memset(l, 0, sizeof *l);
}

void pl_list_free(pl_list *p)
{
    for (size_t i = 0; i < p->n; i++)
        layer_free(&p->l[i]);
    free(p->l);
    memset(p, 0, sizeof *p);
}

static void remove_layer(pl_list *p, size_t i)
{
    layer_free(&p->l[i]);
    memmove(&p->l[i], &p->l[i + 1], (p->n - i - 1) * sizeof *p->l);
    p->n--;
}

static int is_affine(const pl_layer *l)
{
    size_t n = nn_numel(l->in);
    for (size_t i = 0; i < n; i++)
        if (l->a[i] != 0)
            return 0;
    return 1;
}

/* v (one value per element of a tensor of shape s) is constant within each channel. */
static int per_channel(const float *v, nn_shape s)
{
    size_t inner = (size_t)s.h * s.w;
    for (size_t ch = 0; ch < s.c; ch++)
        for (size_t j = 1; j < inner; j++)
            if (v[ch * inner + j] != v[ch * inner])
                return 0;
    return 1;
}

static int uniform(const float *v, size_t n)
{
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[0])
            return 0;
    return 1;
}

/* Index of the next non-flatten layer after i (flatten keeps the memory order). */
static size_t next_linear(const pl_list *p, size_t i)
{
    size_t j = i + 1;
    while (j < p->n && p->l[j].kind == PL_FLATTEN)
        j++;
    return j;
}

/* Tries to fold affine layer i (y = s·x + t, s = b, t = c); returns 1 when it did. */
static int fold_one(pl_list *p, size_t i)
{
    pl_layer *f = &p->l[i];
    const size_t n = nn_numel(f->in);
    const float *s = f->b, *t = f->c;
    size_t pi = i;
    while (pi > 0 && p->l[pi - 1].kind == PL_FLATTEN)
        pi--; /* flatten keeps the memory order: fold through it */
    pl_layer *prev = pi ? &p->l[pi - 1] : NULL;
    if (prev && prev->kind == PL_DENSE) {
        size_t K = nn_numel(prev->in);
        for (size_t o = 0; o < n; o++) {
            for (size_t k = 0; k < K; k++)
                prev->w[o * K + k] *= s[o];
            prev->bias[o] = s[o] * prev->bias[o] + t[o];
        }
        remove_layer(p, i);
        return 1;
    }
    if (prev && prev->kind == PL_CONV && per_channel(s, prev->out) &&
        per_channel(t, prev->out)) {
        size_t inner = (size_t)prev->out.h * prev->out.w;
        size_t per = (size_t)prev->in.c * prev->kernel * prev->kernel;
        for (size_t oc = 0; oc < prev->out.c; oc++) {
            float so = s[oc * inner], to = t[oc * inner];
            for (size_t k = 0; k < per; k++)
                prev->w[oc * per + k] *= so;
            prev->bias[oc] = so * prev->bias[oc] + to;
        }
        remove_layer(p, i);
        return 1;
    }
    if (prev && prev->kind == PL_POLY) {
        for (size_t k = 0; k < n; k++) {
            prev->a[k] *= s[k];
            prev->b[k] *= s[k];
            prev->c[k] = s[k] * prev->c[k] + t[k];
        }
        remove_layer(p, i);
        return 1;
    }
    size_t j = next_linear(p, i);
    pl_layer *nx = j < p->n ? &p->l[j] : NULL;
    if (nx && nx->kind == PL_POLY) {
        for (size_t k = 0; k < n; k++) { /* a(sx+t)^2 + b(sx+t) + c */
            double a = nx->a[k], b = nx->b[k], c = nx->c[k], sk = s[k], tk = t[k];
            nx->a[k] = (float)(a * sk * sk);
            nx->b[k] = (float)(2 * a * sk * tk + b * sk);
            nx->c[k] = (float)(a * tk * tk + b * tk + c);
        }
        remove_layer(p, i);
        return 1;
    }
    if (nx && nx->kind == PL_DENSE) {
        size_t O = nn_numel(nx->out);
        for (size_t o = 0; o < O; o++) {
            double acc = nx->bias[o];
            for (size_t k = 0; k < n; k++) {
                acc += (double)nx->w[o * n + k] * t[k];
                nx->w[o * n + k] *= s[k];
            }
            nx->bias[o] = (float)acc;
        }
        remove_layer(p, i);
        return 1;
    }
    if (nx && nx->kind == PL_CONV && nx->pad == 0 && per_channel(s, f->in) &&
        per_channel(t, f->in)) {
        size_t inner = (size_t)f->in.h * f->in.w, kk = (size_t)nx->kernel * nx->kernel;
        size_t C = nx->in.c;
        for (size_t oc = 0; oc < nx->out.c; oc++) {
            double acc = nx->bias[oc];
            for (size_t ic = 0; ic < C; ic++)
                for (size_t q = 0; q < kk; q++) {
                    float *wt = &nx->w[(oc * C + ic) * kk + q];
                    acc += (double)*wt * t[ic * inner];
                    *wt *= s[ic * inner];
                }
            nx->bias[oc] = (float)acc;
        }
        remove_layer(p, i);
        return 1;
    }
    if (pi == 0 && uniform(s, n) && uniform(t, n) && s[0] > 0) {
        /* s·((p/255 - mean)/std) + t = (p/255 - (mean - t·std/s)) / (std/s) */
        p->norm_mean = p->norm_mean - t[0] * p->norm_std / s[0];
        p->norm_std = p->norm_std / s[0];
        remove_layer(p, i);
        return 1;
    }
    return 0;
}

ppnn_status onnx_fold(pl_list *p)
{
    int changed = 1;
    while (changed) {
        changed = 0;
        for (size_t i = 0; i < p->n && !changed; i++)
            if (p->l[i].kind == PL_POLY && is_affine(&p->l[i]))
                changed = fold_one(p, i);
    }
    return PPNN_OK;
}

static nn_poly_gran granularity(const pl_layer *l)
{
    size_t n = nn_numel(l->in);
    int sq = 1;
    for (size_t i = 0; i < n && sq; i++)
        sq = l->a[i] == 1 && l->b[i] == 0 && l->c[i] == 0;
    if (sq)
        return NN_POLY_SQUARE;
    if (uniform(l->a, n) && uniform(l->b, n) && uniform(l->c, n))
        return NN_POLY_LAYER;
    if (per_channel(l->a, l->in) && per_channel(l->b, l->in) && per_channel(l->c, l->in))
        return NN_POLY_CHANNEL;
    return NN_POLY_ELEMENT;
}

ppnn_status onnx_build_model(nn_model *m, const pl_list *p, nn_shape input, const char *arch)
{
    nn_model_init(m, arch, input);
    ppnn_status st = PPNN_OK;
    for (size_t i = 0; i < p->n && !st; i++) {
        const pl_layer *l = &p->l[i];
        switch (l->kind) {
        case PL_CONV: st = nn_model_add_conv2d(m, l->out.c, l->kernel, l->stride, l->pad); break;
        case PL_DENSE: st = nn_model_add_dense(m, (uint32_t)nn_numel(l->out)); break;
        case PL_POOL: st = nn_model_add_avgpool(m, l->kernel, l->stride); break;
        case PL_FLATTEN: st = nn_model_add_flatten(m); break;
        case PL_POLY: st = nn_model_add_poly(m, granularity(l)); break;
        }
        if (!st && nn_numel(m->layers[m->nlayers - 1].out) != nn_numel(l->out))
            st = ppnn_fail(PPNN_ERR_PARAM, "internal: layer %zu shape mismatch", i);
    }
    /* The logits are the output tensor in CHW order: nn wants a vector last. */
    size_t nl = m->nlayers;
    if (!st && (m->layers[nl - 1].out.h != 1 || m->layers[nl - 1].out.w != 1))
        st = nn_model_add_flatten(m);
    if (!st)
        st = nn_model_finish(m);
    if (st) {
        nn_model_free(m);
        return st;
    }
    m->nclasses = (uint32_t)nn_numel(m->layers[m->nlayers - 1].out);
    m->norm_mean = p->norm_mean, m->norm_std = p->norm_std;
    for (size_t i = 0; i < p->n; i++) { /* (a trailing flatten has no parameters) */
        const pl_layer *l = &p->l[i];
        nn_layer *d = &m->layers[i];
        if (d->nweight)
            memcpy(d->weight, l->w, d->nweight * sizeof *d->weight);
        if (d->nbias)
            memcpy(d->bias, l->bias, d->nbias * sizeof *d->bias);
        if (l->kind == PL_POLY && d->ncoef) {
            size_t n = nn_numel(l->in), inner = (size_t)l->in.h * l->in.w;
            size_t stride = d->gran == NN_POLY_CHANNEL ? inner : d->gran == NN_POLY_LAYER ? n : 1;
            for (size_t j = 0; j < d->ncoef; j++) {
                d->coef[j] = l->a[j * stride];
                d->coef[d->ncoef + j] = l->b[j * stride];
                d->coef[2 * d->ncoef + j] = l->c[j * stride];
            }
        }
    }
    /* Folding multiplies constants together: a model file never holds inf or NaN. */
    for (size_t i = 0; i < m->nparams; i++)
        if (!isfinite(m->params[i])) {
            nn_model_free(m);
            return ppnn_fail(PPNN_ERR_NUMERIC, "a weight is not finite after folding the "
                             "constants (overflow in the model's values)");
        }
    return PPNN_OK;
}
