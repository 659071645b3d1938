/* ppnn infer: server side. Reads ONLY the evaluation keys (relin.key) — never secret.key — the
 * model and the client's encrypted batch; compiles the model for the keys' parameters (refusing
 * models that do not fit before doing any work), runs it with element-wise packing and writes
 * the encrypted logits. */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/dist.h"
#include "ppnn/hnn.h"
#include "ppnn/nn.h"

static const char *usage_text =
    "usage: ppnn infer --model M.ppnn --keys KEYDIR --in batch.ct --out result.ct [--threads T]\n"
    "Server side: evaluates the model on an encrypted batch (element-wise packing, no\n"
    "rotations) with KEYDIR/relin.key only; secret.key is neither needed nor read.\n"
    "Channel-wise packing (one ciphertext per image): add --packing channel --model M\n"
    "(see --packing channel --help).\n"
    "Under mpirun (mpirun -n R ppnn infer ...) the work is spread over R ranks: rank 0 reads\n"
    "the files and writes the result; --dist model|data|auto (default auto: data-parallel when\n"
    "there are at least R batches, else model-parallel). See docs/scaling.md.\n";

typedef struct progress_ctx {
    const hnn_plan *plan;
    int quiet;
} progress_ctx;

static void on_step(void *vctx, size_t k, const hnn_step *s, double seconds)
{
    progress_ctx *ctx = vctx;
    if (ctx->quiet)
        return;
    fprintf(stderr, "infer: step %zu/%zu %-8s layer %zu: %5zu -> %5zu ciphertexts, level %zu -> %zu, "
                    "%.3f s\n", k + 1, ctx->plan->nsteps, s->name, s->layer, s->n_in, s->n_out,
            s->level_in, s->level_in - s->drop, seconds);
}

/* The budget a named preset offers, without building its parameter set. */
static void budget_for_preset(hnn_budget *b, const char *name)
{
    ckks_spec spec;
    memset(b, 0, sizeof *b);
    if (ckks_preset(&spec, name) != PPNN_OK)
        return;
    b->name = name;
    b->levels = spec.nq - 1;
    b->log2_scale = log2(spec.scale);
    b->log2_q0 = spec.q_bits[0] - 0.5;
    b->logn = spec.logn;
}

uint64_t cli_mem_available(void)
{
    FILE *fp = fopen("/proc/meminfo", "r");
    if (!fp)
        return 0;
    char line[256];
    unsigned long long kb = 0;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
            break;
    fclose(fp);
    return (uint64_t)kb * 1024;
}

/* Refuses, before reading the batch, a model whose ciphertexts cannot fit in memory (rather than
 * being killed half-way). The batch file is read whole before it is unpacked. */
static int memory_refused(const hnn_plan *plan, const ckks_params *params, const char *model,
                          const char *in)
{
    uint64_t avail = cli_mem_available();
    struct stat sb;
    uint64_t need = hnn_plan_peak_bytes(plan, params->n) +
                    (stat(in, &sb) == 0 ? (uint64_t)sb.st_size : 0);
    if (avail && need > avail - avail / 10) {
        cli_error("infer", "model %s needs about %.1f GB for its ciphertexts at N = %zu but only "
                  "%.1f GB of memory is available; use a machine with more memory or a smaller "
                  "model", model, (double)need / 1e9, params->n, (double)avail / 1e9);
        return 1;
    }
    return 0;
}

int cli_plan_for_params(const char *cmd, hnn_plan **plan, const nn_model *m,
                        const ckks_params *params, const char *preset_name)
{
    hnn_budget b, alt[2];
    hnn_budget_from_params(&b, params, preset_name);
    budget_for_preset(&alt[0], "n13");
    budget_for_preset(&alt[1], "n14");
    /* Use as few levels as the model needs: every unused prime above them would only make each
     * operation slower (the inputs are mod-switched down to the plan's top level). */
    for (size_t levels = 1; levels < b.levels; levels++) {
        hnn_budget fewer = b;
        fewer.levels = levels;
        if (hnn_plan_new(plan, m, &fewer, NULL, 0) == PPNN_OK)
            return 0;
    }
    ppnn_status st = hnn_plan_new(plan, m, &b, alt, 2);
    if (st)
        return cli_fail(cmd, st);
    return 0;
}

/* Reads the batch at `in` and checks it against the key id of the relin key at `key_path`,
 * the model and the plan; mod-switches the inputs down to the plan's top level. Prints the
 * error and returns 1 on failure (the caller then frees *cts, *count entries). */
int cli_infer_load_batch(ckks_ciphertext **cts, size_t *count, ckks_batch_info *info,
                         ckks_params **params, const char *in, const uint8_t *rk_id,
                         const char *key_path, const hnn_plan *plan, const nn_model *m,
                         const char *model_path)
{
    ppnn_status st = ckks_batch_load(cts, count, info, params, in);
    if (st)
        return cli_fail("infer", st);
    if (memcmp(info->key_id, rk_id, CKKS_KEY_ID_BYTES) != 0)
        return cli_error("infer", "%s was encrypted under different keys than %s (key ids "
                         "differ); encrypt with the secret key that made this relin.key", in,
                         key_path);
    if (info->role != CKKS_BATCH_INPUT || info->packing != CKKS_PACKING_ELEMENT)
        return cli_error("infer", "%s is not an element-wise encrypted input batch", in);
    if (info->shape[0] != m->input.c || info->shape[1] != m->input.h ||
        info->shape[2] != m->input.w || *count != plan->n_inputs)
        return cli_error("infer", "model %s expects %ux%ux%u inputs but %s holds %ux%ux%u "
                         "images", model_path, m->input.c, m->input.h, m->input.w, in,
                         info->shape[0], info->shape[1], info->shape[2]);
    for (size_t k = 0; k < *count; k++) {
        ckks_ciphertext *c = &(*cts)[k];
        if (c->size != 2 || c->level < plan->top_level)
            return cli_error("infer", "%s: ciphertext %zu is at level %zu, the model needs %zu",
                             in, k, c->level, plan->top_level);
        if (c->level > plan->top_level && (st = ckks_mod_switch(c, plan->top_level)))
            return cli_fail("infer", st);
    }
    return 0;
}

int cmd_infer(int argc, char **argv)
{
    if (cli_wants_channel(argc, argv))
        return cli_channel_infer(argc, argv);
    const char *model_path = NULL, *keys = NULL, *in = NULL, *out = NULL;
    size_t threads = 0;
    int quiet = 0, dist = -1;
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"keys", 1, 0, 'k'},
                                         {"in", 1, 0, 'i'},    {"out", 1, 0, 'O'},
                                         {"threads", 1, 0, 't'}, {"quiet", 0, 0, 'q'},
                                         {"dist", 1, 0, 'D'},  {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'k': keys = optarg; break;
        case 'i': in = optarg; break;
        case 'O': out = optarg; break;
        case 't':
            if (cli_parse_size("infer", "--threads", optarg, 1, 1024, &threads))
                return 1;
            break;
        case 'q': quiet = 1; break;
        case 'D':
            if ((dist = dist_mode_parse(optarg)) < 0)
                return cli_error("infer", "--dist must be auto, model or data, not '%s'", optarg);
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc)
        return cli_error("infer", "unexpected argument '%s'", argv[optind]);
    if (!model_path || !keys || !in || !out)
        return cli_error("infer", "--model, --keys, --in and --out are required");
    if (dist_launched()) {
        cli_infer_args a = {model_path, keys, in, out, (int)threads, quiet,
                            dist < 0 ? DIST_AUTO : (dist_mode)dist};
        return cli_infer_dist(&a);
    }
    if (dist >= 0)
        return cli_error("infer", "--dist applies under mpirun only (mpirun -n R ppnn infer ...)");

    double t0 = ppnn_now();
    nn_model m;
    ppnn_status st = nn_model_load(&m, model_path);
    if (st)
        return cli_fail("infer", st);
    char path[1024];
    cli_key_path(path, sizeof path, keys, CLI_RELIN_KEY);
    ckks_params *params = NULL;
    ckks_relin_key rk;
    uint8_t rk_id[CKKS_KEY_ID_BYTES];
    memset(&rk, 0, sizeof rk);
    int rc = 1;
    hnn_plan *plan = NULL;
    ckks_ciphertext *cts = NULL, *res = NULL;
    size_t count = 0;
    ckks_batch_info info;
    if ((st = ckks_relin_key_load(&rk, &params, rk_id, path))) {
        cli_fail("infer", st);
        goto done;
    }
    /* Plan first: a model that does not fit is refused before the batch is even read. */
    if (cli_plan_for_params("infer", &plan, &m, params, params->logn == 13 ? "n13" : "n14"))
        goto done;
    if (memory_refused(plan, params, model_path, in))
        goto done;
    if (cli_infer_load_batch(&cts, &count, &info, &params, in, rk_id, path, plan, &m, model_path))
        goto done;
    res = calloc(plan->n_outputs, sizeof *res);
    if (!res) {
        cli_error("infer", "out of memory");
        goto done;
    }
    double t_load = ppnn_now() - t0;
    if (!quiet)
        fprintf(stderr, "infer: %s, %llu images, %zu input ciphertexts, depth %zu, planner's "
                        "bound on the logit error %.2g (load %.2f s)\n", model_path,
                (unsigned long long)info.images, count, plan->depth, plan->est_error, t_load);
    progress_ctx pctx = {plan, quiet};
    hnn_exec_opts o = {.threads = (int)threads, .progress = on_step, .progress_ctx = &pctx};
    double t1 = ppnn_now();
    if ((st = hnn_infer(res, plan, cts, &rk, &o))) {
        cli_fail("infer", st);
        goto done;
    }
    double t_run = ppnn_now() - t1;
    ckks_batch_info oinfo = info;
    oinfo.role = CKKS_BATCH_LOGITS;
    oinfo.shape[0] = (uint32_t)plan->n_outputs, oinfo.shape[1] = 1, oinfo.shape[2] = 1;
    if ((st = ckks_batch_save(out, res, plan->n_outputs, &oinfo))) {
        cli_fail("infer", st);
        goto done;
    }
    printf("infer: %llu images in %.3f s of server compute (%.4f ms per image amortized), "
           "%.3f s total; result %s\n", (unsigned long long)info.images, t_run,
           1e3 * t_run / (double)info.images, ppnn_now() - t0, out);
    rc = 0;
done:
    if (cts) {
        for (size_t k = 0; k < count; k++)
            ckks_ct_free(&cts[k]);
        free(cts);
    }
    if (res) {
        for (size_t k = 0; plan && k < plan->n_outputs; k++)
            ckks_ct_free(&res[k]);
        free(res);
    }
    hnn_plan_free(plan);
    ckks_relin_key_free(&rk);
    ckks_params_free(params);
    nn_model_free(&m);
    return rc;
}
