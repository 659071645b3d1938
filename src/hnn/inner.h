/* Internal helpers of the hnn layer (not part of the public API). */
#ifndef PPNN_HNN_INNER_H
#define PPNN_HNN_INNER_H

#include <stddef.h>
#include <stdint.h>

#include "ppnn/hnn.h"

/* A tile of a linear layer: outputs [o0, o1) x coefficients [j0, j1). The sparse form has
 * row_start/col non-NULL and w = the value array; the dense form has row_start = col = NULL and
 * w = the n_out x n_in matrix. */
typedef struct hnn_tile_args {
    uint64_t *const *y;
    const uint64_t *w;
    const uint32_t *row_start, *col;
    const uint64_t *bias;
    size_t n_in;
    const uint64_t *const *x;
    const hnn_modulus *m;
    /* NULL, or per-output start values (rows of n coefficients in [0, q)) added like a bias
     * that varies per coefficient: y = y0 + W·x. y0[o] may equal y[o] (in-place accumulate). */
    const uint64_t *const *y0;
} hnn_tile_args;

/* One product of _hnn_linear_run: the tile arguments (dense when a.row_start is NULL, with
 * a.n_in inputs; sparse otherwise, row_start holding n_out + 1 entries) and its row count. */
typedef struct hnn_linear_job {
    hnn_tile_args a;
    size_t n_out;
} hnn_linear_job;

/* Runs every job (each as _hnn_linear_dense / _hnn_linear_sparse / _hnn_linear_dense_acc
 * would, same residues) over n coefficients in ONE OpenMP parallel region: the tiles of all
 * jobs (e.g. every prime and component of a layer) are handed out together, so a layer costs
 * one fork/join instead of one per prime and component. Jobs must not write rows another job
 * reads. */
void _hnn_linear_run(const hnn_linear_job *jobs, size_t njobs, size_t n, int threads,
                     hnn_kernel kernel);

/* Coefficient counts the AVX-512 kernels handle: multiples of this (else portable). */
#define HNN_AVX_LANES 32

/* Largest number of outputs in one tile. */
/* (a multiple of the AVX-512 register block of 3 rows; 120 rows of W stay in L2) */
#define HNN_TILE_OUT 120

/* Accumulating dense product: y[o][j] = (y[o][j] + sum_i w[o*n_in + i] · x[i][j]) mod q, with
 * y[o] in [0, q) on entry. Same contract otherwise as _hnn_linear_dense (no bias): lets an
 * executor absorb a linear layer's inputs tile by tile with the exact residues of one call. */
void _hnn_linear_dense_acc(uint64_t *const *y, const uint64_t *w, size_t n_out, size_t n_in,
                           const uint64_t *const *x, size_t n, const hnn_modulus *m, int threads,
                           hnn_kernel kernel);

/* 1 if sparse rows o and p read the same inputs in the same order (linear.c). */
int _hnn_same_inputs(const hnn_tile_args *a, size_t o, size_t p);

/* AVX-512 IFMA tile kernels (linear_avx512.c). Only call after hnn_avx512_available();
 * require (j1 - j0) % 16 == 0 and j0 % 8 == 0. */
void _hnn_tile_dense_avx512(const hnn_tile_args *a, size_t o0, size_t o1, size_t j0, size_t j1);
void _hnn_tile_sparse_avx512(const hnn_tile_args *a, size_t o0, size_t o1, size_t j0,
                             size_t j1);

/* ---- schedule internals (schedule.c), shared with the executor ---- */
/* What tile t of a stage reads: the intermediates (B inputs, sorted), the A rows computing them
 * (sorted; none without A) and the stage inputs (sorted). mark_* and epoch: dedup scratch. */
typedef struct hnn_tile_needs {
    uint32_t *inter, *a_rows, *inputs;
    size_t ninter, na_rows, ninputs;
    uint32_t *mark_inter, *mark_in, epoch;
} hnn_tile_needs;
PPNN_MUST_CHECK ppnn_status _hnn_needs_init(hnn_tile_needs *nd, const hnn_plan *p,
                                            const hnn_stage *g);
void _hnn_needs_free(hnn_tile_needs *nd);
void _hnn_tile_needs(hnn_tile_needs *nd, const hnn_plan *p, const hnn_stage *g, size_t t);
/* first[i] / last[i]: the first and last tile reading stage input i (SIZE_MAX / 0: none). */
PPNN_MUST_CHECK ppnn_status _hnn_input_uses(size_t *first, size_t *last, const hnn_plan *p,
                                            const hnn_stage *g);
/* Level of a stage's inputs; bytes of one intermediate (A output grown to its square, or a
 * copied input squared) and of one B output while it is computed. */
size_t _hnn_stage_level_in(const hnn_plan *p, const hnn_stage *g);
uint64_t _hnn_inter_bytes(const hnn_plan *p, const hnn_stage *g, size_t n);
uint64_t _hnn_out_work_bytes(const hnn_plan *p, const hnn_stage *g, size_t n);

/* ---- scratch file of spilled ciphertexts (spill.c) ---- */
typedef struct hnn_spill hnn_spill;
/* An unlinked file in dir (NULL/empty: $TMPDIR or /tmp) for `count` ciphertexts of params. */
PPNN_MUST_CHECK ppnn_status _hnn_spill_open(hnn_spill **out, const char *dir, size_t count,
                                            const ckks_params *params);
void _hnn_spill_close(hnn_spill *sp); /* NULL is a no-op */
/* Writes ciphertext i (thread-safe for distinct i). */
PPNN_MUST_CHECK ppnn_status _hnn_spill_put(hnn_spill *sp, size_t i, const ckks_ciphertext *ct);
/* Reads ciphertext i back into ct (checksum verified; thread-safe for distinct i). */
PPNN_MUST_CHECK ppnn_status _hnn_spill_get(hnn_spill *sp, size_t i, ckks_ciphertext *ct);
uint64_t _hnn_spill_written(const hnn_spill *sp);
int _hnn_spill_fd(const hnn_spill *sp); /* tests: corrupt the file */

/* ---- pieces of one step, shared by the executor (exec.c) and the per-step API (step.c) ---- */
/* Per-prime weights round(w·Δw) mod q_i and biases for primes q_0..q_l of linear step s:
 * arrays nw x (l+1) and n_out x (l+1) (biases in row order), prime-major; scale_out is the
 * scale the outputs return to after the step's rescales. PPNN_ERR_NUMERIC when too large. */
PPNN_MUST_CHECK ppnn_status _hnn_encode_linear(uint64_t *wq, uint64_t *bq, const hnn_step *s,
                                               const ckks_params *prm, size_t l,
                                               double scale_out);
/* Scales of linear step s's outputs for inputs at scale `in`: before its rescales (pre), after
 * them (post), and the scale its weights aim at (scale_out). */
void _hnn_linear_scales(double *pre, double *post, double *scale_out, const hnn_step *s,
                        const ckks_params *prm, double in);
/* Activation step s on element c, in place. */
PPNN_MUST_CHECK ppnn_status _hnn_act_one(ckks_ciphertext *ct, const hnn_step *s, size_t c);
/* Banded sparse tiles (linear.c plans the bands, linear_avx512.c runs them): a band is a run
 * of rows whose inputs all lie in a window of consecutive inputs; the window's X slices for a
 * block of lanes are packed into a stack buffer of HNN_BAND_WORDS words (512 KB, half an
 * L2) and every row of the band reads from there. Lanes per tile: from HNN_BAND_LANES_MIN
 * (window up to 2048 inputs) to HNN_BAND_LANES_MAX (one 4 KB page of each row, window 128). */
#define HNN_BAND_WORDS 65536
#define HNN_BAND_LANES_MIN 32
#define HNN_BAND_LANES_MAX 512
/* Requires rows [o0, o1) to read only inputs in [c0, c1), (c1 - c0)·(j1 - j0) <=
 * HNN_BAND_WORDS, (j1 - j0) % 32 == 0, j0 % 8 == 0. Inputs of the window that no row reads
 * may be NULL (the executor passes only a tile's inputs). Uses ~580 KB of stack. */
void _hnn_tile_banded_avx512(const hnn_tile_args *a, size_t o0, size_t o1, size_t c0, size_t c1,
                             size_t j0, size_t j1);

/* Called on an OpenMP worker after a failure: keeps the first failure's code and message
 * (messages are per thread) so the caller's thread can report it (exec.c). */
void _hnn_keep_first_error(ppnn_status *err, char *msg, size_t len, ppnn_status e);

/* HNN_NOISE_SIGMAS standard deviations of one rescale's rounding noise per slot, in value
 * units at the budget's scale (noise.c; the planner's square conditioning balances it). */
double _hnn_rescale_noise(const hnn_budget *b);

#endif
