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
} hnn_tile_args;

/* Coefficient counts the AVX-512 kernels handle: multiples of this (else portable). */
#define HNN_AVX_LANES 32

/* Largest number of outputs in one tile. */
/* (a multiple of the AVX-512 register block of 3 rows; 120 rows of W stay in L2) */
#define HNN_TILE_OUT 120

/* 1 if sparse rows o and p read the same inputs in the same order (linear.c). */
int _hnn_same_inputs(const hnn_tile_args *a, size_t o, size_t p);

/* AVX-512 IFMA tile kernels (linear_avx512.c). Only call after hnn_avx512_available();
 * require (j1 - j0) % 16 == 0 and j0 % 8 == 0. */
void _hnn_tile_dense_avx512(const hnn_tile_args *a, size_t o0, size_t o1, size_t j0, size_t j1);
void _hnn_tile_sparse_avx512(const hnn_tile_args *a, size_t o0, size_t o1, size_t j0,
                             size_t j1);

/* Banded sparse tiles (linear.c plans the bands, linear_avx512.c runs them): a band is a run
 * of rows whose inputs all lie in a window of consecutive inputs; the window's X slices for a
 * block of lanes are packed into a stack buffer of HNN_BAND_WORDS words (512 KB, half an
 * L2) and every row of the band reads from there. Lanes per tile: from HNN_BAND_LANES_MIN
 * (window up to 2048 inputs) to HNN_BAND_LANES_MAX (one 4 KB page of each row, window 128). */
#define HNN_BAND_WORDS 65536
#define HNN_BAND_LANES_MIN 32
#define HNN_BAND_LANES_MAX 512
/* Requires rows [o0, o1) to read only inputs in [c0, c1), (c1 - c0)·(j1 - j0) <=
 * HNN_BAND_WORDS, (j1 - j0) % 32 == 0, j0 % 8 == 0. Uses ~580 KB of stack. */
void _hnn_tile_banded_avx512(const hnn_tile_args *a, size_t o0, size_t o1, size_t c0, size_t c1,
                             size_t j0, size_t j1);

/* Called on an OpenMP worker after a failure: keeps the first failure's code and message
 * (messages are per thread) so the caller's thread can report it (exec.c). */
void _hnn_keep_first_error(ppnn_status *err, char *msg, size_t len, ppnn_status e);

/* HNN_NOISE_SIGMAS standard deviations of one rescale's rounding noise per slot, in value
 * units at the budget's scale (noise.c; the planner's square conditioning balances it). */
double _hnn_rescale_noise(const hnn_budget *b);

#endif
