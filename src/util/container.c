/* The ppnn file container: header, payload, BLAKE2b checksum (layout in ppnn/util.h). */
#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/inner.h"

static const uint8_t MAGIC[8] = {'P', 'P', 'N', 'N', 0, '\r', '\n', 0x1a};

void ppnn_put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void ppnn_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

void ppnn_put_f64(uint8_t *p, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    ppnn_put_u64(p, u);
}

void ppnn_put_f32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    ppnn_put_u32(p, u);
}

uint32_t ppnn_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint64_t ppnn_get_u64(const uint8_t *p)
{
    return (uint64_t)ppnn_get_u32(p) | (uint64_t)ppnn_get_u32(p + 4) << 32;
}

float ppnn_get_f32(const uint8_t *p)
{
    uint32_t u = ppnn_get_u32(p);
    float v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* The BLAKE2b state buffers up to a block of the hashed payload: for a secret file that is
 * secret material, so it is wiped before it is freed (as every file buffer here is). */
static void free_hash_state(ppnn_file_writer *fw)
{
    if (fw->hash_state)
        sodium_memzero(fw->hash_state, sizeof(crypto_generichash_state));
    free(fw->hash_state);
    fw->hash_state = NULL;
}

/* The 56 header bytes (layout in ppnn/util.h). */
static void put_header(uint8_t *h, const char kind[4], uint32_t version,
                       const uint8_t param_id[PPNN_PARAM_ID_BYTES], uint64_t payload_len)
{
    memcpy(h, MAGIC, 8);
    memcpy(h + 8, kind, 4);
    ppnn_put_u32(h + 12, version);
    if (param_id)
        memcpy(h + 16, param_id, PPNN_PARAM_ID_BYTES);
    else
        memset(h + 16, 0, PPNN_PARAM_ID_BYTES);
    ppnn_put_u64(h + 48, payload_len);
}

void ppnn_file_reseal(uint8_t *buf, size_t len)
{
    assert(len >= PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES);
    ppnn_put_u64(buf + 48, len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES);
    crypto_generichash(buf + len - PPNN_FILE_TRAILER_BYTES, PPNN_FILE_TRAILER_BYTES, buf,
                       len - PPNN_FILE_TRAILER_BYTES, NULL, 0);
}

void ppnn_file_frame(uint8_t *buf, size_t len, const char kind[4], uint32_t version,
                     const uint8_t param_id[PPNN_PARAM_ID_BYTES])
{
    assert(len >= PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES);
    put_header(buf, kind, version, param_id,
               len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES);
    ppnn_file_reseal(buf, len);
}

/* Starts a frame in fw (hash state + header) writing through fw->w, already open. */
static ppnn_status begin_frame(ppnn_file_writer *fw, const char kind[4], uint32_t version,
                               const uint8_t param_id[PPNN_PARAM_ID_BYTES], uint64_t payload_len)
{
    if (sodium_init() < 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libsodium failed to initialise");
    fw->hash_state = malloc(sizeof(crypto_generichash_state));
    if (!fw->hash_state)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    crypto_generichash_init(fw->hash_state, NULL, 0, 32);
    uint8_t h[PPNN_FILE_HEADER_BYTES];
    put_header(h, kind, version, param_id, payload_len);
    fw->declared = payload_len;
    fw->written = 0;
    crypto_generichash_update(fw->hash_state, h, sizeof h);
    ppnn_status st = ppnn_wfile_write(&fw->w, h, sizeof h);
    if (st)
        free_hash_state(fw);
    return st;
}

ppnn_status ppnn_file_create(ppnn_file_writer *fw, const char *path, unsigned mode,
                             const char kind[4], uint32_t version,
                             const uint8_t param_id[PPNN_PARAM_ID_BYTES], uint64_t payload_len)
{
    memset(fw, 0, sizeof *fw);
    char kind_s[5] = {kind[0], kind[1], kind[2], kind[3], 0};
    ppnn_status st = ppnn_wfile_open_kind(&fw->w, path, mode, kind_s);
    if (st)
        return st;
    if ((st = begin_frame(fw, kind, version, param_id, payload_len)))
        ppnn_wfile_abort(&fw->w);
    return st;
}

ppnn_status ppnn_frame_begin(ppnn_file_writer *fw, const ppnn_wfile *w, const char kind[4],
                             uint32_t version, const uint8_t param_id[PPNN_PARAM_ID_BYTES],
                             uint64_t payload_len)
{
    memset(fw, 0, sizeof *fw);
    fw->w = *w; /* shares the open file; ppnn_frame_end never commits or closes it */
    return begin_frame(fw, kind, version, param_id, payload_len);
}

/* Checks the payload length and appends the checksum (fw->w stays open). */
static ppnn_status end_frame(ppnn_file_writer *fw)
{
    if (fw->written != fw->declared)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: payload length %llu != declared %llu",
                         fw->w.path, (unsigned long long)fw->written,
                         (unsigned long long)fw->declared);
    uint8_t sum[PPNN_FILE_TRAILER_BYTES];
    crypto_generichash_final(fw->hash_state, sum, sizeof sum);
    free_hash_state(fw);
    return ppnn_wfile_write(&fw->w, sum, sizeof sum);
}

ppnn_status ppnn_frame_end(ppnn_file_writer *fw)
{
    ppnn_status st = end_frame(fw);
    ppnn_frame_abort(fw);
    return st;
}

void ppnn_frame_abort(ppnn_file_writer *fw)
{
    free_hash_state(fw);
    memset(fw, 0, sizeof *fw);
}

ppnn_status ppnn_file_put(ppnn_file_writer *fw, const void *buf, size_t len)
{
    if (fw->written + len > fw->declared)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: payload larger than declared (internal error)",
                         fw->w.path);
    crypto_generichash_update(fw->hash_state, buf, len);
    fw->written += len;
    return ppnn_wfile_write(&fw->w, buf, len);
}

void ppnn_file_abort(ppnn_file_writer *fw)
{
    if (!fw)
        return;
    ppnn_wfile_abort(&fw->w);
    free_hash_state(fw);
}

ppnn_status ppnn_file_finish(ppnn_file_writer *fw)
{
    ppnn_status st = end_frame(fw);
    if (st) {
        ppnn_file_abort(fw);
        return st;
    }
    return ppnn_wfile_commit(&fw->w);
}

ppnn_status ppnn_frame_header_parse(uint64_t *payload_len, uint32_t *version,
                                    uint8_t param_id[PPNN_PARAM_ID_BYTES],
                                    const uint8_t h[PPNN_FILE_HEADER_BYTES], const char *name,
                                    const char kind[4], uint32_t max_version)
{
    if (memcmp(h, MAGIC, 8) != 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: not a ppnn file (bad magic)", name);
    if (memcmp(h + 8, kind, 4) != 0) {
        char got[5] = {0};
        for (int i = 0; i < 4; i++)
            got[i] = (h[8 + i] >= 32 && h[8 + i] < 127) ? (char)h[8 + i] : '?';
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: holds a '%s' object, expected '%.4s'", name, got,
                         kind);
    }
    uint32_t v = ppnn_get_u32(h + 12);
    if (v < 1 || v > max_version)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: unsupported format version %u (this ppnn reads 1..%u)",
                         name, v, max_version);
    if (version)
        *version = v;
    if (param_id)
        memcpy(param_id, h + 16, PPNN_PARAM_ID_BYTES);
    *payload_len = ppnn_get_u64(h + 48);
    return PPNN_OK;
}

ppnn_status ppnn_frame_verify_fd(int fd, uint64_t offset, uint64_t payload_len, const char *name)
{
    if (sodium_init() < 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libsodium failed to initialise");
    enum { CHUNK = 1 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, 32);
    uint64_t left = PPNN_FILE_HEADER_BYTES + payload_len, pos = offset;
    ppnn_status st = PPNN_OK;
    while (left && !st) {
        size_t want = left < CHUNK ? (size_t)left : CHUNK;
        ssize_t got = pread(fd, buf, want, (off_t)pos);
        if (got <= 0)
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file", name);
        else
            crypto_generichash_update(&h, buf, (size_t)got), pos += (uint64_t)got,
                left -= (uint64_t)got;
    }
    uint8_t sum[PPNN_FILE_TRAILER_BYTES], want[PPNN_FILE_TRAILER_BYTES];
    if (!st) {
        crypto_generichash_final(&h, sum, sizeof sum);
        if (pread(fd, want, sizeof want, (off_t)pos) != (ssize_t)sizeof want)
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file (no checksum)", name);
        else if (sodium_memcmp(sum, want, sizeof sum) != 0)
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: checksum mismatch (file corrupted)", name);
    }
    free(buf);
    return st;
}

ppnn_status ppnn_file_parse(ppnn_file_view *v, uint8_t *buf, size_t len, const char *name,
                            const char kind[4], uint32_t max_version)
{
    ppnn_status st = ppnn_file_view_of(v, buf, len, name, kind, max_version);
    if (st) { /* whatever the failure, buf may hold a secret key: wipe it as ppnn_file_close does */
        sodium_memzero(buf, len);
        free(buf);
    } else
        v->buf = buf;
    return st;
}

ppnn_status ppnn_file_view_of(ppnn_file_view *v, const uint8_t *buf, size_t len,
                              const char *name, const char kind[4], uint32_t max_version)
{
    memset(v, 0, sizeof *v);
    ppnn_status st = PPNN_OK;
    if (len < PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file (%zu bytes)", name, len);
        goto fail;
    }
    uint32_t version;
    uint64_t plen;
    if ((st = ppnn_frame_header_parse(&plen, &version, v->param_id, buf, name, kind, max_version)))
        goto fail;
    if (plen != len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: %s (header says %llu payload bytes, file has %zu)", name,
                       plen > len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES
                           ? "truncated file" : "trailing data",
                       (unsigned long long)plen,
                       len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES);
        goto fail;
    }
    uint8_t sum[PPNN_FILE_TRAILER_BYTES];
    crypto_generichash(sum, sizeof sum, buf, len - PPNN_FILE_TRAILER_BYTES, NULL, 0);
    if (sodium_memcmp(sum, buf + len - PPNN_FILE_TRAILER_BYTES, sizeof sum) != 0) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: checksum mismatch (file corrupted)", name);
        goto fail;
    }
    v->buf_len = len;
    v->version = version;
    v->payload = buf + PPNN_FILE_HEADER_BYTES;
    v->payload_len = (size_t)plen;
    return PPNN_OK;
fail:
    return st;
}

ppnn_status ppnn_file_open(ppnn_file_view *v, const char *path, const char kind[4],
                           uint32_t max_version, size_t max_bytes)
{
    memset(v, 0, sizeof *v);
    if (sodium_init() < 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libsodium failed to initialise");
    uint8_t *buf;
    size_t len;
    ppnn_status st = ppnn_read_file(&buf, &len, path, max_bytes);
    if (st)
        return st;
    return ppnn_file_parse(v, buf, len, path, kind, max_version);
}

void ppnn_file_close(ppnn_file_view *v)
{
    if (!v)
        return;
    /* Every file buffer is wiped before it is freed (one rule, no per-kind bookkeeping: the
     * memset costs far less than reading the file did). */
    if (v->buf)
        sodium_memzero(v->buf, v->buf_len);
    free(v->buf);
    memset(v, 0, sizeof *v);
}

void ppnn_reader_init(ppnn_reader *r, const uint8_t *p, size_t len, const char *name)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->name = name;
}

ppnn_status ppnn_read_span(ppnn_reader *r, const uint8_t **out, size_t n)
{
    if (n > r->len - r->pos)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated payload (need %zu bytes at offset %zu)",
                         r->name, n, r->pos);
    *out = r->p + r->pos;
    r->pos += n;
    return PPNN_OK;
}

ppnn_status ppnn_read_bytes(ppnn_reader *r, void *out, size_t n)
{
    const uint8_t *s;
    ppnn_status st = ppnn_read_span(r, &s, n);
    if (!st && n)
        memcpy(out, s, n);
    return st;
}

ppnn_status ppnn_read_u32(ppnn_reader *r, uint32_t *v)
{
    const uint8_t *s;
    ppnn_status st = ppnn_read_span(r, &s, 4);
    if (!st)
        *v = ppnn_get_u32(s);
    return st;
}

ppnn_status ppnn_read_u64(ppnn_reader *r, uint64_t *v)
{
    const uint8_t *s;
    ppnn_status st = ppnn_read_span(r, &s, 8);
    if (!st)
        *v = ppnn_get_u64(s);
    return st;
}

ppnn_status ppnn_read_f64(ppnn_reader *r, double *v)
{
    uint64_t u;
    ppnn_status st = ppnn_read_u64(r, &u);
    if (!st)
        memcpy(v, &u, sizeof *v);
    return st;
}

ppnn_status ppnn_reader_end(const ppnn_reader *r)
{
    if (r->pos != r->len)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %zu unexpected trailing payload bytes", r->name,
                         r->len - r->pos);
    return PPNN_OK;
}

/* ---- streaming verification (uploads) ------------------------------------------------------ */
void ppnn_file_check_init(ppnn_file_check *c, const char *name)
{
    memset(c, 0, sizeof *c);
    c->name = name;
}

void ppnn_file_check_free(ppnn_file_check *c)
{
    if (c) {
        free(c->hash_state);
        c->hash_state = NULL;
        ppnn_chunk_check_free(c);
    }
}

static ppnn_status check_header(ppnn_file_check *c)
{
    const uint8_t *h = c->head;
    if (memcmp(h, MAGIC, 8) != 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: not a ppnn file (bad magic)", c->name);
    for (int i = 0; i < 4; i++)
        c->kind[i] = (h[8 + i] >= 32 && h[8 + i] < 127) ? (char)h[8 + i] : '?';
    c->kind[4] = 0;
    c->version = ppnn_get_u32(h + 12);
    memcpy(c->param_id, h + 16, PPNN_PARAM_ID_BYTES);
    c->payload_len = ppnn_get_u64(h + 48);
    /* A length this large cannot be a real file; refusing it keeps total from overflowing. */
    if (c->payload_len > ((uint64_t)1 << 48))
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: implausible payload length %llu", c->name,
                         (unsigned long long)c->payload_len);
    c->total = PPNN_FILE_HEADER_BYTES + c->payload_len + PPNN_FILE_TRAILER_BYTES;
    if (sodium_init() < 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libsodium failed to initialise");
    c->hash_state = malloc(sizeof(crypto_generichash_state));
    if (!c->hash_state)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    crypto_generichash_init(c->hash_state, NULL, 0, 32);
    crypto_generichash_update(c->hash_state, h, PPNN_FILE_HEADER_BYTES);
    c->chunked = c->noun && memcmp(h + 8, c->chunked_kind, 4) == 0 &&
                 c->version == c->chunked_version;
    if (c->chunked && c->payload_len < PPNN_CHUNKED_FIXED_BYTES)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file (no %s table)", c->name, c->noun);
    c->header_ok = 1;
    return PPNN_OK;
}

ppnn_status ppnn_file_check_update(ppnn_file_check *c, const uint8_t *buf, size_t len)
{
    if (c->failed)
        return PPNN_ERR_FORMAT;
    while (len && !c->header_ok) {
        size_t take = PPNN_FILE_HEADER_BYTES - (size_t)c->seen;
        take = take < len ? take : len;
        memcpy(c->head + c->seen, buf, take);
        c->seen += take, buf += take, len -= take;
        if (c->seen == PPNN_FILE_HEADER_BYTES) {
            ppnn_status st = check_header(c);
            if (st) {
                c->failed = 1;
                return st;
            }
        }
    }
    if (!len)
        return PPNN_OK;
    if (len > c->total - c->seen) {
        c->failed = 1;
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: trailing data (header says %llu payload bytes)",
                         c->name, (unsigned long long)c->payload_len);
    }
    if (c->chunked) {
        ppnn_status st = ppnn_chunk_check_update(c, buf, len);
        c->failed = st != PPNN_OK;
        return st;
    }
    uint64_t body_end = c->total - PPNN_FILE_TRAILER_BYTES;
    if (c->seen < body_end) {
        size_t take = body_end - c->seen < len ? (size_t)(body_end - c->seen) : len;
        crypto_generichash_update(c->hash_state, buf, take);
        c->seen += take, buf += take, len -= take;
    }
    if (!len)
        return PPNN_OK; /* the chunk ended inside the body: no trailer bytes yet */
    memcpy(c->trailer + (c->seen - body_end), buf, len);
    c->seen += len;
    return PPNN_OK;
}

ppnn_status ppnn_file_check_finish(ppnn_file_check *c)
{
    if (c->failed)
        return PPNN_ERR_FORMAT;
    if (!c->header_ok || c->seen != c->total)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file (%llu of %llu bytes)", c->name,
                         (unsigned long long)c->seen,
                         (unsigned long long)(c->header_ok ? c->total : PPNN_FILE_HEADER_BYTES));
    uint8_t sum[PPNN_FILE_TRAILER_BYTES];
    crypto_generichash_final(c->hash_state, sum, sizeof sum);
    if (sodium_memcmp(sum, c->trailer, sizeof sum) != 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: checksum mismatch (file corrupted)", c->name);
    return PPNN_OK;
}
