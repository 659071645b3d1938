/* ppnn ckks file formats: parameters, keys and ciphertext batches on disk.
 *
 * Every file is a ppnn container (ppnn/util.h: magic, kind, version, parameter id, payload
 * length, BLAKE2b checksum; ciphertext batches are chunked frames: one digest per ciphertext
 * under a top hash, CKKS_BATCH_FILE_VERSION). Every payload starts with the same two blocks
 * (in a batch, after the chunk count and metadata length):
 *   params block   u32 logn, u32 nq, u32 q_bits[nq], u32 p_bits, f64 scale,
 *                  u64 q[nq], u64 p                      (the primes, for cross-checking)
 *   key id         16 bytes: identifies the secret key the object belongs to
 * followed by the kind-specific body (docs/file-formats.md has the byte-level layout).
 * A loader trusts no field. Before allocating anything it checks the params block (ranges,
 * each stored prime against its stored bit size, a power-of-two scale >= 2^20) and that the body
 * has the bytes the object needs (and that key-switching keys stay under
 * CKKS_MAX_SWITCH_KEY_BYTES). Given the caller's parameters it compares the whole block (primes,
 * bit sizes, scale): a file for other parameters is PPNN_ERR_MISMATCH, never decrypted to
 * garbage. Otherwise it rebuilds and re-validates the parameters (the 128-bit security check
 * included) and checks that the rebuilt primes and parameter id equal the stored ones. Secret
 * keys must look like keygen's (ternary, plausible Hamming weight and sign balance, matching
 * key id); Galois elements must be distinct non-identity automorphisms; every ciphertext of a
 * batch shares one level and a scale the parameters allow (inputs exactly the parameters'
 * scale, results within a factor sqrt 2 of it).
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
/* Format version of the key files ("SKEY", "PKEY", "RKEY", "GKEY"). */
#define CKKS_FILE_VERSION 1
/* Format version of the ciphertext batch kinds ("CBAT" batches and results, "BSET" multi-batch
 * index): 3 = chunked frames, one XXH3-128 digest per ciphertext under a BLAKE2b-256 top hash
 * (docs/file-formats.md). Version 2 (the same frames with BLAKE2b-256 digests) and version 1
 * (one checksum over the whole batch) are refused with a message saying to re-encrypt: batch
 * files are transient. */
#define CKKS_BATCH_FILE_VERSION 3
/* What a chunk of a batch frame is called in messages ("ciphertext 17 of 784: ..."). */
#define CKKS_CHUNK_NOUN "ciphertext"
/* Container kind of ciphertext batch files (input batches and results). */
#define CKKS_FILE_KIND_BATCH "CBAT"
/* Largest ckks file we read (a 4096-image batch at n14 is well under 1 GiB). */
#define CKKS_MAX_FILE_BYTES ((size_t)1 << 33)
/* Smallest scale a file may carry (its parameter block must hold a power of two >= 2^20):
 * fresh encryption noise is ~6 sigma sqrt(N) <= 2^12.3 for N <= 2^16, so below 2^20 fewer than
 * 8 bits of any value survive — no parameter set ppnn makes, so a corrupt or hostile file.
 * Ciphertext scales are checked against the parameters' scale (docs/file-formats.md). */
#define CKKS_MIN_FILE_SCALE_BITS 20

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
/* Offset of the key id in a batch file made for p (after the header, the chunk count and
 * metadata length, and the params block), so an upload can be matched to its keys early. */
uint64_t ckks_batch_key_id_offset(const ckks_params *p);
/* In-memory parse of a batch file (fuzzing); takes ownership of buf. */
PPNN_MUST_CHECK ppnn_status ckks_batch_parse(ckks_ciphertext **cts, size_t *count,
                                             ckks_batch_info *info, ckks_params **params,
                                             uint8_t *buf, size_t len, const char *name);

/* ---- multi-batch files and streamed reading ------------------------------------------------
 * Any number of images: a multi-batch file holds an index frame ("BSET": parameters, key id,
 * role, packing, shape, batch count, total images, images per batch) followed by the batches,
 * each an ordinary batch frame with its own top hash and digests (docs/file-formats.md). One batch is
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
/* The caller has itself verified this single-batch file while writing it (the service, during
 * the upload: every ciphertext's digest and the top hash) and `sum` is the top hash it
 * verified: a reader then skips re-hashing the ciphertext bodies while the file's top hash
 * still equals `sum` (the top hash, tables, headers and every coefficient are checked as
 * always). Multi-batch sets are always verified. */
void ckks_batch_set_trust(ckks_batch_set *s, const uint8_t sum[PPNN_FILE_TRAILER_BYTES]);
size_t ckks_batch_set_batches(const ckks_batch_set *s);
/* The set's info (key id, packing, shape, role) with images = batch b's images (b out of
 * range: the total). */
void ckks_batch_set_info(ckks_batch_info *info, const ckks_batch_set *s, size_t b);
/* Batch b's stored top hash (its frame trailer: BLAKE2b over the header, metadata and digest
 * table) as the file holds it: two sets whose batch b has the same top hash and whose readers
 * verify what they read hold the same batch (src/dist/ compares the ranks' copies of a file).
 * Not verified here. b < batches. */
PPNN_MUST_CHECK ppnn_status ckks_batch_set_checksum(uint8_t out[PPNN_FILE_TRAILER_BYTES],
                                                    const ckks_batch_set *s, size_t b);

/* Streams batch b: opening reads its metadata, chunk lengths and digest table (a few KB) and
 * verifies them against the frame's top hash (PPNN_ERR_FORMAT naming the file when they
 * differ); _get then reads ciphertext i's body whole, verifies it against its digest
 * ("ciphertext 17 of 784: checksum mismatch (file corrupted)") and only then unpacks it at
 * `level` (<= its stored level: only those rows are unpacked, a seed is expanded at that level
 * and kept in ct->seed, has_seed set) into ct. Nothing is returned from unverified bytes; each
 * caller verifies exactly the ciphertexts it reads, on the thread that reads them. _get is
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
/* A batch appended ciphertext by ciphertext, for a writer that never holds it whole (the
 * client encrypting and writing with a few reused buffers, hnn_encrypt_batch_write): _begin
 * declares `count` ciphertexts shaped like `like` (level, size, scale, stored seeded or not;
 * its values are not used: the metadata holds every record's head), then _put_record appends
 * the next record's body in order (bytes from ckks_batch_record_pack; one of another length is
 * refused: PPNN_ERR_PARAM) with its digest — ppnn_chunk_digest(index, rec, len), computed by
 * the caller's worker so the writer only writes, or NULL to compute it here — and _end closes
 * the batch after exactly count records (digest table, top hash). The file is byte for byte
 * the one ckks_batch_set_append writes for the same ciphertexts. After a failure, abort. */
PPNN_MUST_CHECK ppnn_status ckks_batch_set_begin(ckks_batch_set_writer *w,
                                                 const ckks_ciphertext *like, size_t count);
PPNN_MUST_CHECK ppnn_status ckks_batch_set_put_record(ckks_batch_set_writer *w,
                                                      const uint8_t *rec, size_t len,
                                                      const uint8_t digest[PPNN_CHUNK_DIGEST_BYTES]);
PPNN_MUST_CHECK ppnn_status ckks_batch_set_end(ckks_batch_set_writer *w);
/* The stored body of ct in a batch (the seed when seeded, then the packed components; its head
 * is in the batch's metadata): ckks_batch_record_bytes long; _pack writes it to out and returns
 * its length. Pure and thread-safe: threads pack while one writes. */
size_t ckks_batch_record_bytes(const ckks_ciphertext *ct);
size_t ckks_batch_record_pack(uint8_t *out, const ckks_ciphertext *ct);
PPNN_MUST_CHECK ppnn_status ckks_batch_set_finish(ckks_batch_set_writer *w);
void ckks_batch_set_abort(ckks_batch_set_writer *w); /* NULL is a no-op */

#ifdef __cplusplus
}
#endif
#endif
