/* Workspace, forward and backward passes over the whole layer list, batched inference. */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/inner.h"

void nn_work_free(nn_work *w)
{
    if (!w)
        return;
    if (w->act)
        for (size_t i = 0; i < w->m->nlayers; i++)
            free(w->act[i]);
    free(w->act);
    free(w->g0);
    free(w->g1);
    free(w->col);
    free(w->tmp);
    free(w);
}

ppnn_status nn_work_new(nn_work **out, const nn_model *m, size_t max_batch)
{
    assert(m->params && max_batch > 0);
    *out = NULL;
    nn_work *w = calloc(1, sizeof *w);
    if (!w)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the workspace");
    w->m = m;
    w->max_batch = max_batch;
    w->act = calloc(m->nlayers, sizeof *w->act);
    size_t big = nn_numel(m->input), col = 1, tmp = 1;
    int ok = w->act != NULL;
    for (size_t i = 0; ok && i < m->nlayers; i++) {
        const nn_layer *l = &m->layers[i];
        size_t c, t;
        nn_layer_scratch(l, max_batch, &c, &t);
        col = c > col ? c : col;
        tmp = t > tmp ? t : tmp;
        big = nn_numel(l->out) > big ? nn_numel(l->out) : big;
        ok = (w->act[i] = malloc(max_batch * nn_numel(l->out) * sizeof(float))) != NULL;
    }
    if (ok) {
        w->g0 = malloc(max_batch * big * sizeof(float));
        w->g1 = malloc(max_batch * big * sizeof(float));
        w->col = malloc(col * sizeof(float));
        w->tmp = malloc(tmp * sizeof(float));
        ok = w->g0 && w->g1 && w->col && w->tmp;
    }
    if (!ok) {
        nn_work_free(w);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for a workspace of batch %zu", max_batch);
    }
    *out = w;
    return PPNN_OK;
}

const float *nn_forward(nn_work *w, const float *x, size_t n)
{
    assert(n > 0 && n <= w->max_batch);
    const nn_model *m = w->m;
    w->input = x;
    w->n = n;
    const float *in = x;
    for (size_t i = 0; i < m->nlayers; i++) {
        nn_layer_forward(&m->layers[i], w->act[i], in, n, w->col, w->tmp);
        in = w->act[i];
    }
    return in;
}

/* Adds the gradient of lambda * mean over the batch of sum((|x| - bound)+^2) / numel. */
static void penalty_grad(float *dx, const float *x, size_t len, double scale, float bound)
{
    for (size_t i = 0; i < len; i++) {
        float ax = fabsf(x[i]);
        if (ax > bound)
            dx[i] += (float)(2.0 * scale * (ax - bound)) * (x[i] > 0 ? 1.0f : -1.0f);
    }
}

double nn_range_penalty(const nn_work *w, double lambda, const float *bounds)
{
    if (lambda <= 0 || !bounds)
        return 0;
    double total = 0;
    for (size_t i = 0; i < w->m->nlayers; i++) {
        const nn_layer *l = &w->m->layers[i];
        if (l->type != NN_LAYER_POLY || !(bounds[i] > 0))
            continue;
        const float *x = i ? w->act[i - 1] : w->input;
        size_t len = w->n * nn_numel(l->in);
        double s = 0;
        for (size_t k = 0; k < len; k++) {
            double e = fabs(x[k]) - bounds[i];
            s += e > 0 ? e * e : 0;
        }
        total += lambda * s / (double)len;
    }
    return total;
}

void nn_backward(nn_work *w, float *grad, const float *dlogits, double lambda,
                 const float *bounds)
{
    const nn_model *m = w->m;
    const size_t n = w->n, L = m->nlayers;
    memcpy(w->g0, dlogits, n * m->nclasses * sizeof *w->g0);
    float *dy = w->g0, *dx = w->g1;
    for (size_t i = L; i-- > 0;) {
        const nn_layer *l = &m->layers[i];
        const float *x = i ? w->act[i - 1] : w->input;
        float *dxi = i ? dx : NULL;
        nn_layer_backward(l, dxi, nn_layer_grads(m, l, grad), x, w->act[i], dy, n, w->col,
                          w->tmp);
        if (dxi && l->type == NN_LAYER_POLY && lambda > 0 && bounds && bounds[i] > 0) {
            size_t len = n * nn_numel(l->in);
            penalty_grad(dxi, x, len, lambda / (double)len, bounds[i]);
        }
        float *t = dy;
        dy = dx;
        dx = t;
    }
}

/* Finite weights can still overflow float32 on the way (3e38 * 2 = Inf, a std of 1e-38 turns
 * every input into Inf): such logits are an error, never a prediction. */
static ppnn_status check_finite(const float *y, size_t images, size_t classes, size_t first)
{
    for (size_t i = 0; i < images * classes; i++)
        if (!isfinite(y[i]))
            return ppnn_fail(PPNN_ERR_NUMERIC, "the model's logits for image %zu are not finite "
                             "(%g): its weights or input normalisation overflow float32",
                             first + i / classes, (double)y[i]);
    return PPNN_OK;
}

ppnn_status nn_predict(const nn_model *m, float *logits, const float *x, size_t n)
{
    const size_t batch = 256, in = nn_numel(m->input);
    nn_work *w;
    ppnn_status st = nn_work_new(&w, m, n < batch ? (n ? n : 1) : batch);
    if (st)
        return st;
    for (size_t i = 0; i < n; i += batch) {
        size_t k = n - i < batch ? n - i : batch;
        const float *y = nn_forward(w, x + i * in, k);
        if ((st = check_finite(y, k, m->nclasses, i)))
            break;
        memcpy(logits + i * m->nclasses, y, k * m->nclasses * sizeof *logits);
    }
    nn_work_free(w);
    return st;
}

ppnn_status nn_evaluate(const nn_model *m, const data_set *ds, size_t *correct, size_t *total)
{
    const size_t in = nn_numel(m->input), batch = 256;
    ppnn_status st = nn_model_check_images(m, ds->channels, ds->rows, ds->cols);
    if (!st)
        st = data_check_classes(m->nclasses);
    if (st)
        return st;
    memset(correct, 0, m->nclasses * sizeof *correct);
    memset(total, 0, m->nclasses * sizeof *total);
    nn_work *w;
    if ((st = nn_work_new(&w, m, batch)))
        return st;
    float *x = malloc(batch * in * sizeof *x);
    if (!x) {
        nn_work_free(w);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    for (size_t i = 0; i < ds->count; i += batch) {
        size_t k = ds->count - i < batch ? ds->count - i : batch;
        nn_model_normalize(m, x, ds->pixels + i * in, k);
        const float *y = nn_forward(w, x, k);
        if ((st = check_finite(y, k, m->nclasses, i)))
            break;
        for (size_t b = 0; b < k; b++) {
            uint8_t lab = ds->labels[i + b]; /* < nclasses: data_check_classes above */
            total[lab]++;
            correct[lab] += ppnn_argmaxf(y + b * m->nclasses, m->nclasses) == lab;
        }
    }
    free(x);
    nn_work_free(w);
    return st;
}
