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

/* Monotonic wall-clock seconds. */
double ppnn_now(void);

#ifdef __cplusplus
}
#endif
#endif
