/* ppnn bench: benchmarks (not tests). `ppnn bench ckks`: single-thread CKKS operations;
 * `ppnn bench infer`: encrypted batch inference end to end (server, client, upload, memory). */
#include <getopt.h>
#include <string.h>

#include "bench_ckks.h"
#include "bench_dist.h"
#include "bench_infer.h"
#include "cli.h"
#include "ppnn/dist.h"
#include "ppnn/ckks.h"

static const char *usage_text =
    "usage: ppnn bench ckks [--logn 13] [--json]\n"
    "  Single-thread median microseconds of the CKKS operations at the top level of the\n"
    "  parameter set for N = 2^logn (13: preset n13, 14: preset n14).\n"
    "usage: ppnn bench infer [--params n13] [--arch cryptonets|deep] [--model M.ppnn]\n"
    "                        [--data mnist|fashion] [--count B] [--threads T] [--memory SIZE]\n"
    "                        [--scratch DIR] [--json]\n"
    "  Encrypted inference of one batch of B test images (default: all slots) with\n"
    "  element-wise packing, the server run as `ppnn infer` runs it (streamed batch file,\n"
    "  memory budget): server seconds per batch, amortized ms per image, per-step times, client\n"
    "  encryption time, upload bytes per image, peak RSS of the server phase, the schedule's\n"
    "  peak and bytes spilled, agreement with plaintext. Without --model the architecture gets\n"
    "  ReLU-fitted quadratics (the cost does not depend on the trained weights).\n"
    "  Under mpirun (mpirun -n R ppnn bench infer ... [--batches K] [--dist auto|model|data]):\n"
    "  the server over R ranks (K copies of the batch in one file, default 1), with per-rank\n"
    "  compute, communication and CPU seconds, bytes sent/received per stage, peak RSS.\n"
    "usage: ppnn bench partition [--params n13] [--arch cryptonets] [--ranks 2,4,8]\n"
    "  No MPI needed: how the model splits over R ranks (JSON): bytes each rank sends and\n"
    "  receives per stage, its multiply-adds, its peak memory estimate (docs/scaling.md).\n";

static int bench_ckks_cmd(size_t logn, int json)
{
    double us[BENCH_CKKS_NOPS];
    ckks_params *p = NULL;
    ppnn_status st = bench_ckks(us, &p, (unsigned)logn);
    if (st)
        return cli_fail("bench", st);
    if (json) {
        printf("{\"logn\": %u, \"n\": %zu, \"primes\": [", p->logn, p->n);
        for (size_t i = 0; i < p->nq; i++)
            printf("%s%llu", i ? ", " : "", (unsigned long long)p->q[i]);
        printf("], \"special_prime\": %llu, \"logqp\": %u, \"threads\": 1",
               (unsigned long long)p->p, p->logqp);
        for (int i = 0; i < BENCH_CKKS_NOPS; i++)
            printf(", \"%s\": %.1f", bench_ckks_ops[i], us[i]);
        printf("}\n");
    } else {
        printf("CKKS N = %zu, %zu primes + P, log2(Q*P) = %u, single thread, top level\n", p->n,
               p->nq, p->logqp);
        for (int i = 0; i < BENCH_CKKS_NOPS; i++)
            printf("  %-12s %10.1f us\n", bench_ckks_ops[i], us[i]);
    }
    ckks_params_free(p);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    size_t logn = 13, count = 0, threads = 0, batches = 1, ranks[16] = {2}, nranks = 1;
    int dist = DIST_AUTO;
    const char *preset = "n13", *arch = "cryptonets", *model = NULL, *data = "mnist";
    const char *scratch = NULL;
    uint64_t memory = 0;
    int json = 0;
    static const struct option opts[] = {
        {"logn", 1, 0, 'l'},  {"json", 0, 0, 'j'},    {"params", 1, 0, 'p'}, {"arch", 1, 0, 'a'},
        {"count", 1, 0, 'n'}, {"threads", 1, 0, 't'}, {"model", 1, 0, 'm'},  {"data", 1, 0, 'd'},
        {"memory", 1, 0, 'M'}, {"scratch", 1, 0, 'S'}, {"help", 0, 0, 'h'},  {"dist", 1, 0, 'D'},
        {"batches", 1, 0, 'B'}, {"ranks", 1, 0, 'R'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (cli_parse_size("bench", "--logn", optarg, CKKS_MIN_LOGN, CKKS_MAX_LOGN, &logn))
                return 2;
            break;
        case 'j': json = 1; break;
        case 'p': preset = optarg; break;
        case 'a': arch = optarg; break;
        case 'm': model = optarg; break;
        case 'd': data = optarg; break;
        case 'S': scratch = optarg; break;
        case 'M':
            if (cli_parse_bytes("bench", "--memory", optarg, &memory))
                return 2;
            break;
        case 'n':
            if (cli_parse_size("bench", "--count", optarg, 1, 1u << 20, &count))
                return 2;
            break;
        case 't':
            if (cli_parse_size("bench", "--threads", optarg, 1, 1024, &threads))
                return 2;
            break;
        case 'D':
            if ((dist = dist_mode_parse(optarg)) < 0)
                return cli_error("bench", "--dist must be auto, model or data, not '%s'", optarg);
            break;
        case 'B':
            if (cli_parse_size("bench", "--batches", optarg, 1, 4096, &batches))
                return 2;
            break;
        case 'R':
            nranks = 0;
            for (char *tok = strtok(optarg, ","); tok; tok = strtok(NULL, ",")) {
                if (nranks == 16)
                    return cli_error("bench", "--ranks: at most 16 values");
                if (cli_parse_size("bench", "--ranks", tok, 1, 65536, &ranks[nranks++]))
                    return 2;
            }
            if (!nranks)
                return cli_error("bench", "--ranks needs a list such as 2,4,8");
            break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind + 1 != argc) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (!strcmp(argv[optind], "ckks"))
        return bench_ckks_cmd(logn, json);
    if (!strcmp(argv[optind], "partition")) {
        ppnn_status pst = bench_partition(preset, arch, ranks, nranks, stdout);
        return pst ? cli_fail("bench", pst) : 0;
    }
    if (strcmp(argv[optind], "infer") != 0)
        return cli_error("bench", "unknown benchmark '%s' (ckks, infer or partition)",
                         argv[optind]);
    ckks_spec spec;
    ppnn_status st = ckks_preset(&spec, preset);
    if (st)
        return cli_fail("bench", st);
    if (!count)
        count = (size_t)1 << (spec.logn - 1);
    if (dist_launched()) {
        bench_dist_opts d = {preset, arch, count, batches, (int)threads, dist, json};
        return (st = bench_dist(&d, stdout)) ? cli_fail("bench", st) : 0;
    }
    bench_infer_result r;
    bench_infer_opts bo = {preset, arch, model, data, count, (int)threads, memory, scratch,
                           NULL, NULL};
    if ((st = bench_infer(&r, &bo)))
        return cli_fail("bench", st);
    if (json)
        bench_infer_json(stdout, &r);
    else
        bench_infer_print(stdout, &r);
    return 0;
}
