/* Gradual magnitude pruning of the hidden dense layers (nn_train with prune > 0).
 *
 * Why these layers: with element-wise packing every weight is its own plaintext-ciphertext
 * multiply-add over all N coefficients of every RNS prime, so a zero weight the planner drops
 * (CSR, plan.c) is work saved one for one. The hidden dense layers hold almost all weights
 * (CryptoNets: 84,500 of 85,625); the classifier (last dense layer, 1,000 weights) and the
 * convolutions (125) are left dense: pruning them saves little and costs accuracy first.
 *
 * Schedule (Zhu & Gupta 2017, "To prune, or not to prune"): over the first half of the
 * training steps the target sparsity rises as s(t) = F·(1 - (1 - t/R)^3), R = ramp steps,
 * recomputed every quarter epoch; each update zeroes, per layer, the round(s·n) weights of
 * smallest magnitude (already-pruned weights are 0, so masks only grow). After every
 * optimiser step the pruned weights are set back to 0. The second half fine-tunes the
 * surviving weights at the final mask, under the same cosine learning-rate decay. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/inner.h"

double nn_prune_schedule(double target, size_t step, size_t ramp)
{
    if (step >= ramp)
        return target;
    double r = 1.0 - (double)step / (double)ramp;
    return target * (1.0 - r * r * r);
}

/* Index of the last dense layer (the classifier), or m->nlayers when there is none. */
static size_t classifier(const nn_model *m)
{
    size_t last = m->nlayers;
    for (size_t i = 0; i < m->nlayers; i++)
        if (m->layers[i].type == NN_LAYER_DENSE)
            last = i;
    return last;
}

static int prunable(const nn_model *m, size_t i)
{
    return m->layers[i].type == NN_LAYER_DENSE && i != classifier(m);
}

double nn_model_pruned_fraction(const nn_model *m)
{
    size_t n = 0, z = 0;
    for (size_t i = 0; i < m->nlayers; i++)
        for (size_t t = 0; prunable(m, i) && t < m->layers[i].nweight; t++, n++)
            z += m->layers[i].weight[t] == 0;
    return n ? (double)z / (double)n : 0;
}

ppnn_status nn_pruner_init(nn_pruner *p, const nn_model *m, double target, size_t total_steps,
                           size_t batches)
{
    memset(p, 0, sizeof *p);
    if (!(target >= 0 && target < 1))
        return ppnn_fail(PPNN_ERR_PARAM, "prune fraction %g is not in [0, 1)", target);
    p->target = target;
    if (target == 0)
        return PPNN_OK;
    size_t n = 0;
    for (size_t i = 0; i < m->nlayers; i++)
        n += prunable(m, i) ? m->layers[i].nweight : 0;
    if (!n)
        return ppnn_fail(PPNN_ERR_PARAM,
                         "nothing to prune: the model has no dense layer before its classifier");
    p->ramp = total_steps / 2;
    p->every = batches / 4 ? batches / 4 : 1;
    p->mag = malloc(n * sizeof *p->mag);
    p->mask = calloc(m->nparams, 1);
    if (!p->mag || !p->mask)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for pruning");
    return PPNN_OK;
}

void nn_pruner_free(nn_pruner *p)
{
    free(p->mag), free(p->mask);
    p->mag = NULL, p->mask = NULL;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Zeroes the k weights of smallest magnitude of w[0, n) (ties: lowest index first). */
static void prune_smallest(float *w, size_t n, size_t k, float *mag)
{
    if (!k)
        return;
    for (size_t i = 0; i < n; i++)
        mag[i] = fabsf(w[i]);
    qsort(mag, n, sizeof *mag, cmp_float);
    const float thr = mag[k - 1];
    size_t below = 0;
    for (size_t i = 0; i < n; i++)
        below += fabsf(w[i]) < thr;
    size_t ties = k - below; /* weights equal to thr still to prune */
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(w[i]);
        if (a < thr)
            w[i] = 0;
        else if (a == thr && ties) {
            w[i] = 0;
            ties--;
        }
    }
}

void nn_pruner_apply(nn_pruner *p, nn_model *m, size_t step)
{
    if (p->target == 0)
        return;
    const int update = step <= p->ramp && (step % p->every == 0 || step == p->ramp);
    const double s = nn_prune_schedule(p->target, step, p->ramp);
    for (size_t i = 0; i < m->nlayers; i++) {
        if (!prunable(m, i))
            continue;
        nn_layer *l = &m->layers[i];
        uint8_t *mask = p->mask + (l->weight - m->params);
        size_t pruned = 0;
        for (size_t t = 0; t < l->nweight; t++) { /* the optimiser moved them: back to 0 */
            l->weight[t] = mask[t] ? 0.0f : l->weight[t];
            pruned += mask[t];
        }
        size_t k = (size_t)llround(s * (double)l->nweight);
        if (!update || k <= pruned)
            continue;
        prune_smallest(l->weight, l->nweight, k, p->mag); /* the masked zeros go first */
        for (size_t t = 0; t < l->nweight; t++)
            mask[t] = l->weight[t] == 0;
    }
}
