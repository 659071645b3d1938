/* Scratch file for spilled stage outputs (the executor's last resort when a stage's outputs do
 * not fit the memory budget).
 *
 * The file is created in the scratch directory and unlinked at once (O_TMPFILE where the file
 * system supports it, else mkstemp + unlink): only the open descriptor keeps it, so it
 * disappears on every exit path — normal return, error, SIGINT/SIGTERM or a crash — without a
 * handler. Records are the raw words of a ciphertext (no bit packing: written and read once,
 * speed over size), written with pwrite at offsets handed out under a lock, so threads spill
 * concurrently. Each record's BLAKE2b-128 is kept in memory and checked on every read: a
 * scratch file corrupted or truncated on disk is reported (PPNN_ERR_IO), never computed on. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hnn/inner.h"

#define TAG_BYTES 16

typedef struct {
    uint64_t offset, words;
    size_t level, size;
    double scale;
    uint8_t tag[TAG_BYTES];
    int present;
} spill_rec;

struct hnn_spill {
    int fd;
    const ckks_params *params;
    size_t count;
    spill_rec *rec;
    uint64_t end; /* next free offset */
    uint64_t written;
    char dir[512];
};

static ppnn_status create_unlinked(int *fd, const char *dir)
{
#ifdef O_TMPFILE
    *fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (*fd >= 0)
        return PPNN_OK;
    if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
        return ppnn_fail(PPNN_ERR_IO, "scratch directory %s: cannot create a file: %s", dir,
                         strerror(errno));
#endif
    char path[600];
    snprintf(path, sizeof path, "%s/ppnn-scratch.XXXXXX", dir);
    *fd = mkstemp(path);
    if (*fd < 0)
        return ppnn_fail(PPNN_ERR_IO, "scratch directory %s: cannot create a file: %s", dir,
                         strerror(errno));
    unlink(path);
    return PPNN_OK;
}

ppnn_status _hnn_spill_open(hnn_spill **out, const char *dir, size_t count,
                            const ckks_params *params)
{
    *out = NULL;
    if (sodium_init() < 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libsodium failed to initialise");
    if (!dir || !*dir) {
        dir = getenv("TMPDIR");
        if (!dir || !*dir)
            dir = "/tmp";
    }
    hnn_spill *sp = calloc(1, sizeof *sp);
    spill_rec *rec = calloc(count ? count : 1, sizeof *rec);
    if (!sp || !rec) {
        free(sp), free(rec);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the scratch index");
    }
    ppnn_status st = create_unlinked(&sp->fd, dir);
    if (st) {
        free(sp), free(rec);
        return st;
    }
    sp->params = params;
    sp->count = count;
    sp->rec = rec;
    snprintf(sp->dir, sizeof sp->dir, "%s", dir);
    *out = sp;
    return PPNN_OK;
}

void _hnn_spill_close(hnn_spill *sp)
{
    if (!sp)
        return;
    close(sp->fd);
    free(sp->rec);
    free(sp);
}

uint64_t _hnn_spill_written(const hnn_spill *sp) { return sp ? sp->written : 0; }

static void tag_of(uint8_t tag[TAG_BYTES], const uint64_t *w, uint64_t words)
{
    crypto_generichash(tag, TAG_BYTES, (const uint8_t *)w, words * sizeof *w, NULL, 0);
}

ppnn_status _hnn_spill_put(hnn_spill *sp, size_t i, const ckks_ciphertext *ct)
{
    uint64_t words = (uint64_t)ct->size * (ct->level + 1) * ct->params->n, off;
#pragma omp critical(hnn_spill_alloc)
    {
        off = sp->end;
        sp->end += words * sizeof(uint64_t);
        sp->written += words * sizeof(uint64_t);
    }
    const uint8_t *p = (const uint8_t *)ct->data;
    size_t left = words * sizeof(uint64_t);
    uint64_t pos = off;
    while (left) {
        ssize_t w = pwrite(sp->fd, p, left, (off_t)pos);
        if (w <= 0)
            return ppnn_fail(PPNN_ERR_IO, "scratch directory %s: write failed: %s", sp->dir,
                             w < 0 ? strerror(errno) : "no space left");
        p += w, pos += (uint64_t)w, left -= (size_t)w;
    }
    spill_rec *r = &sp->rec[i];
    r->offset = off, r->words = words, r->level = ct->level, r->size = ct->size;
    r->scale = ct->scale;
    tag_of(r->tag, ct->data, words);
    r->present = 1;
    return PPNN_OK;
}

ppnn_status _hnn_spill_get(hnn_spill *sp, size_t i, ckks_ciphertext *ct)
{
    const spill_rec *r = &sp->rec[i];
    if (!r->present)
        return ppnn_fail(PPNN_ERR_IO, "scratch: ciphertext %zu was never written", i);
    ppnn_status st = ckks_ct_prepare(ct, sp->params, r->level, r->size, r->scale);
    if (st)
        return st;
    uint8_t *p = (uint8_t *)ct->data;
    size_t left = r->words * sizeof(uint64_t);
    uint64_t pos = r->offset;
    while (left) {
        ssize_t g = pread(sp->fd, p, left, (off_t)pos);
        if (g <= 0)
            return ppnn_fail(PPNN_ERR_IO, "scratch directory %s: read failed: %s", sp->dir,
                             g < 0 ? strerror(errno) : "file truncated");
        p += g, pos += (uint64_t)g, left -= (size_t)g;
    }
    uint8_t tag[TAG_BYTES];
    tag_of(tag, ct->data, r->words);
    if (sodium_memcmp(tag, r->tag, TAG_BYTES) != 0)
        return ppnn_fail(PPNN_ERR_IO, "scratch directory %s: ciphertext %zu corrupted on disk "
                         "(checksum mismatch)", sp->dir, i);
    return PPNN_OK;
}

int _hnn_spill_fd(const hnn_spill *sp) { return sp->fd; }
