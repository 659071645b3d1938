/* Conv, AveragePool, GlobalAveragePool, Gemm, MatMul and Pad onto nn layers.
 * Window geometry follows the ONNX operator definitions: pads = [top, left, bottom, right],
 * out = floor((H + top + bottom - k) / s) + 1 (ceil_mode 0), auto_pad SAME_* pads to
 * out = ceil(H / s) with the odd pixel at the end (UPPER) or the beginning (LOWER). Pads of
 * preceding Pad nodes ("fused") are real zeros: they count in every average.
 *   - square kernel, equal strides, equal pads < kernel -> nn conv2d / avgpool (no pads);
 *     a padded AveragePool whose every window divides by k*k -> a conv2d with a diagonal
 *     1/k^2 kernel (the planner skips its zero taps);
 *   - anything else (rectangular kernels, unequal strides, asymmetric pads, averages over
 *     the valid cells only) -> the exact dense matrix of the map, up to
 *     ONNX_MAX_DENSE_FALLBACK entries. */
#include <stdlib.h>
#include <string.h>

#include "onnx/linear.h"

typedef struct {
    uint32_t kh, kw, sh, sw;
    uint32_t pad[4];     /* attribute (or auto_pad) pads: top, left, bottom, right */
    uint32_t fused[4];   /* pads of preceding Pad nodes */
    uint32_t H, W;       /* input size without any pad */
    uint32_t Ho, Wo;
    int count_pad;       /* AveragePool: attribute pads count in the divisor */
} window;

static ppnn_status geometry(window *w, const onnx_node_ctx *c, int64_t kh, int64_t kw)
{
    int64_t ks[2] = {kh, kw}, st[2] = {1, 1}, dil[2] = {1, 1}, pads[4] = {0, 0, 0, 0};
    size_t nk = kh > 0 ? 2 : 0, ns = 2, nd = 2, np = 4;
    ppnn_status s;
    char ap[32] = "NOTSET";
    if ((s = onnx_attr_ints(c, "kernel_shape", ks, 2, &nk)) ||
        (s = onnx_attr_ints(c, "strides", st, 2, &ns)) ||
        (s = onnx_attr_ints(c, "dilations", dil, 2, &nd)) ||
        (s = onnx_attr_ints(c, "pads", pads, 4, &np)) ||
        (s = onnx_attr_string(c, "auto_pad", ap, sizeof ap)))
        return s;
    if (nk != 2 || ns != 2 || nd != 2 || np != 4)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "kernel_shape, strides, dilations and "
                              "pads must describe a 2-D window");
    if ((kh > 0 && (ks[0] != kh || ks[1] != kw)))
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "kernel_shape %lldx%lld disagrees with the "
                              "weights' %lldx%lld", (long long)ks[0], (long long)ks[1],
                              (long long)kh, (long long)kw);
    if (dil[0] != 1 || dil[1] != 1)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "dilations %lldx%lld: only 1 is "
                              "supported", (long long)dil[0], (long long)dil[1]);
    for (int i = 0; i < 2; i++)
        if (ks[i] < 1 || ks[i] > NN_MAX_DIM || st[i] < 1 || st[i] > NN_MAX_DIM)
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "kernel %lld / stride %lld out of "
                                  "range", (long long)ks[i], (long long)st[i]);
    for (int i = 0; i < 4; i++)
        if (pads[i] < 0 || pads[i] > NN_MAX_DIM)
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "pad %lld: only 0..%d (no "
                                  "cropping)", (long long)pads[i], NN_MAX_DIM);
    w->kh = (uint32_t)ks[0], w->kw = (uint32_t)ks[1], w->sh = (uint32_t)st[0];
    w->sw = (uint32_t)st[1];
    uint32_t in[2] = {w->H + w->fused[0] + w->fused[2], w->W + w->fused[1] + w->fused[3]};
    uint32_t k[2] = {w->kh, w->kw}, s2[2] = {w->sh, w->sw};
    if (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER")) {
        for (int i = 0; i < 2; i++) {
            uint64_t out = (in[i] + s2[i] - 1) / s2[i];
            int64_t total = (int64_t)((out - 1) * s2[i] + k[i]) - (int64_t)in[i];
            total = total > 0 ? total : 0;
            uint32_t small = (uint32_t)(total / 2), big = (uint32_t)(total - total / 2);
            int upper = !strcmp(ap, "SAME_UPPER");
            w->pad[i] = upper ? small : big;
            w->pad[i + 2] = upper ? big : small;
        }
    } else if (!strcmp(ap, "VALID")) {
        memset(w->pad, 0, sizeof w->pad);
    } else if (!strcmp(ap, "NOTSET")) {
        for (int i = 0; i < 4; i++)
            w->pad[i] = (uint32_t)pads[i];
    } else {
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "auto_pad '%s' is not an ONNX value", ap);
    }
    for (int i = 0; i < 2; i++) {
        uint64_t span = (uint64_t)in[i] + w->pad[i] + w->pad[i + 2];
        if (span < k[i])
            return onnx_node_fail(c, PPNN_ERR_FORMAT, "%ux%u window larger than the padded "
                                  "input", w->kh, w->kw);
        uint64_t out = (span - k[i]) / s2[i] + 1;
        if (i == 0)
            w->Ho = (uint32_t)out;
        else
            w->Wo = (uint32_t)out;
    }
    return PPNN_OK;
}

/* One (top, left, bottom, right) pad value when the window is square and symmetric, else -1. */
static long square_pad(const window *w)
{
    uint32_t p = w->pad[0] + w->fused[0];
    for (int i = 1; i < 4; i++)
        if (w->pad[i] + w->fused[i] != p)
            return -1;
    if (w->kh != w->kw || w->sh != w->sw || p >= w->kh)
        return -1;
    return (long)p;
}

/* Dense matrix of the window map: rows (o, oy, ox), columns (c, iy, ix) of the unpadded
 * input. conv != NULL: weights [O][C][kh][kw]; else the average of channel o over the window
 * (divisor: every cell, or cells inside the input plus fused pads when !count_pad). */
static ppnn_status dense_window(onnx_linear_result *r, const onnx_node_ctx *c, const window *w,
                                size_t C, size_t O, const float *conv, const float *bias)
{
    const size_t in = C * w->H * w->W, out = O * (size_t)w->Ho * w->Wo;
    if (in == 0 || out > ONNX_MAX_DENSE_FALLBACK / in)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "%ux%u window, strides %ux%u, pads "
                              "%u,%u,%u,%u: no nn window layer expresses it and its %zux%zu "
                              "dense matrix is above the %zu-entry limit", w->kh, w->kw, w->sh,
                              w->sw, w->pad[0] + w->fused[0], w->pad[1] + w->fused[1],
                              w->pad[2] + w->fused[2], w->pad[3] + w->fused[3], out, in,
                              (size_t)ONNX_MAX_DENSE_FALLBACK);
    pl_layer *l = &r->layer;
    l->kind = PL_DENSE;
    l->w = calloc(out * in, sizeof *l->w);
    l->bias = calloc(out, sizeof *l->bias);
    if (!l->w || !l->bias) {
        free(l->w), free(l->bias);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for a %zux%zu matrix", out, in);
    }
    const long Hp = (long)(w->H + w->fused[0] + w->fused[2]);
    const long Wp = (long)(w->W + w->fused[1] + w->fused[3]);
    for (size_t o = 0; o < O; o++)
        for (size_t oy = 0; oy < w->Ho; oy++)
            for (size_t ox = 0; ox < w->Wo; ox++) {
                size_t row = (o * w->Ho + oy) * w->Wo + ox;
                float *wr = l->w + row * in;
                l->bias[row] = bias ? bias[o] : 0;
                size_t count = 0;
                for (size_t ch = conv ? 0 : o; ch < (conv ? C : o + 1); ch++)
                    for (long ki = 0; ki < (long)w->kh; ki++)
                        for (long kj = 0; kj < (long)w->kw; kj++) {
                            long py = (long)(oy * w->sh) - (long)w->pad[0] + ki;
                            long px = (long)(ox * w->sw) - (long)w->pad[1] + kj;
                            int inside_p = py >= 0 && py < Hp && px >= 0 && px < Wp;
                            count += inside_p || w->count_pad;
                            long iy = py - (long)w->fused[0], ix = px - (long)w->fused[1];
                            if (iy < 0 || iy >= (long)w->H || ix < 0 || ix >= (long)w->W)
                                continue;
                            size_t col = (ch * w->H + (size_t)iy) * w->W + (size_t)ix;
                            wr[col] += conv ? conv[((o * C + ch) * w->kh + (size_t)ki) * w->kw +
                                                   (size_t)kj]
                                            : 1.0f;
                        }
                if (!conv && count == 0) {
                    free(l->w), free(l->bias);
                    l->w = l->bias = NULL;
                    return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "output (%zu, %zu) averages "
                                          "over padding only (count_include_pad = 0)", oy, ox);
                }
                if (!conv)
                    for (size_t k = 0; k < in; k++)
                        wr[k] /= (float)count;
            }
    l->out = (nn_shape){(uint32_t)out, 1, 1};
    r->flat = 1;
    return PPNN_OK;
}

static void out_dims(onnx_linear_result *r, const onnx_head *h, uint32_t ch, uint32_t ho,
                     uint32_t wo)
{
    r->rank = 4;
    r->dims[0] = h->dims[0], r->dims[1] = ch, r->dims[2] = ho, r->dims[3] = wo;
}

static ppnn_status need_image(const onnx_linear_ctx *x, const onnx_node_ctx *c)
{
    if (x->head->rank != 4)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "needs an N x C x H x W input (2-D "
                              "images), got rank %zu", x->head->rank);
    return PPNN_OK;
}

static ppnn_status conv(onnx_linear_result *r, const onnx_linear_ctx *x, const onnx_node_ctx *c,
                        const uint32_t fused[4], const onnx_tensor *const k[3])
{
    static const char *const allowed[] = {"auto_pad", "dilations", "group", "kernel_shape",
                                          "pads", "strides", NULL};
    int64_t group = 1;
    ppnn_status st = onnx_attr_check(c, allowed);
    if (st || (st = onnx_attr_int(c, "group", &group)) || (st = need_image(x, c)))
        return st;
    const onnx_tensor *W = k[0], *B = k[1];
    const size_t C = (size_t)x->head->dims[1];
    if (!W || W->rank != 4)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "weights must be a constant of rank 4 "
                              "(2-D convolution)");
    if (group != 1)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "group %lld: only group 1 (no "
                              "depthwise or grouped convolution)", (long long)group);
    if ((size_t)W->dims[1] != C || W->dims[0] < 1 || W->dims[0] > NN_MAX_DIM)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "weights %lldx%lldx%lldx%lld for %zu input "
                              "channels", (long long)W->dims[0], (long long)W->dims[1],
                              (long long)W->dims[2], (long long)W->dims[3], C);
    const size_t O = (size_t)W->dims[0];
    if (B && B->numel != O)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "bias has %zu values for %zu output "
                              "channels", B->numel, O);
    window w = {0};
    memcpy(w.fused, fused, sizeof w.fused);
    w.H = (uint32_t)x->head->dims[2], w.W = (uint32_t)x->head->dims[3];
    if ((st = geometry(&w, c, W->dims[2], W->dims[3])))
        return st;
    out_dims(r, x->head, (uint32_t)O, w.Ho, w.Wo);
    long p = square_pad(&w);
    if (p < 0 || x->flat)
        return dense_window(r, c, &w, C, O, W->data, B ? B->data : NULL);
    pl_layer *l = &r->layer;
    l->kind = PL_CONV;
    l->kernel = w.kh, l->stride = w.sh, l->pad = (uint32_t)p;
    l->out = (nn_shape){(uint32_t)O, w.Ho, w.Wo};
    l->w = malloc(W->numel * sizeof *l->w);
    l->bias = calloc(O, sizeof *l->bias);
    if (!l->w || !l->bias) {
        free(l->w), free(l->bias);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    memcpy(l->w, W->data, W->numel * sizeof *l->w); /* ONNX [O][C][kh][kw] = nn layout */
    if (B)
        memcpy(l->bias, B->data, O * sizeof *l->bias);
    return PPNN_OK;
}

static ppnn_status avgpool(onnx_linear_result *r, const onnx_linear_ctx *x,
                           const onnx_node_ctx *c, const uint32_t fused[4], int global)
{
    static const char *const allowed[] = {"auto_pad", "ceil_mode", "count_include_pad",
                                          "dilations", "kernel_shape", "pads", "strides", NULL};
    static const char *const none[] = {NULL};
    int64_t ceil_mode = 0, count_pad = 0;
    ppnn_status st = onnx_attr_check(c, global ? none : allowed);
    if (st || (st = onnx_attr_int(c, "ceil_mode", &ceil_mode)) ||
        (st = onnx_attr_int(c, "count_include_pad", &count_pad)) || (st = need_image(x, c)))
        return st;
    if (ceil_mode)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "ceil_mode 1: only 0 (floor) is "
                              "supported");
    if (!global && !onnx_attr_find(c->n, "kernel_shape"))
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "AveragePool without kernel_shape");
    const size_t C = (size_t)x->head->dims[1];
    window w = {0};
    memcpy(w.fused, fused, sizeof w.fused);
    w.H = (uint32_t)x->head->dims[2], w.W = (uint32_t)x->head->dims[3];
    w.count_pad = count_pad != 0;
    if (global) {
        if (fused[0] | fused[1] | fused[2] | fused[3])
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "Pad before GlobalAveragePool");
        w.kh = w.H, w.kw = w.W, w.sh = w.sw = 1, w.Ho = w.Wo = 1;
    } else if ((st = geometry(&w, c, 0, 0))) {
        return st;
    }
    out_dims(r, x->head, (uint32_t)C, w.Ho, w.Wo);
    long p = square_pad(&w);
    int attr_pads = (w.pad[0] | w.pad[1] | w.pad[2] | w.pad[3]) != 0;
    pl_layer *l = &r->layer;
    if (p == 0 && !x->flat) {
        l->kind = PL_POOL;
        l->kernel = w.kh, l->stride = w.sh;
        l->out = (nn_shape){(uint32_t)C, w.Ho, w.Wo};
        return PPNN_OK;
    }
    if (p < 0 || x->flat)
        return dense_window(r, c, &w, C, C, NULL, NULL);
    /* A diagonal conv2d over the zero-padded input: every window divides by k*k, or, when
     * attribute pads do not count, the conv sums (weight 1) and the node's value is the sum
     * times 1/(cells inside the input and fused pads), a per-element factor the symbolic
     * stage folds into the next layer. */
    int divide_inside = attr_pads && !w.count_pad;
    if (divide_inside) {
        size_t n = C * (size_t)w.Ho * w.Wo;
        r->post_scale = malloc(n * sizeof *r->post_scale);
        if (!r->post_scale)
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        const long Hp = (long)(w.H + w.fused[0] + w.fused[2]);
        const long Wp = (long)(w.W + w.fused[1] + w.fused[3]);
        for (size_t oy = 0; oy < w.Ho; oy++)
            for (size_t ox = 0; ox < w.Wo; ox++) {
                long y0 = (long)(oy * w.sh) - (long)w.pad[0], x0 = (long)(ox * w.sw) - (long)w.pad[1];
                long y1 = y0 + (long)w.kh, x1 = x0 + (long)w.kw;
                long ny = (y1 < Hp ? y1 : Hp) - (y0 > 0 ? y0 : 0);
                long nx = (x1 < Wp ? x1 : Wp) - (x0 > 0 ? x0 : 0);
                if (ny <= 0 || nx <= 0) {
                    free(r->post_scale);
                    r->post_scale = NULL;
                    return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "output (%zu, %zu) averages "
                                          "over padding only (count_include_pad = 0)", oy, ox);
                }
                for (size_t ch = 0; ch < C; ch++)
                    r->post_scale[(ch * w.Ho + oy) * w.Wo + ox] = 1.0f / (float)(ny * nx);
            }
    }
    l->kind = PL_CONV;
    l->kernel = w.kh, l->stride = w.sh, l->pad = (uint32_t)p;
    l->out = (nn_shape){(uint32_t)C, w.Ho, w.Wo};
    size_t kk = (size_t)w.kh * w.kw;
    l->w = calloc(C * C * kk, sizeof *l->w);
    l->bias = calloc(C, sizeof *l->bias);
    if (!l->w || !l->bias) {
        free(l->w), free(l->bias), free(r->post_scale);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    for (size_t ch = 0; ch < C; ch++)
        for (size_t t = 0; t < kk; t++)
            l->w[(ch * C + ch) * kk + t] = divide_inside ? 1.0f : 1.0f / (float)kk;
    return PPNN_OK;
}

static ppnn_status pad(onnx_linear_result *r, const onnx_linear_ctx *x, const onnx_node_ctx *c,
                       const onnx_tensor *const k[3])
{
    static const char *const old_attrs[] = {"mode", "pads", "value", "paddings", NULL};
    static const char *const new_attrs[] = {"mode", NULL};
    char mode[32] = "constant";
    int64_t pads[8] = {0};
    size_t np = 0;
    float value = 0;
    int old = x->g->opset < 11;
    ppnn_status st = onnx_attr_check(c, old ? old_attrs : new_attrs);
    if (st || (st = onnx_attr_string(c, "mode", mode, sizeof mode)) || (st = need_image(x, c)))
        return st;
    if (strcmp(mode, "constant"))
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "mode '%s': only constant (zero) "
                              "padding is supported", mode);
    if (old) {
        if ((st = onnx_attr_ints(c, "pads", pads, 8, &np)) ||
            (st = onnx_attr_float(c, "value", &value)))
            return st;
    } else {
        if (!k[0] || k[0]->numel > 8)
            return onnx_node_fail(c, PPNN_ERR_FORMAT, "pads must be a constant of 8 values");
        np = k[0]->numel;
        for (size_t i = 0; i < np; i++)
            pads[i] = (int64_t)k[0]->data[i];
        value = k[1] && k[1]->numel ? k[1]->data[0] : 0;
        if (k[2])
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "Pad with axes is not supported");
    }
    if (value != 0)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "constant %g: only zero padding fuses "
                              "into Conv/AveragePool", (double)value);
    if (np != 8)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "%zu pads for a rank-4 tensor (8 expected)",
                              np);
    /* [N_begin, C_begin, H_begin, W_begin, N_end, C_end, H_end, W_end] */
    if (pads[0] || pads[1] || pads[4] || pads[5])
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "only the spatial dimensions may be "
                              "padded");
    int64_t sp[4] = {pads[2], pads[3], pads[6], pads[7]};
    for (int i = 0; i < 4; i++) {
        if (sp[i] < 0 || sp[i] > NN_MAX_DIM)
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "pad %lld: only 0..%d (no "
                                  "cropping)", (long long)sp[i], NN_MAX_DIM);
        r->pads[i] = (uint32_t)sp[i];
    }
    r->pad_only = 1;
    return PPNN_OK;
}

/* Gemm (A·op(B)·alpha + beta·C) and MatMul (A·B) with A the data, B and C constant. */
static ppnn_status gemm(onnx_linear_result *r, const onnx_linear_ctx *x, const onnx_node_ctx *c,
                        const onnx_tensor *const k[3], int matmul)
{
    static const char *const allowed[] = {"alpha", "beta", "transA", "transB", "broadcast",
                                          NULL};
    static const char *const none[] = {NULL};
    float alpha = 1, beta = 1;
    int64_t ta = 0, tb = 0;
    ppnn_status st = onnx_attr_check(c, matmul ? none : allowed);
    if (st || (st = onnx_attr_float(c, "alpha", &alpha)) ||
        (st = onnx_attr_float(c, "beta", &beta)) || (st = onnx_attr_int(c, "transA", &ta)) ||
        (st = onnx_attr_int(c, "transB", &tb)))
        return st;
    if (x->head->rank != 2)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "needs a 2-D (N, K) input, got rank "
                              "%zu: add a Flatten before it", x->head->rank);
    if (ta)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "transA = 1 would put the batch "
                              "dimension second");
    const onnx_tensor *B = k[0], *Cb = matmul ? NULL : k[1];
    const size_t K = x->head->numel;
    if (!B || B->rank != 2)
        return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "B must be a constant matrix");
    size_t bk = (size_t)B->dims[tb ? 1 : 0], M = (size_t)B->dims[tb ? 0 : 1];
    if (bk != K || M < 1 || M > NN_MAX_NUMEL)
        return onnx_node_fail(c, PPNN_ERR_FORMAT, "B is %lldx%lld for %zu inputs",
                              (long long)B->dims[0], (long long)B->dims[1], K);
    if (Cb) { /* C broadcasts to (N, M): one value, or M values, never per image */
        int per_image = Cb->rank == 2 && Cb->dims[0] != 1;
        if (per_image || (Cb->numel != 1 && Cb->numel != M))
            return onnx_node_fail(c, PPNN_ERR_UNSUPPORTED, "C must be a scalar or hold one "
                                  "value per output (it may not vary along the batch)");
    }
    pl_layer *l = &r->layer;
    l->kind = PL_DENSE;
    l->out = (nn_shape){(uint32_t)M, 1, 1};
    l->w = malloc(M * K * sizeof *l->w);
    l->bias = calloc(M, sizeof *l->bias);
    if (!l->w || !l->bias) {
        free(l->w), free(l->bias);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    for (size_t o = 0; o < M; o++) {
        for (size_t i = 0; i < K; i++)
            l->w[o * K + i] = alpha * (tb ? B->data[o * K + i] : B->data[i * M + o]);
        if (Cb)
            l->bias[o] = beta * Cb->data[Cb->numel == 1 ? 0 : o];
    }
    r->rank = 2;
    r->dims[0] = x->head->dims[0], r->dims[1] = (int64_t)M;
    return PPNN_OK;
}

ppnn_status onnx_linear_pad(onnx_linear_result *r, const onnx_linear_ctx *x,
                            const onnx_node_ctx *c, const uint32_t pads[4])
{
    memset(r, 0, sizeof *r);
    ppnn_status st = need_image(x, c);
    if (st)
        return st;
    const size_t C = (size_t)x->head->dims[1];
    window w = {0};
    w.H = (uint32_t)x->head->dims[2], w.W = (uint32_t)x->head->dims[3];
    w.kh = w.kw = w.sh = w.sw = 1;
    memcpy(w.pad, pads, sizeof w.pad);
    w.Ho = w.H + pads[0] + pads[2], w.Wo = w.W + pads[1] + pads[3];
    float *ident = calloc(C * C, sizeof *ident);
    if (!ident)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    for (size_t ch = 0; ch < C; ch++)
        ident[ch * C + ch] = 1;
    out_dims(r, x->head, (uint32_t)C, w.Ho, w.Wo);
    st = dense_window(r, c, &w, C, C, ident, NULL);
    free(ident);
    return st;
}

ppnn_status onnx_linear_lower(onnx_linear_result *r, const onnx_linear_ctx *w,
                              const onnx_node_ctx *c, const uint32_t fused[4],
                              const onnx_tensor *const consts[3])
{
    const char *op = c->n->op_type;
    memset(r, 0, sizeof *r);
    if (!strcmp(op, "Conv"))
        return conv(r, w, c, fused, consts);
    if (!strcmp(op, "AveragePool"))
        return avgpool(r, w, c, fused, 0);
    if (!strcmp(op, "GlobalAveragePool"))
        return avgpool(r, w, c, fused, 1);
    if (!strcmp(op, "Pad"))
        return pad(r, w, c, consts);
    return gemm(r, w, c, consts, !strcmp(op, "MatMul"));
}
