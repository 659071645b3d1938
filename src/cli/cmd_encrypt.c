/* ppnn encrypt: client side. Element-wise (BEAA) packing: ciphertext k holds pixel k of every
 * image of the batch, image b in slot b. Seeded secret-key encryption: each ciphertext travels
 * as (c0, 32-byte seed), half the size of (c0, c1). */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/data.h"
#include "ppnn/hnn.h"

static const char *usage_text =
    "usage: ppnn encrypt --keys KEYDIR --data mnist|fashion|DIR [--split test] [--offset K]\n"
    "                    [--count B] [--threads T] --out batch.ct\n"
    "       ppnn encrypt --keys KEYDIR --images PATH... [--model M.ppnn | --shape CxHxW]\n"
    "                    [--resize] [--threads T] --out batch.ct\n"
    "Encrypts B images (default and maximum: N/2 = the number of slots) with the secret key in\n"
    "KEYDIR. Pixels are sent as values in [0,1] (p/255 for 8-bit images; docs/images.md); the\n"
    "server folds the model's normalisation into its first layer.\n"
    "--images: PNG, NumPy .npy and DICOM files, or directories of them (read in sorted order).\n"
    "Every image must have the model's shape (--model M reads only its input shape, or\n"
    "--shape CxHxW; without either, the shape of the first image); --resize scales H x W to it\n"
    "(area averaging). The file names stay on the client: they are written to OUT.names.json\n"
    "(do not upload it); `ppnn decrypt --names OUT.names.json` prints them beside the\n"
    "predictions.\n"
    "--packing element (the default) or channel, as for keygen. Channel-wise packing (one\n"
    "ciphertext per image): add --packing channel --model M\n"
    "(see --packing channel --help).\n";

_Static_assert(DATA_MANIFEST_KEY_ID_BYTES == CKKS_KEY_ID_BYTES, "the manifest keeps a key id");

static void on_progress(void *ctx, size_t done)
{
    cli_progress_update(ctx, done, "");
}

int cmd_encrypt(int argc, char **argv)
{
    if (cli_wants_channel(argc, argv))
        return cli_channel_encrypt(argc, argv);
    const char *keys = NULL, *data = "mnist", *split_s = "test", *out = NULL;
    const char *images = NULL, *model = NULL, *shape = NULL;
    size_t offset = 0, count = 0, threads = 0;
    int resize = 0, idx_opts = 0, channel = 0;
    static const struct option opts[] = {
        {"keys", 1, 0, 'k'},  {"data", 1, 0, 'd'},    {"split", 1, 0, 's'}, {"offset", 1, 0, 'o'},
        {"count", 1, 0, 'n'}, {"threads", 1, 0, 't'}, {"out", 1, 0, 'O'},   {"help", 0, 0, 'h'},
        {"images", 1, 0, 'I'}, {"model", 1, 0, 'm'}, {"shape", 1, 0, 'S'}, {"resize", 0, 0, 'R'},
        {"packing", 1, 0, 'P'}, {0, 0, 0, 0}};
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
        case 'P': /* element (channel was dispatched to cli_channel_encrypt above) */
            if (cli_parse_packing("encrypt", optarg, &channel))
                return 1;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error("encrypt", argc, argv);
        }
    }
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
    ckks_ciphertext *cts = NULL;
    size_t npix = 0;
    if (count > params->slots) {
        cli_error("encrypt", "--count %zu is more than the %zu slots of these parameters; "
                  "split the images into batches of at most %zu", count, params->slots,
                  params->slots);
        goto done;
    }
    /* Values in [0, 1] (the data layer's one normalisation); the server folds the model's own. */
    if (cli_load_images("encrypt", &im, &src, have_want ? &want : NULL, params->slots))
        goto done;
    if (cli_check_output("encrypt", out, CKKS_FILE_KIND_BATCH))
        goto done;
    npix = im.c * im.h * im.w;
    cts = calloc(npix, sizeof *cts);
    if (!cts) {
        cli_error("encrypt", "out of memory");
        goto done;
    }
    double t0 = ppnn_now();
    cli_progress prog;
    cli_progress_start(&prog, "encrypt", npix);
    ppnn_status st2 = hnn_encrypt_batch_progress(cts, &sk, im.values, im.count, npix,
                                                 (int)threads, on_progress, &prog);
    if (st2) {
        cli_fail("encrypt", st2);
        goto done;
    }
    double t_enc = ppnn_now() - t0;
    cli_progress_finish(&prog, "");
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    ckks_key_id(info.key_id, &sk);
    info.packing = CKKS_PACKING_ELEMENT;
    info.images = im.count;
    info.shape[0] = (uint32_t)im.c;
    info.shape[1] = (uint32_t)im.h;
    info.shape[2] = (uint32_t)im.w;
    info.role = CKKS_BATCH_INPUT;
    /* The names first: a batch on disk always has its manifest (removed if the batch fails). */
    if (images && (st = data_manifest_save(names_path, &im, info.key_id))) {
        cli_fail("encrypt", st);
        goto done;
    }
    if ((st = ckks_batch_save(out, cts, npix, &info))) {
        if (images)
            remove(names_path);
        cli_fail("encrypt", st);
        goto done;
    }
    if (!images)
        remove(names_path); /* a manifest left by an earlier --images batch no longer applies */
    uint64_t bytes = ckks_batch_file_bytes(cts, npix);
    fprintf(stderr,
            "encrypt: %zu images -> %s: %zu ciphertexts, %.1f MB (%.1f KB per image), "
            "%.2f s (%.3f ms per image)\n",
            im.count, out, npix, bytes / 1e6, bytes / 1e3 / (double)im.count, t_enc,
            1e3 * t_enc / (double)im.count);
    if (images)
        fprintf(stderr, "encrypt: image names kept in %s (client side: do not upload it)\n",
                names_path);
    rc = 0;
done:
    if (cts) {
        for (size_t k = 0; k < npix; k++)
            ckks_ct_free(&cts[k]);
        free(cts);
    }
    data_images_free(&im);
    free(src.paths);
    ckks_secret_key_free(&sk);
    ckks_params_free(params);
    return rc;
}
