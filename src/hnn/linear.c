/* Linear-layer kernels: tiling, OpenMP, runtime dispatch, and the portable C tile kernels.
 *
 * Work is cut into tiles of OUT_CHUNK outputs x COL_BLOCK coefficients. A dense tile reads an
 * n_in x COL_BLOCK slice of X (845 x 128 x 8 B = 865 KB for the CryptoNets dense layer: it stays
 * in L2) and OUT_CHUNK rows of W. Tiles are numbered column-block-major and handed out in
 * contiguous static chunks, so consecutive tiles of one thread share the same X slice.
 *
 * The portable kernel accumulates each output value in an unsigned 128-bit integer and reduces
 * once. Overflow bound: every product w·x <= (q-1)^2 < 2^100 and bias < q < 2^50, so after
 * t <= HNN_LINEAR_MAX_TERMS = 2^14 products acc < 2^50 + 2^14 · 2^100 < 2^115 < 2^128.
 * Both kernels return the exact residue in [0, q), hence bit-identical results. */
#include <assert.h>
#include <omp.h>

#include "hnn/inner.h"

__extension__ typedef unsigned __int128 u128;

#define COL_BLOCK 128 /* coefficients per tile (multiple of 16 for the AVX-512 kernel) */
#define OUT_CHUNK HNN_TILE_OUT /* outputs per tile */
#define PORT_LANES 32 /* coefficients accumulated at once by the portable kernel */

void hnn_modulus_init(hnn_modulus *m, uint64_t q)
{
    assert(q >= 3 && q < (1ull << 50));
    m->q = q;
    m->one_shoup = (uint64_t)(((u128)1 << 52) / q);
    m->r52 = (uint64_t)(((u128)1 << 52) % q);
    m->r52_shoup = (uint64_t)(((u128)m->r52 << 52) / q);
    m->r104 = (uint64_t)(((u128)m->r52 * m->r52) % q);
    m->r104_shoup = (uint64_t)(((u128)m->r104 << 52) / q);
}

int hnn_avx512_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
}

/* One output row o, coefficients [j0, j1): terms (cols[t], w[t]) for t < nt; cols == NULL means
 * the dense row (input t). */
static void port_row(const hnn_tile_args *a, size_t o, const uint32_t *cols, const uint64_t *w,
                     size_t nt, size_t j0, size_t j1)
{
    const uint64_t q = a->m->q;
    const uint64_t b = a->bias ? a->bias[o] : 0;
    uint64_t *yo = a->y[o];
    for (size_t jb = j0; jb < j1; jb += PORT_LANES) {
        size_t len = j1 - jb < PORT_LANES ? j1 - jb : PORT_LANES;
        u128 acc[PORT_LANES];
        for (size_t k = 0; k < len; k++)
            acc[k] = b;
        for (size_t t = 0; t < nt; t++) {
            const uint64_t *xr = a->x[cols ? cols[t] : t] + jb;
            const uint64_t wt = w[t];
            for (size_t k = 0; k < len; k++)
                acc[k] += (u128)wt * xr[k];
        }
        for (size_t k = 0; k < len; k++)
            yo[jb + k] = (uint64_t)(acc[k] % q);
    }
}

static void tile_portable(const hnn_tile_args *a, size_t o0, size_t o1, size_t j0, size_t j1)
{
    for (size_t o = o0; o < o1; o++) {
        if (a->row_start) {
            size_t s = a->row_start[o], e = a->row_start[o + 1];
            port_row(a, o, a->col + s, a->w + s, e - s, j0, j1);
        } else {
            port_row(a, o, NULL, a->w + o * a->n_in, a->n_in, j0, j1);
        }
    }
}

typedef void (*tile_fn)(const hnn_tile_args *, size_t, size_t, size_t, size_t);

static void run_tiles(const hnn_tile_args *a, size_t n_out, size_t n, int threads,
                      hnn_kernel kernel)
{
    int avx = kernel != HNN_KERNEL_PORTABLE && n % HNN_AVX_LANES == 0 && hnn_avx512_available();
    tile_fn fn = tile_portable;
    if (avx)
        fn = a->row_start ? _hnn_tile_sparse_avx512 : _hnn_tile_dense_avx512;
    const size_t n_cb = (n + COL_BLOCK - 1) / COL_BLOCK;
    const size_t n_oc = (n_out + OUT_CHUNK - 1) / OUT_CHUNK;
    const long n_tiles = (long)(n_cb * n_oc);
    int nt = threads > 0 ? threads : omp_get_max_threads();
    if (n_tiles < nt)
        nt = (int)n_tiles;
#pragma omp parallel for schedule(static) num_threads(nt > 0 ? nt : 1)
    for (long t = 0; t < n_tiles; t++) {
        size_t cb = (size_t)t / n_oc, oc = (size_t)t % n_oc;
        size_t j0 = cb * COL_BLOCK, j1 = j0 + COL_BLOCK < n ? j0 + COL_BLOCK : n;
        size_t o0 = oc * OUT_CHUNK, o1 = o0 + OUT_CHUNK < n_out ? o0 + OUT_CHUNK : n_out;
        fn(a, o0, o1, j0, j1);
    }
}

void _hnn_linear_dense(uint64_t *const *y, const uint64_t *w, const uint64_t *bias, size_t n_out,
                       size_t n_in, const uint64_t *const *x, size_t n, const hnn_modulus *m,
                       int threads, hnn_kernel kernel)
{
    assert(n_in <= HNN_LINEAR_MAX_TERMS);
    hnn_tile_args a = {y, w, NULL, NULL, bias, n_in, x, m};
    run_tiles(&a, n_out, n, threads, kernel);
}

void _hnn_linear_sparse(uint64_t *const *y, const uint32_t *row_start, const uint32_t *col,
                        const uint64_t *val, const uint64_t *bias, size_t n_out,
                        const uint64_t *const *x, size_t n, const hnn_modulus *m, int threads,
                        hnn_kernel kernel)
{
    for (size_t o = 0; o < n_out; o++)
        assert(row_start[o] <= row_start[o + 1] &&
               row_start[o + 1] - row_start[o] <= HNN_LINEAR_MAX_TERMS);
    hnn_tile_args a = {y, val, row_start, col, bias, 0, x, m};
    run_tiles(&a, n_out, n, threads, kernel);
}
