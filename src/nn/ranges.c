/* Activation range statistics (min, max, 99.9th percentile of |x|) and the least-squares
 * ReLU fit used to initialise polynomial activations. */
#include <math.h>
#include <string.h>

#include "nn/inner.h"

void nn_range_acc_init(nn_range_acc *a)
{
    memset(a, 0, sizeof *a);
    a->min = INFINITY;
    a->max = -INFINITY;
}

void nn_range_acc_add(nn_range_acc *a, const float *x, size_t n)
{
    if (a->pass == 0) {
        float lo = (float)a->min, hi = (float)a->max;
        for (size_t i = 0; i < n; i++) {
            lo = x[i] < lo ? x[i] : lo;
            hi = x[i] > hi ? x[i] : hi;
        }
        a->min = lo, a->max = hi;
        return;
    }
    float scale = a->absmax > 0 ? (float)(NN_RANGE_BINS / a->absmax) : 0.0f;
    for (size_t i = 0; i < n; i++) {
        float f = fabsf(x[i]) * scale;
        size_t bin = f < (float)(NN_RANGE_BINS - 1) ? (size_t)f : NN_RANGE_BINS - 1;
        a->hist[bin]++;
    }
    a->count += n;
}

void nn_range_acc_next(nn_range_acc *a)
{
    a->pass = 1;
    a->absmax = fmax(fabs(a->min), fabs(a->max));
    if (!isfinite(a->absmax))
        a->absmax = 0;
}

nn_range nn_range_acc_result(const nn_range_acc *a)
{
    nn_range r = {0, 0, 0};
    if (!a->count)
        return r;
    r.min = (float)a->min;
    r.max = (float)a->max;
    /* Smallest bin edge with at least 99.9 % of the values at or below it. */
    uint64_t need = a->count - a->count / 1000, cum = 0;
    size_t bin = 0;
    while (bin < NN_RANGE_BINS - 1 && (cum += a->hist[bin]) < need)
        bin++;
    r.abs_p999 = (float)(a->absmax * (double)(bin + 1) / NN_RANGE_BINS);
    return r;
}

/* Solves the 3x3 normal equations of min sum (a x^2 + b x + c - relu(x))^2 over a uniform
 * grid on [lo, hi] by Gaussian elimination with partial pivoting (well conditioned after
 * scaling x to [-1, 1] by t = (x - mid) / half). */
void nn_fit_relu(float *a, float *b, float *c, double lo, double hi)
{
    if (!(hi - lo > 1e-6)) {
        *a = 0.25f, *b = 0.5f, *c = 0.0f; /* degenerate range: a generic ReLU-like bowl */
        return;
    }
    enum { GRID = 257 };
    double mid = (lo + hi) / 2, half = (hi - lo) / 2, M[3][4] = {{0}};
    for (int i = 0; i < GRID; i++) {
        double t = -1 + 2.0 * i / (GRID - 1), x = mid + half * t, y = x > 0 ? x : 0;
        double f[3] = {t * t, t, 1};
        for (int r = 0; r < 3; r++) {
            for (int s = 0; s < 3; s++)
                M[r][s] += f[r] * f[s];
            M[r][3] += f[r] * y;
        }
    }
    for (int col = 0; col < 3; col++) {
        int piv = col;
        for (int r = col + 1; r < 3; r++)
            if (fabs(M[r][col]) > fabs(M[piv][col]))
                piv = r;
        for (int s = 0; s < 4; s++) {
            double tmp = M[col][s];
            M[col][s] = M[piv][s];
            M[piv][s] = tmp;
        }
        for (int r = 0; r < 3; r++) {
            if (r == col)
                continue;
            double f = M[r][col] / M[col][col];
            for (int s = 0; s < 4; s++)
                M[r][s] -= f * M[col][s];
        }
    }
    double p = M[0][3] / M[0][0], q = M[1][3] / M[1][1], r0 = M[2][3] / M[2][2];
    /* y = p t^2 + q t + r0 with t = (x - mid)/half: expand into powers of x. */
    double h2 = half * half;
    *a = (float)(p / h2);
    *b = (float)(q / half - 2 * p * mid / h2);
    *c = (float)(p * mid * mid / h2 - q * mid / half + r0);
}
