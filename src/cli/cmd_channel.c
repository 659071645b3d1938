/* The channel-wise packing behind `--packing channel` of ppnn encrypt / infer / decrypt (the
 * baseline BEAA compares against; docs/channel-wise.md). One ciphertext per image:
 *   encrypt --packing channel --model M (cmd_encrypt.c loads the images, then
 *     cli_channel_encrypt_images): the client normalises each image with M's statistics and
 *     writes it in M's replicated layout (hnn_channel_encrypt), batch file packing CHANNEL;
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
        {"packing", 1, 0, 'p'}, {"help", 0, 0, 'h'}, {"quiet", 0, 0, 'q'},
        /* element-wise infer's options: named in a refusal (--packing auto may bring them) */
        {"memory", 1, 0, 'E'}, {"scratch", 1, 0, 'E'}, {"no-spill", 0, 0, 'E'},
        {"force-spill", 0, 0, 'E'}, {"dist", 1, 0, 'E'}, {0, 0, 0, 0}};
    int c, li = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, &li)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 'k': o->keys = optarg; break;
        case 'i': o->in = optarg; break;
        case 'O': o->out = optarg; break;
        case 'd': o->data = optarg; break;
        case 's': o->split = optarg; break;
        case 'q': break; /* channel-wise infer prints one summary line only */
        case 'E':
            return cli_error(cmd, "--%s applies to element-wise packing only; this batch is "
                             "channel-wise", opts[li].name);
        case 'p': break; /* parsed by cli_dispatch_packing, which brought us here */
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

int cli_channel_encrypt_images(const char *out, const ckks_secret_key *sk,
                               const ckks_params *params, const char *model_path,
                               const data_images *im)
{
    nn_model m = {0};
    hnn_channel_plan *plan = NULL;
    ckks_ciphertext *cts = NULL;
    float *x = NULL;
    int rc = 1;
    if (load_plan("encrypt", &m, &plan, model_path, params))
        goto done;
    ppnn_status st;
    if ((st = nn_model_check_images(&m, im->c, im->h, im->w))) {
        ppnn_error_context("%s", model_path);
        cli_fail("encrypt", st);
        goto done;
    }
    const size_t numel = nn_numel(m.input);
    cts = calloc(im->count, sizeof *cts);
    x = malloc(im->count * numel * sizeof *x);
    if (!cts || !x) {
        cli_error("encrypt", "out of memory");
        goto done;
    }
    nn_model_normalize_unit(&m, x, im->values, im->count);
    double t0 = ppnn_now();
    for (size_t b = 0; b < im->count; b++)
        if ((st = hnn_channel_encrypt(&cts[b], plan, sk, x + b * numel))) {
            cli_fail("encrypt", st);
            goto done;
        }
    ckks_batch_info info = {0};
    ckks_key_id(info.key_id, sk);
    info.packing = CKKS_PACKING_CHANNEL;
    info.images = im->count;
    info.shape[0] = m.input.c, info.shape[1] = m.input.h, info.shape[2] = m.input.w;
    info.role = CKKS_BATCH_INPUT;
    if ((st = ckks_batch_save(out, cts, im->count, &info))) {
        cli_fail("encrypt", st);
        goto done;
    }
    fprintf(stderr, "encrypt: %zu images -> %s (channel-wise: one ciphertext each), %.1f MB, "
            "%.3f s\n", im->count, out, ckks_batch_file_bytes(cts, im->count) / 1e6,
            ppnn_now() - t0);
    rc = 0;
done:
    free_cts(cts, im->count);
    if (x) /* the normalised images */
        sodium_memzero(x, im->count * nn_numel(m.input) * sizeof *x);
    free(x);
    hnn_channel_plan_free(plan);
    nn_model_free(&m);
    return rc;
}

static const char *infer_usage =
    "usage: ppnn infer --packing channel --model M.ppnn --keys KEYDIR --in batch.ct\n"
    "                  --out result.ct [--threads T]\n"
    "Channel-wise packing: evaluates each image's ciphertext with KEYDIR/relin.key and\n"
    "KEYDIR/galois.key (ppnn keygen --packing channel --model M); secret.key is not read.\n";

int cli_channel_infer(int argc, char **argv, int announce)
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
    if (announce)
        cli_announce_packing("infer", o.in, CLI_PACK_CHANNEL);
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
