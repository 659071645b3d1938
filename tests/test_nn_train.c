/* Training: a seeded tiny run must learn (accuracy floor on held-out images), the same seed
 * must give the same model, divergence must be reported, and the recorded ranges and the ReLU
 * fit must be sane. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/inner.h"
#include "testutil.h"

static double accuracy(const nn_model *m, const data_set *ds)
{
    size_t c[10], t[10], sc = 0, st = 0;
    CHECK_OK(nn_evaluate(m, ds, c, t));
    for (int k = 0; k < 10; k++)
        sc += c[k], st += t[k];
    return st ? (double)sc / (double)st : 0;
}

static void train(nn_model *m, const data_set *ds, nn_act act, const nn_train_config *c)
{
    CHECK_OK(nn_arch_build(m, "cryptonets", act, (nn_shape){1, 28, 28}, 10));
    CHECK_OK(nn_model_init_params(m, ds, c->seed));
    CHECK_OK(nn_train(m, ds, c));
}

/* 2000 MNIST training images, 3 epochs (batch 32) of cryptonets with element-wise
 * activations, scored on 1000 other training images: a broken gradient, optimiser or
 * activation drops far below the floor (the run reaches 89.9 %; chance is 10 %). */
static void test_tiny_run(const data_set *tr, const data_set *held)
{
    nn_train_config c;
    nn_train_config_default(&c);
    c.epochs = 3;
    c.batch = 32;
    c.lr = 3e-3;
    c.seed = 5;
    nn_model m;
    train(&m, tr, NN_ACT_ELEMENT, &c);
    double acc = accuracy(&m, held);
    CHECK_MSG(acc >= 0.85, "tiny run accuracy %.3f below 0.85", acc);
    /* Ranges were recorded for every layer; poly inputs have a sensible percentile. */
    for (size_t i = 0; i < m.nlayers; i++) {
        nn_range r = m.layers[i].in_range;
        CHECK(r.min <= r.max && r.abs_p999 > 0 && r.abs_p999 <= fmaxf(-r.min, r.max) * 1.001f);
    }
    CHECK(m.out_range.max > m.out_range.min);
    /* Same seed -> bit-identical parameters, also with another thread count; another seed ->
     * different ones. */
    nn_model m2;
    nn_set_threads(2);
    train(&m2, tr, NN_ACT_ELEMENT, &c);
    nn_set_threads(1);
    CHECK(!memcmp(m.params, m2.params, m.nparams * sizeof *m.params));
    nn_model_free(&m2);
    c.seed = 6;
    c.epochs = 1;
    train(&m2, tr, NN_ACT_ELEMENT, &c);
    CHECK(memcmp(m.params, m2.params, m.nparams * sizeof *m.params) != 0);
    nn_model_free(&m2);
    nn_model_free(&m);
}

/* A square-activation student distilled from a ReLU teacher learns too (KD path and range
 * penalty end to end; reaches 88.3 %). */
static void test_distillation(const data_set *tr, const data_set *held)
{
    nn_train_config c;
    nn_train_config_default(&c);
    c.epochs = 3;
    c.batch = 32;
    c.lr = 3e-3;
    nn_model teacher, student;
    train(&teacher, tr, NN_ACT_RELU, &c);
    c.teacher = &teacher;
    c.kd_alpha = 0.7;
    c.range_penalty = 0.01;
    train(&student, tr, NN_ACT_SQUARE, &c);
    double acc = accuracy(&student, held);
    CHECK_MSG(acc >= 0.80, "distilled student accuracy %.3f below 0.80", acc);
    nn_model_free(&student);
    c.kd_offline = 1; /* teacher logits precomputed once per image (reaches 88.3 %) */
    train(&student, tr, NN_ACT_SQUARE, &c);
    acc = accuracy(&student, held);
    CHECK_MSG(acc >= 0.80, "offline-distilled student accuracy %.3f below 0.80", acc);
    nn_model_free(&student);
    nn_model_free(&teacher);
}

/* An absurd learning rate without clipping blows x^2 up: PPNN_ERR_NUMERIC naming the epoch. */
static void test_divergence(const data_set *tr)
{
    nn_train_config c;
    nn_train_config_default(&c);
    c.epochs = 3;
    c.lr = 10;
    c.clip_norm = 0;
    c.optimizer = NN_OPT_SGD;
    nn_model m;
    CHECK_OK(nn_arch_build(&m, "cryptonets", NN_ACT_SQUARE, (nn_shape){1, 28, 28}, 10));
    CHECK_OK(nn_model_init_params(&m, tr, 1));
    CHECK_ERR(nn_train(&m, tr, &c), PPNN_ERR_NUMERIC);
    CHECK(strstr(ppnn_last_error(), "epoch") != NULL);
    nn_model_free(&m);
}

/* The least-squares ReLU fit on [-r, r] is the closed form x/2 + 15 x^2 / (32 r) + 3 r / 32
 * (Legendre expansion of |x|), up to the grid discretisation. */
static void test_relu_fit(void)
{
    float a, b, c;
    double r = 3.0;
    nn_fit_relu(&a, &b, &c, -r, r);
    CHECK(fabs(a - 15 / (32 * r)) < 2e-3 && fabs(b - 0.5) < 1e-4 && fabs(c - 3 * r / 32) < 2e-3);
    nn_fit_relu(&a, &b, &c, 1.0, 4.0); /* all positive: ReLU is the identity there */
    CHECK(fabs(a) < 1e-4 && fabs(b - 1) < 1e-3 && fabs(c) < 1e-3);
}

int main(void)
{
    nn_set_threads(1);
    test_relu_fit();
    data_set tr, held;
    CHECK_OK(data_load(&tr, "mnist", DATA_SPLIT_TRAIN, 0, 2000));
    CHECK_OK(data_load(&held, "mnist", DATA_SPLIT_TRAIN, 50000, 1000));
    if (tu_failures == 0) {
        test_tiny_run(&tr, &held);
        test_distillation(&tr, &held);
        test_divergence(&tr);
    }
    data_set_free(&tr);
    data_set_free(&held);
    return tu_finish("test_nn_train");
}
