/* Adam and SGD with momentum over the flat parameter vector; global-norm gradient clipping. */
#include <math.h>
#include <stdlib.h>

#include "nn/inner.h"

ppnn_status nn_optim_init(nn_optim *o, nn_optimizer kind, size_t n, double momentum)
{
    o->kind = kind;
    o->n = n;
    o->t = 0;
    o->beta1 = 0.9, o->beta2 = 0.999, o->eps = 1e-8, o->momentum = momentum;
    o->m = calloc(n ? n : 1, sizeof *o->m);
    o->v = kind == NN_OPT_ADAM ? calloc(n ? n : 1, sizeof *o->v) : NULL;
    if (!o->m || (kind == NN_OPT_ADAM && !o->v)) {
        nn_optim_free(o);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for optimiser state");
    }
    return PPNN_OK;
}

void nn_optim_free(nn_optim *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void nn_optim_step(nn_optim *o, float *params, const float *grad, double lr, double wd,
                   const uint8_t *decay)
{
    o->t++;
    const size_t n = o->n;
    if (o->kind == NN_OPT_SGD) {
        const float mu = (float)o->momentum, a = (float)lr;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++) {
            float g = grad[i] + (decay && decay[i] ? (float)wd * params[i] : 0.0f);
            o->m[i] = mu * o->m[i] + g;
            params[i] -= a * o->m[i];
        }
        return;
    }
    /* Adam (Kingma & Ba) with bias correction folded into the step size; decoupled decay. */
    const double c1 = 1 - pow(o->beta1, (double)o->t), c2 = 1 - pow(o->beta2, (double)o->t);
    const float b1 = (float)o->beta1, b2 = (float)o->beta2;
    const float step = (float)(lr * sqrt(c2) / c1), eps = (float)(o->eps * sqrt(c2));
    const float dec = (float)(lr * wd);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        o->m[i] = b1 * o->m[i] + (1 - b1) * g;
        o->v[i] = b2 * o->v[i] + (1 - b2) * g * g;
        if (decay && decay[i])
            params[i] -= dec * params[i];
        params[i] -= step * o->m[i] / (sqrtf(o->v[i]) + eps);
    }
}

double nn_clip_grad(float *grad, size_t n, double max_norm)
{
    double s = 0; /* sequential: the sum order must not depend on the thread count */
    for (size_t i = 0; i < n; i++)
        s += (double)grad[i] * grad[i];
    double norm = sqrt(s);
    if (max_norm > 0 && norm > max_norm) {
        float f = (float)(max_norm / norm);
        for (size_t i = 0; i < n; i++)
            grad[i] *= f;
    }
    return norm;
}
