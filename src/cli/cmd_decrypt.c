/* ppnn decrypt: client side. Decrypts the server's encrypted logits (one ciphertext per class,
 * slot b = image b), writes one prediction per image and, given the labels, the accuracy.
 * Released values are noise-flooded (ckks_decode_release, IND-CPA-D protection). */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/data.h"
#include "ppnn/hnn.h"

static const char *usage_text =
    "usage: ppnn decrypt --keys KEYDIR --in result.ct --out pred.csv\n"
    "                    [--data mnist|fashion|DIR --split test --offset K]\n"
    "                    [--logits --model M.ppnn [--stat-security S] [--queries T]\n"
    "                     [--flood-anyway] | --logits --exact] [--names batch.ct.names.json]\n"
    "Writes 'image,prediction' per image (with --logits also logit_0,...). --names (the\n"
    "manifest `ppnn encrypt --images` kept beside the batch) adds a 'file' column. With --data,\n"
    "compares with the labels of the same images (the --split/--offset given to encrypt) and\n"
    "prints the accuracy. Decrypted CKKS values can leak the secret key to whoever chose the\n"
    "computation (Li-Micciancio), so by default only the predicted labels are written.\n"
    "--logits releases logits flooded for S bits of statistical security (default 30) over T\n"
    "released decryptions under these keys (default: the ciphertexts of this file), sized by\n"
    "the error the client computes from the model (docs/security.md); it refuses when that\n"
    "noise would swamp the logits unless --flood-anyway. --exact writes exact logits: only\n"
    "for files that never leave the key owner (--release-bits 0 is the same).\n"
    "The packing is the one the file records; --packing auto says which, --packing\n"
    "element|channel refuses a file of the other packing.\n";

/* The flooding for releasing the logits of model_path's plan on params (the client's own
 * computation of the error, hnn_release_flood). */
static int release_flood(ckks_flood *f, const char *model_path, const ckks_params *params,
                         size_t stat_bits, double queries, int force)
{
    nn_model m;
    ppnn_status st = nn_model_load(&m, model_path);
    if (st)
        return cli_fail("decrypt", st);
    hnn_plan *plan = NULL;
    int rc = (st = hnn_plan_for_params(&plan, &m, params, NULL)) ? cli_fail("decrypt", st) : 0;
    double sig = 0;
    if (!rc && (st = hnn_release_flood(f, &sig, plan, params, (unsigned)stat_bits, queries,
                                       force)))
        rc = cli_fail("decrypt", st);
    if (!rc)
        printf("decrypt: logits flooded for %zu-bit security over %g decryptions: error "
               "estimate %.2g, added noise sigma %.3g per logit\n", stat_bits, queries,
               f->error, sig);
    hnn_plan_free(plan);
    nn_model_free(&m);
    return rc;
}

int cmd_decrypt(int argc, char **argv)
{
    const char *keys = NULL, *in = NULL, *out = NULL, *data = NULL, *split_s = "test";
    const char *model_path = NULL, *names_path = NULL;
    int packing = -1; /* --packing: CLI_PACK_* (-1: not given, the file decides) */
    size_t offset = 0, release_bits = 1, stat_bits = CKKS_FLOOD_DEFAULT_BITS, queries = 0;
    int with_logits = 0, exact = 0, force = 0;
    static const struct option opts[] = {{"keys", 1, 0, 'k'},  {"in", 1, 0, 'i'},
                                         {"release-bits", 1, 0, 'r'},
                                         {"logits", 0, 0, 'L'}, {"exact", 0, 0, 'x'},
                                         {"model", 1, 0, 'm'}, {"stat-security", 1, 0, 'S'},
                                         {"queries", 1, 0, 'T'}, {"flood-anyway", 0, 0, 'F'},
                                         {"out", 1, 0, 'O'},   {"data", 1, 0, 'd'},
                                         {"split", 1, 0, 's'}, {"offset", 1, 0, 'o'},
                                         {"names", 1, 0, 'N'}, {"packing", 1, 0, 'P'},
                                         {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
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
        case 'N': names_path = optarg; break;
        case 'P':
            if (cli_parse_packing("decrypt", optarg, &packing))
                return 1;
            break;
        case 'x': exact = 1; break;
        case 'F': force = 1; break;
        case 'm': model_path = optarg; break;
        case 'r': /* kept for scripts: 0 = --exact; the fixed-sigma flooding is gone */
            if (cli_parse_size("decrypt", "--release-bits", optarg, 0, 40, &release_bits))
                return 1;
            if (release_bits)
                return cli_error("decrypt", "--release-bits B > 0 is gone: the flooding now "
                                 "follows the plan's error (--logits --model M.ppnn)");
            exact = 1;
            break;
        case 'S':
            if (cli_parse_size("decrypt", "--stat-security", optarg, 1, CKKS_FLOOD_MAX_BITS,
                               &stat_bits))
                return 1;
            break;
        case 'T':
            if (cli_parse_size("decrypt", "--queries", optarg, 1, (size_t)1 << 40, &queries))
                return 1;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error("decrypt", argc, argv);
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
    int recorded; /* the file decides; --packing auto says so, element|channel must agree */
    if (packing >= 0 && cli_follow_packing("decrypt", in, packing, &recorded))
        return 1;

    char path[PATH_MAX];
    ckks_params *params = NULL;
    ckks_secret_key sk;
    if ((st = cli_key_path(path, sizeof path, keys, CLI_SECRET_KEY)) ||
        (st = ckks_secret_key_load(&sk, &params, path)))
        return cli_fail("decrypt", st);
    int rc = 1;
    ckks_ciphertext *cts = NULL;
    size_t count = 0;
    double *logits = NULL;
    size_t *pred = NULL, result_count = 0; /* images * classes decrypted values */
    data_set ds;
    memset(&ds, 0, sizeof ds);
    data_manifest names;
    memset(&names, 0, sizeof names);
    ckks_batch_info info;
    ckks_batch_set *set = NULL;
    ckks_batch_reader *r = NULL;
    if ((st = ckks_batch_set_open(&set, &params, in))) {
        cli_fail("decrypt", st);
        goto done;
    }
    if (cli_check_output("decrypt", out, NULL))
        goto done;
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
    /* Labels only: argmax of the exact logits, which never leave this process. */
    ckks_flood flood, *fl = NULL;
    if (with_logits && !exact) {
        if (channel || !model_path) {
            cli_error("decrypt", "--logits needs --model M.ppnn (the client computes the error "
                      "the flooding must cover from the model%s); or --exact for files that "
                      "never leave the key owner", channel ? ", element-wise results only" : "");
            goto done;
        }
        /* Released decryptions: every logit ciphertext of every batch of this file. */
        if (release_flood(&flood, model_path, params, stat_bits,
                          queries ? (double)queries : (double)(nb * classes), force))
            goto done;
        fl = &flood;
    }
    if (data && (st = data_check_classes(classes))) { /* the rule of eval, before any work */
        ppnn_error_context("%s", in);
        cli_fail("decrypt", st);
        goto done;
    }
    result_count = images * classes;
    logits = malloc(result_count * sizeof *logits);
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
        if (channel && cli_channel_logits(lg, &sk, cts, n, classes, fl))
            goto done;
        if (!channel && (st = hnn_decrypt_batch(lg, &sk, cts, classes, n, fl))) {
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
    for (size_t b = 0; b < images; b++)
        pred[b] = ppnn_argmax(logits + b * classes, classes);
    if (data) {
        if ((st = data_load(&ds, data, split, offset, images))) {
            cli_fail("decrypt", st);
            goto done;
        }
    }
    if (names_path && cli_check_names("decrypt", &names, names_path, info.key_id, images))
        goto done;
    if ((st = cli_write_predictions(out, logits, images, classes, with_logits,
                                    names_path ? (const char *const *)names.names : NULL))) {
        cli_fail("decrypt", st);
        goto done;
    }
    if (packing == CLI_PACK_AUTO)
        cli_announce_packing("decrypt", in, channel ? CLI_PACK_CHANNEL : CLI_PACK_ELEMENT);
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
    if (logits) /* decrypted results: wiped, like every plaintext (ckks_pt_free) */
        sodium_memzero(logits, result_count * sizeof *logits);
    free(logits);
    free(pred);
    data_set_free(&ds);
    data_manifest_free(&names);
    ckks_secret_key_free(&sk);
    ckks_params_free(params);
    return rc;
}
