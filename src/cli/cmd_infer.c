/* ppnn infer: server side. Reads ONLY the evaluation keys (relin.key) — never secret.key — the
 * model and the client's encrypted batch file; compiles the model for the keys' parameters and
 * schedules it for the memory budget (refusing models that do not fit before doing any work),
 * then runs every batch with element-wise packing through hnn_infer_file and writes the
 * encrypted logits. */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
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
    "                  [--memory SIZE] [--scratch DIR] [--no-spill] [--quiet]\n"
    "Server side: evaluates the model on an encrypted batch file (element-wise packing, no\n"
    "rotations; every batch of a multi-batch file) with KEYDIR/relin.key only; secret.key is\n"
    "neither needed nor read.\n"
    "  --memory SIZE  memory for the run (K/M/G suffixes; default 60 %% of the available\n"
    "                 memory): the executor streams the batch file and runs each layer in\n"
    "                 tiles that fit; refused with the minimum when it cannot\n"
    "  --scratch DIR  where to spill layers that do not fit even in tiles (default: the\n"
    "                 directory of --out); the scratch file is removed on every exit\n"
    "  --no-spill     refuse rather than spill\n"
    "  --force-spill  testing: spill every layer's outputs to the scratch directory\n"
    "--packing element (the default), channel or auto: channel-wise packing (one ciphertext\n"
    "per image) needs KEYDIR/galois.key too (see --packing channel --help); auto follows the\n"
    "packing the batch file records (encrypt decided it) and prints it.\n"
    "Under mpirun (mpirun -n R ppnn infer ...) the work is spread over R ranks: rank 0 reads\n"
    "the files and writes the result; --memory is per rank; --dist auto|model|data (default\n"
    "auto: data-parallel with at least R batches, else model-parallel); --dist-read\n"
    "auto|shared|root (default auto: every rank reads its own share when all ranks see the same\n"
    "file, else rank 0 reads and sends). docs/scaling.md.\n";

typedef struct progress_ctx {
    const hnn_plan *plan;
    const char *model;
    int quiet, started;
} progress_ctx;

static void on_progress(void *vctx, const hnn_progress *pr)
{
    progress_ctx *ctx = vctx;
    if (ctx->quiet)
        return;
    if (!ctx->started) { /* after every check passed: refusals stay one line */
        ctx->started = 1;
        fprintf(stderr, "infer: %s, depth %zu, logit error: estimate %.2g (high probability), "
                        "worst-case bound %.2g, %zu batch%s\n", ctx->model, ctx->plan->depth,
                ctx->plan->est_error, ctx->plan->bound_error, pr->nbatches,
                pr->nbatches == 1 ? "" : "es");
    }
    if (!pr->step)
        return;
    const hnn_step *s = pr->step;
    fprintf(stderr, "infer: batch %zu/%zu step %zu/%zu %-8s layer %zu: %5zu -> %5zu "
                    "ciphertexts, level %zu -> %zu, %.3f s\n", pr->batch + 1, pr->nbatches,
            pr->step_index + 1, ctx->plan->nsteps, s->name, s->layer, s->n_in, s->n_out,
            s->level_in, s->level_in - s->drop, pr->step_seconds);
}

/* SIGINT / SIGTERM: the run stops at the next tile, the partial result is removed (atomic
 * write aborted) and the scratch file is gone with its descriptor. A second signal kills. */
static volatile int interrupted;
static void on_signal(int sig)
{
    interrupted = sig;
    signal(sig, SIG_DFL);
}

int cmd_infer(int argc, char **argv)
{
    int packing, is_auto;
    if (cli_dispatch_packing("infer", argc, argv, &packing, &is_auto))
        return 1;
    if (packing == CLI_PACK_CHANNEL)
        return cli_channel_infer(argc, argv, is_auto);
    const char *model_path = NULL, *keys = NULL, *in = NULL, *out = NULL, *scratch = NULL;
    size_t threads = 0;
    uint64_t memory = 0;
    int quiet = 0, no_spill = 0, force_spill = 0, dist = -1, dread = -1;
    static const struct option opts[] = {{"model", 1, 0, 'm'},   {"keys", 1, 0, 'k'},
                                         {"in", 1, 0, 'i'},      {"out", 1, 0, 'O'},
                                         {"threads", 1, 0, 't'}, {"quiet", 0, 0, 'q'},
                                         {"memory", 1, 0, 'M'},  {"scratch", 1, 0, 'S'},
                                         {"no-spill", 0, 0, 'N'}, {"force-spill", 0, 0, 'F'},
                                         {"packing", 1, 0, 'P'}, {"dist", 1, 0, 'D'},
                                         {"dist-read", 1, 0, 'R'}, {"help", 0, 0, 'h'},
                                         {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'k': keys = optarg; break;
        case 'i': in = optarg; break;
        case 'O': out = optarg; break;
        case 'S': scratch = optarg; break;
        case 'N': no_spill = 1; break;
        case 'F': force_spill = 1; break;
        case 't':
            if (cli_parse_size("infer", "--threads", optarg, 1, 1024, &threads))
                return 1;
            break;
        case 'M':
            if (cli_parse_bytes("infer", "--memory", optarg, &memory))
                return 1;
            break;
        case 'q': quiet = 1; break;
        case 'P': break; /* element or auto on an element-wise file: cli_dispatch_packing */
        case 'D':
            if ((dist = dist_mode_parse(optarg)) < 0)
                return cli_error("infer", "--dist must be auto, model or data, not '%s'", optarg);
            break;
        case 'R':
            if ((dread = dist_read_parse(optarg)) < 0)
                return cli_error("infer", "--dist-read must be auto, shared or root, not '%s'",
                                 optarg);
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: return cli_usage_error("infer", argc, argv);
        }
    }
    if (optind != argc)
        return cli_error("infer", "unexpected argument '%s'", argv[optind]);
    if (!model_path || !keys || !in || !out)
        return cli_error("infer", "--model, --keys, --in and --out are required");
    if (dist_launched()) {
        cli_infer_args a = {model_path, keys, in, out, (int)threads, quiet,
                            dist < 0 ? DIST_AUTO : dist, memory,
                            dread < 0 ? DIST_READ_AUTO : dread};
        return cli_infer_dist(&a);
    }
    if (dist >= 0 || dread >= 0)
        return cli_error("infer", "--dist and --dist-read apply under mpirun only (mpirun -n R "
                         "ppnn infer ...)");
    if (scratch) {
        struct stat sb;
        if (stat(scratch, &sb) != 0 || !S_ISDIR(sb.st_mode))
            return cli_error("infer", "--scratch %s: not a directory", scratch);
    }

    double t0 = ppnn_now();
    nn_model m;
    ppnn_status st = nn_model_load(&m, model_path);
    if (st)
        return cli_fail("infer", st);
    char path[PATH_MAX];
    ckks_params *params = NULL;
    ckks_relin_key rk;
    uint8_t rk_id[CKKS_KEY_ID_BYTES];
    memset(&rk, 0, sizeof rk);
    int rc = 1;
    hnn_plan *plan = NULL;
    if ((st = cli_key_path(path, sizeof path, keys, CLI_RELIN_KEY)) ||
        (st = ckks_relin_key_load(&rk, &params, rk_id, path))) {
        cli_fail("infer", st);
        goto done;
    }
    /* Plan and schedule first: a model that does not fit the levels or the memory is refused
     * before the batch is even opened. */
    if ((st = hnn_plan_for_params(&plan, &m, params, NULL))) {
        cli_fail("infer", st);
        goto done;
    }
    if (cli_check_output("infer", out, CKKS_FILE_KIND_BATCH))
        goto done;
    if (is_auto)
        cli_announce_packing("infer", in, CLI_PACK_ELEMENT);
    progress_ctx pctx = {plan, model_path, quiet, 0};
    hnn_file_opts fo = {.threads = (int)threads, .memory_bytes = memory, .scratch_dir = scratch,
                        .allow_spill = !no_spill, .progress = on_progress,
                        .progress_ctx = &pctx, .cancel = &interrupted};
    fo.sched.force_spill = force_spill && !no_spill;
    const uint32_t shape[3] = {m.input.c, m.input.h, m.input.w};
    hnn_file_stats stats;
    void (*old_int)(int) = signal(SIGINT, on_signal);
    void (*old_term)(int) = signal(SIGTERM, on_signal);
    st = hnn_infer_file(&stats, out, in, plan, shape, &rk, rk_id, &fo);
    signal(SIGINT, old_int);
    signal(SIGTERM, old_term);
    if (interrupted) {
        cli_error("infer", "interrupted by signal %d; no result written", interrupted);
        rc = 128 + interrupted;
        goto done;
    }
    if (st) {
        cli_fail("infer", st);
        goto done;
    }
    printf("infer: %llu images in %zu batch%s in %.3f s of server time (%.4f ms per image "
           "amortized), %.3f s total; schedule peak %.0f MB of %.0f MB budget, %.0f MB spilled; "
           "result %s\n", (unsigned long long)stats.images, stats.nbatches,
           stats.nbatches == 1 ? "" : "es", stats.server_seconds,
           1e3 * stats.server_seconds / (double)stats.images, ppnn_now() - t0,
           (double)stats.schedule_peak_bytes / 1e6, (double)stats.budget_bytes / 1e6,
           (double)stats.spill_bytes / 1e6, out);
    rc = 0;
done:
    hnn_plan_free(plan);
    ckks_relin_key_free(&rk);
    ckks_params_free(params);
    nn_model_free(&m);
    return rc;
}
