/* The job and key store: SQLite in WAL mode under the state directory.
 *
 * Durability: synchronous=FULL, so a job the server answered 202 for survives kill -9 and power
 * loss alike (the upload file was fsynced and renamed before the row was committed). Jobs are
 * state machines queued -> running -> done | failed, plus deleted (hidden from the client until
 * the janitor removes the row and files). One connection, one mutex: every function here is
 * one short statement or transaction, so contention is negligible next to a job's minutes. */
#include <cjson/cJSON.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "serve_inner.h"

struct srv_store {
    sqlite3 *db;
    pthread_mutex_t mu;
};

static const char *schema =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS clients(id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL,"
    "  token_hash BLOB UNIQUE, created REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS keys(client INTEGER NOT NULL, key_id TEXT NOT NULL,"
    "  kind TEXT NOT NULL, param_id BLOB NOT NULL, created REAL NOT NULL,"
    "  PRIMARY KEY(client, key_id, kind));"
    "CREATE TABLE IF NOT EXISTS jobs(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  id TEXT UNIQUE NOT NULL, client INTEGER NOT NULL, idem TEXT, model TEXT NOT NULL,"
    "  key_id TEXT NOT NULL, state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '',"
    "  created REAL NOT NULL, started REAL NOT NULL DEFAULT 0, finished REAL NOT NULL DEFAULT 0,"
    "  fetched REAL NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0,"
    "  in_check TEXT NOT NULL DEFAULT '');"
    "CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(client, idem) WHERE idem <> '';"
    "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, seq);";

double srv_wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static ppnn_status db_fail(srv_store *s, const char *what)
{
    return ppnn_fail(PPNN_ERR_IO, "job store: %s: %s", what, sqlite3_errmsg(s->db));
}

ppnn_status srv_store_open(srv_store **out, const char *state_dir)
{
    *out = NULL;
    srv_store *s = calloc(1, sizeof *s);
    if (!s)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    char path[1024];
    snprintf(path, sizeof path, "%s/jobs.sqlite", state_dir);
    if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
                        SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
        ppnn_status st = ppnn_fail(PPNN_ERR_IO, "cannot open the job store %s: %s", path,
                                   s->db ? sqlite3_errmsg(s->db) : "out of memory");
        sqlite3_close(s->db);
        free(s);
        return st;
    }
    /* `ppnn serve token add` may write while the server runs: wait for the lock, briefly. */
    sqlite3_busy_timeout(s->db, 5000);
    char *err = NULL;
    if (sqlite3_exec(s->db, schema, NULL, NULL, &err) != SQLITE_OK) {
        ppnn_status st = ppnn_fail(PPNN_ERR_IO, "job store %s: %s", path, err ? err : "?");
        sqlite3_free(err);
        sqlite3_close(s->db);
        free(s);
        return st;
    }
    /* Stores made before the upload record existed get the column (its error when it exists
     * already is expected and ignored). */
    sqlite3_exec(s->db, "ALTER TABLE jobs ADD COLUMN in_check TEXT NOT NULL DEFAULT ''", NULL,
                 NULL, NULL);
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return PPNN_OK;
}

void srv_store_close(srv_store *s)
{
    if (!s)
        return;
    sqlite3_close(s->db);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* Prepares sql and binds the arguments described by fmt: 'i' int64, 'd' double, 't' text,
 * 'b' 32-byte blob. Returns NULL (and records the error) on failure. */
static sqlite3_stmt *prep(srv_store *s, const char *sql, const char *fmt, ...)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK) {
        (void)db_fail(s, "prepare");
        return NULL;
    }
    va_list ap;
    va_start(ap, fmt);
    for (int i = 0; fmt[i]; i++) {
        int k = i + 1;
        switch (fmt[i]) {
        case 'i': sqlite3_bind_int64(q, k, va_arg(ap, int64_t)); break;
        case 'd': sqlite3_bind_double(q, k, va_arg(ap, double)); break;
        case 't': sqlite3_bind_text(q, k, va_arg(ap, const char *), -1, SQLITE_TRANSIENT); break;
        case 'b': sqlite3_bind_blob(q, k, va_arg(ap, const uint8_t *), 32, SQLITE_TRANSIENT); break;
        default: abort();
        }
    }
    va_end(ap);
    return q;
}

/* Runs a statement that returns no rows. */
static ppnn_status exec_done(srv_store *s, sqlite3_stmt *q, const char *what)
{
    if (!q)
        return PPNN_ERR_IO;
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE ? PPNN_OK : db_fail(s, what);
}

static void copy_text(char *dst, size_t cap, sqlite3_stmt *q, int col)
{
    const unsigned char *t = sqlite3_column_text(q, col);
    snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

int64_t srv_store_client_by_hash(srv_store *s, const uint8_t hash[32])
{
    pthread_mutex_lock(&s->mu);
    int64_t id = 0;
    sqlite3_stmt *q = prep(s, "SELECT id, token_hash FROM clients WHERE token_hash = ?", "b", hash);
    if (q && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 1) == 32 &&
        sodium_memcmp(sqlite3_column_blob(q, 1), hash, 32) == 0)
        id = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return id;
}

ppnn_status srv_store_client_add(srv_store *s, const char *name, const uint8_t hash[32])
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "INSERT INTO clients(name, token_hash, created) VALUES(?, ?, ?)",
                           "tbd", name, hash, srv_wall_now());
    ppnn_status st = PPNN_ERR_IO;
    if (q) {
        int rc = sqlite3_step(q);
        sqlite3_finalize(q);
        st = rc == SQLITE_DONE ? PPNN_OK
             : rc == SQLITE_CONSTRAINT ? ppnn_fail(PPNN_ERR_PARAM, "client '%s' exists already "
                                                   "(revoke it first to issue a new token)", name)
                                       : db_fail(s, "add client");
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

ppnn_status srv_store_client_revoke(srv_store *s, const char *name)
{
    pthread_mutex_lock(&s->mu);
    ppnn_status st = exec_done(s, prep(s, "UPDATE clients SET token_hash = NULL, "
                                          "name = name || '.revoked.' || id WHERE name = ?",
                                       "t", name), "revoke");
    if (!st && sqlite3_changes(s->db) == 0)
        st = ppnn_fail(PPNN_ERR_PARAM, "no client named '%s'", name);
    pthread_mutex_unlock(&s->mu);
    return st;
}

ppnn_status srv_store_client_list(srv_store *s, void (*fn)(void *, const char *, double, size_t),
                                  void *ctx)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT name, created, (SELECT COUNT(*) FROM jobs WHERE "
                              "jobs.client = clients.id AND state <> 'deleted') FROM clients "
                              "WHERE token_hash IS NOT NULL ORDER BY name", "");
    ppnn_status st = q ? PPNN_OK : PPNN_ERR_IO;
    while (q && sqlite3_step(q) == SQLITE_ROW)
        fn(ctx, (const char *)sqlite3_column_text(q, 0), sqlite3_column_double(q, 1),
           (size_t)sqlite3_column_int64(q, 2));
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return st;
}

ppnn_status srv_store_key_put(srv_store *s, int64_t client, const char *key_id, const char *kind,
                              const uint8_t param_id[32])
{
    pthread_mutex_lock(&s->mu);
    ppnn_status st = exec_done(s, prep(s, "INSERT OR REPLACE INTO keys(client, key_id, kind, "
                                          "param_id, created) VALUES(?, ?, ?, ?, ?)", "ittbd",
                                       client, key_id, kind, param_id, srv_wall_now()),
                               "register key");
    pthread_mutex_unlock(&s->mu);
    return st;
}

int srv_store_key_get(srv_store *s, int64_t client, const char *key_id, uint8_t param_id[32])
{
    pthread_mutex_lock(&s->mu);
    int bits = 0;
    sqlite3_stmt *q = prep(s, "SELECT kind, param_id FROM keys WHERE client = ? AND key_id = ?",
                           "it", client, key_id);
    while (q && sqlite3_step(q) == SQLITE_ROW) {
        const char *kind = (const char *)sqlite3_column_text(q, 0);
        bits |= kind && !strcmp(kind, "relin") ? 1 : 2;
        if (param_id && sqlite3_column_bytes(q, 1) == 32)
            memcpy(param_id, sqlite3_column_blob(q, 1), 32);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return bits;
}

/* The job of (client, idem), caller holding the mutex; 1 if found. */
static int find_idem(srv_store *s, int64_t client, const char *idem, char out[SRV_ID_HEX + 1])
{
    int found = 0;
    sqlite3_stmt *q = prep(s, "SELECT id FROM jobs WHERE client = ? AND idem = ?", "it", client,
                           idem);
    if (q && sqlite3_step(q) == SQLITE_ROW) {
        copy_text(out, SRV_ID_HEX + 1, q, 0);
        found = 1;
    }
    sqlite3_finalize(q);
    return found;
}

int srv_store_job_by_idem(srv_store *s, int64_t client, const char *idem,
                          char out[SRV_ID_HEX + 1])
{
    pthread_mutex_lock(&s->mu);
    int found = find_idem(s, client, idem, out);
    pthread_mutex_unlock(&s->mu);
    return found;
}

ppnn_status srv_store_job_add(srv_store *s, const srv_job *j, const char *idem,
                              char existing[SRV_ID_HEX + 1])
{
    existing[0] = 0;
    pthread_mutex_lock(&s->mu);
    ppnn_status st = PPNN_OK;
    if (!idem[0] || !find_idem(s, j->client, idem, existing))
        st = exec_done(s, prep(s, "INSERT INTO jobs(id, client, idem, model, key_id, state, "
                                  "created, in_check) VALUES(?, ?, ?, ?, ?, 'queued', ?, ?)",
                               "titttdt", j->id, j->client, idem, j->model, j->key_id,
                               srv_wall_now(), j->in_check),
                       "add job");
    pthread_mutex_unlock(&s->mu);
    return st;
}

#define JOB_COLS                                                                                \
    "id, client, model, key_id, state, error, created, started, finished, fetched, seq, in_check"

static void read_job(srv_job *j, sqlite3_stmt *q)
{
    memset(j, 0, sizeof *j);
    copy_text(j->id, sizeof j->id, q, 0);
    j->client = sqlite3_column_int64(q, 1);
    copy_text(j->model, sizeof j->model, q, 2);
    copy_text(j->key_id, sizeof j->key_id, q, 3);
    copy_text(j->state, sizeof j->state, q, 4);
    copy_text(j->error, sizeof j->error, q, 5);
    j->created = sqlite3_column_double(q, 6);
    j->started = sqlite3_column_double(q, 7);
    j->finished = sqlite3_column_double(q, 8);
    j->fetched = sqlite3_column_double(q, 9);
    j->seq = sqlite3_column_int64(q, 10);
    copy_text(j->in_check, sizeof j->in_check, q, 11);
}

int srv_store_job_get(srv_store *s, srv_job *j, int64_t client, const char *id)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT " JOB_COLS " FROM jobs WHERE id = ? AND state <> 'deleted'"
                              " AND (? < 0 OR client = ?)", "tii", id, client, client);
    int rc = 1;
    if (q && sqlite3_step(q) == SQLITE_ROW) {
        read_job(j, q);
        rc = 0;
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int srv_store_job_claim(srv_store *s, srv_job *j)
{
    pthread_mutex_lock(&s->mu);
    int got = 0;
    sqlite3_stmt *q = prep(s, "SELECT " JOB_COLS " FROM jobs WHERE state = 'queued' ORDER BY seq"
                              " LIMIT 1", "");
    if (q && sqlite3_step(q) == SQLITE_ROW) {
        read_job(j, q);
        got = 1;
    }
    sqlite3_finalize(q);
    if (got && exec_done(s, prep(s, "UPDATE jobs SET state = 'running', started = ?, attempts ="
                                    " attempts + 1 WHERE id = ?", "dt", srv_wall_now(), j->id),
                         "claim job"))
        got = 0;
    pthread_mutex_unlock(&s->mu);
    return got;
}

ppnn_status srv_store_job_finish(srv_store *s, const char *id, const char *state,
                                 const char *error)
{
    pthread_mutex_lock(&s->mu);
    /* A job deleted while it ran stays deleted. */
    ppnn_status st = exec_done(s, prep(s, "UPDATE jobs SET state = ?, error = ?, finished = ? "
                                          "WHERE id = ? AND state = 'running'", "ttdt", state,
                                       error ? error : "", srv_wall_now(), id), "finish job");
    pthread_mutex_unlock(&s->mu);
    return st;
}

ppnn_status srv_store_job_set(srv_store *s, const char *id, const char *field, double value)
{
    const char *sql = !strcmp(field, "fetched")
                          ? "UPDATE jobs SET fetched = ? WHERE id = ? AND fetched = 0"
                          : NULL;
    if (!sql)
        abort(); /* programmer misuse: only these fields are settable */
    pthread_mutex_lock(&s->mu);
    ppnn_status st = exec_done(s, prep(s, sql, "dt", value, id), "update job");
    pthread_mutex_unlock(&s->mu);
    return st;
}

ppnn_status srv_store_job_delete(srv_store *s, int64_t client, const char *id)
{
    pthread_mutex_lock(&s->mu);
    ppnn_status st = exec_done(s, prep(s, "UPDATE jobs SET state = 'deleted' WHERE id = ? AND "
                                          "client = ? AND state <> 'deleted'", "ti", id, client),
                               "delete job");
    if (!st && sqlite3_changes(s->db) == 0)
        st = ppnn_fail(PPNN_ERR_PARAM, "no such job");
    pthread_mutex_unlock(&s->mu);
    return st;
}

size_t srv_store_count(srv_store *s, const char *state)
{
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    sqlite3_stmt *q = prep(s, "SELECT COUNT(*) FROM jobs WHERE state = ?", "t", state);
    if (q && sqlite3_step(q) == SQLITE_ROW)
        n = (size_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t srv_store_queue_position(srv_store *s, int64_t seq)
{
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    sqlite3_stmt *q = prep(s, "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND seq < ?",
                           "i", seq);
    if (q && sqlite3_step(q) == SQLITE_ROW)
        n = (size_t)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t srv_store_requeue_running(srv_store *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    if (!exec_done(s, prep(s, "UPDATE jobs SET state = 'queued' WHERE state = 'running'", ""),
                   "requeue"))
        n = (size_t)sqlite3_changes(s->db);
    pthread_mutex_unlock(&s->mu);
    return n;
}

size_t srv_store_expired(srv_store *s, char (*ids)[SRV_ID_HEX + 1], size_t cap,
                         double fetched_before)
{
    pthread_mutex_lock(&s->mu);
    size_t n = 0;
    sqlite3_stmt *q = prep(s, "SELECT id FROM jobs WHERE state = 'deleted' OR (fetched > 0 AND "
                              "fetched < ?) LIMIT ?", "di", fetched_before, (int64_t)cap);
    while (q && n < cap && sqlite3_step(q) == SQLITE_ROW)
        copy_text(ids[n++], SRV_ID_HEX + 1, q, 0);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return n;
}

ppnn_status srv_store_job_forget(srv_store *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    /* A running job that was deleted is forgotten once its worker has finished with it. */
    ppnn_status st = exec_done(s, prep(s, "DELETE FROM jobs WHERE id = ? AND state <> 'running'",
                                       "t", id), "forget job");
    pthread_mutex_unlock(&s->mu);
    return st;
}

int srv_store_job_exists(srv_store *s, const char *id)
{
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT 1 FROM jobs WHERE id = ?", "t", id);
    int found = q && sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    return found;
}

char *srv_store_jobs_json(srv_store *s, int64_t client)
{
    cJSON *arr = cJSON_CreateArray();
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *q = prep(s, "SELECT " JOB_COLS " FROM jobs WHERE client = ? AND state <> "
                              "'deleted' ORDER BY seq", "i", client);
    while (q && sqlite3_step(q) == SQLITE_ROW) {
        srv_job j;
        read_job(&j, q);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "job_id", j.id);
        cJSON_AddStringToObject(o, "model", j.model);
        cJSON_AddStringToObject(o, "state", j.state);
        cJSON_AddItemToArray(arr, o);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&s->mu);
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "jobs", arr);
    char *txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return txt;
}
