/* The predicted class: the index of the largest logit. Ties go to the lowest index and NaN
 * never wins over a number, so every command that turns logits into labels — eval, decrypt,
 * demo, compare, bench — agrees on every image. One loop for both precisions: float -> double
 * is exact and keeps the order (and NaN). */
#include "ppnn/util.h"

static double at(const void *v, size_t i, int is_float)
{
    return is_float ? (double)((const float *)v)[i] : ((const double *)v)[i];
}

static size_t argmax(const void *v, size_t n, int is_float)
{
    size_t best = 0;
    for (size_t i = 1; i < n; i++) {
        double x = at(v, i, is_float), b = at(v, best, is_float);
        if (x > b || b != b) /* b != b: the best so far is NaN */
            best = i;
    }
    return best;
}

size_t ppnn_argmax(const double *v, size_t n) { return argmax(v, n, 0); }
size_t ppnn_argmaxf(const float *v, size_t n) { return argmax(v, n, 1); }
