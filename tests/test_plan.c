/* Planner: folded math (plan run in doubles) vs the model's own forward pass on several
 * architectures and activation granularities; refusals (depth, overflow, ReLU). */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/hnn.h"
#include "testutil.h"

static const hnn_budget N13 = {"n13", 5, 28, 40, 13};
static const hnn_budget N14 = {"n14", 10, 34, 46, 14};

static void fill_uniform(float *v, size_t n, double lo, double hi, uint8_t tag)
{
    unsigned char seed[randombytes_SEEDBYTES] = {tag};
    uint32_t *r = malloc(n * sizeof *r);
    randombytes_buf_deterministic(r, n * sizeof *r, seed);
    for (size_t i = 0; i < n; i++)
        v[i] = (float)(lo + (hi - lo) * (r[i] / 4294967296.0));
    free(r);
}

/* Random weights with fan-in scaling; poly coefficients near a ReLU fit. */
static void init_model(nn_model *m, uint8_t tag)
{
    for (size_t k = 0; k < m->nlayers; k++) {
        nn_layer *l = &m->layers[k];
        if (l->nweight) {
            double fan = (double)l->nweight / (l->nbias ? l->nbias : 1);
            fill_uniform(l->weight, l->nweight, -1.5 / sqrt(fan), 1.5 / sqrt(fan), tag++);
        }
        if (l->nbias)
            fill_uniform(l->bias, l->nbias, -0.1, 0.1, tag++);
        if (l->ncoef) {
            size_t n = l->ncoef / 3;
            fill_uniform(l->coef, n, 0.05, 0.2, tag++);         /* a */
            fill_uniform(l->coef + n, n, 0.3, 0.7, tag++);      /* b */
            fill_uniform(l->coef + 2 * n, n, -0.1, 0.1, tag++); /* c */
        }
    }
}

/* Compares the folded plan with nn_predict on nimg inputs x (normalised, numel(input) each). */
static void compare_forward(const nn_model *m, const hnn_plan *p, const float *xf, size_t nimg,
                            const char *what)
{
    size_t nin = nn_numel(m->input);
    float *lf = malloc(nimg * m->nclasses * sizeof *lf);
    double *xd = malloc(nin * sizeof *xd), *ld = malloc(m->nclasses * sizeof *ld);
    CHECK_OK(nn_predict(m, lf, xf, nimg));
    double worst = 0;
    for (size_t b = 0; b < nimg; b++) {
        /* The plan takes raw pixels p/255 when the model normalises its inputs. */
        for (size_t i = 0; i < nin; i++)
            xd[i] = m->norm_std > 0 ? (double)xf[b * nin + i] * m->norm_std + m->norm_mean
                                    : xf[b * nin + i];
        hnn_plan_forward(p, ld, xd);
        for (size_t c = 0; c < m->nclasses; c++) {
            double ref = lf[b * m->nclasses + c];
            worst = fmax(worst, fabs(ld[c] - ref) / fmax(1.0, fabs(ref)));
        }
    }
    /* nn runs in float32: agreement to ~1e-5 relative shows the folding is exact. */
    CHECK_MSG(worst < 1e-4, "%s: folded plan differs from forward pass by %g", what, worst);
    free(lf), free(xd), free(ld);
}

/* A model initialised on real MNIST images, ranges recorded on them. */
static int mnist_model(nn_model *m, data_set *ds, float **x, const char *arch, nn_act act)
{
    if (data_load(ds, "mnist", DATA_SPLIT_TEST, 0, 64) != PPNN_OK)
        return 0;
    CHECK_OK(nn_arch_build(m, arch, act, (nn_shape){1, 28, 28}, 10));
    CHECK_OK(nn_model_init_params(m, ds, 5));
    CHECK_OK(nn_record_ranges(m, ds, ds->count));
    *x = malloc(ds->count * 784 * sizeof **x);
    nn_model_normalize(m, *x, ds->pixels, ds->count);
    return 1;
}

static void test_cryptonets_fold(void)
{
    nn_model m;
    data_set ds;
    float *x = NULL;
    CHECK(mnist_model(&m, &ds, &x, "cryptonets", NN_ACT_ELEMENT));
    hnn_plan *p = NULL;
    CHECK_OK(hnn_plan_new(&p, &m, &N13, NULL, 0));
    if (p) {
        CHECK(p->depth == nn_model_depth(&m));
        CHECK(p->depth == 5);
        /* Peak memory at N = 8192 of the default (fused) schedule: 784 resident inputs
         * (2 x 6 rows) + one tile of HNN_SCHED_TILE conv outputs grown to their squares
         * (3 x 5 rows) + the dense layer's 100 accumulators (3 x 5 rows) + the encoded weights
         * of both layers (6 and 5 primes, weights and biases). Version 1 materialised all 845
         * squares (the n13 benchmark's peak RSS was 1.59 GB). */
        const hnn_step *c = &p->steps[0], *d = &p->steps[2];
        uint64_t row = 8192 * 8;
        uint64_t want = (784ull * 12 + (uint64_t)HNN_SCHED_TILE * 15 + 100ull * 15) * row +
                        8 * (6 * (c->nnz + c->n_out) + 5 * (d->n_out * d->n_in + d->n_out));
        CHECK_MSG(hnn_plan_peak_bytes(p, 8192) == want, "peak %llu, want %llu",
                  (unsigned long long)hnn_plan_peak_bytes(p, 8192), (unsigned long long)want);
        CHECK(p->n_inputs == 784 && p->n_outputs == 10);
        CHECK(p->steps[0].kind == HNN_STEP_LINEAR && p->steps[0].level_in == 5);
        CHECK(p->steps[0].drop == 1 && p->steps[1].drop == 0 && p->steps[2].drop == 2);
        CHECK(p->steps[1].kind == HNN_STEP_ACT && p->steps[1].level_in == 4);
        CHECK(p->steps[p->nsteps - 1].level_in == 2 && p->steps[p->nsteps - 1].drop == 2);
        CHECK_MSG(p->precision_bits > 5, "estimated error %g (%g bits), max logit %g",
                  p->est_error, p->precision_bits, p->max_logit);
        compare_forward(&m, p, x, ds.count, "cryptonets/element");
    }
    hnn_plan_free(p);
    nn_model_free(&m);
    data_set_free(&ds);
    free(x);
}

/* A pruned dense layer (at most half its weights non-zero) is planned in CSR without its zeros,
 * and folds exactly like the dense form; a layer with more non-zeros stays a matrix. */
static void test_pruned_csr(void)
{
    nn_model m;
    data_set ds;
    float *x = NULL;
    CHECK(mnist_model(&m, &ds, &x, "cryptonets", NN_ACT_ELEMENT));
    nn_layer *fc1 = &m.layers[3], *fc2 = &m.layers[5];
    CHECK(fc1->type == NN_LAYER_DENSE && fc2->type == NN_LAYER_DENSE);
    size_t nz = 0;
    for (size_t t = 0; t < fc1->nweight; t++) { /* 90 % zeros */
        fc1->weight[t] = t % 10 == 3 ? fc1->weight[t] : 0.0f;
        nz += fc1->weight[t] != 0;
    }
    for (size_t t = 0; t < fc2->nweight; t += 3) /* a third zero: stays dense */
        fc2->weight[t] = 0;
    CHECK_OK(nn_record_ranges(&m, &ds, ds.count));
    hnn_plan *p = NULL;
    CHECK_OK(hnn_plan_new(&p, &m, &N13, NULL, 0));
    if (p) {
        const hnn_step *s = &p->steps[2], *last = &p->steps[p->nsteps - 1];
        CHECK(s->kind == HNN_STEP_LINEAR && !s->dense && s->nnz == nz && nz == 8450);
        CHECK(s->row_start[0] == 0 && s->row_start[s->n_out] == nz);
        for (size_t r = 0; r < s->n_out; r++)
            CHECK(s->row_out[r] == r && s->row_start[r + 1] - s->row_start[r] == 84 + (r % 2 == 0));
        CHECK(last->kind == HNN_STEP_LINEAR && last->dense);
        compare_forward(&m, p, x, ds.count, "cryptonets/pruned");
    }
    hnn_plan_free(p);
    nn_model_free(&m);
    data_set_free(&ds);
    free(x);
}

/* conv -> poly(channel) -> avgpool -> poly(layer) -> poly(square) -> flatten -> dense ->
 * poly(element, with zero a) : exercises the "scale" steps (two activations in a row, an
 * activation last) and the linear-element path. */
static void test_mixed_fold(void)
{
    nn_model m;
    nn_model_init(&m, "mixed", (nn_shape){2, 9, 9});
    CHECK_OK(nn_model_add_conv2d(&m, 3, 3, 1, 1));
    CHECK_OK(nn_model_add_poly(&m, NN_POLY_CHANNEL));
    CHECK_OK(nn_model_add_avgpool(&m, 2, 2));
    CHECK_OK(nn_model_add_poly(&m, NN_POLY_LAYER));
    CHECK_OK(nn_model_add_poly(&m, NN_POLY_SQUARE));
    CHECK_OK(nn_model_add_flatten(&m));
    CHECK_OK(nn_model_add_dense(&m, 6));
    CHECK_OK(nn_model_add_poly(&m, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_finish(&m));
    m.nclasses = 6;
    init_model(&m, 40);
    nn_layer *last = &m.layers[m.nlayers - 1];
    last->coef[1] = 0; /* element 1: a = 0, purely linear */
    last->coef[3] = 1e-12f; /* element 3: a negligible */
    hnn_plan *p = NULL;
    CHECK_OK(hnn_plan_new(&p, &m, &N14, NULL, 0));
    if (p) {
        /* conv, act, pool, act, scale, act, dense, act, scale */
        CHECK(p->nsteps == 9);
        CHECK(strcmp(p->steps[4].name, "scale") == 0 && strcmp(p->steps[8].name, "scale") == 0);
        CHECK(p->steps[7].square[1] == 0 && p->steps[7].square[3] == 0 &&
              p->steps[7].square[0] == 1);
        float x[4 * 162];
        fill_uniform(x, 4 * 162, -1, 1, 99);
        compare_forward(&m, p, x, 4, "mixed");
    }
    hnn_plan_free(p);
    /* 9 levels do not fit n13 (5): refused before any encryption, naming layer and preset. */
    hnn_budget alts[2] = {N13, N14};
    CHECK_ERR(hnn_plan_new(&p, &m, &N13, alts, 2), PPNN_ERR_DEPTH);
    CHECK(p == NULL);
    CHECK(strstr(ppnn_last_error(), "n14 would fit") != NULL);
    CHECK(strstr(ppnn_last_error(), "layer 6") != NULL);
    CHECK_ERR(hnn_plan_new(&p, &m, &N13, NULL, 0), PPNN_ERR_DEPTH);
    nn_model_free(&m);
}

/* The deeper architecture (two conv + avgpool) with per-channel activations: folds exactly,
 * fits n14, and is refused at n13 with n14 suggested. */
static void test_deep(void)
{
    nn_model m;
    data_set ds;
    float *x = NULL;
    hnn_plan *p = NULL;
    hnn_budget alts[2] = {N13, N14};
    CHECK(mnist_model(&m, &ds, &x, "deep", NN_ACT_CHANNEL));
    CHECK_OK(hnn_plan_new(&p, &m, &N14, alts, 2));
    if (p) {
        CHECK(p->depth == nn_model_depth(&m) && p->depth <= N14.levels);
        compare_forward(&m, p, x, ds.count, "deep/channel");
    }
    hnn_plan_free(p);
    CHECK_ERR(hnn_plan_new(&p, &m, &N13, alts, 2), PPNN_ERR_DEPTH);
    CHECK(strstr(ppnn_last_error(), "n14 would fit") != NULL);
    /* The one planning path: at n14 as few levels as the model needs (its depth, not the
     * preset's 10); at n13 refused naming n14. */
    ckks_spec spec;
    ckks_params *n14 = NULL, *n13 = NULL;
    CHECK_OK(ckks_preset(&spec, "n14"));
    CHECK_OK(ckks_params_new(&n14, &spec));
    CHECK_OK(ckks_preset(&spec, "n13"));
    CHECK_OK(ckks_params_new(&n13, &spec));
    CHECK_OK(hnn_plan_for_params(&p, &m, n14, NULL));
    CHECK(p && p->top_level == p->depth && p->depth < n14->nq - 1);
    hnn_plan_free(p);
    CHECK_ERR(hnn_plan_for_params(&p, &m, n13, NULL), PPNN_ERR_DEPTH);
    CHECK(p == NULL && strstr(ppnn_last_error(), "n14 would fit") != NULL);
    hnn_budget b;
    hnn_budget_for_preset(&b, "n14");
    CHECK(b.levels == n14->nq - 1 && b.logn == 14 && fabs(b.log2_q0 - log2((double)n14->q[0])) < 0.5);
    hnn_budget_for_preset(&b, "n99");
    CHECK(b.levels == 0 && b.name == NULL);
    ckks_params_free(n14);
    ckks_params_free(n13);
    nn_model_free(&m);
    data_set_free(&ds);
    free(x);
}

static void test_refusals(void)
{
    nn_model m;
    hnn_plan *p = NULL;
    CHECK_OK(nn_arch_build(&m, "cryptonets", NN_ACT_RELU, (nn_shape){1, 28, 28}, 10));
    init_model(&m, 7);
    CHECK_ERR(hnn_plan_new(&p, &m, &N13, NULL, 0), PPNN_ERR_UNSUPPORTED);
    nn_model_free(&m);

    /* A dense layer reading more inputs than the kernels' proven bound is refused. */
    nn_model_init(&m, "wide", (nn_shape){1, 130, 130});
    CHECK_OK(nn_model_add_flatten(&m));
    CHECK_OK(nn_model_add_dense(&m, 2));
    CHECK_OK(nn_model_finish(&m));
    m.nclasses = 2;
    init_model(&m, 9); /* non-zero weights: an all-zero layer would be planned as empty CSR */
    CHECK_ERR(hnn_plan_new(&p, &m, &N14, NULL, 0), PPNN_ERR_UNSUPPORTED);
    nn_model_free(&m);

    /* Logits of ~1e4 at scale 2^28 need 42 bits > q0's 40: overflow, n14 (46 bits) fits. */
    data_set ds;
    float *x = NULL;
    CHECK(mnist_model(&m, &ds, &x, "cryptonets", NN_ACT_ELEMENT));
    data_set_free(&ds);
    free(x);
    m.out_range = (nn_range){-1e4f, 1e4f, 1e4f};
    nn_layer *last = &m.layers[m.nlayers - 1];
    for (size_t i = 0; i < last->nweight; i++)
        last->weight[i] *= 1e4f;
    hnn_budget alts[2] = {N13, N14};
    CHECK_ERR(hnn_plan_new(&p, &m, &N13, alts, 2), PPNN_ERR_NUMERIC);
    CHECK(strstr(ppnn_last_error(), "overflow") != NULL);
    CHECK(strstr(ppnn_last_error(), "n14 would fit") != NULL);
    nn_model_free(&m);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    test_cryptonets_fold();
    test_mixed_fold();
    test_pruned_csr();
    test_deep();
    test_refusals();
    return tu_finish("test_plan");
}
