/* ppnn bench: benchmarks (not tests). `ppnn bench ckks`: single-thread CKKS operations;
 * `ppnn bench infer`: encrypted batch inference end to end (server, client, upload, memory). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "bench_ckks.h"
#include "bench_costs.h"
#include "bench_dist.h"
#include "bench_infer.h"
#include "cli.h"
#include "ppnn/dist.h"
#include "ppnn/ckks.h"

static const char *usage_text =
    "usage: ppnn bench ckks [--logn 13] [--json]\n"
    "  Single-thread median microseconds of the CKKS operations at the top level of the\n"
    "  parameter set for N = 2^logn (13: preset n13, 14: preset n14).\n"
    "usage: ppnn bench costs [--logn 13] [--json]\n"
    "  Single-thread seconds of the operations the packing cost model counts (linear-kernel\n"
    "  MACs, add, plaintext product, square, relinearize, rescale, rotate, hoisted rotate);\n"
    "  save the JSON and pass it as --costs FILE to choose packings with this machine's costs.\n"
    "usage: ppnn bench infer [--params n13] [--arch cryptonets|deep] [--model M.ppnn]\n"
    "                        [--data mnist|fashion] [--count B] [--threads T] [--memory SIZE]\n"
    "                        [--scratch DIR] [--json]\n"
    "  Encrypted inference of one batch of B test images (default: all slots) with\n"
    "  element-wise packing, the server run as `ppnn infer` runs it (streamed batch file,\n"
    "  memory budget): server seconds per batch, amortized ms per image, per-step times, client\n"
    "  encryption time (in memory, and encrypting + writing the batch file as `ppnn encrypt`\n"
    "  does), upload bytes per image, peak RSS of the server phase, the schedule's\n"
    "  peak and bytes spilled, agreement with plaintext. Without --model the architecture gets\n"
    "  ReLU-fitted quadratics (the cost does not depend on the trained weights).\n"
    "  Under mpirun (mpirun -n R ppnn bench infer ... [--batches K] [--dist auto|model|data]\n"
    "  [--dist-read auto|shared|root]):\n"
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
    int rc = 0;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        int ok = o != NULL;
        ok &= cJSON_AddNumberToObject(o, "logn", p->logn) != NULL;
        ok &= cJSON_AddNumberToObject(o, "n", (double)p->n) != NULL;
        cJSON *primes = cJSON_AddArrayToObject(o, "primes"); /* owned by o */
        for (size_t i = 0; ok && primes && i < p->nq; i++)
            ok &= cJSON_AddItemToArray(primes, cli_json_u64(p->q[i]));
        ok &= primes != NULL;
        ok &= cJSON_AddItemToObject(o, "special_prime", cli_json_u64(p->p));
        ok &= cJSON_AddNumberToObject(o, "logqp", p->logqp) != NULL;
        ok &= cJSON_AddNumberToObject(o, "threads", 1) != NULL;
        for (int i = 0; i < BENCH_CKKS_NOPS; i++) /* microseconds, 0.1 us resolution */
            ok &= cJSON_AddNumberToObject(o, bench_ckks_ops[i], round(10 * us[i]) / 10) != NULL;
        rc = cli_print_json("bench", o, ok);
    } else {
        printf("CKKS N = %zu, %zu primes + P, log2(Q*P) = %u, single thread, top level\n", p->n,
               p->nq, p->logqp);
        for (int i = 0; i < BENCH_CKKS_NOPS; i++)
            printf("  %-12s %10.1f us\n", bench_ckks_ops[i], us[i]);
    }
    ckks_params_free(p);
    return rc;
}

static int bench_costs_cmd(size_t logn, int json)
{
    hnn_op_costs c;
    ppnn_status st = bench_costs(&c, (unsigned)logn, 9);
    if (st)
        return cli_fail("bench", st);
    char *text = hnn_op_costs_json(&c);
    if (!text)
        return cli_fail("bench", ppnn_fail(PPNN_ERR_NOMEM, "out of memory"));
    if (json) {
        printf("%s\n", text);
    } else {
        printf("operation costs, N = 2^%u, %zu primes, single thread, top level\n", c.logn, c.nq);
        printf("  linear MAC dense %.3f ns, sparse %.3f ns\n", 1e9 * c.mac_dense,
               1e9 * c.mac_sparse);
        printf("  add %.1f us, mul_plain %.1f us, square %.1f us, relin %.1f us, rescale %.1f us\n",
               1e6 * c.add, 1e6 * c.mul_plain, 1e6 * c.square, 1e6 * c.relin, 1e6 * c.rescale);
        printf("  rotate %.1f us, hoisted rotate %.1f us\n", 1e6 * c.rotate,
               1e6 * c.rotate_hoisted);
    }
    free(text);
    return 0;
}

int cmd_bench(int argc, char **argv)
{
    size_t logn = 13, count = 0, threads = 0, batches = 1, ranks[16] = {2}, nranks = 1;
    int dist = DIST_AUTO, dread = DIST_READ_AUTO;
    const char *preset = "n13", *arch = "cryptonets", *model = NULL, *data = "mnist";
    const char *scratch = NULL;
    uint64_t memory = 0;
    int json = 0;
    static const struct option opts[] = {
        {"logn", 1, 0, 'l'},  {"json", 0, 0, 'j'},    {"params", 1, 0, 'p'}, {"arch", 1, 0, 'a'},
        {"count", 1, 0, 'n'}, {"threads", 1, 0, 't'}, {"model", 1, 0, 'm'},  {"data", 1, 0, 'd'},
        {"memory", 1, 0, 'M'}, {"scratch", 1, 0, 'S'}, {"help", 0, 0, 'h'},  {"dist", 1, 0, 'D'},
        {"dist-read", 1, 0, 'r'}, {"batches", 1, 0, 'B'}, {"ranks", 1, 0, 'R'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
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
        case 'r':
            if ((dread = dist_read_parse(optarg)) < 0)
                return cli_error("bench", "--dist-read must be auto, shared or root, not '%s'",
                                 optarg);
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
        default: return cli_usage_error("bench", argc, argv);
        }
    }
    if (optind + 1 != argc) {
        cli_error("bench", "expected one benchmark name: ckks, costs or infer (see 'ppnn bench --help')");
        return 2;
    }
    if (!strcmp(argv[optind], "ckks"))
        return bench_ckks_cmd(logn, json);
    if (!strcmp(argv[optind], "costs"))
        return bench_costs_cmd(logn, json);
    if (!strcmp(argv[optind], "partition")) {
        ppnn_status pst = bench_partition(preset, arch, ranks, nranks, stdout);
        return pst ? cli_fail("bench", pst) : 0;
    }
    if (strcmp(argv[optind], "infer") != 0)
        return cli_error("bench", "unknown benchmark '%s' (ckks, costs, infer or partition)",
                         argv[optind]);
    ckks_spec spec;
    ppnn_status st = ckks_preset(&spec, preset);
    if (st)
        return cli_fail("bench", st);
    if (!count)
        count = (size_t)1 << (spec.logn - 1);
    if (dist_launched()) {
        bench_dist_opts d = {preset, arch, count, batches, (int)threads, dist, dread, json};
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
