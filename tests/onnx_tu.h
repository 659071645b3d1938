/* Test helpers for imported models: reading test-case tensors, running a model through the
 * plaintext engine and through the encrypted engine on a small insecure ring, relative
 * errors. Header-only (static inline), like ckks_tu.h. */
#ifndef PPNN_ONNX_TU_H
#define PPNN_ONNX_TU_H

#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_tu.h"
#include "ppnn/hnn.h"
#include "ppnn/onnx.h"
#include "testutil.h"

/* max |got - want| / max(max |want|, 1e-6). */
static inline double otu_rel_err(const double *got, const float *want, size_t n)
{
    double e = 0, mag = 1e-6;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs(got[i] - (double)want[i]));
        mag = fmax(mag, fabs((double)want[i]));
    }
    return e / mag;
}

typedef struct {
    const float *x;
    size_t numel;
} otu_source;

static inline ppnn_status otu_fill(void *ctx, float *x, size_t first, size_t n)
{
    const otu_source *s = ctx;
    memcpy(x, s->x + first * s->numel, n * s->numel * sizeof *x);
    return PPNN_OK;
}

/* Plaintext logits of n inputs (n * numel(m->input) floats, model inputs) into out (doubles). */
static inline ppnn_status otu_plain(const nn_model *m, double *out, const float *x, size_t n)
{
    float *lf = malloc(n * m->nclasses * sizeof *lf);
    ppnn_status st = lf ? nn_predict(m, lf, x, n) : PPNN_ERR_NOMEM;
    for (size_t i = 0; !st && i < n * m->nclasses; i++)
        out[i] = lf[i];
    free(lf);
    return st;
}

/* Encrypted logits of n <= 512 inputs: ranges calibrated on the inputs themselves, an
 * insecure N = 2^10 ring with depth + 3 primes (q_0 45 bits, others 30, P 45). Returns
 * non-zero with *why set when the plan does not fit (the caller skips). */
static inline int otu_encrypted(nn_model *m, double *out, const float *x, size_t n,
                                char *why, size_t whylen)
{
    const size_t nin = nn_numel(m->input);
    otu_source src = {x, nin};
    if (nn_record_ranges_from(m, otu_fill, &src, n)) {
        snprintf(why, whylen, "calibration: %s", ppnn_last_error());
        return 1;
    }
    size_t weights = 0;
    for (size_t i = 0; i < m->nlayers; i++)
        weights += m->layers[i].type == NN_LAYER_DENSE ? m->layers[i].nweight : 0;
    if (weights > ((size_t)1 << 19)) { /* keeps the suite's encrypted part to seconds */
        snprintf(why, whylen, "%zu dense weights: too slow for the test's time budget", weights);
        return 1;
    }
    size_t depth = nn_model_depth(m);
    if (depth == SIZE_MAX || depth + 2 > 14) {
        snprintf(why, whylen, "depth %zu does not fit a test ring", depth);
        return 1;
    }
    /* A poly after a poly adds a scale step: one spare level. */
    ckks_params *prm = ctu_params(10, depth + 3, 45, 30, 45);
    hnn_budget bud;
    hnn_budget_from_params(&bud, prm, "test");
    hnn_plan *p = NULL;
    if (hnn_plan_new(&p, m, &bud, NULL, 0)) {
        snprintf(why, whylen, "plan: %s", ppnn_last_error());
        ckks_params_free(prm);
        return 1;
    }
    ckks_secret_key sk = {0};
    ckks_relin_key rk = {0};
    CHECK_OK(ckks_keygen_secret(&sk, prm));
    CHECK_OK(ckks_keygen_relin(&rk, &sk));
    const size_t nout = p->n_outputs;
    ckks_ciphertext *in = calloc(nin, sizeof *in), *res = calloc(nout, sizeof *res);
    double *v = malloc(n * sizeof *v);
    for (size_t k = 0; k < nin; k++) {
        /* The plan takes p/255 = x·std + mean (the model's normalisation is folded in). */
        for (size_t b = 0; b < n; b++)
            v[b] = m->norm_std > 0 ? (double)x[b * nin + k] * m->norm_std + m->norm_mean
                                   : x[b * nin + k];
        ctu_encrypt(&in[k], &sk, v, n, prm->nq - 1, prm->scale);
    }
    hnn_exec_opts o = {.threads = 2, .kernel = HNN_KERNEL_AUTO};
    CHECK_OK(hnn_infer(res, p, in, &rk, &o));
    for (size_t c = 0; c < nout; c++) {
        ctu_decrypt(v, n, &sk, &res[c]);
        for (size_t b = 0; b < n; b++)
            out[b * nout + c] = v[b];
    }
    for (size_t k = 0; k < nin; k++)
        ckks_ct_free(&in[k]);
    for (size_t c = 0; c < nout; c++)
        ckks_ct_free(&res[c]);
    free(in), free(res), free(v);
    ckks_relin_key_free(&rk);
    ckks_secret_key_free(&sk);
    hnn_plan_free(p);
    ckks_params_free(prm);
    return 0;
}

#endif
