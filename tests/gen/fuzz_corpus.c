/* Writes the seed inputs of the ckks fuzz harnesses (fuzz/corpus/<harness>/) twice: under the
 * parameter set fuzz/fuzz_common.h builds (N = 16, q 28 + 24 bits, P 30 bits, scale 2^24: the
 * insecure small ring only fuzz builds load, src/ckks/serialize.c FILE_MIN_LOGN; file names end
 * in "16"), and the same at N = 4096, the smallest secure ring (the loaders' rebuild path).
 * Build (from the repository root, after `make build`):
 *   gcc -std=c17 -D_DEFAULT_SOURCE -Iinclude tests/gen/fuzz_corpus.c build/libppnn.a \
 *       -lsodium -lxxhash -lz -lm -lopenblas -lcjson -fopenmp -o /tmp/fuzz_corpus && /tmp/fuzz_corpus */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/ckks_io.h"

static int encrypt_values(ckks_ciphertext *ct, const ckks_secret_key *sk, size_t level, double x)
{
    const ckks_params *p = sk->params;
    double v[8];
    for (size_t i = 0; i < 8; i++)
        v[i] = x * sin((double)i + 1);
    ckks_plaintext pt = {0};
    int bad = ckks_encode(&pt, p, v, 8, level, p->scale) || ckks_encrypt_sk(ct, sk, &pt);
    ckks_pt_free(&pt);
    return bad;
}

static char path_buf[256];
static const char *path(const char *fmt, const char *tag)
{
    snprintf(path_buf, sizeof path_buf, fmt, tag);
    return path_buf;
}

static int write_set(unsigned logn, const char *tag)
{
    ckks_spec spec;
    memset(&spec, 0, sizeof spec);
    spec.logn = logn, spec.nq = 2, spec.q_bits[0] = 28, spec.q_bits[1] = 24, spec.p_bits = 30;
    spec.scale = 0x1p24;
    spec.insecure_for_testing = logn < CKKS_MIN_LOGN;
    ckks_params *p;
    ckks_secret_key sk;
    ckks_public_key pk;
    ckks_relin_key rk;
    ckks_galois_keys gk;
    int steps[1] = {1};
    if (ckks_params_new(&p, &spec) || ckks_keygen_secret(&sk, p) || ckks_keygen_public(&pk, &sk) ||
        ckks_keygen_relin(&rk, &sk) || ckks_keygen_galois(&gk, &sk, steps, 1, 0))
        return 1;
    uint8_t kid[CKKS_KEY_ID_BYTES];
    ckks_key_id(kid, &sk);
    if (ckks_secret_key_save(path("fuzz/corpus/fuzz_secret_key/secret%s.key", tag), &sk) ||
        ckks_public_key_save(path("fuzz/corpus/fuzz_public_key/public%s.key", tag), &pk, kid) ||
        ckks_relin_key_save(path("fuzz/corpus/fuzz_relin_key/relin%s.key", tag), &rk, kid) ||
        ckks_galois_keys_save(path("fuzz/corpus/fuzz_galois_key/galois%s.key", tag), &gk, kid))
        return 1;

    /* An input batch: two fresh ciphertexts at the top level, one stored unseeded. */
    ckks_ciphertext in[2] = {{0}}, out[2] = {{0}};
    if (encrypt_values(&in[0], &sk, 1, 0.5) || encrypt_values(&in[1], &sk, 1, -0.25))
        return 1;
    in[1].has_seed = 0;
    ckks_batch_info info = {{0}, CKKS_PACKING_ELEMENT, 8, {1, 1, 2}, CKKS_BATCH_INPUT};
    memcpy(info.key_id, kid, sizeof kid);
    if (ckks_batch_save(path("fuzz/corpus/fuzz_ckks_batch/input%s.ct", tag), in, 2, &info))
        return 1;
    /* Results: element-wise logits (size 3, rescaled to level 0) and a channel-wise result. */
    for (int i = 0; i < 2; i++)
        if (ckks_square(&out[i], &in[i]) || ckks_rescale(&out[i]))
            return 1;
    info.role = CKKS_BATCH_LOGITS;
    if (ckks_batch_save(path("fuzz/corpus/fuzz_ckks_result/logits%s.ct", tag), out, 2, &info) ||
        ckks_batch_save(path("fuzz/corpus/fuzz_ckks_batch/logits%s.ct", tag), out, 2, &info))
        return 1;
    ckks_batch_info ch = {{0}, CKKS_PACKING_CHANNEL, 2, {3, 1, 1}, CKKS_BATCH_LOGITS};
    memcpy(ch.key_id, kid, sizeof kid);
    if (ckks_batch_save(path("fuzz/corpus/fuzz_ckks_result/channel%s.ct", tag), out, 2, &ch))
        return 1;
    /* A multi-batch input file (fuzz_batch_set): two batches of two ciphertexts each, a
     * seeded one at the top level and an unseeded one mod-switched to level 0. */
    info.role = CKKS_BATCH_INPUT;
    const uint64_t images[2] = {8, 8};
    ckks_batch_set_writer *w = NULL;
    remove(path("fuzz/corpus/fuzz_batch_set/two%s.ct", tag)); /* an older format's seed is not replaced */
    if (ckks_batch_set_create(&w, path("fuzz/corpus/fuzz_batch_set/two%s.ct", tag), p, &info, 2, images))
        return 1;
    for (int b = 0; b < 2; b++) {
        ckks_ciphertext set[2] = {{0}};
        if (encrypt_values(&set[0], &sk, 1, 0.5 - b) || encrypt_values(&set[1], &sk, 1, 0.25 + b) ||
            ckks_mod_switch(&set[1], 0)) {
            ckks_batch_set_abort(w);
            return 1;
        }
        set[1].has_seed = 0;
        ppnn_status st = ckks_batch_set_append(w, set, 2);
        ckks_ct_free(&set[0]);
        ckks_ct_free(&set[1]);
        if (st) {
            ckks_batch_set_abort(w);
            return 1;
        }
    }
    if (ckks_batch_set_finish(w))
        return 1;
    /* fuzz_http's upload seed: the target byte (2 = upload, bit 7 = reseal) and a one-ciphertext
     * batch at level 0 (small enough for the harness's max_len). */
    ckks_ciphertext one = {0};
    const char *tmp = "fuzz/corpus/fuzz_http/upload.tmp";
    if (encrypt_values(&one, &sk, 0, 0.5) || ckks_batch_save(tmp, &one, 1, &info))
        return 1;
    ckks_ct_free(&one);
    uint8_t *file;
    size_t flen;
    if (ppnn_read_file(&file, &flen, tmp, (size_t)1 << 20))
        return 1;
    remove(tmp);
    FILE *up = fopen(path("fuzz/corpus/fuzz_http/upload%s", tag), "wb");
    const uint8_t target = 0x82;
    if (!up || fwrite(&target, 1, 1, up) != 1 || fwrite(file, 1, flen, up) != flen ||
        fclose(up) != 0)
        return 1;
    free(file);
    for (int i = 0; i < 2; i++) {
        ckks_ct_free(&in[i]);
        ckks_ct_free(&out[i]);
    }
    ckks_galois_keys_free(&gk);
    ckks_relin_key_free(&rk);
    ckks_public_key_free(&pk);
    ckks_secret_key_free(&sk);
    ckks_params_free(p);
    return 0;
}

int main(void)
{
    if (write_set(4, "16") || write_set(12, "")) {
        fprintf(stderr, "fuzz_corpus: %s\n", ppnn_last_error());
        return 1;
    }
    puts("wrote the ckks seeds under fuzz/corpus/");
    return 0;
}
