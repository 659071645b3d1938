/* ppnn serve: the network service (src/serve/, docs/service.md), and its token management. */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "ppnn/serve.h"

static const char *usage_text =
    "usage: ppnn serve --models DIR --state DIR --listen ADDR:PORT [--tls-cert C --tls-key K]\n"
    "                  [--plain-http] [--workers W] [--max-queue Q] [--threads T]\n"
    "                  [--result-ttl SECONDS]\n"
    "       ppnn serve token add NAME --state DIR    (prints the new token once)\n"
    "       ppnn serve token revoke NAME --state DIR\n"
    "       ppnn serve token list --state DIR\n"
    "Serves DIR/<name>.ppnn models over HTTPS (docs/service.md). Jobs, keys and results live in\n"
    "the state directory and survive restarts. Defaults: --workers 1 --max-queue 16\n"
    "--result-ttl 3600; --threads 0 = cores / workers. --plain-http (no TLS) is accepted on a\n"
    "loopback address only. --workers 0 accepts and queues jobs without running them.\n"
    "PORT 0 picks a free port; the address is printed on stderr (\"listening on ...\").\n";

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void print_client(void *ctx, const char *name, double created, size_t jobs)
{
    (void)ctx;
    char when[32];
    time_t t = (time_t)created;
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
    printf("%-24s created %s, %zu jobs\n", name, when, jobs);
}

static int cmd_token(int argc, char **argv)
{
    const char *state = NULL;
    static const struct option opts[] = {{"state", 1, 0, 's'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': state = optarg; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (!state)
        return cli_error("serve token", "--state is required");
    int rest = argc - optind;
    const char *verb = rest > 0 ? argv[optind] : "";
    ppnn_status st;
    if (!strcmp(verb, "add") && rest == 2) {
        char token[SRV_TOKEN_CHARS + 1];
        if ((st = srv_token_add(token, state, argv[optind + 1])))
            return cli_fail("serve token", st);
        printf("%s\n", token);
        fprintf(stderr, "serve token: client '%s' added; this token is shown once (only its "
                        "hash is stored)\n", argv[optind + 1]);
        return 0;
    }
    if (!strcmp(verb, "revoke") && rest == 2) {
        if ((st = srv_token_revoke(state, argv[optind + 1])))
            return cli_fail("serve token", st);
        return 0;
    }
    if (!strcmp(verb, "list") && rest == 1) {
        if ((st = srv_token_list(state, print_client, NULL)))
            return cli_fail("serve token", st);
        return 0;
    }
    return cli_error("serve token", "expected: add NAME | revoke NAME | list");
}

int cmd_serve(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "token"))
        return cmd_token(argc - 1, argv + 1);
    srv_config cfg = {0};
    cfg.workers = 1, cfg.max_queue = 16, cfg.result_ttl = 3600, cfg.log = stderr;
    static const struct option opts[] = {
        {"models", 1, 0, 'm'},   {"state", 1, 0, 's'},     {"listen", 1, 0, 'l'},
        {"tls-cert", 1, 0, 'c'}, {"tls-key", 1, 0, 'k'},   {"plain-http", 0, 0, 'p'},
        {"workers", 1, 0, 'w'},  {"max-queue", 1, 0, 'q'}, {"threads", 1, 0, 't'},
        {"result-ttl", 1, 0, 'r'}, {"help", 0, 0, 'h'},    {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'm': cfg.models_dir = optarg; break;
        case 's': cfg.state_dir = optarg; break;
        case 'l': cfg.listen = optarg; break;
        case 'c': cfg.tls_cert = optarg; break;
        case 'k': cfg.tls_key = optarg; break;
        case 'p': cfg.plain_http = 1; break;
        case 'w':
            if (cli_parse_size("serve", "--workers", optarg, 0, 64, &cfg.workers))
                return 1;
            break;
        case 'q':
            if (cli_parse_size("serve", "--max-queue", optarg, 1, 100000, &cfg.max_queue))
                return 1;
            break;
        case 't':
            if (cli_parse_size("serve", "--threads", optarg, 0, 1024, &cfg.threads))
                return 1;
            break;
        case 'r':
            if (cli_parse_double("serve", "--result-ttl", optarg, 0, 1e9, &cfg.result_ttl))
                return 1;
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind != argc)
        return cli_error("serve", "unexpected argument '%s'", argv[optind]);
    if (!cfg.models_dir || !cfg.state_dir || !cfg.listen)
        return cli_error("serve", "--models, --state and --listen are required");
    if (cfg.plain_http && (cfg.tls_cert || cfg.tls_key))
        return cli_error("serve", "--plain-http and --tls-cert/--tls-key exclude each other");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A server runs job after job of the same shapes. main.c's fixed mmap threshold returns
     * every ciphertext buffer to the kernel when a job's buffer pool is freed, so each job
     * faulted its whole working set in afresh (CryptoNets n13: 170 k minor faults, ~0.3 s of
     * system time per batch). Here the buffers come from malloc's arenas (a threshold above
     * the largest ciphertext of a served preset, n14: 3 x 16 rows x 2^14 x 8 B = 6 MiB) and
     * stay there from one job to the next: only the first job of a run faults. The pool's
     * size classes keep the pattern regular (CryptoNets: peak RSS +12 % over four jobs); the
     * workers give the memory back when the queue runs empty (srv_pool, malloc_trim). */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
    ppnn_status st = srv_run(&cfg, &stop_flag);
    return st ? cli_fail("serve", st) : 0;
}
