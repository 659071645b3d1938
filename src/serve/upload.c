/* Upload streaming: a request body goes chunk by chunk to a temporary file in state/tmp while
 * ppnn_file_check verifies the container on the fly, so the server never holds a body in memory
 * (RSS stays flat however large the batch). Refusals are decided as early as the bytes allow:
 * a wrong kind (a secret key!) or an oversized declared length after the 56-byte header, too
 * many bytes as soon as they arrive, a ciphertext whose digest differs as soon as its table
 * entry arrives (batches are chunked frames, ppnn/util.h), a bad top checksum or a truncated
 * body at the end. */
/* sync_file_range (Linux): starts the writeback of what was written, see write_main. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve_inner.h"

/* The pipeline between the connection's thread, the check thread and the write thread
 * (serve_inner.h). Slot number k is slot[k % SRV_UP_SLOTS]; counters only grow:
 * [written, checked) are checked and wait for the writer, [checked, filled) are full and wait
 * for the check, and slot `filled` is being filled (`fill` bytes so far, the connection's
 * thread alone touches it and `fill`). */
struct srv_up_pipe {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* any counter moved, closing/stop set, or a refusal */
    uint8_t *slot[SRV_UP_SLOTS];
    size_t len[SRV_UP_SLOTS];
    uint64_t filled, checked, written;
    size_t fill;
    int closing, stop;
    pthread_t check_thread, write_thread;
};

/* The first refusal wins; the threads learn of it at their next slot. */
static void refuse(srv_upload *u, int status, const char *msg)
{
    struct srv_up_pipe *p = u->pipe;
    if (p)
        pthread_mutex_lock(&p->mu);
    if (!u->status) {
        snprintf(u->error, sizeof u->error, "%s", msg);
        __atomic_store_n(&u->status, status, __ATOMIC_RELEASE);
    }
    if (p) {
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

int srv_upload_refused(const srv_upload *u)
{
    return __atomic_load_n(&u->status, __ATOMIC_ACQUIRE);
}

/* 413 as soon as `seen + len` bytes exceed what the request can need. */
static int over_limit(srv_upload *u, uint64_t seen, size_t len)
{
    if (seen + len <= u->limit)
        return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "upload exceeds the %llu bytes this request can need",
             (unsigned long long)u->limit);
    refuse(u, 413, msg);
    return 1;
}

/* Checks the header as soon as it is complete. */
static void header_policy(srv_upload *u)
{
    const ppnn_file_check *c = &u->check;
    char msg[200];
    if (!strcmp(c->kind, CKKS_KIND_SECRET)) {
        refuse(u, 403, "refused: this is a secret key; the server must never receive it (send "
                       "relin.key / galois.key only)");
        return;
    }
    if (!strstr(u->kinds, c->kind) || strlen(c->kind) != 4) {
        snprintf(msg, sizeof msg, "refused: a '%s' file where %s was expected", c->kind,
                 u->kinds);
        refuse(u, 415, msg);
        return;
    }
    /* Batches are chunked frames of their own version; keys keep theirs. */
    const uint32_t want = !strcmp(c->kind, CKKS_KIND_BATCH) ? CKKS_BATCH_FILE_VERSION
                                                             : CKKS_FILE_VERSION;
    if (c->version != want) {
        snprintf(msg, sizeof msg, "refused: '%s' format version %u (this server reads %u%s)",
                 c->kind, c->version, want,
                 want == CKKS_BATCH_FILE_VERSION ? ": re-encrypt with this ppnn" : "");
        refuse(u, 415, msg);
        return;
    }
    if (u->param_id && memcmp(c->param_id, u->param_id, PPNN_PARAM_ID_BYTES) != 0) {
        refuse(u, 422, "refused: the batch was made for other CKKS parameters than the key");
        return;
    }
    if (c->total > u->limit) {
        snprintf(msg, sizeof msg, "upload of %llu bytes exceeds the %llu bytes this request can "
                 "need", (unsigned long long)c->total, (unsigned long long)u->limit);
        refuse(u, 413, msg);
    }
}

/* Collects the key id bytes [key_id_off, +16) as they pass; refuses a batch encrypted under
 * other keys than the job's as soon as the id is complete (before the bulk of the body). */
static void key_id_policy(srv_upload *u, const uint8_t *buf, size_t len, uint64_t at)
{
    uint64_t lo = u->key_id_off, hi = lo + CKKS_KEY_ID_BYTES;
    if (at >= hi || at + len <= lo)
        return;
    uint64_t from = at > lo ? at : lo, to = at + len < hi ? at + len : hi;
    memcpy(u->got_key_id + (from - lo), buf + (from - at), (size_t)(to - from));
    if (to == hi && memcmp(u->got_key_id, u->key_id, CKKS_KEY_ID_BYTES) != 0)
        refuse(u, 422, "refused: the batch was encrypted under other keys than the job's key "
                       "(key ids differ)");
}

/* Checks one piece of the body and applies the policies the bytes now allow. */
static void check_part(srv_upload *u, const uint8_t *buf, size_t len)
{
    uint64_t at = u->check.seen;
    int had_header = u->check.header_ok;
    if (ppnn_file_check_update(&u->check, buf, len)) {
        refuse(u, 400, ppnn_last_error());
        return;
    }
    if (!had_header && u->check.header_ok)
        header_policy(u);
    if (u->key_id && !srv_upload_refused(u))
        key_id_policy(u, buf, len, at);
}

void srv_upload_check(srv_upload *u, const uint8_t *buf, size_t len)
{
    if (srv_upload_refused(u) || over_limit(u, u->check.seen, len))
        return;
    /* The header alone first: its policy (kind, version, declared size: 413) decides before
     * the chunked frame's own fields (a count over the model's inputs) are looked at. */
    if (!u->check.header_ok && u->check.seen < PPNN_FILE_HEADER_BYTES) {
        size_t head = PPNN_FILE_HEADER_BYTES - (size_t)u->check.seen;
        head = head < len ? head : len;
        check_part(u, buf, head);
        buf += head, len -= head;
        if (!len || srv_upload_refused(u))
            return;
    }
    check_part(u, buf, len);
}

/* Writes buf whole at the file's end (507 when the disk refuses). */
static void store(srv_upload *u, const uint8_t *buf, size_t len)
{
    while (len) {
        ssize_t w = write(u->fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            char msg[200];
            snprintf(msg, sizeof msg, "server cannot store the upload: %s", strerror(errno));
            refuse(u, 507, msg);
            return;
        }
        buf += w, len -= (size_t)w;
        u->stored += (uint64_t)w;
    }
}

static void *check_main(void *arg)
{
    srv_upload *u = arg;
    struct srv_up_pipe *p = u->pipe;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->checked == p->filled && !p->closing && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop || p->checked == p->filled) /* stopped, or closing with every slot done */
            break;
        size_t k = (size_t)(p->checked % SRV_UP_SLOTS);
        pthread_mutex_unlock(&p->mu);
        srv_upload_check(u, p->slot[k], p->len[k]); /* nothing once refused */
        pthread_mutex_lock(&p->mu);
        p->checked++;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void *write_main(void *arg)
{
    srv_upload *u = arg;
    struct srv_up_pipe *p = u->pipe;
    uint64_t off = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->written == p->checked && !(p->closing && p->checked == p->filled) && !p->stop)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop || p->written == p->checked)
            break;
        size_t k = (size_t)(p->written % SRV_UP_SLOTS), len = p->len[k];
        pthread_mutex_unlock(&p->mu);
        if (!srv_upload_refused(u)) {
            store(u, p->slot[k], len);
            /* Start the writeback of this slot now (asynchronously): the fsync that accepts
             * the upload then waits for the last slots only, not for the whole body. Only a
             * hint: durability comes from that fsync. */
            (void)sync_file_range(u->fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
        }
        off += len;
        pthread_mutex_lock(&p->mu);
        p->written++;
        pthread_cond_broadcast(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static void pipe_free(struct srv_up_pipe *p)
{
    for (size_t i = 0; i < SRV_UP_SLOTS; i++)
        free(p->slot[i]);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}

/* Starts the check and write threads; on any failure the upload runs inline (u->pipe NULL). */
static void pipe_start(srv_upload *u)
{
    struct srv_up_pipe *p = calloc(1, sizeof *p);
    if (!p)
        return;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    int ok = 1;
    for (size_t i = 0; i < SRV_UP_SLOTS; i++)
        ok &= (p->slot[i] = malloc(SRV_UP_SLOT_BYTES)) != NULL;
    pthread_attr_t at;
    /* The stages need little stack (a hash state, an error message): 256 KiB, not 8 MiB,
     * times two threads per upload in flight. */
    if (!ok || pthread_attr_init(&at) != 0) {
        pipe_free(p);
        return;
    }
    pthread_attr_setstacksize(&at, (size_t)256 << 10);
    u->pipe = p;
    if (pthread_create(&p->check_thread, &at, check_main, u) != 0) {
        u->pipe = NULL;
        pipe_free(p);
    } else if (pthread_create(&p->write_thread, &at, write_main, u) != 0) {
        pthread_mutex_lock(&p->mu);
        p->stop = 1;
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->check_thread, NULL);
        u->pipe = NULL;
        pipe_free(p);
    }
    pthread_attr_destroy(&at);
}

/* Hands the slot being filled to the check thread. */
static void publish(struct srv_up_pipe *p)
{
    if (!p->fill)
        return;
    pthread_mutex_lock(&p->mu);
    p->len[p->filled % SRV_UP_SLOTS] = p->fill;
    p->filled++;
    p->fill = 0;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* End of the body (stop = 0: every slot is checked and written first) or abandonment (stop =
 * 1: the threads quit at their next slot). Joins the threads; u->pipe is NULL afterwards. */
static void pipe_end(srv_upload *u, int stop)
{
    struct srv_up_pipe *p = u->pipe;
    if (!p)
        return;
    if (!stop)
        publish(p);
    pthread_mutex_lock(&p->mu);
    p->closing = 1;
    p->stop |= stop;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->check_thread, NULL);
    pthread_join(p->write_thread, NULL);
    u->pipe = NULL;
    pipe_free(p);
}

ppnn_status srv_upload_open(srv_upload *u, const char *state_dir, uint64_t limit,
                            const char *kinds, const char *name)
{
    memset(u, 0, sizeof *u);
    u->fd = -1;
    u->limit = limit;
    u->kinds = kinds;
    ppnn_file_check_init(&u->check, name);
    char id[SRV_ID_HEX + 1];
    srv_random_id(id);
    snprintf(u->tmp, sizeof u->tmp, "%s/tmp/%s.part", state_dir, id);
    u->fd = open(u->tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (u->fd < 0)
        return ppnn_fail(PPNN_ERR_IO, "cannot create %s: %s", u->tmp, strerror(errno));
    pipe_start(u);
    return PPNN_OK;
}

void srv_upload_feed(srv_upload *u, const uint8_t *buf, size_t len)
{
    if (srv_upload_refused(u) || over_limit(u, u->received, len))
        return;
    u->received += len;
    struct srv_up_pipe *p = u->pipe;
    if (!p) {
        srv_upload_check(u, buf, len);
        if (!srv_upload_refused(u))
            store(u, buf, len);
        return;
    }
    while (len && !srv_upload_refused(u)) {
        if (!p->fill) { /* a new slot: wait until the writer is done with its last use */
            pthread_mutex_lock(&p->mu);
            while (p->filled - p->written >= SRV_UP_SLOTS && !u->status)
                pthread_cond_wait(&p->cv, &p->mu);
            pthread_mutex_unlock(&p->mu);
            if (srv_upload_refused(u))
                return;
        }
        size_t k = (size_t)(p->filled % SRV_UP_SLOTS);
        size_t take = SRV_UP_SLOT_BYTES - p->fill < len ? SRV_UP_SLOT_BYTES - p->fill : len;
        memcpy(p->slot[k] + p->fill, buf, take);
        p->fill += take, buf += take, len -= take;
        if (p->fill == SRV_UP_SLOT_BYTES)
            publish(p);
    }
}

static int64_t mtime_ns(const struct stat *sb)
{
    return (int64_t)sb->st_mtim.tv_sec * 1000000000 + (int64_t)sb->st_mtim.tv_nsec;
}

void srv_upload_record(char out[SRV_IN_CHECK_MAX], const uint8_t sum[PPNN_FILE_TRAILER_BYTES],
                       uint64_t size, uint64_t ino, int64_t mtime)
{
    char hex[2 * PPNN_FILE_TRAILER_BYTES + 1];
    sodium_bin2hex(hex, sizeof hex, sum, PPNN_FILE_TRAILER_BYTES);
    snprintf(out, SRV_IN_CHECK_MAX, "b2:%s:%llu:%llu:%lld", hex, (unsigned long long)size,
             (unsigned long long)ino, (long long)mtime);
}

int srv_upload_trusted(uint8_t sum[PPNN_FILE_TRAILER_BYTES], const char *record,
                       const char *path)
{
    char hex[2 * PPNN_FILE_TRAILER_BYTES + 1];
    unsigned long long size, ino;
    long long mtime;
    int used = 0;
    struct stat sb;
    if (!record || strncmp(record, "b2:", 3) != 0 || strlen(record) >= SRV_IN_CHECK_MAX ||
        sscanf(record + 3, "%64[0-9a-f]:%llu:%llu:%lld%n", hex, &size, &ino, &mtime, &used) != 4 ||
        record[3 + used] || strlen(hex) != sizeof hex - 1 ||
        sodium_hex2bin(sum, PPNN_FILE_TRAILER_BYTES, hex, sizeof hex - 1, NULL, NULL, NULL) != 0)
        return 0;
    /* lstat: the stored input is a regular file the server wrote, never a link to follow. */
    if (lstat(path, &sb) != 0 || !S_ISREG(sb.st_mode) || (unsigned long long)sb.st_size != size ||
        (unsigned long long)sb.st_ino != ino || mtime_ns(&sb) != mtime)
        return 0;
    return 1;
}

/* Makes a rename in dir durable (the job row committed next points at the new name). */
static int sync_dir_of(const char *path)
{
    char dir[1024];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n == 0 || n >= sizeof dir)
        return 0;
    memcpy(dir, path, n);
    dir[n] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int srv_upload_commit(srv_upload *u, const char *path)
{
    struct stat sb;
    pipe_end(u, 0);
    if (!u->status && ppnn_file_check_finish(&u->check))
        refuse(u, 400, ppnn_last_error());
    if (!u->status && (fsync(u->fd) != 0 || fstat(u->fd, &sb) != 0 || close(u->fd) != 0)) {
        u->fd = -1;
        refuse(u, 507, "server cannot store the upload (fsync)");
    }
    u->fd = -1;
    int renamed = 0;
    if (!u->status && !(renamed = rename(u->tmp, path) == 0))
        refuse(u, 507, "server cannot store the upload (rename)");
    if (!u->status && sync_dir_of(path) != 0)
        refuse(u, 507, "server cannot store the upload (directory fsync)");
    /* What was verified: the checksum over exactly the bytes written (the hash and the write
     * see the same buffers), and the file as it stands after its fsync (a rename keeps it). */
    if (!u->status)
        srv_upload_record(u->record, u->check.trailer, (uint64_t)sb.st_size,
                          (uint64_t)sb.st_ino, mtime_ns(&sb));
    if (u->status) {
        if (renamed)
            unlink(path); /* the directory fsync failed: nothing is accepted */
        srv_upload_abort(u);
        return 1;
    }
    u->tmp[0] = 0;
    ppnn_file_check_free(&u->check);
    return 0;
}

void srv_upload_abort(srv_upload *u)
{
    pipe_end(u, 1);
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->tmp[0])
        unlink(u->tmp);
    u->tmp[0] = 0;
    ppnn_file_check_free(&u->check);
}
