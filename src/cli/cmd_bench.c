/* ppnn bench: micro-benchmarks (single thread). Today: `ppnn bench ckks`. */
#include <getopt.h>
#include <string.h>

#include "bench_ckks.h"
#include "cli.h"
#include "ppnn/ckks.h"

static const char *usage_text =
    "usage: ppnn bench ckks [--logn 13] [--json]\n"
    "  Single-thread median microseconds of the CKKS operations at the top level of the\n"
    "  parameter set for N = 2^logn (13: preset n13, 14: preset n14).\n";

int cmd_bench(int argc, char **argv)
{
    size_t logn = 13;
    int json = 0;
    static const struct option opts[] = {
        {"logn", 1, 0, 'l'}, {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l':
            if (cli_parse_size("bench", "--logn", optarg, CKKS_MIN_LOGN, CKKS_MAX_LOGN, &logn))
                return 2;
            break;
        case 'j': json = 1; break;
        case 'h': fputs(usage_text, stdout); return 0;
        default: fputs(usage_text, stderr); return 2;
        }
    }
    if (optind >= argc || strcmp(argv[optind], "ckks") != 0) {
        fputs(usage_text, stderr);
        return 2;
    }
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
