/* Internal helpers of the ckks layer (not part of the public API). */
#ifndef PPNN_CKKS_INNER_H
#define PPNN_CKKS_INNER_H

#include <complex.h>

#include "ppnn/ckks.h"
#include "ppnn/ckks_io.h"

/* ---- ciphertext buffer pool (ct_pool.c), used by ciphertext.c ----
 * take: a buffer of at least `words` words (*cap: the words it holds), NULL when out of
 * memory; give: back to the pool (cap as returned by take). */
uint64_t *_ckks_ct_pool_take(ckks_ct_pool *pool, size_t words, size_t *cap);
void _ckks_ct_pool_give(ckks_ct_pool *pool, uint64_t *buf, size_t cap);

/* ---- special FFT (fft.c) ---- */
typedef struct ckks_fft {
    size_t n, slots;
    double complex *roots; /* exp(2 pi i k / 2N), k = 0..2N */
    size_t *rot_group;     /* 5^j mod 2N, j < slots */
    /* Butterfly twiddles per stage (len = 2^loglen, lenh = len / 2): entries [lenh - 1,
     * 2 lenh - 1) hold the stage's lenh twiddles in butterfly order (slots - 1 in all). */
    double complex *tw_fwd, *tw_inv;
    int avx512;            /* the AVX-512 butterflies are available (fft_avx512.c) */
} ckks_fft;

PPNN_MUST_CHECK ppnn_status ckks_fft_init(ckks_fft *f, size_t n);
void ckks_fft_free(ckks_fft *f);
/* Packed coefficients w_i = m_i + i*m_{i+N/2} -> slots m(zeta^(5^j)), in place (slots values). */
void ckks_fft_forward(const ckks_fft *f, double complex *v);
/* Exact inverse of ckks_fft_forward. */
void ckks_fft_inverse(const ckks_fft *f, double complex *v);
/* The same with the AVX-512 butterflies (avx = 1, only where f->avx512) or the portable ones
 * (avx = 0): bit-identical results (tests compare them). */
void _ckks_fft_forward_impl(const ckks_fft *f, double complex *v, int avx);
void _ckks_fft_inverse_impl(const ckks_fft *f, double complex *v, int avx);
/* One stage of butterflies over all slots with the stage's twiddles tw (lenh of them), AVX-512
 * (fft_avx512.c; slots >= 8). Forward: (u, x) -> (u + x·tw, u − x·tw); inverse: (u, x) ->
 * (u + x, (u − x)·tw). Complex products as (ac − bd) + (ad + bc)i, unfused, like C's. */
void _ckks_fft_stage_fwd_avx512(double complex *v, const double complex *tw, size_t slots,
                                size_t lenh);
void _ckks_fft_stage_inv_avx512(double complex *v, const double complex *tw, size_t slots,
                                size_t lenh);
void _ckks_fft_scale_avx512(double complex *v, size_t slots, double s);

/* ---- CRT reconstruction tables (params.c), one set per level l ----
 * For Q_l = q_0*...*q_l (words little-endian, `words` = l+1 64-bit words suffice since every
 * q_i < 2^64): qhat[i] = Q_l/q_i (l+1 words each), qhat_inv[i] = (Q_l/q_i)^-1 mod q_i. */
typedef struct ckks_crt_level {
    size_t words;
    uint64_t *big_q;    /* Q_l, words+1 words (top word 0) */
    uint64_t *half_q;   /* (Q_l-1)/2, words+1 words */
    uint64_t *qhat;     /* (l+1) x words */
    uint64_t *qhat_inv; /* l+1 */
    double *inv_q;      /* 1/q_i as doubles, l+1 */
    double log2_q;      /* log2(Q_l) */
} ckks_crt_level;

struct ckks_params_inner {
    ckks_fft fft;
    ckks_crt_level *crt; /* nq levels */
    uint32_t *brv;       /* logn-bit reversal of 0..N-1 */
};

/* ---- encoder (encoder.c) ---- */
/* ckks_encode's polynomial before its NTT: rows ((level+1) x N) in coefficient form, canonical.
 * Same checks and errors as ckks_encode; rows is written only on success. */
PPNN_MUST_CHECK ppnn_status ckks_encode_coeffs(uint64_t *rows, const ckks_params *params,
                                               const double *values, size_t count, size_t level,
                                               double scale);

/* ---- keys (keys.c) ---- */
/* NTT form of a fresh centered-binomial error over the first np primes. e_int: N scratch. */
void ckks_sample_error_ntt(uint64_t *out, const ckks_params *params, size_t np, ring_prg *g,
                           int64_t *e_int);
/* Permutation of NTT positions realising X -> X^g: (sigma_g a)[k] = a[perm[k]]. */
void ckks_galois_perm(uint32_t *perm, const ckks_params *params, uint64_t g);
/* Galois keys live in memory in the hoisting layout (ckks.h, ckks_galois_keys): every row r of
 * b and a (nq x (nq+1) rows of N words) held as sigma_g^-1(r), i.e. r'[perm[x]] = r[x], with
 * perm = ckks_galois_perm(g). to_hoisted = 0 is the inverse, r[x] = r'[perm[x]]. tmp: N words. */
void ckks_switch_key_permute(ckks_switch_key *k, const ckks_params *params, const uint32_t *perm,
                             int to_hoisted, uint64_t *tmp);

/* Checks that a and b belong to the same parameter set; records a MISMATCH message naming op. */
PPNN_MUST_CHECK ppnn_status ckks_check_params(const ckks_params *a, const ckks_params *b,
                                              const char *op);

/* Centered integer (multi-word two's complement) of coefficient j of an RNS polynomial given in
 * COEFFICIENT form over q_0..q_l, converted to double. scratch: 2*(l+2) words. */
double ckks_crt_to_double(const ckks_params *params, size_t level, const uint64_t *poly,
                          size_t j, uint64_t *scratch);



/* ---- ciphertext helpers (ciphertext.c) ---- */
/* Sets the shape, growing the buffer with realloc (the existing prefix is kept, so an output
 * that aliases an input of the same level keeps its components). Clears has_seed. */
PPNN_MUST_CHECK ppnn_status ckks_ct_shape(ckks_ciphertext *ct, const ckks_params *params,
                                          size_t level, size_t size, double scale);
/* Drops rows above `level` of every component, compacting the buffer in place. */
void ckks_ct_drop_rows(ckks_ciphertext *ct, size_t level);

/* Checks params, levels and (if check_scale) scales of two operands (eval.c). */
PPNN_MUST_CHECK ppnn_status ckks_check_same(const ckks_params *pa, size_t la, double sa,
                                            const ckks_params *pb, size_t lb, double sb,
                                            int check_scale, const char *op);
/* ---- file-format helpers shared by serialize.c and batch_set.c ---- */
/* The params block (layout in ppnn/ckks_io.h): size, writer, and reader — rebuilds the
 * parameters (validating security) when *params is NULL (*created = 1), else checks them;
 * param_id is the container's. */
size_t ckks_io_params_bytes(const ckks_params *p);
void ckks_io_put_params(uint8_t *b, const ckks_params *p);
PPNN_MUST_CHECK ppnn_status ckks_io_read_params(ppnn_reader *r, const uint8_t *param_id,
                                                ckks_params **params, int *created,
                                                const char *path, const char *kind);
/* Packed bytes of `rows` RNS rows from row `first`; unpacks them (each value checked < q_i). */
size_t ckks_io_rows_bytes(const ckks_params *p, size_t first, size_t rows);
PPNN_MUST_CHECK ppnn_status ckks_io_get_rows(uint64_t *a, ppnn_reader *r, const ckks_params *p,
                                             size_t first, size_t rows);
/* Packs rows first..first+rows-1 of a (rows consecutive N-word rows) into out; returns the
 * bytes written (ckks_io_rows_bytes). */
size_t ckks_io_put_rows(uint8_t *out, const uint64_t *a, const ckks_params *p, size_t first,
                        size_t rows);

/* ---- ciphertext batch frames, format version 2 (batch_file.c, docs/file-formats.md) ----
 * A chunked frame (ppnn/util.h): metadata = params block, key id, batch info (count
 * included), then one CKKS_CT_HEAD_BYTES record head per ciphertext; chunk i = ciphertext i's
 * body: the seed when seeded, then its stored components, each level+1 packed rows. */
typedef struct ckks_io_rec {
    uint32_t level, size, seeded;
    double scale;
} ckks_io_rec;
/* Bytes of a stored body with this head. */
size_t ckks_io_rec_body_bytes(const ckks_params *p, const ckks_io_rec *r);
/* Params block + key id + batch info: where the record heads start in the metadata. */
size_t ckks_io_batch_head_bytes(const ckks_params *p);
size_t ckks_io_batch_meta_bytes(const ckks_params *p, size_t count);
/* Writes the metadata up to the record heads (ckks_io_batch_head_bytes); the caller writes
 * head i at ckks_io_batch_head_bytes(p) + i * CKKS_CT_HEAD_BYTES (ckks_io_record_head). */
void ckks_io_batch_meta_head(uint8_t *meta, const ckks_params *p, size_t count,
                             const ckks_batch_info *info);
/* The CKKS_CT_HEAD_BYTES record header of ct (level, size, scale, seeded): reads no rows. */
void ckks_io_record_head(uint8_t *buf, const ckks_ciphertext *ct);
/* Refuses a batch frame of another version than CKKS_BATCH_FILE_VERSION (one line naming it). */
PPNN_MUST_CHECK ppnn_status ckks_io_batch_version(uint32_t version, const char *name);
/* Parses a verified chunked frame's metadata: params (rebuilt or checked as
 * ckks_io_read_params), key id, info, and every record head (ranges, one scale the parameters
 * allow for the role), and checks that chunk i has exactly the bytes head i implies, all
 * before anything is sized by the file beyond the tables already read. *recs: count entries
 * (free()). On failure *params is restored (nothing created is kept). */
PPNN_MUST_CHECK ppnn_status ckks_io_read_batch_meta(ckks_batch_info *info, ckks_io_rec **recs,
                                                    const ppnn_chunked *ch,
                                                    const uint8_t *param_id,
                                                    ckks_params **params, int *created,
                                                    const char *name);
/* Unpacks a verified body (rec's layout) at `level` <= rec->level into ct, prepared at that
 * level with rec->size components (only level+1 rows of each component are read; a seed is
 * expanded at that level and kept in ct->seed). body may alias the rows of ct's last component
 * when rec is seeded (only component 0 is unpacked from it before the seed is expanded). */
PPNN_MUST_CHECK ppnn_status ckks_io_unpack_body(ckks_ciphertext *ct, const uint8_t *body,
                                                const ckks_io_rec *rec, size_t level,
                                                const char *name);
/* A batch written into a begun frame of exactly ckks_io_batch_payload_bytes bytes (the
 * metadata, every body and its digest; the caller ends the frame). */
uint64_t ckks_io_batch_payload_bytes(const ckks_ciphertext *cts, size_t count);
PPNN_MUST_CHECK ppnn_status ckks_io_put_batch(ppnn_file_writer *fw, const ckks_ciphertext *cts,
                                              size_t count, const ckks_batch_info *info);
/* Refuses an empty batch or ciphertexts of several parameter sets (messages name path). */
PPNN_MUST_CHECK ppnn_status ckks_io_check_batch(const ckks_ciphertext *cts, size_t count,
                                                const char *path);
/* A ciphertext's scale in a file: inputs exactly the parameters' scale, results within a
 * factor sqrt(2) of it (serialize.c); NaN, infinities and other powers of two are refused. */
int ckks_io_ct_scale_ok(const ckks_params *p, uint32_t role, double scale);
#define CKKS_BATCH_INFO_BYTES (4 + 8 + 12 + 4 + 8)
#define CKKS_CT_HEAD_BYTES (4 + 4 + 8 + 4)
#endif
