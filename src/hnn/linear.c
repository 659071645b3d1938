/* Linear-layer kernels: tiling, OpenMP, runtime dispatch, and the portable C tile kernels.
 *
 * Work is cut into tiles of OUT_CHUNK outputs x COL_BLOCK coefficients. A dense tile reads an
 * n_in x COL_BLOCK slice of X (845 x 128 x 8 B = 865 KB for the CryptoNets dense layer: it stays
 * in L2) and OUT_CHUNK rows of W. Tiles are numbered column-block-major and handed out in
 * contiguous static chunks, so consecutive tiles of one thread share the same X slice.
 *
 * The sparse AVX-512 path is tiled differently (run_bands): a conv reads each input only ~31
 * times (5x5/2, 5 channels), so X traffic, not arithmetic, bounded the dense-style tiles
 * (9 G MAC/s per thread on the CryptoNets conv). Rows are cut into bands whose inputs lie in
 * a window of consecutive inputs; a tile is one band x up to 512 lanes, and it first packs the
 * window's X slices into a stack buffer (<= 512 KB, L2) that every row of the band then
 * reads: 12.8 G MAC/s per thread (CPU time, N = 2^13, one prime; 16-17 when X is in cache).
 *
 * The portable kernel accumulates each output value in an unsigned 128-bit integer and reduces
 * once (reduce128). Overflow bound: every product w·x <= (q-1)^2 < 2^100 and bias (+ start value
 * y0 in accumulate mode) < 2q < 2^51, so after t <= HNN_LINEAR_MAX_TERMS = 2^14 products
 * acc < 2^51 + 2^14·2^100 < 2^115 < 2^128.
 * Both kernels return the exact residue in [0, q), hence bit-identical results. */
#include <assert.h>
#include <omp.h>
#include <stdlib.h>

#include "hnn/inner.h"

__extension__ typedef unsigned __int128 u128;

/* Coefficients per tile: a multiple of HNN_AVX_LANES (32 = the AVX-512 register block of
 * NV = 4 vectors x 8 lanes), so every full tile takes the AVX-512 path. */
#define COL_BLOCK 128
_Static_assert(COL_BLOCK % HNN_AVX_LANES == 0, "tiles are whole AVX-512 register blocks");
#define OUT_CHUNK HNN_TILE_OUT /* outputs per tile */

void hnn_modulus_init(hnn_modulus *m, uint64_t q)
{
    assert(q >= 3 && q < (1ull << 50));
    mq_modulus_init(m, q);
}

int hnn_avx512_available(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512ifma");
}

/* x·c mod q in [0, 2q) for x < 2^52, c < q, cs = floor(c·2^52/q) (Shoup; the proof is in
 * linear_avx512.c). The exact result is < 2^51, so wrapping 64-bit arithmetic computes it. */
static inline uint64_t shoup52(uint64_t x, uint64_t c, uint64_t cs, uint64_t q)
{
    uint64_t qhat = (uint64_t)(((u128)x * cs) >> 52);
    return x * c - qhat * q;
}

/* acc mod q for acc < 2^115: acc = l0 + 2^52·l1 + 2^104·l2 with l0, l1 < 2^52, l2 < 2^11, so
 * acc ≡ l0 + l1·(2^52 mod q) + l2·(2^104 mod q); each term in [0, 2q), sum < 6q. */
static inline uint64_t reduce128(u128 acc, const hnn_modulus *m)
{
    const uint64_t mask = (1ull << 52) - 1, q = m->q;
    uint64_t s = shoup52((uint64_t)acc & mask, 1, m->one_shoup, q) +
                 shoup52((uint64_t)(acc >> 52) & mask, m->r52, m->r52_shoup, q) +
                 shoup52((uint64_t)(acc >> 104), m->r104, m->r104_shoup, q);
    s = s >= 4 * q ? s - 4 * q : s;
    s = s >= 2 * q ? s - 2 * q : s;
    return s >= q ? s - q : s;
}

int _hnn_same_inputs(const hnn_tile_args *a, size_t o, size_t p)
{
    size_t s = a->row_start[o], n = a->row_start[o + 1] - s;
    size_t sp = a->row_start[p];
    if (a->row_start[p + 1] - sp != n)
        return 0;
    for (size_t t = 0; t < n; t++)
        if (a->col[s + t] != a->col[sp + t])
            return 0;
    return 1;
}

#define PL 8   /* portable: lanes per step (one cache line of X per row) */
#define PIB 64 /* portable: rows per packed X block (4 KB) */

/* Rows [o0, o1) reading the same len inputs (cols[i], or input i when cols == NULL), lanes
 * [j0, j1). Same structure as the AVX-512 kernel: the X block is packed (its rows are 4 KB
 * aliased in L1) and reused by every row; per-row partial sums wait in acc between blocks. */
static void port_rows(const hnn_tile_args *a, size_t o0, size_t o1, const uint32_t *cols,
                      size_t len, size_t j0, size_t j1)
{
    u128 acc[HNN_TILE_OUT][PL];
    uint64_t xp[PIB][PL];
    assert(o1 - o0 <= HNN_TILE_OUT);
    for (size_t j = j0; j < j1; j += PL) {
        const size_t nl = j1 - j < PL ? j1 - j : PL;
        for (size_t o = o0; o < o1; o++)
            for (size_t k = 0; k < PL; k++)
                acc[o - o0][k] = (a->bias ? a->bias[o] : 0) + (a->y0 && k < nl ? a->y0[o][j + k] : 0);
        for (size_t i0 = 0; i0 < len; i0 += PIB) {
            const size_t i1 = len - i0 > PIB ? i0 + PIB : len;
            for (size_t i = i0; i < i1; i++) {
                const uint64_t *xr = a->x[cols ? cols[i] : i] + j;
                for (size_t k = 0; k < PL; k++)
                    xp[i - i0][k] = k < nl ? xr[k] : 0;
            }
            for (size_t o = o0; o < o1; o++) {
                const uint64_t *w = a->w + (a->row_start ? a->row_start[o] : o * a->n_in);
                u128 c[PL];
                for (size_t k = 0; k < PL; k++)
                    c[k] = acc[o - o0][k];
                for (size_t i = i0; i < i1; i++)
                    for (size_t k = 0; k < PL; k++)
                        c[k] += (u128)w[i] * xp[i - i0][k];
                for (size_t k = 0; k < PL; k++)
                    acc[o - o0][k] = c[k];
            }
        }
        for (size_t o = o0; o < o1; o++)
            for (size_t k = 0; k < nl; k++)
                a->y[o][j + k] = reduce128(acc[o - o0][k], a->m);
    }
}

static void tile_portable(const hnn_tile_args *a, size_t o0, size_t o1, size_t j0, size_t j1)
{
    if (!a->row_start) {
        port_rows(a, o0, o1, NULL, a->n_in, j0, j1);
        return;
    }
    for (size_t o = o0; o < o1;) {
        size_t run = 1;
        while (o + run < o1 && _hnn_same_inputs(a, o, o + run))
            run++;
        port_rows(a, o, o + run, a->col + a->row_start[o], a->row_start[o + 1] - a->row_start[o],
                  j0, j1);
        o += run;
    }
}

static int use_avx(size_t n, hnn_kernel kernel)
{
    return kernel != HNN_KERNEL_PORTABLE && n % HNN_AVX_LANES == 0 && hnn_avx512_available();
}

typedef void (*tile_fn)(const hnn_tile_args *, size_t, size_t, size_t, size_t);

static void run_tiles(const hnn_tile_args *a, size_t n_out, size_t n, int threads,
                      hnn_kernel kernel)
{
    int avx = use_avx(n, kernel);
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
    hnn_linear_job jb = {{y, w, NULL, NULL, bias, n_in, x, m, NULL}, n_out};
    _hnn_linear_run(&jb, 1, n, threads, kernel);
}

/* The start value y0 < q joins the bias (< q) in the first accumulator word: both kernels' bounds
 * start from a value < 2^51 < 2^52, which the proofs allow (see linear_avx512.c). */
void _hnn_linear_dense_acc(uint64_t *const *y, const uint64_t *w, size_t n_out, size_t n_in,
                           const uint64_t *const *x, size_t n, const hnn_modulus *m, int threads,
                           hnn_kernel kernel)
{
    hnn_linear_job jb = {{y, w, NULL, NULL, NULL, n_in, x, m, (const uint64_t *const *)y}, n_out};
    _hnn_linear_run(&jb, 1, n, threads, kernel);
}

/* Rows [o0, o1) of a sparse matrix: either a band (every input in [c0, c1), at most `cap`
 * inputs) or, when wide, rows that each read a wider window (run unpacked). */
typedef struct {
    size_t o0, o1, c0, c1;
    int wide;
} band;

/* Input window [lo, hi) of row o (lo = hi = 0 for an empty row). */
static void row_window(size_t *lo, size_t *hi, const hnn_tile_args *a, size_t o)
{
    *lo = SIZE_MAX, *hi = 0;
    for (size_t t = a->row_start[o]; t < a->row_start[o + 1]; t++) {
        *lo = a->col[t] < *lo ? a->col[t] : *lo;
        *hi = a->col[t] + 1u > *hi ? a->col[t] + 1u : *hi;
    }
    if (*lo == SIZE_MAX)
        *lo = 0;
}

/* Greedy bands in row order: a row joins the current band while the band's input window stays
 * within cap inputs. Returns the number of bands (<= n_out). */
static size_t plan_bands(band *b, const hnn_tile_args *a, size_t n_out, size_t cap)
{
    size_t nb = 0;
    for (size_t o = 0; o < n_out; o++) {
        size_t lo, hi;
        row_window(&lo, &hi, a, o);
        band *cur = nb ? &b[nb - 1] : NULL;
        if (lo == hi && cur && !(cur->wide && cur->o1 - cur->o0 >= HNN_TILE_OUT)) {
            cur->o1 = o + 1; /* empty row: fits any band (a wide one within one tile) */
            continue;
        }
        int wide = hi - lo > cap;
        if (cur && cur->wide == wide) {
            size_t nlo = lo < cur->c0 ? lo : cur->c0, nhi = hi > cur->c1 ? hi : cur->c1;
            if (wide ? cur->o1 - cur->o0 < HNN_TILE_OUT : nhi - nlo <= cap) {
                cur->o1 = o + 1, cur->c0 = nlo, cur->c1 = nhi;
                continue;
            }
        }
        b[nb++] = (band){o, o + 1, lo, hi, wide};
    }
    return nb;
}

/* Lanes per banded tile: a power of two in [LANES_MIN, LANES_MAX], as large as possible (fewer
 * pages of X and Y touched per multiply-add) while the window, cap = HNN_BAND_WORDS / lanes
 * inputs, holds either every input or twice the widest row: bands then span several rows of
 * a conv's output, so each input is packed about once. CryptoNets conv (rows 117 inputs wide,
 * 784 in all): 256 lanes, 12.8 G MAC/s per thread against 11.2 at 512 and 11.0 at 32 (CPU
 * time, N = 2^13, one prime). */
static size_t band_lanes(const hnn_tile_args *a, size_t n_out, size_t n)
{
    size_t widest = 1, all_lo = SIZE_MAX, all_hi = 0;
    for (size_t o = 0; o < n_out; o++) {
        size_t lo, hi;
        row_window(&lo, &hi, a, o);
        widest = hi - lo > widest ? hi - lo : widest;
        if (hi > lo)
            all_lo = lo < all_lo ? lo : all_lo, all_hi = hi > all_hi ? hi : all_hi;
    }
    const size_t all = all_hi > all_lo ? all_hi - all_lo : 1;
    size_t lanes = HNN_BAND_LANES_MAX;
    while (lanes > HNN_BAND_LANES_MIN &&
           (lanes > n || (2 * widest > HNN_BAND_WORDS / lanes && all > HNN_BAND_WORDS / lanes)))
        lanes /= 2;
    return lanes;
}

/* One tile of one job of _hnn_linear_run. PLAIN: OUT_CHUNK x COL_BLOCK tiles (dense, the
 * portable kernel, or unbanded sparse); BAND: one band x `lanes` coefficients (packed window);
 * WIDE: a band of wide rows, run unpacked 32 lanes at a time. */
enum { TILE_PLAIN, TILE_BAND, TILE_WIDE };
typedef struct {
    size_t job, o0, o1, c0, c1, j0, j1;
    int kind;
} tile_desc;

/* The tiles of job `jb` (index ji) into d (NULL: only count them); bands: scratch for n_out
 * bands. Banded (sparse, AVX-512): lane-block-major, so that consecutive tiles (one thread's,
 * under a static schedule) are the bands of one lane block: neighbouring bands share inputs,
 * still in L2/L3. Plain: column-block-major, consecutive tiles share the X slice. */
static size_t plan_job(tile_desc *d, band *bands, const hnn_linear_job *jb, size_t ji, size_t n,
                       int avx)
{
    const hnn_tile_args *a = &jb->a;
    if (avx && a->row_start && bands) {
        const size_t lanes = band_lanes(a, jb->n_out, n), n_lb = (n + lanes - 1) / lanes;
        const size_t nb = plan_bands(bands, a, jb->n_out, HNN_BAND_WORDS / lanes);
        for (size_t t = 0; d && t < nb * n_lb; t++) {
            const band *bd = &bands[t % nb];
            size_t j0 = t / nb * lanes, j1 = j0 + lanes < n ? j0 + lanes : n;
            d[t] = (tile_desc){ji, bd->o0, bd->o1, bd->c0, bd->c1, j0, j1,
                               bd->wide ? TILE_WIDE : TILE_BAND};
        }
        return nb * n_lb;
    }
    const size_t n_cb = (n + COL_BLOCK - 1) / COL_BLOCK;
    const size_t n_oc = (jb->n_out + OUT_CHUNK - 1) / OUT_CHUNK;
    for (size_t t = 0; d && t < n_cb * n_oc; t++) {
        size_t cb = t / n_oc, oc = t % n_oc;
        size_t j0 = cb * COL_BLOCK, j1 = j0 + COL_BLOCK < n ? j0 + COL_BLOCK : n;
        size_t o0 = oc * OUT_CHUNK, o1 = o0 + OUT_CHUNK < jb->n_out ? o0 + OUT_CHUNK : jb->n_out;
        d[t] = (tile_desc){ji, o0, o1, 0, 0, j0, j1, TILE_PLAIN};
    }
    return n_cb * n_oc;
}

static void run_desc(const hnn_linear_job *jobs, const tile_desc *d, int avx)
{
    const hnn_tile_args *a = &jobs[d->job].a;
    switch (d->kind) {
    case TILE_BAND:
        _hnn_tile_banded_avx512(a, d->o0, d->o1, d->c0, d->c1, d->j0, d->j1);
        break;
    case TILE_WIDE:
        for (size_t j = d->j0; j < d->j1; j += HNN_BAND_LANES_MIN)
            _hnn_tile_sparse_avx512(a, d->o0, d->o1, j, j + HNN_BAND_LANES_MIN);
        break;
    default:
        if (!avx)
            tile_portable(a, d->o0, d->o1, d->j0, d->j1);
        else if (a->row_start)
            _hnn_tile_sparse_avx512(a, d->o0, d->o1, d->j0, d->j1);
        else
            _hnn_tile_dense_avx512(a, d->o0, d->o1, d->j0, d->j1);
    }
}

void _hnn_linear_run(const hnn_linear_job *jobs, size_t njobs, size_t n, int threads,
                     hnn_kernel kernel)
{
    _Static_assert(HNN_AVX_LANES % HNN_BAND_LANES_MIN == 0, "band lane blocks tile the AVX lanes");
    const int avx = use_avx(n, kernel);
    size_t max_out = 1, ntiles = 0;
    for (size_t j = 0; j < njobs; j++) {
        const hnn_tile_args *a = &jobs[j].a;
        assert(a->row_start || a->n_in <= HNN_LINEAR_MAX_TERMS);
        for (size_t o = 0; a->row_start && o < jobs[j].n_out; o++)
            assert(a->row_start[o] <= a->row_start[o + 1] &&
                   a->row_start[o + 1] - a->row_start[o] <= HNN_LINEAR_MAX_TERMS);
        max_out = jobs[j].n_out > max_out ? jobs[j].n_out : max_out;
    }
    band *bands = malloc(max_out * sizeof *bands);
    for (size_t j = 0; j < njobs; j++)
        ntiles += plan_job(NULL, bands, &jobs[j], j, n, avx);
    tile_desc *d = bands ? malloc((ntiles ? ntiles : 1) * sizeof *d) : NULL;
    if (!d) {
        /* Out of memory for the tile list: every job's plain tiles, one region per job (the
         * same residues, without the packed bands). */
        free(bands);
        for (size_t j = 0; j < njobs; j++)
            run_tiles(&jobs[j].a, jobs[j].n_out, n, threads, kernel);
        return;
    }
    for (size_t j = 0, t = 0; j < njobs; j++)
        t += plan_job(d + t, bands, &jobs[j], j, n, avx);
    free(bands);
    int nt = threads > 0 ? threads : omp_get_max_threads();
    nt = (long)ntiles < nt ? (int)ntiles : nt;
#pragma omp parallel for schedule(static) num_threads(nt > 0 ? nt : 1)
    for (long t = 0; t < (long)ntiles; t++)
        run_desc(jobs, &d[t], avx);
    free(d);
}

void _hnn_linear_sparse(uint64_t *const *y, const uint32_t *row_start, const uint32_t *col,
                        const uint64_t *val, const uint64_t *bias, size_t n_out,
                        const uint64_t *const *x, size_t n, const hnn_modulus *m, int threads,
                        hnn_kernel kernel)
{
    hnn_linear_job jb = {{y, val, row_start, col, bias, 0, x, m, NULL}, n_out};
    _hnn_linear_run(&jb, 1, n, threads, kernel);
}
