/* Softmax cross-entropy and the distillation loss, with their gradients w.r.t. the logits. */
#include <math.h>

#include "nn/inner.h"

size_t nn_count_correct(const float *logits, const uint8_t *labels, size_t n, size_t k)
{
    size_t c = 0;
    for (size_t b = 0; b < n; b++)
        c += ppnn_argmaxf(logits + b * k, k) == labels[b];
    return c;
}

/* p = softmax(z / temp) in double (stable: subtract the max); returns log-sum-exp of z/temp. */
static double softmax(double *p, const float *z, size_t k, double temp)
{
    double mx = z[0] / temp;
    for (size_t i = 1; i < k; i++)
        mx = z[i] / temp > mx ? z[i] / temp : mx;
    double s = 0;
    for (size_t i = 0; i < k; i++)
        s += (p[i] = exp(z[i] / temp - mx));
    for (size_t i = 0; i < k; i++)
        p[i] /= s;
    return mx + log(s);
}

#define NN_MAX_CLASSES 1024

double nn_softmax_ce(float *dlogits, const float *logits, const uint8_t *labels, size_t n,
                     size_t k)
{
    return nn_kd_loss(dlogits, logits, NULL, labels, n, k, 1.0, 0.0);
}

/* d/dz of T^2 * KL(pt || ps) with ps = softmax(z/T) is T * (ps - pt). */
double nn_kd_loss(float *dlogits, const float *logits, const float *teacher, const uint8_t *labels,
                  size_t n, size_t k, double temp, double alpha)
{
    double ps[NN_MAX_CLASSES], pt[NN_MAX_CLASSES], p1[NN_MAX_CLASSES];
    if (k > NN_MAX_CLASSES || n == 0)
        return NAN;
    if (!teacher)
        alpha = 0;
    double total = 0, inv = 1.0 / (double)n;
    for (size_t b = 0; b < n; b++) {
        const float *z = logits + b * k;
        float *d = dlogits + b * k;
        double lse = softmax(p1, z, k, 1.0);
        double loss = (1 - alpha) * (lse - z[labels[b]]);
        for (size_t i = 0; i < k; i++)
            d[i] = (float)((1 - alpha) * (p1[i] - (i == labels[b])) * inv);
        if (alpha > 0) {
            double lse_s = softmax(ps, z, k, temp);
            softmax(pt, teacher + b * k, k, temp);
            double kl = 0;
            for (size_t i = 0; i < k; i++) {
                if (pt[i] > 0)
                    kl += pt[i] * (log(pt[i]) - (z[i] / temp - lse_s));
                d[i] += (float)(alpha * temp * (ps[i] - pt[i]) * inv);
            }
            loss += alpha * temp * temp * kl;
        }
        total += loss;
    }
    return total * inv;
}
