/* Multi-batch files and streamed batch reading (ppnn/ckks_io.h; layout in
 * docs/file-formats.md).
 *
 * A multi-batch file is a "BSET" index frame followed by its batches, each an ordinary "CBAT"
 * chunked frame (batch_file.c) back to back. A file holding one batch is a plain CBAT file, so
 * single batches stay readable by ckks_batch_load.
 *
 * Opening a set reads only frame headers (the index frame whole): each batch's extent is
 * checked against the file size, so a file truncated in the middle is refused naming the batch
 * before any work. A batch reader then reads the batch's metadata, chunk lengths and digest
 * table (a few KB) and verifies them against the frame's top hash, and serves ciphertexts on
 * demand with pread: ciphertext i's body is read whole, verified against its digest, and only
 * then unpacked at the requested level (a seeded c1 is re-expanded at that level), so nothing
 * is computed on unverified bytes, every reading thread verifies what it reads, and a reader
 * (an MPI rank) that reads a share of the batch hashes only that share. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
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

/* Opens the chunked frame of a batch (its top hash verified) and parses its metadata. */
static ppnn_status open_chunks(ppnn_chunked *ch, ckks_batch_info *info, ckks_io_rec **recs,
                               int fd, uint64_t off, uint64_t payload, const uint8_t *param_id,
                               ckks_params **params, int *created, const char *name)
{
    ppnn_status st = ppnn_chunked_open(ch, fd, off, payload, name, CKKS_CHUNK_NOUN);
    if (st)
        return st;
    if ((st = ckks_io_read_batch_meta(info, recs, ch, param_id, params, created, name)))
        ppnn_chunked_free(ch);
    return st;
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
    uint32_t version = 0;
    ppnn_status st = pread_all(fd, h, sizeof h, off, path, "header");
    if (!st)
        st = ppnn_frame_header_parse(payload, &version, param_id, h, path, kind, UINT32_MAX);
    if (!st)
        st = ckks_io_batch_version(version, path);
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
        ppnn_chunked ch;
        ckks_io_rec *recs = NULL;
        if (!st && !(st = open_chunks(&ch, &s->info, &recs, s->fd, 0, payload, pid, params,
                                      &created, path))) {
            free(recs);
            ppnn_chunked_free(&ch);
        }
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

struct ckks_batch_reader {
    const ckks_batch_set *set;
    size_t batch;
    char name[600]; /* the path, with "(batch b of n)" in a multi-batch file */
    ppnn_chunked ch;
    ckks_io_rec *rec;
    int trusted; /* ckks_batch_set_trust matched: the bodies are not re-hashed */
};

void ckks_batch_reader_close(ckks_batch_reader *r)
{
    if (!r)
        return;
    ppnn_chunked_free(&r->ch);
    free(r->rec);
    free(r);
}

ppnn_status ckks_batch_reader_open(ckks_batch_reader **out, const ckks_batch_set *s, size_t b)
{
    *out = NULL;
    if (b >= s->nbatches)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: no batch %zu", s->path, b + 1);
    const set_entry *e = &s->e[b];
    ckks_batch_reader *r = calloc(1, sizeof *r);
    if (!r)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    r->set = s, r->batch = b;
    if (s->nbatches > 1)
        snprintf(r->name, sizeof r->name, "%s (batch %zu of %zu)", s->path, b + 1, s->nbatches);
    else
        snprintf(r->name, sizeof r->name, "%s", s->path);
    ckks_batch_info info;
    ckks_params *prm = (ckks_params *)s->params;
    int created = 0;
    ppnn_status st = open_chunks(&r->ch, &info, &r->rec, s->fd, e->offset, e->payload,
                                 s->params->id, &prm, &created, r->name);
    if (!st && (memcmp(info.key_id, s->info.key_id, CKKS_KEY_ID_BYTES) != 0 ||
                info.packing != s->info.packing || info.role != s->info.role ||
                memcmp(info.shape, s->info.shape, sizeof info.shape) != 0 ||
                info.images != e->images))
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: batch header disagrees with the index", r->name);
    if (st) {
        ckks_batch_reader_close(r);
        return st;
    }
    /* A trusted top hash (ckks_batch_set_trust) stands for the bodies' digests only while the
     * frame still carries it (the table it covers is then the one verified at upload). */
    r->trusted = s->trusted && s->nbatches == 1 &&
                 sodium_memcmp(r->ch.top, s->sum, sizeof s->sum) == 0;
    *out = r;
    return PPNN_OK;
}

size_t ckks_batch_reader_count(const ckks_batch_reader *r) { return r->ch.count; }

void ckks_batch_reader_meta(const ckks_batch_reader *r, size_t i, size_t *level, size_t *size,
                            double *scale)
{
    const ckks_io_rec *c = &r->rec[i];
    *level = c->level, *size = c->size, *scale = c->scale;
}

ppnn_status ckks_batch_reader_get(ckks_ciphertext *ct, const ckks_batch_reader *r, size_t i,
                                  size_t level)
{
    const ckks_batch_set *s = r->set;
    const ckks_params *p = s->params;
    const ckks_io_rec *c = &r->rec[i];
    if (level > c->level)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: ciphertext %zu is at level %u, below %zu", r->name,
                         i, c->level, level);
    ppnn_status st = ckks_ct_prepare(ct, p, level, c->size, c->scale);
    if (st)
        return st;
    /* The body is read whole (its digest covers every row) and verified before anything is
     * unpacked from it. A seeded body at its own level fits the rows of c_1, which the seed
     * then overwrites: no buffer is allocated (and faulted in) per ciphertext; otherwise it
     * needs one. */
    const size_t len = (size_t)r->ch.len[i];
    const size_t room = c->size == 2 ? (level + 1) * p->n * sizeof(uint64_t) : 0;
    uint8_t *buf = c->seeded && len <= room ? (uint8_t *)ckks_ct_poly(ct, 1, 0) : NULL, *own = NULL;
    if (!buf && !(buf = own = malloc(len ? len : 1)))
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    st = pread_all(s->fd, buf, len, r->ch.offset[i], r->name, "ciphertext");
    if (!st && !r->trusted)
        st = ppnn_chunk_verify(&r->ch, i, buf, r->name);
    if (!st)
        st = ckks_io_unpack_body(ct, buf, c, level, r->name);
    free(own);
    return st;
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
    /* A batch being streamed (ckks_batch_set_begin): its frame and chunk writer, the records
     * expected and put, and the body length every record must have (the shape of `like`). */
    int streaming;
    ppnn_file_writer fw;
    ppnn_chunk_writer cw;
    size_t count, put, rec_len;
};

void ckks_batch_set_abort(ckks_batch_set_writer *w)
{
    if (!w)
        return;
    if (w->streaming) {
        ppnn_chunk_writer_free(&w->cw);
        ppnn_frame_abort(&w->fw);
    }
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
            st = ppnn_frame_begin(&fw, &w->w, KIND_SET, CKKS_BATCH_FILE_VERSION, p->id, len);
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
    st = ppnn_frame_begin(&fw, &w->w, CKKS_KIND_BATCH, CKKS_BATCH_FILE_VERSION, w->params->id,
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
    const ckks_params *p = w->params;
    const size_t head = ckks_io_batch_head_bytes(p), mlen = ckks_io_batch_meta_bytes(p, count);
    const size_t rec = ckks_batch_record_bytes(like);
    uint8_t *meta = malloc(mlen);
    uint64_t *len = malloc(count * sizeof *len);
    ppnn_status st = meta && len ? PPNN_OK : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    ckks_batch_info info = w->info;
    info.images = w->images[w->done];
    if (!st) {
        /* Every record has the head of `like`. */
        ckks_io_batch_meta_head(meta, p, count, &info);
        for (size_t i = 0; i < count; i++) {
            ckks_io_record_head(meta + head + i * CKKS_CT_HEAD_BYTES, like);
            len[i] = rec;
        }
        st = ppnn_frame_begin(&w->fw, &w->w, CKKS_KIND_BATCH, CKKS_BATCH_FILE_VERSION, p->id,
                              ppnn_chunked_payload_bytes(count, mlen, (uint64_t)count * rec));
        if (!st && (st = ppnn_chunk_writer_begin(&w->cw, &w->fw, meta, mlen, count, len)))
            ppnn_frame_abort(&w->fw);
    }
    free(meta), free(len);
    if (st)
        return st;
    w->streaming = 1, w->count = count, w->put = 0, w->rec_len = rec;
    return PPNN_OK;
}

ppnn_status ckks_batch_set_put_record(ckks_batch_set_writer *w, const uint8_t *rec, size_t len,
                                      const uint8_t digest[PPNN_CHUNK_DIGEST_BYTES])
{
    if (!w->streaming || w->put == w->count)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: record outside a begun batch (%zu of %zu put)",
                         w->w.path, w->put, w->count);
    if (len != w->rec_len)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: ciphertext %zu differs in shape from the batch's",
                         w->w.path, w->put);
    ppnn_status st = ppnn_chunk_writer_put(&w->cw, rec, len, digest);
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
    ppnn_status st = ppnn_chunk_writer_end(&w->cw);
    ppnn_chunk_writer_free(&w->cw);
    if (st) {
        ppnn_frame_abort(&w->fw);
        return st;
    }
    st = ppnn_frame_end(&w->fw);
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
