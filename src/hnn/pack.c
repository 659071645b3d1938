/* Element-wise (BEAA) packing on the client: one ciphertext per input element, one image per
 * slot; and the matching decryption of the logits. */
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>

#include "hnn/inner.h"

static ppnn_status check_inputs(const ckks_secret_key *sk, const float *x, size_t batch,
                                size_t numel)
{
    const ckks_params *prm = sk->params;
    if (batch == 0 || batch > prm->slots)
        return ppnn_fail(PPNN_ERR_PARAM, "batch of %zu images: must be 1..%zu (N/2 slots)",
                         batch, prm->slots);
    for (size_t i = 0; i < batch * numel; i++)
        if (!isfinite(x[i]))
            return ppnn_fail(PPNN_ERR_NUMERIC, "image %zu, element %zu is not finite",
                             i / numel, i % numel);
    return PPNN_OK;
}

/* Ciphertext of element k of every image (slot b = image b); v: batch doubles of scratch. */
static ppnn_status encrypt_element(ckks_ciphertext *ct, double *v, const ckks_secret_key *sk,
                                   const float *x, size_t batch, size_t numel, size_t k)
{
    const ckks_params *prm = sk->params;
    for (size_t b = 0; b < batch; b++)
        v[b] = x[b * numel + k];
    return ckks_encrypt_sk_values(ct, sk, v, batch, prm->nq - 1, prm->scale);
}

ppnn_status hnn_encrypt_batch(ckks_ciphertext *out, const ckks_secret_key *sk, const float *x,
                              size_t batch, size_t numel, int threads)
{
    return hnn_encrypt_batch_progress(out, sk, x, batch, numel, threads, NULL, NULL);
}

ppnn_status hnn_encrypt_batch_progress(ckks_ciphertext *out, const ckks_secret_key *sk,
                                       const float *x, size_t batch, size_t numel, int threads,
                                       void (*progress)(void *ctx, size_t done), void *ctx)
{
    ppnn_status st = check_inputs(sk, x, batch, numel);
    if (st)
        return st;
    ppnn_first_error err = {0};
    size_t done = 0;
#pragma omp parallel num_threads(threads > 0 ? threads : omp_get_max_threads())
    {
        double *v = malloc(batch * sizeof *v);
        ppnn_status e = v ? PPNN_OK : ppnn_fail(PPNN_ERR_NOMEM, "out of memory encrypting");
#pragma omp for schedule(dynamic)
        for (size_t k = 0; k < numel; k++) {
            if (e || ppnn_first_error_set(&err))
                continue;
            e = encrypt_element(&out[k], v, sk, x, batch, numel, k);
            if (progress) {
#pragma omp critical(hnn_encrypt_progress)
                progress(ctx, ++done);
            }
        }
        ppnn_first_error_keep(&err, e);
        if (v)
            sodium_memzero(v, batch * sizeof *v); /* element k of every image */
        free(v);
    }
    return ppnn_first_error_status(&err);
}

/* The in-order writer of hnn_encrypt_batch_write: records k land in slot k % nslots with the
 * digest their encrypting thread computed (ppnn_chunk_digest, in parallel and cache-hot);
 * whoever publishes a record and finds the next one to write ready becomes the writer (one at
 * a time, the lock released while it writes: it hashes nothing but the small tables), so no thread waits for a turn while it could
 * encrypt: a thread waits (asleep, not spinning) only for its slot to be written. Progress:
 * with next..next+nslots-1 all published, any thread waiting for a slot becomes the writer. */
typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    ckks_batch_set_writer *w;
    uint8_t **slot;
    size_t *len;     /* per slot: record length, 0 when it failed or was skipped */
    uint8_t *digest; /* per slot: the record's digest (PPNN_CHUNK_DIGEST_BYTES) */
    size_t *holds;   /* per slot: the index it holds ready, SIZE_MAX when free */
    size_t nslots, next;
    int writing;
    ppnn_first_error *err;
    void (*progress)(void *ctx, size_t done);
    void *ctx;
} ordered_writer;

/* Writes the ready records from ow->next on, while no other thread does (called and returns
 * with the lock held). */
static void write_ready(ordered_writer *ow)
{
    while (!ow->writing && ow->holds[ow->next % ow->nslots] == ow->next) {
        size_t k = ow->next, s = k % ow->nslots;
        ow->writing = 1;
        pthread_mutex_unlock(&ow->mu);
        /* Records stay in order: after a failure nothing more is written. */
        if (ow->len[s] && !ppnn_first_error_set(ow->err)) {
            ppnn_status e = ckks_batch_set_put_record(ow->w, ow->slot[s], ow->len[s],
                                                      ow->digest + s * PPNN_CHUNK_DIGEST_BYTES);
            ppnn_first_error_keep(ow->err, e);
            if (!e && ow->progress)
                ow->progress(ow->ctx, k + 1);
        }
        pthread_mutex_lock(&ow->mu);
        ow->holds[s] = SIZE_MAX;
        ow->next++;
        ow->writing = 0;
        pthread_cond_broadcast(&ow->cv);
    }
}

ppnn_status hnn_encrypt_batch_write(ckks_batch_set_writer *w, const ckks_secret_key *sk,
                                    const float *x, size_t batch, size_t numel, int threads,
                                    void (*progress)(void *ctx, size_t done), void *ctx)
{
    /* Every record has this shape: a fresh seeded encryption at the top level. */
    const ckks_params *prm = sk->params;
    ckks_ciphertext like = {.params = prm, .level = prm->nq - 1, .size = 2, .scale = prm->scale,
                            .has_seed = 1};
    ppnn_status st = check_inputs(sk, x, batch, numel);
    if (st)
        return st;
    const int nt = threads > 0 ? threads : omp_get_max_threads();
    const size_t rec_len = ckks_batch_record_bytes(&like), nslots = 2 * (size_t)nt;
    ppnn_first_error err = {0};
    ordered_writer ow = {.w = w, .nslots = nslots, .err = &err, .progress = progress,
                         .ctx = ctx};
    ow.slot = calloc(nslots, sizeof *ow.slot);
    ow.len = calloc(nslots, sizeof *ow.len);
    ow.holds = malloc(nslots * sizeof *ow.holds);
    ow.digest = malloc(nslots * PPNN_CHUNK_DIGEST_BYTES);
    int ok = ow.slot && ow.len && ow.holds && ow.digest;
    for (size_t s = 0; ok && s < nslots; s++)
        ok = (ow.slot[s] = malloc(rec_len)) != NULL, ow.holds[s] = SIZE_MAX;
    if (!ok)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory encrypting");
    if (!st && pthread_mutex_init(&ow.mu, NULL) != 0)
        st = ppnn_fail(PPNN_ERR_NOMEM, "cannot create a lock");
    if (!st && pthread_cond_init(&ow.cv, NULL) != 0) {
        pthread_mutex_destroy(&ow.mu);
        st = ppnn_fail(PPNN_ERR_NOMEM, "cannot create a condition variable");
    }
    if (!st && (st = ckks_batch_set_begin(w, &like, numel))) {
        pthread_cond_destroy(&ow.cv);
        pthread_mutex_destroy(&ow.mu);
    }
    if (!st) {
#pragma omp parallel num_threads(nt)
        {
            double *v = malloc(batch * sizeof *v);
            ckks_ciphertext ct = {0};
            ppnn_first_error_keep(&err, v ? PPNN_OK
                                          : ppnn_fail(PPNN_ERR_NOMEM, "out of memory encrypting"));
            /* monotonic: each thread takes increasing k, so the slot it waits for is held
             * by a smaller index, which is always written first. */
#pragma omp for schedule(monotonic : dynamic)
            for (size_t k = 0; k < numel; k++) {
                size_t s = k % nslots;
                pthread_mutex_lock(&ow.mu);
                while (k >= ow.next + nslots) {
                    write_ready(&ow);
                    if (k >= ow.next + nslots)
                        pthread_cond_wait(&ow.cv, &ow.mu);
                }
                pthread_mutex_unlock(&ow.mu);
                size_t len = 0;
                if (v && !ppnn_first_error_set(&err)) {
                    ppnn_status e = encrypt_element(&ct, v, sk, x, batch, numel, k);
                    ppnn_first_error_keep(&err, e);
                    if (!e) {
                        len = ckks_batch_record_pack(ow.slot[s], &ct);
                        ppnn_chunk_digest(ow.digest + s * PPNN_CHUNK_DIGEST_BYTES, k, ow.slot[s],
                                          len);
                    }
                }
                pthread_mutex_lock(&ow.mu);
                ow.len[s] = len;
                ow.holds[s] = k;
                write_ready(&ow);
                pthread_mutex_unlock(&ow.mu);
            }
            ckks_ct_free(&ct);
            if (v)
                sodium_memzero(v, batch * sizeof *v); /* element k of every image */
            free(v);
        }
        /* Every record was published; the last publisher wrote what was left. */
        pthread_cond_destroy(&ow.cv);
        pthread_mutex_destroy(&ow.mu);
        st = ppnn_first_error_status(&err);
        if (!st)
            st = ckks_batch_set_end(w);
    }
    for (size_t s = 0; ow.slot && s < nslots; s++)
        free(ow.slot[s]);
    free(ow.slot), free(ow.len), free(ow.holds), free(ow.digest);
    return st;
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
