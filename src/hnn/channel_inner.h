/* Internal: the compiled channel-wise plan (src/hnn/channel.c builds it, channel_eval.c runs
 * it). Kept apart from hnn/inner.h, which belongs to the element-wise packing. */
#ifndef PPNN_HNN_CHANNEL_INNER_H
#define PPNN_HNN_CHANNEL_INNER_H

#include "ppnn/hnn.h"

typedef enum { CH_STEP_CONV = 0, CH_STEP_ACT = 1, CH_STEP_DENSE = 2 } ch_step_kind;

/* One homomorphic step. Every step consumes exactly one level (input at `level`, output at
 * level - 1) and ends with one rescale.
 *   CONV, DENSE (linear, baby-step giant-step form):
 *       out = sum_g rot( sum_b pt[g*n1+b] (.) rot(x, baby[b]), giant[g] )
 *       then out += rot(out, m*2^t) while m*2^t < period (DENSE only), then + add (bias).
 *     The plaintexts are stored pre-rotated right by giant[g], so that the giant rotation
 *     brings them back: rot(pt' (.) rot(x, b), g) = pt (.) rot(x, b + g).
 *     CONV k x k: baby = column offsets kx - pad, giant = row offsets (ky - pad) * W: 2(k-1)
 *     rotations instead of k^2 - 1. DENSE: baby = 0..n1-1, giant = g*n1 (extended diagonals).
 *   ACT: out = (x + add)^2, relinearized (add = masked beta). */
typedef struct ch_step {
    ch_step_kind kind;
    size_t layer; /* index of the model layer (messages) */
    size_t level; /* level of the step's input */
    size_t n1, n2;
    int *baby, *giant;   /* n1 and n2 rotation steps (0 = none) */
    ckks_plaintext *pt;  /* n2 * n1 plaintexts */
    size_t m, period;    /* DENSE reduction; CONV: m = period (none) */
    ckks_plaintext add;  /* CONV/DENSE: bias at the product scale; ACT: beta */
} ch_step;

struct hnn_channel_plan {
    const ckks_params *params;
    size_t top_level;    /* level of the client's ciphertext */
    double in_scale;     /* scale of the client's ciphertext */
    size_t in_numel;     /* values per image */
    size_t reps;         /* copies of the image (first conv's output channels, else 1) */
    size_t frame;        /* slots per copy (= in_numel) */
    size_t nclasses;
    size_t nsteps;
    ch_step steps[NN_MAX_LAYERS];
    int *rotations;      /* distinct steps, sorted */
    size_t nrotations;
};

#endif
