/* Operation costs for the packing cost model (`ppnn bench costs`, hnn_op_costs). */
#ifndef PPNN_BENCH_COSTS_H
#define PPNN_BENCH_COSTS_H

#include "ppnn/hnn.h"

/* Measures every field of hnn_op_costs, single thread, medians of `reps` runs, at the top level
 * of the preset for N = 2^logn (13: n13, 14: n14). */
PPNN_MUST_CHECK ppnn_status bench_costs(hnn_op_costs *c, unsigned logn, int reps);

#endif
