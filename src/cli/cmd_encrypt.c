/* ppnn encrypt: client side. Element-wise (BEAA) packing: ciphertext k holds pixel k of every
 * image of the batch, image b in slot b. Seeded secret-key encryption: each ciphertext travels
 * as (c0, 32-byte seed), half the size of (c0, c1). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/data.h"
#include "ppnn/hnn.h"

static const char *usage_text =
    "usage: ppnn encrypt --keys KEYDIR --data mnist|fashion|DIR [--split test] [--offset K]\n"
    "                    [--count B] [--threads T] --out batch.ct\n"
    "Encrypts B images (default: the whole split) with the secret key in KEYDIR, N/2 (the\n"
    "number of slots) per batch: more images make a multi-batch file of consecutive batches\n"
    "(the last one partial) that infer and decrypt process whole. Pixels are sent as p/255 in\n"
    "[0,1]; the server folds the model's normalisation into its first layer.\n"
    "Channel-wise packing (one ciphertext per image): add --packing channel --model M\n"
    "(see --packing channel --help).\n";

static void on_progress(void *ctx, size_t done)
{
    cli_progress_update(ctx, done, "");
}

int cmd_encrypt(int argc, char **argv)
{
    if (cli_wants_channel(argc, argv))
        return cli_channel_encrypt(argc, argv);
    const char *keys = NULL, *data = "mnist", *split_s = "test", *out = NULL;
    size_t offset = 0, count = 0, threads = 0;
    static const struct option opts[] = {
        {"keys", 1, 0, 'k'},  {"data", 1, 0, 'd'},    {"split", 1, 0, 's'}, {"offset", 1, 0, 'o'},
        {"count", 1, 0, 'n'}, {"threads", 1, 0, 't'}, {"out", 1, 0, 'O'},   {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'k': keys = optarg; break;
        case 'd': data = optarg; break;
        case 's': split_s = optarg; break;
        case 'o':
            if (cli_parse_size("encrypt", "--offset", optarg, 0, 1u << 30, &offset))
                return 1;
            break;
        case 'n':
            if (cli_parse_size("encrypt", "--count", optarg, 1, 1u << 30, &count))
                return 1;
            break;
        case 't':
            if (cli_parse_size("encrypt", "--threads", optarg, 1, 1024, &threads))
                return 1;
            break;
        case 'O': out = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc)
        return cli_error("encrypt", "unexpected argument '%s'", argv[optind]);
    if (!keys || !out)
        return cli_error("encrypt", "--keys KEYDIR and --out FILE are required");
    data_split split;
    ppnn_status st = data_split_parse(&split, split_s);
    if (st)
        return cli_fail("encrypt", st);

    char path[1024];
    cli_key_path(path, sizeof path, keys, CLI_SECRET_KEY);
    ckks_params *params = NULL;
    ckks_secret_key sk;
    if ((st = ckks_secret_key_load(&sk, &params, path)))
        return cli_fail("encrypt", st);
    int rc = 1;
    data_set ds;
    memset(&ds, 0, sizeof ds);
    ckks_ciphertext *cts = NULL;
    float *x = NULL;
    size_t npix = 0;
    if ((st = data_load(&ds, data, split, offset, count ? count : 0))) {
        cli_fail("encrypt", st);
        goto done;
    }
    /* More images than slots: consecutive batches of N/2 (the last one partial) in one
     * multi-batch file. */
    const size_t slots = params->slots, nb = (ds.count + slots - 1) / slots;
    npix = ds.rows * ds.cols;
    cts = calloc(npix, sizeof *cts);
    uint64_t *images = calloc(nb ? nb : 1, sizeof *images);
    x = malloc((ds.count < slots ? ds.count : slots) * npix * sizeof *x);
    if (!cts || !images || !x) {
        free(images);
        cli_error("encrypt", "out of memory");
        goto done;
    }
    for (size_t b = 0; b < nb; b++)
        images[b] = b + 1 < nb ? slots : ds.count - b * slots;
    ckks_batch_info info;
    memset(&info, 0, sizeof info);
    ckks_key_id(info.key_id, &sk);
    info.packing = CKKS_PACKING_ELEMENT;
    info.shape[0] = 1;
    info.shape[1] = (uint32_t)ds.rows;
    info.shape[2] = (uint32_t)ds.cols;
    info.role = CKKS_BATCH_INPUT;
    ckks_batch_set_writer *w = NULL;
    if ((st = ckks_batch_set_create(&w, out, params, &info, nb, images))) {
        free(images);
        cli_fail("encrypt", st);
        goto done;
    }
    double t0 = ppnn_now();
    uint64_t bytes = 0;
    for (size_t b = 0; b < nb && !st; b++) {
        const size_t n = (size_t)images[b];
        /* p/255 through the one normalisation function; the server folds the model's own. */
        data_normalize(x, ds.pixels + b * slots * npix, n * npix);
        char label[64];
        snprintf(label, sizeof label, nb > 1 ? "encrypt batch %zu/%zu" : "encrypt", b + 1, nb);
        cli_progress prog;
        cli_progress_start(&prog, label, npix);
        st = hnn_encrypt_batch_progress(cts, &sk, x, n, npix, (int)threads, on_progress, &prog);
        if (!st) {
            cli_progress_finish(&prog, "");
            st = ckks_batch_set_append(w, cts, npix);
            bytes += ckks_batch_file_bytes(cts, npix);
        }
    }
    free(images);
    if (!st)
        st = ckks_batch_set_finish(w);
    else
        ckks_batch_set_abort(w);
    if (st) {
        cli_fail("encrypt", st);
        goto done;
    }
    double t_enc = ppnn_now() - t0;
    fprintf(stderr,
            "encrypt: %zu images in %zu batch%s -> %s: %zu ciphertexts per batch, %.1f MB "
            "(%.1f KB per image), %.2f s (%.3f ms per image)\n",
            ds.count, nb, nb == 1 ? "" : "es", out, npix, bytes / 1e6,
            bytes / 1e3 / (double)ds.count, t_enc, 1e3 * t_enc / (double)ds.count);
    rc = 0;
done:
    if (cts) {
        for (size_t k = 0; k < npix; k++)
            ckks_ct_free(&cts[k]);
        free(cts);
    }
    free(x);
    data_set_free(&ds);
    ckks_secret_key_free(&sk);
    ckks_params_free(params);
    return rc;
}
