/* Reduced end-to-end at the real n13 preset: a CryptoNets-size model fitted on MNIST
 * (nn_model_init_params: ReLU-fitted quadratics, ranges recorded), 256 test images encrypted
 * element-wise, inferred with the relinearization key only, decrypted: predictions must agree
 * with the plaintext forward pass and the logit error must stay under the plan's estimate.
 * Skipped under PPNN_TEST_REDUCED (sanitizer builds): test_exec covers the same code. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ppnn/ckks_io.h"
#include "ppnn/hnn.h"
#include "testutil.h"

#define B 256

/* The whole-file path (hnn_infer_file) under a tight budget (400 MB, as cli_multibatch: about
 * half the default schedule's peak; the minimum re-reads inputs for every tile and takes
 * minutes), its buffer pool poisoning every buffer given back: the result equals hnn_infer's bit for bit
 * and the pool stayed within the schedule's peak, itself within the budget. */
static void file_budget(const ckks_ciphertext *in, const ckks_ciphertext *ref, const hnn_plan *p,
                        const ckks_secret_key *sk, const ckks_relin_key *rk)
{
    char inp[512], outp[512];
    snprintf(inp, sizeof inp, "%s/pool-in.ct", tu_tmpdir());
    snprintf(outp, sizeof outp, "%s/pool-out.ct", tu_tmpdir());
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    ckks_key_id(info.key_id, sk);
    info.packing = CKKS_PACKING_ELEMENT, info.role = CKKS_BATCH_INPUT, info.images = B;
    info.shape[0] = 1, info.shape[1] = info.shape[2] = 28;
    CHECK_OK(ckks_batch_save(inp, in, p->n_inputs, &info));
    const ckks_params *prm = rk->params;
    const uint64_t fixed = 2ull * prm->nq * (prm->nq + 1) * prm->n * 8 + HNN_MEMORY_OVERHEAD;
    hnn_file_opts fo = {.threads = 2, .pool_flags = CKKS_POOL_POISON,
                        .memory_bytes = 400000000};
    CHECK(fixed + hnn_schedule_min_bytes(p, prm->n, 1, 0) < fo.memory_bytes);
    hnn_file_stats st;
    CHECK_OK(hnn_infer_file(&st, outp, inp, p, info.shape, rk, info.key_id, &fo));
    CHECK_MSG(st.pool_peak_bytes > 0 && st.pool_peak_bytes <= st.schedule_peak_bytes &&
              st.schedule_peak_bytes <= st.budget_bytes,
              "pool %llu, schedule %llu, budget %llu bytes", (unsigned long long)st.pool_peak_bytes,
              (unsigned long long)st.schedule_peak_bytes, (unsigned long long)st.budget_bytes);
    ckks_ciphertext *res = NULL;
    size_t count = 0;
    ckks_params *pp = (ckks_params *)prm;
    CHECK_OK(ckks_batch_load(&res, &count, &info, &pp, outp));
    CHECK(count == p->n_outputs);
    size_t bad = 0;
    for (size_t c = 0; res && c < count && c < p->n_outputs; c++) {
        size_t words = ref[c].size * (ref[c].level + 1) * prm->n;
        bad += res[c].size != ref[c].size || res[c].level != ref[c].level ||
               memcmp(res[c].data, ref[c].data, words * sizeof(uint64_t)) != 0;
    }
    CHECK_MSG(bad == 0, "%zu result ciphertexts of the file path differ from hnn_infer's", bad);
    fprintf(stderr, "test_infer_n13: file path at budget %.0f MB: schedule peak %.0f MB, pool "
            "peak %.0f MB\n", st.budget_bytes / 1e6, st.schedule_peak_bytes / 1e6,
            st.pool_peak_bytes / 1e6);
    for (size_t c = 0; res && c < count; c++)
        ckks_ct_free(&res[c]);
    free(res);
    unlink(inp), unlink(outp);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    if (tu_reduced())
        return tu_finish("test_infer_n13");
    data_set ds;
    nn_model m;
    CHECK_OK(data_load(&ds, "mnist", DATA_SPLIT_TEST, 0, B));
    CHECK_OK(nn_arch_build(&m, "cryptonets", NN_ACT_ELEMENT, (nn_shape){1, 28, 28}, 10));
    CHECK_OK(nn_model_init_params(&m, &ds, 3));
    CHECK_OK(nn_record_ranges(&m, &ds, ds.count));
    ckks_spec spec;
    ckks_params *prm = NULL;
    CHECK_OK(ckks_preset(&spec, "n13"));
    CHECK_OK(ckks_params_new(&prm, &spec));
    hnn_budget bud;
    hnn_plan *p = NULL;
    if (prm) {
        hnn_budget_from_params(&bud, prm, "n13");
        CHECK_OK(hnn_plan_new(&p, &m, &bud, NULL, 0));
    }
    ckks_secret_key sk = {0};
    ckks_relin_key rk = {0};
    if (!p || ckks_keygen_secret(&sk, prm) || ckks_keygen_relin(&rk, &sk))
        return tu_finish("test_infer_n13");

    float *x = malloc(B * 784 * sizeof *x), *ref = malloc(B * 10 * sizeof *ref);
    nn_model_normalize(&m, x, ds.pixels, B);
    CHECK_OK(nn_predict(&m, ref, x, B));
    hnn_plan_inputs(x, &m, ds.pixels, B); /* what the client encrypts */
    ckks_ciphertext *in = calloc(784, sizeof *in), *out = calloc(10, sizeof *out);
    double *dec = malloc(10 * B * sizeof *dec);
    CHECK_OK(hnn_encrypt_batch(in, &sk, x, B, 784, 0));
    CHECK(in[0].has_seed && in[0].level == prm->nq - 1);
    CHECK_ERR(hnn_encrypt_batch(out, &sk, x, prm->slots + 1, 1, 0), PPNN_ERR_PARAM);
    CHECK_ERR(hnn_encrypt_batch(out, &sk, x, 0, 1, 0), PPNN_ERR_PARAM);
    CHECK_OK(hnn_infer(out, p, in, &rk, NULL));
    CHECK_OK(hnn_decrypt_batch(dec, &sk, out, 10, B, 0));
    size_t agree = 0;
    double err = 0;
    for (size_t b = 0; b < B; b++) {
        int pa = 0, pe = 0;
        for (int c = 0; c < 10; c++) {
            pa = ref[b * 10 + c] > ref[b * 10 + pa] ? c : pa;
            pe = dec[b * 10 + c] > dec[b * 10 + pe] ? c : pe;
            err = fmax(err, fabs(dec[b * 10 + c] - ref[b * 10 + c]));
        }
        agree += pa == pe;
    }
    CHECK_MSG(agree == B, "encrypted and plaintext predictions agree on %zu of %d", agree, B);
    CHECK_MSG(err <= p->est_error, "max |logit error| %g above the plan's estimate %g", err,
              p->est_error);
    fprintf(stderr, "test_infer_n13: %zu/%d agree, max |logit error| %.3g (estimate %.3g)\n",
            agree, B, err, p->est_error);
    file_budget(in, out, p, &sk, &rk);

    for (size_t k = 0; k < 784; k++)
        ckks_ct_free(&in[k]);
    for (size_t c = 0; c < 10; c++)
        ckks_ct_free(&out[c]);
    free(in), free(out), free(dec), free(x), free(ref);
    ckks_relin_key_free(&rk);
    ckks_secret_key_free(&sk);
    hnn_plan_free(p);
    ckks_params_free(prm);
    nn_model_free(&m);
    data_set_free(&ds);
    return tu_finish("test_infer_n13");
}
