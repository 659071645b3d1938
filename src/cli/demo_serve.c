/* ppnn demo --serve: the demo's server step through a real `ppnn serve` on loopback, in this
 * process: a server thread (plain HTTP on 127.0.0.1, an ephemeral port, a temporary state
 * directory) and the `ppnn submit` client code talking to it over a socket. */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "ppnn/serve.h"

typedef struct demo_server {
    srv_config cfg;
    volatile sig_atomic_t stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint16_t port;
    int finished;
    ppnn_status st;
    char error[512];
} demo_server;

static void on_listening(void *ctx, uint16_t port)
{
    demo_server *d = ctx;
    pthread_mutex_lock(&d->mu);
    d->port = port;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

static void *server_main(void *arg)
{
    demo_server *d = arg;
    ppnn_status st = srv_run(&d->cfg, &d->stop);
    pthread_mutex_lock(&d->mu);
    d->st = st;
    if (st)
        snprintf(d->error, sizeof d->error, "%s", ppnn_last_error());
    d->finished = 1;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void on_status(void *ctx, const srv_status *s)
{
    cli_progress *bar = ctx;
    char extra[64];
    snprintf(extra, sizeof extra, " %s %s", s->state, s->step_name);
    if (!strcmp(s->state, "done"))
        cli_progress_finish(bar, extra);
    else
        cli_progress_update(bar, (size_t)(1000 * s->progress), extra);
}

static void on_event(void *ctx, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "demo: %s\n", msg);
}

int cli_demo_serve(const char *tmp, const char *model, const char *keys, const char *batch,
                   const char *result, size_t threads)
{
    char models[1200], state[1200], link_path[1300], abs_model[PATH_MAX];
    snprintf(models, sizeof models, "%s/models", tmp);
    snprintf(state, sizeof state, "%s/state", tmp);
    snprintf(link_path, sizeof link_path, "%s/demo.ppnn", models);
    if (!realpath(model, abs_model) || mkdir(models, 0700) != 0 ||
        symlink(abs_model, link_path) != 0)
        return cli_error("demo", "cannot set up the server's models directory in %s", tmp);
    char token[SRV_TOKEN_CHARS + 1];
    int rc = 1;
    ppnn_status st = srv_token_add(token, state, "demo");
    if (st) {
        cli_fail("demo", st);
        goto cleanup;
    }
    demo_server d;
    memset(&d, 0, sizeof d);
    d.cfg.models_dir = models, d.cfg.state_dir = state, d.cfg.listen = "127.0.0.1:0";
    d.cfg.plain_http = 1; /* loopback inside one process: nothing crosses the machine */
    d.cfg.workers = 1, d.cfg.max_queue = 4, d.cfg.threads = threads, d.cfg.result_ttl = 3600;
    d.cfg.log = stderr, d.cfg.on_listening = on_listening, d.cfg.ctx = &d;
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.cv, NULL);
    pthread_t th;
    if (pthread_create(&th, NULL, server_main, &d) != 0) {
        cli_error("demo", "cannot start the server thread");
        goto cleanup_sync;
    }
    pthread_mutex_lock(&d.mu);
    while (!d.port && !d.finished)
        pthread_cond_wait(&d.cv, &d.mu);
    uint16_t port = d.port;
    pthread_mutex_unlock(&d.mu);
    if (port) {
        char url[64], job[33] = {0};
        snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)port);
        cli_progress bar;
        cli_progress_start(&bar, "server job", 1000);
        srv_client_opts o = {url, token, NULL, 8, 0.2, on_status, on_event, &bar};
        st = srv_submit(job, &o, keys, "demo", batch, result);
        if (st)
            cli_fail("demo", st);
        else
            rc = 0;
    }
    d.stop = 1;
    pthread_join(th, NULL);
    if (d.st)
        rc = cli_error("demo", "server: %s", d.error);
cleanup_sync:
    pthread_mutex_destroy(&d.mu);
    pthread_cond_destroy(&d.cv);
cleanup:
    memset(token, 0, sizeof token);
    nftw(state, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    nftw(models, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    return rc;
}
