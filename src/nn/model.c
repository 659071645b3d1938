/* Model construction: layer list with shape inference, parameter vector, small accessors. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>
#include <omp.h>

#include "nn/inner.h"

void nn_model_init(nn_model *m, const char *arch, nn_shape input)
{
    memset(m, 0, sizeof *m);
    snprintf(m->arch, sizeof m->arch, "%s", arch ? arch : "");
    m->input = input;
    m->norm_mean = 0.0f;
    m->norm_std = 0.0f; /* 0 = not yet chosen; nn_train sets it from the data */
}

void nn_model_free(nn_model *m)
{
    if (!m)
        return;
    free(m->layers);
    free(m->params);
    memset(m, 0, sizeof *m);
}

static nn_shape last_shape(const nn_model *m)
{
    return m->nlayers ? m->layers[m->nlayers - 1].out : m->input;
}

static int dim_ok(uint32_t v) { return v >= 1 && v <= NN_MAX_DIM; }

/* Appends a layer after checking the output shape; counts its parameters. */
static ppnn_status push(nn_model *m, nn_layer *l)
{
    assert(!m->params && "layer added after nn_model_finish");
    if (m->nlayers >= NN_MAX_LAYERS)
        return ppnn_fail(PPNN_ERR_PARAM, "layer %zu (%s): more than %d layers", m->nlayers,
                         nn_layer_type_name(l->type), NN_MAX_LAYERS);
    if (l->out.c < 1 || l->out.c > NN_MAX_NUMEL || !dim_ok(l->out.h) || !dim_ok(l->out.w) ||
        nn_numel(l->out) > NN_MAX_NUMEL)
        return ppnn_fail(PPNN_ERR_PARAM, "layer %zu (%s): output shape %ux%ux%u out of range",
                         m->nlayers, nn_layer_type_name(l->type), l->out.c, l->out.h, l->out.w);
    size_t np = l->nweight + l->nbias + 3 * l->ncoef;
    if (np > NN_MAX_PARAMS || m->nparams + np > NN_MAX_PARAMS)
        return ppnn_fail(PPNN_ERR_PARAM, "layer %zu (%s): more than %u parameters in the model",
                         m->nlayers, nn_layer_type_name(l->type), NN_MAX_PARAMS);
    nn_layer *nl = realloc(m->layers, (m->nlayers + 1) * sizeof *nl);
    if (!nl)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for layers");
    m->layers = nl;
    m->layers[m->nlayers++] = *l;
    m->nparams += np;
    return PPNN_OK;
}

static nn_layer new_layer(const nn_model *m, nn_layer_type t)
{
    nn_layer l;
    memset(&l, 0, sizeof l);
    l.type = t;
    l.in = l.out = last_shape(m);
    return l;
}

/* Output side of a window of size k with stride s over n (+2*pad); 0 if it does not fit. */
static uint32_t window_out(uint32_t n, uint32_t k, uint32_t s, uint32_t pad)
{
    uint64_t span = (uint64_t)n + 2u * (uint64_t)pad;
    if (k == 0 || s == 0 || k > span)
        return 0;
    return (uint32_t)((span - k) / s + 1);
}

ppnn_status nn_model_add_conv2d(nn_model *m, uint32_t out_c, uint32_t kernel, uint32_t stride,
                                uint32_t pad)
{
    nn_layer l = new_layer(m, NN_LAYER_CONV2D);
    if (!dim_ok(kernel) || !dim_ok(stride) || pad >= kernel || !dim_ok(out_c))
        return ppnn_fail(PPNN_ERR_PARAM,
                         "layer %zu (conv2d): bad kernel %u / stride %u / pad %u / channels %u",
                         m->nlayers, kernel, stride, pad, out_c);
    l.kernel = kernel, l.stride = stride, l.pad = pad;
    l.out.c = out_c;
    l.out.h = window_out(l.in.h, kernel, stride, pad);
    l.out.w = window_out(l.in.w, kernel, stride, pad);
    l.nweight = (size_t)out_c * l.in.c * kernel * kernel;
    l.nbias = out_c;
    return push(m, &l);
}

ppnn_status nn_model_add_dense(nn_model *m, uint32_t out)
{
    nn_layer l = new_layer(m, NN_LAYER_DENSE);
    l.out = (nn_shape){out, 1, 1};
    l.nweight = (size_t)out * nn_numel(l.in);
    l.nbias = out;
    return push(m, &l);
}

ppnn_status nn_model_add_avgpool(nn_model *m, uint32_t kernel, uint32_t stride)
{
    nn_layer l = new_layer(m, NN_LAYER_AVGPOOL);
    if (!dim_ok(kernel) || !dim_ok(stride))
        return ppnn_fail(PPNN_ERR_PARAM, "layer %zu (avgpool): bad kernel %u / stride %u",
                         m->nlayers, kernel, stride);
    l.kernel = kernel, l.stride = stride;
    l.out.h = window_out(l.in.h, kernel, stride, 0);
    l.out.w = window_out(l.in.w, kernel, stride, 0);
    return push(m, &l);
}

ppnn_status nn_model_add_flatten(nn_model *m)
{
    nn_layer l = new_layer(m, NN_LAYER_FLATTEN);
    l.out = (nn_shape){(uint32_t)nn_numel(l.in), 1, 1};
    return push(m, &l);
}

ppnn_status nn_model_add_relu(nn_model *m)
{
    nn_layer l = new_layer(m, NN_LAYER_RELU);
    return push(m, &l);
}

ppnn_status nn_model_add_poly(nn_model *m, nn_poly_gran gran)
{
    nn_layer l = new_layer(m, NN_LAYER_POLY);
    l.gran = gran;
    switch (gran) {
    case NN_POLY_ELEMENT: l.ncoef = nn_numel(l.in); break;
    case NN_POLY_CHANNEL: l.ncoef = l.in.c; break;
    case NN_POLY_LAYER: l.ncoef = 1; break;
    case NN_POLY_SQUARE: l.ncoef = 0; break;
    default:
        return ppnn_fail(PPNN_ERR_PARAM, "layer %zu (poly): unknown granularity %d", m->nlayers,
                         (int)gran);
    }
    return push(m, &l);
}

ppnn_status nn_model_finish(nn_model *m)
{
    if (!m->nlayers)
        return ppnn_fail(PPNN_ERR_PARAM, "model has no layers");
    nn_shape o = last_shape(m);
    if (nn_numel(o) < 2 || o.h != 1 || o.w != 1)
        return ppnn_fail(PPNN_ERR_PARAM, "last layer must output a vector of >= 2 logits");
    m->nclasses = o.c;
    m->params = calloc(m->nparams ? m->nparams : 1, sizeof *m->params);
    if (!m->params)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for %zu parameters", m->nparams);
    float *p = m->params;
    for (size_t i = 0; i < m->nlayers; i++) {
        nn_layer *l = &m->layers[i];
        l->weight = l->nweight ? p : NULL, p += l->nweight;
        l->bias = l->nbias ? p : NULL, p += l->nbias;
        l->coef = l->ncoef ? p : NULL, p += 3 * l->ncoef;
    }
    return PPNN_OK;
}

nn_grads nn_layer_grads(const nn_model *m, const nn_layer *l, float *grad)
{
    nn_grads g = {NULL, NULL, NULL};
    if (l->weight)
        g.weight = grad + (l->weight - m->params);
    if (l->bias)
        g.bias = grad + (l->bias - m->params);
    if (l->coef)
        g.coef = grad + (l->coef - m->params);
    return g;
}

size_t nn_model_depth(const nn_model *m)
{
    size_t d = 0;
    for (size_t i = 0; i < m->nlayers; i++) {
        switch (m->layers[i].type) {
        case NN_LAYER_CONV2D:
        case NN_LAYER_DENSE:
        case NN_LAYER_AVGPOOL:
        case NN_LAYER_POLY: d++; break;
        case NN_LAYER_RELU: return SIZE_MAX;
        case NN_LAYER_FLATTEN: break;
        }
    }
    return d;
}

void nn_poly_coef(const nn_layer *l, size_t i, float *a, float *b, float *c)
{
    assert(l->type == NN_LAYER_POLY && i < nn_numel(l->in));
    size_t j = 0;
    switch (l->gran) {
    case NN_POLY_SQUARE: *a = 1, *b = 0, *c = 0; return;
    case NN_POLY_ELEMENT: j = i; break;
    case NN_POLY_CHANNEL: j = i / ((size_t)l->in.h * l->in.w); break;
    case NN_POLY_LAYER: j = 0; break;
    }
    *a = l->coef[j], *b = l->coef[l->ncoef + j], *c = l->coef[2 * l->ncoef + j];
}

ppnn_status nn_model_check_images(const nn_model *m, size_t channels, size_t rows, size_t cols)
{
    if ((size_t)m->input.c != channels || (size_t)m->input.h != rows ||
        (size_t)m->input.w != cols)
        return ppnn_fail(PPNN_ERR_MISMATCH, "model expects %ux%ux%u inputs but the images are "
                         "%zux%zux%zu", m->input.c, m->input.h, m->input.w, channels, rows, cols);
    return PPNN_OK;
}

void nn_model_normalize(const nn_model *m, float *out, const uint8_t *pixels, size_t n)
{
    data_normalize(out, pixels, n * nn_numel(m->input));
    nn_model_normalize_unit(m, out, out, n);
}

void nn_model_normalize_unit(const nn_model *m, float *out, const float *values, size_t n)
{
    const size_t len = n * nn_numel(m->input);
    const float mean = m->norm_mean, inv = m->norm_std > 0 ? 1.0f / m->norm_std : 1.0f;
    for (size_t i = 0; i < len; i++) /* out may alias values */
        out[i] = (values[i] - mean) * inv;
}

const char *nn_layer_type_name(nn_layer_type t)
{
    switch (t) {
    case NN_LAYER_CONV2D: return "conv2d";
    case NN_LAYER_DENSE: return "dense";
    case NN_LAYER_AVGPOOL: return "avgpool";
    case NN_LAYER_FLATTEN: return "flatten";
    case NN_LAYER_RELU: return "relu";
    case NN_LAYER_POLY: return "poly";
    }
    return "?";
}

const char *nn_poly_gran_name(nn_poly_gran g)
{
    static const char *names[] = {"element", "channel", "layer", "square"};
    return (unsigned)g < 4 ? names[g] : "?";
}

ppnn_status nn_act_parse(nn_act *out, const char *s)
{
    static const char *names[] = {"relu", "element", "channel", "layer", "square"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (nn_act)i;
            return PPNN_OK;
        }
    return ppnn_fail(PPNN_ERR_PARAM, "unknown activation '%s' (relu, element, channel, layer, square)",
                     s);
}

void nn_set_threads(int n)
{
    /* OpenBLAS stays single-threaded: our GEMMs run between OpenMP loops, and two pools of
     * spinning threads on the same cores were measured 2-3x slower than either alone. With a
     * single-threaded BLAS and no cross-thread float reductions in our loops, the trained
     * model does not depend on the thread count. */
    openblas_set_num_threads(1);
    if (n > 0)
        omp_set_num_threads(n);
}
