/* ppnn submit: the client of `ppnn serve` (keys once, upload, progress, result). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "ppnn/serve.h"

static const char *usage_text =
    "usage: ppnn submit --server URL --token T --keys KEYDIR --model NAME --in batch.ct\n"
    "                   --out result.ct [--job ID] [--cacert CA.pem] [--retries N]\n"
    "                   [--poll SECONDS] [--quiet] [--packing element|auto]\n"
    "Registers KEYDIR's relin.key (and galois.key if present) unless the server has them,\n"
    "uploads the batch, shows the job's progress and downloads the encrypted result (checked\n"
    "to be logits under the same keys). --job ID resumes waiting for a job submitted before.\n"
    "The token may also come from the environment (PPNN_TOKEN). Requests are retried with\n"
    "back-off on 429, 5xx and lost connections (--retries, default 8 attempts each).\n"
    "The service evaluates element-wise batches only: a channel-wise batch (encrypt --packing\n"
    "channel, or auto for few images) is refused before anything is uploaded; encrypt for the\n"
    "service with --packing element. --packing auto follows the file and says so.\n";

typedef struct ui {
    cli_progress bar;
    int started, quiet;
} ui;

static void on_status(void *ctx, const srv_status *s)
{
    ui *u = ctx;
    if (u->quiet)
        return;
    if (!u->started) {
        cli_progress_start(&u->bar, "job", 1000);
        u->started = 1;
    }
    char extra[96];
    if (!strcmp(s->state, "running"))
        snprintf(extra, sizeof extra, " step %zu/%zu %s (layer %zu)", s->step, s->steps,
                 s->step_name, s->layer);
    else if (!strcmp(s->state, "queued"))
        snprintf(extra, sizeof extra, " queued, %zu ahead", s->queue_position);
    else
        snprintf(extra, sizeof extra, " %s", s->state);
    if (!strcmp(s->state, "done"))
        cli_progress_finish(&u->bar, extra);
    else
        cli_progress_update(&u->bar, (size_t)(1000 * s->progress), extra);
}

static void on_event(void *ctx, const char *msg)
{
    ui *u = ctx;
    if (!u->quiet)
        fprintf(stderr, "submit: %s\n", msg);
}

int cmd_submit(int argc, char **argv)
{
    const char *server = NULL, *token = getenv("PPNN_TOKEN"), *keys = NULL, *model = NULL;
    const char *in = NULL, *out = NULL, *cacert = NULL, *job = NULL;
    size_t retries = 8;
    double poll = 1;
    ui u = {0};
    static const struct option opts[] = {
        {"server", 1, 0, 's'}, {"token", 1, 0, 'T'}, {"keys", 1, 0, 'k'},
        {"model", 1, 0, 'm'},  {"in", 1, 0, 'i'},    {"out", 1, 0, 'O'},
        {"job", 1, 0, 'j'},    {"cacert", 1, 0, 'c'}, {"retries", 1, 0, 'r'},
        {"poll", 1, 0, 'p'},   {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"packing", 1, 0, 'P'}, {0, 0, 0, 0}};
    int packing = -1; /* --packing: CLI_PACK_* (-1: not given) */
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': server = optarg; break;
        case 'T': token = optarg; break;
        case 'k': keys = optarg; break;
        case 'm': model = optarg; break;
        case 'i': in = optarg; break;
        case 'O': out = optarg; break;
        case 'j': job = optarg; break;
        case 'c': cacert = optarg; break;
        case 'r':
            if (cli_parse_size("submit", "--retries", optarg, 1, 1000, &retries))
                return 1;
            break;
        case 'p':
            if (cli_parse_double("submit", "--poll", optarg, 0.01, 3600, &poll))
                return 1;
            break;
        case 'q': u.quiet = 1; break;
        case 'P':
            if (cli_parse_packing("submit", optarg, &packing))
                return 1;
            if (packing == CLI_PACK_CHANNEL)
                return cli_error("submit", "--packing channel: the service (ppnn serve) "
                                 "evaluates element-wise batches only");
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc)
        return cli_error("submit", "unexpected argument '%s'", argv[optind]);
    if (!server || !token || !keys || !out || (!job && (!model || !in)))
        return cli_error("submit", "--server, --token, --keys, --out and either --model and "
                         "--in or --job are required");
    char job_id[33] = {0};
    if (job) {
        if (strlen(job) != 32)
            return cli_error("submit", "--job: '%s' is not a job id (32 hex digits)", job);
        memcpy(job_id, job, 33);
    }
    /* The service runs element-wise packing only (no Galois-key evaluation path): refuse a
     * channel-wise batch here, before its upload, rather than as a failed job. */
    int recorded;
    if (in && !job) {
        if (cli_file_packing("submit", in, &recorded))
            return 1;
        if (recorded == CLI_PACK_CHANNEL)
            return cli_error("submit", "%s is channel-wise; the service (ppnn serve) evaluates "
                             "element-wise batches only: encrypt it with --packing element", in);
        if (packing == CLI_PACK_AUTO)
            fprintf(stderr, "submit: packing: element-wise (recorded in %s; the service runs "
                    "element-wise packing only)\n", in);
    }
    srv_client_opts o = {server, token, cacert, retries, poll, on_status, on_event, &u};
    ppnn_status st = srv_submit(job_id, &o, keys, model ? model : "", in, out);
    if (st)
        return cli_fail("submit", st);
    printf("submit: job %s done; result %s\n", job_id, out);
    return 0;
}
