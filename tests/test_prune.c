/* Magnitude pruning (src/nn/prune.c): the cubic schedule; the mask grows on the schedule's
 * steps to exactly round(s·n) zeros per hidden dense layer, smallest magnitudes first, and
 * survives optimiser steps; the classifier and the convolution are never pruned; refusals;
 * and a pruned training run keeps its sparsity and still learns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/inner.h"
#include "testutil.h"

static size_t zeros(const float *w, size_t n)
{
    size_t z = 0;
    for (size_t i = 0; i < n; i++)
        z += w[i] == 0;
    return z;
}

static void test_schedule(void)
{
    CHECK(nn_prune_schedule(0.9, 0, 100) == 0);
    CHECK(fabs(nn_prune_schedule(0.9, 50, 100) - 0.9 * (1 - 0.125)) < 1e-12);
    CHECK(nn_prune_schedule(0.9, 100, 100) == 0.9 && nn_prune_schedule(0.9, 500, 100) == 0.9);
    double prev = 0;
    for (size_t t = 0; t <= 100; t++) {
        double s = nn_prune_schedule(0.8, t, 100);
        CHECK(s >= prev && s <= 0.8);
        prev = s;
    }
}

/* The pruner driven by hand on cryptonets: updates every `every` steps during the ramp, the
 * k smallest |w| go first, masked weights come back to 0 after a simulated optimiser step. */
static void test_mask(void)
{
    nn_model m;
    CHECK_OK(nn_arch_build(&m, "cryptonets", NN_ACT_ELEMENT, (nn_shape){1, 28, 28}, 10));
    for (size_t i = 0; i < m.nparams; i++) /* distinct magnitudes, sign alternating */
        m.params[i] = (float)((i % 2 ? -1.0 : 1.0) * (1.0 + (double)((i * 7919) % m.nparams)));
    nn_layer *fc1 = NULL, *fc2 = NULL, *conv = &m.layers[0];
    for (size_t i = 0; i < m.nlayers; i++)
        if (m.layers[i].type == NN_LAYER_DENSE)
            *(fc1 ? &fc2 : &fc1) = &m.layers[i];
    CHECK(fc1 && fc2 && fc1->nweight == 84500);
    float *before = malloc(fc1->nweight * sizeof *before);
    memcpy(before, fc1->weight, fc1->nweight * sizeof *before);
    nn_pruner p;
    const size_t total = 400, batches = 40; /* ramp 200 steps, updates every 10 */
    CHECK_OK(nn_pruner_init(&p, &m, 0.9, total, batches));
    CHECK(p.ramp == 200 && p.every == 10);
    size_t last = 0;
    for (size_t step = 0; step < total; step++) {
        for (size_t t = 0; t < fc1->nweight; t++) /* the optimiser moves every weight */
            fc1->weight[t] = fc1->weight[t] == 0 ? 0.25f
                                                 : fc1->weight[t] + copysignf(0.25f, fc1->weight[t]);
        nn_pruner_apply(&p, &m, step);
        size_t z = zeros(fc1->weight, fc1->nweight);
        if (step <= p.ramp && step % p.every == 0) {
            size_t want = (size_t)llround(nn_prune_schedule(0.9, step, p.ramp) * 84500.0);
            CHECK_MSG(z == (want > last ? want : last), "step %zu: %zu zeros, want %zu", step, z,
                      want);
        } else {
            CHECK_MSG(z == last, "step %zu: %zu zeros between updates, want %zu", step, z, last);
        }
        last = z;
    }
    CHECK(last == (size_t)llround(0.9 * 84500));
    /* The survivors are the largest magnitudes of the start (every magnitude grew alike). */
    float min_kept = INFINITY, max_pruned = 0;
    for (size_t t = 0; t < fc1->nweight; t++) {
        if (fc1->weight[t] == 0)
            max_pruned = fmaxf(max_pruned, fabsf(before[t]));
        else
            min_kept = fminf(min_kept, fabsf(before[t]));
    }
    CHECK_MSG(max_pruned < min_kept, "pruned |w| up to %g, kept from %g", max_pruned, min_kept);
    CHECK(zeros(fc2->weight, fc2->nweight) == 0 && zeros(conv->weight, conv->nweight) == 0);
    nn_pruner_free(&p);
    nn_pruner_free(&p); /* idempotent */
    free(before);

    /* Refusals: fraction outside [0, 1); no dense layer before the classifier. */
    CHECK_ERR(nn_pruner_init(&p, &m, 1.0, total, batches), PPNN_ERR_PARAM);
    CHECK_ERR(nn_pruner_init(&p, &m, -0.1, total, batches), PPNN_ERR_PARAM);
    nn_model_free(&m);
    nn_model_init(&m, "flat", (nn_shape){1, 4, 4});
    CHECK_OK(nn_model_add_flatten(&m));
    CHECK_OK(nn_model_add_dense(&m, 10));
    CHECK_OK(nn_model_finish(&m));
    CHECK_ERR(nn_pruner_init(&p, &m, 0.5, total, batches), PPNN_ERR_PARAM);
    CHECK_OK(nn_pruner_init(&p, &m, 0, total, batches)); /* off: fine for any model */
    nn_pruner_free(&p);
    nn_model_free(&m);
}

/* nn_train with prune = 0.9 on 2000 images: exactly 90 % zeros in the hidden dense layer at
 * the end (fine-tuning did not revive any), the classifier dense, and it still learns (the run
 * reaches ~88 %; chance is 10 %). */
static void test_train(void)
{
    data_set tr, held;
    CHECK_OK(data_load(&tr, "mnist", DATA_SPLIT_TRAIN, 0, 2000));
    CHECK_OK(data_load(&held, "mnist", DATA_SPLIT_TRAIN, 50000, 1000));
    if (tu_failures)
        return;
    nn_train_config c;
    nn_train_config_default(&c);
    c.epochs = 3, c.batch = 32, c.lr = 3e-3, c.seed = 5, c.prune = 0.9;
    nn_model m;
    CHECK_OK(nn_arch_build(&m, "cryptonets", NN_ACT_ELEMENT, (nn_shape){1, 28, 28}, 10));
    CHECK_OK(nn_model_init_params(&m, &tr, c.seed));
    CHECK_OK(nn_train(&m, &tr, &c));
    const nn_layer *fc1 = &m.layers[3], *fc2 = &m.layers[5];
    CHECK(fc1->type == NN_LAYER_DENSE && fc2->type == NN_LAYER_DENSE);
    CHECK(zeros(fc1->weight, fc1->nweight) == (size_t)llround(0.9 * 84500));
    CHECK(zeros(fc2->weight, fc2->nweight) == 0);
    CHECK(fabs(nn_model_pruned_fraction(&m) - (double)llround(0.9 * 84500) / 84500) < 1e-12);
    size_t cc[10], tt[10], sc = 0, st = 0;
    CHECK_OK(nn_evaluate(&m, &held, cc, tt));
    for (int k = 0; k < 10; k++)
        sc += cc[k], st += tt[k];
    double acc = st ? (double)sc / (double)st : 0;
    CHECK_MSG(acc >= 0.85, "pruned run accuracy %.3f below 0.85", acc);
    fprintf(stderr, "test_prune: 90%% pruned tiny run, accuracy %.3f\n", acc);
    nn_model_free(&m);
    data_set_free(&tr);
    data_set_free(&held);
}

int main(void)
{
    nn_set_threads(1);
    test_schedule();
    test_mask();
    test_train();
    return tu_finish("test_prune");
}
