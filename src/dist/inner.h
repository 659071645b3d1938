/* Internal helpers of the dist layer (not part of the public API). */
#ifndef PPNN_DIST_INNER_H
#define PPNN_DIST_INNER_H

#include "ppnn/dist.h"

/* Rank numbers are stored as uint32_t in the partition; 65536 ranks keep the per-step lists
 * (R x inputs) small. */
#define DIST_MAX_RANKS 65536u

#endif
