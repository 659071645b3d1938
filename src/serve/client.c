/* The client (libcurl): keys once by key id, the upload, status polling, the download.
 * Every request is retried with exponential back-off (0.5 s doubling to 16 s, or the server's
 * Retry-After) on 429, 5xx and lost connections. A job submission carries an Idempotency-Key,
 * so a retry after a connection lost between "accepted" and its answer gets the same job back
 * instead of a duplicate. TLS peers are verified (CA bundle from --cacert or the system). */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "serve_inner.h"

#define BODY_MAX 16384 /* error and status bodies are small JSON documents */

typedef struct reply {
    long status;
    char body[BODY_MAX + 1];
    size_t len;
    ppnn_wfile *file; /* when set, a 200 body goes here */
    int write_failed;
    double retry_after;
} reply;

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
    reply *r = ctx;
    size_t len = sz * n;
    if (r->file && r->status == 200) {
        if (ppnn_wfile_write(r->file, p, len)) {
            r->write_failed = 1;
            return 0;
        }
        return len;
    }
    size_t take = len < BODY_MAX - r->len ? len : BODY_MAX - r->len;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = 0;
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ctx)
{
    reply *r = ctx;
    size_t len = sz * n;
    /* The status line of the final response comes first: the body callback needs it. */
    if (len > 9 && !strncmp(p, "HTTP/", 5)) {
        const char *sp = memchr(p, ' ', len);
        if (sp)
            r->status = strtol(sp + 1, NULL, 10);
    }
    return len;
}

typedef struct call {
    const char *method, *path;
    const char *upload;      /* file to send as the body */
    ppnn_wfile *download;    /* 200 body to this file */
    const char *header;      /* one extra request header */
} call;

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static ppnn_status perform(const srv_client_opts *o, const call *k, reply *r)
{
    double backoff = 0.5;
    char url[2048], auth[256];
    snprintf(url, sizeof url, "%s%s", o->server, k->path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", o->token);
    size_t tries = o->retries ? o->retries : 1;
    for (size_t attempt = 0;; attempt++) {
        CURL *h = curl_easy_init();
        if (!h)
            return ppnn_fail(PPNN_ERR_NOMEM, "libcurl failed to initialise");
        struct curl_slist *hdr = curl_slist_append(NULL, auth);
        if (k->header)
            hdr = curl_slist_append(hdr, k->header);
        memset(r, 0, sizeof *r);
        r->file = k->download;
        FILE *fp = NULL;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, k->method);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
        /* A stalled transfer (under 1 byte/s for 60 s) counts as a lost connection. */
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        if (o->cacert)
            curl_easy_setopt(h, CURLOPT_CAINFO, o->cacert);
        if (k->upload) {
            struct stat sb;
            fp = fopen(k->upload, "rb");
            if (!fp || fstat(fileno(fp), &sb) != 0) {
                if (fp)
                    fclose(fp);
                curl_slist_free_all(hdr);
                curl_easy_cleanup(h);
                return ppnn_fail(PPNN_ERR_IO, "cannot read %s", k->upload);
            }
            hdr = curl_slist_append(hdr, "Content-Type: application/octet-stream");
            curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(h, CURLOPT_READDATA, fp);
            curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)sb.st_size);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        CURLcode rc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_off_t ra = -1;
        curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra);
        if (fp)
            fclose(fp);
        curl_slist_free_all(hdr);
        curl_easy_cleanup(h);
        if (r->write_failed)
            return PPNN_ERR_IO;
        int retry = rc != CURLE_OK || status == 429 || status >= 500;
        /* A certificate that does not verify is not a transient failure. */
        if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
            rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_URL_MALFORMAT)
            return ppnn_fail(PPNN_ERR_IO, "%s: %s", o->server, curl_easy_strerror(rc));
        if (!retry) {
            r->status = status;
            return PPNN_OK;
        }
        if (attempt + 1 >= tries)
            return ppnn_fail(PPNN_ERR_IO, "%s %s: %s after %zu attempts", k->method, url,
                             rc != CURLE_OK ? curl_easy_strerror(rc) : "server busy or failing",
                             tries);
        double wait = ra > 0 ? (double)ra : backoff;
        backoff = backoff * 2 > 16 ? 16 : backoff * 2;
        if (o->on_event) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s %s: %s; retrying in %.1f s", k->method, k->path,
                     rc != CURLE_OK ? curl_easy_strerror(rc) : status == 429 ? "queue full"
                                                                              : "server error",
                     wait);
            o->on_event(o->ctx, msg);
        }
        if (k->download) { /* start the file again */
            if (fflush(k->download->fp) != 0 || ftruncate(fileno(k->download->fp), 0) != 0 ||
                fseek(k->download->fp, 0, SEEK_SET) != 0)
                return ppnn_fail(PPNN_ERR_IO, "cannot rewrite the download");
        }
        sleep_s(wait);
    }
}

/* The server's "error" string for a refusal. */
static ppnn_status refused(const call *k, const reply *r)
{
    cJSON *j = cJSON_Parse(r->body);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    ppnn_status st = ppnn_fail(PPNN_ERR_PARAM, "server refused %s %s (HTTP %ld): %s", k->method,
                               k->path, r->status,
                               cJSON_IsString(e) ? e->valuestring : "no reason given");
    cJSON_Delete(j);
    return st;
}

/* Parses a status document into st (fuzzed through srv_parse_status). */
int srv_parse_status(srv_status *st, const char *body)
{
    memset(st, 0, sizeof *st);
    st->eta = -1;
    cJSON *j = cJSON_Parse(body);
    const cJSON *state = cJSON_GetObjectItemCaseSensitive(j, "state");
    if (!cJSON_IsString(state) || strlen(state->valuestring) >= sizeof st->state) {
        cJSON_Delete(j);
        return 1;
    }
    snprintf(st->state, sizeof st->state, "%s", state->valuestring);
    const cJSON *v;
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(j, "error")))
        snprintf(st->error, sizeof st->error, "%s", v->valuestring);
    if (cJSON_IsString(v = cJSON_GetObjectItemCaseSensitive(j, "step_name")))
        snprintf(st->step_name, sizeof st->step_name, "%s", v->valuestring);
    struct { const char *name; size_t *dst; } ints[] = {
        {"step", &st->step}, {"steps", &st->steps}, {"layer", &st->layer},
        {"queue_position", &st->queue_position}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, ints[i].name)) &&
            v->valuedouble >= 0 && v->valuedouble < 1e9)
            *ints[i].dst = (size_t)v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "progress")) &&
        v->valuedouble >= 0 && v->valuedouble <= 1)
        st->progress = v->valuedouble;
    if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(j, "eta_seconds")) &&
        v->valuedouble >= 0 && v->valuedouble < 1e9)
        st->eta = v->valuedouble;
    cJSON_Delete(j);
    return 0;
}

/* Copies the string field `name` of a JSON body (an id) into out; 0 on success. */
static int json_id(char out[SRV_ID_HEX + 1], const char *body, const char *name)
{
    cJSON *j = cJSON_Parse(body);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    int ok = cJSON_IsString(v) && srv_valid_id(v->valuestring);
    if (ok)
        memcpy(out, v->valuestring, SRV_ID_HEX + 1);
    cJSON_Delete(j);
    return !ok;
}

static void event(const srv_client_opts *o, const char *fmt, const char *a)
{
    if (o->on_event) {
        char msg[1400];
        snprintf(msg, sizeof msg, fmt, a);
        o->on_event(o->ctx, msg);
    }
}

static ppnn_status register_keys(const srv_client_opts *o, const char *keydir, char hex[33])
{
    char relin[1200], galois[1200], path[128];
    snprintf(relin, sizeof relin, "%s/relin.key", keydir);
    snprintf(galois, sizeof galois, "%s/galois.key", keydir);
    ckks_relin_key rk;
    memset(&rk, 0, sizeof rk);
    ckks_params *params = NULL;
    uint8_t id[CKKS_KEY_ID_BYTES];
    ppnn_status st = ckks_relin_key_load(&rk, &params, id, relin);
    ckks_relin_key_free(&rk);
    ckks_params_free(params);
    if (st)
        return st;
    sodium_bin2hex(hex, SRV_ID_HEX + 1, id, sizeof id);
    snprintf(path, sizeof path, "/v1/keys/%s", hex);
    reply *r = malloc(sizeof *r);
    if (!r)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    call k = {"GET", path, NULL, NULL, NULL};
    if ((st = perform(o, &k, r)))
        goto done;
    int have_galois = r->status == 200 && strstr(r->body, "\"galois\"");
    if (r->status != 200 && r->status != 404) {
        st = refused(&k, r);
        goto done;
    }
    call put = {"POST", "/v1/keys", relin, NULL, NULL};
    if (r->status == 404) {
        event(o, "registering %s with the server", relin);
        if ((st = perform(o, &put, r)))
            goto done;
        if (r->status != 201) {
            st = refused(&put, r);
            goto done;
        }
    }
    if (!have_galois && access(galois, R_OK) == 0) {
        put.upload = galois;
        event(o, "registering %s with the server", galois);
        if ((st = perform(o, &put, r)))
            goto done;
        if (r->status != 201)
            st = refused(&put, r);
    }
done:
    free(r);
    return st;
}

/* The downloaded result must be logits made under our keys. */
static ppnn_status check_result(const char *path, const char *hex)
{
    ckks_ciphertext *cts = NULL;
    size_t count = 0;
    ckks_batch_info info;
    ckks_params *params = NULL;
    ppnn_status st = ckks_batch_load(&cts, &count, &info, &params, path);
    if (!st) {
        char got[SRV_ID_HEX + 1];
        sodium_bin2hex(got, sizeof got, info.key_id, sizeof info.key_id);
        if (info.role != CKKS_BATCH_LOGITS || strcmp(got, hex) != 0)
            st = ppnn_fail(PPNN_ERR_FORMAT, "the server's result is not a logits batch under "
                           "these keys");
    }
    for (size_t i = 0; i < count; i++)
        ckks_ct_free(&cts[i]);
    free(cts);
    ckks_params_free(params);
    return st;
}

ppnn_status srv_submit(char job_id[33], const srv_client_opts *o, const char *keydir,
                       const char *model, const char *in, const char *out)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libcurl failed to initialise");
    char hex[SRV_ID_HEX + 1], path[256], header[128];
    ppnn_status st = register_keys(o, keydir, hex);
    reply *r = malloc(sizeof *r);
    if (st || !r) {
        free(r);
        return st ? st : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    if (!job_id[0]) {
        char idem[SRV_ID_HEX + 1], q[256];
        srv_random_id(idem);
        snprintf(header, sizeof header, "Idempotency-Key: %s", idem);
        /* model names are [A-Za-z0-9_.-]: nothing to escape */
        if (!srv_valid_name(model)) {
            st = ppnn_fail(PPNN_ERR_PARAM, "'%s' is not a model name", model);
            goto done;
        }
        snprintf(q, sizeof q, "/v1/jobs?model=%s&key=%s", model, hex);
        call k = {"POST", q, in, NULL, header};
        if ((st = perform(o, &k, r)))
            goto done;
        if ((r->status != 202 && r->status != 200) || json_id(job_id, r->body, "job_id")) {
            st = refused(&k, r);
            goto done;
        }
        event(o, "job %s accepted (resume with --job it)", job_id);
    }
    /* Long poll: the server answers as soon as the job finishes, or after `wait` seconds with
     * the progress so far (the bar's refresh). A server that ignores wait answers at once: the
     * client then sleeps out the interval itself. */
    double poll = o->poll > 0 ? o->poll : 1;
    snprintf(path, sizeof path, "/v1/jobs/%s?wait=%.3g", job_id,
             poll < SRV_WAIT_MAX ? poll : SRV_WAIT_MAX);
    for (;;) {
        call k = {"GET", path, NULL, NULL, NULL};
        double t0 = ppnn_now();
        if ((st = perform(o, &k, r)))
            goto done;
        srv_status s;
        if (r->status != 200 || srv_parse_status(&s, r->body)) {
            st = refused(&k, r);
            goto done;
        }
        if (o->on_status)
            o->on_status(o->ctx, &s);
        if (!strcmp(s.state, "done"))
            break;
        if (!strcmp(s.state, "failed")) {
            st = ppnn_fail(PPNN_ERR_PARAM, "job %s failed on the server: %s", job_id, s.error);
            goto done;
        }
        double spent = ppnn_now() - t0;
        if (spent < poll / 2)
            sleep_s(poll - spent);
    }
    snprintf(path, sizeof path, "/v1/jobs/%s/result", job_id);
    ppnn_wfile w;
    if ((st = ppnn_wfile_open(&w, out, 0644)))
        goto done;
    call k = {"GET", path, NULL, &w, NULL};
    if ((st = perform(o, &k, r)) || (r->status != 200 && (st = refused(&k, r))) ||
        (fflush(w.fp) != 0 && (st = ppnn_fail(PPNN_ERR_IO, "cannot write %s", out))) ||
        (st = check_result(w.tmp_path, hex))) {
        ppnn_wfile_abort(&w);
        goto done;
    }
    st = ppnn_wfile_commit(&w);
done:
    free(r);
    curl_global_cleanup();
    return st;
}
