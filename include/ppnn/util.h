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
 * ppnn_wfile_abort deletes it. A crash or error never leaves a partial file at path. */
typedef struct ppnn_wfile {
    FILE *fp;
    char *tmp_path;
    char *path;
} ppnn_wfile;

PPNN_MUST_CHECK ppnn_status ppnn_wfile_open(ppnn_wfile *w, const char *path, unsigned mode);
PPNN_MUST_CHECK ppnn_status ppnn_wfile_commit(ppnn_wfile *w);
void ppnn_wfile_abort(ppnn_wfile *w);
/* Writes len bytes; records an I/O error on failure. */
PPNN_MUST_CHECK ppnn_status ppnn_wfile_write(ppnn_wfile *w, const void *buf, size_t len);

/* Reads a whole file into a malloc'd buffer, refusing files larger than max_len bytes
 * (the check happens before allocating). */
PPNN_MUST_CHECK ppnn_status ppnn_read_file(uint8_t **out, size_t *out_len, const char *path,
                                           size_t max_len);

/* ---- the ppnn file container (DESIGN.md section 7) ---------------------------------------
 * Every ppnn file (parameters, keys, ciphertexts, models) has the same frame, little-endian:
 *   0   8  magic "PPNN\0\r\n\x1a" (the \r\n and ^Z catch text-mode and truncating transfers)
 *   8   4  kind: a four-character code, e.g. "PARM", "SKEY", "PKEY", "RKEY", "GKEY", "CTXT"
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
} ppnn_file_check;
void ppnn_file_check_init(ppnn_file_check *c, const char *name);
PPNN_MUST_CHECK ppnn_status ppnn_file_check_update(ppnn_file_check *c, const uint8_t *buf,
                                                   size_t len);
PPNN_MUST_CHECK ppnn_status ppnn_file_check_finish(ppnn_file_check *c);
void ppnn_file_check_free(ppnn_file_check *c); /* NULL is a no-op */

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

/* Little-endian encoders for writers. */
void ppnn_put_u32(uint8_t *p, uint32_t v);
void ppnn_put_u64(uint8_t *p, uint64_t v);
void ppnn_put_f64(uint8_t *p, double v);

/* Bit packing: n values of `bits` bits (1..64) each, LSB first, into ceil(n*bits/8) bytes.
 * Unpack fails (PPNN_ERR_FORMAT) if any value is >= bound (e.g. a prime q), so corrupted
 * coefficients are caught even when the checksum was recomputed by an attacker. */
size_t ppnn_packed_bytes(size_t n, unsigned bits);
void ppnn_bitpack(uint8_t *out, const uint64_t *v, size_t n, unsigned bits);
PPNN_MUST_CHECK ppnn_status ppnn_bitunpack(uint64_t *v, const uint8_t *in, size_t n,
                                           unsigned bits, uint64_t bound, const char *name);

/* Monotonic wall-clock seconds. */
double ppnn_now(void);

#ifdef __cplusplus
}
#endif
#endif
