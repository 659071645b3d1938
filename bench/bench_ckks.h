/* CKKS micro-benchmarks for `ppnn bench ckks`. */
#ifndef PPNN_BENCH_CKKS_H
#define PPNN_BENCH_CKKS_H

#include <stdio.h>

#include "ppnn/util.h"

/* The operations timed, in output order (the JSON keys). */
#define BENCH_CKKS_NOPS 12
extern const char *const bench_ckks_ops[BENCH_CKKS_NOPS];

/* Median single-thread microseconds of each operation at N = 2^logn (13 -> preset n13,
 * 14 -> n14, 12/15/16 -> chains documented in bench_ckks.c), written to us[]. Also returns the
 * parameters used through *params_out (caller frees with ckks_params_free). */
struct ckks_params;
PPNN_MUST_CHECK ppnn_status bench_ckks(double us[BENCH_CKKS_NOPS], struct ckks_params **params_out,
                                       unsigned logn);

#endif
