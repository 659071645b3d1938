/* Internal: the compiled channel-wise plan (src/hnn/channel.c builds it, channel_eval.c runs
 * it). Kept apart from hnn/inner.h, which belongs to the element-wise packing. */
#ifndef PPNN_HNN_CHANNEL_INNER_H
#define PPNN_HNN_CHANNEL_INNER_H

#include "ppnn/hnn.h"

typedef enum { CH_STEP_CONV = 0, CH_STEP_ACT = 1, CH_STEP_DENSE = 2 } ch_step_kind;

/* One homomorphic step. Every step consumes exactly one level (input at `level`, output at
 * level - 1) and ends with one rescale.
 *   CONV:  out = sum_t rot(x, rot[t]) (.) pt[t] + add            (nterms taps)
 *   ACT:   out = (x + add)^2, relinearized                       (add = masked beta)
 *   DENSE: baby steps rot(x, b), b < n1; out = sum_g rot(sum_b rot-by-(-g*n1)-diagonal pt[g*n1+b]
 *          (.) rot(x, b), g*n1); then out += rot(out, m*2^t) while m*2^t < period; + add. */
typedef struct ch_step {
    ch_step_kind kind;
    size_t layer; /* index of the model layer (messages) */
    size_t level; /* level of the step's input */
    size_t nterms;
    int *rot;            /* CONV: rotation of each tap */
    ckks_plaintext *pt;  /* CONV: masks; DENSE: n1*n2 diagonals */
    size_t n1, n2, m, period;
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
