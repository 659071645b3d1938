/* AVX-512 IFMA tile kernels for the linear layers (compiled with -mavx512ifma; called only
 * after hnn_avx512_available()). Same results as the portable kernel, bit for bit. Primes
 * below 2^28 (the rescale primes of n13) take a 32-bit multiply path instead (mac_block, narrow:
 * one vpmuludq + one add per multiply-add instead of two IFMA); the rest of this comment is
 * the IFMA path's.
 *
 * Accumulation. vpmadd52luq / vpmadd52huq add the low / high 52 bits of the 104-bit product of
 * the low 52 bits of two lanes. Inputs are residues < q < 2^50, so they fit and the product
 * w·x <= (q-1)^2 < 2^100 is represented exactly as lo52 + 2^52·hi52 with lo52 < 2^52 and
 * hi52 < 2^48. We keep two 64-bit accumulators per lane, LO and HI, value = LO + 2^52·HI.
 *   - LO starts at bias (+ the start value y0 in accumulate mode) < 2q < 2^51 <= 2^52 - 1.
 *     After every block of at most IB <= CHUNK = 4095 products we
 *     normalise: HI += LO >> 52, LO &= 2^52 - 1. Between normalisations
 *     LO <= (2^52 - 1) + 4095·(2^52 - 1) = 2^12·(2^52 - 1) < 2^64: no overflow.
 *   - HI receives < 2^48 per product plus < 2^12 per normalisation (at most one per product).
 *     With at most HNN_LINEAR_MAX_TERMS = 2^14 products, HI < 2^14·(2^48 + 2^12) < 2^63.
 * Reduction, once per output value. After the final normalisation value = l + 2^52·h with
 * l < 2^52, h < 2^63; write h = h0 + 2^52·h1 (h0 < 2^52, h1 < 2^11). Then
 *   value ≡ l·1 + h0·(2^52 mod q) + h1·(2^104 mod q)   (mod q),
 * and each product x·c with x < 2^52 and constant c < q is reduced by Shoup's method in 52-bit
 * words: c' = floor(c·2^52/q), qhat = hi52(x·c') satisfies x·c/q - 2 < qhat <= x·c/q (because
 * c·2^52/q - 1 < c' <= c·2^52/q and x < 2^52), so r = x·c - qhat·q lies in [0, 2q) and, as
 * 2q < 2^52, equals (lo52(x·c) - lo52(qhat·q)) mod 2^52. The three terms sum to < 6q < 2^53;
 * three conditional subtractions (of 4q, 2q, q; unsigned min(s, s - k·q)) give [0, q).
 * Small primes, q < 2^44 (every prime of the n13/n14 presets but the special one): each
 * product's high word is hi52(w·x) <= (q-1)^2 / 2^52 < 2^36, so HI < 2^14·2^36 + 2^14·2^12
 * < 2^51 (the second term: at most one normalisation carry < 2^12 per product): h1 = 0, h0 =
 * HI, and value ≡ l + HI·(2^52 mod q) is two Shoup terms < 4q, two subtractions (of 2q, q). */
#include <assert.h>
#include <immintrin.h>

#include "hnn/inner.h"

#define CHUNK 4095u

typedef struct {
    __m512i q, q2, q4, m52, one_s, r52, r52_s, r104, r104_s, m32, r32;
    int small; /* q < SMALL_Q: the reduction drops the 2^104 term (see above) */
    int q28;   /* q < Q28: the 32-bit multiply path (mac_block, narrow) */
} red_consts;

#define SMALL_Q (1ull << 44)
#define Q28 (1ull << 28)

static inline red_consts make_consts(const hnn_modulus *m)
{
    red_consts c;
    c.q = _mm512_set1_epi64((long long)m->q);
    c.q2 = _mm512_set1_epi64((long long)(2 * m->q));
    c.q4 = _mm512_set1_epi64((long long)(4 * m->q));
    c.m52 = _mm512_set1_epi64((long long)((1ull << 52) - 1));
    c.one_s = _mm512_set1_epi64((long long)m->one_shoup);
    c.r52 = _mm512_set1_epi64((long long)m->r52);
    c.r52_s = _mm512_set1_epi64((long long)m->r52_shoup);
    c.r104 = _mm512_set1_epi64((long long)m->r104);
    c.r104_s = _mm512_set1_epi64((long long)m->r104_shoup);
    c.m32 = _mm512_set1_epi64((long long)0xffffffffull);
    c.r32 = _mm512_set1_epi64((long long)(((uint64_t)1 << 32) % m->q));
    c.small = m->q < SMALL_Q;
    c.q28 = m->q < Q28;
    return c;
}

/* x·c mod q in [0, 2q) for x < 2^52, c < q, cs = floor(c·2^52/q). */
static inline __m512i shoup52(__m512i x, __m512i c, __m512i cs, const red_consts *k)
{
    const __m512i z = _mm512_setzero_si512();
    __m512i qhat = _mm512_madd52hi_epu64(z, x, cs);
    __m512i a = _mm512_madd52lo_epu64(z, x, c);
    __m512i b = _mm512_madd52lo_epu64(z, qhat, k->q);
    return _mm512_and_si512(_mm512_sub_epi64(a, b), k->m52);
}

static inline void normalise(__m512i *lo, __m512i *hi, const red_consts *k)
{
    *hi = _mm512_add_epi64(*hi, _mm512_srli_epi64(*lo, 52));
    *lo = _mm512_and_si512(*lo, k->m52);
}

/* (lo + 2^52·hi) mod q, given lo < 2^52 and hi < 2^63 (see the proof above). */
static inline __m512i reduce(__m512i lo, __m512i hi, const red_consts *k)
{
    const __m512i one = _mm512_set1_epi64(1);
    if (k->small) { /* hi < 2^51: h1 = 0 */
        __m512i s = _mm512_add_epi64(shoup52(lo, one, k->one_s, k),
                                     shoup52(hi, k->r52, k->r52_s, k));
        s = _mm512_min_epu64(s, _mm512_sub_epi64(s, k->q2));
        return _mm512_min_epu64(s, _mm512_sub_epi64(s, k->q));
    }
    __m512i h0 = _mm512_and_si512(hi, k->m52), h1 = _mm512_srli_epi64(hi, 52);
    __m512i s = shoup52(lo, one, k->one_s, k);
    s = _mm512_add_epi64(s, shoup52(h0, k->r52, k->r52_s, k));
    s = _mm512_add_epi64(s, shoup52(h1, k->r104, k->r104_s, k));
    s = _mm512_min_epu64(s, _mm512_sub_epi64(s, k->q4));
    s = _mm512_min_epu64(s, _mm512_sub_epi64(s, k->q2));
    return _mm512_min_epu64(s, _mm512_sub_epi64(s, k->q));
}

/* Register block: RO outputs x NV vectors of 8 lanes, {lo, hi} each: 24 of the 32 zmm registers.
 * Measured (CPU time, CryptoNets dense shape, packed X): 3 x 4 at 19.8 Gmac/s vs 5 x 2 at
 * 18.9; before packing X, 5 x 2 was ahead (14 vs 13). */
#define RO 3
#define NV 4
_Static_assert(RO == 3, "mac_group dispatches the row counts 1..RO");
#define IB 64 /* terms per block: a packed X slice of IB rows x 8·NV lanes (16 KB) stays in L1 */
_Static_assert(HNN_AVX_LANES % (8 * NV) == 0, "dispatch lane multiple vs register block");
_Static_assert(IB <= CHUNK, "one normalisation per block keeps the LO bound");

/* The start of output row o at lanes [j, j+8): its bias, plus the start values y0 when given
 * (both < q). */
static inline __m512i start_value(const hnn_tile_args *a, size_t o, size_t j)
{
    __m512i s = _mm512_set1_epi64((long long)(a->bias ? a->bias[o] : 0));
    return a->y0 ? _mm512_add_epi64(s, _mm512_loadu_si512(a->y0[o] + j)) : s;
}

/* The 8·NV lanes of term i: at xp + 8·NV·(i - i0) (a packed block), or, when gathered, at
 * xp + 8·NV·(gcols[i] - gbase) (a packed band). */
static inline __attribute__((always_inline)) void
load_x(__m512i *xv, const uint64_t *xp, int gathered, const uint32_t *gcols, size_t gbase,
       size_t i, size_t i0)
{
    const uint64_t *xr = xp + (gathered ? gcols[i] - gbase : i - i0) * 8 * NV;
#pragma GCC unroll 4
    for (size_t v = 0; v < NV; v++)
        xv[v] = _mm512_loadu_si512(xr + 8 * v);
}

/* Accumulators of one output x 8·NV lanes kept between input blocks: lo[NV][8], hi[NV][8]. */
typedef struct {
    uint64_t v[2 * NV][8];
} accblk;

/* The 32-bit multiply path, for q < 2^28 (the 28-bit rescale primes of n13): residues and
 * weights are < 2^28, so vpmuludq (32 x 32 -> 64 bits of the low halves of each lane) gives a
 * product < 2^56 exactly, and one 64-bit accumulator per lane takes a whole block of
 * IB <= 64 of them: one multiply and one add per multiply-add, against two IFMA (lo, hi) on
 * the 52-bit path, and the multiply pipes are the bottleneck. Bounds: a block starts below
 * 2^60 and adds < 64 * 2^56 = 2^62, so it ends below 2^63; fold(s) = (s >> 32)·(2^32 mod q) +
 * (s mod 2^32) ≡ s (mod q) and is < 2^31·2^28 + 2^32 < 2^60, the next block's start. The
 * output value is fold(s) < 2^60 = lo + 2^52·hi with hi < 2^8, reduced exactly by reduce()
 * (small path). Same residues as the IFMA path, bit for bit. RO32 rows (5: a conv's channels
 * at one position, and 20 groups of the CryptoNets fc1) share each X load: 20 accumulators. */
#define RO32 5
_Static_assert(RO32 >= RO, "the row-group buffers are sized by RO32");
_Static_assert(IB <= 64, "a block of the 32-bit path adds < 64 products of < 2^56");

static inline __m512i fold32(__m512i s, const red_consts *k)
{
    return _mm512_add_epi64(_mm512_mul_epu32(_mm512_srli_epi64(s, 32), k->r32),
                            _mm512_and_si512(s, k->m32));
}

/* Register block: outputs [o, o+ro) x coefficients [j, j+8·NV), terms [i0, i1) of rows that read
 * the same inputs (dense: input i; sparse: input cols[i]) with weights wr[r][i]. The 8·NV
 * lanes of term i are at xp + 8·NV·(i - i0) (a packed block), or, when gathered, at
 * xp + 8·NV·(gcols[i] - gbase) (a packed band, see _hnn_tile_banded_avx512). Starts from
 * the bias when i0 == 0, else from acc; reduces into y when i1 == len, else saves to acc.
 * narrow (a compile-time constant): the 32-bit path above, one accumulator per lane (ro <=
 * RO32), folded per block; else the IFMA path, {lo, hi} per lane (ro <= RO), normalised per
 * block (i1 - i0 <= IB <= CHUNK keeps the bound). */
static inline __attribute__((always_inline)) void
mac_block(const hnn_tile_args *a, size_t ro, int gathered, int narrow, size_t o, size_t j,
          const uint64_t *xp, const uint32_t *gcols, size_t gbase, const uint64_t *const *wr,
          size_t i0, size_t i1, size_t len, accblk *acc, const red_consts *k)
{
    __m512i lo[RO32][NV], hi[RO32][NV];
#pragma GCC unroll 5
    for (size_t r = 0; r < ro; r++) {
#pragma GCC unroll 4
        for (size_t v = 0; v < NV; v++) {
            lo[r][v] = i0 == 0 ? start_value(a, o + r, j + 8 * v)
                               : _mm512_load_si512(acc[r].v[v]);
            if (!narrow)
                hi[r][v] = i0 == 0 ? _mm512_setzero_si512() : _mm512_load_si512(acc[r].v[NV + v]);
        }
    }
    for (size_t i = i0; i < i1; i++) {
        __m512i xv[NV];
        load_x(xv, xp, gathered, gcols, gbase, i, i0);
#pragma GCC unroll 5
        for (size_t r = 0; r < ro; r++) {
            __m512i wv = _mm512_set1_epi64((long long)wr[r][i]);
#pragma GCC unroll 4
            for (size_t v = 0; v < NV; v++) {
                if (narrow) {
                    lo[r][v] = _mm512_add_epi64(lo[r][v], _mm512_mul_epu32(xv[v], wv));
                } else {
                    lo[r][v] = _mm512_madd52lo_epu64(lo[r][v], xv[v], wv);
                    hi[r][v] = _mm512_madd52hi_epu64(hi[r][v], xv[v], wv);
                }
            }
        }
    }
#pragma GCC unroll 5
    for (size_t r = 0; r < ro; r++) {
#pragma GCC unroll 4
        for (size_t v = 0; v < NV; v++) {
            if (narrow) { /* the folded sum as lo + 2^52·hi for reduce() */
                __m512i t = fold32(lo[r][v], k);
                lo[r][v] = i1 == len ? _mm512_and_si512(t, k->m52) : t;
                hi[r][v] = _mm512_srli_epi64(t, 52);
            } else {
                normalise(&lo[r][v], &hi[r][v], k);
            }
            if (i1 == len) {
                _mm512_storeu_si512(a->y[o + r] + j + 8 * v, reduce(lo[r][v], hi[r][v], k));
            } else {
                _mm512_store_si512(acc[r].v[v], lo[r][v]);
                if (!narrow)
                    _mm512_store_si512(acc[r].v[NV + v], hi[r][v]);
            }
        }
    }
}

/* Rows [o, o + ro) through the path of the prime with a compile-time row count and addressing
 * (gathered when gcols != NULL): at most RO32 rows on the 32-bit path, RO on the IFMA one
 * (group_rows gives the group size). */
static inline size_t group_rows(const red_consts *k) { return k->q28 ? RO32 : RO; }

static void mac_group(const hnn_tile_args *a, size_t ro, size_t o, size_t j, const uint64_t *xp,
                      const uint32_t *gcols, size_t gbase, const uint64_t *const *wr, size_t i0,
                      size_t i1, size_t len, accblk *acc, const red_consts *k)
{
#define M52(R, G) mac_block(a, R, G, 0, o, j, xp, gcols, gbase, wr, i0, i1, len, acc, k)
#define M32(R, G) mac_block(a, R, G, 1, o, j, xp, gcols, gbase, wr, i0, i1, len, acc, k)
    assert(ro >= 1 && ro <= group_rows(k));
    switch ((k->q28 ? 16 : 0) + 2 * ro + (gcols != NULL)) {
    case 2: M52(1, 0); break;
    case 3: M52(1, 1); break;
    case 4: M52(2, 0); break;
    case 5: M52(2, 1); break;
    case 6: M52(3, 0); break;
    case 7: M52(3, 1); break;
    case 18: M32(1, 0); break;
    case 19: M32(1, 1); break;
    case 20: M32(2, 0); break;
    case 21: M32(2, 1); break;
    case 22: M32(3, 0); break;
    case 23: M32(3, 1); break;
    case 24: M32(4, 0); break;
    case 25: M32(4, 1); break;
    case 26: M32(5, 0); break;
    case 27: M32(5, 1); break;
    default: assert(0);
    }
#undef M52
#undef M32
}

/* Rows [o0, o1) (at most HNN_TILE_OUT) reading the same len inputs cols[0, len), all inside
 * the packed band xs (8·NV lanes per input, input c at xs + 8·NV·(c - c0)): terms in blocks of
 * IB (the normalisation bound; a block's inputs stay in L1 across the row groups). */
static void band_rows(const hnn_tile_args *a, size_t o0, size_t o1, const uint32_t *cols,
                      size_t len, size_t j, const uint64_t *xs, size_t c0, accblk *acc,
                      const red_consts *k)
{
    size_t i0 = 0;
    do {
        size_t i1 = len - i0 > IB ? i0 + IB : len;
        const size_t g = group_rows(k);
        for (size_t o = o0; o < o1; o += g) {
            size_t ro = o1 - o < g ? o1 - o : g;
            const uint64_t *wr[RO32];
            for (size_t r = 0; r < ro; r++)
                wr[r] = a->w + a->row_start[o + r];
            mac_group(a, ro, o, j, xs, cols, c0, wr, i0, i1, len, acc + (o - o0), k);
        }
        i0 = i1;
    } while (i0 < len);
}

/* Rows [o0, o1) that read the same len inputs (input cols[i], or input i when cols == NULL).
 * Loop order: 8·NV-lane column step, then input block, then groups of RO rows, so the X slice
 * of one input block is loaded from L2 once and reused from L1 by every row. The slice is first
 * copied to a contiguous buffer xp: the rows of X are typically N·8 bytes apart (a multiple of
 * 4 KB), so in place they all map to the same two L1 sets and evict each other (12 ways),
 * which cost 40% of the dense throughput before packing. */
static void run_rows(const hnn_tile_args *a, size_t o0, size_t o1, const uint32_t *cols,
                     size_t len, size_t j0, size_t j1, accblk *acc, uint64_t *xp,
                     const red_consts *k)
{
    for (size_t j = j0; j < j1; j += 8 * NV) {
        size_t i0 = 0;
        do {
            size_t i1 = len - i0 > IB ? i0 + IB : len;
            for (size_t i = i0; i < i1; i++) {
                const uint64_t *xr = a->x[cols ? cols[i] : i] + j;
                for (size_t v = 0; v < NV; v++)
                    _mm512_store_si512(xp + (i - i0) * 8 * NV + 8 * v,
                                       _mm512_loadu_si512(xr + 8 * v));
            }
            const size_t g = group_rows(k);
            for (size_t o = o0; o < o1; o += g) {
                size_t ro = o1 - o < g ? o1 - o : g;
                const uint64_t *wr[RO32];
                for (size_t r = 0; r < ro; r++)
                    wr[r] = a->w + (a->row_start ? a->row_start[o + r] : (o + r) * a->n_in);
                mac_group(a, ro, o, j, xp, NULL, 0, wr, i0, i1, len, acc + (o - o0), k);
            }
            i0 = i1;
        } while (i0 < len);
    }
}

void _hnn_tile_dense_avx512(const hnn_tile_args *a, size_t o0, size_t o1, size_t j0, size_t j1)
{
    assert((j1 - j0) % (8 * NV) == 0 && o1 - o0 <= HNN_TILE_OUT);
    const red_consts k = make_consts(a->m);
    _Alignas(64) accblk acc[HNN_TILE_OUT];
    _Alignas(64) uint64_t xp[IB * 8 * NV];
    run_rows(a, o0, o1, NULL, a->n_in, j0, j1, acc, xp, &k);
}

/* Sparse: runs of consecutive rows that read the same inputs (the channels of a conv at one
 * position, when the caller orders rows position-major) are processed like a dense block. */
void _hnn_tile_sparse_avx512(const hnn_tile_args *a, size_t o0, size_t o1, size_t j0,
                             size_t j1)
{
    assert((j1 - j0) % (8 * NV) == 0 && o1 - o0 <= HNN_TILE_OUT);
    const red_consts k = make_consts(a->m);
    _Alignas(64) accblk acc[HNN_TILE_OUT];
    _Alignas(64) uint64_t xp[IB * 8 * NV];
    for (size_t o = o0; o < o1;) {
        size_t run = 1;
        while (o + run < o1 && _hnn_same_inputs(a, o, o + run))
            run++;
        run_rows(a, o, o + run, a->col + a->row_start[o], a->row_start[o + 1] - a->row_start[o],
                 j0, j1, acc, xp, &k);
        o += run;
    }
}

/* Banded sparse tile: rows [o0, o1) whose inputs all lie in [c0, c1), lanes [j0, j1) (a
 * multiple of 8·NV). The X slices of the whole band are first copied to xs, lane block by
 * lane block (block b, input c at xs + 8·NV·((c1 - c0)·b + c - c0)), so each input is read
 * from memory once per band however many rows read it (a 5x5/2 conv with 5 channels reads
 * each input ~31 times); packed, the rows of X (N·8 bytes apart, hence all in the same L1/L2
 * sets) no longer evict each other, and a tile touches each page of X and Y once. Runs of rows
 * reading the same inputs (the channels of a conv at one position) share every X load. */
void _hnn_tile_banded_avx512(const hnn_tile_args *a, size_t o0, size_t o1, size_t c0, size_t c1,
                             size_t j0, size_t j1)
{
    const size_t span = c1 - c0, nblk = (j1 - j0) / (8 * NV);
    assert((j1 - j0) % (8 * NV) == 0 && span * (j1 - j0) <= HNN_BAND_WORDS);
    const red_consts k = make_consts(a->m);
    _Alignas(64) accblk acc[HNN_TILE_OUT];
    /* On the stack, not the heap: the pool threads' stacks stay mapped between calls, while a
     * fresh 512 KB heap block is a fresh mmap (page faults) on every call above the mmap
     * threshold. 512 KB + 61 KB fit the default thread stack (RLIMIT_STACK, or 2 MB). */
    _Alignas(64) uint64_t xs[HNN_BAND_WORDS];
    for (size_t c = c0; c < c1; c++) {
        if (!a->x[c])
            continue; /* an input inside the window that no row of the band reads */
        for (size_t b = 0; b < nblk; b++)
            for (size_t v = 0; v < NV; v++)
                _mm512_store_si512(xs + 8 * NV * (span * b + c - c0) + 8 * v,
                                   _mm512_loadu_si512(a->x[c] + j0 + 8 * NV * b + 8 * v));
    }
    for (size_t o = o0; o < o1;) {
        size_t run = 1;
        while (o + run < o1 && run < HNN_TILE_OUT && _hnn_same_inputs(a, o, o + run))
            run++;
        const uint32_t *cols = a->col + a->row_start[o];
        const size_t len = a->row_start[o + 1] - a->row_start[o];
        for (size_t b = 0; b < nblk; b++)
            band_rows(a, o, o + run, cols, len, j0 + 8 * NV * b, xs + 8 * NV * span * b, c0,
                      acc, &k);
        o += run;
    }
}
