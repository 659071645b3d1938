/* Internal helpers of the dist layer (not part of the public API). */
#ifndef PPNN_DIST_INNER_H
#define PPNN_DIST_INNER_H

#include "ppnn/dist.h"

/* Rank numbers are stored as uint32_t in the partition; 65536 ranks keep the per-step lists
 * (R x inputs) small. */
#define DIST_MAX_RANKS 65536u

/* The schedule a rank runs its share plan sp (dist_share_plan) with, on a ring of degree n in
 * a job of nranks ranks: fused tiles, half the single process's on two ranks or more (see
 * share.c), under budget bytes (0: none); streamed: the share reads its inputs from a file. */
PPNN_MUST_CHECK ppnn_status _dist_share_schedule(hnn_schedule **out, const hnn_plan *sp,
                                                 size_t n, size_t nranks, uint64_t budget,
                                                 int streamed);

#endif
