/* Client-side packing (hnn pack.c) and the encryption paths it uses:
 * - ckks_encrypt_sk_values (encode + encrypt fused, one NTT of m + e) gives the very ciphertext
 *   ckks_encode + ckks_encrypt_sk give for the same randomness, on both encoder paths
 *   (coefficients below and above 2^62) and below the top level;
 * - hnn_encrypt_batch_write (ciphertexts encrypted and written one by one, never held) writes
 *   the same file, byte for byte, as hnn_encrypt_batch + ckks_batch_set_append for the same
 *   randomness, in a multi-batch set and as a single batch; with 2 threads the file decrypts to
 *   the images at the precision floor;
 * - the streaming writer refuses records of another shape or length, too many or too few
 *   records, append/finish in the middle of a streamed batch, and an abort leaves no file.
 * The same randomness: libsodium's randombytes replaced by a resettable ChaCha20 stream. */
#include <math.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckks_tu.h"
#include "ppnn/hnn.h"
#include "testutil.h"

/* ---- deterministic randombytes (tests only) ---- */
static uint64_t det_block;
static const char *det_name(void) { return "test-deterministic"; }
static void det_buf(void *buf, size_t len)
{
    static const unsigned char key[32] = {7};
    static const unsigned char nonce[8] = {0};
    memset(buf, 0, len);
    crypto_stream_chacha20_xor_ic(buf, buf, len, nonce, det_block, key);
    det_block += (len + 63) / 64;
}
static uint32_t det_random(void)
{
    uint32_t x;
    det_buf(&x, sizeof x);
    return x;
}
static randombytes_implementation det_impl = {det_name, det_random, NULL, NULL, det_buf, NULL};

static int same_ct(const ckks_ciphertext *a, const ckks_ciphertext *b)
{
    return a->level == b->level && a->size == b->size && a->scale == b->scale &&
           a->has_seed == b->has_seed && memcmp(a->seed, b->seed, sizeof a->seed) == 0 &&
           memcmp(a->data, b->data, a->size * (a->level + 1) * a->params->n * 8) == 0;
}

static void test_fused(const ckks_secret_key *sk)
{
    const ckks_params *p = sk->params;
    double v[64];
    ctu_values(v, 64, 3);
    /* magnitude 1: coefficients ~2^24 (int64 path); 2^40: ~2^64 > 2^62 (double_mod path) */
    const double mags[2] = {1.0, 0x1p40};
    for (int m = 0; m < 2; m++)
        for (size_t level = m ? p->nq - 1 : 0; level < p->nq; level++) { /* 2^64 needs Q_2 */
            double w[64];
            for (int i = 0; i < 64; i++)
                w[i] = v[i] * mags[m];
            ckks_plaintext pt = {0};
            ckks_ciphertext a = {0}, b = {0};
            det_block = 1000;
            CHECK_OK(ckks_encode(&pt, p, w, 64, level, p->scale));
            CHECK_OK(ckks_encrypt_sk(&a, sk, &pt));
            det_block = 1000;
            CHECK_OK(ckks_encrypt_sk_values(&b, sk, w, 64, level, p->scale));
            CHECK_MSG(same_ct(&a, &b), "fused encryption differs (magnitude %g, level %zu)",
                      mags[m], level);
            double got[64];
            CHECK_OK(ckks_decrypt(&pt, sk, &b));
            CHECK_OK(ckks_decode(got, 64, &pt));
            CHECK_MSG(ctu_bits(got, w, 64) >= (m ? -8.0 : 12.0), "fused decrypts to %.1f bits",
                      ctu_bits(got, w, 64));
            ckks_pt_free(&pt);
            ckks_ct_free(&a);
            ckks_ct_free(&b);
        }
    /* the encoder's refusals come through, and reuse a ciphertext that held a larger one */
    ckks_ciphertext c = {0};
    double big[1] = {0x1p70};
    CHECK_ERR(ckks_encrypt_sk_values(&c, sk, big, 1, 0, p->scale), PPNN_ERR_NUMERIC);
    CHECK_ERR(ckks_encrypt_sk_values(&c, sk, v, p->slots + 1, 0, p->scale), PPNN_ERR_PARAM);
    CHECK_ERR(ckks_encrypt_sk_values(&c, sk, v, 4, p->nq, p->scale), PPNN_ERR_PARAM);
    CHECK_OK(ckks_encrypt_sk_values(&c, sk, v, 64, p->nq - 1, p->scale));
    uint64_t *buf = c.data;
    CHECK_OK(ckks_encrypt_sk_values(&c, sk, v, 64, 0, p->scale));
    CHECK(c.data == buf && c.level == 0);
    ckks_ct_free(&c);
}

static uint8_t *slurp(size_t *len, const char *path)
{
    uint8_t *buf = NULL;
    CHECK_OK(ppnn_read_file(&buf, len, path, (size_t)1 << 30));
    return buf;
}

static void batch_info(ckks_batch_info *info, const ckks_secret_key *sk, uint64_t images)
{
    memset(info, 0, sizeof *info);
    ckks_key_id(info->key_id, sk);
    info->packing = CKKS_PACKING_ELEMENT;
    info->images = images;
    info->shape[0] = 1, info->shape[1] = 1, info->shape[2] = 5;
    info->role = CKKS_BATCH_INPUT;
}

/* nb batches of `batch` images x numel elements: the reference (held, appended) and the
 * streamed file, each from the same deterministic randomness, must be byte-identical. */
static void test_stream_same_file(const ckks_secret_key *sk, size_t nb)
{
    const ckks_params *p = sk->params;
    enum { NUMEL = 5 };
    const size_t batch = 37;
    float x[2][37 * NUMEL];
    for (size_t b = 0; b < 2; b++)
        for (size_t i = 0; i < batch * NUMEL; i++)
            x[b][i] = (float)(0.01 * (double)((i * 7 + b * 3) % 101) - 0.5);
    uint64_t images[2] = {batch, batch};
    ckks_batch_info info;
    batch_info(&info, sk, batch);
    char ref[512], str[512];
    snprintf(ref, sizeof ref, "%s/ref%zu.ct", tu_tmpdir(), nb);
    snprintf(str, sizeof str, "%s/stream%zu.ct", tu_tmpdir(), nb);
    ckks_batch_set_writer *w = NULL;
    det_block = 5000;
    CHECK_OK(ckks_batch_set_create(&w, ref, p, &info, nb, images));
    for (size_t b = 0; b < nb && w; b++) {
        ckks_ciphertext cts[NUMEL];
        memset(cts, 0, sizeof cts);
        CHECK_OK(hnn_encrypt_batch(cts, sk, x[b], batch, NUMEL, 1));
        CHECK_OK(ckks_batch_set_append(w, cts, NUMEL));
        for (int k = 0; k < NUMEL; k++)
            ckks_ct_free(&cts[k]);
    }
    CHECK_OK(ckks_batch_set_finish(w));
    det_block = 5000;
    CHECK_OK(ckks_batch_set_create(&w, str, p, &info, nb, images));
    for (size_t b = 0; b < nb && w; b++)
        CHECK_OK(hnn_encrypt_batch_write(w, sk, x[b], batch, NUMEL, 1, NULL, NULL));
    CHECK_OK(ckks_batch_set_finish(w));
    size_t la = 0, lb = 0;
    uint8_t *a = slurp(&la, ref), *b = slurp(&lb, str);
    CHECK_MSG(a && b && la == lb && memcmp(a, b, la) == 0,
              "streamed file (%zu bytes) differs from the appended one (%zu bytes)", lb, la);
    free(a), free(b);
}

static void count_done(void *ctx, size_t done)
{
    size_t *c = ctx;
    c[1] &= done == c[0] + 1;
    c[0] = done;
}

/* With 2 threads (randomness drawn in any order) the streamed set decrypts to the images. */
static void test_stream_threads(const ckks_secret_key *sk)
{
    const ckks_params *p = sk->params;
    enum { NUMEL = 9 };
    const size_t batch = p->slots;
    float *x = malloc(batch * NUMEL * sizeof *x);
    for (size_t i = 0; x && i < batch * NUMEL; i++)
        x[i] = (float)sin(0.37 * (double)i);
    uint64_t images[2] = {batch, 3};
    ckks_batch_info info;
    batch_info(&info, sk, batch);
    char path[512];
    snprintf(path, sizeof path, "%s/threads.ct", tu_tmpdir());
    ckks_batch_set_writer *w = NULL;
    CHECK_OK(ckks_batch_set_create(&w, path, p, &info, 2, images));
    size_t done[2] = {0, 1}; /* calls, and 1 while every call said calls + 1 */
    CHECK_OK(hnn_encrypt_batch_write(w, sk, x, batch, NUMEL, 2, count_done, done));
    CHECK(done[0] == NUMEL && done[1] == 1);
    CHECK_OK(hnn_encrypt_batch_write(w, sk, x, 3, NUMEL, 2, NULL, NULL));
    CHECK_OK(ckks_batch_set_finish(w));
    ckks_params *pp = (ckks_params *)p;
    ckks_batch_set *set = NULL;
    CHECK_OK(ckks_batch_set_open(&set, &pp, path));
    for (size_t b = 0; set && b < 2; b++) {
        ckks_batch_reader *r = NULL;
        CHECK_OK(ckks_batch_reader_open(&r, set, b));
        CHECK(r && ckks_batch_reader_count(r) == NUMEL);
        size_t nimg = b ? 3 : batch;
        double *got = malloc(nimg * sizeof *got), *want = malloc(nimg * sizeof *want);
        for (size_t k = 0; r && k < NUMEL; k++) {
            ckks_ciphertext ct = {0};
            ckks_plaintext pt = {0};
            CHECK_OK(ckks_batch_reader_get(&ct, r, k, p->nq - 1));
            CHECK(ct.has_seed);
            CHECK_OK(ckks_decrypt(&pt, sk, &ct));
            CHECK_OK(ckks_decode(got, nimg, &pt));
            for (size_t i = 0; i < nimg; i++)
                want[i] = x[i * NUMEL + k];
            CHECK_MSG(ctu_bits(got, want, nimg) >= 12.0, "batch %zu element %zu: %.1f bits",
                      b, k, ctu_bits(got, want, nimg));
            ckks_pt_free(&pt);
            ckks_ct_free(&ct);
        }
        free(got), free(want);
        ckks_batch_reader_close(r);
    }
    ckks_batch_set_close(set);
    free(x);
}

static void test_writer_misuse(const ckks_secret_key *sk)
{
    const ckks_params *p = sk->params;
    ckks_batch_info info;
    batch_info(&info, sk, 4);
    uint64_t images[1] = {4};
    char path[512];
    snprintf(path, sizeof path, "%s/misuse.ct", tu_tmpdir());
    ckks_batch_set_writer *w = NULL;
    CHECK_OK(ckks_batch_set_create(&w, path, p, &info, 1, images));
    double v[4] = {0.1, 0.2, 0.3, 0.4};
    ckks_ciphertext top = {0}, low = {0};
    CHECK_OK(ckks_encrypt_sk_values(&top, sk, v, 4, p->nq - 1, p->scale));
    CHECK_OK(ckks_encrypt_sk_values(&low, sk, v, 4, 0, p->scale));
    size_t len = ckks_batch_record_bytes(&top);
    uint8_t *rec = malloc(len), *rlow = malloc(ckks_batch_record_bytes(&low));
    CHECK(ckks_batch_record_pack(rec, &top) == len);
    size_t llow = ckks_batch_record_pack(rlow, &low);
    CHECK_ERR(ckks_batch_set_put_record(w, rec, len, NULL), PPNN_ERR_PARAM); /* not begun */
    CHECK_ERR(ckks_batch_set_end(w), PPNN_ERR_PARAM);
    CHECK_ERR(ckks_batch_set_begin(w, &top, 0), PPNN_ERR_PARAM);
    CHECK_OK(ckks_batch_set_begin(w, &top, 2));
    CHECK_ERR(ckks_batch_set_begin(w, &top, 2), PPNN_ERR_PARAM);     /* already begun */
    CHECK_ERR(ckks_batch_set_append(w, &top, 1), PPNN_ERR_PARAM);    /* in a streamed batch */
    CHECK_ERR(ckks_batch_set_put_record(w, rlow, llow, NULL), PPNN_ERR_PARAM); /* other level */
    CHECK_ERR(ckks_batch_set_put_record(w, rec, len - 1, NULL), PPNN_ERR_PARAM); /* other length */
    CHECK_OK(ckks_batch_set_put_record(w, rec, len, NULL));
    CHECK_ERR(ckks_batch_set_end(w), PPNN_ERR_PARAM); /* 1 of 2 */
    CHECK_OK(ckks_batch_set_put_record(w, rec, len, NULL));
    CHECK_ERR(ckks_batch_set_put_record(w, rec, len, NULL), PPNN_ERR_PARAM); /* 3 of 2 */
    ckks_batch_set_abort(w); /* in the middle of a batch: nothing left at path */
    CHECK(access(path, F_OK) != 0);
    /* finish refuses a batch still being streamed */
    CHECK_OK(ckks_batch_set_create(&w, path, p, &info, 1, images));
    CHECK_OK(ckks_batch_set_begin(w, &top, 1));
    CHECK_OK(ckks_batch_set_put_record(w, rec, len, NULL));
    CHECK_ERR(ckks_batch_set_finish(w), PPNN_ERR_PARAM); /* frees w */
    CHECK(access(path, F_OK) != 0);
    /* a bad input fails before anything is begun: the writer is still usable */
    CHECK_OK(ckks_batch_set_create(&w, path, p, &info, 1, images));
    float bad[4] = {0.1f, NAN, 0.2f, 0.3f}, good[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    CHECK_ERR(hnn_encrypt_batch_write(w, sk, bad, 4, 1, 2, NULL, NULL), PPNN_ERR_NUMERIC);
    CHECK_OK(hnn_encrypt_batch_write(w, sk, good, 4, 1, 2, NULL, NULL));
    CHECK_OK(ckks_batch_set_finish(w));
    CHECK(access(path, F_OK) == 0);
    free(rec), free(rlow);
    ckks_ct_free(&top), ckks_ct_free(&low);
}

int main(void)
{
    CHECK(randombytes_set_implementation(&det_impl) == 0);
    CHECK(sodium_init() >= 0);
    ckks_params *p = ctu_params(12, 3, 40, 24, 40);
    ckks_secret_key sk;
    CHECK_OK(ckks_keygen_secret(&sk, p));
    test_fused(&sk);
    test_stream_same_file(&sk, 2);
    test_stream_same_file(&sk, 1);
    test_stream_threads(&sk);
    test_writer_misuse(&sk);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
    return tu_finish("test_pack");
}
