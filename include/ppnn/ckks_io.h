/* ppnn ckks file formats: parameters, keys and ciphertext batches on disk.
 *
 * Every file is a ppnn container (ppnn/util.h: magic, kind, version, parameter id, payload
 * length, BLAKE2b checksum). Every payload starts with the same two blocks:
 *   params block   u32 logn, u32 nq, u32 q_bits[nq], u32 p_bits, f64 scale,
 *                  u64 q[nq], u64 p                      (the primes, for cross-checking)
 *   key id         16 bytes: identifies the secret key the object belongs to
 * followed by the kind-specific body (docs/file-formats.md has the byte-level layout).
 * Loaders rebuild and re-validate the parameters (the 128-bit security check included, so an
 * insecure file is refused), check that the rebuilt primes and parameter id equal the stored
 * ones, then compare against the caller's parameters / key id when given: a ciphertext made
 * under other keys or other parameters is refused with PPNN_ERR_MISMATCH, never decrypted to
 * garbage. Sizes read from a file are checked against the bytes present before allocating.
 * Polynomials are bit-packed, ceil(log2 q_i) bits per coefficient, and every unpacked
 * coefficient is checked to be < q_i. Secret keys are written with mode 0600; every write goes
 * to a temporary file that is renamed into place.
 *
 * The key id is a domain-separated BLAKE2b-128 hash of the secret key (ckks_key_id). It lets
 * the server check that ciphertexts and evaluation keys belong together and lets the client
 * refuse results computed under someone else's keys; it reveals nothing usable about s (a
 * preimage search over ternary polynomials of degree >= 4096 is hopeless). */
#ifndef PPNN_CKKS_IO_H
#define PPNN_CKKS_IO_H

#include "ppnn/ckks.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CKKS_KEY_ID_BYTES 16
#define CKKS_FILE_VERSION 1
/* Largest ckks file we read (a 4096-image batch at n14 is well under 1 GiB). */
#define CKKS_MAX_FILE_BYTES ((size_t)1 << 33)

/* What a ciphertext batch holds (stored in the file, checked by the consumer). */
typedef enum { CKKS_PACKING_ELEMENT = 1, CKKS_PACKING_CHANNEL = 2 } ckks_packing;

typedef struct ckks_batch_info {
    uint8_t key_id[CKKS_KEY_ID_BYTES];
    uint32_t packing;  /* ckks_packing */
    uint64_t images;   /* images in the batch (<= slots for element packing) */
    uint32_t shape[3]; /* per-image tensor each ciphertext set encodes: c, h, w */
    uint32_t role;     /* CKKS_BATCH_INPUT or CKKS_BATCH_LOGITS */
} ckks_batch_info;
#define CKKS_BATCH_INPUT 1
#define CKKS_BATCH_LOGITS 2

void ckks_key_id(uint8_t id[CKKS_KEY_ID_BYTES], const ckks_secret_key *sk);

/* Loaders taking `ckks_params **params`: if *params is NULL, the parameters are rebuilt from the
 * file and returned (caller frees them after every object that points to them); otherwise the
 * file must have been made for *params (PPNN_ERR_MISMATCH if not). `key_id` (out) receives the
 * file's key id; pass NULL to ignore it. */
PPNN_MUST_CHECK ppnn_status ckks_secret_key_save(const char *path, const ckks_secret_key *sk);
PPNN_MUST_CHECK ppnn_status ckks_secret_key_load(ckks_secret_key *sk, ckks_params **params,
                                                 const char *path);
PPNN_MUST_CHECK ppnn_status ckks_public_key_save(const char *path, const ckks_public_key *pk,
                                                 const uint8_t key_id[CKKS_KEY_ID_BYTES]);
PPNN_MUST_CHECK ppnn_status ckks_public_key_load(ckks_public_key *pk, ckks_params **params,
                                                 uint8_t key_id[CKKS_KEY_ID_BYTES],
                                                 const char *path);
PPNN_MUST_CHECK ppnn_status ckks_relin_key_save(const char *path, const ckks_relin_key *rk,
                                                const uint8_t key_id[CKKS_KEY_ID_BYTES]);
PPNN_MUST_CHECK ppnn_status ckks_relin_key_load(ckks_relin_key *rk, ckks_params **params,
                                                uint8_t key_id[CKKS_KEY_ID_BYTES],
                                                const char *path);
PPNN_MUST_CHECK ppnn_status ckks_galois_keys_save(const char *path, const ckks_galois_keys *gk,
                                                  const uint8_t key_id[CKKS_KEY_ID_BYTES]);
PPNN_MUST_CHECK ppnn_status ckks_galois_keys_load(ckks_galois_keys *gk, ckks_params **params,
                                                  uint8_t key_id[CKKS_KEY_ID_BYTES],
                                                  const char *path);

/* A batch of ciphertexts (e.g. 784 for a batch of 28x28 images, or 10 logits). Seeded
 * ciphertexts (fresh ckks_encrypt_sk output) are stored as (c0, seed): half the size.
 * The loader allocates *cts (count entries; free each with ckks_ct_free, then free()). */
PPNN_MUST_CHECK ppnn_status ckks_batch_save(const char *path, const ckks_ciphertext *cts,
                                            size_t count, const ckks_batch_info *info);
PPNN_MUST_CHECK ppnn_status ckks_batch_load(ckks_ciphertext **cts, size_t *count,
                                            ckks_batch_info *info, ckks_params **params,
                                            const char *path);
/* Bytes ckks_batch_save would write (for upload-size reports). */
uint64_t ckks_batch_file_bytes(const ckks_ciphertext *cts, size_t count);
/* In-memory parse of a batch file (fuzzing); takes ownership of buf. */
PPNN_MUST_CHECK ppnn_status ckks_batch_parse(ckks_ciphertext **cts, size_t *count,
                                             ckks_batch_info *info, ckks_params **params,
                                             uint8_t *buf, size_t len, const char *name);

/* ---- multi-batch files and streamed reading ------------------------------------------------
 * Any number of images: a multi-batch file holds an index frame ("BSET": parameters, key id,
 * role, packing, shape, batch count, total images, images per batch) followed by the batches,
 * each an ordinary batch frame with its own checksum (docs/file-formats.md). One batch is
 * written as a plain batch file, which ckks_batch_load reads as before.
 *
 * ckks_batch_set_open accepts both. It reads frame headers only and checks every batch's
 * extent against the file size: a file truncated in the middle is refused naming the batch
 * ("truncated in batch 2 of 3"). *params as for the loaders above. The set keeps the file
 * open; close it after every reader. */
typedef struct ckks_batch_set ckks_batch_set;
PPNN_MUST_CHECK ppnn_status ckks_batch_set_open(ckks_batch_set **out, ckks_params **params,
                                                const char *path);
void ckks_batch_set_close(ckks_batch_set *s); /* NULL is a no-op */
size_t ckks_batch_set_batches(const ckks_batch_set *s);
/* The set's info (key id, packing, shape, role) with images = batch b's images (b out of
 * range: the total). */
void ckks_batch_set_info(ckks_batch_info *info, const ckks_batch_set *s, size_t b);

/* Streams batch b: opening verifies its checksum by reading it once (1 MiB at a time) and
 * indexes its ciphertexts; _get then reads ciphertext i at `level` (<= its stored level: only
 * those rows are read and unpacked, a seed is expanded at that level) into ct. _get is
 * thread-safe (pread) for distinct ct. */
typedef struct ckks_batch_reader ckks_batch_reader;
PPNN_MUST_CHECK ppnn_status ckks_batch_reader_open(ckks_batch_reader **out,
                                                   const ckks_batch_set *s, size_t b);
void ckks_batch_reader_close(ckks_batch_reader *r); /* NULL is a no-op */
size_t ckks_batch_reader_count(const ckks_batch_reader *r);
void ckks_batch_reader_meta(const ckks_batch_reader *r, size_t i, size_t *level, size_t *size,
                            double *scale);
PPNN_MUST_CHECK ppnn_status ckks_batch_reader_get(ckks_ciphertext *ct,
                                                  const ckks_batch_reader *r, size_t i,
                                                  size_t level);

/* Writes a set of nbatches batches (images[b] each; info gives key id, packing, shape, role)
 * to path atomically: append every batch in order, then finish (renames into place) or abort
 * (nothing left at path). */
typedef struct ckks_batch_set_writer ckks_batch_set_writer;
PPNN_MUST_CHECK ppnn_status ckks_batch_set_create(ckks_batch_set_writer **out, const char *path,
                                                  const ckks_params *p,
                                                  const ckks_batch_info *info, size_t nbatches,
                                                  const uint64_t *images);
PPNN_MUST_CHECK ppnn_status ckks_batch_set_append(ckks_batch_set_writer *w,
                                                  const ckks_ciphertext *cts, size_t count);
PPNN_MUST_CHECK ppnn_status ckks_batch_set_finish(ckks_batch_set_writer *w);
void ckks_batch_set_abort(ckks_batch_set_writer *w); /* NULL is a no-op */

#ifdef __cplusplus
}
#endif
#endif
