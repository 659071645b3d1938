/* Upload streaming: a request body goes chunk by chunk to a temporary file in state/tmp while
 * ppnn_file_check verifies the container on the fly, so the server never holds a body in memory
 * (RSS stays flat however large the batch). Refusals are decided as early as the bytes allow:
 * a wrong kind (a secret key!) or an oversized declared length after the 56-byte header, too
 * many bytes as soon as they arrive, a bad checksum or a truncated body at the end. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "serve_inner.h"

static void refuse(srv_upload *u, int status, const char *msg)
{
    if (u->status)
        return;
    u->status = status;
    snprintf(u->error, sizeof u->error, "%s", msg);
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
    if (c->version != CKKS_FILE_VERSION) {
        snprintf(msg, sizeof msg, "refused: format version %u (this server reads %d)",
                 c->version, CKKS_FILE_VERSION);
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

void srv_upload_check(srv_upload *u, const uint8_t *buf, size_t len)
{
    if (u->status)
        return;
    if (u->check.seen + len > u->limit) {
        char msg[160];
        snprintf(msg, sizeof msg, "upload exceeds the %llu bytes this request can need",
                 (unsigned long long)u->limit);
        refuse(u, 413, msg);
        return;
    }
    uint64_t at = u->check.seen;
    int had_header = u->check.header_ok;
    if (ppnn_file_check_update(&u->check, buf, len)) {
        refuse(u, 400, ppnn_last_error());
        return;
    }
    if (!had_header && u->check.header_ok)
        header_policy(u);
    if (u->key_id && !u->status)
        key_id_policy(u, buf, len, at);
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
    return PPNN_OK;
}

void srv_upload_feed(srv_upload *u, const uint8_t *buf, size_t len)
{
    srv_upload_check(u, buf, len);
    if (u->status)
        return;
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
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    if (u->tmp[0])
        unlink(u->tmp);
    u->tmp[0] = 0;
    ppnn_file_check_free(&u->check);
}
