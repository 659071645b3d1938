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

/* Container kinds (ppnn/util.h) of the ckks files. */
#define CKKS_KIND_SECRET "SKEY"
#define CKKS_KIND_PUBLIC "PKEY"
#define CKKS_KIND_RELIN "RKEY"
#define CKKS_KIND_GALOIS "GKEY"
#define CKKS_KIND_BATCH "CBAT"

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
/* The largest batch file of `count` ciphertexts for p: all at the top level, both components
 * stored. An upload bigger than this for a model of `count` inputs cannot be valid. */
uint64_t ckks_batch_max_bytes(const ckks_params *p, size_t count);
/* Offset of the key id in any ckks file made for p (keys and batches alike: the payload starts
 * with the params block, then the key id), so a stream can be matched to its keys early. */
uint64_t ckks_file_key_id_offset(const ckks_params *p);
/* In-memory parse of a batch file (fuzzing); takes ownership of buf. */
PPNN_MUST_CHECK ppnn_status ckks_batch_parse(ckks_ciphertext **cts, size_t *count,
                                             ckks_batch_info *info, ckks_params **params,
                                             uint8_t *buf, size_t len, const char *name);

#ifdef __cplusplus
}
#endif
#endif
