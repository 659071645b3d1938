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

#ifdef __cplusplus
}
#endif
#endif
