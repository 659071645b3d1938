/* Release policy (src/hnn/release.c): the flooding is sized by the plan's own estimate, it is
 * refused when it would swamp the logits (unless forced) and for invalid figures; a flooded
 * batch decrypt moves each logit by the promised standard deviation, and the exact decrypt
 * (flood = NULL) is unchanged: bit-identical to decrypt + ckks_decode. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "ckks_tu.h"
#include "ppnn/hnn.h"

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    /* A linear model (no activation: no relinearization key) with recorded ranges. */
    nn_model m;
    nn_model_init(&m, "lin", (nn_shape){1, 4, 4});
    CHECK_OK(nn_model_add_flatten(&m));
    CHECK_OK(nn_model_add_dense(&m, 3));
    CHECK_OK(nn_model_finish(&m));
    m.nclasses = 3;
    for (size_t i = 0; i < m.nparams; i++)
        m.params[i] = (float)((double)(i % 7) / 7.0 - 0.4);
    m.layers[0].in_range = m.layers[1].in_range = (nn_range){0, 1, 1};
    m.out_range = (nn_range){-4, 4, 4};
    ckks_params *prm = ctu_params(13, 3, 50, 30, 50);
    hnn_budget bud;
    hnn_budget_from_params(&bud, prm, "test");
    hnn_plan *p = NULL;
    CHECK_OK(hnn_plan_new(&p, &m, &bud, NULL, 0));
    if (!p)
        return tu_finish("test_release");

    /* s = 30, tau = 3: sigma per logit = sqrt(36 N)·2^15·E, far above max_logit / 100. */
    ckks_flood f;
    double sig = 0;
    CHECK_ERR(hnn_release_flood(&f, &sig, p, prm, 30, 3, 0), PPNN_ERR_PARAM);
    CHECK(strstr(ppnn_last_error(), "useless") != NULL);
    CHECK(fabs(sig / (sqrt(36.0 * (double)prm->n) * 0x1p15 * p->est_error) - 1) < 1e-12);
    CHECK(f.error == p->est_error && f.stat_bits == 30 && f.queries == 3);
    CHECK_OK(hnn_release_flood(&f, &sig, p, prm, 30, 3, 1)); /* forced */
    CHECK_ERR(hnn_release_flood(&f, &sig, p, prm, 0, 3, 1), PPNN_ERR_PARAM);
    CHECK_ERR(hnn_release_flood(&f, &sig, p, prm, 30, 0, 1), PPNN_ERR_PARAM);
    /* A small s that passes the policy: the noise stays below max_logit / 100. */
    unsigned s = 1;
    CHECK_OK(hnn_release_flood(&f, &sig, p, prm, s, 1, 0));
    CHECK(sig <= p->max_logit / HNN_RELEASE_MAX_NOISE);

    ckks_secret_key sk = {0};
    CHECK_OK(ckks_keygen_secret(&sk, prm));
    const size_t B = prm->slots, nin = p->n_inputs, nout = p->n_outputs;
    float *x = malloc(B * nin * sizeof *x);
    for (size_t i = 0; i < B * nin; i++)
        x[i] = (float)((i * 37) % 101) / 101.0f;
    ckks_ciphertext *in = calloc(nin, sizeof *in), *out = calloc(nout, sizeof *out);
    CHECK_OK(hnn_encrypt_batch(in, &sk, x, B, nin, 1));
    CHECK_OK(hnn_infer(out, p, in, NULL, NULL));
    double *exact = malloc(B * nout * sizeof *exact), *fl = malloc(B * nout * sizeof *fl);
    double *v = malloc(B * sizeof *v);
    CHECK_OK(hnn_decrypt_batch(exact, &sk, out, nout, B, NULL));
    ckks_plaintext pt = {0};
    size_t same = 0;
    for (size_t c = 0; c < nout; c++) {
        CHECK_OK(ckks_decrypt(&pt, &sk, &out[c]));
        CHECK_OK(ckks_decode(v, B, &pt));
        for (size_t b = 0; b < B; b++)
            same += memcmp(&v[b], &exact[b * nout + c], sizeof *v) == 0;
    }
    CHECK(same == B * nout);
    CHECK_OK(hnn_decrypt_batch(fl, &sk, out, nout, B, &f));
    double ss = 0;
    for (size_t i = 0; i < B * nout; i++)
        ss += (fl[i] - exact[i]) * (fl[i] - exact[i]);
    double sd = sqrt(ss / (double)(B * nout));
    printf("  flooded logits: sd %.4g (promised %.4g), estimate %.3g, max logit %.3g\n", sd, sig,
           p->est_error, p->max_logit);
    /* 12288 values: the sample std is within 12/sqrt(2·12288) = 7.7 % (12 standard errors). */
    CHECK_MSG(fabs(sd / sig - 1) < 0.077, "flooded sd %g vs %g", sd, sig);

    for (size_t k = 0; k < nin; k++)
        ckks_ct_free(&in[k]);
    for (size_t c = 0; c < nout; c++)
        ckks_ct_free(&out[c]);
    ckks_pt_free(&pt);
    free(in), free(out), free(x), free(exact), free(fl), free(v);
    ckks_secret_key_free(&sk);
    hnn_plan_free(p);
    ckks_params_free(prm);
    nn_model_free(&m);
    return tu_finish("test_release");
}
