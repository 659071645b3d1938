/* ppnn ckks layer: RNS-CKKS approximate homomorphic encryption.
 *
 *   spec (user-facing, plain data) --ckks_params_new--> ckks_params (validated, immutable)
 *   ckks_encode / ckks_decode       vectors of doubles or complex numbers <-> plaintexts
 *   ckks_keygen_*                   secret, public, relinearization and Galois keys
 *   ckks_encrypt_pk / _sk           encryption (secret-key ciphertexts carry a 32-byte seed)
 *   ckks_decrypt                    ciphertext -> plaintext (client side only)
 *   ckks_add, ckks_mul, ...         the evaluator (server side, never sees the secret)
 *
 * Conventions of the whole layer
 * - Every polynomial is stored in RNS form, one row of N words per prime, and ALWAYS in NTT
 *   (evaluation) form, coefficients canonical in [0, q_i).
 * - A ciphertext or plaintext at level l uses the primes q_0..q_l (l+1 rows). Rescaling divides
 *   by q_l and drops it; level 0 cannot be rescaled any more.
 * - Objects remember the parameter set they belong to (a pointer; equality of the 32-byte
 *   parameter id is what counts), their level and their scale. Every binary operation checks
 *   them: parameter sets must match (PPNN_ERR_MISMATCH), levels must match (PPNN_ERR_MISMATCH;
 *   call ckks_mod_switch first), scales must agree to a relative 2^-30 for additions
 *   (PPNN_ERR_MISMATCH), and an operation that needs a prime that is not there fails with
 *   PPNN_ERR_DEPTH, as does a product whose scale would reach Q_level/2 (every value of
 *   magnitude >= 1 would wrap around). Nothing ever silently produces garbage.
 * - Output parameters come first; outputs may alias inputs unless stated otherwise.
 * - Randomness: libsodium only (randombytes_buf for seeds, ChaCha20 expansion of seeds).
 *   Secret key ternary, uniform in {-1,0,1}; errors from the centered binomial distribution
 *   with 21 coin pairs (sigma = sqrt(21/2) = 3.24), chosen over a discrete Gaussian because it
 *   is constant time, needs no tables and has the variance the security table assumes.
 *
 * Key switching (relinearization, rotation, conjugation) uses SEAL's scheme: one special prime
 * P and RNS digit decomposition with one digit per ciphertext prime (dnum = L+1). With the
 * security budget of N = 8192 (218 bits) there is no room for a second special prime, and with
 * one prime per digit the key-switching noise is about q_i*sqrt(N)*sigma/P, negligible when P is
 * at least as large as the largest q_i. Cost: (l+2)(l+3) NTTs at level l; size of one key:
 * 2*(L+1)*(L+2)*N words (n13: 5.5 MiB, n14: 34 MiB). Keys above 2 GiB are refused
 * (PPNN_ERR_UNSUPPORTED): very long chains at N = 2^15..2^16 would need hybrid key switching
 * (dnum < L+1 digits with several special primes), not implemented.
 *
 * IND-CPA-D (Li-Micciancio 2021): a decrypted CKKS value carries the decryption error, a
 * function of the secret key; releasing decrypted values to a party that chose the computation
 * lets it recover the key. Choice: ERROR-AWARE NOISE FLOODING of every value that leaves the
 * client (Li-Micciancio-Schultz-Sorrell, CRYPTO 2022; OpenFHE's NOISE_FLOODING_DECRYPT): the
 * decrypted polynomial m + e gets a rounded Gaussian z of standard deviation
 *     sigma = sqrt(12·tau) · 2^(s/2) · E_coef     in EVERY COEFFICIENT (not slot),
 * with E_coef = sqrt(2)·E·scale >= ||e||_2 when every slot's error is at most E in real and
 * imaginary part (Σ over the N/2 slots of |slot error|² = (N/2)·||e||_2² for the canonical
 * embedding), s the statistical security parameter and tau the number of decryptions released
 * under the key (ckks_flood). Then KL(release || release of the exact m) <= tau·||e||²/(2σ²)
 * <= 2^-s / 24 over all tau releases. Cost: each released slot gets noise of standard deviation
 * sigma·sqrt(N/2)/scale = sqrt(12·tau·N)·2^(s/2)·E (ckks_flood_slot_sigma): about
 * s/2 + log2(sqrt(12·tau·N)) bits above the error, 29 bits for s = 30, tau = 10, N = 2^13.
 * Guarantee only while the actual error is below E: E must come from the computation (the
 * planner's estimate, hnn_plan_noise), never from the party that may attack.
 * ckks_decode() (no flooding) is for tests and for values that never leave the client. */
#ifndef PPNN_CKKS_H
#define PPNN_CKKS_H

#include <complex.h>
/* C11's CMPLX: glibc defines it only for GCC >= 4.7 and clang reports an older __GNUC__. For the
 * finite values used here the arithmetic form is exact. */
#ifndef CMPLX
#define CMPLX(x, y) ((double complex)((double)(x) + I * (double)(y)))
#endif
#include <stddef.h>
#include <stdint.h>

#include "ppnn/ring.h"
#include "ppnn/util.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CKKS_MAX_PRIMES 48     /* ciphertext primes q_0..q_L (L+1 <= CKKS_MAX_PRIMES) */
#define CKKS_MIN_LOGN 12       /* secure ring degrees: 2^12 .. 2^16 */
#define CKKS_MAX_LOGN 16
#define CKKS_TEST_MIN_LOGN 4   /* smallest ring for insecure unit-test parameters */
#define CKKS_MIN_PRIME_BITS 20
#define CKKS_MAX_PRIME_BITS 50 /* keeps every prime < 2^50: the AVX-512 IFMA kernels apply */
#define CKKS_PARAM_ID_BYTES 32
#define CKKS_SEED_BYTES 32
#define CKKS_FLOOD_DEFAULT_BITS 30 /* statistical security s of released values */
/* One key-switching key holds 2 * nq * (nq+1) * N words: O(L^2 N), the price of one digit per
 * prime. Keygen refuses larger keys (a chain of 41 primes at N = 2^16 would need 1.8 GB per
 * key) and loaders refuse files declaring them before allocating anything. */
#define CKKS_MAX_SWITCH_KEY_BYTES ((size_t)1 << 31)

/* ---- parameters ---------------------------------------------------------------------------
 * User-facing description. Primes are generated from bit sizes: q_i = 1 mod 2N, prime, with
 * exactly q_bits[i] bits, the largest such value not already used (searching downward from
 * 2^bits, like SEAL's CoeffModulus::Create), P chosen first. q_0 is the last prime left after all rescales (it
 * must hold the final result: scale * max|value| < q_0/2); q_1..q_L are the rescale primes
 * (about log2(scale) bits each); p is the special key-switching prime, which must be larger
 * than every q_i (p_bits >= every q_bits[i]; with explicit primes P > max q_i), else the
 * key-switching noise q_i sqrt(N) sigma / P would exceed the rescale noise: refused. */
typedef struct ckks_spec {
    unsigned logn;                    /* ring degree N = 2^logn */
    size_t nq;                        /* number of ciphertext primes (L+1) */
    unsigned q_bits[CKKS_MAX_PRIMES]; /* bit size of q_0..q_{nq-1} */
    unsigned p_bits;                  /* bit size of the special prime P */
    double scale;                     /* default scale; 0 = 2^q_bits[nq-1] (or 2^(q_bits[0]/2) if nq = 1) */
    int insecure_for_testing;         /* 1 = skip the 128-bit security check (unit tests ONLY) */
    /* Optional explicit primes q_0..q_{nq-1}, P (e.g. read from a parameter file): when
     * primes[0] != 0 they are used as given (checked: prime, = 1 mod 2N, distinct) and q_bits,
     * p_bits are ignored and recomputed from them. All zero = generate from the bit sizes. */
    uint64_t primes[CKKS_MAX_PRIMES + 1];
} ckks_spec;

/* The 128-bit security limit on log2(Q*P) for ring degree 2^logn (HomomorphicEncryption.org
 * standard, Table 1, ternary secret, classical): 109, 218, 438, 881, 1747 for logn = 12..16;
 * 0 for unsupported logn. */
unsigned ckks_max_logqp(unsigned logn);

/* Fills *spec with a named preset ("n13", "n14"; see params.c for every prime's role). Errors
 * (PPNN_ERR_PARAM): unknown name. */
PPNN_MUST_CHECK ppnn_status ckks_preset(ckks_spec *spec, const char *name);

struct ckks_params_inner;
/* A validated, immutable parameter set. Read-only after ckks_params_new. */
typedef struct ckks_params {
    unsigned logn;
    size_t n;                      /* ring degree */
    size_t slots;                  /* N/2 complex slots */
    size_t nq;                     /* ciphertext primes; the top level is nq-1 */
    uint64_t q[CKKS_MAX_PRIMES];   /* q_0..q_{nq-1} */
    uint64_t p;                    /* special prime */
    unsigned logqp;                /* sum of the bit sizes of all primes (>= log2(Q*P)) */
    double scale;                  /* default scale */
    uint8_t id[CKKS_PARAM_ID_BYTES]; /* BLAKE2b-256 of N and the primes (file formats) */
    /* RNS basis q_0..q_{nq-1}, P (nq+1 primes): per-prime NTT tables, q_j^-1 mod q_i. A
     * polynomial at level l uses ring->primes[0..l]; ring->primes[nq] is P. */
    ring_context *ring;
    struct ckks_params_inner *inner; /* encoder and key-switching precomputations */
    /* The spec this context was built from, with primes[] and the bit sizes filled in:
     * ckks_params_new(&copy, &params->spec) rebuilds the same parameter set (same id). */
    ckks_spec spec;
} ckks_params;

/* Validates spec and builds the context. Errors: PPNN_ERR_PARAM (logn, nq or bit sizes out of
 * range, scale invalid, not enough primes), PPNN_ERR_INSECURE (log2(Q*P) over the limit, the
 * message names the limit), PPNN_ERR_NOMEM. */
PPNN_MUST_CHECK ppnn_status ckks_params_new(ckks_params **out, const ckks_spec *spec);
void ckks_params_free(ckks_params *params); /* NULL is a no-op */
/* 1 if a and b are the same parameter set (same id). */
int ckks_params_same(const ckks_params *a, const ckks_params *b);

/* ---- plaintexts and ciphertexts -------------------------------------------------------------
 * Plaintext: (level+1) x N words in NTT form, prime-major. */
typedef struct ckks_plaintext {
    const ckks_params *params;
    size_t level;
    double scale;
    uint64_t *data; /* (level+1) * N words, row i mod q_i, NTT form */
    size_t cap;     /* allocated words */
} ckks_plaintext;

/* Ciphertext: size components c_0..c_{size-1} (2, or 3 after an unrelinearized multiply),
 * decrypting to sum_k c_k * s^k. ONE contiguous buffer, component-major then prime-major:
 * word (k*(level+1) + i)*N + j is coefficient j (NTT order) of c_k mod q_i. The hnn layer runs
 * its GEMM kernels directly on this layout.
 * has_seed: set by ckks_encrypt_sk; c_1 equals the uniform polynomial expanded from seed at
 * this level, so a serializer may write (c_0, seed) only. Every evaluator operation clears it
 * but ckks_mod_switch (the expansion at a lower level is a prefix of the one at a higher). */
typedef struct ckks_ciphertext {
    const ckks_params *params;
    size_t level; /* primes in use = level + 1 */
    size_t size;  /* components */
    double scale;
    uint64_t *data; /* size * (level+1) * N words */
    size_t cap;     /* allocated words (>= size*(level+1)*N) */
    int has_seed;
    uint8_t seed[CKKS_SEED_BYTES];
    struct ckks_ct_pool *pool; /* NULL: buffers from malloc; else from this pool (ckks_ct_attach) */
} ckks_ciphertext;

/* Word offset of component k, prime i in a ciphertext. */
static inline uint64_t *ckks_ct_poly(const ckks_ciphertext *ct, size_t k, size_t i)
{
    return ct->data + (k * (ct->level + 1) + i) * ct->params->n;
}

/* Allocate / free. _init sets up an object with zeroed data at the given shape; the buffer is
 * reused (no allocation) when it is already large enough, so one object can be re-targeted in a
 * loop. level <= nq-1, size in 1..3 (asserted). */
PPNN_MUST_CHECK ppnn_status ckks_ct_init(ckks_ciphertext *ct, const ckks_params *params,
                                         size_t level, size_t size, double scale);
void ckks_ct_free(ckks_ciphertext *ct); /* frees data, zeroes the struct; NULL ok */
PPNN_MUST_CHECK ppnn_status ckks_ct_copy(ckks_ciphertext *dst, const ckks_ciphertext *src);
/* Sets the shape like _init but leaves the data unspecified (not cleared): for kernels that
 * write every word of the new shape. The buffer grows when needed (its prefix is kept). */
PPNN_MUST_CHECK ppnn_status ckks_ct_prepare(ckks_ciphertext *ct, const ckks_params *params,
                                            size_t level, size_t size, double scale);
/* Returns the buffer words beyond the current shape to the allocator, so a ciphertext that
 * was rescaled, relinearized or mod-switched keeps only the rows of its current level. */
void ckks_ct_shrink(ckks_ciphertext *ct);
/* Ensures the buffer holds at least `words` words (its prefix is kept), e.g. the size a
 * ciphertext will grow to, so later operations reshape it without allocating. */
PPNN_MUST_CHECK ppnn_status ckks_ct_reserve(ckks_ciphertext *ct, size_t words);

/* ---- ciphertext buffer pool (ct_pool.c) ------------------------------------------------------
 * Reuses ciphertext buffers instead of mapping fresh pages for every one (a fresh 768 KiB
 * buffer costs 192 page faults on first touch). Buffers come in size classes of whole N-word
 * rows (a request for w words gets ceil(w/N)*N). The pool never holds more than cap_bytes in
 * buffers in use plus buffers kept for reuse: when a new buffer would exceed it, kept buffers
 * of other classes are returned to the allocator first, so its footprint is at most
 * max(cap_bytes, bytes in use) — a schedule that keeps its live ciphertexts under the budget
 * keeps the pool under it with cap_bytes = the schedule's peak. Thread-safe (one mutex).
 * A ciphertext attached to a pool (ckks_ct_attach, while it holds no buffer) takes its buffers
 * from the pool and gives them back on ckks_ct_free / reshaping; the free zeroes the struct,
 * detaching it. ckks_ct_pool_free requires every buffer to have been given back (asserted).
 * CKKS_POOL_POISON fills every buffer given back with all-ones words (>= every prime, so a
 * ciphertext that still read a released buffer would come out wrong); under AddressSanitizer
 * kept buffers are also poisoned, so any access to them is reported. */
typedef struct ckks_ct_pool ckks_ct_pool;
enum { CKKS_POOL_POISON = 1 };
typedef struct {
    uint64_t in_use, kept; /* bytes */
    uint64_t peak;         /* max of in_use + kept */
    uint64_t allocs, reuses, evictions;
} ckks_ct_pool_stats;
PPNN_MUST_CHECK ppnn_status ckks_ct_pool_new(ckks_ct_pool **out, size_t n, uint64_t cap_bytes,
                                             unsigned flags);
void ckks_ct_pool_free(ckks_ct_pool *pool); /* NULL is a no-op */
void ckks_ct_pool_get_stats(ckks_ct_pool_stats *st, ckks_ct_pool *pool);
/* Attaches ct (holding no buffer: zeroed or freed) to pool; pool NULL: no-op. */
void ckks_ct_attach(ckks_ciphertext *ct, ckks_ct_pool *pool);

PPNN_MUST_CHECK ppnn_status ckks_pt_init(ckks_plaintext *pt, const ckks_params *params,
                                         size_t level, double scale);
void ckks_pt_free(ckks_plaintext *pt);

/* ---- encoder --------------------------------------------------------------------------------
 * Encodes values[0..count-1] (count <= slots; missing slots are 0) at `scale` and `level`:
 * m = round(scale * iFFT(values)), each coefficient reduced mod q_0..q_level, then NTT.
 * Errors: PPNN_ERR_PARAM (count > slots, level too high, scale not positive/finite),
 * PPNN_ERR_NUMERIC (NaN/Inf input, or a scaled coefficient whose magnitude reaches Q_level/2,
 * i.e. it would wrap around the modulus). Reuses pt's buffer when large enough. */
PPNN_MUST_CHECK ppnn_status ckks_encode(ckks_plaintext *pt, const ckks_params *params,
                                        const double *values, size_t count, size_t level,
                                        double scale);
PPNN_MUST_CHECK ppnn_status ckks_encode_complex(ckks_plaintext *pt, const ckks_params *params,
                                                const double complex *values, size_t count,
                                                size_t level, double scale);
/* The residues mod q_0..q_level of the integer round(value * scale) (the encoding of a real
 * constant, e.g. a weight at scale q_level): residues[i] canonical mod q_i. For kernels that
 * work on the ciphertext layout directly. Errors: PPNN_ERR_NUMERIC if value*scale is not
 * finite or its magnitude reaches Q_level/2; PPNN_ERR_PARAM if level is too high. */
PPNN_MUST_CHECK ppnn_status ckks_encode_scalar(uint64_t *residues, const ckks_params *params,
                                               size_t level, double value, double scale);
/* Decodes the first count slots (real parts / complex values). Uses the CRT over q_0..q_level
 * in exact multi-word arithmetic, so any level decodes correctly. NOT flooded: see
 * ckks_decode_release. Errors: PPNN_ERR_PARAM (count > slots). */
PPNN_MUST_CHECK ppnn_status ckks_decode(double *values, size_t count, const ckks_plaintext *pt);
PPNN_MUST_CHECK ppnn_status ckks_decode_complex(double complex *values, size_t count,
                                                const ckks_plaintext *pt);
/* ---- flooding of released values (IND-CPA-D, see the top of this file) ---------------------
 * error: E, bound on |error| of every slot (real and imaginary part), value units, > 0;
 * stat_bits: s in 1..CKKS_FLOOD_MAX_BITS; queries: tau >= 1, decryptions of ciphertexts
 * released under this key (count every ciphertext, over every release). */
#define CKKS_FLOOD_MAX_BITS 128
typedef struct ckks_flood {
    double error;
    unsigned stat_bits;
    double queries;
} ckks_flood;
/* sigma of the coefficient flooding at this scale: sqrt(12·tau)·2^(s/2)·sqrt(2)·E·scale. */
double ckks_flood_sigma(const ckks_flood *f, double scale);
/* Standard deviation the flooding adds to each released slot value (value units):
 * sqrt(12·tau·N)·2^(s/2)·E. */
double ckks_flood_slot_sigma(const ckks_flood *f, const ckks_params *params);
/* Adds the flooding z (fresh libsodium-seeded PRG, ring_sample_gaussian) to the decrypted pt in
 * the coefficient domain. Errors: PPNN_ERR_PARAM (E not finite and > 0, s or tau out of range),
 * PPNN_ERR_NUMERIC (the flooding would not fit the modulus Q_level: the decoded values would
 * wrap around; release labels only, or keep more levels), PPNN_ERR_NOMEM. */
PPNN_MUST_CHECK ppnn_status ckks_flood_plaintext(ckks_plaintext *pt, const ckks_flood *f);
/* Before a release of a REAL-valued computation: the imaginary parts of every slot of the
 * exact decryption pt hold only its CKKS noise, which f->error covers. Refuses with
 * PPNN_ERR_NUMERIC when one exceeds CKKS_FLOOD_IMAG_FACTOR·error: the ciphertext is not what
 * the computation produces (e.g. a server that returned other ciphertexts, whose key-dependent
 * error σ(c1)·σ(s) has a random phase and shows there), so the flooding would not cover it. */
#define CKKS_FLOOD_IMAG_FACTOR 2.0
PPNN_MUST_CHECK ppnn_status ckks_flood_check_real(const ckks_plaintext *pt, const ckks_flood *f);
/* Decode for values that leave the client: flood a copy of pt, then ckks_decode (pt is not
 * modified). Errors: those of ckks_flood_plaintext and ckks_decode. */
PPNN_MUST_CHECK ppnn_status ckks_decode_release(double *values, size_t count,
                                                const ckks_plaintext *pt, const ckks_flood *f);

/* ---- keys -----------------------------------------------------------------------------------
 * Secret key: ternary s, kept in NTT form over all nq+1 primes, in sodium_malloc'd memory
 * (guard pages, wiped on free). */
typedef struct ckks_secret_key {
    const ckks_params *params;
    uint64_t *s; /* (nq+1) x N, NTT form, rows q_0..q_{nq-1}, P */
} ckks_secret_key;

/* Public key (b, a) = (-a*s + e, a) over q_0..q_{nq-1} (NTT form), a expanded from seed. */
typedef struct ckks_public_key {
    const ckks_params *params;
    uint64_t *b, *a; /* nq x N each */
    uint8_t seed[CKKS_SEED_BYTES];
} ckks_public_key;

/* A key-switching key from s' to s: for each digit j = 0..nq-1, the pair
 * (b_j, a_j) = (-a_j*s + e_j + P*[Q/q_j]^{-1}_{q_j}*[Q/q_j]*s' restricted to the primes, a_j)
 * over q_0..q_{nq-1},P in NTT form — i.e. P*s' appears only in row j (SEAL's layout).
 * Stored as b then a, each nq x (nq+1) x N words, digit-major then prime-major. */
typedef struct ckks_switch_key {
    uint64_t *b, *a;
    /* a_j = ring_sample_uniform(ctx, nq+1 primes, seed, nonce j): a serializer may store the
     * seed instead of a (half size) and rebuild a with ckks_switch_key_expand_a. */
    uint8_t seed[CKKS_SEED_BYTES];
} ckks_switch_key;

/* Rebuilds k->a (already allocated, nq*(nq+1)*N words) from k->seed. */
void ckks_switch_key_expand_a(ckks_switch_key *k, const ckks_params *params);

typedef struct ckks_relin_key {
    const ckks_params *params;
    ckks_switch_key k; /* s^2 -> s */
} ckks_relin_key;

/* Galois keys for a set of Galois elements (5^k mod 2N for rotations by k, 2N-1 for
 * conjugation). In memory each key is held in the hoisting layout: every row of b and a
 * permuted by sigma_g^-1 (in the NTT domain), so that a rotation multiplies the digits of the
 * unrotated c1 by the key and permutes only its output rows (src/ckks/keyswitch.c). Files hold
 * the standard layout (b_j = -a_j s + e_j + P s(X^g) [j], a_j the expansion of the seed);
 * ckks_keygen_galois and ckks_galois_keys_load return the hoisting layout, save converts. */
typedef struct ckks_galois_keys {
    const ckks_params *params;
    size_t count;
    uint64_t *elements;    /* Galois elements, count entries */
    ckks_switch_key *keys; /* s(X^g) -> s */
} ckks_galois_keys;

PPNN_MUST_CHECK ppnn_status ckks_keygen_secret(ckks_secret_key *sk, const ckks_params *params);
void ckks_secret_key_free(ckks_secret_key *sk);
PPNN_MUST_CHECK ppnn_status ckks_keygen_public(ckks_public_key *pk, const ckks_secret_key *sk);
void ckks_public_key_free(ckks_public_key *pk);
PPNN_MUST_CHECK ppnn_status ckks_keygen_relin(ckks_relin_key *rk, const ckks_secret_key *sk);
void ckks_relin_key_free(ckks_relin_key *rk);
/* Keys for rotations by steps[0..nsteps-1] (left rotation by k slots; negative = right; reduced
 * mod slots, 0 ignored) and, if conjugate, for complex conjugation. */
PPNN_MUST_CHECK ppnn_status ckks_keygen_galois(ckks_galois_keys *gk, const ckks_secret_key *sk,
                                               const int *steps, size_t nsteps, int conjugate);
void ckks_galois_keys_free(ckks_galois_keys *gk);
/* Galois element of a left rotation by `step` slots (5^step mod 2N), or of conjugation. */
uint64_t ckks_galois_rotation(const ckks_params *params, int step);
uint64_t ckks_galois_conjugation(const ckks_params *params);

/* ---- encryption -----------------------------------------------------------------------------
 * Public-key encryption of pt (any level; the ciphertext has pt's level and scale):
 * (v*b + e0 + m, v*a + e1) with ternary v. */
PPNN_MUST_CHECK ppnn_status ckks_encrypt_pk(ckks_ciphertext *ct, const ckks_public_key *pk,
                                            const ckks_plaintext *pt);
/* Secret-key encryption: c1 = a uniform polynomial expanded from a fresh 32-byte seed (kept in
 * ct->seed, has_seed = 1), c0 = -a*s + e + m. */
PPNN_MUST_CHECK ppnn_status ckks_encrypt_sk(ckks_ciphertext *ct, const ckks_secret_key *sk,
                                            const ckks_plaintext *pt);
/* ckks_encode(values, count, level, scale) then ckks_encrypt_sk, fused: the same ciphertext bit
 * for bit given the same randomness (the NTT is linear, so m + e is transformed once instead of
 * m and e apart: one NTT per prime fewer), without a plaintext or error buffer of N x (level+1)
 * words. ct's buffer is reused when large enough (a client encrypting ciphertext by ciphertext
 * touches no new memory). Errors: those of ckks_encode. */
PPNN_MUST_CHECK ppnn_status ckks_encrypt_sk_values(ckks_ciphertext *ct, const ckks_secret_key *sk,
                                                   const double *values, size_t count,
                                                   size_t level, double scale);
/* Expands the uniform c1 of a seeded ciphertext at the given level into out ((level+1) x N,
 * NTT form). ckks_encrypt_sk uses this function, so a loader can rebuild c1 from the seed. */
void ckks_expand_seed(uint64_t *out, const ckks_params *params, size_t level,
                      const uint8_t seed[CKKS_SEED_BYTES]);
/* pt = c0 + c1*s (+ c2*s^2). Errors: PPNN_ERR_MISMATCH (different parameters). The result
 * contains the raw decryption error: decode it with ckks_decode_release before it leaves the
 * client. */
PPNN_MUST_CHECK ppnn_status ckks_decrypt(ckks_plaintext *pt, const ckks_secret_key *sk,
                                         const ckks_ciphertext *ct);
/* Decrypt + decode: when f != NULL checked (ckks_flood_check_real) and flooded
 * (ckks_flood_plaintext), exact when f == NULL (values that never leave the key owner). */
PPNN_MUST_CHECK ppnn_status ckks_decrypt_release(double *values, size_t count,
                                                 const ckks_secret_key *sk,
                                                 const ckks_ciphertext *ct,
                                                 const ckks_flood *f);

/* ---- evaluator ------------------------------------------------------------------------------
 * ct+ct, ct-ct: same params, level and scale (relative 2^-30). Sizes may differ (result size =
 * max). */
PPNN_MUST_CHECK ppnn_status ckks_add(ckks_ciphertext *out, const ckks_ciphertext *a,
                                     const ckks_ciphertext *b);
PPNN_MUST_CHECK ppnn_status ckks_sub(ckks_ciphertext *out, const ckks_ciphertext *a,
                                     const ckks_ciphertext *b);
/* In place: acc += b. */
PPNN_MUST_CHECK ppnn_status ckks_add_inplace(ckks_ciphertext *acc, const ckks_ciphertext *b);
PPNN_MUST_CHECK ppnn_status ckks_negate(ckks_ciphertext *out, const ckks_ciphertext *a);
/* ct + pt, ct * pt (pt at the same level; for mul the scales multiply). */
PPNN_MUST_CHECK ppnn_status ckks_add_plain(ckks_ciphertext *out, const ckks_ciphertext *a,
                                           const ckks_plaintext *pt);
PPNN_MUST_CHECK ppnn_status ckks_mul_plain(ckks_ciphertext *out, const ckks_ciphertext *a,
                                           const ckks_plaintext *pt);
/* Adds the real constant c to every slot (adds round(c*scale) to c_0: the NTT of a constant
 * polynomial is that constant everywhere). Errors: PPNN_ERR_NUMERIC if |c*scale| does not fit
 * Q_level/2. */
PPNN_MUST_CHECK ppnn_status ckks_add_const(ckks_ciphertext *out, const ckks_ciphertext *a,
                                           double c);
/* Multiplies by an integer scalar (scale unchanged). */
PPNN_MUST_CHECK ppnn_status ckks_mul_int(ckks_ciphertext *out, const ckks_ciphertext *a,
                                         int64_t k);
/* Multiplies by the integer k and labels the result with `scale` instead of a->scale: the
 * product k*x at scale s is the value x at scale k*s exactly, and callers may name a scale
 * within a relative 2^-20 of a->scale * k (e.g. s^2 for k = round(s), to add the result to
 * squares). k > 0. Errors: PPNN_ERR_PARAM (k <= 0, or scale too far from a->scale * k), PPNN_ERR_DEPTH
 * (scale reaches Q_level/2). */
PPNN_MUST_CHECK ppnn_status ckks_mul_int_to_scale(ckks_ciphertext *out, const ckks_ciphertext *a,
                                                  int64_t k, double scale);
/* Multiplies by the real w encoded as round(w*wscale); the output scale is a->scale*wscale.
 * Use wscale = q_level (ckks_params.q[level]) so that the next rescale returns exactly to the
 * input scale. Errors: PPNN_ERR_NUMERIC if w*wscale is not finite or reaches Q_level/2;
 * PPNN_ERR_DEPTH if the product scale does not fit the modulus left. */
PPNN_MUST_CHECK ppnn_status ckks_mul_scalar(ckks_ciphertext *out, const ckks_ciphertext *a,
                                            double w, double wscale);
/* ct x ct: (a0b0, a0b1+a1b0, a1b1), size 3, scale a*b. Both inputs of size 2, same level.
 * ckks_square(out, a) = ckks_mul(out, a, a) with one product less. */
PPNN_MUST_CHECK ppnn_status ckks_mul(ckks_ciphertext *out, const ckks_ciphertext *a,
                                     const ckks_ciphertext *b);
PPNN_MUST_CHECK ppnn_status ckks_square(ckks_ciphertext *out, const ckks_ciphertext *a);
/* In place: size 3 -> 2 by key switching c_2 with the relinearization key. Size 2 is a no-op. */
PPNN_MUST_CHECK ppnn_status ckks_relinearize(ckks_ciphertext *ct, const ckks_relin_key *rk);
/* In place: divides by q_level with rounding, drops it; scale /= q_level. Works on any size,
 * but rescaling a 3-component ciphertext multiplies the rounding error of c_2 by s^2 (about 6
 * bits of precision lost at N = 8192): relinearize first, then rescale.
 * Errors: PPNN_ERR_DEPTH at level 0. */
PPNN_MUST_CHECK ppnn_status ckks_rescale(ckks_ciphertext *ct);
/* The rescale-ready ("split") layout of a 2-component ciphertext at level l >= 1, for a kernel
 * that writes a fresh ciphertext and rescales it right after: the rows of primes 0..l-1 sit
 * where the level-(l-1) ciphertext keeps them (component k, prime i at row k·l + i), and the
 * two rows the rescale drops (prime l of components 0 and 1) after them, at rows 2l and
 * 2l + 1. Needs (2l + 2)·N words (ckks_ct_reserve). ckks_ct_split_poly gives the row of
 * component k < 2, prime i <= l, of ct (shaped at level l, size 2) in that layout. */
static inline uint64_t *ckks_ct_split_poly(const ckks_ciphertext *ct, size_t k, size_t i)
{
    const size_t l = ct->level;
    return ct->data + (i < l ? k * l + i : 2 * l + k) * ct->params->n;
}
/* ckks_rescale of a ciphertext (level >= 1, size 2, cap >= (2·level + 2)·N) held in the split
 * layout: the same words and scale as ckks_rescale gives on the ordinary layout, without
 * moving component 1 (the kept rows are already in place) or copying the dropped rows (their
 * inverse NTT runs in place: they are dropped). Errors: PPNN_ERR_DEPTH at level 0,
 * PPNN_ERR_NOMEM. */
PPNN_MUST_CHECK ppnn_status ckks_rescale_split(ckks_ciphertext *ct);
/* In place: drops primes down to `level` (no division, scale unchanged). Errors: PPNN_ERR_PARAM
 * when level > ct->level. */
PPNN_MUST_CHECK ppnn_status ckks_mod_switch(ckks_ciphertext *ct, size_t level);
/* Rotates the slots left by step (needs the Galois key of that step); conjugates the slots.
 * Inputs of size 2. Errors: PPNN_ERR_PARAM if the key is missing. out may alias a. */
PPNN_MUST_CHECK ppnn_status ckks_rotate(ckks_ciphertext *out, const ckks_ciphertext *a, int step,
                                        const ckks_galois_keys *gk);
PPNN_MUST_CHECK ppnn_status ckks_conjugate(ckks_ciphertext *out, const ckks_ciphertext *a,
                                           const ckks_galois_keys *gk);
/* Hoisted rotations: out[r] = rot(a, steps[r]) for r < count (step 0: a copy), sharing one key-
 * switching decomposition of a's c1 among all of them (keyswitch.c); bit-identical to count
 * ckks_rotate calls at a fraction of the cost. out[0..count) must not alias a (zero-
 * initialised or reused structs). Every key is checked before any work (PPNN_ERR_PARAM names
 * the first missing step). */
PPNN_MUST_CHECK ppnn_status ckks_rotate_hoisted(ckks_ciphertext *out, const ckks_ciphertext *a,
                                                const int *steps, size_t count,
                                                const ckks_galois_keys *gk);

#ifdef __cplusplus
}
#endif
#endif
