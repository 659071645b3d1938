/* Forward and backward kernels of every layer type, for a batch of n CHW tensors.
 *
 * conv2d and dense are GEMMs (OpenBLAS through CBLAS); conv2d lowers the whole batch with
 * im2col into one matrix [in.c*k*k][n*P] (P = output positions) so a single large GEMM replaces
 * n small ones. OpenMP loops only ever split independent outputs (images, positions or
 * channels) and every sum runs in a fixed order, so results do not depend on the thread count. */
#include <assert.h>
#include <string.h>

#include <cblas.h>

#include "nn/inner.h"

void nn_layer_scratch(const nn_layer *l, size_t n, size_t *col, size_t *tmp)
{
    *col = *tmp = 0;
    if (l->type == NN_LAYER_CONV2D) {
        size_t p = (size_t)l->out.h * l->out.w;
        *col = (size_t)l->in.c * l->kernel * l->kernel * n * p;
        *tmp = (size_t)l->out.c * n * p;
    }
}

/* ---- conv2d ----------------------------------------------------------------------------- */
/* The im2col matrix col[K][n*P] (K = in.c*k*k rows, one column per image and output position)
 * and its adjoint: to_col != 0 fills col from x (zero padding); to_col == 0 zeroes x and
 * accumulates col back into it (col2im). Split over images, so no two threads write the same
 * element. */
static void im2col_walk(float *col, float *x, const nn_layer *l, size_t n, int to_col)
{
    const long k = l->kernel, s = l->stride, pad = l->pad;
    const long H = l->in.h, W = l->in.w, Ho = l->out.h, Wo = l->out.w;
    const size_t K = (size_t)l->in.c * k * k, P = (size_t)(Ho * Wo), BP = n * P;
    const size_t in_numel = nn_numel(l->in);
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < n; b++) {
        float *xb = x + b * in_numel;
        if (!to_col)
            memset(xb, 0, in_numel * sizeof *xb);
        for (size_t r = 0; r < K; r++) {
            long c = (long)(r / (size_t)(k * k)), ki = (long)(r / (size_t)k) % k, kj = (long)r % k;
            float *cb = col + r * BP + b * P;
            const long off = kj - pad; /* input column of ox is ox * s + off */
            /* Columns whose input lies inside the image: lo <= ox < hi (the same for every row). */
            long lo = kj >= pad ? 0 : (pad - kj + s - 1) / s;
            long hi = W - 1 + pad - kj < 0 ? 0 : (W - 1 + pad - kj) / s + 1;
            lo = lo < Wo ? lo : Wo;
            hi = hi < Wo ? hi : Wo;
            hi = hi > lo ? hi : lo;
            for (long oy = 0; oy < Ho; oy++) {
                long iy = oy * s + ki - pad;
                float *d = cb + oy * Wo;
                if (iy < 0 || iy >= H) {
                    if (to_col)
                        memset(d, 0, (size_t)Wo * sizeof *d);
                    continue;
                }
                float *row = xb + (c * H + iy) * W;
                if (to_col) {
                    for (long ox = 0; ox < lo; ox++)
                        d[ox] = 0.0f;
                    if (s == 1) /* the common case: a contiguous run (a strided loop does not vectorise) */
                        memcpy(d + lo, row + lo + off, (size_t)(hi - lo) * sizeof *d);
                    else
                        for (long ox = lo; ox < hi; ox++)
                            d[ox] = row[ox * s + off];
                    for (long ox = hi; ox < Wo; ox++)
                        d[ox] = 0.0f;
                } else if (s == 1) {
                    float *restrict dst = row + off;
                    const float *restrict src = d;
                    for (long ox = lo; ox < hi; ox++)
                        dst[ox] += src[ox];
                } else {
                    for (long ox = lo; ox < hi; ox++)
                        row[ox * s + off] += d[ox];
                }
            }
        }
    }
}

static void conv_forward(const nn_layer *l, float *y, const float *x, size_t n, float *col,
                         float *tmp)
{
    const size_t K = (size_t)l->in.c * l->kernel * l->kernel, O = l->out.c;
    const size_t P = (size_t)l->out.h * l->out.w, BP = n * P;
    im2col_walk(col, (float *)x, l, n, 1); /* reads x only */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)O, (int)BP, (int)K, 1.0f,
                l->weight, (int)K, col, (int)BP, 0.0f, tmp, (int)BP);
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < n; b++)
        for (size_t o = 0; o < O; o++) {
            const float *src = tmp + o * BP + b * P;
            float *dst = y + (b * O + o) * P, bias = l->bias[o];
            for (size_t p = 0; p < P; p++)
                dst[p] = src[p] + bias;
        }
}

static void conv_backward(const nn_layer *l, float *dx, nn_grads g, const float *x,
                          const float *dy, size_t n, float *col, float *tmp)
{
    const size_t K = (size_t)l->in.c * l->kernel * l->kernel, O = l->out.c;
    const size_t P = (size_t)l->out.h * l->out.w, BP = n * P;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < n; b++)
        for (size_t o = 0; o < O; o++)
            memcpy(tmp + o * BP + b * P, dy + (b * O + o) * P, P * sizeof *tmp);
#pragma omp parallel for schedule(static)
    for (size_t o = 0; o < O; o++) {
        double s = 0;
        for (size_t i = 0; i < BP; i++)
            s += tmp[o * BP + i];
        g.bias[o] = (float)s;
    }
    im2col_walk(col, (float *)x, l, n, 1); /* reads x only */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)O, (int)K, (int)BP, 1.0f, tmp,
                (int)BP, col, (int)BP, 0.0f, g.weight, (int)K);
    if (!dx)
        return;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)K, (int)BP, (int)O, 1.0f, l->weight,
                (int)K, tmp, (int)BP, 0.0f, col, (int)BP);
    im2col_walk(col, dx, l, n, 0);
}

/* ---- dense ------------------------------------------------------------------------------ */
static void dense_forward(const nn_layer *l, float *y, const float *x, size_t n)
{
    const size_t NI = nn_numel(l->in), O = l->out.c;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)O, (int)NI, 1.0f, x, (int)NI,
                l->weight, (int)NI, 0.0f, y, (int)O);
    for (size_t b = 0; b < n; b++)
        for (size_t o = 0; o < O; o++)
            y[b * O + o] += l->bias[o];
}

static void dense_backward(const nn_layer *l, float *dx, nn_grads g, const float *x,
                           const float *dy, size_t n)
{
    const size_t NI = nn_numel(l->in), O = l->out.c;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)O, (int)NI, (int)n, 1.0f, dy, (int)O,
                x, (int)NI, 0.0f, g.weight, (int)NI);
    for (size_t o = 0; o < O; o++) {
        double s = 0;
        for (size_t b = 0; b < n; b++)
            s += dy[b * O + o];
        g.bias[o] = (float)s;
    }
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)NI, (int)O, 1.0f, dy,
                    (int)O, l->weight, (int)NI, 0.0f, dx, (int)NI);
}

/* ---- average pooling -------------------------------------------------------------------- */
static void pool_forward(const nn_layer *l, float *y, const float *x, size_t n)
{
    const size_t k = l->kernel, s = l->stride, H = l->in.h, W = l->in.w;
    const size_t Ho = l->out.h, Wo = l->out.w, planes = n * l->in.c;
    const float inv = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static)
    for (size_t pl = 0; pl < planes; pl++) {
        const float *xp = x + pl * H * W;
        float *yp = y + pl * Ho * Wo;
        for (size_t oy = 0; oy < Ho; oy++)
            for (size_t ox = 0; ox < Wo; ox++) {
                float acc = 0;
                for (size_t i = 0; i < k; i++)
                    for (size_t j = 0; j < k; j++)
                        acc += xp[(oy * s + i) * W + ox * s + j];
                yp[oy * Wo + ox] = acc * inv;
            }
    }
}

static void pool_backward(const nn_layer *l, float *dx, const float *dy, size_t n)
{
    const size_t k = l->kernel, s = l->stride, H = l->in.h, W = l->in.w;
    const size_t Ho = l->out.h, Wo = l->out.w, planes = n * l->in.c;
    const float inv = 1.0f / (float)(k * k);
#pragma omp parallel for schedule(static)
    for (size_t pl = 0; pl < planes; pl++) {
        float *xp = dx + pl * H * W;
        const float *yp = dy + pl * Ho * Wo;
        memset(xp, 0, H * W * sizeof *xp);
        for (size_t oy = 0; oy < Ho; oy++)
            for (size_t ox = 0; ox < Wo; ox++) {
                float v = yp[oy * Wo + ox] * inv;
                for (size_t i = 0; i < k; i++)
                    for (size_t j = 0; j < k; j++)
                        xp[(oy * s + i) * W + ox * s + j] += v;
            }
    }
}

/* ---- polynomial activation -------------------------------------------------------------- */
/* Coefficient index of element i (CHW index within one image). */
static size_t coef_index(const nn_layer *l, size_t i)
{
    switch (l->gran) {
    case NN_POLY_ELEMENT: return i;
    case NN_POLY_CHANNEL: return i / ((size_t)l->in.h * l->in.w);
    default: return 0;
    }
}

static void poly_forward(const nn_layer *l, float *y, const float *x, size_t n)
{
    const size_t N = nn_numel(l->in), nc = l->ncoef;
    if (l->gran == NN_POLY_SQUARE) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n * N; i++)
            y[i] = x[i] * x[i];
        return;
    }
    const float *A = l->coef, *B = A + nc, *C = B + nc;
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < n; b++)
        for (size_t i = 0; i < N; i++) {
            size_t j = coef_index(l, i);
            float v = x[b * N + i];
            y[b * N + i] = (A[j] * v + B[j]) * v + C[j];
        }
}

static void poly_backward(const nn_layer *l, float *dx, nn_grads g, const float *x,
                          const float *dy, size_t n)
{
    const size_t N = nn_numel(l->in), nc = l->ncoef;
    if (l->gran == NN_POLY_SQUARE) {
        if (dx) {
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n * N; i++)
                dx[i] = 2.0f * x[i] * dy[i];
        }
        return;
    }
    const float *A = l->coef, *B = A + nc;
    if (dx) {
#pragma omp parallel for schedule(static)
        for (size_t b = 0; b < n; b++)
            for (size_t i = 0; i < N; i++) {
                size_t j = coef_index(l, i);
                dx[b * N + i] = dy[b * N + i] * (2.0f * A[j] * x[b * N + i] + B[j]);
            }
    }
    /* Parameter gradients: split over coefficients; each sums its elements in a fixed order
     * (images outer, so the element-wise case streams through memory contiguously). */
    const size_t per = N / nc, chunk = 128; /* per: elements of one image sharing a coefficient */
#pragma omp parallel for schedule(static)
    for (size_t j0 = 0; j0 < nc; j0 += chunk) {
        size_t j1 = j0 + chunk < nc ? j0 + chunk : nc;
        double acc[3][128] = {{0}};
        for (size_t b = 0; b < n; b++) {
            const float *xb = x + b * N, *db = dy + b * N;
            for (size_t j = j0; j < j1; j++)
                for (size_t i = j * per; i < (j + 1) * per; i++) {
                    double v = xb[i], d = db[i];
                    acc[0][j - j0] += d * v * v;
                    acc[1][j - j0] += d * v;
                    acc[2][j - j0] += d;
                }
        }
        for (size_t j = j0; j < j1; j++)
            for (int k = 0; k < 3; k++)
                g.coef[k * nc + j] = (float)acc[k][j - j0];
    }
}

/* ---- dispatch --------------------------------------------------------------------------- */
void nn_layer_forward(const nn_layer *l, float *y, const float *x, size_t n, float *col, float *tmp)
{
    switch (l->type) {
    case NN_LAYER_CONV2D: conv_forward(l, y, x, n, col, tmp); return;
    case NN_LAYER_DENSE: dense_forward(l, y, x, n); return;
    case NN_LAYER_AVGPOOL: pool_forward(l, y, x, n); return;
    case NN_LAYER_FLATTEN: memcpy(y, x, n * nn_numel(l->in) * sizeof *y); return;
    case NN_LAYER_RELU: {
        size_t len = n * nn_numel(l->in);
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < len; i++)
            y[i] = x[i] > 0 ? x[i] : 0.0f;
        return;
    }
    case NN_LAYER_POLY: poly_forward(l, y, x, n); return;
    }
    assert(0 && "unknown layer type");
}

void nn_layer_backward(const nn_layer *l, float *dx, nn_grads g, const float *x, const float *y,
                       const float *dy, size_t n, float *col, float *tmp)
{
    (void)y;
    switch (l->type) {
    case NN_LAYER_CONV2D: conv_backward(l, dx, g, x, dy, n, col, tmp); return;
    case NN_LAYER_DENSE: dense_backward(l, dx, g, x, dy, n); return;
    case NN_LAYER_AVGPOOL:
        if (dx)
            pool_backward(l, dx, dy, n);
        return;
    case NN_LAYER_FLATTEN:
        if (dx)
            memcpy(dx, dy, n * nn_numel(l->in) * sizeof *dx);
        return;
    case NN_LAYER_RELU:
        if (dx) {
            size_t len = n * nn_numel(l->in);
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < len; i++)
                dx[i] = x[i] > 0 ? dy[i] : 0.0f;
        }
        return;
    case NN_LAYER_POLY: poly_backward(l, dx, g, x, dy, n); return;
    }
    assert(0 && "unknown layer type");
}
