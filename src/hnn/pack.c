/* Element-wise (BEAA) packing on the client: one ciphertext per input element, one image per
 * slot; and the matching decryption of the logits. */
#include <math.h>
#include <omp.h>
#include <sodium.h>
#include <stdlib.h>

#include "hnn/inner.h"

ppnn_status hnn_encrypt_batch(ckks_ciphertext *out, const ckks_secret_key *sk, const float *x,
                              size_t batch, size_t numel, int threads)
{
    return hnn_encrypt_batch_progress(out, sk, x, batch, numel, threads, NULL, NULL);
}

ppnn_status hnn_encrypt_batch_progress(ckks_ciphertext *out, const ckks_secret_key *sk,
                                       const float *x, size_t batch, size_t numel, int threads,
                                       void (*progress)(void *ctx, size_t done), void *ctx)
{
    const ckks_params *prm = sk->params;
    if (batch == 0 || batch > prm->slots)
        return ppnn_fail(PPNN_ERR_PARAM, "batch of %zu images: must be 1..%zu (N/2 slots)",
                         batch, prm->slots);
    for (size_t i = 0; i < batch * numel; i++)
        if (!isfinite(x[i]))
            return ppnn_fail(PPNN_ERR_NUMERIC, "image %zu, element %zu is not finite",
                             i / numel, i % numel);
    ppnn_first_error err = {0};
    size_t done = 0;
#pragma omp parallel num_threads(threads > 0 ? threads : omp_get_max_threads())
    {
        double *v = malloc(batch * sizeof *v);
        ckks_plaintext pt = {0};
        ppnn_status e = v ? PPNN_OK : ppnn_fail(PPNN_ERR_NOMEM, "out of memory encrypting");
#pragma omp for schedule(dynamic)
        for (size_t k = 0; k < numel; k++) {
            if (e || ppnn_first_error_set(&err))
                continue;
            for (size_t b = 0; b < batch; b++)
                v[b] = x[b * numel + k];
            e = ckks_encode(&pt, prm, v, batch, prm->nq - 1, prm->scale);
            if (!e)
                e = ckks_encrypt_sk(&out[k], sk, &pt);
            if (progress) {
#pragma omp critical(hnn_encrypt_progress)
                progress(ctx, ++done);
            }
        }
        ppnn_first_error_keep(&err, e);
        ckks_pt_free(&pt); /* wipes the encoded image elements */
        if (v)
            sodium_memzero(v, batch * sizeof *v); /* element k of every image */
        free(v);
    }
    return ppnn_first_error_status(&err);
}

void hnn_plan_inputs(float *out, const nn_model *m, const uint8_t *pixels, size_t n)
{
    if (!(m->norm_std > 0)) {
        nn_model_normalize(m, out, pixels, n);
        return;
    }
    data_normalize(out, pixels, n * nn_numel(m->input));
}

ppnn_status hnn_decrypt_batch(double *logits, const ckks_secret_key *sk,
                              const ckks_ciphertext *ct, size_t nclasses, size_t batch,
                              const ckks_flood *flood)
{
    double *v = malloc(batch * sizeof *v);
    ppnn_status st = v ? PPNN_OK : ppnn_fail(PPNN_ERR_NOMEM, "out of memory decrypting");
    for (size_t c = 0; c < nclasses && !st; c++) {
        st = ckks_decrypt_release(v, batch, sk, &ct[c], flood);
        for (size_t b = 0; b < batch && !st; b++)
            logits[b * nclasses + c] = v[b];
    }
    if (v)
        sodium_memzero(v, batch * sizeof *v);
    free(v);
    return st;
}

size_t hnn_seeded_ct_bytes(const ckks_params *params, size_t level)
{
    size_t bits = 0;
    for (size_t i = 0; i <= level; i++) {
        unsigned b = 0;
        while (b < 64 && (params->q[i] - 1) >> b)
            b++;
        bits += b * params->n;
    }
    return (bits + 7) / 8 + CKKS_SEED_BYTES;
}
