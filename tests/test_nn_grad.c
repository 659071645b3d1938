/* Finite-difference gradient checks for every layer type, both losses and the range penalty:
 * each case is a tiny model whose layer under test sits between trainable layers, so both
 * its parameter gradients and its input gradient (through the layers before it) are checked
 * against central differences of the loss. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/inner.h"
#include "testutil.h"

enum { BATCH = 3, CLASSES = 4 };

typedef struct gcase {
    nn_model m;
    nn_work *w;
    float *x, *teacher;
    uint8_t labels[BATCH];
    double temp, alpha, lambda;
    float *bounds;
} gcase;

static double loss_of(gcase *g, float *dlogits)
{
    const float *logits = nn_forward(g->w, g->x, BATCH);
    float tmp[BATCH * CLASSES];
    double l = nn_kd_loss(dlogits ? dlogits : tmp, logits, g->teacher, g->labels, BATCH, CLASSES,
                          g->temp, g->alpha);
    return l + nn_range_penalty(g->w, g->lambda, g->bounds);
}

static void fill(nn_rng *r, float *v, size_t n, float scale, float offset)
{
    for (size_t i = 0; i < n; i++)
        v[i] = offset + scale * nn_rng_sym(r);
}

/* Compares the analytic gradient of every parameter with a central difference. */
static void check_case(const char *name, gcase *g)
{
    nn_model *m = &g->m;
    CHECK_OK(nn_model_finish(m));
    nn_rng r;
    nn_rng_seed(&r, 7, name);
    fill(&r, m->params, m->nparams, 0.5f, 0.0f);
    for (size_t i = 0; i < m->nlayers; i++) {
        nn_layer *l = &m->layers[i];
        if (l->ncoef) { /* a near 0.2, b near 0.5, c near 0.1 */
            fill(&r, l->coef, l->ncoef, 0.1f, 0.2f);
            fill(&r, l->coef + l->ncoef, l->ncoef, 0.2f, 0.5f);
            fill(&r, l->coef + 2 * l->ncoef, l->ncoef, 0.1f, 0.1f);
        }
    }
    size_t in = nn_numel(m->input);
    g->x = malloc(BATCH * in * sizeof *g->x);
    fill(&r, g->x, BATCH * in, 1.0f, 0.0f);
    for (int b = 0; b < BATCH; b++)
        g->labels[b] = (uint8_t)(nn_rng_below(&r, CLASSES));
    if (g->alpha > 0) {
        g->teacher = malloc(BATCH * CLASSES * sizeof *g->teacher);
        fill(&r, g->teacher, BATCH * CLASSES, 2.0f, 0.0f);
    }
    CHECK_OK(nn_work_new(&g->w, m, BATCH));
    if (g->lambda > 0) { /* penalise beyond a small bound so the penalty is active */
        g->bounds = calloc(m->nlayers, sizeof *g->bounds);
        for (size_t i = 0; i < m->nlayers; i++)
            if (m->layers[i].type == NN_LAYER_POLY)
                g->bounds[i] = 0.3f;
    }
    float *grad = malloc(m->nparams * sizeof *grad), dl[BATCH * CLASSES];
    loss_of(g, dl);
    if (g->lambda > 0)
        CHECK(nn_range_penalty(g->w, g->lambda, g->bounds) > 0);
    nn_backward(g->w, grad, dl, g->lambda, g->bounds);
    size_t bad = 0;
    double worst = 0;
    const float eps = 4e-3f;
    for (size_t i = 0; i < m->nparams; i++) {
        float keep = m->params[i];
        m->params[i] = keep + eps;
        double lp = loss_of(g, NULL);
        m->params[i] = keep - eps;
        double lm = loss_of(g, NULL);
        m->params[i] = keep;
        double num = (lp - lm) / (2.0 * eps), ana = grad[i];
        /* float32 forward: central differences carry ~1e-4 absolute noise at this eps. */
        double err = fabs(num - ana) / (fabs(num) + fabs(ana) + 1e-3);
        worst = err > worst ? err : worst;
        if (err > 2e-2)
            bad++;
    }
    CHECK_MSG(bad == 0, "%s: %zu of %zu gradients off (worst relative error %.3g)", name, bad,
              m->nparams, worst);
    free(grad);
    free(g->x);
    free(g->teacher);
    free(g->bounds);
    nn_work_free(g->w);
    nn_model_free(m);
}

static void start(gcase *g, uint32_t c, uint32_t h, uint32_t w)
{
    memset(g, 0, sizeof *g);
    g->temp = 1;
    nn_model_init(&g->m, "gradcheck", (nn_shape){c, h, w});
}

static void test_layers(void)
{
    gcase g;
    /* conv2d with stride and padding feeding another conv2d (checks conv dx). */
    start(&g, 2, 7, 7);
    CHECK_OK(nn_model_add_conv2d(&g.m, 3, 3, 2, 1));
    CHECK_OK(nn_model_add_conv2d(&g.m, 2, 2, 1, 0));
    CHECK_OK(nn_model_add_flatten(&g.m));
    CHECK_OK(nn_model_add_dense(&g.m, CLASSES));
    check_case("conv2d", &g);
    /* dense after dense (checks dense dx), flatten of a CHW input. */
    start(&g, 2, 3, 3);
    CHECK_OK(nn_model_add_flatten(&g.m));
    CHECK_OK(nn_model_add_dense(&g.m, 6));
    CHECK_OK(nn_model_add_dense(&g.m, CLASSES));
    check_case("dense", &g);
    /* average pooling with stride < kernel (overlapping windows). */
    start(&g, 1, 6, 6);
    CHECK_OK(nn_model_add_conv2d(&g.m, 2, 3, 1, 1));
    CHECK_OK(nn_model_add_avgpool(&g.m, 3, 2));
    CHECK_OK(nn_model_add_flatten(&g.m));
    CHECK_OK(nn_model_add_dense(&g.m, CLASSES));
    check_case("avgpool", &g);
    /* ReLU (inputs are continuous random values, away from the kink almost surely). */
    start(&g, 1, 5, 5);
    CHECK_OK(nn_model_add_conv2d(&g.m, 2, 3, 1, 0));
    CHECK_OK(nn_model_add_relu(&g.m));
    CHECK_OK(nn_model_add_flatten(&g.m));
    CHECK_OK(nn_model_add_dense(&g.m, CLASSES));
    check_case("relu", &g);
    static const char *names[] = {"poly element", "poly channel", "poly layer", "poly square"};
    for (int gran = 0; gran < 4; gran++) {
        start(&g, 1, 5, 5);
        CHECK_OK(nn_model_add_conv2d(&g.m, 2, 3, 1, 1));
        CHECK_OK(nn_model_add_poly(&g.m, (nn_poly_gran)gran));
        CHECK_OK(nn_model_add_avgpool(&g.m, 2, 2));
        CHECK_OK(nn_model_add_flatten(&g.m));
        CHECK_OK(nn_model_add_dense(&g.m, 5));
        CHECK_OK(nn_model_add_poly(&g.m, (nn_poly_gran)gran));
        CHECK_OK(nn_model_add_dense(&g.m, CLASSES));
        check_case(names[gran], &g);
    }
}

static void test_losses(void)
{
    gcase g;
    start(&g, 1, 4, 4); /* softmax cross-entropy alone */
    CHECK_OK(nn_model_add_flatten(&g.m));
    CHECK_OK(nn_model_add_dense(&g.m, CLASSES));
    check_case("cross-entropy", &g);
    start(&g, 1, 4, 4); /* distillation, T = 3, alpha = 0.6 */
    g.temp = 3, g.alpha = 0.6;
    CHECK_OK(nn_model_add_flatten(&g.m));
    CHECK_OK(nn_model_add_dense(&g.m, CLASSES));
    check_case("distillation", &g);
    start(&g, 1, 4, 4); /* pure distillation, alpha = 1 */
    g.temp = 2, g.alpha = 1;
    CHECK_OK(nn_model_add_flatten(&g.m));
    CHECK_OK(nn_model_add_dense(&g.m, CLASSES));
    check_case("distillation alpha=1", &g);
    start(&g, 1, 4, 4); /* range penalty on poly inputs */
    g.lambda = 0.5;
    CHECK_OK(nn_model_add_flatten(&g.m));
    CHECK_OK(nn_model_add_dense(&g.m, 6));
    CHECK_OK(nn_model_add_poly(&g.m, NN_POLY_ELEMENT));
    CHECK_OK(nn_model_add_dense(&g.m, CLASSES));
    check_case("range penalty", &g);
}

/* Loss values against closed forms: CE of uniform logits is log(k); KD of identical
 * student and teacher reduces to (1 - alpha) * CE. */
static void test_loss_values(void)
{
    float z[2 * CLASSES] = {0}, d[2 * CLASSES];
    uint8_t y[2] = {1, 3};
    CHECK(fabs(nn_softmax_ce(d, z, y, 2, CLASSES) - log(CLASSES)) < 1e-9);
    for (int i = 0; i < 2 * CLASSES; i++)
        z[i] = (float)(i % 3) - 0.7f * (float)(i % 2);
    double ce = nn_softmax_ce(d, z, y, 2, CLASSES);
    double kd = nn_kd_loss(d, z, z, y, 2, CLASSES, 4.0, 0.3);
    CHECK(fabs(kd - 0.7 * ce) < 1e-9);
}

int main(void)
{
    test_layers();
    test_losses();
    test_loss_values();
    return tu_finish("test_nn_grad");
}
