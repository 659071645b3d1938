/* ppnn infer: server side. Reads ONLY the evaluation keys (relin.key) — never secret.key — the
 * model and the client's encrypted batch; compiles the model for the keys' parameters (refusing
 * models that do not fit before doing any work), runs it with element-wise packing and writes
 * the encrypted logits. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/ckks_io.h"
#include "ppnn/hnn.h"
#include "ppnn/nn.h"

static const char *usage_text =
    "usage: ppnn infer --model M.ppnn --keys KEYDIR --in batch.ct --out result.ct [--threads T]\n"
    "Server side: evaluates the model on an encrypted batch (element-wise packing, no\n"
    "rotations) with KEYDIR/relin.key only; secret.key is neither needed nor read.\n"
    "Channel-wise packing (one ciphertext per image): add --packing channel --model M\n"
    "(see --packing channel --help).\n";

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

int cmd_infer(int argc, char **argv)
{
    if (cli_wants_channel(argc, argv))
        return cli_channel_infer(argc, argv);
    const char *model_path = NULL, *keys = NULL, *in = NULL, *out = NULL;
    size_t threads = 0;
    int quiet = 0;
    static const struct option opts[] = {{"model", 1, 0, 'm'}, {"keys", 1, 0, 'k'},
                                         {"in", 1, 0, 'i'},    {"out", 1, 0, 'O'},
                                         {"threads", 1, 0, 't'}, {"quiet", 0, 0, 'q'},
                                         {"help", 0, 0, 'h'},  {0, 0, 0, 0}};
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
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc)
        return cli_error("infer", "unexpected argument '%s'", argv[optind]);
    if (!model_path || !keys || !in || !out)
        return cli_error("infer", "--model, --keys, --in and --out are required");

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
    hnn_batch_job *job = NULL;
    if ((st = ckks_relin_key_load(&rk, &params, rk_id, path)) ||
        (st = hnn_batch_job_open(&job, &m, model_path, &rk, params, rk_id, path, in))) {
        cli_fail("infer", st);
        goto done;
    }
    const hnn_plan *plan = hnn_batch_job_plan(job);
    const ckks_batch_info *info = hnn_batch_job_info(job);
    double t_load = ppnn_now() - t0;
    if (!quiet)
        fprintf(stderr, "infer: %s, %llu images, %zu input ciphertexts, depth %zu, planner's "
                        "bound on the logit error %.2g (load %.2f s)\n", model_path,
                (unsigned long long)info->images, plan->n_inputs, plan->depth, plan->est_error,
                t_load);
    progress_ctx pctx = {plan, quiet};
    hnn_exec_opts o = {(int)threads, HNN_KERNEL_AUTO, on_step, &pctx};
    double t1 = ppnn_now();
    if ((st = hnn_batch_job_run(job, out, &o))) {
        cli_fail("infer", st);
        goto done;
    }
    double t_run = ppnn_now() - t1;
    printf("infer: %llu images in %.3f s of server compute (%.4f ms per image amortized), "
           "%.3f s total; result %s\n", (unsigned long long)info->images, t_run,
           1e3 * t_run / (double)info->images, ppnn_now() - t0, out);
    rc = 0;
done:
    hnn_batch_job_free(job);
    ckks_relin_key_free(&rk);
    ckks_params_free(params);
    nn_model_free(&m);
    return rc;
}
