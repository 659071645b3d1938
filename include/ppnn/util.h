/* ppnn util layer: status codes, error messages, files written atomically.
 *
 * Every runtime failure in ppnn (bad file, wrong key, parameter mismatch, no levels left,
 * insecure parameters, I/O) is reported as a non-zero ppnn_status. The function that detects
 * the failure records a one-line, human-readable message with ppnn_fail(); the caller (usually
 * the CLI) retrieves it with ppnn_last_error(). The message is per thread, like errno/dlerror. */
#ifndef PPNN_UTIL_H
#define PPNN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PPNN_MUST_CHECK __attribute__((warn_unused_result))

/* 128-bit unsigned integer (a GCC/Clang extension; __extension__ keeps -Wpedantic quiet). */
__extension__ typedef unsigned __int128 ppnn_u128;

typedef enum {
    PPNN_OK = 0,
    PPNN_ERR_IO = 1,        /* cannot open / read / write a file */
    PPNN_ERR_FORMAT = 2,    /* malformed, truncated or corrupted input */
    PPNN_ERR_PARAM = 3,     /* invalid parameters or arguments */
    PPNN_ERR_INSECURE = 4,  /* parameters below 128-bit security */
    PPNN_ERR_MISMATCH = 5,  /* objects from different keys / parameter sets / shapes */
    PPNN_ERR_DEPTH = 6,     /* not enough levels left, model too deep */
    PPNN_ERR_NOMEM = 7,     /* allocation failed */
    PPNN_ERR_NUMERIC = 8,   /* NaN/Inf, overflow of the modulus, divergence */
    PPNN_ERR_UNSUPPORTED = 9
} ppnn_status;

/* Records a printf-style message for the current thread and returns code (so callers can
 * `return ppnn_fail(PPNN_ERR_FORMAT, "...")`). The message should fit on one line. */
ppnn_status ppnn_fail(ppnn_status code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepends "prefix: " to the current message (to add context such as a file name). */
void ppnn_error_context(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The last message recorded on this thread ("" if none). Valid until the next ppnn_fail. */
const char *ppnn_last_error(void);
const char *ppnn_status_name(ppnn_status code);

/* ---- files -------------------------------------------------------------------------------
 * Atomic writes: ppnn_wfile_open creates "<path>.tmp.XXXXXX" beside path (mode `mode`, e.g.
 * 0600 for secret keys); ppnn_wfile_commit flushes, fsyncs and renames it over path;
 * ppnn_wfile_abort deletes it. A crash or error never leaves a partial file at path.
 * Secret files (mode PPNN_FILE_MODE_SECRET) get no stdio stream (fp stays NULL): every
 * ppnn_wfile_write goes straight to write(2) from the caller's buffer, so no library buffer
 * ever holds a copy of the secret (stdio buffers are freed without being wiped). */
#define PPNN_FILE_MODE_SECRET 0600u
typedef struct ppnn_wfile {
    FILE *fp;       /* buffered stream for public files; NULL for secret files and for
                     * character devices / FIFOs written through */
    int fd;         /* the temp file's descriptor (owned by fp when fp is set) */
    char *tmp_path; /* NULL when writing through a character device or FIFO */
    char *path;
    int through;
} ppnn_wfile;

/* Opens path for an atomic write after ppnn_path_check_output(path, kind): kind is the
 * four-character container code of the new file, or NULL for files outside the container (CSV,
 * JSON, SVG, reports). A character device or FIFO at path is written through, not replaced. */
PPNN_MUST_CHECK ppnn_status ppnn_wfile_open_kind(ppnn_wfile *w, const char *path, unsigned mode,
                                                 const char *kind);
/* ppnn_wfile_open_kind(w, path, mode, NULL). */
PPNN_MUST_CHECK ppnn_status ppnn_wfile_open(ppnn_wfile *w, const char *path, unsigned mode);
PPNN_MUST_CHECK ppnn_status ppnn_wfile_commit(ppnn_wfile *w);
void ppnn_wfile_abort(ppnn_wfile *w);
/* Writes len bytes; records an I/O error on failure. */
PPNN_MUST_CHECK ppnn_status ppnn_wfile_write(ppnn_wfile *w, const void *buf, size_t len);

/* Reads a whole file into a malloc'd buffer, refusing files larger than max_len bytes
 * (the check happens before allocating). Unbuffered: read(2) goes straight into the returned
 * buffer, so the caller's buffer is the only copy (wipe it before freeing if it is secret). */
PPNN_MUST_CHECK ppnn_status ppnn_read_file(uint8_t **out, size_t *out_len, const char *path,
                                           size_t max_len);

/* ---- paths (src/util/paths.c): the one policy for every file read or written ------------
 * Inputs are regular files only (a FIFO or device would block or never end); the check is made
 * on a descriptor opened O_NONBLOCK, so it cannot hang. Outputs: refused when they are an input
 * of the current command (same st_dev/st_ino, or same resolved path if the output does not
 * exist yet), or when they would replace an existing non-empty file of another kind (its
 * container code, see below; CSV/JSON/text files are one kind "other") unless --force was given;
 * character devices and FIFOs are written through; directories and other special files are
 * refused. Paths that do not fit PATH_MAX (with the ".tmp.XXXXXX" suffix) are refused, never
 * truncated. The inputs of "the current command" are those opened on this thread since the
 * last ppnn_paths_begin(force), which the CLI calls before each (sub)command; before the first
 * call on a thread no inputs are tracked (library users may rewrite a file they read). */
void ppnn_paths_begin(int force);
/* Opens a regular file for reading (*fd, O_CLOEXEC, blocking) and records it as an input. */
PPNN_MUST_CHECK ppnn_status ppnn_path_open_input(int *fd, const char *path);
/* Applies the output rules; *through = 1 when path is a character device or FIFO. */
PPNN_MUST_CHECK ppnn_status ppnn_path_check_output(int *through, const char *path,
                                                   const char *kind);
/* buf = dir "/" name, or PPNN_ERR_PARAM "path too long" (never a truncated path). */
PPNN_MUST_CHECK ppnn_status ppnn_path_join(char *buf, size_t len, const char *dir,
                                           const char *name);

/* ---- the ppnn file container (DESIGN.md section 7) ---------------------------------------
 * Every ppnn file (parameters, keys, ciphertexts, models) has the same frame, little-endian:
 *   0   8  magic "PPNN\0\r\n\x1a" (the \r\n and ^Z catch text-mode and truncating transfers)
 *   8   4  kind: a four-character code: "SKEY", "PKEY", "RKEY", "GKEY", "CBAT" (ciphertext
 *           batches), "MODL" (models, docs/model-format.md)
 *   12  4  format version of that kind
 *   16 32  parameter id (BLAKE2b-256 of the CKKS parameters; zero when not applicable)
 *   48  8  payload length L in bytes
 *   56  L  payload (kind-specific)
 *   56+L 32 BLAKE2b-256 (libsodium crypto_generichash) of bytes [0, 56+L)
 * Readers check magic, kind, version, that L matches the file size exactly, and the checksum,
 * before the payload is parsed; payload parsers then bounds-check every field. */
#define PPNN_FILE_HEADER_BYTES 56
#define PPNN_FILE_TRAILER_BYTES 32
#define PPNN_PARAM_ID_BYTES 32

typedef struct ppnn_file_writer {
    ppnn_wfile w;
    void *hash_state; /* crypto_generichash_state, heap-allocated */
    uint64_t declared, written;
} ppnn_file_writer;

/* Opens path for an atomic write of a payload of exactly payload_len bytes. */
PPNN_MUST_CHECK ppnn_status ppnn_file_create(ppnn_file_writer *fw, const char *path, unsigned mode,
                                             const char kind[4], uint32_t version,
                                             const uint8_t param_id[PPNN_PARAM_ID_BYTES],
                                             uint64_t payload_len);
PPNN_MUST_CHECK ppnn_status ppnn_file_put(ppnn_file_writer *fw, const void *buf, size_t len);
/* Appends the checksum and renames into place; fails if the payload length differs. */
PPNN_MUST_CHECK ppnn_status ppnn_file_finish(ppnn_file_writer *fw);
void ppnn_file_abort(ppnn_file_writer *fw);

/* Frames: several containers back to back in one atomic file (multi-batch files). _begin
 * starts a frame writing through w (opened with ppnn_wfile_open; its commit or abort stays the
 * caller's), ppnn_file_put appends payload, _end appends the checksum; _abort drops the frame
 * state (the caller then aborts w). */
PPNN_MUST_CHECK ppnn_status ppnn_frame_begin(ppnn_file_writer *fw, const ppnn_wfile *w,
                                             const char kind[4], uint32_t version,
                                             const uint8_t param_id[PPNN_PARAM_ID_BYTES],
                                             uint64_t payload_len);
PPNN_MUST_CHECK ppnn_status ppnn_frame_end(ppnn_file_writer *fw);
void ppnn_frame_abort(ppnn_file_writer *fw);
/* Validates a frame header (magic, kind, version 1..max_version) read from a file and returns
 * its payload length, version and parameter id (each may be NULL but payload_len). */
PPNN_MUST_CHECK ppnn_status ppnn_frame_header_parse(uint64_t *payload_len, uint32_t *version,
                                                    uint8_t param_id[PPNN_PARAM_ID_BYTES],
                                                    const uint8_t h[PPNN_FILE_HEADER_BYTES],
                                                    const char *name, const char kind[4],
                                                    uint32_t max_version);
/* Recomputes the checksum of the frame at `offset` of an open file (header + payload_len
 * bytes, read in 1 MiB chunks: nothing of the payload is kept) and compares it with the stored
 * one. For loaders that stream a large payload instead of reading it whole. */
PPNN_MUST_CHECK ppnn_status ppnn_frame_verify_fd(int fd, uint64_t offset, uint64_t payload_len,
                                                 const char *name);
typedef struct ppnn_file_view {
    uint8_t *buf;          /* whole file, owned */
    size_t buf_len;
    uint32_t version;
    uint8_t param_id[PPNN_PARAM_ID_BYTES];
    const uint8_t *payload; /* points into buf */
    size_t payload_len;
} ppnn_file_view;

/* Reads and verifies a file of the given kind (versions 1..max_version accepted, files larger
 * than max_bytes refused before reading). Errors name the path and what is wrong. */
PPNN_MUST_CHECK ppnn_status ppnn_file_open(ppnn_file_view *v, const char *path, const char kind[4],
                                           uint32_t max_version, size_t max_bytes);
/* The same checks on a file already in memory (takes ownership of buf on success and failure). */
/* ... and without taking ownership: v->payload points into buf, v->buf stays NULL (so
 * ppnn_file_close(v) frees nothing). */
PPNN_MUST_CHECK ppnn_status ppnn_file_view_of(ppnn_file_view *v, const uint8_t *buf, size_t len,
                                              const char *name, const char kind[4],
                                              uint32_t max_version);
/* In-memory framing of buf[0, len) whose payload is already at [56, len - 32): writes the
 * header (magic, kind, version, parameter id or zeros, payload length) and the checksum. */
void ppnn_file_frame(uint8_t *buf, size_t len, const char kind[4], uint32_t version,
                     const uint8_t param_id[PPNN_PARAM_ID_BYTES]);
/* Recomputes only the payload length and the checksum (for fuzzers and corruption tests:
 * a mutated file must be refused by the payload checks, not only by the checksum). */
void ppnn_file_reseal(uint8_t *buf, size_t len);
PPNN_MUST_CHECK ppnn_status ppnn_file_parse(ppnn_file_view *v, uint8_t *buf, size_t len,
                                            const char *name, const char kind[4],
                                            uint32_t max_version);
void ppnn_file_close(ppnn_file_view *v);

/* Streaming verification of a container arriving in pieces (an upload), so it is never held
 * whole in memory: feed every byte through update, then finish. Once the 56-byte header has
 * arrived (header_ok), kind/version/param_id/payload_len/total are filled in so the caller can
 * refuse the wrong kind or an oversized file before the payload arrives. update fails on bad
 * magic or bytes beyond the declared length; finish fails when bytes are missing or the
 * BLAKE2b checksum differs. Version and kind are the caller's to check. */
typedef struct ppnn_file_check {
    const char *name; /* for messages */
    uint8_t head[PPNN_FILE_HEADER_BYTES];
    uint8_t trailer[PPNN_FILE_TRAILER_BYTES];
    uint64_t seen, total;
    int header_ok, failed;
    char kind[5];
    uint32_t version;
    uint8_t param_id[PPNN_PARAM_ID_BYTES];
    uint64_t payload_len;
    void *hash_state;
    /* Chunked frames (ppnn_file_check_chunked): the rule, then the state of one in progress:
     * lengths and computed digests (the table arriving last is compared entry by entry). */
    char chunked_kind[4];
    uint32_t chunked_version;
    uint64_t max_chunks;
    const char *noun;
    int chunked, chunk_open;
    uint64_t count, meta_len, body_at, body_end, next, table_at;
    uint64_t *len;
    uint8_t *digest;
    void *chunk_state; /* XXH3_state_t of the chunk in progress */
    uint8_t item[32]; /* a length or digest entry split between two updates */
    size_t item_fill;
} ppnn_file_check;
void ppnn_file_check_init(ppnn_file_check *c, const char *name);
PPNN_MUST_CHECK ppnn_status ppnn_file_check_update(ppnn_file_check *c, const uint8_t *buf,
                                                   size_t len);
PPNN_MUST_CHECK ppnn_status ppnn_file_check_finish(ppnn_file_check *c);
/* Frames of this kind and version are chunked (above): every chunk's digest is computed as its
 * bytes pass and compared with its table entry when that arrives, so a corrupted body is
 * refused naming the chunk (noun) before the upload is accepted. At most max_chunks chunks
 * (the lengths and digests kept: 24 bytes each). Call after _init. */
void ppnn_file_check_chunked(ppnn_file_check *c, const char kind[4], uint32_t version,
                             uint64_t max_chunks, const char *noun);
void ppnn_file_check_free(ppnn_file_check *c); /* NULL is a no-op */

/* ---- chunked frames (src/util/chunked.c; the ciphertext batch kinds, docs/file-formats.md) --
 * A frame whose payload is a small metadata block and C chunks (one per ciphertext), each
 * chunk with its own digest, so a reader verifies exactly the chunks it reads, when it reads
 * them, on whichever thread reads them:
 *   56          8   u64 chunk count C
 *   64          8   u64 metadata length M
 *   72          M   metadata (kind-specific)
 *   72+M       8C   u64 chunk length[C]
 *   72+M+8C     S   the chunk bodies in order (S = sum of the lengths)
 *   72+M+8C+S 16C   digest[C]: digest[i] = ppnn_chunk_digest(i, body i)
 *   56+L       32   top hash: BLAKE2b-256 of bytes [0, 72+M+8C) followed by the digest table
 * (L = 16 + M + 24C + S). The top hash covers the header, the metadata, the lengths and the
 * digests, not the bodies: opening verifies it (a few KB), each body is verified by its digest.
 * The digests guard against corruption and truncation, not against a malicious peer (anyone can
 * recompute them; docs/decisions.md "File integrity"), so they are a fast non-cryptographic
 * 128-bit hash (XXH3, ~10x BLAKE2b); the top hash over a few KB stays BLAKE2b-256.
 * Which (kind, version) pairs are chunked is the caller's knowledge (ckks_io.h). */
#define PPNN_CHUNK_DIGEST_BYTES 16
#define PPNN_CHUNKED_FIXED_BYTES 16
/* The body's digest bound to its position and length: XXH3-128 (xxHash's
 * XXH3_128bits_withSeed) of the body with seed = index, stored big-endian
 * (XXH128_canonicalFromHash: high 64 bits first). XXH3 mixes the length in, so a body moved to
 * another index, or cut, does not match. Pure and thread-safe (the writers' workers call it). */
void ppnn_chunk_digest(uint8_t out[PPNN_CHUNK_DIGEST_BYTES], uint64_t index, const void *body,
                       size_t len);
/* Payload bytes of a chunked frame (what ppnn_frame_begin is told). */
uint64_t ppnn_chunked_payload_bytes(uint64_t count, uint64_t meta_len, uint64_t bodies_len);

/* Writes a chunked frame through fw (begun with ppnn_frame_begin / ppnn_file_create for
 * exactly ppnn_chunked_payload_bytes): _begin puts the count, the metadata and the lengths;
 * _put appends body `next` (its length must be len[next]; digest: its ppnn_chunk_digest when
 * the caller computed it on another thread, NULL to compute it here); _end appends the digest
 * table (the caller then ends the frame: ppnn_frame_end / ppnn_file_finish append the top
 * hash). _free releases the state (any time). */
typedef struct ppnn_chunk_writer {
    ppnn_file_writer *fw;
    uint64_t count, next;
    uint64_t *len;
    uint8_t *digest;
} ppnn_chunk_writer;
PPNN_MUST_CHECK ppnn_status ppnn_chunk_writer_begin(ppnn_chunk_writer *cw, ppnn_file_writer *fw,
                                                    const uint8_t *meta, size_t meta_len,
                                                    uint64_t count, const uint64_t *len);
PPNN_MUST_CHECK ppnn_status ppnn_chunk_writer_put(ppnn_chunk_writer *cw, const void *body,
                                                  size_t len,
                                                  const uint8_t digest[PPNN_CHUNK_DIGEST_BYTES]);
PPNN_MUST_CHECK ppnn_status ppnn_chunk_writer_end(ppnn_chunk_writer *cw);
void ppnn_chunk_writer_free(ppnn_chunk_writer *cw);

/* A chunked frame opened for reading: the verified metadata, the lengths, the absolute offset
 * of every body and the digests. _open reads the header region and the digest table of the
 * frame at frame_off (header h, payload length L already parsed and inside the file) with
 * pread, checks that the sizes add up to L exactly (before allocating: every table is bounded
 * by the bytes present) and verifies the top hash. _view does the same on a frame in memory
 * (offsets are then relative to `frame`). `noun` names a chunk in messages ("ciphertext"). */
typedef struct ppnn_chunked {
    const char *noun;
    uint64_t count;
    uint8_t *meta;
    size_t meta_len;
    uint64_t *len, *offset;
    uint8_t *digest;
    uint8_t top[PPNN_FILE_TRAILER_BYTES]; /* the verified top hash (BLAKE2b-256) */
} ppnn_chunked;
PPNN_MUST_CHECK ppnn_status ppnn_chunked_open(ppnn_chunked *c, int fd, uint64_t frame_off,
                                              uint64_t payload_len, const char *name,
                                              const char *noun);
PPNN_MUST_CHECK ppnn_status ppnn_chunked_view(ppnn_chunked *c, const uint8_t *frame,
                                              size_t frame_len, const char *name,
                                              const char *noun);
/* Verifies body i (len[i] bytes) against its digest: "name: ciphertext 17 of 784: checksum
 * mismatch (file corrupted)" otherwise (chunks are numbered from 0, like every message). */
PPNN_MUST_CHECK ppnn_status ppnn_chunk_verify(const ppnn_chunked *c, uint64_t i,
                                              const uint8_t *body, const char *name);
void ppnn_chunked_free(ppnn_chunked *c); /* NULL is a no-op */
/* Recomputes the payload length, every digest and the top hash of a chunked frame in memory
 * (fuzzers, corruption tests); when the count, metadata length and lengths do not add up, only
 * the payload length and a plain trailer (BLAKE2b of everything) are written. */
void ppnn_chunked_reseal(uint8_t *frame, size_t len);

/* Bounds-checked little-endian cursor over a payload. Every read fails cleanly (PPNN_ERR_FORMAT,
 * "truncated") instead of reading past the end. */
typedef struct ppnn_reader {
    const uint8_t *p;
    size_t len, pos;
    const char *name; /* for messages */
} ppnn_reader;
void ppnn_reader_init(ppnn_reader *r, const uint8_t *p, size_t len, const char *name);
PPNN_MUST_CHECK ppnn_status ppnn_read_u32(ppnn_reader *r, uint32_t *v);
PPNN_MUST_CHECK ppnn_status ppnn_read_u64(ppnn_reader *r, uint64_t *v);
PPNN_MUST_CHECK ppnn_status ppnn_read_f64(ppnn_reader *r, double *v);
PPNN_MUST_CHECK ppnn_status ppnn_read_bytes(ppnn_reader *r, void *out, size_t n);
/* Returns a pointer to the next n bytes without copying. */
PPNN_MUST_CHECK ppnn_status ppnn_read_span(ppnn_reader *r, const uint8_t **out, size_t n);
/* Fails unless every byte has been consumed (trailing garbage is an error). */
PPNN_MUST_CHECK ppnn_status ppnn_reader_end(const ppnn_reader *r);

/* Little-endian encoders and decoders: the one copy (the ppnn_reader above checks bounds; these
 * do not — callers check the length first). */
void ppnn_put_u32(uint8_t *p, uint32_t v);
void ppnn_put_u64(uint8_t *p, uint64_t v);
void ppnn_put_f32(uint8_t *p, float v);
void ppnn_put_f64(uint8_t *p, double v);
uint32_t ppnn_get_u32(const uint8_t *p);
uint64_t ppnn_get_u64(const uint8_t *p);
float ppnn_get_f32(const uint8_t *p);

/* Bit packing: n values of `bits` bits (1..64) each, LSB first, into ceil(n*bits/8) bytes.
 * Unpack fails (PPNN_ERR_FORMAT) if any value is >= bound (e.g. a prime q), so corrupted
 * coefficients are caught even when the checksum was recomputed by an attacker. */
size_t ppnn_packed_bytes(size_t n, unsigned bits);
void ppnn_bitpack(uint8_t *out, const uint64_t *v, size_t n, unsigned bits);
PPNN_MUST_CHECK ppnn_status ppnn_bitunpack(uint64_t *v, const uint8_t *in, size_t n,
                                           unsigned bits, uint64_t bound, const char *name);

/* The first failure of a parallel (OpenMP) loop, carried to the calling thread (messages are
 * per thread). Zero-initialise; workers call ppnn_first_error_keep(&f, status) after a
 * failure (no-op for PPNN_OK; the first one wins), may poll ppnn_first_error_set(&f) to stop
 * early; after the loop the caller returns ppnn_first_error_status(&f), which re-records the
 * message on its thread (PPNN_OK when nothing failed). */
typedef struct ppnn_first_error {
    ppnn_status st;
    char msg[512];
} ppnn_first_error;
void ppnn_first_error_keep(ppnn_first_error *f, ppnn_status e);
int ppnn_first_error_set(const ppnn_first_error *f);
PPNN_MUST_CHECK ppnn_status ppnn_first_error_status(const ppnn_first_error *f);

/* Index of the largest of v[0..n) (n >= 1): the first one on ties; NaNs lose to numbers
 * (src/util/argmax.c — the one argmax of the library and the CLI). */
size_t ppnn_argmax(const double *v, size_t n);
size_t ppnn_argmaxf(const float *v, size_t n);

/* Monotonic wall-clock seconds. */
double ppnn_now(void);

#ifdef __cplusplus
}
#endif
#endif
