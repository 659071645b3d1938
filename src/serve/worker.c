/* The worker pool: each worker claims the oldest queued job, runs it through hnn_infer_file (the path `ppnn infer` runs)
 * (the same path as `ppnn infer`) and records done/failed. A result is written atomically before
 * the job is marked done, so a kill at any point leaves either a queued/running job (re-run from
 * its input on restart: jobs are deterministic, so a re-run writes the same result) or a done job
 * with its result. Progress (step, layer, fraction by the steps' work) lives in memory for the
 * status endpoint. */
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "serve_inner.h"

typedef struct worker {
    struct srv_pool *pool;
    pthread_t thread;
    srv_progress prog; /* guarded by pool->mu */
} worker;

struct srv_pool {
    srv_store *store;
    const srv_models *models;
    const char *state_dir;
    size_t nworkers, threads;
    FILE *log;
    void (*on_finish)(void *, const char *);
    void *ctx;
    worker *w;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop, kicked;
    double busy_seconds;
    size_t jobs_run;
    size_t running;   /* workers inside a job */
    double idle_since; /* when running last dropped to 0 (ppnn_now) */
    int trimmed;      /* no job ran since the last malloc_trim */
};

/* Seconds without a job before the workers' memory goes back to the system: long enough for a
 * client's next batch (a sequential client uploads it after downloading the last result). */
#define TRIM_AFTER_IDLE 5.0

void srv_job_path(char *buf, size_t len, const char *state_dir, const char *id, const char *ext)
{
    snprintf(buf, len, "%s/jobs/%s.%s", state_dir, id, ext);
}

void srv_key_path(char *buf, size_t len, const char *state_dir, int64_t client,
                  const char *key_id, const char *kind)
{
    snprintf(buf, len, "%s/keys/%lld-%s.%s", state_dir, (long long)client, key_id, kind);
}

/* Progress of the running job, from the executor (hnn_infer_file): the step that finished and
 * the fraction of the whole file done (batches done plus the tiles of the current one). */
static void on_progress(void *ctx, const hnn_progress *pr)
{
    worker *w = ctx;
    pthread_mutex_lock(&w->pool->mu);
    if (pr->step) {
        w->prog.step = pr->step_index + 1;
        w->prog.layer = pr->step->layer;
        snprintf(w->prog.step_name, sizeof w->prog.step_name, "%s", pr->step->name);
    }
    double f = pr->nbatches ? ((double)pr->batch + pr->fraction) / (double)pr->nbatches : 0;
    w->prog.fraction = f < 0 ? 0 : f > 1 ? 1 : f;
    pthread_mutex_unlock(&w->pool->mu);
}

static void logf_(srv_pool *p, const char *fmt, const char *a, const char *b)
{
    if (!p->log)
        return;
    fprintf(p->log, fmt, a, b);
    fputc('\n', p->log);
    fflush(p->log);
}

/* Runs one claimed job; returns the failure message or NULL. */
static ppnn_status run_job(worker *w, const srv_job *j)
{
    srv_pool *p = w->pool;
    const srv_model *m = srv_models_find(p->models, j->model);
    if (!m)
        return ppnn_fail(PPNN_ERR_PARAM, "model %s is no longer served", j->model);
    char key_path[1200], in[1200], out[1200];
    uint8_t pid[32], key_id[CKKS_KEY_ID_BYTES];
    if (!(srv_store_key_get(p->store, j->client, j->key_id, pid) & 1))
        return ppnn_fail(PPNN_ERR_PARAM, "key %s is not registered", j->key_id);
    int preset = srv_models_preset(p->models, pid);
    if (preset < 0)
        return ppnn_fail(PPNN_ERR_PARAM, "key %s has parameters this server does not serve",
                         j->key_id);
    ckks_params *params = p->models->params[preset];
    srv_key_path(key_path, sizeof key_path, p->state_dir, j->client, j->key_id, "relin");
    srv_job_path(in, sizeof in, p->state_dir, j->id, "in");
    srv_job_path(out, sizeof out, p->state_dir, j->id, "out");
    ckks_relin_key rk;
    memset(&rk, 0, sizeof rk);
    /* The path `ppnn infer` runs: the model's plan for these parameters, the batch file
     * streamed under the memory budget, the result written atomically (hnn_infer_file). */
    hnn_plan *plan = NULL;
    ppnn_status st = ckks_relin_key_load(&rk, &params, key_id, key_path);
    if (!st)
        st = hnn_plan_for_params(&plan, &m->m, params, NULL);
    if (!st) {
        pthread_mutex_lock(&p->mu);
        w->prog.steps = plan->nsteps;
        pthread_mutex_unlock(&p->mu);
        hnn_file_opts fo = {.threads = (int)p->threads, .allow_spill = 1,
                            .progress = on_progress, .progress_ctx = w};
        /* The upload verified this file's checksum over the bytes it wrote; while the file is
         * still that one (identity recorded in the job row after the fsync), hashing it again
         * would only repeat the same computation. Otherwise it is verified in full. */
        uint8_t sum[PPNN_FILE_TRAILER_BYTES];
        if (srv_upload_trusted(sum, j->in_check, in))
            fo.input_checksum = sum;
        else if (j->in_check[0])
            logf_(p, "serve: job %s: %s", j->id, "input changed since its upload; verifying it");
        const uint32_t shape[3] = {m->m.input.c, m->m.input.h, m->m.input.w};
        hnn_file_stats stats;
        st = hnn_infer_file(&stats, out, in, plan, shape, &rk, key_id, &fo);
    }
    hnn_plan_free(plan);
    ckks_relin_key_free(&rk);
    return st;
}

/* A failure message for the client: the server's own paths (state directory) are replaced by
 * what they are to the client ("the uploaded batch", "the registered key"). */
static const char *client_message(char *out, size_t cap, const char *msg, const char *state)
{
    size_t n = strlen(state), o = 0;
    while (*msg && o + 1 < cap) {
        if (!strncmp(msg, state, n) && msg[n] == '/') {
            const char *rest = msg + n + 1, *end = rest + strcspn(rest, " :,;");
            const char *what = strstr(rest, ".in") && strstr(rest, ".in") < end ? "the uploaded batch"
                               : !strncmp(rest, "keys/", 5) ? "the registered key" : "a server file";
            o += (size_t)snprintf(out + o, cap - o, "%s", what);
            if (o >= cap)
                o = cap - 1;
            msg = end;
            continue;
        }
        out[o++] = *msg++;
    }
    out[o] = 0;
    return out;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    srv_pool *p = w->pool;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        if (!p->stop && !p->kicked) {
            /* Wake up now and then even without a kick (a job queued by another path). */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        }
        int stop = p->stop;
        p->kicked = 0;
        pthread_mutex_unlock(&p->mu);
        if (stop)
            break;
        srv_job j;
        while (!__atomic_load_n(&p->stop, __ATOMIC_RELAXED) && srv_store_job_claim(p->store, &j)) {
            double t0 = ppnn_now();
            pthread_mutex_lock(&p->mu);
            p->running++;
            p->trimmed = 0;
            memset(&w->prog, 0, sizeof w->prog);
            memcpy(w->prog.job, j.id, sizeof w->prog.job);
            w->prog.started = srv_wall_now();
            pthread_mutex_unlock(&p->mu);
            logf_(p, "serve: job %s (%s) running", j.id, j.model);
            ppnn_status st = run_job(w, &j);
            char msg[512];
            const char *err = st ? client_message(msg, sizeof msg, ppnn_last_error(), p->state_dir)
                                 : NULL;
            if (srv_store_job_finish(p->store, j.id, st ? "failed" : "done", err) && p->log)
                fprintf(p->log, "serve: %s\n", ppnn_last_error());
            if (p->on_finish) /* long polls learn of it now */
                p->on_finish(p->ctx, j.id);
            logf_(p, "serve: job %s %s", j.id, st ? err : "done");
            if (!st) { /* the input is no longer needed once the result is in place */
                char in[1200];
                srv_job_path(in, sizeof in, p->state_dir, j.id, "in");
                unlink(in);
            }
            pthread_mutex_lock(&p->mu);
            w->prog.job[0] = 0;
            if (!--p->running)
                p->idle_since = ppnn_now();
            if (!st) {
                p->busy_seconds += ppnn_now() - t0;
                p->jobs_run++;
            }
            pthread_mutex_unlock(&p->mu);
        }
        /* No job for TRIM_AFTER_IDLE seconds: the memory kept warm for back-to-back jobs
         * (cmd_serve.c's malloc settings) goes back to the system until the next one. */
        pthread_mutex_lock(&p->mu);
        int trim = !p->running && !p->trimmed && ppnn_now() - p->idle_since >= TRIM_AFTER_IDLE;
        p->trimmed |= trim;
        pthread_mutex_unlock(&p->mu);
        if (trim)
            malloc_trim(0);
    }
    return NULL;
}

ppnn_status srv_pool_start(srv_pool **out, srv_store *s, const srv_models *ms,
                           const char *state_dir, size_t workers, size_t threads, FILE *log,
                           void (*on_finish)(void *, const char *), void *ctx)
{
    *out = NULL;
    srv_pool *p = calloc(1, sizeof *p);
    if (!p || (workers && !(p->w = calloc(workers, sizeof *p->w)))) {
        free(p);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    p->store = s, p->models = ms, p->state_dir = state_dir, p->log = log;
    p->on_finish = on_finish, p->ctx = ctx;
    p->nworkers = workers;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    p->threads = threads ? threads : workers && cores > (long)workers ? (size_t)cores / workers : 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    p->kicked = 1;
    p->trimmed = 1;
    for (size_t i = 0; i < workers; i++) {
        p->w[i].pool = p;
        if (pthread_create(&p->w[i].thread, NULL, worker_main, &p->w[i]) != 0) {
            p->nworkers = i;
            srv_pool_stop(p);
            return ppnn_fail(PPNN_ERR_NOMEM, "cannot start worker threads");
        }
    }
    *out = p;
    return PPNN_OK;
}

void srv_pool_wake(srv_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->kicked = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

int srv_pool_progress(srv_pool *p, const char *id, srv_progress *out)
{
    int rc = 1;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nworkers; i++)
        if (!strcmp(p->w[i].prog.job, id)) {
            *out = p->w[i].prog;
            rc = 0;
        }
    pthread_mutex_unlock(&p->mu);
    return rc;
}

double srv_pool_mean_seconds(srv_pool *p)
{
    pthread_mutex_lock(&p->mu);
    double m = p->jobs_run ? p->busy_seconds / (double)p->jobs_run : 0;
    pthread_mutex_unlock(&p->mu);
    return m;
}

size_t srv_pool_workers(const srv_pool *p) { return p->nworkers; }

void srv_pool_stop(srv_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (size_t i = 0; i < p->nworkers; i++)
        pthread_join(p->w[i].thread, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->w);
    free(p);
}
