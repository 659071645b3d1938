/* The server's life cycle: state directory, recovery after a crash, the janitor, shutdown.
 *
 * Recovery (every start): jobs left "running" by a killed process are queued again (they re-run
 * from their input file, which is only deleted once the result is in place); partial uploads in
 * state/tmp were never accepted and are deleted, as are temporary result files and files whose
 * job row does not exist (a kill between the upload's rename and its row's commit). */
#include <dirent.h>
#include <sodium.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "serve_inner.h"

static ppnn_status make_dir(const char *state, const char *sub)
{
    char path[1024];
    snprintf(path, sizeof path, "%s%s%s", state, sub[0] ? "/" : "", sub);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return ppnn_fail(PPNN_ERR_IO, "cannot create %s: %s", path, strerror(errno));
    return PPNN_OK;
}

static void sweep(srv_store *s, const char *state, FILE *log)
{
    char dir[1024], path[2048];
    snprintf(dir, sizeof dir, "%s/tmp", state);
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t removed = 0;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            removed += unlink(path) == 0;
        }
    if (d)
        closedir(d);
    snprintf(dir, sizeof dir, "%s/jobs", state);
    d = opendir(dir);
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char id[SRV_ID_HEX + 1];
        size_t idn = strnlen(e->d_name, SRV_ID_HEX);
        memcpy(id, e->d_name, idn);
        id[idn] = 0;
        const char *ext = e->d_name + (strlen(e->d_name) > SRV_ID_HEX ? SRV_ID_HEX : 0);
        /* Keep a result while its job exists, and an input until its job is done/failed. */
        srv_job j;
        int known = srv_valid_id(id) && !srv_store_job_get(s, &j, -1, id);
        int keep = known && (!strcmp(ext, ".out") ||
                             (!strcmp(ext, ".in") && strcmp(j.state, "done") != 0 &&
                              strcmp(j.state, "failed") != 0));
        /* Deleted jobs (hidden from srv_store_job_get) are left to the janitor. */
        if (!keep && !(srv_valid_id(id) && srv_store_job_exists(s, id) && !known)) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            removed += unlink(path) == 0;
        }
    }
    if (d)
        closedir(d);
    if (log && removed)
        fprintf(log, "serve: removed %zu partial or orphaned files\n", removed);
}

/* Deleted jobs, and results downloaded more than ttl seconds ago: files, then the row. */
static void janitor(srv_server *sv)
{
    char ids[64][SRV_ID_HEX + 1], path[1200];
    size_t n = srv_store_expired(sv->store, ids, 64, srv_wall_now() - sv->cfg->result_ttl);
    for (size_t i = 0; i < n; i++) {
        srv_progress p;
        if (!srv_pool_progress(sv->pool, ids[i], &p))
            continue; /* deleted while running: its worker still writes */
        srv_job_path(path, sizeof path, sv->cfg->state_dir, ids[i], "in");
        unlink(path);
        srv_job_path(path, sizeof path, sv->cfg->state_dir, ids[i], "out");
        unlink(path);
        if (srv_store_job_forget(sv->store, ids[i]) && sv->cfg->log)
            fprintf(sv->cfg->log, "serve: %s\n", ppnn_last_error());
    }
}

ppnn_status srv_run(const srv_config *cfg, volatile sig_atomic_t *stop)
{
    srv_server sv;
    memset(&sv, 0, sizeof sv);
    sv.cfg = cfg;
    srv_models models;
    memset(&models, 0, sizeof models);
    struct MHD_Daemon *d = NULL;
    ppnn_status st;
    if ((st = make_dir(cfg->state_dir, "")) || (st = make_dir(cfg->state_dir, "tmp")) ||
        (st = make_dir(cfg->state_dir, "jobs")) || (st = make_dir(cfg->state_dir, "keys")) ||
        (st = srv_token_key_load(sv.token_key, cfg->state_dir)) ||
        (st = srv_store_open(&sv.store, cfg->state_dir)))
        goto done;
    size_t requeued = srv_store_requeue_running(sv.store);
    sweep(sv.store, cfg->state_dir, cfg->log);
    if ((st = srv_models_load(&models, cfg->models_dir)))
        goto done;
    sv.models = &models;
    pthread_mutex_init(&sv.mu, NULL);
    pthread_mutex_init(&sv.wait_mu, NULL);
    if ((st = srv_pool_start(&sv.pool, sv.store, &models, cfg->state_dir, cfg->workers,
                             cfg->threads, cfg->log, srv_http_job_finished, &sv)))
        goto done_mu;
    uint16_t port = 0;
    if ((st = srv_http_start(&d, &sv, &port)))
        goto done_pool;
    if (cfg->log) {
        fprintf(cfg->log, "serve: %zu models, %zu workers, %zu queued jobs (%zu re-queued after "
                          "a restart)\n", models.count, cfg->workers,
                srv_store_count(sv.store, "queued"), requeued);
        fprintf(cfg->log, "serve: listening on %s://%.*s:%u\n", cfg->plain_http ? "http" : "https",
                (int)(strrchr(cfg->listen, ':') - cfg->listen), cfg->listen, (unsigned)port);
        fflush(cfg->log);
    }
    if (cfg->on_listening)
        cfg->on_listening(cfg->ctx, port);
    double last = 0;
    while (!*stop) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        srv_http_tick(&sv, 0);
        double now = ppnn_now();
        if (now - last >= 1.0) {
            janitor(&sv);
            last = now;
        }
    }
    if (cfg->log) {
        fprintf(cfg->log, "serve: stopping (running jobs finish first)\n");
        fflush(cfg->log);
    }
    srv_http_tick(&sv, 1); /* long polls answer now; then the daemon stops */
    srv_http_stop(d);
done_pool:
    srv_pool_stop(sv.pool);
done_mu:
    pthread_mutex_destroy(&sv.mu);
    pthread_mutex_destroy(&sv.wait_mu);
done:
    srv_models_free(&models);
    srv_store_close(sv.store);
    sodium_memzero(sv.token_key, sizeof sv.token_key);
    return st;
}
