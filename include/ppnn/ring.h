/* ppnn ring layer: negacyclic NTT over Z_q[X]/(X^N+1), RNS polynomials, samplers.
 *
 * Conventions used throughout this header
 * - N = 2^logn, logn in [RING_MIN_LOGN, RING_MAX_LOGN]. Every prime q used in a ring satisfies
 *   q = 1 (mod 2N), q < 2^61 (the prime search in modq gives 20..60 bits).
 * - Residues are canonical ([0, q)) on input and output of every function, unless stated.
 * - Coefficient domain: a[j] is the coefficient of X^j (standard order).
 *   NTT domain: a[k] = A(psi^(2*brv(k)+1)) where psi is the table's primitive 2N-th root and brv
 *   is the logn-bit reversal, i.e. evaluations at the odd powers of psi in BIT-REVERSED order.
 *   The only property callers should rely on: pointwise products in the NTT domain are
 *   negacyclic products (mod X^N + 1) in the coefficient domain, and the NTT of a constant
 *   polynomial c is c in every slot.
 * - RNS polynomial: one contiguous uint64_t array of nprimes * N words, prime-major: the residues
 *   modulo ctx->primes[i].q are a[i*N .. i*N + N - 1]. A polynomial at "level" l uses the first
 *   l+1 primes of the context (nprimes = l + 1).
 * - Raw kernels (leading underscore) take arrays and a const ring_prime, never allocate, and
 *   allow the output to alias an input exactly (r == a or r == b), never partially.
 * - Implementation dispatch: each ring_prime carries a kernel table chosen when it is built
 *   (AVX-512 IFMA when the CPU has avx512ifma and q < 2^50; else the AVX-512 F/DQ NTT when the
 *   CPU has AVX-512; else portable C). All implementations give bit-identical canonical
 *   results. There is no global dispatch state. */
#ifndef PPNN_RING_H
#define PPNN_RING_H

#include <stddef.h>
#include <stdint.h>

#include "ppnn/modq.h"
#include "ppnn/util.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RING_MIN_LOGN 2
#define RING_MAX_LOGN 16
/* Primes below 2^RING_IFMA_MAX_BITS can use the AVX-512 IFMA kernels (values up to 4q must fit
 * the 52-bit IFMA multiplier inputs: 4q < 2^52). */
#define RING_IFMA_MAX_BITS 50

typedef enum ring_impl {
    RING_IMPL_AUTO = 0,     /* best available for this CPU and prime */
    RING_IMPL_PORTABLE = 1, /* plain C */
    RING_IMPL_AVX512 = 2,   /* AVX-512 IFMA (needs avx512ifma and q < 2^50) */
    RING_IMPL_AVX512DQ = 3  /* AVX-512 F/DQ without IFMA (any q < 2^61): NTT, add/sub/neg,
                               scalar Shoup kernels; general products portable. For CPUs
                               without IFMA and for primes >= 2^50 */
} ring_impl;

struct ring_prime;

/* Kernel table (one per implementation, static const). Semantics are those of the _ring_*
 * wrappers below, which call through p->kern. */
typedef struct ring_kernels {
    const char *name; /* "portable", "avx512ifma" or "avx512dq" */
    ring_impl impl;
    void (*ntt_forward)(uint64_t *a, const struct ring_prime *p);
    void (*ntt_inverse)(uint64_t *a, const struct ring_prime *p);
    void (*add)(uint64_t *r, const uint64_t *a, const uint64_t *b, const struct ring_prime *p);
    void (*sub)(uint64_t *r, const uint64_t *a, const uint64_t *b, const struct ring_prime *p);
    void (*neg)(uint64_t *r, const uint64_t *a, const struct ring_prime *p);
    void (*mul)(uint64_t *r, const uint64_t *a, const uint64_t *b, const struct ring_prime *p);
    void (*muladd)(uint64_t *r, const uint64_t *a, const uint64_t *b, const struct ring_prime *p);
    void (*mul_scalar)(uint64_t *r, const uint64_t *a, uint64_t w, const struct ring_prime *p);
    /* Called through to->kern; the kernel falls back to portable code for a wide `from`. */
    void (*extend_single)(uint64_t *r, const uint64_t *a, const struct ring_prime *from,
                          const struct ring_prime *to);
    void (*muladd_scalar)(uint64_t *r, const uint64_t *a, uint64_t w, const struct ring_prime *p);
    void (*sub_mul_scalar)(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w,
                           const struct ring_prime *p);
} ring_kernels;

/* Per-prime NTT tables (Lattigo SubRing, SEAL NTTTables). Built by ring_prime_init, freed by
 * ring_prime_free; read-only afterwards (safe to share between threads).
 *   psi_rev[k]        psi^brv(k), k in [0, N)            (forward twiddles, bit-reversed)
 *   ipsi_rev[k]       psi^-brv(k)                        (inverse twiddles)
 *   *_shoup           Shoup companions floor(w * 2^64 / q)
 *   *_shoup52         floor(w * 2^52 / q), only when the AVX-512 IFMA kernels are selected
 *                     (NULL otherwise; n_inv_shoup52 is always set)
 *   n_inv             N^-1 mod q, with Shoup companions. */
typedef struct ring_prime {
    mq_modulus mod;
    uint64_t q;
    unsigned logn;
    size_t n;
    uint64_t psi; /* the primitive 2N-th root of unity (mq_primitive_root_2n) */
    uint64_t *psi_rev, *psi_rev_shoup, *ipsi_rev, *ipsi_rev_shoup;
    uint64_t *psi_rev_shoup52, *ipsi_rev_shoup52;
    uint64_t n_inv, n_inv_shoup, n_inv_shoup52;
    const ring_kernels *kern;
    uint64_t *mem_; /* single allocation backing the tables */
} ring_prime;

/* Builds the tables for prime q and N = 2^logn with the best implementation (RING_IMPL_AUTO).
 * Errors: PPNN_ERR_PARAM if logn is out of range, q is not prime, q >= 2^61 or q != 1 mod 2N;
 * PPNN_ERR_NOMEM. On error *p is left zeroed (ring_prime_free is still safe). */
PPNN_MUST_CHECK ppnn_status ring_prime_init(ring_prime *p, uint64_t q, unsigned logn);
/* Same with a forced implementation: RING_IMPL_AVX512 fails with PPNN_ERR_UNSUPPORTED if the
 * CPU lacks avx512ifma or q >= 2^50. */
PPNN_MUST_CHECK ppnn_status ring_prime_init_impl(ring_prime *p, uint64_t q, unsigned logn,
                                                 ring_impl impl);
/* Frees the tables and zeroes *p; p == NULL or an already freed/zeroed prime is a no-op. */
void ring_prime_free(ring_prime *p);

/* 1 if the AVX-512 IFMA kernels can run on this CPU (runtime check), else 0. */
int ring_cpu_has_avx512ifma(void);
/* 1 if the AVX-512 F/DQ/VL/BW kernels (RING_IMPL_AVX512DQ) can run on this CPU, else 0. */
int ring_cpu_has_avx512dq(void);
/* The implementation RING_IMPL_AUTO selects for a prime q on this CPU: AVX512 (IFMA) when
 * available and q < 2^50, else AVX512DQ when available, else PORTABLE. */
ring_impl ring_best_impl(uint64_t q);

/* ---- raw per-prime kernels (N = p->n words each; alias rules in the header comment) ---- */
/* In-place forward negacyclic NTT: coefficient domain (standard order) -> NTT domain
 * (bit-reversed order). Input and output canonical. */
void _ring_ntt_forward(uint64_t *a, const ring_prime *p);
/* In-place inverse: NTT domain (bit-reversed) -> coefficient domain (standard order), including
 * the division by N. _ring_ntt_inverse(_ring_ntt_forward(a)) == a exactly. */
void _ring_ntt_inverse(uint64_t *a, const ring_prime *p);
/* r = a + b, a - b, -a (mod q); any domain. */
void _ring_add(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void _ring_sub(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
void _ring_neg(uint64_t *r, const uint64_t *a, const ring_prime *p);
/* r = a .* b (mod q) pointwise (a polynomial product when both are in the NTT domain). */
void _ring_mul(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
/* r += a .* b (mod q) pointwise. r must not alias a or b. */
void _ring_muladd(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p);
/* r = w * a (mod q), w canonical (Shoup multiplication; the companion is computed per call). */
void _ring_mul_scalar(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p);
/* r += w * a (mod q), w canonical (Shoup). r must not alias a. */
void _ring_muladd_scalar(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p);
/* r = (a - b) * w mod q, a and b canonical, w < q (rescale / mod-down: one pass instead of a
 * subtraction and a scalar multiply; same result). r may alias a or b. */
void _ring_sub_mul_scalar(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w,
                          const ring_prime *p);
/* Single-prime basis extension: r[j] = centered(a[j] mod from) mod to, i.e. the residue mod
 * `to` of the representative of a[j] in (-q_from/2, q_from/2]. Exact. Coefficient domain
 * (it is not linear in the NTT domain). from and to must have the same N; r may alias a. */
void _ring_extend_single(uint64_t *r, const uint64_t *a, const ring_prime *from,
                         const ring_prime *to);

/* ---- RNS basis ---- */
/* An RNS basis: N and the tables of nprimes primes (all distinct, all = 1 mod 2N). Immutable
 * after ring_context_new. qinv[i * nprimes + j] = q_j^-1 mod q_i (i != j; 0 on the diagonal):
 * used by rescale / mod-down (through _ring_mul_scalar, which derives its Shoup constant). */
typedef struct ring_context {
    unsigned logn;
    size_t n;
    size_t nprimes;
    ring_prime *primes;
    uint64_t *qinv;
} ring_context;

/* Builds a context for N = 2^logn and primes[0..nprimes-1] (1 <= nprimes <= 64) with the given
 * implementation choice for every prime (RING_IMPL_AUTO picks per prime). Errors:
 * PPNN_ERR_PARAM (bad logn, a prime not prime / not 1 mod 2N / duplicated),
 * PPNN_ERR_UNSUPPORTED (forced AVX-512 not possible), PPNN_ERR_NOMEM. */
PPNN_MUST_CHECK ppnn_status ring_context_new(ring_context **out, unsigned logn,
                                             const uint64_t *primes, size_t nprimes,
                                             ring_impl impl);
void ring_context_free(ring_context *ctx); /* NULL is a no-op */

/* Polynomial-level helpers over the first nprimes primes of ctx (nprimes <= ctx->nprimes).
 * Same alias rules as the raw kernels. */
void ring_poly_ntt_forward(uint64_t *a, const ring_context *ctx, size_t nprimes);
void ring_poly_ntt_inverse(uint64_t *a, const ring_context *ctx, size_t nprimes);
void ring_poly_add(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_context *ctx,
                   size_t nprimes);
void ring_poly_sub(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_context *ctx,
                   size_t nprimes);
void ring_poly_neg(uint64_t *r, const uint64_t *a, const ring_context *ctx, size_t nprimes);
void ring_poly_mul(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_context *ctx,
                   size_t nprimes);
void ring_poly_muladd(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_context *ctx,
                      size_t nprimes);
/* r = w * a where w is given per prime: w[i] canonical mod ctx->primes[i].q. */
void ring_poly_mul_scalar(uint64_t *r, const uint64_t *a, const uint64_t *w,
                          const ring_context *ctx, size_t nprimes);

/* Small signed integer polynomial (coefficient domain, a[0..N-1], any int64 values) to RNS
 * coefficient-domain form over the first nprimes primes. */
void ring_poly_from_int64(uint64_t *r, const int64_t *a, const ring_context *ctx, size_t nprimes);

/* Exact divide-and-round by one prime, dropping it: for every coefficient x of the polynomial
 * over primes {q_0..q_{nkeep-1}, q_last} (x taken in [0, Q*q_last)),
 *     a_i <- round(x / q_last) mod q_i  for i < nkeep      (q_last odd: no ties)
 * computed as (a_i - [c]_{q_i}) * q_last^-1 mod q_i with c the centered residue of x mod q_last
 * (so x - c = q_last * round(x / q_last)), [c]_{q_i} by _ring_extend_single.
 * a holds the nkeep kept components (primes ctx->primes[0..nkeep-1]); `last` is the N-word
 * component modulo ctx->primes[last_idx] (last_idx >= nkeep; it may be a + nkeep*N). This is
 * CKKS rescale (last_idx = nkeep) and also key-switching mod-down by a special prime P
 * (last_idx = index of P). `last` is read only. tmp: caller scratch of 2N words (must not
 * alias a or last).
 *   ring_rescale_ntt:   a and last in the NTT domain, result in the NTT domain
 *                       (cost: 1 inverse NTT + nkeep forward NTTs of size N).
 *   ring_rescale_coeff: a and last in the coefficient domain, result in the coefficient domain.
 * Precondition (assert): nkeep <= last_idx < ctx->nprimes. */
void ring_rescale_ntt(uint64_t *a, size_t nkeep, const uint64_t *last, size_t last_idx,
                      const ring_context *ctx, uint64_t *tmp);
void ring_rescale_coeff(uint64_t *a, size_t nkeep, const uint64_t *last, size_t last_idx,
                        const ring_context *ctx, uint64_t *tmp);
/* One kept row of ring_rescale_ntt, for callers that produce the rows one at a time (fused
 * key-switching mod-down): ai (NTT domain, prime i) <- (ai - NTT([c]_{q_i})) * q_last^-1, with
 * last_coeff the last component already brought to the coefficient domain (one inverse NTT,
 * done once by the caller). Bit-identical to row i of ring_rescale_ntt. tmp: N words (must not
 * alias ai or last_coeff). Precondition (assert): i < last_idx < ctx->nprimes. */
void ring_rescale_row_ntt(uint64_t *ai, size_t i, const uint64_t *last_coeff, size_t last_idx,
                          const ring_context *ctx, uint64_t *tmp);

/* ---- samplers (src/ring/sample.c): all randomness from libsodium ---- */
/* Deterministic PRG: the ChaCha20 keystream (crypto_stream_chacha20, 64-bit nonce, block
 * counter) under key = seed, nonce = little-endian nonce. Same (seed, nonce) -> same bytes.
 * Contains key material: wipe with ring_prg_wipe. */
#define RING_SEED_BYTES 32
typedef struct ring_prg {
    uint8_t key[RING_SEED_BYTES];
    uint8_t nonce[8];
    uint64_t block; /* next ChaCha20 block index */
    size_t pos;     /* bytes of buf already consumed */
    uint8_t buf[512];
} ring_prg;

void ring_prg_init(ring_prg *g, const uint8_t seed[RING_SEED_BYTES], uint64_t nonce);
/* The one way to get a PRG for secret randomness (secret keys, errors, ephemeral ternaries):
 * seeds g from OS entropy (randombytes_buf) with nonce 0 and wipes the seed copy on the stack,
 * so the only copy of the key is inside g. Wipe g with ring_prg_wipe when done. */
void ring_prg_init_fresh(ring_prg *g);
/* Fills seed with OS entropy (randombytes_buf). */
void ring_seed_random(uint8_t seed[RING_SEED_BYTES]);
void ring_prg_bytes(ring_prg *g, void *out, size_t len);
void ring_prg_wipe(ring_prg *g); /* sodium_memzero */

/* Uniform RNS polynomial over the first nprimes primes: each residue independently uniform in
 * [0, q_i) by rejection sampling (unbiased): each candidate is the next ceil(bits(q_i)/8) stream
 * bytes, little-endian, masked to bits(q_i) bits, accepted if < q_i. Uniform in either domain;
 * ckks treats it as NTT-domain. Deterministic in (seed, nonce): the ChaCha20 stream is consumed
 * prime by prime, coefficient by coefficient, so the first k primes of a sample do not depend on
 * nprimes >= k. */
void ring_sample_uniform(uint64_t *r, const ring_context *ctx, size_t nprimes,
                         const uint8_t seed[RING_SEED_BYTES], uint64_t nonce);
/* Same, drawing from an existing PRG state. */
void ring_sample_uniform_prg(uint64_t *r, const ring_context *ctx, size_t nprimes, ring_prg *g);
/* Ternary secret: each coefficient independently uniform in {-1, 0, 1} (probability 1/3 each,
 * as in SEAL; stream bytes >= 255 are rejected so that b mod 3 is unbiased). n coefficients. */
void ring_sample_ternary(int64_t *s, size_t n, ring_prg *g);
/* Error: centered binomial with k = 21, e = popcount(21 random bits) - popcount(21 random bits):
 * mean 0, variance k/2 = 10.5 (sigma = 3.24, the sigma ~= 3.2 of the HE standard), |e| <= 21.
 * Chosen over a discrete Gaussian because it is exact, constant-time and needs no tables or
 * floating point. Each coefficient uses the next 8 stream bytes (little-endian; bits 0..20 and
 * 21..41). n coefficients. */
#define RING_CBD_K 21
void ring_sample_cbd(int64_t *e, size_t n, ring_prg *g);
/* Wide Gaussian for noise flooding: e[j] = round(sigma · z_j), z_j standard normal by
 * Box-Muller from two 53-bit uniforms of g (16 stream bytes per pair of coefficients), so
 * |z_j| < 8.6 (the smallest uniform is 2^-53). A rounded continuous Gaussian rather than an
 * exact discrete one: what flooding needs is that round(m + e + y) is a function of m + e + y
 * for integer m + e, whose distance to m + y is that of two shifted continuous Gaussians.
 * Requires 1 <= sigma < 2^58 (|e[j]| < 2^62). Not constant time (the values are released). */
void ring_sample_gaussian(int64_t *e, size_t n, double sigma, ring_prg *g);

#ifdef __cplusplus
}
#endif
#endif
