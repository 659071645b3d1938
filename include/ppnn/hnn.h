/* ppnn hnn layer: encrypted batch inference with element-wise (BEAA) packing.
 *
 * With one image per slot, every layer maps a vector of ciphertexts to a vector of ciphertexts
 * and no rotation is ever needed (DESIGN.md §4). This header has two tiers (FLINT style):
 *   - raw kernels (leading underscore) on uint64_t arrays: never allocate, caller owns memory;
 *   - object-level functions (plans, execution) above them.
 */
#ifndef PPNN_HNN_H
#define PPNN_HNN_H

#include <stddef.h>
#include <stdint.h>

#include "ppnn/ckks.h"
#include "ppnn/ckks_io.h"
#include "ppnn/nn.h"
#include "ppnn/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- linear-layer kernels -----------------------------------------------------------------
 * For one RNS prime q and one ciphertext component, a linear layer is the integer matrix
 * product  Y (n_out x n) = W (n_out x n_in) · X (n_in x n) + bias  (mod q), where each row of X
 * and Y is one polynomial (n NTT coefficients; the NTT is linear, so the product may be taken
 * coefficient-wise). Products are accumulated lazily and reduced once per output value. */

/* Longest dot product (dense n_in, or non-zeros in one sparse row) the kernels accept; the
 * overflow bounds in linear.c / linear_avx512.c are proved for this length. */
#define HNN_LINEAR_MAX_TERMS 16384u

/* Per-prime constants for the kernels. q must be in [3, 2^50). The Shoup constants use a
 * 52-bit word (the AVX-512 IFMA multiplier width): for a constant c < q, c_shoup =
 * floor(c · 2^52 / q). */
typedef struct hnn_modulus {
    uint64_t q;
    uint64_t one_shoup;              /* floor(2^52 / q): reduces a 52-bit value */
    uint64_t r52, r52_shoup;         /* 2^52 mod q */
    uint64_t r104, r104_shoup;       /* 2^104 mod q */
} hnn_modulus;

void hnn_modulus_init(hnn_modulus *m, uint64_t q);

/* Which kernel implementation to run. AUTO picks AVX-512 IFMA when the CPU has it (runtime
 * check) and the shape allows it, else the portable C kernel. Both give bit-identical results
 * (the exact residue in [0, q)). Asking for AVX512 on a CPU without it falls back to portable. */
typedef enum { HNN_KERNEL_AUTO = 0, HNN_KERNEL_PORTABLE = 1, HNN_KERNEL_AVX512 = 2 } hnn_kernel;

/* 1 if this CPU runs the AVX-512 IFMA kernels. */
int hnn_avx512_available(void);

/* Dense: y[o][j] = (bias[o] + sum_i w[o*n_in + i] · x[i][j]) mod q for o < n_out, j < n.
 *   w: n_out x n_in row-major, entries in [0, q); bias: n_out values in [0, q), or NULL (= 0);
 *   x: n_in row pointers, each n values in [0, q); y: n_out row pointers, n values written.
 *   n_in <= HNN_LINEAR_MAX_TERMS. Rows of y must not overlap rows of x.
 *   threads: OpenMP threads (0 = the OpenMP default). */
void _hnn_linear_dense(uint64_t *const *y, const uint64_t *w, const uint64_t *bias, size_t n_out,
                       size_t n_in, const uint64_t *const *x, size_t n, const hnn_modulus *m,
                       int threads, hnn_kernel kernel);

/* Sparse (conv, avgpool): output o reads the inputs col[row_start[o] .. row_start[o+1]) with
 * weights val[same range] (in [0, q)); row lengths <= HNN_LINEAR_MAX_TERMS; col entries < the
 * number of rows in x. Otherwise as _hnn_linear_dense. A k×k conv costs k·k·c_in products per
 * output, never a dense product. */
void _hnn_linear_sparse(uint64_t *const *y, const uint32_t *row_start, const uint32_t *col,
                        const uint64_t *val, const uint64_t *bias, size_t n_out,
                        const uint64_t *const *x, size_t n, const hnn_modulus *m, int threads,
                        hnn_kernel kernel);

/* ---- plans ----------------------------------------------------------------------------------
 * A plan compiles a trained polynomial network for a level budget. It is a list of steps on
 * vectors of ciphertexts (one per tensor element, CHW order); every model layer with weights
 * or an activation costs exactly one level:
 *   LINEAR  y[o] = bias[o] + sum_i W[o,i]·x[i]  (conv2d, dense, avgpool, or a "scale" step);
 *           3-component inputs are summed as they are and only the outputs are relinearized
 *           (lazy relinearization), then rescaled by `drop` primes: 1 after a linear step or
 *           the inputs (weights encoded at Δw = q_l, the prime dropped, so the scale returns
 *           exactly), 2 after an activation (lazy rescale: Δw = q_l·q_{l-1}/s, the scale
 *           returns exactly to s).
 *   ACT     z[i] = (x[i] + beta[i])^2  (square[i] = 1), or z[i] = x[i] when |a| ≈ 0
 *           (square[i] = 0: the element is linear, b·x + c, and is carried at the scale of the
 *           squares by an integer multiply); beta is 0 when a linear step precedes (the shift
 *           is folded into its bias). Not rescaled (drop = 0): the next LINEAR step drops two
 *           primes, so squares are never rescaled one by one.
 * The activation a·x²+b·x+c = a·(x+β)² + γ (β = b/(2a), γ = c − b²/(4a)) is depth-optimal:
 * a is folded into the next LINEAR step's weights and γ into its bias. When no linear layer
 * follows (two activations in a row, or an activation last) a diagonal "scale" step is added.
 * Flatten is free. ReLU is refused.
 * Inputs: when the model has an input normalisation (nn_model.norm_std > 0) the plan takes raw
 * pixels p/255 in [0,1] — what `ppnn encrypt` sends — and folds x = (p/255 - mean)/std into the
 * first linear layer; otherwise it takes the model's inputs unchanged. */
typedef enum { HNN_STEP_LINEAR = 1, HNN_STEP_ACT = 2 } hnn_step_kind;

typedef struct hnn_step {
    hnn_step_kind kind;
    size_t layer;           /* index of the model layer it implements */
    const char *name;       /* "conv2d", "dense", "avgpool", "scale", "act" */
    size_t n_in, n_out;     /* ciphertexts read / written */
    size_t level_in;        /* level of the inputs; outputs are at level_in - drop */
    size_t drop;            /* primes the step's rescale drops (0, 1 or 2) */
    double max_in, max_out; /* bounds on |value| (recorded ranges, with a margin) */
    /* LINEAR: row r of the CSR computes output row_out[r]:
     *   y[row_out[r]] = bias[row_out[r]] + sum_{t in row r} w[t] · x[col[t]].
     * Rows are ordered so rows reading the same inputs are adjacent (conv channels at one
     * position), which the AVX-512 kernel exploits. dense != 0: w is n_out x n_in row-major,
     * row_start/col/row_out are NULL. */
    int dense;
    uint32_t *row_start, *col, *row_out;
    double *w, *bias;
    size_t nnz;
    /* ACT */
    double *beta;
    uint8_t *square;
} hnn_step;

typedef struct hnn_plan {
    size_t nsteps;
    hnn_step *steps;
    size_t n_inputs, n_outputs; /* ciphertexts in (input numel) / out (classes) */
    size_t depth;               /* levels consumed (sum of the steps' drops) */
    size_t top_level;           /* level of the encrypted inputs */
    double max_logit;           /* bound on |logit| from the recorded range */
    double est_error;           /* estimated max |logit error| (CKKS noise + weight rounding) */
    double precision_bits;      /* -log2(est_error) */
} hnn_plan;

/* What a parameter set offers the planner. */
typedef struct hnn_budget {
    const char *name;   /* preset name for messages ("n13") */
    size_t levels;      /* rescales available (nq - 1) */
    double log2_scale;  /* scale of the inputs and of every rescale prime (≈ log2 q_i) */
    double log2_q0;     /* bits of the last prime: final |value|·scale must stay < q0/2 */
    unsigned logn;      /* ring degree (noise estimate) */
} hnn_budget;

/* Compiles m for budget. Refusals, before any encryption: PPNN_ERR_DEPTH when the model needs
 * more levels than the budget has, PPNN_ERR_NUMERIC when a value would overflow the modulus
 * (message names the layer and, from alternatives[0..nalt), a budget that would fit);
 * PPNN_ERR_UNSUPPORTED for ReLU; PPNN_ERR_PARAM for a model without layers. */
PPNN_MUST_CHECK ppnn_status hnn_plan_new(hnn_plan **out, const nn_model *m,
                                         const hnn_budget *budget,
                                         const hnn_budget *alternatives, size_t nalt);
void hnn_plan_free(hnn_plan *p); /* NULL is a no-op */

/* Runs the plan in double precision (folded math, no encryption) on one input vector of
 * n_inputs values; writes n_outputs logits. Tests compare it with the model's forward pass. */
void hnn_plan_forward(const hnn_plan *p, double *logits, const double *x);

/* The budget a parameter set offers (levels = nq - 1, log2 of scale, q_0 and N). */
void hnn_budget_from_params(hnn_budget *b, const ckks_params *params, const char *name);

/* ---- execution ------------------------------------------------------------------------------
 * Element-wise packing: the client encrypts B <= N/2 images so that input ciphertext k holds
 * plan input k (CHW order, hnn_plan_inputs) of every image in slot b = image b (other slots
 * 0). The
 * server runs the plan with the relinearization key only; output ciphertext c holds logit c of
 * every image. No rotation is used. */
typedef struct hnn_exec_opts {
    int threads;       /* OpenMP threads (0 = default: all cores) */
    hnn_kernel kernel; /* linear kernels (AUTO in production; tests force each path) */
    /* Called after each step with its index and wall-clock seconds (may be NULL). */
    void (*progress)(void *ctx, size_t step, const hnn_step *s, double seconds);
    void *progress_ctx;
} hnn_exec_opts;

/* Runs plan p on in[0 .. p->n_inputs) (size 2, all at level p->top_level and the same scale)
 * and writes out[0 .. p->n_outputs) (caller-provided, zero-initialised or previously used
 * ciphertext structs; their buffers are reused or reallocated). Inputs are not modified.
 * rk may be NULL only for a plan without activations.
 * Errors: PPNN_ERR_MISMATCH (inputs or key of other parameters, levels or sizes than the
 * plan), PPNN_ERR_PARAM (rk missing), PPNN_ERR_NUMERIC (a weight too large to encode),
 * PPNN_ERR_NOMEM, and any ckks error. */
PPNN_MUST_CHECK ppnn_status hnn_infer(ckks_ciphertext *out, const hnn_plan *p,
                                      const ckks_ciphertext *in, const ckks_relin_key *rk,
                                      const hnn_exec_opts *opts);
/* Upper bound on the bytes of ciphertexts alive at once while hnn_infer runs p on a ring of
 * degree n (inputs included; keys, plan and kernel scratch not): lets a caller refuse a model
 * that cannot fit in memory before any work. */
uint64_t hnn_plan_peak_bytes(const hnn_plan *p, size_t n);

/* ---- a batch file through a model (hnn/run.c) -----------------------------------------------
 * The path `ppnn infer` and the service's workers share. hnn_plan_for_params compiles m for the
 * keys' parameters with as few levels as the model needs (unused primes only slow every
 * operation down); when it does not fit, the message names a preset that would. */
PPNN_MUST_CHECK ppnn_status hnn_plan_for_params(hnn_plan **plan, const nn_model *m,
                                                const ckks_params *params);

/* A batch job: the plan plus a validated input batch. open plans (refusing a model that cannot
 * fit in memory before reading the batch), reads `in` and checks it against the model (shape,
 * element-wise input role, levels) and the keys (key_id, params); inputs above the plan's top
 * level are mod-switched down. model_name and key_name only appear in messages. rk and params
 * must outlive the job. Errors: any of hnn_plan_for_params, ckks_batch_load, and
 * PPNN_ERR_MISMATCH / PPNN_ERR_NOMEM with a message naming the files. */
typedef struct hnn_batch_job hnn_batch_job;
PPNN_MUST_CHECK ppnn_status hnn_batch_job_open(hnn_batch_job **job, const nn_model *m,
                                               const char *model_name, const ckks_relin_key *rk,
                                               const ckks_params *params,
                                               const uint8_t key_id[CKKS_KEY_ID_BYTES], const char *key_name,
                                               const char *in);
const hnn_plan *hnn_batch_job_plan(const hnn_batch_job *job);
const ckks_batch_info *hnn_batch_job_info(const hnn_batch_job *job);
/* Runs the plan (opts as for hnn_infer, progress callback included) and writes the encrypted
 * logits to out atomically (role CKKS_BATCH_LOGITS, shape n_outputs x 1 x 1). */
PPNN_MUST_CHECK ppnn_status hnn_batch_job_run(hnn_batch_job *job, const char *out,
                                              const hnn_exec_opts *opts);
void hnn_batch_job_free(hnn_batch_job *job); /* NULL is a no-op */

/* ---- element-wise packing (client side) ----------------------------------------------------
 * Encrypts a batch: x holds `batch` images of `numel` plan inputs each (image-major, as
 * hnn_plan_inputs writes them); ciphertext k of out[0..numel) gets element k of image b in
 * slot b (slots >= batch are 0), at the top level and the default scale, with seeded
 * secret-key encryption (c1 is a seed: half the upload). Parallel over elements.
 * Errors: PPNN_ERR_PARAM (batch == 0 or > slots), PPNN_ERR_NUMERIC (non-finite input). */
PPNN_MUST_CHECK ppnn_status hnn_encrypt_batch(ckks_ciphertext *out, const ckks_secret_key *sk,
                                              const float *x, size_t batch, size_t numel,
                                              int threads);
/* The same, calling progress(ctx, done) after each of the numel ciphertexts (serialised: one
 * call at a time, from any thread; may be NULL). */
PPNN_MUST_CHECK ppnn_status hnn_encrypt_batch_progress(ckks_ciphertext *out,
                                                       const ckks_secret_key *sk, const float *x,
                                                       size_t batch, size_t numel, int threads,
                                                       void (*progress)(void *ctx, size_t done),
                                                       void *ctx);
/* The plan's inputs for n images of bytes 0..255 (numel(m->input) each): p/255 when the model
 * has an input normalisation (folded into the plan), else the model's own normalisation. */
void hnn_plan_inputs(float *out, const nn_model *m, const uint8_t *pixels, size_t n);
/* Decrypts nclasses logit ciphertexts into logits[b * nclasses + c] for b < batch. With
 * release_bits > 0 the values are flooded and rounded (ckks_decode_release: for values that
 * leave the client); 0 decodes exactly (tests, values kept by the client). */
PPNN_MUST_CHECK ppnn_status hnn_decrypt_batch(double *logits, const ckks_secret_key *sk,
                                              const ckks_ciphertext *ct, size_t nclasses,
                                              size_t batch, unsigned release_bits);
/* Upload bytes of one seeded ciphertext at `level`: c0 bit-packed to ceil(log2 q_i) bits per
 * coefficient (DESIGN.md §7) plus the 32-byte seed; file headers and checksums not counted. */
size_t hnn_seeded_ct_bytes(const ckks_params *params, size_t level);

/* ==== channel-wise packing (the baseline BEAA compares against) ============================
 * One image per ciphertext; a channel's H x W map lies in the slots (src/hnn/channel*.c).
 * Supported models: [conv2d with a 1-channel input as FIRST layer] then any mix of dense,
 * flatten and poly (any granularity), each poly followed (through flattens) by a dense.
 * Layout and costs (N/2 = slots, F = H*W of the input image):
 *   - client: the normalised image is written C_out times, copy r at slots r*F .. r*F+F-1
 *     (C_out = output channels of the first conv, 1 if the model starts with a dense). This
 *     replication is free for the client and saves the server every "gather" rotation:
 *   - conv k x k / stride s / pad p: out = sum_(ky,kx) rot(x, (ky-p)*W + (kx-p)) (.) M_(ky,kx)
 *     where M holds w[o][0][ky][kx] at slot o*F + oy*s*W + ox*s whenever that tap reads a pixel
 *     inside the image (zero padding and row wrap-around are zeros of the mask), 0 elsewhere.
 *     Evaluated in baby-step giant-step form (column offsets kx-p, then row offsets
 *     (ky-p)*W on the partial sums, masks stored pre-rotated): 2(k-1) rotations, k^2
 *     plaintext products; output channel o at o*F + oy*s*W + ox*s.
 *   - poly a*x^2+b*x+c = a*(x+beta)^2+gamma: beta added as a masked plaintext (unused slots
 *     stay 0), one square + relinearization + rescale; a and gamma are folded into the next
 *     dense layer's plaintext weights and bias. One level per activation.
 *   - dense n_in -> n_out: the input lies at known slots, periodic with period P (a power of
 *     two dividing the slots). With m = n_out padded to a power of two and P' = max(P, m), the
 *     m extended diagonals of the m x P' matrix W' (Halevi-Shoup) are applied with baby-step
 *     giant-step rotations (n1 + n2 - 2 rotations, n1*n2 = m), then log2(P'/m) rotate-and-add
 *     steps: y_j lies at every slot i with i mod m = j (period m).
 *   - levels: one rescale per conv/dense, one per poly; plaintext weights are encoded at the
 *     scale q_l of the prime the following rescale drops.
 * The plan is public (made from the model and the parameters only); the server needs the
 * relinearization key and the Galois keys of hnn_channel_rotations(). */
typedef struct hnn_channel_plan hnn_channel_plan;

/* Compiles model m for params. Errors: PPNN_ERR_UNSUPPORTED (a layer the packing cannot run:
 * the message names it), PPNN_ERR_PARAM (a layer's packed size exceeds the slots), PPNN_ERR_DEPTH
 * (more levels than params has), PPNN_ERR_NUMERIC (non-finite weights, or plaintexts that do not
 * fit the modulus), PPNN_ERR_NOMEM. The plan keeps pointers to params (not to m). */
PPNN_MUST_CHECK ppnn_status hnn_channel_plan_new(hnn_channel_plan **out, const nn_model *m,
                                                 const ckks_params *params);
void hnn_channel_plan_free(hnn_channel_plan *plan); /* NULL is a no-op */

/* Rotation statistics of one evaluation. */
typedef struct hnn_channel_stats {
    size_t rotations;      /* ckks_rotate calls per image */
    size_t distinct_steps; /* Galois keys needed */
    size_t mul_plain;      /* plaintext products per image */
    size_t relins;         /* relinearizations per image */
    size_t levels;         /* levels consumed */
    size_t plaintext_bytes;/* memory held by the plan's encoded plaintexts */
} hnn_channel_stats;
void hnn_channel_plan_stats(hnn_channel_stats *st, const hnn_channel_plan *plan);

/* The distinct rotation steps (sorted, all non-zero, in (-slots, slots)) the evaluation uses:
 * writes min(count, cap) of them to steps (may be NULL with cap 0) and returns count. Pass them
 * to ckks_keygen_galois so only these keys are made. */
size_t hnn_channel_rotations(int *steps, size_t cap, const hnn_channel_plan *plan);

/* Client: encrypts one normalised input (numel(m->input) floats, see nn_model_normalize) in the
 * replicated layout above, at the top level and the default scale (seeded secret-key
 * encryption). Errors: PPNN_ERR_MISMATCH (sk of other parameters), PPNN_ERR_NUMERIC. */
PPNN_MUST_CHECK ppnn_status hnn_channel_encrypt(ckks_ciphertext *ct, const hnn_channel_plan *plan,
                                                const ckks_secret_key *sk, const float *x);

/* Server: evaluates the plan on one encrypted image; out receives the logits in slots
 * 0..nclasses-1 (level 0 unless the parameters have more levels than the model needs). out must
 * not alias in. Needs rk and the Galois keys of every step of hnn_channel_rotations. Errors:
 * PPNN_ERR_MISMATCH (ciphertext of other parameters, wrong level), PPNN_ERR_PARAM (a missing
 * Galois key), PPNN_ERR_NOMEM. Thread-safe: one plan may serve several threads at once. */
PPNN_MUST_CHECK ppnn_status hnn_channel_eval(ckks_ciphertext *out, const hnn_channel_plan *plan,
                                             const ckks_ciphertext *in,
                                             const ckks_relin_key *rk,
                                             const ckks_galois_keys *gk);

/* Server, a batch: evaluates in[0..count) into out[0..count) (zero-initialised or reused
 * structs), images spread over `threads` OpenMP threads (0 = default). Stops at the first
 * error (its status is returned; outputs are then unspecified). */
PPNN_MUST_CHECK ppnn_status hnn_channel_eval_batch(ckks_ciphertext *out,
                                                   const hnn_channel_plan *plan,
                                                   const ckks_ciphertext *in, size_t count,
                                                   const ckks_relin_key *rk,
                                                   const ckks_galois_keys *gk, int threads);

/* Client: decrypts the nclasses logits. release_bits = 0: exact decode (values that never leave
 * the client, e.g. an argmax computed locally or a test); otherwise noise-flooded as in
 * ckks_decrypt_release. */
PPNN_MUST_CHECK ppnn_status hnn_channel_decrypt(double *logits, const hnn_channel_plan *plan,
                                                const ckks_secret_key *sk,
                                                const ckks_ciphertext *ct, unsigned release_bits);
size_t hnn_channel_nclasses(const hnn_channel_plan *plan);

#ifdef __cplusplus
}
#endif
#endif
