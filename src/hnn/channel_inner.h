/* Internal: the compiled channel-wise plan (src/hnn/channel.c builds it, channel_eval.c runs
 * it). Kept apart from hnn/inner.h, which belongs to the element-wise packing.
 *
 * Layout. One image is a small set of ciphertexts. Every slot vector is cut into `blocks`
 * frames of `frame` slots; a channel's H x W map lies in one frame at a spatial stride
 * (sy, sx) — (W, 1) for the image, multiplied by the stride of every conv/pool since (outputs
 * stay at the slot of their top-left input). A tensor with more channels than frames spans
 * several ciphertexts (channel c in ciphertext c / blocks, frame c % blocks). The client writes
 * the image into `reps` frames (all of them for a 1-channel image read by a conv, so the first
 * conv needs no channel rotation). After a dense layer the values lie at slots 0..m-1 and
 * repeat with period m. */
#ifndef PPNN_HNN_CHANNEL_INNER_H
#define PPNN_HNN_CHANNEL_INNER_H

#include "ppnn/hnn.h"

typedef enum {
    CH_STEP_LINEAR = 0, /* conv or dense: one level */
    CH_STEP_ACT = 1,    /* (x + beta)^2, relinearized: one level */
    CH_STEP_POOL = 2,   /* window sums by rotations: no level (1/k^2 folded forward) */
    CH_STEP_SCALE = 3,  /* x (.) a, per-slot multipliers before a pool: one level */
} ch_step_kind;

/* One homomorphic step on nin input ciphertexts, writing nout.
 *   LINEAR: out[h] = R( sum_gi rot( sum_g sum_b pt[idx(h,gi,g,b)] (.) rot(in[g], baby[b]),
 *                                   giant[gi] ) ) + add[h],   idx = ((h*n2 + gi)*nin + g)*n1 + b
 *     with R the rotate-and-add reduction out += rot(out, m*2^t) while m*2^t < period (dense
 *     outputs only; m = period: none). The plaintexts are stored pre-rotated right by
 *     giant[gi], so rot(pt' (.) rot(x, b), g) = pt (.) rot(x, b + g). The baby rotations of an
 *     input are hoisted (ckks_rotate_hoisted): one decomposition for all of them. A plaintext
 *     with nz[idx] = 0 is all zero and skipped. Then rescale.
 *     conv: baby = spatial tap offsets, giant = frame offsets between input and output channel
 *     (or baby = column taps, giant = row taps when no channel moves); dense: extended
 *     diagonals, baby = 0..n1-1, giant = gi*n1 (Halevi-Shoup, baby-step giant-step).
 *   ACT: out[h] = (in[h] + add[h])^2, relinearized (add = masked beta), then rescale.
 *   POOL: out[h] = sum_gi rot( sum_b rot(in[h], baby[b]), giant[gi] ) (nin = nout; row and
 *     column offsets of the window); no rescale.
 *   SCALE: out[h] = in[h] (.) pt[h], then rescale. */
typedef struct ch_step {
    ch_step_kind kind;
    size_t layer; /* index of the model layer (messages) */
    size_t level; /* level of the step's input */
    size_t nin, nout;
    size_t n1, n2;
    int *baby, *giant;   /* n1 and n2 rotation steps (0 = none) */
    ckks_plaintext *pt;  /* LINEAR: nout*n2*nin*n1; SCALE: nout */
    uint8_t *nz;         /* LINEAR: which pt are non-zero */
    size_t m, period;    /* LINEAR reduction (m = period: none) */
    ckks_plaintext *add; /* nout: LINEAR bias (product scale); ACT beta */
} ch_step;

/* Operation counts of one step: non-zero baby and giant steps, plaintext products, giant
 * rotations actually applied (non-zero step with some non-zero product) and reduction
 * rotations, per image (channel.c). */
typedef struct ch_counts {
    size_t babies, giants, products, giant_rotations, reductions;
} ch_counts;
void _ch_step_counts(ch_counts *c, const ch_step *s);

#define CH_MAX_STEPS (2 * NN_MAX_LAYERS)

struct hnn_channel_plan {
    const ckks_params *params;
    size_t top_level;    /* level of the client's ciphertext */
    double in_scale;     /* scale of the client's ciphertext */
    size_t in_c, in_hw;  /* input channels, values per channel */
    size_t reps;         /* copies of the image the client writes */
    size_t frame;        /* slots per frame */
    size_t nclasses;
    size_t max_cts;      /* most ciphertexts alive in one tensor */
    size_t nsteps;
    ch_step steps[CH_MAX_STEPS];
    int *rotations;      /* distinct steps, sorted */
    size_t nrotations;
};

#endif
