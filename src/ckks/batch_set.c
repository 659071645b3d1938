/* Multi-batch files and streamed batch reading (ppnn/ckks_io.h; layout in
 * docs/file-formats.md).
 *
 * A multi-batch file is a "BSET" index frame followed by its batches, each an ordinary "CBAT"
 * frame (header, payload, own BLAKE2b checksum) back to back. A file holding one batch is a
 * plain CBAT file, so single batches stay readable by ckks_batch_load.
 *
 * Opening a set reads only frame headers (the index frame whole): each batch's extent is
 * checked against the file size, so a file truncated in the middle is refused naming the batch
 * before any work. A batch reader then verifies that batch's checksum by streaming it once
 * (ppnn_frame_verify_fd, 1 MiB at a time), indexes its ciphertext records (headers only), and
 * serves ciphertexts on demand with pread — at a requested level, reading and unpacking only
 * the rows of that level (a seeded c1 is re-expanded at that level), so an input is never held
 * above the level the plan uses. Every record header read later is checked again against the
 * index and every coefficient against its prime (the file could change after verification;
 * a changed file is then refused, never decrypted to garbage by this process). */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckks/inner.h"

#define KIND_SET "BSET"
/* The index frame: params block, key id, u32 role, u32 packing, u32 shape[3], u32 batches,
 * u64 total images, u64 images[batches]. */
#define SET_FIXED_BYTES (4 + 4 + 12 + 4 + 8)

typedef struct {
    uint64_t offset, payload; /* frame offset in the file, payload length */
    uint64_t images;
} set_entry;

struct ckks_batch_set {
    int fd;
    char *path;
    const ckks_params *params;
    ckks_batch_info info; /* template: key id, packing, shape, role (images: total) */
    size_t nbatches;
    set_entry *e;
    int trusted; /* ckks_batch_set_trust: skip re-hashing a frame whose checksum is `sum` */
    uint8_t sum[PPNN_FILE_TRAILER_BYTES];
};

static ppnn_status pread_all(int fd, void *buf, size_t len, uint64_t off, const char *path,
                             const char *what)
{
    uint8_t *p = buf;
    while (len) {
        ssize_t g = pread(fd, p, len, (off_t)off);
        if (g < 0)
            return ppnn_fail(PPNN_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (g == 0)
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated %s", path, what);
        p += g, off += (uint64_t)g, len -= (size_t)g;
    }
    return PPNN_OK;
}

/* Reads the params block + key id + batch info of the CBAT payload starting at `off`. */
static ppnn_status read_batch_head(ckks_batch_info *info, uint64_t *count, uint64_t *body_off,
                                   int fd, uint64_t off, uint64_t payload,
                                   const uint8_t *param_id, ckks_params **params, int *created,
                                   const char *path)
{
    /* params block <= 4+4+4*48+4+8+8*48+8 bytes; with key id and batch info under 1 KiB. */
    uint8_t head[1024];
    size_t len = payload < sizeof head ? (size_t)payload : sizeof head;
    ppnn_status st = pread_all(fd, head, len, off, path, "batch header");
    if (st)
        return st;
    ppnn_reader r;
    ppnn_reader_init(&r, head, len, path);
    if ((st = ckks_io_read_params(&r, param_id, params, created, path, NULL)))
        return st;
    if ((st = ppnn_read_bytes(&r, info->key_id, CKKS_KEY_ID_BYTES)) ||
        (st = ppnn_read_u32(&r, &info->packing)) || (st = ppnn_read_u64(&r, &info->images)))
        return st;
    for (int k = 0; k < 3 && !st; k++)
        st = ppnn_read_u32(&r, &info->shape[k]);
    if (!st)
        st = ppnn_read_u32(&r, &info->role);
    if (!st)
        st = ppnn_read_u64(&r, count);
    if (st)
        return st;
    if (info->packing != CKKS_PACKING_ELEMENT && info->packing != CKKS_PACKING_CHANNEL)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: unknown packing %u", path, info->packing);
    if (info->role != CKKS_BATCH_INPUT && info->role != CKKS_BATCH_LOGITS)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: unknown batch role %u", path, info->role);
    const ckks_params *p = *params;
    if (info->images == 0 || (info->packing == CKKS_PACKING_ELEMENT && info->images > p->slots))
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %llu images do not fit %zu slots", path,
                         (unsigned long long)info->images, p->slots);
    *body_off = off + r.pos;
    return PPNN_OK;
}

static ppnn_status frame_at(uint64_t *payload, uint8_t param_id[CKKS_PARAM_ID_BYTES], int fd,
                            uint64_t off, uint64_t size, const char *path, const char *kind,
                            size_t b, size_t nb)
{
    uint8_t h[PPNN_FILE_HEADER_BYTES];
    if (off + PPNN_FILE_HEADER_BYTES > size)
        return nb ? ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated in batch %zu of %zu (the file "
                              "ends before its header)", path, b + 1, nb)
                  : ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file", path);
    ppnn_status st = pread_all(fd, h, sizeof h, off, path, "header");
    if (!st)
        st = ppnn_frame_header_parse(payload, NULL, param_id, h, path, kind, CKKS_FILE_VERSION);
    if (st)
        return st;
    if (*payload > size || off + PPNN_FILE_HEADER_BYTES + *payload + PPNN_FILE_TRAILER_BYTES > size)
        return nb ? ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated in batch %zu of %zu (%llu bytes "
                              "missing)", path, b + 1, nb,
                              (unsigned long long)(off + PPNN_FILE_HEADER_BYTES + *payload +
                                                   PPNN_FILE_TRAILER_BYTES - size))
                  : ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file", path);
    return PPNN_OK;
}

void ckks_batch_set_trust(ckks_batch_set *s, const uint8_t sum[PPNN_FILE_TRAILER_BYTES])
{
    s->trusted = 1;
    memcpy(s->sum, sum, sizeof s->sum);
}

void ckks_batch_set_close(ckks_batch_set *s)
{
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s->path);
    free(s->e);
    free(s);
}

/* Parses the BSET index frame (verified whole: it is small). */
static ppnn_status read_index(ckks_batch_set *s, ckks_params **params, int *created,
                              uint64_t payload, const uint8_t *param_id)
{
    if (payload > ((uint64_t)1 << 26))
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: index of %llu bytes is implausible", s->path,
                         (unsigned long long)payload);
    ppnn_status st = ppnn_frame_verify_fd(s->fd, 0, payload, s->path);
    uint8_t *buf = st ? NULL : malloc(payload ? payload : 1);
    if (!st && !buf)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st)
        st = pread_all(s->fd, buf, payload, PPNN_FILE_HEADER_BYTES, s->path, "index");
    ppnn_reader r;
    uint32_t nb = 0;
    uint64_t total = 0;
    ckks_batch_info *in = &s->info;
    if (!st) {
        ppnn_reader_init(&r, buf, payload, s->path);
        st = ckks_io_read_params(&r, param_id, params, created, s->path, NULL);
    }
    if (!st)
        st = ppnn_read_bytes(&r, in->key_id, CKKS_KEY_ID_BYTES);
    if (!st)
        st = ppnn_read_u32(&r, &in->role);
    if (!st)
        st = ppnn_read_u32(&r, &in->packing);
    for (int k = 0; k < 3 && !st; k++)
        st = ppnn_read_u32(&r, &in->shape[k]);
    if (!st)
        st = ppnn_read_u32(&r, &nb);
    if (!st)
        st = ppnn_read_u64(&r, &total);
    if (!st && (nb == 0 || nb > (r.len - r.pos) / 8))
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: invalid batch count %u", s->path, nb);
    if (!st && !(s->e = calloc(nb, sizeof *s->e)))
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    uint64_t sum = 0;
    for (uint32_t b = 0; b < nb && !st; b++) {
        st = ppnn_read_u64(&r, &s->e[b].images);
        if (!st && (s->e[b].images == 0 || s->e[b].images > (*params)->slots))
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: batch %u of %u holds %llu images", s->path,
                           b + 1, nb, (unsigned long long)s->e[b].images);
        sum += st ? 0 : s->e[b].images;
    }
    if (!st)
        st = ppnn_reader_end(&r);
    if (!st && sum != total)
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: batch sizes add up to %llu, index says %llu",
                       s->path, (unsigned long long)sum, (unsigned long long)total);
    s->nbatches = nb;
    in->images = total;
    free(buf);
    return st;
}

ppnn_status ckks_batch_set_open(ckks_batch_set **out, ckks_params **params, const char *path)
{
    *out = NULL;
    ckks_batch_set *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    struct stat sb;
    int created = 0;
    /* The path policy (paths.c): regular files only, a FIFO is refused instead of blocking. */
    ppnn_status st = ppnn_path_open_input(&s->fd, path);
    if (st)
        s->fd = -1;
    else if (fstat(s->fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        st = ppnn_fail(PPNN_ERR_IO, "%s: not a regular file", path);
    uint64_t size = st ? 0 : (uint64_t)sb.st_size, payload = 0, off = 0;
    uint8_t h[PPNN_FILE_HEADER_BYTES], pid[CKKS_PARAM_ID_BYTES];
    if (!st && size < PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES)
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file (%llu bytes)", path,
                       (unsigned long long)size);
    if (!st)
        st = pread_all(s->fd, h, sizeof h, 0, path, "header");
    int single = !st && memcmp(h + 8, KIND_SET, 4) != 0;
    if (!st && single) {
        /* A plain batch file: one batch, its info from its own header. */
        st = frame_at(&payload, pid, s->fd, 0, size, path, CKKS_KIND_BATCH, 0, 0);
        if (!st && PPNN_FILE_HEADER_BYTES + payload + PPNN_FILE_TRAILER_BYTES != size)
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: trailing data after the batch", path);
        uint64_t count, body;
        if (!st)
            st = read_batch_head(&s->info, &count, &body, s->fd, PPNN_FILE_HEADER_BYTES, payload,
                                 pid, params, &created, path);
        if (!st && !(s->e = calloc(1, sizeof *s->e)))
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        if (!st) {
            s->nbatches = 1;
            s->e[0] = (set_entry){0, payload, s->info.images};
        }
    } else if (!st) {
        st = frame_at(&payload, pid, s->fd, 0, size, path, KIND_SET, 0, 0);
        if (!st)
            st = read_index(s, params, &created, payload, pid);
        off = PPNN_FILE_HEADER_BYTES + payload + PPNN_FILE_TRAILER_BYTES;
        for (size_t b = 0; b < s->nbatches && !st; b++) {
            uint8_t bid[CKKS_PARAM_ID_BYTES];
            st = frame_at(&s->e[b].payload, bid, s->fd, off, size, path, CKKS_KIND_BATCH, b,
                          s->nbatches);
            if (!st && memcmp(bid, pid, sizeof pid) != 0)
                st = ppnn_fail(PPNN_ERR_FORMAT, "%s: batch %zu of %zu has other parameters",
                               path, b + 1, s->nbatches);
            s->e[b].offset = off;
            off += PPNN_FILE_HEADER_BYTES + s->e[b].payload + PPNN_FILE_TRAILER_BYTES;
        }
        if (!st && off != size)
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: trailing data after batch %zu", path,
                           s->nbatches);
    }
    if (st) {
        if (created) {
            ckks_params_free(*params);
            *params = NULL;
        }
        ckks_batch_set_close(s);
        return st;
    }
    s->params = *params;
    *out = s;
    return PPNN_OK;
}

size_t ckks_batch_set_batches(const ckks_batch_set *s) { return s->nbatches; }

void ckks_batch_set_info(ckks_batch_info *info, const ckks_batch_set *s, size_t b)
{
    *info = s->info;
    if (b < s->nbatches)
        info->images = s->e[b].images;
}

/* ---- one batch, streamed -------------------------------------------------------------------- */

typedef struct {
    uint64_t data; /* offset of the seed (seeded) or of c0 */
    uint32_t level, size, seeded;
    double scale;
} ct_rec;

/* A checksum verification running on a thread of its own (ckks_batch_reader_open_async). */
typedef struct {
    pthread_t th;
    int fd;
    uint64_t offset, payload;
    char name[600];
    volatile int stop;
    ppnn_status st; /* written by the thread, read after the join */
    char msg[512];
} verify_job;

struct ckks_batch_reader {
    const ckks_batch_set *set;
    size_t batch, count;
    ct_rec *rec;
    verify_job *vj; /* non-NULL: verification started and not yet joined */
    ppnn_status verdict;
    char verdict_msg[512];
};

static void *verify_main(void *arg)
{
    verify_job *j = arg;
    j->st = ppnn_frame_verify_fd_stop(j->fd, j->offset, j->payload, j->name, &j->stop);
    if (j->st)
        snprintf(j->msg, sizeof j->msg, "%s", ppnn_last_error());
    return NULL;
}

/* Waits for the verification thread and keeps its verdict. */
static void verify_join(ckks_batch_reader *r)
{
    if (!r->vj)
        return;
    pthread_join(r->vj->th, NULL);
    r->verdict = r->vj->st;
    memcpy(r->verdict_msg, r->vj->msg, sizeof r->verdict_msg);
    free(r->vj);
    r->vj = NULL;
}

void ckks_batch_reader_close(ckks_batch_reader *r)
{
    if (!r)
        return;
    if (r->vj) {
        r->vj->stop = 1;
        verify_join(r);
    }
    free(r->rec);
    free(r);
}

ppnn_status ckks_batch_reader_verified(ckks_batch_reader *r)
{
    verify_join(r);
    return r->verdict ? ppnn_fail(r->verdict, "%s", r->verdict_msg) : PPNN_OK;
}

static ppnn_status index_batch(ckks_batch_reader **out, const ckks_batch_set *s, size_t b,
                               const char *name);

static ppnn_status reader_open(ckks_batch_reader **out, const ckks_batch_set *s, size_t b,
                               int async)
{
    *out = NULL;
    if (b >= s->nbatches)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: no batch %zu", s->path, b + 1);
    const set_entry *e = &s->e[b];
    char name[600];
    if (s->nbatches > 1)
        snprintf(name, sizeof name, "%s (batch %zu of %zu)", s->path, b + 1, s->nbatches);
    else
        snprintf(name, sizeof name, "%s", s->path);
    uint8_t stored[PPNN_FILE_TRAILER_BYTES];
    /* A trusted checksum (ckks_batch_set_trust) stands for the hash only while the frame still
     * carries it; otherwise (or untrusted) the frame is hashed in full. */
    int skip = s->trusted && s->nbatches == 1 &&
               !pread_all(s->fd, stored, sizeof stored,
                          e->offset + PPNN_FILE_HEADER_BYTES + e->payload, name, "checksum") &&
               sodium_memcmp(stored, s->sum, sizeof stored) == 0;
    verify_job *vj = async && !skip ? calloc(1, sizeof *vj) : NULL;
    if (vj) {
        vj->fd = s->fd, vj->offset = e->offset, vj->payload = e->payload;
        snprintf(vj->name, sizeof vj->name, "%s", name);
        if (pthread_create(&vj->th, NULL, verify_main, vj) != 0) {
            free(vj); /* no thread: verify here instead */
            vj = NULL;
        }
    }
    ppnn_status st = vj || skip ? PPNN_OK
                                : ppnn_frame_verify_fd(s->fd, e->offset, e->payload, name);
    ckks_batch_reader *r = NULL;
    if (!st)
        st = index_batch(&r, s, b, name);
    if (st && vj) {
        /* A corrupted file is reported by its checksum, whichever check saw the damage
         * first (as when the verification runs before the indexing). */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", ppnn_last_error());
        ckks_batch_reader tmp = {.vj = vj};
        if (ckks_batch_reader_verified(&tmp) != PPNN_OK)
            return tmp.verdict;
        return ppnn_fail(st, "%s", msg);
    }
    if (st)
        return st;
    r->vj = vj;
    *out = r;
    return PPNN_OK;
}

ppnn_status ckks_batch_reader_open(ckks_batch_reader **out, const ckks_batch_set *s, size_t b)
{
    return reader_open(out, s, b, 0);
}

ppnn_status ckks_batch_reader_open_async(ckks_batch_reader **out, const ckks_batch_set *s,
                                         size_t b)
{
    return reader_open(out, s, b, 1);
}

/* Indexes batch b's ciphertext records (headers only). */
static ppnn_status index_batch(ckks_batch_reader **out, const ckks_batch_set *s, size_t b,
                               const char *name)
{
    const set_entry *e = &s->e[b];
    ppnn_status st = PPNN_OK;
    ckks_batch_info info;
    uint64_t count, pos;
    ckks_params *prm = (ckks_params *)s->params;
    int created = 0;
    const uint64_t start = e->offset + PPNN_FILE_HEADER_BYTES, end = start + e->payload;
    if ((st = read_batch_head(&info, &count, &pos, s->fd, start, e->payload, s->params->id,
                              &prm, &created, name)))
        return st;
    if (memcmp(info.key_id, s->info.key_id, CKKS_KEY_ID_BYTES) != 0 ||
        info.packing != s->info.packing || info.role != s->info.role ||
        memcmp(info.shape, s->info.shape, sizeof info.shape) != 0 || info.images != e->images)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: batch header disagrees with the index", name);
    const ckks_params *p = s->params;
    const size_t min_ct = CKKS_CT_HEAD_BYTES + CKKS_SEED_BYTES + ckks_io_rows_bytes(p, 0, 1);
    if (count == 0 || count > (end - pos) / min_ct)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: invalid ciphertext count %llu", name,
                         (unsigned long long)count);
    ckks_batch_reader *r = calloc(1, sizeof *r);
    if (!r || !(r->rec = calloc(count, sizeof *r->rec))) {
        free(r);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    r->set = s, r->batch = b, r->count = count;
    for (size_t i = 0; i < count && !st; i++) {
        uint8_t h[CKKS_CT_HEAD_BYTES];
        if (end - pos < sizeof h) {
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated at ciphertext %zu", name, i);
            break;
        }
        if ((st = pread_all(s->fd, h, sizeof h, pos, name, "ciphertext header")))
            break;
        ppnn_reader hr;
        ppnn_reader_init(&hr, h, sizeof h, name);
        ct_rec *c = &r->rec[i];
        if ((st = ppnn_read_u32(&hr, &c->level)) || (st = ppnn_read_u32(&hr, &c->size)) ||
            (st = ppnn_read_f64(&hr, &c->scale)) || (st = ppnn_read_u32(&hr, &c->seeded)))
            break;
        if (c->level >= p->nq || c->size < 1 || c->size > 3 || c->seeded > 1 ||
            (c->seeded && c->size != 2)) {
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: ciphertext %zu has an invalid header", name, i);
            break;
        }
        if (!ckks_io_ct_scale_ok(p, info.role, c->scale)) {
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: ciphertext %zu has scale %g (2^%.2f) but these "
                           "parameters %s 2^%.2f", name, i, c->scale, log2(fabs(c->scale)),
                           info.role == CKKS_BATCH_INPUT ? "encrypt inputs at"
                                                         : "return results at",
                           log2(p->scale));
            break;
        }
        /* Every ciphertext of a batch went through the same steps: one scale (levels may
         * differ: the executor brings every input to the plan's level). */
        if (i > 0 && c->scale != r->rec[0].scale) {
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: ciphertext %zu has scale 2^%.4f, ciphertext 0 "
                           "2^%.4f (a batch shares one scale)", name, i, log2(c->scale),
                           log2(r->rec[0].scale));
            break;
        }
        c->data = pos + sizeof h;
        uint64_t len = sizeof h + (c->seeded ? CKKS_SEED_BYTES : 0) +
                       (uint64_t)(c->seeded ? 1 : c->size) * ckks_io_rows_bytes(p, 0, c->level + 1);
        if (len > end - pos) {
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated at ciphertext %zu", name, i);
            break;
        }
        pos += len;
    }
    if (!st && pos != end)
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: %llu unexpected trailing payload bytes", name,
                       (unsigned long long)(end - pos));
    if (st) {
        ckks_batch_reader_close(r);
        return st;
    }
    *out = r;
    return PPNN_OK;
}

size_t ckks_batch_reader_count(const ckks_batch_reader *r) { return r->count; }

void ckks_batch_reader_meta(const ckks_batch_reader *r, size_t i, size_t *level, size_t *size,
                            double *scale)
{
    const ct_rec *c = &r->rec[i];
    *level = c->level, *size = c->size, *scale = c->scale;
}

ppnn_status ckks_batch_reader_get(ckks_ciphertext *ct, const ckks_batch_reader *r, size_t i,
                                  size_t level)
{
    const ckks_batch_set *s = r->set;
    const ckks_params *p = s->params;
    const ct_rec *c = &r->rec[i];
    if (level > c->level)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: ciphertext %zu is at level %u, below %zu", s->path,
                         i, c->level, level);
    size_t want = ckks_io_rows_bytes(p, 0, level + 1), full = ckks_io_rows_bytes(p, 0, c->level + 1);
    uint8_t head[CKKS_CT_HEAD_BYTES];
    ppnn_status st = pread_all(s->fd, head, sizeof head, c->data - sizeof head, s->path,
                               "ciphertext");
    ppnn_reader hr;
    uint32_t lv, sz, sd;
    double sc;
    ppnn_reader_init(&hr, head, sizeof head, s->path);
    if (!st && ((st = ppnn_read_u32(&hr, &lv)) || (st = ppnn_read_u32(&hr, &sz)) ||
                (st = ppnn_read_f64(&hr, &sc)) || (st = ppnn_read_u32(&hr, &sd))))
        return st;
    if (st)
        return st;
    if (lv != c->level || sz != c->size || sd != c->seeded || sc != c->scale)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: ciphertext %zu changed after verification",
                         s->path, i);
    if ((st = ckks_ct_prepare(ct, p, level, c->size, c->scale)))
        return st;
    uint64_t off = c->data;
    uint8_t seed[CKKS_SEED_BYTES];
    if (c->seeded) {
        st = pread_all(s->fd, seed, sizeof seed, off, s->path, "ciphertext");
        off += sizeof seed;
    }
    /* The packed bytes of component k (want <= 8 (level+1) N) are read into the last
     * component's rows and unpacked from there, so no buffer is allocated (and faulted in)
     * per ciphertext; only the last component of an unseeded ciphertext needs one. */
    size_t comps = c->seeded ? 1 : c->size;
    uint8_t *buf = NULL;
    for (size_t k = 0; k < comps && !st; k++) {
        uint8_t *dst = (uint8_t *)ckks_ct_poly(ct, c->size - 1, 0);
        if (k == c->size - 1) {
            if (!(buf = malloc(want ? want : 1)))
                st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
            dst = buf;
        }
        if (!st)
            st = pread_all(s->fd, dst, want, off + k * full, s->path, "ciphertext");
        ppnn_reader rr;
        ppnn_reader_init(&rr, dst, want, s->path);
        if (!st)
            st = ckks_io_get_rows(ckks_ct_poly(ct, k, 0), &rr, p, 0, level + 1);
    }
    free(buf);
    if (st)
        return st;
    if (c->seeded) {
        /* c_1 from the seed, which the ciphertext keeps: a copy sent on (src/dist/) or
         * written again travels as (c_0, seed), half the bytes. */
        ckks_expand_seed(ckks_ct_poly(ct, 1, 0), p, level, seed);
        ct->has_seed = 1;
        memcpy(ct->seed, seed, sizeof seed);
    }
    return PPNN_OK;
}

ppnn_status ckks_batch_set_checksum(uint8_t out[PPNN_FILE_TRAILER_BYTES],
                                    const ckks_batch_set *s, size_t b)
{
    const set_entry *e = &s->e[b];
    return pread_all(s->fd, out, PPNN_FILE_TRAILER_BYTES,
                     e->offset + PPNN_FILE_HEADER_BYTES + e->payload, s->path, "checksum");
}

/* ---- writer --------------------------------------------------------------------------------- */

struct ckks_batch_set_writer {
    ppnn_wfile w;
    const ckks_params *params;
    ckks_batch_info info;
    size_t nbatches, done;
    uint64_t *images;
    int single; /* one batch: a plain CBAT file */
    /* A batch being streamed (ckks_batch_set_begin): its frame, records expected and put, and
     * the header every record must carry (the shape declared by `like`). */
    int streaming;
    ppnn_file_writer fw;
    size_t count, put, rec_len;
    uint8_t rec_head[CKKS_CT_HEAD_BYTES];
};

void ckks_batch_set_abort(ckks_batch_set_writer *w)
{
    if (!w)
        return;
    if (w->streaming)
        ppnn_frame_abort(&w->fw);
    ppnn_wfile_abort(&w->w);
    free(w->images);
    free(w);
}

ppnn_status ckks_batch_set_create(ckks_batch_set_writer **out, const char *path,
                                  const ckks_params *p, const ckks_batch_info *info,
                                  size_t nbatches, const uint64_t *images)
{
    *out = NULL;
    if (nbatches == 0 || nbatches > UINT32_MAX)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: %zu batches", path, nbatches);
    ckks_batch_set_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->images = malloc(nbatches * sizeof *w->images))) {
        free(w);
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    }
    memcpy(w->images, images, nbatches * sizeof *images);
    w->params = p, w->info = *info, w->nbatches = nbatches, w->single = nbatches == 1;
    ppnn_status st = ppnn_wfile_open_kind(&w->w, path, 0644, CKKS_FILE_KIND_BATCH);
    if (st) {
        free(w->images), free(w);
        return st;
    }
    if (!w->single) {
        uint64_t total = 0;
        for (size_t b = 0; b < nbatches; b++)
            total += images[b];
        size_t len = ckks_io_params_bytes(p) + CKKS_KEY_ID_BYTES + SET_FIXED_BYTES + 8 * nbatches;
        uint8_t *buf = malloc(len);
        ppnn_file_writer fw;
        if (!buf)
            st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
        if (!st) {
            size_t o = ckks_io_params_bytes(p);
            ckks_io_put_params(buf, p);
            memcpy(buf + o, info->key_id, CKKS_KEY_ID_BYTES), o += CKKS_KEY_ID_BYTES;
            ppnn_put_u32(buf + o, info->role), o += 4;
            ppnn_put_u32(buf + o, info->packing), o += 4;
            for (int k = 0; k < 3; k++)
                ppnn_put_u32(buf + o, info->shape[k]), o += 4;
            ppnn_put_u32(buf + o, (uint32_t)nbatches), o += 4;
            ppnn_put_u64(buf + o, total), o += 8;
            for (size_t b = 0; b < nbatches; b++)
                ppnn_put_u64(buf + o, images[b]), o += 8;
            st = ppnn_frame_begin(&fw, &w->w, KIND_SET, CKKS_FILE_VERSION, p->id, len);
            if (!st && (st = ppnn_file_put(&fw, buf, len)))
                ppnn_frame_abort(&fw);
            if (!st)
                st = ppnn_frame_end(&fw);
        }
        free(buf);
    }
    if (st) {
        ckks_batch_set_abort(w);
        return st;
    }
    *out = w;
    return PPNN_OK;
}

ppnn_status ckks_batch_set_append(ckks_batch_set_writer *w, const ckks_ciphertext *cts,
                                  size_t count)
{
    ppnn_status st = ckks_io_check_batch(cts, count, w->w.path);
    if (st)
        return st;
    if (w->streaming)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: a batch is already being written", w->w.path);
    if (w->done == w->nbatches)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: all %zu batches already written", w->w.path,
                         w->nbatches);
    if (!ckks_params_same(cts[0].params, w->params))
        return ppnn_fail(PPNN_ERR_MISMATCH, "%s: batch of other parameters", w->w.path);
    ckks_batch_info info = w->info;
    info.images = w->images[w->done];
    ppnn_file_writer fw;
    st = ppnn_frame_begin(&fw, &w->w, CKKS_KIND_BATCH, CKKS_FILE_VERSION, w->params->id,
                          ckks_io_batch_payload_bytes(cts, count));
    if (st)
        return st;
    if ((st = ckks_io_put_batch(&fw, cts, count, &info))) {
        ppnn_frame_abort(&fw);
        return st;
    }
    if ((st = ppnn_frame_end(&fw)))
        return st;
    w->done++;
    return PPNN_OK;
}

ppnn_status ckks_batch_set_begin(ckks_batch_set_writer *w, const ckks_ciphertext *like,
                                 size_t count)
{
    if (w->streaming)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: a batch is already being written", w->w.path);
    if (count == 0)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: no ciphertexts to write", w->w.path);
    if (w->done == w->nbatches)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: all %zu batches already written", w->w.path,
                         w->nbatches);
    if (!ckks_params_same(like->params, w->params))
        return ppnn_fail(PPNN_ERR_MISMATCH, "%s: batch of other parameters", w->w.path);
    const size_t head = ckks_io_batch_head_bytes(w->params), rec = ckks_batch_record_bytes(like);
    uint8_t *buf = malloc(head);
    if (!buf)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    ckks_io_record_head(w->rec_head, like); /* what every record must start with */
    ckks_batch_info info = w->info;
    info.images = w->images[w->done];
    ppnn_status st = ppnn_frame_begin(&w->fw, &w->w, CKKS_KIND_BATCH, CKKS_FILE_VERSION,
                                      w->params->id, head + (uint64_t)count * rec);
    if (!st && (st = ckks_io_put_batch_head(&w->fw, buf, w->params, count, &info)))
        ppnn_frame_abort(&w->fw);
    free(buf);
    if (st)
        return st;
    w->streaming = 1, w->count = count, w->put = 0, w->rec_len = rec;
    return PPNN_OK;
}

ppnn_status ckks_batch_set_put_record(ckks_batch_set_writer *w, const uint8_t *rec, size_t len)
{
    if (!w->streaming || w->put == w->count)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: record outside a begun batch (%zu of %zu put)",
                         w->w.path, w->put, w->count);
    if (len != w->rec_len || memcmp(rec, w->rec_head, sizeof w->rec_head) != 0)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: ciphertext %zu differs in shape from the batch's",
                         w->w.path, w->put);
    ppnn_status st = ppnn_file_put(&w->fw, rec, len);
    if (!st)
        w->put++;
    return st;
}

ppnn_status ckks_batch_set_end(ckks_batch_set_writer *w)
{
    if (!w->streaming || w->put != w->count)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: batch ended after %zu of %zu ciphertexts",
                         w->w.path, w->put, w->streaming ? w->count : 0);
    w->streaming = 0;
    ppnn_status st = ppnn_frame_end(&w->fw);
    if (!st)
        w->done++;
    return st;
}

ppnn_status ckks_batch_set_finish(ckks_batch_set_writer *w)
{
    if (w->done != w->nbatches || w->streaming) {
        ppnn_status st = ppnn_fail(PPNN_ERR_PARAM, "%s: %zu of %zu batches written", w->w.path,
                                   w->done, w->nbatches);
        ckks_batch_set_abort(w);
        return st;
    }
    ppnn_status st = ppnn_wfile_commit(&w->w);
    free(w->images);
    free(w);
    return st;
}
