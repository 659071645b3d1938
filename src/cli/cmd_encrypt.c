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
    "Encrypts B images (default and maximum: N/2 = the number of slots) with the secret key in\n"
    "KEYDIR. Pixels are sent as p/255 in [0,1]; the server folds the model's normalisation\n"
    "into its first layer.\n"
    "--packing element (the default) or channel, as for keygen. Channel-wise packing (one\n"
    "ciphertext per image): add --packing channel --model M\n"
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
    int channel = 0;
    static const struct option opts[] = {
        {"keys", 1, 0, 'k'},  {"data", 1, 0, 'd'},    {"split", 1, 0, 's'}, {"offset", 1, 0, 'o'},
        {"count", 1, 0, 'n'}, {"threads", 1, 0, 't'}, {"out", 1, 0, 'O'},   {"help", 0, 0, 'h'},
        {"packing", 1, 0, 'P'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
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
        case 'P': /* element (channel was dispatched to cli_channel_encrypt above) */
            if (cli_parse_packing("encrypt", optarg, &channel))
                return 1;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error("encrypt", argc, argv);
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

    char path[PATH_MAX];
    ckks_params *params = NULL;
    ckks_secret_key sk;
    if ((st = cli_key_path(path, sizeof path, keys, CLI_SECRET_KEY)) ||
        (st = ckks_secret_key_load(&sk, &params, path)))
        return cli_fail("encrypt", st);
    int rc = 1;
    data_set ds;
    memset(&ds, 0, sizeof ds);
    ckks_ciphertext *cts = NULL;
    float *x = NULL;
    size_t npix = 0;
    if (count > params->slots) {
        cli_error("encrypt", "--count %zu is more than the %zu slots of these parameters; "
                  "split the images into batches of at most %zu", count, params->slots,
                  params->slots);
        goto done;
    }
    if ((st = data_load(&ds, data, split, offset, count ? count : 0))) {
        cli_fail("encrypt", st);
        goto done;
    }
    if (cli_check_output("encrypt", out, CKKS_FILE_KIND_BATCH))
        goto done;
    if (ds.count > params->slots) {
        cli_error("encrypt", "%zu images are more than the %zu slots; pass --count <= %zu",
                  ds.count, params->slots, params->slots);
        goto done;
    }
    npix = ds.rows * ds.cols;
    cts = calloc(npix, sizeof *cts);
    if (!cts) {
        cli_error("encrypt", "out of memory");
        goto done;
    }
    /* p/255 through the one normalisation function; the server folds the model's own. */
    x = malloc(ds.count * npix * sizeof *x);
    if (!x) {
        cli_error("encrypt", "out of memory");
        goto done;
    }
    data_normalize(x, ds.pixels, ds.count * npix);
    double t0 = ppnn_now();
    cli_progress prog;
    cli_progress_start(&prog, "encrypt", npix);
    ppnn_status st2 = hnn_encrypt_batch_progress(cts, &sk, x, ds.count, npix, (int)threads,
                                                 on_progress, &prog);
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
    info.images = ds.count;
    info.shape[0] = 1;
    info.shape[1] = (uint32_t)ds.rows;
    info.shape[2] = (uint32_t)ds.cols;
    info.role = CKKS_BATCH_INPUT;
    if ((st = ckks_batch_save(out, cts, npix, &info))) {
        cli_fail("encrypt", st);
        goto done;
    }
    uint64_t bytes = ckks_batch_file_bytes(cts, npix);
    fprintf(stderr,
            "encrypt: %zu images -> %s: %zu ciphertexts, %.1f MB (%.1f KB per image), "
            "%.2f s (%.3f ms per image)\n",
            ds.count, out, npix, bytes / 1e6, bytes / 1e3 / (double)ds.count, t_enc,
            1e3 * t_enc / (double)ds.count);
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
