/* The channel-wise packing behind `--packing channel` of ppnn encrypt / infer / decrypt (the
 * baseline BEAA compares against; docs/channel-wise.md). One ciphertext per image:
 *   encrypt --packing channel --model M: the client normalises each image with M's statistics
 *     and writes it in M's replicated layout (hnn_channel_encrypt), batch file packing CHANNEL;
 *   infer --packing channel: the server needs relin.key and galois.key (ppnn keygen --packing
 *     channel --model M), never secret.key; one logits ciphertext per image (slots 0..9);
 *   decrypt: handled here when the batch file says CHANNEL (see cli_channel_decrypt). */
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/data.h"
#include "ppnn/hnn.h"

int cli_wants_channel(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--packing=channel") ||
            (!strcmp(argv[i], "--packing") && i + 1 < argc && !strcmp(argv[i + 1], "channel")))
            return 1;
    }
    return 0;
}

static void free_cts(ckks_ciphertext *cts, size_t n)
{
    for (size_t k = 0; cts && k < n; k++)
        ckks_ct_free(&cts[k]);
    free(cts);
}

/* Options shared by the channel-wise commands (each uses its subset). */
typedef struct ch_opts {
    const char *model, *keys, *in, *out, *data, *split;
    size_t offset, count, threads;
} ch_opts;

static int parse_ch(ch_opts *o, const char *cmd, int argc, char **argv, const char *usage)
{
    static const struct option opts[] = {
        {"model", 1, 0, 'm'}, {"keys", 1, 0, 'k'},   {"in", 1, 0, 'i'},
        {"out", 1, 0, 'O'},   {"data", 1, 0, 'd'},   {"split", 1, 0, 's'},
        {"offset", 1, 0, 'o'}, {"count", 1, 0, 'n'}, {"threads", 1, 0, 't'},
        {"packing", 1, 0, 'p'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'k': o->keys = optarg; break;
        case 'i': o->in = optarg; break;
        case 'O': o->out = optarg; break;
        case 'd': o->data = optarg; break;
        case 's': o->split = optarg; break;
        case 'p': { /* "channel" is how we got here; anything but element|channel is an error */
            int channel;
            if (cli_parse_packing(cmd, optarg, &channel))
                return 1;
            break;
        }
        case 'o': bad = cli_parse_size(cmd, "--offset", optarg, 0, 1u << 30, &o->offset); break;
        case 'n': bad = cli_parse_size(cmd, "--count", optarg, 1, 1u << 20, &o->count); break;
        case 't': bad = cli_parse_size(cmd, "--threads", optarg, 1, 1024, &o->threads); break;
        case 'h': fputs(usage, stdout); return -1;
        default: return cli_usage_error(cmd, argc, argv);
        }
        if (bad)
            return 1;
    }
    if (optind != argc)
        return cli_error(cmd, "unexpected argument '%s'", argv[optind]);
    return 0;
}

/* Loads the model and compiles its channel-wise plan for params. */
static int load_plan(const char *cmd, nn_model *m, hnn_channel_plan **plan, const char *path,
                     const ckks_params *params)
{
    ppnn_status st = nn_model_load(m, path);
    if (st)
        return cli_fail(cmd, st);
    if ((st = hnn_channel_plan_new(plan, m, params)))
        return cli_fail(cmd, st);
    return 0;
}

static const char *enc_usage =
    "usage: ppnn encrypt --packing channel --model M.ppnn --keys KEYDIR --data mnist|fashion|DIR\n"
    "                    [--split test] [--offset K] [--count B] [--threads T] --out batch.ct\n"
    "Channel-wise packing: one ciphertext per image, normalised with M's statistics and laid\n"
    "out as M's plan needs (copies of the image for the first conv's channels).\n";

int cli_channel_encrypt(int argc, char **argv)
{
    ch_opts o = {.data = "mnist", .split = "test", .count = 16};
    int rc = parse_ch(&o, "encrypt", argc, argv, enc_usage);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!o.model || !o.keys || !o.out)
        return cli_error("encrypt", "--packing channel needs --model, --keys and --out");
    data_split split;
    ppnn_status st = data_split_parse(&split, o.split);
    if (st)
        return cli_fail("encrypt", st);
    char path[PATH_MAX];
    ckks_params *params = NULL;
    ckks_secret_key sk = {0};
    if ((st = cli_key_path(path, sizeof path, o.keys, CLI_SECRET_KEY)) ||
        (st = ckks_secret_key_load(&sk, &params, path)))
        return cli_fail("encrypt", st);
    nn_model m = {0};
    hnn_channel_plan *plan = NULL;
    data_set ds = {0};
    ckks_ciphertext *cts = NULL;
    float *x = NULL;
    rc = 1;
    if (load_plan("encrypt", &m, &plan, o.model, params))
        goto done;
    if ((st = data_load(&ds, o.data, split, o.offset, o.count))) {
        cli_fail("encrypt", st);
        goto done;
    }
    const size_t numel = nn_numel(m.input);
    if ((st = nn_model_check_images(&m, ds.channels, ds.rows, ds.cols))) {
        ppnn_error_context("%s on %s", o.model, o.data);
        cli_fail("encrypt", st);
        goto done;
    }
    cts = calloc(ds.count, sizeof *cts);
    x = malloc(ds.count * numel * sizeof *x);
    if (!cts || !x) {
        cli_error("encrypt", "out of memory");
        goto done;
    }
    nn_model_normalize(&m, x, ds.pixels, ds.count);
    double t0 = ppnn_now();
    for (size_t b = 0; b < ds.count; b++)
        if ((st = hnn_channel_encrypt(&cts[b], plan, &sk, x + b * numel))) {
            cli_fail("encrypt", st);
            goto done;
        }
    ckks_batch_info info = {0};
    ckks_key_id(info.key_id, &sk);
    info.packing = CKKS_PACKING_CHANNEL;
    info.images = ds.count;
    info.shape[0] = m.input.c, info.shape[1] = m.input.h, info.shape[2] = m.input.w;
    info.role = CKKS_BATCH_INPUT;
    if ((st = ckks_batch_save(o.out, cts, ds.count, &info))) {
        cli_fail("encrypt", st);
        goto done;
    }
    fprintf(stderr, "encrypt: %zu images -> %s (channel-wise: one ciphertext each), %.1f MB, "
            "%.3f s\n", ds.count, o.out, ckks_batch_file_bytes(cts, ds.count) / 1e6,
            ppnn_now() - t0);
    rc = 0;
done:
    free_cts(cts, ds.count);
    if (x) /* the normalised images */
        sodium_memzero(x, ds.count * nn_numel(m.input) * sizeof *x);
    free(x);
    data_set_free(&ds);
    hnn_channel_plan_free(plan);
    nn_model_free(&m);
    ckks_secret_key_free(&sk);
    ckks_params_free(params);
    return rc;
}

static const char *infer_usage =
    "usage: ppnn infer --packing channel --model M.ppnn --keys KEYDIR --in batch.ct\n"
    "                  --out result.ct [--threads T]\n"
    "Channel-wise packing: evaluates each image's ciphertext with KEYDIR/relin.key and\n"
    "KEYDIR/galois.key (ppnn keygen --packing channel --model M); secret.key is not read.\n";

int cli_channel_infer(int argc, char **argv)
{
    ch_opts o = {0};
    int rc = parse_ch(&o, "infer", argc, argv, infer_usage);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!o.model || !o.keys || !o.in || !o.out)
        return cli_error("infer", "--model, --keys, --in and --out are required");
    char path[PATH_MAX];
    ckks_params *params = NULL;
    ckks_relin_key rk = {0};
    ckks_galois_keys gk = {0};
    uint8_t rk_id[CKKS_KEY_ID_BYTES], gk_id[CKKS_KEY_ID_BYTES];
    nn_model m = {0};
    hnn_channel_plan *plan = NULL;
    ckks_ciphertext *cts = NULL, *res = NULL;
    size_t count = 0;
    ckks_batch_info info;
    rc = 1;
    ppnn_status st = cli_key_path(path, sizeof path, o.keys, CLI_RELIN_KEY);
    if (!st)
        st = ckks_relin_key_load(&rk, &params, rk_id, path);
    if (!st && !(st = cli_key_path(path, sizeof path, o.keys, CLI_GALOIS_KEY)))
        st = ckks_galois_keys_load(&gk, &params, gk_id, path);
    if (st) {
        cli_fail("infer", st);
        goto done;
    }
    if (memcmp(rk_id, gk_id, CKKS_KEY_ID_BYTES)) {
        cli_error("infer", "relin.key and galois.key in %s come from different secret keys",
                  o.keys);
        goto done;
    }
    if (load_plan("infer", &m, &plan, o.model, params))
        goto done;
    if ((st = ckks_batch_load(&cts, &count, &info, &params, o.in))) {
        cli_fail("infer", st);
        goto done;
    }
    if (memcmp(info.key_id, rk_id, CKKS_KEY_ID_BYTES)) {
        cli_error("infer", "%s was encrypted under different keys than %s", o.in, o.keys);
        goto done;
    }
    if (info.role != CKKS_BATCH_INPUT || info.packing != CKKS_PACKING_CHANNEL ||
        count != info.images || info.shape[0] != m.input.c || info.shape[1] != m.input.h ||
        info.shape[2] != m.input.w) {
        cli_error("infer", "%s is not a channel-wise input batch of %ux%ux%u images for %s",
                  o.in, m.input.c, m.input.h, m.input.w, o.model);
        goto done;
    }
    res = calloc(count, sizeof *res);
    if (!res) {
        cli_error("infer", "out of memory");
        goto done;
    }
    double t0 = ppnn_now();
    if ((st = hnn_channel_eval_batch(res, plan, cts, count, &rk, &gk, (int)o.threads))) {
        cli_fail("infer", st);
        goto done;
    }
    double t_run = ppnn_now() - t0;
    ckks_batch_info oinfo = info;
    oinfo.role = CKKS_BATCH_LOGITS;
    oinfo.shape[0] = (uint32_t)hnn_channel_nclasses(plan), oinfo.shape[1] = oinfo.shape[2] = 1;
    if ((st = ckks_batch_save(o.out, res, count, &oinfo))) {
        cli_fail("infer", st);
        goto done;
    }
    printf("infer: %zu images (channel-wise) in %.3f s of server compute (%.1f ms per image); "
           "result %s\n", count, t_run, 1e3 * t_run / (double)count, o.out);
    rc = 0;
done:
    free_cts(cts, count);
    free_cts(res, count);
    hnn_channel_plan_free(plan);
    nn_model_free(&m);
    ckks_galois_keys_free(&gk);
    ckks_relin_key_free(&rk);
    ckks_params_free(params);
    return rc;
}

int cli_channel_logits(double *logits, const ckks_secret_key *sk, const ckks_ciphertext *cts,
                       size_t images, size_t classes, const ckks_flood *flood)
{
    for (size_t b = 0; b < images; b++) {
        ppnn_status st = ckks_decrypt_release(logits + b * classes, classes, sk, &cts[b], flood);
        if (st)
            return cli_fail("decrypt", st);
    }
    return 0;
}
