/* ppnn serve layer: the network service (DESIGN.md §8) on top of hnn and the ckks file formats.
 *
 * Server: HTTP/1.1 (libmicrohttpd, TLS through GnuTLS by default), per-client bearer tokens,
 * evaluation keys registered by key id, a persistent job queue (SQLite, WAL) whose jobs are run
 * by a pool of workers through hnn_infer_file. Client: libcurl, retries with back-off.
 * The wire API is docs/service.md. Every exported symbol has the srv_ prefix. */
#ifndef PPNN_SERVE_H
#define PPNN_SERVE_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "ppnn/util.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A bearer token: "ppnn_" + 43 characters of unpadded base64url (256 random bits). */
#define SRV_TOKEN_CHARS 48
#define SRV_NAME_MAX 64

typedef struct srv_config {
    const char *models_dir; /* DIR/<name>.ppnn, one model per file */
    const char *state_dir;  /* SQLite store, uploads, results, keys */
    const char *listen;     /* "ADDR:PORT"; port 0 picks a free port (printed) */
    const char *tls_cert, *tls_key; /* PEM files; both or neither */
    int plain_http;         /* no TLS: refused unless ADDR is a loopback address */
    size_t workers;         /* jobs run at once (0: accept and queue only) */
    size_t max_queue;       /* queued jobs (uploads in flight included) before 429 */
    size_t threads;         /* OpenMP threads per job (0: cores / workers) */
    double result_ttl;      /* seconds a result is kept after its first download */
    FILE *log;              /* one line per event (may be NULL) */
    /* Called once the port is bound (may be NULL): lets an in-process caller (ppnn demo
     * --serve) learn the port picked for "ADDR:0". */
    void (*on_listening)(void *ctx, uint16_t port);
    void *ctx;
} srv_config;

/* Runs the server until *stop becomes non-zero (a signal handler sets it). On start, jobs left
 * running by a previous process are queued again, uploads that never completed are deleted.
 * Errors: PPNN_ERR_PARAM (bad address, TLS files missing, plain HTTP off loopback),
 * PPNN_ERR_IO (state directory, bind), PPNN_ERR_UNSUPPORTED (libmicrohttpd without TLS). */
PPNN_MUST_CHECK ppnn_status srv_run(const srv_config *cfg, volatile sig_atomic_t *stop);

/* Token management on the state directory (works while a server runs on it). add creates
 * client `name` ([A-Za-z0-9_.-], 1..SRV_NAME_MAX chars) and writes its token, shown once: only
 * a keyed hash is stored. revoke deletes the client's token (its jobs and keys stay until their
 * TTL). list calls fn for every client. */
PPNN_MUST_CHECK ppnn_status srv_token_add(char token[SRV_TOKEN_CHARS + 1], const char *state_dir,
                                          const char *name);
PPNN_MUST_CHECK ppnn_status srv_token_revoke(const char *state_dir, const char *name);
PPNN_MUST_CHECK ppnn_status srv_token_list(const char *state_dir,
                                           void (*fn)(void *ctx, const char *name, double created,
                                                      size_t jobs),
                                           void *ctx);

/* ---- client ------------------------------------------------------------------------------ */
typedef struct srv_status {
    char state[16];     /* queued, running, done, failed */
    char error[256];    /* failed: why */
    char step_name[16]; /* running: the step being run (e.g. "conv2d") */
    size_t step, steps, layer;
    double progress;    /* 0..1 */
    double eta;         /* seconds, < 0 when unknown */
    size_t queue_position;
} srv_status;

typedef struct srv_client_opts {
    const char *server; /* https://host:port */
    const char *token;
    const char *cacert; /* PEM bundle to verify the server with (NULL: system store) */
    size_t retries;     /* attempts per request on 429 / 5xx / lost connections */
    double poll;        /* status refresh (s): the long poll's wait; a finish is seen at once */
    void (*on_status)(void *ctx, const srv_status *st); /* every poll (may be NULL) */
    void (*on_event)(void *ctx, const char *msg);       /* key upload, job id, retries */
    void *ctx;
} srv_client_opts;

/* The whole client flow: registers KEYDIR's evaluation keys unless the server already has
 * them (by key id), uploads `in` as a job for `model` (or, when *job_id is non-empty, resumes
 * waiting for that job), polls its status, downloads the result to `out` atomically and checks
 * it is a result batch under the same keys. job_id (in/out, 33 bytes) receives the job id.
 * Errors: PPNN_ERR_IO (network, after the retries), PPNN_ERR_PARAM (the server refused: the
 * message carries its reason), PPNN_ERR_FORMAT (a result that does not verify). */
PPNN_MUST_CHECK ppnn_status srv_submit(char job_id[33], const srv_client_opts *o,
                                       const char *keydir, const char *model, const char *in,
                                       const char *out);

#ifdef __cplusplus
}
#endif
#endif
