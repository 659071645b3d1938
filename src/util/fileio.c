/* Atomic file writes (temp file + fsync + rename) and bounded whole-file reads. */
#include "ppnn/util.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Path policy (paths.c): a device or FIFO output is opened as it is, nothing renamed. */
static ppnn_status wfile_open_through(ppnn_wfile *w, const char *path)
{
    w->through = 1;
    w->path = strdup(path);
    int fd = w->path ? open(path, O_WRONLY | O_CLOEXEC) : -1;
    if (fd < 0 || !(w->fp = fdopen(fd, "wb"))) {
        ppnn_status st = ppnn_fail(w->path ? PPNN_ERR_IO : PPNN_ERR_NOMEM, "%s: cannot open: %s",
                                   path, strerror(errno));
        if (fd >= 0)
            close(fd);
        free(w->path);
        memset(w, 0, sizeof *w);
        return st;
    }
    return PPNN_OK;
}

ppnn_status ppnn_wfile_open(ppnn_wfile *w, const char *path, unsigned mode)
{
    return ppnn_wfile_open_kind(w, path, mode, NULL);
}

ppnn_status ppnn_wfile_open_kind(ppnn_wfile *w, const char *path, unsigned mode, const char *kind)
{
    memset(w, 0, sizeof *w);
    int through;
    ppnn_status pst = ppnn_path_check_output(&through, path, kind);
    if (pst)
        return pst;
    if (through)
        return wfile_open_through(w, path);
    size_t n = strlen(path);
    w->path = malloc(n + 1);
    w->tmp_path = malloc(n + 16);
    if (!w->path || !w->tmp_path) {
        free(w->path);
        free(w->tmp_path);
        memset(w, 0, sizeof *w);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    memcpy(w->path, path, n + 1);
    snprintf(w->tmp_path, n + 16, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(w->tmp_path);
    if (fd < 0) {
        ppnn_status st = ppnn_fail(PPNN_ERR_IO, "%s: cannot create file: %s", path, strerror(errno));
        free(w->path);
        free(w->tmp_path);
        memset(w, 0, sizeof *w);
        return st;
    }
    /* mkstemp creates 0600; widen only when asked (public files), never narrow secrets.
     * Secret files keep the bare descriptor (no stdio buffer to leave copies behind). */
    w->fd = fd;
    int secret = mode == PPNN_FILE_MODE_SECRET;
    if (fchmod(fd, (mode_t)mode) != 0 || (!secret && !(w->fp = fdopen(fd, "wb")))) {
        ppnn_status st = ppnn_fail(PPNN_ERR_IO, "%s: cannot open file: %s", path, strerror(errno));
        close(fd);
        unlink(w->tmp_path);
        free(w->path);
        free(w->tmp_path);
        memset(w, 0, sizeof *w);
        return st;
    }
    return PPNN_OK;
}

/* write(2) until done: short writes are retried, EINTR restarts. */
static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len) {
        ssize_t k = write(fd, p, len);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        len -= (size_t)k;
    }
    return 0;
}

ppnn_status ppnn_wfile_write(ppnn_wfile *w, const void *buf, size_t len)
{
    int bad = w->fp ? len && fwrite(buf, 1, len, w->fp) != len : write_all(w->fd, buf, len) != 0;
    if (bad)
        return ppnn_fail(PPNN_ERR_IO, "%s: write failed: %s", w->path, strerror(errno));
    return PPNN_OK;
}

static void wfile_release(ppnn_wfile *w)
{
    free(w->path);
    free(w->tmp_path);
    memset(w, 0, sizeof *w);
}

void ppnn_wfile_abort(ppnn_wfile *w)
{
    if (!w || !w->path)
        return;
    if (w->fp)
        fclose(w->fp);
    else
        close(w->fd);
    if (w->tmp_path)
        unlink(w->tmp_path);
    wfile_release(w);
}

ppnn_status ppnn_wfile_commit(ppnn_wfile *w)
{
    if (w->through) { /* a device or FIFO: flush and close, nothing to fsync or rename */
        int bad = fflush(w->fp) != 0;
        int err = errno;
        bad |= fclose(w->fp) != 0;
        ppnn_status st = bad ? ppnn_fail(PPNN_ERR_IO, "%s: write failed: %s", w->path,
                                         strerror(err)) : PPNN_OK;
        wfile_release(w);
        return st;
    }
    int bad = (w->fp && fflush(w->fp) != 0) || fsync(w->fd) != 0;
    int err = errno;
    bad |= (w->fp ? fclose(w->fp) : close(w->fd)) != 0;
    w->fp = NULL;
    if (bad || rename(w->tmp_path, w->path) != 0) {
        if (!bad)
            err = errno;
        ppnn_status st = ppnn_fail(PPNN_ERR_IO, "%s: cannot write file: %s", w->path, strerror(err));
        unlink(w->tmp_path);
        wfile_release(w);
        return st;
    }
    wfile_release(w);
    return PPNN_OK;
}

ppnn_status ppnn_read_file(uint8_t **out, size_t *out_len, const char *path, size_t max_len)
{
    *out = NULL;
    *out_len = 0;
    int fd;
    ppnn_status pst = ppnn_path_open_input(&fd, path); /* regular files only (paths.c) */
    if (pst)
        return pst;
    struct stat stbuf;
    if (fstat(fd, &stbuf) != 0 || !S_ISREG(stbuf.st_mode)) {
        close(fd);
        return ppnn_fail(PPNN_ERR_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)stbuf.st_size > (uint64_t)max_len) {
        close(fd);
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: file too large (%lld bytes, limit %zu)", path,
                         (long long)stbuf.st_size, max_len);
    }
    size_t len = (size_t)stbuf.st_size, got = 0;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        close(fd);
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, len);
    }
    /* read(2) straight into buf: no stdio buffer keeps a copy of a secret file. */
    while (got < len) {
        ssize_t k = read(fd, buf + got, len - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    close(fd);
    if (got != len) {
        sodium_memzero(buf, got);
        free(buf);
        return ppnn_fail(PPNN_ERR_IO, "%s: read failed (file changed while reading?)", path);
    }
    *out = buf;
    *out_len = len;
    return PPNN_OK;
}

double ppnn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
