/* The HTTP front end (libmicrohttpd; TLS through its GnuTLS support) and the server's main loop.
 * Handlers authenticate, route (route.c), stream uploads to disk (upload.c), read and write the
 * store (store.c) and answer in JSON (cJSON). docs/service.md is the API. */
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve_inner.h"

/* Evaluation keys are bounded by the largest a served preset can have: a Galois key set for
 * channel-wise packing at n14 holds a few dozen switching keys of ~10 MB. */
#define MAX_KEY_UPLOAD ((uint64_t)1 << 30)
#define IDEM_MAX 64
/* Bytes of a refused body read (and dropped) before the connection is closed instead. */
#define DISCARD_MAX ((uint64_t)64 << 20)

typedef srv_server server;

typedef struct request {
    srv_route route;
    struct MHD_Connection *conn; /* while suspended in a long poll */
    double deadline;             /* of the long poll (ppnn_now seconds) */
    struct request *wnext;       /* srv_server.waiters */
    int waited;                  /* the long poll is over: answer now */
    int64_t client;
    int answered;  /* a response has been queued */
    int uploading; /* the body goes to up */
    int reserved;  /* holds a queue slot */
    srv_upload up;
    srv_job job;
    char idem[IDEM_MAX + 1];
    uint8_t param_id[32];
    uint8_t key_bin[CKKS_KEY_ID_BYTES];
    uint64_t discarded; /* body bytes read after a refusal */
} request;

/* ---- responses ------------------------------------------------------------------------------ */
static enum MHD_Result send_text(struct MHD_Connection *c, unsigned status, char *body,
                                 const char *retry_after)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(body ? strlen(body) : 0, body,
                                                                MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    if (status == 401)
        MHD_add_response_header(resp, "WWW-Authenticate", "Bearer realm=\"ppnn\"");
    if (retry_after)
        MHD_add_response_header(resp, "Retry-After", retry_after);
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned status, cJSON *o)
{
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return send_text(c, status, txt, NULL);
}

static enum MHD_Result send_error(request *r, struct MHD_Connection *c, unsigned status,
                                  const char *msg)
{
    r->answered = 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    return send_json(c, status, o);
}

/* ---- request handlers ----------------------------------------------------------------------- */
static void release_slot(server *sv, request *r)
{
    if (!r->reserved)
        return;
    pthread_mutex_lock(&sv->mu);
    sv->uploading--;
    pthread_mutex_unlock(&sv->mu);
    r->reserved = 0;
}

static int valid_idem(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > IDEM_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* Declared Content-Length over the limit: refuse before a byte of the body is read. */
static int declared_too_large(struct MHD_Connection *c, uint64_t limit)
{
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    return cl && strtoull(cl, NULL, 10) > limit;
}

static enum MHD_Result begin_job(server *sv, request *r, struct MHD_Connection *c)
{
    const char *model = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "model");
    const char *key = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "key");
    const char *idem = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key");
    char msg[300];
    if (!model || !key)
        return send_error(r, c, 400, "submit needs ?model=NAME&key=KEY_ID");
    const srv_model *m = srv_models_find(sv->models, model);
    if (!m) {
        snprintf(msg, sizeof msg, "no model named '%.64s' (GET /v1/models lists them)", model);
        return send_error(r, c, 404, msg);
    }
    if (!srv_valid_id(key) || !(srv_store_key_get(sv->store, r->client, key, r->param_id) & 1))
        return send_error(r, c, 404, "no such key (register relin.key with POST /v1/keys)");
    int preset = srv_models_preset(sv->models, r->param_id);
    if (preset < 0 || !m->plan[preset]) {
        snprintf(msg, sizeof msg, "model %s does not fit the key's parameters (%s); GET "
                 "/v1/models says which preset it needs", m->name,
                 preset < 0 ? "unknown" : sv->models->preset_names[preset]);
        return send_error(r, c, 422, msg);
    }
    if (idem && !valid_idem(idem))
        return send_error(r, c, 400, "Idempotency-Key: 1..64 characters of A-Z a-z 0-9 - _");
    snprintf(r->idem, sizeof r->idem, "%s", idem ? idem : "");
    char existing[SRV_ID_HEX + 1];
    if (r->idem[0] && srv_store_job_by_idem(sv->store, r->client, r->idem, existing)) {
        /* A retried submission whose first attempt was accepted: the same job, no new upload. */
        r->answered = 1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "job_id", existing);
        return send_json(c, 200, o);
    }
    uint64_t limit = ckks_batch_max_bytes(sv->models->params[preset], m->plan[preset]->n_inputs);
    if (declared_too_large(c, limit)) {
        snprintf(msg, sizeof msg, "upload exceeds the %llu bytes model %s can need at %s",
                 (unsigned long long)limit, m->name, sv->models->preset_names[preset]);
        return send_error(r, c, 413, msg);
    }
    pthread_mutex_lock(&sv->mu);
    size_t queued = srv_store_count(sv->store, "queued") + sv->uploading;
    int full = queued >= sv->cfg->max_queue;
    if (!full)
        sv->uploading++, r->reserved = 1;
    pthread_mutex_unlock(&sv->mu);
    if (full) {
        /* Retry-After: about when a worker will have taken one job off the queue. */
        double mean = srv_pool_mean_seconds(sv->pool);
        size_t w = srv_pool_workers(sv->pool);
        double wait = w ? mean * (double)queued / (double)w : 60;
        char ra[32];
        snprintf(ra, sizeof ra, "%.0f", wait < 1 ? 1 : wait > 3600 ? 3600 : wait);
        r->answered = 1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "error", "the job queue is full; retry later");
        char *txt = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        return send_text(c, 429, txt, ra);
    }
    memset(&r->job, 0, sizeof r->job);
    srv_random_id(r->job.id);
    r->job.client = r->client;
    snprintf(r->job.model, sizeof r->job.model, "%s", m->name);
    memcpy(r->job.key_id, key, SRV_ID_HEX + 1);
    if (srv_upload_open(&r->up, sv->cfg->state_dir, limit, CKKS_KIND_BATCH, "upload"))
        return send_error(r, c, 507, ppnn_last_error());
    r->up.param_id = r->param_id;
    /* Every ciphertext's digest is checked as the upload passes: one chunk per model input. */
    ppnn_file_check_chunked(&r->up.check, CKKS_KIND_BATCH, CKKS_BATCH_FILE_VERSION,
                            m->plan[preset]->n_inputs, CKKS_CHUNK_NOUN);
    /* The key id hex was validated (srv_valid_id) and registered: it decodes to 16 bytes. */
    sodium_hex2bin(r->key_bin, sizeof r->key_bin, key, SRV_ID_HEX, NULL, NULL, NULL);
    r->up.key_id = r->key_bin;
    r->up.key_id_off = ckks_batch_key_id_offset(sv->models->params[preset]);
    r->uploading = 1;
    return MHD_YES;
}

static enum MHD_Result finish_job(server *sv, request *r, struct MHD_Connection *c)
{
    char path[1200], existing[SRV_ID_HEX + 1];
    srv_job_path(path, sizeof path, sv->cfg->state_dir, r->job.id, "in");
    r->uploading = 0;
    if (srv_upload_commit(&r->up, path)) {
        release_slot(sv, r);
        return send_error(r, c, (unsigned)r->up.status, r->up.error);
    }
    /* The job row carries what the upload verified (the worker's trust, srv_upload_trusted). */
    snprintf(r->job.in_check, sizeof r->job.in_check, "%s", r->up.record);
    ppnn_status st = srv_store_job_add(sv->store, &r->job, r->idem, existing);
    release_slot(sv, r);
    if (st) {
        unlink(path);
        return send_error(r, c, 500, ppnn_last_error());
    }
    unsigned status = 202;
    if (existing[0]) { /* the same Idempotency-Key was accepted before: that job */
        unlink(path);
        memcpy(r->job.id, existing, sizeof existing);
        status = 200;
    }
    srv_pool_wake(sv->pool);
    if (sv->cfg->log) {
        fprintf(sv->cfg->log, "serve: job %s accepted (%s)\n", r->job.id, r->job.model);
        fflush(sv->cfg->log);
    }
    r->answered = 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "job_id", r->job.id);
    cJSON_AddStringToObject(o, "state", "queued");
    return send_json(c, status, o);
}

static enum MHD_Result begin_key(server *sv, request *r, struct MHD_Connection *c)
{
    if (declared_too_large(c, MAX_KEY_UPLOAD))
        return send_error(r, c, 413, "key upload too large");
    if (srv_upload_open(&r->up, sv->cfg->state_dir, MAX_KEY_UPLOAD, CKKS_KIND_RELIN " "
                        CKKS_KIND_GALOIS, "key upload"))
        return send_error(r, c, 507, ppnn_last_error());
    r->uploading = 1;
    return MHD_YES;
}

static enum MHD_Result finish_key(server *sv, request *r, struct MHD_Connection *c)
{
    char tmp[1200], path[1200], hex[SRV_ID_HEX + 1], rnd[SRV_ID_HEX + 1];
    srv_random_id(rnd);
    snprintf(tmp, sizeof tmp, "%s/tmp/%s.key", sv->cfg->state_dir, rnd);
    r->uploading = 0;
    if (srv_upload_commit(&r->up, tmp))
        return send_error(r, c, (unsigned)r->up.status, r->up.error);
    int relin = !strcmp(r->up.check.kind, CKKS_KIND_RELIN); /* checked: the header's kind */
    /* Parse the whole key (every field validated, every coefficient < q): a key the workers
     * could not use is refused now rather than failing each job. */
    ckks_params *params = NULL;
    uint8_t key_id[CKKS_KEY_ID_BYTES];
    ppnn_status st;
    if (relin) {
        ckks_relin_key rk;
        memset(&rk, 0, sizeof rk);
        st = ckks_relin_key_load(&rk, &params, key_id, tmp);
        ckks_relin_key_free(&rk);
    } else {
        ckks_galois_keys gk;
        memset(&gk, 0, sizeof gk);
        st = ckks_galois_keys_load(&gk, &params, key_id, tmp);
        ckks_galois_keys_free(&gk);
    }
    int preset = st ? -1 : srv_models_preset(sv->models, params->id);
    uint8_t pid[32];
    if (params)
        memcpy(pid, params->id, 32);
    ckks_params_free(params);
    if (st || preset < 0) {
        unlink(tmp);
        return send_error(r, c, st ? 400 : 422, st ? ppnn_last_error()
                                   : "the key's CKKS parameters are not a preset this server "
                                     "serves (n13, n14)");
    }
    sodium_bin2hex(hex, sizeof hex, key_id, sizeof key_id);
    const char *kind = relin ? "relin" : "galois";
    srv_key_path(path, sizeof path, sv->cfg->state_dir, r->client, hex, kind);
    if (rename(tmp, path) != 0 || srv_store_key_put(sv->store, r->client, hex, kind, pid)) {
        unlink(tmp);
        return send_error(r, c, 500, "cannot store the key");
    }
    r->answered = 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "key_id", hex);
    cJSON_AddStringToObject(o, "kind", kind);
    cJSON_AddStringToObject(o, "preset", sv->models->preset_names[preset]);
    return send_json(c, 201, o);
}

int srv_parse_wait(double *seconds, const char *v)
{
    char *end;
    *seconds = 0;
    if (!v || !*v || strlen(v) > 16)
        return 1;
    double w = strtod(v, &end);
    if (*end || !(w >= 0 && w <= SRV_WAIT_MAX)) /* NaN fails too */
        return 1;
    *seconds = w;
    return 0;
}

/* GET /v1/jobs/{id}[?wait=S]: with a wait, a job still queued or running suspends the
 * connection (libmicrohttpd keeps serving the others) until it finishes or S seconds pass; the
 * answer is then the status as usual. The state is read and the waiter registered under
 * wait_mu, and a worker announces a finish (srv_http_job_finished) under it after committing
 * it, so a finish between the two cannot be missed. */
static enum MHD_Result job_status(server *sv, request *r, struct MHD_Connection *c)
{
    srv_job j;
    double wait = 0;
    if (!r->waited) {
        const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "wait");
        if (v && srv_parse_wait(&wait, v)) {
            char msg[96];
            snprintf(msg, sizeof msg, "wait=SECONDS: a number from 0 to %d", SRV_WAIT_MAX);
            return send_error(r, c, 400, msg);
        }
    }
    pthread_mutex_lock(&sv->wait_mu);
    int missing = srv_store_job_get(sv->store, &j, r->client, r->route.id);
    if (!missing && wait > 0 && !sv->stopping &&
        (!strcmp(j.state, "queued") || !strcmp(j.state, "running"))) {
        r->waited = 1;
        r->conn = c;
        r->deadline = ppnn_now() + wait;
        r->wnext = sv->waiters;
        sv->waiters = r;
        MHD_suspend_connection(c);
        pthread_mutex_unlock(&sv->wait_mu);
        return MHD_YES;
    }
    pthread_mutex_unlock(&sv->wait_mu);
    if (missing)
        return send_error(r, c, 404, "no such job");
    r->answered = 1;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "job_id", j.id);
    cJSON_AddStringToObject(o, "model", j.model);
    cJSON_AddStringToObject(o, "key_id", j.key_id);
    srv_progress p;
    int running = !strcmp(j.state, "running") && !srv_pool_progress(sv->pool, j.id, &p);
    cJSON_AddStringToObject(o, "state", j.state);
    double mean = srv_pool_mean_seconds(sv->pool), eta = -1, progress = 0;
    if (running) {
        cJSON_AddNumberToObject(o, "step", (double)p.step);
        cJSON_AddNumberToObject(o, "steps", (double)p.steps);
        cJSON_AddNumberToObject(o, "layer", (double)p.layer);
        cJSON_AddStringToObject(o, "step_name", p.step_name);
        progress = p.fraction;
        double el = srv_wall_now() - p.started;
        eta = progress > 0 ? el * (1 - progress) / progress : mean > 0 ? mean - el : -1;
    } else if (!strcmp(j.state, "queued")) {
        size_t pos = srv_store_queue_position(sv->store, j.seq);
        size_t w = srv_pool_workers(sv->pool);
        cJSON_AddNumberToObject(o, "queue_position", (double)pos);
        eta = mean > 0 && w ? mean * (double)(pos / w + 1) : -1;
    } else if (!strcmp(j.state, "done")) {
        progress = 1, eta = 0;
    } else if (!strcmp(j.state, "failed")) {
        cJSON_AddStringToObject(o, "error", j.error);
    }
    cJSON_AddNumberToObject(o, "progress", progress);
    cJSON_AddNumberToObject(o, "eta_seconds", eta < 0 ? -1 : eta);
    /* When it was accepted, started (last attempt) and finished: seconds since the epoch. */
    const struct { const char *name; double t; } times[] = {
        {"accepted_at", j.created}, {"started_at", j.started}, {"finished_at", j.finished}};
    for (size_t i = 0; i < sizeof times / sizeof times[0]; i++)
        if (times[i].t > 0)
            cJSON_AddNumberToObject(o, times[i].name, times[i].t);
    return send_json(c, 200, o);
}

static enum MHD_Result job_result(server *sv, request *r, struct MHD_Connection *c)
{
    srv_job j;
    if (srv_store_job_get(sv->store, &j, r->client, r->route.id))
        return send_error(r, c, 404, "no such job");
    if (strcmp(j.state, "done") != 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "job is %s%s%s", j.state, j.error[0] ? ": " : "", j.error);
        return send_error(r, c, 409, msg);
    }
    char path[1200];
    srv_job_path(path, sizeof path, sv->cfg->state_dir, j.id, "out");
    int fd = open(path, O_RDONLY);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        if (fd >= 0)
            close(fd);
        return send_error(r, c, 500, "result file missing");
    }
    struct MHD_Response *resp = MHD_create_response_from_fd((size_t)sb.st_size, fd);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/octet-stream");
    r->answered = 1;
    enum MHD_Result rc = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    /* The TTL runs from the first download (the janitor deletes the job after it). */
    if (srv_store_job_set(sv->store, j.id, "fetched", srv_wall_now()) && sv->cfg->log)
        fprintf(sv->cfg->log, "serve: %s\n", ppnn_last_error());
    return rc;
}

static enum MHD_Result key_status(server *sv, request *r, struct MHD_Connection *c)
{
    int bits = srv_store_key_get(sv->store, r->client, r->route.id, NULL);
    if (!bits)
        return send_error(r, c, 404, "no such key");
    r->answered = 1;
    cJSON *o = cJSON_CreateObject(), *kinds = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "key_id", r->route.id);
    if (bits & 1)
        cJSON_AddItemToArray(kinds, cJSON_CreateString("relin"));
    if (bits & 2)
        cJSON_AddItemToArray(kinds, cJSON_CreateString("galois"));
    cJSON_AddItemToObject(o, "kinds", kinds);
    return send_json(c, 200, o);
}

/* First call of a request (headers complete, no body yet). */
static enum MHD_Result begin(server *sv, request *r, struct MHD_Connection *c)
{
    switch (r->route.kind) {
    case SRV_R_NONE: return send_error(r, c, 404, "no such resource (the API is under /v1/)");
    case SRV_R_BAD_METHOD: return send_error(r, c, 405, "method not allowed here");
    case SRV_R_HEALTH: {
        r->answered = 1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", "ok");
        return send_json(c, 200, o);
    }
    default: break;
    }
    const char *tok = srv_bearer(MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"));
    if (tok && strlen(tok) <= 2 * SRV_TOKEN_CHARS) {
        uint8_t h[32];
        srv_token_hash(h, sv->token_key, tok, strlen(tok));
        r->client = srv_store_client_by_hash(sv->store, h);
    }
    if (!r->client)
        return send_error(r, c, 401, "missing or unknown bearer token");
    switch (r->route.kind) {
    case SRV_R_MODELS: r->answered = 1; return send_text(c, 200, srv_models_json(sv->models), NULL);
    case SRV_R_JOB_LIST:
        r->answered = 1;
        return send_text(c, 200, srv_store_jobs_json(sv->store, r->client), NULL);
    case SRV_R_KEY_GET: return key_status(sv, r, c);
    case SRV_R_KEY_PUT: return begin_key(sv, r, c);
    case SRV_R_JOB_SUBMIT: return begin_job(sv, r, c);
    case SRV_R_JOB_STATUS: return job_status(sv, r, c);
    case SRV_R_JOB_RESULT: return job_result(sv, r, c);
    case SRV_R_JOB_DELETE:
        if (srv_store_job_delete(sv->store, r->client, r->route.id))
            return send_error(r, c, 404, "no such job");
        r->answered = 1;
        return send_text(c, 204, NULL, NULL);
    default: return send_error(r, c, 500, "unrouted request");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *data, size_t *size, void **con_cls)
{
    (void)version;
    server *sv = cls;
    request *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->up.fd = -1;
        *con_cls = r;
        srv_route_parse(&r->route, method, url);
        return begin(sv, r, c);
    }
    if (*size) {
        if (r->uploading) {
            srv_upload_feed(&r->up, (const uint8_t *)data, *size);
            /* libmicrohttpd answers only once the body has been read: a refused body is
             * discarded (not stored), and a client that keeps sending far beyond what could
             * be valid is disconnected. */
            if (srv_upload_refused(&r->up) &&
                (r->discarded += *size) > r->up.limit + DISCARD_MAX)
                return MHD_NO;
        }
        *size = 0;
        return MHD_YES;
    }
    if (r->answered)
        return MHD_YES;
    if (r->waited && r->route.kind == SRV_R_JOB_STATUS) /* resumed after its long poll */
        return job_status(sv, r, c);
    if (r->uploading)
        return r->route.kind == SRV_R_KEY_PUT ? finish_key(sv, r, c) : finish_job(sv, r, c);
    return send_error(r, c, 500, "request without a response");
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode why)
{
    (void)c, (void)why;
    server *sv = cls;
    request *r = *con_cls;
    if (!r)
        return;
    if (r->uploading) /* the client went away mid-upload: nothing was accepted */
        srv_upload_abort(&r->up);
    release_slot(sv, r);
    free(r);
    *con_cls = NULL;
}

static int is_loopback(const struct sockaddr_in *a)
{
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

/* Reads a PEM file whole (certificates and keys are a few KB). */
static char *read_pem(const char *path)
{
    uint8_t *buf;
    size_t len;
    if (ppnn_read_file(&buf, &len, path, (size_t)1 << 20))
        return NULL;
    char *s = realloc(buf, len + 1);
    if (!s) {
        free(buf);
        return NULL;
    }
    s[len] = 0;
    return s;
}

ppnn_status srv_http_start(struct MHD_Daemon **out, srv_server *sv, uint16_t *port)
{
    const srv_config *cfg = sv->cfg;
    *out = NULL;
    char host[64];
    const char *colon = strrchr(cfg->listen, ':');
    size_t hl = colon ? (size_t)(colon - cfg->listen) : 0;
    char *end;
    unsigned long p = colon ? strtoul(colon + 1, &end, 10) : 0;
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    if (!colon || hl == 0 || hl >= sizeof host || !colon[1] || *end || p > 65535)
        return ppnn_fail(PPNN_ERR_PARAM, "--listen '%s': expected IPV4ADDR:PORT", cfg->listen);
    memcpy(host, cfg->listen, hl);
    host[hl] = 0;
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return ppnn_fail(PPNN_ERR_PARAM, "--listen '%s': '%s' is not an IPv4 address",
                         cfg->listen, host);
    addr.sin_port = htons((uint16_t)p);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_AUTO |
                     MHD_ALLOW_SUSPEND_RESUME;
    char *cert = NULL, *key = NULL;
    if (cfg->plain_http) {
        if (!is_loopback(&addr))
            return ppnn_fail(PPNN_ERR_PARAM, "plain HTTP is only allowed on a loopback address "
                             "(127.0.0.0/8); use --tls-cert/--tls-key for %s", host);
    } else {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
            return ppnn_fail(PPNN_ERR_UNSUPPORTED, "this libmicrohttpd was built without TLS");
        if (!cfg->tls_cert || !cfg->tls_key)
            return ppnn_fail(PPNN_ERR_PARAM, "TLS needs --tls-cert and --tls-key (plain HTTP "
                             "only on loopback with --plain-http)");
        if (!(cert = read_pem(cfg->tls_cert)) || !(key = read_pem(cfg->tls_key))) {
            free(cert);
            return ppnn_fail(PPNN_ERR_IO, "cannot read the TLS certificate or key");
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem tls[] = {
        {cert ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, 0, cert},
        {cert ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, key},
        {MHD_OPTION_END, 0, NULL}};
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, sv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv,
        /* Slow or stalled clients are dropped after a minute without a byte. */
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
        /* A 256 KB buffer per connection (default 32 KB): uploads arrive in bigger pieces, so
         * fewer handler calls and write()s per batch; 256 connections bound it to 64 MB. */
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)256 * 1024,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)2,
        MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (key)
        sodium_memzero(key, strlen(key));
    free(cert);
    free(key);
    if (!d)
        return ppnn_fail(PPNN_ERR_IO, "cannot listen on %s (address in use, or bad TLS "
                         "certificate/key)", cfg->listen);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : (uint16_t)p;
    *out = d;
    return PPNN_OK;
}

/* Resumes the waiters that match (under wait_mu). */
static void resume_where(server *sv, const char *id, double now, int all)
{
    request **pp = &sv->waiters;
    while (*pp) {
        request *r = *pp;
        if (all || (id && !strcmp(r->route.id, id)) || (!id && now >= r->deadline)) {
            *pp = r->wnext;
            r->wnext = NULL;
            MHD_resume_connection(r->conn);
        } else
            pp = &r->wnext;
    }
}

void srv_http_job_finished(void *ctx, const char *id)
{
    server *sv = ctx;
    pthread_mutex_lock(&sv->wait_mu);
    resume_where(sv, id, 0, 0);
    pthread_mutex_unlock(&sv->wait_mu);
}

void srv_http_tick(srv_server *sv, int stop)
{
    pthread_mutex_lock(&sv->wait_mu);
    if (stop)
        sv->stopping = 1;
    resume_where(sv, NULL, ppnn_now(), stop);
    pthread_mutex_unlock(&sv->wait_mu);
}

void srv_http_stop(struct MHD_Daemon *d)
{
    if (d)
        MHD_stop_daemon(d);
}
