/* The planner's error figures (noise.c) against measured encrypted errors.
 *
 * The estimate is the level the max |logit error| exceeds with probability at most
 * 2^-HNN_NOISE_FAIL_LOG2 (= 1/1024) per run, so over the ~80 runs here (models x key seeds) an
 * exact model is exceeded about once in 13 test runs: asserting "never exceeded" would be a
 * flaky test of a true statement. What is asserted instead holds except with probability below
 * 2^-30 if the estimate means what it says: at most HNN_TEST_MAX_EXCEED runs above the
 * estimate in the whole test (P(Binomial(80, 2^-10) >= 6) < 2^-31), none above twice it (a
 * 2^-20 event per run even for Laplace tails), and the estimate within HNN_TEST_EST_RATIO of
 * the measured error; the bound must cover the estimate. Models: synthetic extreme shapes (strides, overlapping pools, nearly-linear
 * elements, large ranges, two activations in a row), and the project's architectures
 * (cryptonets, deep) fitted on MNIST as the tests train them, on small insecure rings with the
 * presets' prime sizes (the noise scales with N, which the model takes into account).
 *
 * Measuring a real model file (not a ctest): PPNN_NOISE_MODEL=m.ppnn [PPNN_NOISE_LOGN=13]
 * [PPNN_NOISE_PRESET=n13|n14] [PPNN_NOISE_COUNT=B] [PPNN_NOISE_DATA=mnist] build/test_noise
 * prints estimate, bound and measured error for one batch (the report's table). */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_tu.h"
#include "ppnn/data.h"
#include "ppnn/hnn.h"
#include "testutil.h"

/* The estimate may be at most this many times the measured max error (issue 16). */
#define HNN_TEST_EST_RATIO 10.0
/* Runs whose error may exceed the 2^-10 estimate in the whole test (see above). */
#define HNN_TEST_MAX_EXCEED 5

static int exceeded; /* runs above the estimate so far */

typedef struct {
    double measured, estimate, bound;
} figures;

/* Encrypts B inputs (x: B x n_inputs, image-major), runs the plan, returns the max |logit
 * error| against hnn_plan_forward. Keys are fresh for every call (libsodium randomness). */
static double measure(const hnn_plan *p, const ckks_params *prm, const double *x, size_t B,
                      int threads)
{
    ckks_secret_key sk = {0};
    ckks_relin_key rk = {0};
    CHECK_OK(ckks_keygen_secret(&sk, prm));
    CHECK_OK(ckks_keygen_relin(&rk, &sk));
    const size_t nin = p->n_inputs, nout = p->n_outputs;
    ckks_ciphertext *in = calloc(nin, sizeof *in), *out = calloc(nout, sizeof *out);
    float *xf = malloc(B * nin * sizeof *xf);
    for (size_t i = 0; i < B * nin; i++)
        xf[i] = (float)x[i];
    CHECK_OK(hnn_encrypt_batch(in, &sk, xf, B, nin, threads));
    hnn_exec_opts o = {.threads = threads, .kernel = HNN_KERNEL_AUTO};
    CHECK_OK(hnn_infer(out, p, in, &rk, &o));
    for (size_t k = 0; k < nin; k++)
        ckks_ct_free(&in[k]);
    double *dec = malloc(nout * B * sizeof *dec), *ref = malloc(nout * sizeof *ref);
    double *xd = malloc(nin * sizeof *xd);
    CHECK_OK(hnn_decrypt_batch(dec, &sk, out, nout, B, 0));
    double err = 0, ss = 0;
    for (size_t b = 0; b < B; b++) {
        for (size_t i = 0; i < nin; i++)
            xd[i] = xf[b * nin + i]; /* what was encrypted */
        hnn_plan_forward(p, ref, xd);
        for (size_t c = 0; c < nout; c++) {
            double d = dec[b * nout + c] - ref[c];
            err = fmax(err, fabs(d));
            ss += d * d;
        }
    }
    if (getenv("PPNN_NOISE_STEPS"))
        fprintf(stderr, "    rms error %.3g (max/rms %.1f)\n", sqrt(ss / (double)(B * nout)),
                err / sqrt(ss / (double)(B * nout)));
    for (size_t c = 0; c < nout; c++)
        ckks_ct_free(&out[c]);
    free(in), free(out), free(xf), free(dec), free(ref), free(xd);
    ckks_relin_key_free(&rk);
    ckks_secret_key_free(&sk);
    return err;
}

/* A copy of p truncated after step k (a LINEAR step): its outputs are that step's. */
static hnn_plan truncated(const hnn_plan *p, size_t k)
{
    hnn_plan t = *p;
    t.nsteps = k + 1;
    t.n_outputs = p->steps[k].n_out;
    return t;
}

/* Prints measured vs modelled error after every linear step of p (diagnostics). */
static void per_step(const hnn_plan *p, const hnn_budget *bud, const ckks_params *prm,
                     const double *x, size_t B)
{
    for (size_t k = 0; k < p->nsteps; k++) {
        if (p->steps[k].kind != HNN_STEP_LINEAR)
            continue;
        hnn_plan t = truncated(p, k);
        hnn_noise nz;
        CHECK_OK(hnn_plan_noise(&nz, &t, bud));
        double m = measure(&t, prm, x, B, 0);
        fprintf(stderr, "  after step %zu (%s, layer %zu): measured %.3g, estimate %.3g "
                "(x%.1f), bound %.3g, modelled sigma %.3g (key-product %.3g)\n",
                k, p->steps[k].name, p->steps[k].layer, m, nz.estimate, nz.estimate / m, nz.bound,
                nz.sigma, nz.sigma_keyprod);
    }
}

/* Runs plan p for `seeds` fresh key pairs on the same inputs; checks every seed. */
static figures check_model(const char *what, const nn_model *m, const ckks_params *prm,
                           const double *x, size_t B, int seeds)
{
    hnn_budget bud;
    hnn_budget_from_params(&bud, prm, "test");
    hnn_plan *p = NULL;
    figures f = {0, 0, 0};
    CHECK_OK(hnn_plan_new(&p, m, &bud, NULL, 0));
    if (!p)
        return f;
    f.estimate = p->est_error, f.bound = p->bound_error;
    double lo = INFINITY;
    for (int s = 0; s < seeds; s++) {
        double e = measure(p, prm, x, B, 0);
        f.measured = fmax(f.measured, e);
        lo = fmin(lo, e);
        if (e > p->est_error) {
            exceeded++;
            fprintf(stderr, "test_noise %s seed %d: measured %g above the estimate %g (run %d "
                    "above it; at most %d allowed)\n", what, s, e, p->est_error, exceeded,
                    HNN_TEST_MAX_EXCEED);
        }
        CHECK_MSG(e <= 2 * p->est_error, "%s seed %d: measured %g above twice the estimate %g",
                  what, s, e, p->est_error);
        CHECK_MSG(p->est_error <= HNN_TEST_EST_RATIO * e,
                  "%s seed %d: estimate %g more than %.0fx the measured %g", what, s,
                  p->est_error, HNN_TEST_EST_RATIO, e);
    }
    CHECK(p->bound_error >= p->est_error);
    fprintf(stderr, "test_noise %-22s N=2^%u: measured %.3g..%.3g over %d seeds, estimate %.3g "
            "(x%.1f), bound %.3g\n", what, prm->logn, lo, f.measured, seeds, p->est_error,
            p->est_error / f.measured, p->bound_error);
    if (getenv("PPNN_NOISE_STEPS"))
        per_step(p, &bud, prm, x, B);
    hnn_plan_free(p);
    return f;
}

/* Real model file on real images (see the top of this file). */
static int measure_file(const char *path)
{
    const char *preset = getenv("PPNN_NOISE_PRESET"), *logn_s = getenv("PPNN_NOISE_LOGN");
    const char *data = getenv("PPNN_NOISE_DATA") ? getenv("PPNN_NOISE_DATA") : "mnist";
    size_t count = getenv("PPNN_NOISE_COUNT") ? strtoul(getenv("PPNN_NOISE_COUNT"), 0, 10) : 0;
    nn_model m;
    CHECK_OK(nn_model_load(&m, path));
    ckks_spec spec;
    CHECK_OK(ckks_preset(&spec, preset ? preset : "n13"));
    if (logn_s) { /* the preset's primes on a smaller (insecure) ring */
        spec.logn = (unsigned)strtoul(logn_s, 0, 10);
        spec.insecure_for_testing = 1;
    }
    ckks_params *prm = NULL;
    CHECK_OK(ckks_params_new(&prm, &spec));
    if (!prm)
        return tu_finish("test_noise");
    size_t B = count && count < prm->slots ? count : prm->slots;
    data_set ds;
    CHECK_OK(data_load(&ds, data, DATA_SPLIT_TEST, 0, B));
    B = ds.count < B ? ds.count : B;
    const size_t nin = nn_numel(m.input);
    float *xf = malloc(B * nin * sizeof *xf);
    double *x = malloc(B * nin * sizeof *x);
    hnn_plan_inputs(xf, &m, ds.pixels, B);
    for (size_t i = 0; i < B * nin; i++)
        x[i] = xf[i];
    figures f = check_model(path, &m, prm, x, B, 1);
    printf("%s %s N=2^%u B=%zu: estimate %.3g, bound %.3g, measured %.3g\n", path,
           preset ? preset : "n13", prm->logn, B, f.estimate, f.bound, f.measured);
    free(xf), free(x);
    data_set_free(&ds);
    nn_model_free(&m);
    ckks_params_free(prm);
    return tu_finish("test_noise");
}

/* Every trainable value from a seeded stream: weights ~ U(-1, 1)·gain/sqrt(fan-in) (gain > 1
 * gives large ranges), quadratics a in [0.05, 0.25], b near 0.5, c near 0; every
 * `linear_every`-th element of the first activation gets a = 1e-5 (nearly linear, β ~ 2.5e4),
 * as training produces. */
static void fill_params(nn_model *m, unsigned seed, double gain, size_t linear_every)
{
    unsigned char key[randombytes_SEEDBYTES] = {(unsigned char)seed, 17};
    uint32_t *r = malloc(m->nparams * sizeof *r);
    randombytes_buf_deterministic(r, m->nparams * sizeof *r, key);
    for (size_t i = 0; i < m->nparams; i++)
        m->params[i] = (float)(r[i] / 2147483648.0 - 1.0);
    free(r);
    int first = 1;
    for (size_t k = 0; k < m->nlayers; k++) {
        nn_layer *l = &m->layers[k];
        double fan = l->nbias ? (double)l->nweight / (double)l->nbias : 1;
        for (size_t i = 0; i < l->nweight; i++)
            l->weight[i] *= (float)(gain / sqrt(fan));
        for (size_t i = 0; i < l->nbias; i++)
            l->bias[i] *= 0.1f;
        size_t n = l->ncoef / 3;
        for (size_t i = 0; i < n; i++) {
            l->coef[i] = 0.15f + 0.1f * l->coef[i];
            l->coef[n + i] = 0.5f + 0.1f * l->coef[n + i];
            l->coef[2 * n + i] *= 0.1f;
            if (first && linear_every && i % linear_every == 0)
                l->coef[i] = 1e-5f;
        }
        first = first && n == 0;
    }
}

/* Random images (bytes from a seeded stream) of the model's 1-channel input shape; ranges are
 * recorded on them as training records them; x receives the plan's inputs. */
static void synthetic_data(data_set *ds, double **x, nn_model *m, size_t B, unsigned seed)
{
    memset(ds, 0, sizeof *ds);
    ds->count = B, ds->channels = m->input.c, ds->rows = m->input.h, ds->cols = m->input.w;
    ds->pixels = malloc(B * ds->rows * ds->cols);
    ds->labels = calloc(B, 1);
    unsigned char key[randombytes_SEEDBYTES] = {(unsigned char)seed, 99};
    randombytes_buf_deterministic(ds->pixels, B * ds->rows * ds->cols, key);
    CHECK_OK(nn_record_ranges(m, ds, B));
    const size_t nin = nn_numel(m->input);
    float *xf = malloc(B * nin * sizeof *xf);
    *x = malloc(B * nin * sizeof **x);
    hnn_plan_inputs(xf, m, ds->pixels, B);
    for (size_t i = 0; i < B * nin; i++)
        (*x)[i] = xf[i];
    free(xf);
}

typedef enum { SHAPE_STRIDE, SHAPE_POOL, SHAPE_LINEAR, SHAPE_RANGE, SHAPE_ACTS } shape_kind;

static void build_shape(nn_model *m, shape_kind k)
{
    static const char *names[] = {"stride", "overlap-pool", "nearly-linear", "large-range",
                                  "act-act-last"};
    nn_model_init(m, names[k], (nn_shape){1, 9, 9});
    switch (k) {
    case SHAPE_STRIDE: /* strided, padded conv; channel-wise activation */
        CHECK_OK(nn_model_add_conv2d(m, 3, 3, 2, 1));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
        CHECK_OK(nn_model_add_flatten(m));
        CHECK_OK(nn_model_add_dense(m, 12));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_CHANNEL));
        CHECK_OK(nn_model_add_dense(m, 4));
        break;
    case SHAPE_POOL: /* 3x3 pools with stride 1: every input in up to 9 windows */
        CHECK_OK(nn_model_add_conv2d(m, 2, 3, 1, 0));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
        CHECK_OK(nn_model_add_avgpool(m, 3, 1));
        CHECK_OK(nn_model_add_flatten(m));
        CHECK_OK(nn_model_add_dense(m, 4));
        break;
    case SHAPE_LINEAR:
    case SHAPE_RANGE:
        CHECK_OK(nn_model_add_conv2d(m, 2, 3, 1, 0));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
        CHECK_OK(nn_model_add_flatten(m));
        CHECK_OK(nn_model_add_dense(m, 10));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
        CHECK_OK(nn_model_add_dense(m, 4));
        break;
    case SHAPE_ACTS: /* two activations in a row and one last: diagonal "scale" steps */
        CHECK_OK(nn_model_add_conv2d(m, 2, 3, 2, 0));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_LAYER));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
        CHECK_OK(nn_model_add_flatten(m));
        CHECK_OK(nn_model_add_dense(m, 4));
        CHECK_OK(nn_model_add_poly(m, NN_POLY_ELEMENT));
        break;
    }
    CHECK_OK(nn_model_finish(m));
    m->nclasses = 4;
}

/* A project architecture fitted on MNIST as the tests train it (ReLU-fitted quadratics,
 * ranges recorded), on the preset's primes over a small insecure ring. */
static void check_arch(const char *arch, const char *preset, unsigned logn, int seeds)
{
    ckks_spec spec;
    CHECK_OK(ckks_preset(&spec, preset));
    spec.logn = logn;
    spec.insecure_for_testing = 1;
    ckks_params *prm = NULL;
    CHECK_OK(ckks_params_new(&prm, &spec));
    data_set ds;
    nn_model m;
    size_t B = prm ? prm->slots : 0;
    CHECK_OK(data_load(&ds, "mnist", DATA_SPLIT_TEST, 0, B));
    CHECK_OK(nn_arch_build(&m, arch, NN_ACT_ELEMENT, (nn_shape){1, 28, 28}, 10));
    CHECK_OK(nn_model_init_params(&m, &ds, 3));
    CHECK_OK(nn_record_ranges(&m, &ds, ds.count));
    const size_t nin = nn_numel(m.input);
    float *xf = malloc(B * nin * sizeof *xf);
    double *x = malloc(B * nin * sizeof *x);
    hnn_plan_inputs(xf, &m, ds.pixels, B);
    for (size_t i = 0; i < B * nin; i++)
        x[i] = xf[i];
    char what[64];
    snprintf(what, sizeof what, "%s (%s primes)", arch, preset);
    check_model(what, &m, prm, x, B, seeds);
    free(xf), free(x);
    data_set_free(&ds);
    nn_model_free(&m);
    ckks_params_free(prm);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    if (getenv("PPNN_NOISE_MODEL"))
        return measure_file(getenv("PPNN_NOISE_MODEL"));
    const int reduced = tu_reduced();
    /* n13's prime sizes (q_0 40, 28-bit primes, P 38) on N = 2^10; 8 primes leave room for the
     * deepest shape (conv, act, act, dense, act, scale = 7 levels). */
    ckks_params *prm = ctu_params(10, 9, 40, 28, 40); /* P >= q_0 */
    const size_t B = prm->slots;
    for (shape_kind k = SHAPE_STRIDE; k <= SHAPE_ACTS; k++) {
        for (unsigned ms = 1; ms <= (reduced ? 1u : 3u); ms++) { /* model seeds */
            nn_model m;
            build_shape(&m, k);
            fill_params(&m, ms, k == SHAPE_RANGE ? 6.0 : 1.0, k == SHAPE_LINEAR ? 3 : 0);
            data_set ds;
            double *x = NULL;
            synthetic_data(&ds, &x, &m, B, ms);
            char what[64];
            snprintf(what, sizeof what, "%s/%u", m.arch, ms);
            check_model(what, &m, prm, x, B, reduced ? 2 : 4);
            free(x);
            data_set_free(&ds);
            nn_model_free(&m);
        }
    }
    ckks_params_free(prm);
    if (!reduced) {
        check_arch("cryptonets", "n13", 10, 3);
        check_arch("deep", "n14", 9, 2);
    }
    CHECK_MSG(exceeded <= HNN_TEST_MAX_EXCEED, "%d runs above the 2^-%d estimate (at most %d "
              "expected unless the estimate is too low)", exceeded, HNN_NOISE_FAIL_LOG2,
              HNN_TEST_MAX_EXCEED);
    return tu_finish("test_noise");
}
