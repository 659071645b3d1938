/* Channel-wise packing of the CryptoNets-size net (conv 5x5/2 -> act -> dense 100 -> act ->
 * dense 10, channel-granularity activations) at the real n13 preset: encrypted logits of MNIST
 * test images agree with nn_predict (argmax equal, max |logit error| bounded). The model is
 * briefly trained so that its logits are those of a working classifier. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "ppnn/ckks.h"
#include "ppnn/hnn.h"
#include "ppnn/nn.h"
#include "testutil.h"

/* Logit error floor: scale 2^28 and ~2^-14 absolute error observed on the 10 logits (sum over
 * 845 + 100 weighted terms of ~2^-25 encoding/rescale errors each); 2^-8 leaves a wide margin
 * yet catches any layout or folding bug (those give errors of order 1). */
#define MAX_LOGIT_ERR 0x1p-8

int main(void)
{
    data_set train = {0}, test = {0};
    CHECK_OK(data_load(&train, "mnist", DATA_SPLIT_TRAIN, 0, 1024));
    CHECK_OK(data_load(&test, "mnist", DATA_SPLIT_TEST, 0, 4));
    nn_model m;
    CHECK_OK(nn_arch_build(&m, "cryptonets", NN_ACT_CHANNEL, (nn_shape){1, 28, 28}, 10));
    CHECK_OK(nn_model_init_params(&m, &train, 1));
    nn_train_config tc;
    nn_train_config_default(&tc);
    tc.epochs = 1;
    CHECK_OK(nn_train(&m, &train, &tc));
    CHECK_OK(nn_record_ranges(&m, &train, 256));

    ckks_spec spec;
    ckks_params *params = NULL;
    CHECK_OK(ckks_preset(&spec, "n13"));
    CHECK_OK(ckks_params_new(&params, &spec));
    hnn_channel_plan *plan = NULL;
    double t0 = ppnn_now();
    CHECK_OK(hnn_channel_plan_new(&plan, &m, params));
    double t_plan = ppnn_now() - t0;
    if (!plan)
        return tu_finish("channel_cryptonets");
    hnn_channel_stats hs;
    hnn_channel_plan_stats(&hs, plan);
    CHECK(hs.levels == 5);
    /* conv 5x5 pad 1: 4 column + 4 row offsets; dense 100 (m = 128: n1 = 16, n2 = 8, 5 sums to
     * 4096); dense 10 (m = 16: n1 = n2 = 4, period 128: 3 sums). */
    CHECK(hs.rotations == (4 + 4) + (15 + 7 + 5) + (3 + 3 + 3));
    CHECK(hs.relins == 2);

    ckks_secret_key sk = {0};
    ckks_relin_key rk = {0};
    ckks_galois_keys gk = {0};
    size_t nrot = hnn_channel_rotations(NULL, 0, plan);
    int *steps = malloc(nrot * sizeof *steps);
    hnn_channel_rotations(steps, nrot, plan);
    t0 = ppnn_now();
    CHECK_OK(ckks_keygen_secret(&sk, params));
    CHECK_OK(ckks_keygen_relin(&rk, &sk));
    CHECK_OK(ckks_keygen_galois(&gk, &sk, steps, nrot, 0));
    double t_keys = ppnn_now() - t0;

    size_t nimg = tu_reduced() ? 1 : 2;
    const size_t numel = 28 * 28;
    float *x = malloc(numel * sizeof *x);
    double max_err = 0, t_eval = 0;
    for (size_t i = 0; i < nimg; i++) {
        float want[10];
        double got[10];
        nn_model_normalize(&m, x, test.pixels + i * numel, 1);
        CHECK_OK(nn_predict(&m, want, x, 1));
        ckks_ciphertext in = {0}, out = {0};
        CHECK_OK(hnn_channel_encrypt(&in, plan, &sk, x));
        t0 = ppnn_now();
        CHECK_OK(hnn_channel_eval(&out, plan, &in, &rk, &gk));
        t_eval += ppnn_now() - t0;
        CHECK_OK(hnn_channel_decrypt(got, plan, &sk, &out, 0));
        size_t aw = 0, ag = 0;
        for (size_t c = 0; c < 10; c++) {
            max_err = fmax(max_err, fabs(got[c] - want[c]));
            aw = want[c] > want[aw] ? c : aw;
            ag = got[c] > got[ag] ? c : ag;
        }
        CHECK_MSG(aw == ag, "image %zu: encrypted argmax %zu, plaintext %zu", i, ag, aw);
        ckks_ct_free(&in);
        ckks_ct_free(&out);
    }
    CHECK_MSG(max_err < MAX_LOGIT_ERR, "max logit error %g", max_err);
    printf("cryptonets/channel at n13: %zu rotations/image (%zu keys), %zu mul_plain, plan %.2f s "
           "(%.0f MB of plaintexts), keys %.2f s, %.3f s/image, max |logit error| %.3g "
           "(2^%.1f)\n",
           hs.rotations, hs.distinct_steps, hs.mul_plain, t_plan, hs.plaintext_bytes / 1e6,
           t_keys, t_eval / (double)nimg, max_err, log2(max_err));

    free(x);
    free(steps);
    ckks_galois_keys_free(&gk);
    ckks_relin_key_free(&rk);
    ckks_secret_key_free(&sk);
    hnn_channel_plan_free(plan);
    ckks_params_free(params);
    nn_model_free(&m);
    data_set_free(&train);
    data_set_free(&test);
    return tu_finish("channel_cryptonets");
}
