/* `mpirun -n R ppnn bench infer`: the inference benchmark over MPI ranks (issue 10). */
#ifndef PPNN_BENCH_DIST_H
#define PPNN_BENCH_DIST_H

#include <stdio.h>

#include "bench_infer.h"

typedef struct bench_dist_opts {
    const char *preset, *arch;
    size_t count;   /* images per batch */
    size_t batches; /* batches run (data-parallel: ranks take whole batches) */
    int threads;    /* OpenMP threads per rank */
    int mode;       /* dist_mode: auto, model, data */
    int read;       /* dist_read: auto, shared, root */
    int json;
} bench_dist_opts;

/* Collective: runs the benchmark on every rank of the job; rank 0 writes the report to f (one
 * JSON object with json: per-rank compute and communication seconds, bytes sent and received
 * per step, peak RSS, and the partition of every step). */
PPNN_MUST_CHECK ppnn_status bench_dist(const bench_dist_opts *o, FILE *f);

/* No MPI needed: the partition of the model bench infer measures for each R in ranks[], as one
 * JSON object: per stage and rank the bytes sent and received, the multiply-adds, activations
 * and finished outputs; per rank the peak estimate; the single-process peak. The inputs of the
 * scaling model in docs/scaling.md. */
PPNN_MUST_CHECK ppnn_status bench_partition(const char *preset, const char *arch,
                                            const size_t *ranks, size_t nranks, FILE *f);

#endif
