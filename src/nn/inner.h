/* Internal helpers of the nn layer: layer kernels, workspace, losses, optimisers, seeded PRG. */
#ifndef PPNN_NN_INNER_H
#define PPNN_NN_INNER_H

#include "ppnn/nn.h"

/* ---- workspace -------------------------------------------------------------------------- */
struct nn_work {
    const nn_model *m;
    size_t max_batch, n;
    const float *input;   /* last forward input (not owned) */
    float **act;          /* act[i] = output of layer i, max_batch * numel(out) */
    float *g0, *g1;       /* gradient ping-pong, max_batch * largest tensor */
    float *col, *tmp;     /* conv scratch (im2col matrix, GEMM output) */
};

/* Gradient pointers of one layer inside a gradient vector laid out like nn_model.params. */
typedef struct nn_grads {
    float *weight, *bias, *coef;
} nn_grads;
nn_grads nn_layer_grads(const nn_model *m, const nn_layer *l, float *grad);

/* Scratch floats a layer needs for a batch of n (col, tmp). */
void nn_layer_scratch(const nn_layer *l, size_t n, size_t *col, size_t *tmp);

/* y = layer(x) for n images. col/tmp: scratch of nn_layer_scratch sizes. */
void nn_layer_forward(const nn_layer *l, float *y, const float *x, size_t n, float *col,
                      float *tmp);
/* Given dy = dL/dy, writes parameter gradients (overwriting) and, when dx != NULL, dx = dL/dx.
 * x and y are this layer's forward input and output. */
void nn_layer_backward(const nn_layer *l, float *dx, nn_grads g, const float *x, const float *y,
                       const float *dy, size_t n, float *col, float *tmp);

/* Backward through the whole model for the batch of the last nn_forward: dlogits -> grad
 * (nparams floats, overwritten). range_penalty/bounds: optional penalty on poly inputs
 * (bounds[i] for layer i; adds lambda * mean((|x| - bound)+^2) to the loss gradient). */
void nn_backward(nn_work *w, float *grad, const float *dlogits, double range_penalty,
                 const float *bounds);
/* Penalty value for the same definition (for the reported loss). */
double nn_range_penalty(const nn_work *w, double range_penalty, const float *bounds);

/* ---- losses: return the mean loss over n rows, write dL/dlogits (already / n) ----------- */
double nn_softmax_ce(float *dlogits, const float *logits, const uint8_t *labels, size_t n,
                     size_t k);
/* (1-alpha)*CE(student, y) + alpha*T^2*KL(softmax(teacher/T) || softmax(student/T)). */
double nn_kd_loss(float *dlogits, const float *logits, const float *teacher, const uint8_t *labels,
                  size_t n, size_t k, double temp, double alpha);
size_t nn_count_correct(const float *logits, const uint8_t *labels, size_t n, size_t k);

/* ---- pruning (prune.c) ------------------------------------------------------------------ */
/* Target sparsity at `step` of a cubic ramp to `target` over `ramp` steps (target after). */
double nn_prune_schedule(double target, size_t step, size_t ramp);
typedef struct nn_pruner {
    double target;   /* fraction of each hidden dense layer's weights pruned at the end */
    size_t ramp;     /* steps of the ramp (half of the training) */
    size_t every;    /* steps between mask updates during the ramp (a quarter epoch) */
    uint8_t *mask;   /* nparams flags, 1 = pruned (only hidden dense weights) */
    float *mag;      /* sort scratch */
} nn_pruner;
/* target in [0, 1); 0 disables pruning (no allocation). Fails when target > 0 and the model
 * has no dense layer before its classifier. */
PPNN_MUST_CHECK ppnn_status nn_pruner_init(nn_pruner *p, const nn_model *m, double target,
                                           size_t total_steps, size_t batches);
void nn_pruner_free(nn_pruner *p);
/* After the optimiser step numbered `step` (0-based): pruned weights back to 0, and on the
 * schedule's update steps the mask grows to nn_prune_schedule(target, step, ramp). */
void nn_pruner_apply(nn_pruner *p, nn_model *m, size_t step);

/* ---- optimisers ------------------------------------------------------------------------- */
typedef struct nn_optim {
    nn_optimizer kind;
    size_t n, t;
    float *m, *v;
    double beta1, beta2, eps, momentum;
} nn_optim;
PPNN_MUST_CHECK ppnn_status nn_optim_init(nn_optim *o, nn_optimizer kind, size_t n,
                                          double momentum);
void nn_optim_free(nn_optim *o);
/* One step; decay[i] != 0 marks parameters with decoupled weight decay (may be NULL). */
void nn_optim_step(nn_optim *o, float *params, const float *grad, double lr, double wd,
                   const uint8_t *decay);
/* Scales grad so its global L2 norm is at most max_norm; returns the norm before clipping. */
double nn_clip_grad(float *grad, size_t n, double max_norm);

/* ---- seeded PRG (libsodium randombytes_buf_deterministic) --------------------------------- */
typedef struct nn_rng {
    uint8_t key[32];
    uint64_t block;
    uint8_t buf[1024];
    size_t pos;
} nn_rng;
void nn_rng_seed(nn_rng *r, uint64_t seed, const char *purpose);
uint32_t nn_rng_u32(nn_rng *r);
/* Uniform in [0, bound) without modulo bias. */
uint32_t nn_rng_below(nn_rng *r, uint32_t bound);
/* Uniform float in [-1, 1). */
float nn_rng_sym(nn_rng *r);
void nn_rng_wipe(nn_rng *r);

/* ---- range statistics ------------------------------------------------------------------- */
#define NN_RANGE_BINS 4096
typedef struct nn_range_acc {
    double min, max, absmax;
    int pass;              /* 0: min/max, 1: histogram of |x| over [0, absmax] */
    uint64_t count;
    uint64_t hist[NN_RANGE_BINS];
} nn_range_acc;
void nn_range_acc_init(nn_range_acc *a);
void nn_range_acc_add(nn_range_acc *a, const float *x, size_t n);
/* After pass 0: switch to the histogram pass. */
void nn_range_acc_next(nn_range_acc *a);
nn_range nn_range_acc_result(const nn_range_acc *a);

/* Least-squares fit of ReLU by a*x^2+b*x+c on a uniform grid over [lo, hi]. */
void nn_fit_relu(float *a, float *b, float *c, double lo, double hi);

#endif
