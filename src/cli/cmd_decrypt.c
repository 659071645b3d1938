/* ppnn decrypt: client side. Decrypts the server's encrypted logits (one ciphertext per class,
 * slot b = image b; every batch of a multi-batch result), writes one prediction per image and,
 * given the labels, the accuracy over all of them.
 * Released values are noise-flooded (ckks_decode_release, IND-CPA-D protection). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/data.h"
#include "ppnn/hnn.h"

static const char *usage_text =
    "usage: ppnn decrypt --keys KEYDIR --in result.ct --out pred.csv\n"
    "                    [--data mnist|fashion|DIR --split test --offset K] [--logits]\n"
    "                    [--release-bits B]\n"
    "Writes 'image,prediction' per image (with --logits also logit_0,...). With --data,\n"
    "compares with the labels of the same images (the --split/--offset given to encrypt) and\n"
    "prints the accuracy. Decrypted CKKS values can leak the secret key to whoever chose the\n"
    "computation (Li-Micciancio), so by default only the predicted labels are written, and\n"
    "--logits releases logits with Gaussian noise of sigma 2^-B (default B = 8);\n"
    "--release-bits 0 writes exact logits: only for files that never leave the key owner.\n";

int cmd_decrypt(int argc, char **argv)
{
    const char *keys = NULL, *in = NULL, *out = NULL, *data = NULL, *split_s = "test";
    size_t offset = 0, release_bits = CKKS_DEFAULT_RELEASE_BITS;
    int with_logits = 0;
    static const struct option opts[] = {{"keys", 1, 0, 'k'},  {"in", 1, 0, 'i'},
                                         {"release-bits", 1, 0, 'r'},
                                         {"logits", 0, 0, 'L'},
                                         {"out", 1, 0, 'O'},   {"data", 1, 0, 'd'},
                                         {"split", 1, 0, 's'}, {"offset", 1, 0, 'o'},
                                         {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': keys = optarg; break;
        case 'i': in = optarg; break;
        case 'O': out = optarg; break;
        case 'd': data = optarg; break;
        case 's': split_s = optarg; break;
        case 'o':
            if (cli_parse_size("decrypt", "--offset", optarg, 0, 1u << 30, &offset))
                return 1;
            break;
        case 'L': with_logits = 1; break;
        case 'r':
            if (cli_parse_size("decrypt", "--release-bits", optarg, 0, 40, &release_bits))
                return 1;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc)
        return cli_error("decrypt", "unexpected argument '%s'", argv[optind]);
    if (!keys || !in || !out)
        return cli_error("decrypt", "--keys KEYDIR, --in FILE and --out FILE are required");
    data_split split;
    ppnn_status st = data_split_parse(&split, split_s);
    if (st)
        return cli_fail("decrypt", st);

    char path[1024];
    cli_key_path(path, sizeof path, keys, CLI_SECRET_KEY);
    ckks_params *params = NULL;
    ckks_secret_key sk;
    if ((st = ckks_secret_key_load(&sk, &params, path)))
        return cli_fail("decrypt", st);
    int rc = 1;
    ckks_ciphertext *cts = NULL;
    size_t count = 0;
    double *logits = NULL;
    int *pred = NULL;
    data_set ds;
    memset(&ds, 0, sizeof ds);
    ckks_batch_info info;
    ckks_batch_set *set = NULL;
    ckks_batch_reader *r = NULL;
    if ((st = ckks_batch_set_open(&set, &params, in))) {
        cli_fail("decrypt", st);
        goto done;
    }
    ckks_batch_set_info(&info, set, SIZE_MAX);
    const size_t nb = ckks_batch_set_batches(set);
    uint8_t kid[CKKS_KEY_ID_BYTES];
    ckks_key_id(kid, &sk);
    if (memcmp(kid, info.key_id, CKKS_KEY_ID_BYTES) != 0) {
        cli_error("decrypt", "%s was computed under different keys than %s; use the key "
                  "directory whose public keys made it", in, keys);
        goto done;
    }
    if (info.role != CKKS_BATCH_LOGITS) {
        cli_error("decrypt", "%s holds encrypted inputs, not results; run `ppnn infer` on it first",
                  in);
        goto done;
    }
    /* Channel-wise results: one ciphertext per image, logits in slots 0..shape[0]-1. */
    const int channel = info.packing == CKKS_PACKING_CHANNEL;
    size_t images = (size_t)info.images, classes = info.shape[0];
    if (classes == 0 || classes > params->slots) {
        cli_error("decrypt", "%s: malformed result (%zu classes)", in, classes);
        goto done;
    }
    logits = malloc(images * classes * sizeof *logits);
    pred = malloc(images * sizeof *pred);
    if (!logits || !pred) {
        cli_error("decrypt", "out of memory");
        goto done;
    }
    for (size_t b = 0, done_images = 0; b < nb; b++) {
        ckks_batch_info bi;
        ckks_batch_set_info(&bi, set, b);
        if (nb > 1)
            fprintf(stderr, "decrypt: batch %zu/%zu (%llu images)\n", b + 1, nb,
                    (unsigned long long)bi.images);
        if ((st = ckks_batch_reader_open(&r, set, b))) {
            cli_fail("decrypt", st);
            goto done;
        }
        count = ckks_batch_reader_count(r);
        const size_t n = (size_t)bi.images;
        if ((channel && count != n) || (!channel && count != classes)) {
            cli_error("decrypt", "%s: malformed result (%zu ciphertexts for %zu images, %zu "
                      "classes)", in, count, n, classes);
            goto done;
        }
        if (!(cts = calloc(count, sizeof *cts))) {
            cli_error("decrypt", "out of memory");
            goto done;
        }
        for (size_t k = 0; k < count && !st; k++) {
            size_t level, size;
            double scale;
            ckks_batch_reader_meta(r, k, &level, &size, &scale);
            st = ckks_batch_reader_get(&cts[k], r, k, level);
        }
        if (st) {
            cli_fail("decrypt", st);
            goto done;
        }
        double *lg = logits + done_images * classes;
        if (channel && cli_channel_logits(lg, &sk, cts, n, classes, (unsigned)release_bits))
            goto done;
        if (!channel &&
            (st = hnn_decrypt_batch(lg, &sk, cts, classes, n, (unsigned)release_bits))) {
            cli_fail("decrypt", st);
            goto done;
        }
        for (size_t k = 0; k < count; k++)
            ckks_ct_free(&cts[k]);
        free(cts);
        cts = NULL;
        ckks_batch_reader_close(r);
        r = NULL;
        done_images += n;
    }
    for (size_t b = 0; b < images; b++) {
        int best = 0;
        for (size_t k = 1; k < classes; k++)
            if (logits[b * classes + k] > logits[b * classes + (size_t)best])
                best = (int)k;
        pred[b] = best;
    }
    if (data) {
        if ((st = data_load(&ds, data, split, offset, images))) {
            cli_fail("decrypt", st);
            goto done;
        }
    }
    if ((st = cli_write_predictions(out, logits, images, classes, with_logits))) {
        cli_fail("decrypt", st);
        goto done;
    }
    printf("decrypt: %zu predictions written to %s\n", images, out);
    if (data) {
        size_t correct = 0;
        for (size_t b = 0; b < images; b++)
            correct += pred[b] == ds.labels[b];
        printf("decrypt: accuracy %.2f %% (%zu / %zu) on %s/%s images %zu..%zu\n",
               100.0 * (double)correct / (double)images, correct, images, data, split_s, offset,
               offset + images - 1);
    }
    rc = 0;
done:
    if (cts) {
        for (size_t k = 0; k < count; k++)
            ckks_ct_free(&cts[k]);
        free(cts);
    }
    ckks_batch_reader_close(r);
    ckks_batch_set_close(set);
    free(logits);
    free(pred);
    data_set_free(&ds);
    ckks_secret_key_free(&sk);
    ckks_params_free(params);
    return rc;
}
