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

/* Per-prime constants of the kernels: the one per-prime struct mq_modulus (ppnn/modq.h; its
 * 52-bit Shoup constants are set for q < 2^50). Pass &params->ring->primes[i].mod, built once
 * per prime. hnn_modulus_init(m, q) = mq_modulus_init plus the check q < 2^50, for callers
 * that hold only q (tests, benches; hnn/exec.c until the lead converts it). */
typedef mq_modulus hnn_modulus;
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
    /* squares: bound on |x[i] + beta[i]| (recorded max with margin) and its typical size
     * (recorded p99.9): the noise model's gains (noise.c) */
    double *umax, *utyp;
} hnn_step;

typedef struct hnn_plan {
    size_t nsteps;
    hnn_step *steps;
    size_t n_inputs, n_outputs; /* ciphertexts in (input numel) / out (classes) */
    size_t depth;               /* levels consumed (sum of the steps' drops) */
    size_t top_level;           /* level of the encrypted inputs */
    double max_logit;           /* bound on |logit| from the recorded range */
    /* Error figures of hnn_plan_noise (docs/precision.md), in logit units: est_error is the
     * high-probability estimate of max |logit error| (what to expect; what flooding uses),
     * bound_error the worst-case bound (>= est_error; loose, never the expected error). */
    double est_error;
    double bound_error;
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

/* ---- precision (noise.c, docs/precision.md) ------------------------------------------------
 * The error of the logits of plan p run on parameters offering budget b, relative to the plan's
 * exact (double) forward pass, in logit units. Sources: fresh encryption, rescale rounding,
 * relinearization, weight / bias encoding; propagated element by element through the steps.
 *   sigma     standard deviation of the largest-variance logit's error (typical magnitudes);
 *   estimate  high-probability max |logit error| over a full batch: exceeded with probability
 *             <= 2^-HNN_NOISE_FAIL_LOG2 (typical magnitudes, Gaussian + Laplace tails);
 *   bound     worst case over the inputs within the plan's bounds (L1 propagation, every
 *             rounding at its extreme), CKKS noise of each operation at the same quantile
 *             (>= estimate; loose by design, never the expected error).
 * hnn_plan_new fills p->est_error / p->bound_error with it. Errors: PPNN_ERR_NOMEM. */
#define HNN_NOISE_FAIL_LOG2 10
/* Standard deviations of one rescale's noise the square conditioning balances (plan.c). */
#define HNN_NOISE_SIGMAS 6.0
typedef struct hnn_noise {
    double sigma, estimate, bound;
    double sigma_keyprod; /* part of sigma from key-product (Laplace-tailed) sources */
} hnn_noise;
PPNN_MUST_CHECK ppnn_status hnn_plan_noise(hnn_noise *out, const hnn_plan *p,
                                           const hnn_budget *b);

/* Runs the plan in double precision (folded math, no encryption) on one input vector of
 * n_inputs values; writes n_outputs logits. Tests compare it with the model's forward pass. */
void hnn_plan_forward(const hnn_plan *p, double *logits, const double *x);

/* The budget a parameter set offers (levels = nq - 1, log2 of scale, q_0 and N). */
void hnn_budget_from_params(hnn_budget *b, const ckks_params *params, const char *name);

/* ---- one planning path ----------------------------------------------------------------------
 * The plan every command runs (infer, demo, compare, bench, the service, MPI ranks): compiled
 * for params with as few levels as the model needs (every unused prime above them would only
 * make each operation slower; the executor reads only the rows of the plan's levels), or, when
 * the model does not fit, refused with a message naming a preset that would (n13, n14).
 * preset_name labels params in messages (NULL: "n13"/"n14" by ring degree). */
PPNN_MUST_CHECK ppnn_status hnn_plan_for_params(hnn_plan **out, const nn_model *m,
                                                const ckks_params *params,
                                                const char *preset_name);
/* The budget a named preset offers, without building its parameter set (zeroed when unknown). */
void hnn_budget_for_preset(hnn_budget *b, const char *name);

/* ---- streaming schedule ---------------------------------------------------------------------
 * The executor never materialises a whole layer unless the budget allows it. The plan's steps
 * are grouped into stages  [LINEAR A] [ACT] LINEAR B  (the longest such run; a stage always ends
 * with a LINEAR step, so its outputs are relinearized, rescaled 2-component ciphertexts):
 *   - fusion: A's outputs are squared as they are produced and absorbed by B at once; the
 *     squares of a whole layer never exist together. conv → act → avgpool: a pooled output sums
 *     its squares and is relinearized once (relin(Σ) = Σ relin).
 *   - tiles, ROWS: tile t is a set of B's rows (outputs); it computes the A outputs (squares)
 *     those rows read, then the rows. Used when B is sparse (conv, avgpool): the rows are
 *     ordered by the first A row they read, so a tile is a band of positions across all
 *     channels and A's rows for it are long contiguous runs (the AVX-512 kernel shares inputs
 *     across the channels of a position).
 *   - tiles, COLS: tile t is a contiguous run of A's rows (or of the stage inputs when the stage
 *     has no A); B (dense) keeps an accumulator per output and absorbs each tile of squares
 *     (exact modular sums: the result equals a single product bit for bit).
 * Every ciphertext is held at its current level only; a stage input is freed (or, streamed, not
 * yet loaded) outside [first tile that reads it, last tile that reads it] — or, when the budget
 * needs it, a streamed input is read again for every tile that needs it. A stage's outputs
 * either stay in memory for the next stage or, when the budget requires it (the last resort),
 * are spilled to a checksummed scratch file as they are finished and read back on demand.
 * The schedule and its peak are computed from the plan and N alone, before any ciphertext is
 * read. Peak bytes count ciphertext data, intermediate squares, accumulators and encoded
 * weights; not keys, the plan, or the kernels' small per-thread scratch. */
typedef enum { HNN_TILE_ROWS = 1, HNN_TILE_COLS = 2 } hnn_tiling;
#define HNN_NO_STEP ((size_t)-1)

/* Where a stage's inputs live while it runs. */
typedef enum {
    HNN_INPUT_RESIDENT = 1, /* the caller's array: alive for the whole stage */
    HNN_INPUT_OWNED = 2,    /* the previous stage's outputs in memory: freed after last use */
    HNN_INPUT_STREAMED = 3  /* read from a file (the batch, or scratch) at first use, freed after last */
} hnn_input_kind;

typedef struct hnn_stage {
    size_t a, act, b;         /* plan step indices (a, act: HNN_NO_STEP when absent) */
    hnn_tiling tiling;
    size_t n_in;              /* stage inputs (ciphertexts of the previous stage) */
    size_t ntiles;
    size_t *tile_start;       /* ntiles + 1 offsets into tile_items */
    uint32_t *tile_items;     /* ROWS: B rows; COLS: A rows, or stage inputs without A */
    hnn_input_kind input;     /* how this stage reads its inputs */
    int spill;                /* outputs go to the scratch file (the next stage streams them) */
    int reload;               /* STREAMED inputs are dropped after every tile and read again
                               * when a later tile needs them (I/O for memory) */
    uint64_t peak_bytes;      /* peak while this stage runs */
    size_t recomputed;        /* A outputs computed more than once (ROWS tiles sharing inputs) */
    int sparse_cols;          /* COLS tiles over a sparse B (a pruned dense layer in CSR) */
    uint32_t *a_row_of;       /* A output index -> A row (NULL without A) */
} hnn_stage;

typedef struct hnn_schedule {
    size_t nstages;
    hnn_stage *stages;
    size_t n;                 /* ring degree the byte counts are for */
    uint64_t peak_bytes;      /* max over stages */
    uint64_t spill_bytes;     /* bytes the spilled stages write to scratch (about) */
    uint64_t budget_bytes;    /* the budget it was made for (0 = none) */
    uint64_t resident_bytes;  /* the caller's resident inputs, alive after stage 0 too */
} hnn_schedule;

typedef struct hnn_schedule_opts {
    uint64_t budget_bytes; /* 0: no limit */
    int inputs_streamed;   /* 1: plan inputs are read on demand (hnn_infer_file) */
    int allow_spill;       /* 1: may spill stage outputs (needs a scratch directory at run time) */
    int no_fusion;         /* tests/benchmarks: every LINEAR its own stage, layers materialised */
    size_t tile;           /* > 0: items per tile (tests); 0: chosen */
    int force_spill;       /* tests: spill every stage output but the last */
    int rows_only;         /* tests: never COLS over a sparse B (ROWS, recomputing A outputs) */
} hnn_schedule_opts;

/* Builds the schedule of plan p on a ring of degree n under o (NULL: no budget, fused). Policy:
 * fuse every stage; tiles of HNN_SCHED_TILE items (kernel efficiency); a stage whose ROWS
 * tiles over a sparse B would recompute more than 1/16 of its A outputs (a pruned dense layer
 * after a conv) runs in COLS tiles instead (each A output computed once); while the peak
 * exceeds the budget, at the stage with the peak: halve its tiles if one-item tiles would fit,
 * else (COLS over a sparse B) go back to ROWS tiles, else re-read its streamed inputs per
 * tile, else spill its outputs, else its inputs. Errors:
 * PPNN_ERR_NOMEM when the budget is below the smallest peak this plan can run in; the message
 * names that minimum (with and without spill) in MB. */
PPNN_MUST_CHECK ppnn_status hnn_schedule_new(hnn_schedule **out, const hnn_plan *p, size_t n,
                                             const hnn_schedule_opts *o);
void hnn_schedule_free(hnn_schedule *s); /* NULL is a no-op */
/* Items per tile the scheduler starts from (HNN_TILE_OUT-row kernel calls stay efficient). */
#define HNN_SCHED_TILE 240
/* The smallest peak plan p can run in at degree n (smallest tiles; spilling when allow_spill). */
uint64_t hnn_schedule_min_bytes(const hnn_plan *p, size_t n, int inputs_streamed,
                                int allow_spill);

/* ---- execution ------------------------------------------------------------------------------
 * Element-wise packing: the client encrypts B <= N/2 images so that input ciphertext k holds
 * plan input k (CHW order, hnn_plan_inputs) of every image in slot b = image b (other slots
 * 0). The server runs the plan with the relinearization key only; output ciphertext c holds
 * logit c of every image. No rotation is used. */
typedef struct hnn_exec_opts {
    int threads;       /* OpenMP threads (0 = default: all cores) */
    hnn_kernel kernel; /* linear kernels (AUTO in production; tests force each path) */
    /* Called once per plan step when its stage finishes, with the step's own compute seconds
     * (kernels, squares, relinearizations of that step; may be NULL). */
    void (*progress)(void *ctx, size_t step, const hnn_step *s, double seconds);
    void *progress_ctx;
    /* Called after every tile: stage index, tiles done, tiles of the stage (may be NULL). */
    void (*on_tile)(void *ctx, size_t stage, size_t done, size_t ntiles);
    /* The schedule to run (NULL: hnn_schedule_new without a budget). */
    const hnn_schedule *schedule;
    /* Directory for the scratch file of spilled stages (NULL: the system temp directory). */
    const char *scratch_dir;
    /* Cooperative cancellation (e.g. set by a SIGINT handler, or by a service cancelling a
     * job): checked before every tile; when non-zero the run stops with PPNN_ERR_IO
     * "interrupted" and frees everything. May be NULL. */
    const volatile int *cancel;
    /* When non-NULL, incremented by the bytes written to scratch (spilled stages). */
    uint64_t *spilled_bytes;
    /* Buffers of the run's ciphertexts (intermediates, accumulators, the outputs of every
     * stage but the last; ckks.h, ckks_ct_pool). NULL: the run makes its own, capped at the
     * schedule's peak, and frees it at the end. A caller's pool must outlive the run; its
     * source may take its ciphertexts from the same pool (hnn_infer_file does). */
    ckks_ct_pool *pool;
    /* When non-NULL, incremented by the seconds spent pulling stage inputs from their sources
     * (for a file: reading, unpacking, expanding seeds). */
    double *input_seconds;
    /* 1: the last stage's outputs are left as B's sums (bias + W·x, at B's input level and
     * pre-rescale scale; 3 components after an activation): not relinearized, not rescaled.
     * For partial sums over disjoint columns of a dense B, which a caller adds up exactly and
     * then finishes once (hnn_step_linear_finish; src/dist/). */
    int raw_outputs;
} hnn_exec_opts;

/* Runs plan p on in[0 .. p->n_inputs) (size 2, every one at the same level >= p->top_level —
 * rows above the plan's top level are ignored, i.e. the inputs are mod-switched on the fly —
 * and at the scale the plan was made for, the parameters' default scale) and writes
 * out[0 .. p->n_outputs) (caller-provided, zero-initialised or previously used ciphertext
 * structs; their buffers are reused or reallocated). Inputs are not modified. rk may be NULL
 * only for a plan without activations.
 * Errors: PPNN_ERR_MISMATCH (inputs or key of other parameters, levels, sizes or scales other
 * than the plan's), PPNN_ERR_PARAM (rk missing, schedule of another plan), PPNN_ERR_NUMERIC
 * (a weight too large to encode), PPNN_ERR_NOMEM, PPNN_ERR_IO (scratch), any ckks error. */
PPNN_MUST_CHECK ppnn_status hnn_infer(ckks_ciphertext *out, const hnn_plan *p,
                                      const ckks_ciphertext *in, const ckks_relin_key *rk,
                                      const hnn_exec_opts *opts);

/* A source of stage-0 inputs the executor pulls from (hnn_infer_file reads the batch file
 * through one): get returns ciphertext i at level >= `level` (valid until release(i));
 * release is called after the last tile that reads i. Each i is got once and released once
 * (unless the schedule re-reads streamed inputs per tile): input 0 is got first, before any
 * tile (its parameters and scale set the run's), and held until its last tile or the end of
 * the run, so a source may free a ciphertext for good on release. */
typedef struct hnn_source {
    size_t count;
    PPNN_MUST_CHECK ppnn_status (*get)(struct hnn_source *src, size_t i, size_t level,
                                       const ckks_ciphertext **out);
    void (*release)(struct hnn_source *src, size_t i);
    void *ctx;
} hnn_source;

/* hnn_infer with the inputs pulled from src (the schedule should say inputs_streamed). */
PPNN_MUST_CHECK ppnn_status hnn_infer_source(ckks_ciphertext *out, const hnn_plan *p,
                                             hnn_source *src, const ckks_relin_key *rk,
                                             const hnn_exec_opts *opts);

/* ---- a whole batch file -> a result file, under a memory budget ---------------------------
 * The library entry point infer, the service and MPI ranks call: reads the (multi-)batch file
 * in_path incrementally (ckks_batch_set / ckks_batch_reader: every input ciphertext is read
 * when the first tile needing it runs, at the plan's top level, and freed after the last),
 * runs every batch and writes one result batch per input batch to out_path (atomically: on any
 * error or cancellation nothing is left at out_path). Opening a batch verifies its top hash;
 * every input ciphertext is verified by its own digest when the loader reads it, before
 * anything is computed on it (ckks_batch_reader_get). Every ciphertext buffer comes from one pool capped at the schedule's
 * peak (hnn_exec_opts.pool; hnn_file_opts.pool_flags). The schedule is computed and checked
 * against the budget from the plan and the key's ring degree before the batch file is opened.
 * Progress: after every tile (step = NULL) and every finished step. */
typedef struct hnn_progress {
    size_t batch, nbatches;   /* batch being run (0-based) and how many */
    size_t stage, nstages;
    const hnn_step *step;     /* the step that just finished, or NULL (tile progress) */
    size_t step_index;
    double step_seconds;      /* compute seconds of that step in this batch */
    double fraction;          /* of the current batch done, 0..1 (by tiles) */
} hnn_progress;

typedef struct hnn_file_opts {
    int threads;
    hnn_kernel kernel;
    /* Memory for the whole run in bytes (0: hnn_memory_default()). The schedule gets what is
     * left after the relinearization key and HNN_MEMORY_OVERHEAD for the process itself. */
    uint64_t memory_bytes;
    const char *scratch_dir;  /* spill directory (NULL: the directory of out_path) */
    int allow_spill;          /* 0: refuse rather than spill */
    hnn_schedule_opts sched;  /* tests/benchmarks: tile, no_fusion, force_spill (budget and
                               * streaming are set from the fields above) */
    void (*progress)(void *ctx, const hnn_progress *pr); /* may be NULL */
    void *progress_ctx;
    const volatile int *cancel; /* as in hnn_exec_opts */
    unsigned pool_flags;        /* tests: CKKS_POOL_POISON for the run's buffer pool */
    /* The service: in_path is a single batch the caller verified while storing it, with this
     * top hash (ckks_batch_set_trust); NULL: verify as every loader does. */
    const uint8_t *input_checksum;
} hnn_file_opts;

typedef struct hnn_file_stats {
    size_t nbatches;
    uint64_t images;
    double server_seconds;    /* reading + computing every batch (writing excluded) */
    uint64_t schedule_peak_bytes, budget_bytes;
    uint64_t spill_bytes;     /* written to scratch, all batches */
    double step_seconds[64];  /* per plan step, summed over batches (first 64 steps) */
    uint64_t pool_peak_bytes; /* most bytes the ciphertext buffer pool held (in use + kept) */
    double input_seconds;     /* of server_seconds: reading inputs (hnn_exec_opts) */
} hnn_file_stats;

/* Bytes the process needs beside ciphertexts and keys (code, plan, buffers, allocator slack). */
#define HNN_MEMORY_OVERHEAD ((uint64_t)48 << 20)
/* MemAvailable (/proc/meminfo), lowered to $PPNN_MEMORY_LIMIT bytes when that is set and
 * smaller; 0 when unknown. */
uint64_t hnn_memory_available(void);
/* The default budget: 60 % of available memory (the rest for other processes and the page
 * cache); 4 GiB when the available memory is unknown. */
uint64_t hnn_memory_default(void);

/* Errors: as hnn_infer; PPNN_ERR_MISMATCH when in_path was encrypted under other keys than
 * key_id, is not an element-wise input batch, or holds other shapes (shape: c, h, w, or NULL
 * not to check) or scales than the plan needs; PPNN_ERR_NOMEM when the budget is below the
 * schedule's minimum (the message names it); PPNN_ERR_FORMAT for a bad or truncated file (the
 * message names the batch); PPNN_ERR_IO (files, scratch, interrupted). stats may be NULL. */
PPNN_MUST_CHECK ppnn_status hnn_infer_file(hnn_file_stats *stats, const char *out_path,
                                           const char *in_path, const hnn_plan *p,
                                           const uint32_t shape[3], const ckks_relin_key *rk,
                                           const uint8_t key_id[CKKS_KEY_ID_BYTES],
                                           const hnn_file_opts *opts);

/* Upper bound on the bytes of ciphertexts alive at once while hnn_infer runs p on a ring of
 * degree n without a budget (inputs resident): the peak of the default schedule. */
uint64_t hnn_plan_peak_bytes(const hnn_plan *p, size_t n);

/* One step at a time, for executors that run a share of a step (src/dist/): a LINEAR step is
 * hnn_step_linear_sums then hnn_step_linear_finish; an ACT step is hnn_step_act. A caller may
 * pass a derived step (a subset of the rows of a sparse step, with col[] and row_out[]
 * renumbered into its own input and output arrays; or a dense step restricted to some input
 * columns): the kernels give the exact residues of every sum, so sums of partial sums over
 * disjoint column sets (ckks_add) equal the whole step's sums bit for bit.
 *   _linear_sums: out[0 .. s->n_out) = bias + W·in (lazy: 3-component inputs stay 3
 *       components), at level in[0].level and the pre-rescale scale; not relinearized, not
 *       rescaled. out entries are (re)initialised. Errors as hnn_infer.
 *   _linear_finish: relinearizes (3-component entries) and rescales out[0 .. n) s->drop times.
 *   _act: out[i] = (in[i] + beta[i])^2 or the linear carry, for i < s->n_in (out may be in).
 */
PPNN_MUST_CHECK ppnn_status hnn_step_linear_sums(ckks_ciphertext *out, const ckks_ciphertext *in,
                                                 const hnn_step *s, const hnn_exec_opts *o);
PPNN_MUST_CHECK ppnn_status hnn_step_linear_finish(ckks_ciphertext *out, size_t n,
                                                   const hnn_step *s, const ckks_relin_key *rk,
                                                   int threads);
PPNN_MUST_CHECK ppnn_status hnn_step_act(ckks_ciphertext *out, const ckks_ciphertext *in,
                                         const hnn_step *s, const hnn_exec_opts *o);

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
/* The same batch encrypted straight into the batch-set writer w as its next batch
 * (ckks_batch_set_begin/_put_record/_end), the ciphertexts never held together: each thread
 * encrypts into one reused ciphertext and packs it into one reused record, and records are
 * written in order as they come (ordered: thread t writes k while the others encrypt k+1..).
 * A batch of N/2 images then touches a few MiB of new memory instead of numel full
 * ciphertexts. The file equals the one hnn_encrypt_batch + ckks_batch_set_append write for
 * the same randomness. progress as above (from the writing thread, in order). On failure the
 * caller aborts w. Errors: those of hnn_encrypt_batch, of the writer (I/O). */
PPNN_MUST_CHECK ppnn_status hnn_encrypt_batch_write(ckks_batch_set_writer *w,
                                                    const ckks_secret_key *sk, const float *x,
                                                    size_t batch, size_t numel, int threads,
                                                    void (*progress)(void *ctx, size_t done),
                                                    void *ctx);
/* The plan's inputs for n images of bytes 0..255 (numel(m->input) each): p/255 when the model
 * has an input normalisation (folded into the plan), else the model's own normalisation. */
void hnn_plan_inputs(float *out, const nn_model *m, const uint8_t *pixels, size_t n);
/* Decrypts nclasses logit ciphertexts into logits[b * nclasses + c] for b < batch. With
 * flood != NULL the values are flooded (ckks_decode_release: values that leave the client,
 * flood from hnn_release_flood); NULL decodes exactly (tests, values kept by the client). */
PPNN_MUST_CHECK ppnn_status hnn_decrypt_batch(double *logits, const ckks_secret_key *sk,
                                              const ckks_ciphertext *ct, size_t nclasses,
                                              size_t batch, const ckks_flood *flood);

/* The flooding for releasing the logits of plan p on params (docs/security.md): E =
 * p->est_error, the plan's high-probability estimate, which the client computes itself from
 * the model and its own parameters (a server-supplied E could be chosen small to defeat the
 * flooding); s = stat_bits, tau = queries. Writes f and the standard deviation the flooding
 * adds to each released logit (*slot_sigma). Refuses with PPNN_ERR_PARAM when that noise
 * would swamp the logits (slot sigma > p->max_logit / HNN_RELEASE_MAX_NOISE) unless force:
 * the message gives the figures and the alternatives (labels only, fewer bits, override). */
#define HNN_RELEASE_MAX_NOISE 100.0
PPNN_MUST_CHECK ppnn_status hnn_release_flood(ckks_flood *f, double *slot_sigma,
                                              const hnn_plan *p, const ckks_params *params,
                                              unsigned stat_bits, double queries, int force);
/* Upload bytes of one seeded ciphertext at `level`: c0 bit-packed to ceil(log2 q_i) bits per
 * coefficient (DESIGN.md §7) plus the 32-byte seed; file headers and checksums not counted. */
size_t hnn_seeded_ct_bytes(const ckks_params *params, size_t level);

/* ==== channel-wise packing (the baseline BEAA compares against) ============================
 * One image per small set of ciphertexts (src/hnn/channel*.c, layout in channel_inner.h).
 * Supported models: any sequence of conv2d (any channels, kernel, stride, padding), avgpool,
 * poly (any granularity), flatten and dense, with a linear layer before every activation and a
 * dense layer last; input C x H x W with C * frame <= N/2 slots.
 * Layout and costs (N/2 = slots):
 *   - frames: a channel's H x W map lies in one frame of F slots (F = H*W when channels never
 *     move between frames, else the power of two >= H*W), blocks = slots / F frames per
 *     ciphertext; a tensor with more channels than blocks spans several ciphertexts.
 *   - client: a 1-channel image read by a conv is written into min(C_out, blocks) frames (the
 *     first conv's output channels then need no channel rotation); C channels go to frames
 *     0..C-1. One ciphertext per image.
 *   - conv k x k / stride s / pad p: every output channel o (ciphertext o / blocks, frame
 *     o % blocks) is sum_(c, ky, kx) rot(x_c, shift(c, o) + (ky-p)*sy + (kx-p)*sx) (.) mask,
 *     evaluated as sum_shift rot( sum_taps mask' (.) rot(x, tap), shift ): the tap rotations
 *     of each input ciphertext are hoisted (one decomposition), the frame shifts are giant
 *     steps (at most `blocks` of them); masks hold the weights at valid output slots (zero
 *     padding is zeros of the mask). When no channel moves (1-channel image), columns are baby
 *     steps and rows giant steps: 2(k-1) rotations.
 *   - avgpool k x k: window sums by 2(k-1) hoisted rotations, no level; 1/k^2 (and per-channel
 *     activation coefficients) fold into the next linear layer; per-element coefficients are
 *     first applied by a plaintext product (one level).
 *   - poly a*x^2+b*x+c = a*(x+beta)^2+gamma: beta added as a masked plaintext, one square +
 *     relinearization + rescale per ciphertext; a and gamma fold into the next linear layer.
 *   - dense n_in -> n_out: with m = n_out padded to a power of two and P' = max(period, m),
 *     the m extended diagonals of each input ciphertext's m x P' block of W' (Halevi-Shoup)
 *     are applied with baby-step giant-step rotations (hoisted babies, giant steps shared by
 *     all input ciphertexts), then log2(P'/m) rotate-and-add steps: y_j lies at every slot i
 *     with i mod m = j (period m).
 *   - levels: one per conv, dense and activation (plus one per pool after per-element
 *     coefficients); plaintext weights are encoded at the scale q_l of the prime the following
 *     rescale drops.
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
    size_t rotations;      /* rotations per image (hoisted ones included) */
    size_t hoisted;        /* of which share a decomposition (ckks_rotate_hoisted) */
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

/* Client: decrypts the nclasses logits. flood = NULL: exact decode (values that never leave
 * the client, e.g. an argmax computed locally or a test); otherwise noise-flooded as in
 * ckks_decrypt_release. */
PPNN_MUST_CHECK ppnn_status hnn_channel_decrypt(double *logits, const hnn_channel_plan *plan,
                                                const ckks_secret_key *sk,
                                                const ckks_ciphertext *ct,
                                                const ckks_flood *flood);
size_t hnn_channel_nclasses(const hnn_channel_plan *plan);

/* ==== packing choice: a cost model calibrated on this machine ===============================
 * Element-wise packing costs one batch whatever the number of images up to the slots;
 * channel-wise costs one evaluation per image. Which is cheaper for B images follows from both
 * plans' operation counts (public: model and parameters) times single-thread operation costs
 * measured by `ppnn bench costs` (src/hnn/cost.c explains the level scaling). */
typedef struct hnn_op_costs {
    unsigned logn;     /* ring degree the figures were measured at (N = 2^logn) */
    size_t nq;         /* primes of the ciphertexts measured (top level = nq - 1) */
    /* Seconds, single thread, at the top level: */
    double mac_dense;  /* one coefficient multiply-add of the element-wise dense kernel */
    double mac_sparse; /* the same in the sparse (conv) kernel */
    double add, mul_plain, square, relin, rescale, rotate;
    double rotate_hoisted; /* one rotation of a hoisted group of 8 (decomposition shared) */
} hnn_op_costs;

/* Figures measured on the development machine (2-core AMD EPYC Zen 5, AVX-512 IFMA) for N = 2^13 and
 * 2^14; other ring degrees are scaled by N log N. Good enough to choose a packing; run
 * `ppnn bench costs` for this machine's own. */
void hnn_op_costs_default(hnn_op_costs *c, unsigned logn);
/* JSON object with the fields of hnn_op_costs (what `ppnn bench costs --json` writes).
 * Errors: PPNN_ERR_FORMAT (not JSON, a field missing, not finite or <= 0). */
PPNN_MUST_CHECK ppnn_status hnn_op_costs_parse(hnn_op_costs *c, const char *json, size_t len);
/* PPNN_ERR_MISMATCH when c was measured at another ring degree than params. */
PPNN_MUST_CHECK ppnn_status hnn_op_costs_check(const hnn_op_costs *c, const ckks_params *params);
/* The JSON text of c (malloc'ed, NUL-terminated; NULL when out of memory). */
char *hnn_op_costs_json(const hnn_op_costs *c);

/* Coefficient multiply-adds the element-wise kernels execute for step k of plan p on a ring of
 * degree n: weights (n_out·n_in dense, nnz sparse) x ciphertext components of its inputs (3
 * after an ACT step's unrelinearized squares, else 2) x primes (level_in + 1) x n. 0 for an
 * ACT step. What `ppnn bench infer` divides by a step's seconds for its G MAC/s. */
double hnn_step_macs(const hnn_plan *p, size_t k, size_t n);

/* Predicted single-thread seconds of one element-wise batch of plan p on a ring of degree n,
 * and of one channel-wise image. */
double hnn_plan_cost(const hnn_plan *p, const hnn_op_costs *c, size_t n);
double hnn_channel_plan_cost(const hnn_channel_plan *p, const hnn_op_costs *c);

typedef enum { HNN_PACK_ELEMENT = 0, HNN_PACK_CHANNEL = 1 } hnn_packing;
typedef struct hnn_packing_choice {
    hnn_packing packing;
    double element_seconds, channel_seconds; /* predicted wall time for the images */
    size_t crossover; /* fewest images for which element-wise is predicted no slower */
} hnn_packing_choice;

/* Chooses the packing for `images` images on `threads` threads: element-wise runs
 * ceil(images / slots) batches of elem_batch seconds each, spread over the threads; channel-wise
 * runs ceil(images / threads) rounds of chan_image seconds (one image per thread). */
void hnn_packing_choose(hnn_packing_choice *out, double elem_batch, size_t slots,
                        double chan_image, size_t images, int threads);

/* --packing auto: the packing for `images` images of a model on params, from both plans' costs
 * under c (hnn_op_costs_default or a `ppnn bench costs --json` file), on `threads` server
 * threads (<= 0: this machine's, omp_get_max_threads). elem and chan are the models each
 * packing would run (the same model for the CLI; compare trains one per packing). Policy:
 *   - a model the channel-wise planner refuses (ReLU, a conv after a dense, too many channels,
 *     too deep...) gets element-wise, with the planner's reason in out->reason;
 *   - a model the element-wise planner refuses but the channel-wise one accepts gets
 *     channel-wise (with that reason);
 *   - otherwise the cheaper predicted wall time (hnn_packing_choose), element-wise on ties.
 * out->reason is one line: "channel-wise (12 images: 0.41 s vs 1.9 s element-wise on 2
 * threads; element-wise from 27 images)". Errors: PPNN_ERR_MISMATCH (c measured at another
 * ring degree than params), PPNN_ERR_PARAM (images == 0 or more than 2^30), or the error of
 * the element-wise planner when neither packing can run the model. */
typedef struct hnn_packing_auto {
    hnn_packing_choice choice;
    double elem_batch, chan_image; /* predicted single-thread seconds (0: packing refused) */
    size_t images, slots;
    int threads;
    int channel_ok, element_ok; /* which planners accepted the model */
    char why_element[256], why_channel[256]; /* a planner's refusal ("" when it accepted) */
    char reason[768];
} hnn_packing_auto;
PPNN_MUST_CHECK ppnn_status hnn_packing_decide(hnn_packing_auto *out, const nn_model *elem,
                                               const nn_model *chan, const ckks_params *params,
                                               const char *preset_name, const hnn_op_costs *c,
                                               size_t images, int threads);
/* hnn_packing_decide in two halves, to decide for many image counts with one planning:
 * _predict plans both packings and costs them (the errors above except PPNN_ERR_PARAM);
 * _images (after a successful _predict) chooses for `images` (PPNN_ERR_PARAM as above). */
PPNN_MUST_CHECK ppnn_status hnn_packing_predict(hnn_packing_auto *out, const nn_model *elem,
                                                const nn_model *chan, const ckks_params *params,
                                                const char *preset_name, const hnn_op_costs *c,
                                                int threads);
PPNN_MUST_CHECK ppnn_status hnn_packing_decide_images(hnn_packing_auto *d, size_t images);
/* "element-wise" / "channel-wise". */
const char *hnn_packing_name(hnn_packing p);

#ifdef __cplusplus
}
#endif
#endif
