/* ppnn encrypt: client side. Element-wise (BEAA) packing: ciphertext k holds pixel k of every
 * image of the batch, image b in slot b. Seeded secret-key encryption: each ciphertext travels
 * as (c0, 32-byte seed), half the size of (c0, c1). */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/data.h"
#include "ppnn/hnn.h"

static const char *usage_text =
    "usage: ppnn encrypt --keys KEYDIR --data mnist|fashion|DIR [--split test] [--offset K]\n"
    "                    [--count B] [--threads T] --out batch.ct\n"
    "       ppnn encrypt --keys KEYDIR --images PATH... [--model M.ppnn | --shape CxHxW]\n"
    "                    [--resize] [--threads T] --out batch.ct\n"
    "Encrypts B images (default: the whole split) with the secret key in KEYDIR, N/2 (the\n"
    "number of slots) per batch: more images make a multi-batch file of consecutive batches\n"
    "(the last one partial) that infer and decrypt process whole. Pixels are sent as values in\n"
    "[0,1] (p/255 for 8-bit images; docs/images.md); the server folds the model's\n"
    "normalisation into its first layer.\n"
    "--images: PNG, NumPy .npy and DICOM files, or directories of them (read in sorted order).\n"
    "Every image must have the model's shape (--model M reads only its input shape, or\n"
    "--shape CxHxW; without either, the shape of the first image); --resize scales H x W to it\n"
    "(area averaging). The file names stay on the client: they are written to OUT.names.json\n"
    "(do not upload it); `ppnn decrypt --names OUT.names.json` prints them beside the\n"
    "predictions.\n"
    "--packing element (the default), channel or auto [--costs FILE]:\n"
    "  channel  channel-wise packing (one ciphertext per image, normalised with M's statistics\n"
    "           and laid out as M's plan needs; default --count 16): needs --model M, and the\n"
    "           server KEYDIR/galois.key (ppnn keygen --packing channel --model M)\n"
    "  auto     chooses from the number of images and the cost model (built-in operation\n"
    "           costs, or --costs FILE from `ppnn bench costs --json` on the server machine;\n"
    "           the server is assumed to run --threads T, default this machine's cores) and\n"
    "           prints the choice and why; needs --model M. The batch file records the\n"
    "           packing: infer and decrypt follow it (docs/channel-wise.md).\n";

_Static_assert(DATA_MANIFEST_KEY_ID_BYTES == CKKS_KEY_ID_BYTES, "the manifest keeps a key id");

static void on_progress(void *ctx, size_t done)
{
    cli_progress_update(ctx, done, "");
}

int cmd_encrypt(int argc, char **argv)
{
    const char *keys = NULL, *data = "mnist", *split_s = "test", *out = NULL;
    const char *images = NULL, *model = NULL, *shape = NULL, *costs = NULL;
    size_t offset = 0, count = 0, threads = 0;
    int resize = 0, idx_opts = 0, packing = CLI_PACK_ELEMENT;
    static const struct option opts[] = {
        {"keys", 1, 0, 'k'},  {"data", 1, 0, 'd'},    {"split", 1, 0, 's'}, {"offset", 1, 0, 'o'},
        {"count", 1, 0, 'n'}, {"threads", 1, 0, 't'}, {"out", 1, 0, 'O'},   {"help", 0, 0, 'h'},
        {"images", 1, 0, 'I'}, {"model", 1, 0, 'm'}, {"shape", 1, 0, 'S'}, {"resize", 0, 0, 'R'},
        {"packing", 1, 0, 'P'}, {"costs", 1, 0, 'C'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': keys = optarg; break;
        case 'd': data = optarg, idx_opts = 1; break;
        case 's': split_s = optarg, idx_opts = 1; break;
        case 'o':
            if (cli_parse_size("encrypt", "--offset", optarg, 0, 1u << 30, &offset))
                return 1;
            idx_opts = 1;
            break;
        case 'n':
            if (cli_parse_size("encrypt", "--count", optarg, 1, 1u << 30, &count))
                return 1;
            idx_opts = 1;
            break;
        case 'I': images = optarg; break;
        case 'm': model = optarg; break;
        case 'S': shape = optarg; break;
        case 'R': resize = 1; break;
        case 't':
            if (cli_parse_size("encrypt", "--threads", optarg, 1, 1024, &threads))
                return 1;
            break;
        case 'O': out = optarg; break;
        case 'P':
            if (cli_parse_packing("encrypt", optarg, &packing))
                return 1;
            break;
        case 'C': costs = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error("encrypt", argc, argv);
        }
    }
    /* Explicit channel-wise: 16 IDX images unless --count says otherwise (one ciphertext of
     * ~0.9 MB per image at n13 in memory: not a whole split by default). */
    if (packing == CLI_PACK_CHANNEL && !count && !images)
        count = 16;
    cli_image_source src = {data, split_s, offset, count, NULL, 0, resize};
    if (cli_collect_image_paths("encrypt", &src, images, argc, argv))
        return 1;
    if (!keys || !out) {
        free(src.paths);
        return cli_error("encrypt", "--keys KEYDIR and --out FILE are required");
    }
    if (images && idx_opts) {
        free(src.paths);
        return cli_error("encrypt", "--data/--split/--offset/--count select IDX images; they "
                         "do not combine with --images");
    }
    if (packing != CLI_PACK_ELEMENT && !model) {
        free(src.paths);
        return cli_error("encrypt", "--packing %s needs --model M.ppnn (%s)",
                         packing == CLI_PACK_AUTO ? "auto" : "channel",
                         packing == CLI_PACK_AUTO ? "the cost model compares its two plans"
                                                  : "its layout");
    }
    if (costs && packing != CLI_PACK_AUTO) {
        free(src.paths);
        return cli_error("encrypt", "--costs is only used with --packing auto");
    }
    data_shape want;
    int have_want;
    if (cli_want_shape("encrypt", &want, &have_want, model, shape)) {
        free(src.paths);
        return 1;
    }
    char names_path[1100];
    snprintf(names_path, sizeof names_path, "%s.names.json", out);
    ppnn_status st;

    char path[PATH_MAX];
    ckks_params *params = NULL;
    ckks_secret_key sk;
    if ((st = cli_key_path(path, sizeof path, keys, CLI_SECRET_KEY)) ||
        (st = ckks_secret_key_load(&sk, &params, path))) {
        free(src.paths);
        return cli_fail("encrypt", st);
    }
    int rc = 1;
    data_images im;
    memset(&im, 0, sizeof im);
    size_t npix = 0;
    /* Values in [0, 1] (the data layer's one normalisation); the server folds the model's own.
     * More images than slots: consecutive batches of N/2 (the last one partial) in one
     * multi-batch file. */
    if (cli_load_images("encrypt", &im, &src, have_want ? &want : NULL, 0))
        goto done;
    if (cli_check_output("encrypt", out, CKKS_FILE_KIND_BATCH))
        goto done;
    char why[1024] = "";
    if (packing == CLI_PACK_AUTO) {
        nn_model m;
        if ((st = nn_model_load(&m, model))) {
            cli_fail("encrypt", st);
            goto done;
        }
        int bad = cli_packing_auto("encrypt", &packing, why, sizeof why, &m, params, costs,
                                   im.count, (int)threads);
        nn_model_free(&m);
        if (bad)
            goto done;
    }
    if (packing == CLI_PACK_CHANNEL) {
        /* The server cannot run channel-wise without the rotations: when auto chose it, say so
         * before encrypting (an explicit --packing channel may have sent galois.key already). */
        if (why[0] && (st = cli_key_path(path, sizeof path, keys, CLI_GALOIS_KEY))) {
            cli_fail("encrypt", st);
            goto done;
        }
        if (why[0] && access(path, R_OK) != 0) {
            cli_error("encrypt", "--packing auto chose %s, which needs Galois keys, and %s is "
                      "missing: make the keys with `ppnn keygen --packing channel --model %s "
                      "--out DIR` (or --packing auto without --count), or encrypt with "
                      "--packing element", why, path, model);
            goto done;
        }
        if (why[0])
            fprintf(stderr, "encrypt: packing: %s\n", why);
        uint8_t kid[CKKS_KEY_ID_BYTES];
        ckks_key_id(kid, &sk);
        if (images && (st = data_manifest_save(names_path, &im, kid))) {
            cli_fail("encrypt", st);
            goto done;
        }
        rc = cli_channel_encrypt_images(out, &sk, params, model, &im);
        if (images && rc)
            remove(names_path);
        if (!rc && images)
            fprintf(stderr, "encrypt: image names kept in %s (client side: do not upload it)\n",
                    names_path);
        if (!rc && !images)
            remove(names_path); /* a manifest left by an earlier --images batch */
        goto done;
    }
    if (why[0])
        fprintf(stderr, "encrypt: packing: %s\n", why);
    npix = im.c * im.h * im.w;
    const size_t slots = params->slots, nb = (im.count + slots - 1) / slots;
    uint64_t *counts = calloc(nb ? nb : 1, sizeof *counts);
    if (!counts) {
        free(counts);
        cli_error("encrypt", "out of memory");
        goto done;
    }
    for (size_t b = 0; b < nb; b++)
        counts[b] = b + 1 < nb ? slots : im.count - b * slots;
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    ckks_key_id(info.key_id, &sk);
    info.packing = CKKS_PACKING_ELEMENT;
    info.shape[0] = (uint32_t)im.c;
    info.shape[1] = (uint32_t)im.h;
    info.shape[2] = (uint32_t)im.w;
    info.role = CKKS_BATCH_INPUT;
    /* The names first: a batch on disk always has its manifest (removed if the batch fails). */
    if (images && (st = data_manifest_save(names_path, &im, info.key_id))) {
        free(counts);
        cli_fail("encrypt", st);
        goto done;
    }
    ckks_batch_set_writer *w = NULL;
    if ((st = ckks_batch_set_create(&w, out, params, &info, nb, counts))) {
        free(counts);
        if (images)
            remove(names_path);
        cli_fail("encrypt", st);
        goto done;
    }
    double t0 = ppnn_now();
    uint64_t bytes = 0;
    for (size_t b = 0; b < nb && !st; b++) {
        const size_t n = (size_t)counts[b];
        char label[64];
        snprintf(label, sizeof label, nb > 1 ? "encrypt batch %zu/%zu" : "encrypt", b + 1, nb);
        cli_progress prog;
        cli_progress_start(&prog, label, npix);
        /* Encrypted and written ciphertext by ciphertext: the batch is never held whole. */
        st = hnn_encrypt_batch_write(w, &sk, im.values + b * slots * npix, n, npix,
                                     (int)threads, on_progress, &prog);
        if (!st)
            cli_progress_finish(&prog, "");
    }
    free(counts);
    if (!st)
        st = ckks_batch_set_finish(w);
    else
        ckks_batch_set_abort(w);
    if (st) {
        if (images)
            remove(names_path);
        cli_fail("encrypt", st);
        goto done;
    }
    double t_enc = ppnn_now() - t0;
    struct stat sb;
    if (stat(out, &sb) == 0)
        bytes = (uint64_t)sb.st_size;
    if (!images)
        remove(names_path); /* a manifest left by an earlier --images batch no longer applies */
    fprintf(stderr,
            "encrypt: %zu images in %zu batch%s -> %s: %zu ciphertexts per batch, %.1f MB "
            "(%.1f KB per image), %.2f s (%.3f ms per image)\n",
            im.count, nb, nb == 1 ? "" : "es", out, npix, bytes / 1e6,
            bytes / 1e3 / (double)im.count, t_enc, 1e3 * t_enc / (double)im.count);
    if (images)
        fprintf(stderr, "encrypt: image names kept in %s (client side: do not upload it)\n",
                names_path);
    rc = 0;
done:
    data_images_free(&im);
    free(src.paths);
    ckks_secret_key_free(&sk);
    ckks_params_free(params);
    return rc;
}
