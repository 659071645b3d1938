/* Internal header of the serve layer: job store, tokens, routes, uploads, models, workers. */
#ifndef PPNN_SERVE_INNER_H
#define PPNN_SERVE_INNER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "ppnn/ckks_io.h"
#include "ppnn/hnn.h"
#include "ppnn/serve.h"

#define SRV_ID_HEX 32 /* job ids and key ids: 16 bytes in lower-case hex */
#define SRV_IN_CHECK_MAX 160

/* ---- store.c: SQLite (WAL) under the state directory ------------------------------------
 * One connection guarded by a mutex: every call is one short statement or transaction. */
typedef struct srv_store srv_store;

typedef struct srv_job {
    char id[SRV_ID_HEX + 1];
    int64_t client;
    char model[SRV_NAME_MAX + 1];
    char key_id[SRV_ID_HEX + 1];
    char state[16];
    char error[256];
    double created, started, finished, fetched;
    int64_t seq;
    char in_check[SRV_IN_CHECK_MAX]; /* the upload record (srv_upload_record), "" for none */
} srv_job;

PPNN_MUST_CHECK ppnn_status srv_store_open(srv_store **s, const char *state_dir);
void srv_store_close(srv_store *s);
/* Client whose token hash is `hash` (0 when none). */
int64_t srv_store_client_by_hash(srv_store *s, const uint8_t hash[32]);
PPNN_MUST_CHECK ppnn_status srv_store_client_add(srv_store *s, const char *name,
                                                 const uint8_t hash[32]);
PPNN_MUST_CHECK ppnn_status srv_store_client_revoke(srv_store *s, const char *name);
PPNN_MUST_CHECK ppnn_status srv_store_client_list(srv_store *s,
                                                  void (*fn)(void *, const char *, double, size_t),
                                                  void *ctx);
/* Evaluation keys: kind is "relin" or "galois". */
PPNN_MUST_CHECK ppnn_status srv_store_key_put(srv_store *s, int64_t client, const char *key_id,
                                              const char *kind, const uint8_t param_id[32]);
/* Bit 1: relin registered, bit 2: galois registered (0: unknown key). param_id out (may be
 * NULL). */
int srv_store_key_get(srv_store *s, int64_t client, const char *key_id, uint8_t param_id[32]);
/* Inserts a queued job; when (client, idem) exists already, fills *existing with that job's id
 * and returns PPNN_OK without inserting (idem may be "" for none). */
PPNN_MUST_CHECK ppnn_status srv_store_job_add(srv_store *s, const srv_job *j, const char *idem,
                                              char existing[SRV_ID_HEX + 1]);
/* 1 and out filled when this client already has a job with Idempotency-Key idem. */
int srv_store_job_by_idem(srv_store *s, int64_t client, const char *idem,
                          char out[SRV_ID_HEX + 1]);
/* 0 when found (and visible: not deleted) for this client; 1 otherwise. client < 0: any. */
int srv_store_job_get(srv_store *s, srv_job *j, int64_t client, const char *id);
/* Claims the oldest queued job (state -> running); 1 if one was claimed. */
int srv_store_job_claim(srv_store *s, srv_job *j);
PPNN_MUST_CHECK ppnn_status srv_store_job_finish(srv_store *s, const char *id, const char *state,
                                                 const char *error);
PPNN_MUST_CHECK ppnn_status srv_store_job_set(srv_store *s, const char *id, const char *field,
                                              double value);
/* Marks a job deleted (it disappears for its client); the janitor removes it. */
PPNN_MUST_CHECK ppnn_status srv_store_job_delete(srv_store *s, int64_t client, const char *id);
size_t srv_store_count(srv_store *s, const char *state);
/* Jobs queued ahead of seq. */
size_t srv_store_queue_position(srv_store *s, int64_t seq);
/* Restart: running -> queued; returns how many. */
size_t srv_store_requeue_running(srv_store *s);
/* Ids of jobs to forget (deleted, or fetched before `fetched_before`), up to cap. */
size_t srv_store_expired(srv_store *s, char (*ids)[SRV_ID_HEX + 1], size_t cap,
                         double fetched_before);
PPNN_MUST_CHECK ppnn_status srv_store_job_forget(srv_store *s, const char *id);
/* 1 if a job row with this id exists (any state). */
int srv_store_job_exists(srv_store *s, const char *id);
/* The JSON array of a client's jobs (id, model, state), for GET /v1/jobs; caller frees. */
char *srv_store_jobs_json(srv_store *s, int64_t client);

/* Wall-clock seconds since the epoch (persisted timestamps). */
double srv_wall_now(void);

/* ---- token.c ------------------------------------------------------------------------------
 * Tokens carry 256 bits from randombytes_buf, so a fast hash is enough: nobody can search
 * 2^256 candidates, which is what crypto_pwhash's cost protects low-entropy passwords against.
 * The hash is BLAKE2b keyed with a 32-byte server secret (state/token.key, 0600): a copy of
 * the database alone does not even let one test a guessed token. Lookup is by the hash
 * (indexed); the final comparison is sodium_memcmp (constant time). */
PPNN_MUST_CHECK ppnn_status srv_token_key_load(uint8_t key[32], const char *state_dir);
void srv_token_hash(uint8_t hash[32], const uint8_t key[32], const char *token, size_t len);
/* Random 16-byte id as lower-case hex. */
void srv_random_id(char id[SRV_ID_HEX + 1]);
int srv_valid_name(const char *name);

/* ---- route.c: method + path -> route (no I/O; fuzzed) ----------------------------------- */
typedef enum {
    SRV_R_NONE = 0,     /* unknown path: 404 */
    SRV_R_BAD_METHOD,   /* known path, other method: 405 */
    SRV_R_HEALTH,       /* GET  /v1/health */
    SRV_R_MODELS,       /* GET  /v1/models */
    SRV_R_KEY_PUT,      /* POST /v1/keys                 body: relin.key or galois.key */
    SRV_R_KEY_GET,      /* GET  /v1/keys/{key_id} */
    SRV_R_JOB_LIST,     /* GET  /v1/jobs */
    SRV_R_JOB_SUBMIT,   /* POST /v1/jobs?model=M&key=K   body: batch.ct */
    SRV_R_JOB_STATUS,   /* GET  /v1/jobs/{id} */
    SRV_R_JOB_DELETE,   /* DELETE /v1/jobs/{id} */
    SRV_R_JOB_RESULT    /* GET  /v1/jobs/{id}/result */
} srv_route_kind;

typedef struct srv_route {
    srv_route_kind kind;
    char id[SRV_ID_HEX + 1]; /* key or job id (validated lower-case hex) */
} srv_route;
void srv_route_parse(srv_route *r, const char *method, const char *path);
int srv_valid_id(const char *s);
/* "Bearer TOKEN" -> pointer to TOKEN (NULL if the header is absent or malformed). */
const char *srv_bearer(const char *authorization);

/* ---- upload.c: a body streamed to a temporary file in state/tmp, verified on the fly ------
 * Three stages run concurrently on every upload: the connection's thread (TLS decryption)
 * copies the body into a ring of SRV_UP_SLOTS slots of SRV_UP_SLOT_BYTES (2 MiB in all: a
 * ring that fits the L2 cache; 4 x 1 MiB made the copy into the page cache 30 % dearer, and
 * TLS hands over 16 KiB records: one write() per record before); a check thread runs
 * ppnn_file_check over each full slot in order; a write thread writes each checked slot to the
 * file (and starts its writeback at once, so the fsync at the end has little left to do). A
 * slot is written only after it was checked and refilled only after it was written: the hash
 * and the file see the same bytes, and nothing after a refusal is stored. The upload then takes
 * about as long as its slowest stage instead of the sum of all three (the check was the slowest
 * while batch digests were BLAKE2b). Without threads (pthread_create failing) every chunk is
 * checked and written inline. */
#define SRV_UP_SLOTS 8
#define SRV_UP_SLOT_BYTES ((size_t)256 << 10)
struct srv_up_pipe;
typedef struct srv_upload {
    int fd;
    char tmp[1024];
    ppnn_file_check check;
    uint64_t limit;      /* refuse more bytes than this (413) */
    const char *kinds;   /* accepted container kinds, e.g. "RKEY GKEY" */
    const uint8_t *param_id; /* when set, the container's parameter id must equal it */
    const uint8_t *key_id;   /* when set, the key id at key_id_off must equal it */
    uint64_t key_id_off;
    uint8_t got_key_id[CKKS_KEY_ID_BYTES];
    int status;          /* HTTP status of the refusal (0 while fine; srv_upload_refused) */
    char error[256];
    char record[SRV_IN_CHECK_MAX]; /* after a commit: what the server verified (below) */
    uint64_t received;   /* body bytes fed so far (the connection's thread) */
    uint64_t stored;     /* bytes written to the file (the writer's; read it after a commit) */
    struct srv_up_pipe *pipe; /* the check and write threads (NULL: inline) */
} srv_upload;
PPNN_MUST_CHECK ppnn_status srv_upload_open(srv_upload *u, const char *state_dir, uint64_t limit,
                                            const char *kinds, const char *name);
/* Consumes a chunk; on refusal sets u->status/u->error (later chunks are then ignored). The
 * refusal of a chunk may be seen a slot later (the check thread's verdict): srv_upload_refused
 * reads it from any thread. */
void srv_upload_feed(srv_upload *u, const uint8_t *buf, size_t len);
int srv_upload_refused(const srv_upload *u);
/* End of the body: verifies the checksum, fsyncs and renames to path. 0 on success, otherwise
 * u->status/u->error say why. */
int srv_upload_commit(srv_upload *u, const char *path);
void srv_upload_abort(srv_upload *u); /* removes the temporary file; idempotent */
/* The upload record, kept in the job's row: the BLAKE2b checksum the server verified over the
 * bytes it wrote, and the stored file's identity (size, inode, mtime in ns) after its fsync.
 * srv_upload_trusted is 1, with sum filled, when path is still that file (same identity, the
 * record well formed): the worker then lets the library skip re-hashing it
 * (hnn_file_opts.input_checksum); 0 otherwise (the input is verified in full). */
void srv_upload_record(char out[SRV_IN_CHECK_MAX], const uint8_t sum[PPNN_FILE_TRAILER_BYTES],
                       uint64_t size, uint64_t ino, int64_t mtime_ns);
int srv_upload_trusted(uint8_t sum[PPNN_FILE_TRAILER_BYTES], const char *record,
                       const char *path);
/* The check alone (no file): what the fuzzer drives. */
void srv_upload_check(srv_upload *u, const uint8_t *buf, size_t len);

/* ---- models.c: the models directory and the parameter sets served ------------------------ */
typedef struct srv_model {
    char name[SRV_NAME_MAX + 1];
    nn_model m;
    /* per preset (n13, n14): the plan (NULL when the model does not fit) */
    hnn_plan *plan[2];
} srv_model;
typedef struct srv_models {
    size_t count;
    srv_model *v;
    ckks_params *params[2]; /* n13, n14 */
    const char *preset_names[2];
} srv_models;
PPNN_MUST_CHECK ppnn_status srv_models_load(srv_models *ms, const char *dir);
void srv_models_free(srv_models *ms);
const srv_model *srv_models_find(const srv_models *ms, const char *name);
/* Index of the preset with this parameter id, -1 if none is served. */
int srv_models_preset(const srv_models *ms, const uint8_t param_id[32]);
char *srv_models_json(const srv_models *ms); /* GET /v1/models body; caller frees */

/* ---- worker.c: the pool running jobs ------------------------------------------------------ */
typedef struct srv_progress {
    char job[SRV_ID_HEX + 1]; /* "" when idle */
    size_t step, steps, layer;
    char step_name[16];
    double fraction, started;
} srv_progress;

typedef struct srv_pool srv_pool;
void srv_job_path(char *buf, size_t len, const char *state_dir, const char *id, const char *ext);
void srv_key_path(char *buf, size_t len, const char *state_dir, int64_t client,
                  const char *key_id, const char *kind);
/* on_finish(ctx, job id) is called after a job's final state (done / failed) is committed. */
PPNN_MUST_CHECK ppnn_status srv_pool_start(srv_pool **p, srv_store *s, const srv_models *ms,
                                           const char *state_dir, size_t workers, size_t threads,
                                           FILE *log, void (*on_finish)(void *, const char *),
                                           void *ctx);
void srv_pool_wake(srv_pool *p);
/* 0 and *out filled when job id is running on some worker. */
int srv_pool_progress(srv_pool *p, const char *id, srv_progress *out);
/* Seconds a job has taken on average (an estimate for Retry-After and ETAs; 0 if none yet). */
double srv_pool_mean_seconds(srv_pool *p);
size_t srv_pool_workers(const srv_pool *p);
void srv_pool_stop(srv_pool *p);

/* ---- client.c ---------------------------------------------------------------------------- */
/* Parses a GET /v1/jobs/{id} body; 0 on success (a document without a state is refused). */
int srv_parse_status(srv_status *st, const char *body);

/* ---- http.c / server.c ------------------------------------------------------------------- */
typedef struct srv_server {
    const srv_config *cfg;
    srv_store *store;
    const srv_models *models;
    srv_pool *pool;
    uint8_t token_key[32];
    pthread_mutex_t mu;
    size_t uploading; /* job uploads in flight: they hold queue slots */
    /* Long polls (GET /v1/jobs/{id}?wait=S): suspended connections, resumed when their job
     * finishes (srv_http_job_finished), at their deadline or at shutdown (srv_http_tick). */
    pthread_mutex_t wait_mu;
    struct request *waiters;
    int stopping;
} srv_server;
struct MHD_Daemon;
/* Parses cfg->listen, enforces TLS (or plain HTTP on loopback only) and starts the daemon;
 * *port receives the bound port. */
PPNN_MUST_CHECK ppnn_status srv_http_start(struct MHD_Daemon **d, srv_server *sv, uint16_t *port);
void srv_http_stop(struct MHD_Daemon *d);
/* Longest wait a long poll may ask for, in seconds. */
#define SRV_WAIT_MAX 30
/* "wait" query value: 0 and *seconds in [0, SRV_WAIT_MAX] when valid, 1 otherwise. */
int srv_parse_wait(double *seconds, const char *v);
void srv_http_job_finished(void *sv, const char *id);
/* Resumes the long polls whose deadline passed (all of them when stop: no new ones wait). */
void srv_http_tick(srv_server *sv, int stop);

#endif
