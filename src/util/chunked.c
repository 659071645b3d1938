/* Chunked frames: per-chunk digests under one top hash (layout in ppnn/util.h). */
#include <assert.h>
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/inner.h"

_Static_assert(sizeof(XXH128_canonical_t) == PPNN_CHUNK_DIGEST_BYTES,
               "a chunk digest is one canonical XXH3-128 hash");

/* The XXH3 seed of chunk `index`: the index itself. XXH3 mixes the seed into every lane and the
 * length into the result, so the same bytes at another index, or cut, hash to another value;
 * index 0 is plain XXH3-128 (seed 0), which `xxhsum -H2` reproduces. */
static XXH64_hash_t chunk_seed(uint64_t index)
{
    return (XXH64_hash_t)index;
}

/* Big-endian (XXH128_canonicalFromHash): the stored bytes do not depend on the host. */
static void chunk_store(uint8_t out[PPNN_CHUNK_DIGEST_BYTES], XXH128_hash_t h)
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    memcpy(out, c.digest, PPNN_CHUNK_DIGEST_BYTES);
}

void ppnn_chunk_digest(uint8_t out[PPNN_CHUNK_DIGEST_BYTES], uint64_t index, const void *body,
                       size_t len)
{
    chunk_store(out, XXH3_128bits_withSeed(body, len, chunk_seed(index)));
}

uint64_t ppnn_chunked_payload_bytes(uint64_t count, uint64_t meta_len, uint64_t bodies_len)
{
    return PPNN_CHUNKED_FIXED_BYTES + meta_len + (8 + PPNN_CHUNK_DIGEST_BYTES) * count +
           bodies_len;
}

/* ---- writer ---------------------------------------------------------------------------------- */

ppnn_status ppnn_chunk_writer_begin(ppnn_chunk_writer *cw, ppnn_file_writer *fw,
                                    const uint8_t *meta, size_t meta_len, uint64_t count,
                                    const uint64_t *len)
{
    memset(cw, 0, sizeof *cw);
    cw->fw = fw, cw->count = count;
    cw->len = malloc((count ? count : 1) * sizeof *cw->len);
    cw->digest = malloc((count ? count : 1) * PPNN_CHUNK_DIGEST_BYTES);
    uint8_t *lens = malloc((count ? count : 1) * 8);
    ppnn_status st = cw->len && cw->digest && lens ? PPNN_OK
                                                   : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    uint8_t fixed[PPNN_CHUNKED_FIXED_BYTES];
    ppnn_put_u64(fixed, count);
    ppnn_put_u64(fixed + 8, meta_len);
    for (uint64_t i = 0; !st && i < count; i++)
        cw->len[i] = len[i], ppnn_put_u64(lens + 8 * i, len[i]);
    if (!st)
        st = ppnn_file_put(fw, fixed, sizeof fixed);
    if (!st)
        st = ppnn_file_put(fw, meta, meta_len);
    if (!st)
        st = ppnn_file_put(fw, lens, (size_t)count * 8);
    free(lens);
    if (st)
        ppnn_chunk_writer_free(cw);
    return st;
}

ppnn_status ppnn_chunk_writer_put(ppnn_chunk_writer *cw, const void *body, size_t len,
                                  const uint8_t digest[PPNN_CHUNK_DIGEST_BYTES])
{
    ppnn_file_writer *fw = cw->fw;
    if (cw->next == cw->count || len != cw->len[cw->next])
        return ppnn_fail(PPNN_ERR_PARAM, "%s: chunk %llu of %llu has %zu bytes, declared %llu "
                         "(internal error)", fw->w.path, (unsigned long long)cw->next,
                         (unsigned long long)cw->count, len,
                         (unsigned long long)(cw->next < cw->count ? cw->len[cw->next] : 0));
    if (fw->written + len > fw->declared)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: payload larger than declared (internal error)",
                         fw->w.path);
    uint8_t *d = cw->digest + cw->next * PPNN_CHUNK_DIGEST_BYTES;
    if (digest)
        memcpy(d, digest, PPNN_CHUNK_DIGEST_BYTES);
    else
        ppnn_chunk_digest(d, cw->next, body, len);
    /* The body is not part of the top hash: its digest (in the table) stands for it. */
    ppnn_status st = ppnn_wfile_write(&fw->w, body, len);
    if (!st)
        fw->written += len, cw->next++;
    return st;
}

ppnn_status ppnn_chunk_writer_end(ppnn_chunk_writer *cw)
{
    if (cw->next != cw->count)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: %llu of %llu chunks written (internal error)",
                         cw->fw->w.path, (unsigned long long)cw->next,
                         (unsigned long long)cw->count);
    return ppnn_file_put(cw->fw, cw->digest, (size_t)cw->count * PPNN_CHUNK_DIGEST_BYTES);
}

void ppnn_chunk_writer_free(ppnn_chunk_writer *cw)
{
    if (!cw)
        return;
    free(cw->len);
    free(cw->digest);
    cw->len = NULL, cw->digest = NULL;
}

/* ---- reader ---------------------------------------------------------------------------------- */

/* Where a frame's bytes come from: a file (pread) or memory. */
typedef struct {
    int fd;
    const uint8_t *mem;
    uint64_t size; /* memory only */
    const char *name;
} source;

static ppnn_status src_read(const source *s, void *buf, size_t len, uint64_t off)
{
    if (s->mem) {
        if (off > s->size || len > s->size - off)
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file", s->name);
        memcpy(buf, s->mem + off, len);
        return PPNN_OK;
    }
    uint8_t *p = buf;
    while (len) {
        ssize_t g = pread(s->fd, p, len, (off_t)off);
        if (g < 0 && errno == EINTR)
            continue;
        if (g < 0)
            return ppnn_fail(PPNN_ERR_IO, "%s: read failed: %s", s->name, strerror(errno));
        if (g == 0)
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file", s->name);
        p += g, off += (uint64_t)g, len -= (size_t)g;
    }
    return PPNN_OK;
}

void ppnn_chunked_free(ppnn_chunked *c)
{
    if (!c)
        return;
    free(c->meta), free(c->len), free(c->offset), free(c->digest);
    memset(c, 0, sizeof *c);
}

int ppnn_chunked_sizes_fit(uint64_t count, uint64_t meta_len, uint64_t L)
{
    if (L < PPNN_CHUNKED_FIXED_BYTES)
        return 0;
    uint64_t room = L - PPNN_CHUNKED_FIXED_BYTES;
    return count <= room / (8 + PPNN_CHUNK_DIGEST_BYTES) &&
           meta_len <= room - (8 + PPNN_CHUNK_DIGEST_BYTES) * count;
}

static ppnn_status chunked_read(ppnn_chunked *c, const source *s, uint64_t frame_off,
                                uint64_t L, const char *noun)
{
    memset(c, 0, sizeof *c);
    c->noun = noun;
    const char *name = s->name;
    uint8_t h[PPNN_FILE_HEADER_BYTES + PPNN_CHUNKED_FIXED_BYTES];
    /* L counts the payload only (the trailer lies after it): the smallest frame, one empty
     * chunk and no metadata, has L = 16 + 24 (the streaming check accepts it too). */
    ppnn_status st = L < PPNN_CHUNKED_FIXED_BYTES
                         ? ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file (no chunk table)", name)
                         : src_read(s, h, sizeof h, frame_off);
    if (st)
        return st;
    uint64_t count = ppnn_get_u64(h + PPNN_FILE_HEADER_BYTES);
    uint64_t meta_len = ppnn_get_u64(h + PPNN_FILE_HEADER_BYTES + 8);
    if (!ppnn_chunked_sizes_fit(count, meta_len, L) || count == 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %llu %ss and %llu metadata bytes do not fit a "
                         "payload of %llu bytes", name, (unsigned long long)count, noun,
                         (unsigned long long)meta_len, (unsigned long long)L);
    /* Every allocation below is bounded by the payload, which lies inside the file. */
    size_t front = PPNN_CHUNKED_FIXED_BYTES + (size_t)meta_len + 8 * (size_t)count;
    uint8_t *fbuf = malloc(front);
    c->meta = malloc(meta_len ? meta_len : 1);
    c->len = malloc(count * sizeof *c->len);
    c->offset = malloc(count * sizeof *c->offset);
    c->digest = malloc(count * PPNN_CHUNK_DIGEST_BYTES);
    if (!fbuf || !c->meta || !c->len || !c->offset || !c->digest)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st)
        st = src_read(s, fbuf, front, frame_off + PPNN_FILE_HEADER_BYTES);
    const uint64_t table = (uint64_t)count * PPNN_CHUNK_DIGEST_BYTES;
    const uint64_t body_end = frame_off + PPNN_FILE_HEADER_BYTES + L - table;
    uint64_t at = frame_off + PPNN_FILE_HEADER_BYTES + front;
    for (uint64_t i = 0; !st && i < count; i++) {
        uint64_t n = ppnn_get_u64(fbuf + PPNN_CHUNKED_FIXED_BYTES + meta_len + 8 * i);
        if (n > body_end - at)
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: %s %llu of %llu extends past the bodies "
                           "(%llu bytes)", name, noun, (unsigned long long)i,
                           (unsigned long long)count, (unsigned long long)n);
        c->len[i] = n, c->offset[i] = at, at += n;
    }
    if (!st && at != body_end)
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: the %s lengths add up to %llu bytes less than the "
                       "payload holds", name, noun, (unsigned long long)(body_end - at));
    uint8_t want[PPNN_FILE_TRAILER_BYTES];
    if (!st)
        st = src_read(s, c->digest, (size_t)table, body_end);
    if (!st)
        st = src_read(s, want, sizeof want, body_end + table);
    if (!st) {
        crypto_generichash_state hs;
        crypto_generichash_init(&hs, NULL, 0, PPNN_FILE_TRAILER_BYTES);
        crypto_generichash_update(&hs, h, PPNN_FILE_HEADER_BYTES);
        crypto_generichash_update(&hs, fbuf, front);
        crypto_generichash_update(&hs, c->digest, table);
        crypto_generichash_final(&hs, c->top, sizeof c->top);
        if (sodium_memcmp(c->top, want, sizeof want) != 0)
            st = ppnn_fail(PPNN_ERR_FORMAT, "%s: checksum mismatch in the header or %s table "
                           "(file corrupted)", name, noun);
    }
    if (!st) {
        memcpy(c->meta, fbuf + PPNN_CHUNKED_FIXED_BYTES, meta_len);
        c->meta_len = (size_t)meta_len, c->count = count;
    }
    free(fbuf);
    if (st)
        ppnn_chunked_free(c);
    return st;
}

ppnn_status ppnn_chunked_open(ppnn_chunked *c, int fd, uint64_t frame_off, uint64_t payload_len,
                              const char *name, const char *noun)
{
    if (sodium_init() < 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libsodium failed to initialise");
    source s = {fd, NULL, 0, name};
    return chunked_read(c, &s, frame_off, payload_len, noun);
}

ppnn_status ppnn_chunked_view(ppnn_chunked *c, const uint8_t *frame, size_t frame_len,
                              const char *name, const char *noun)
{
    if (sodium_init() < 0)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "libsodium failed to initialise");
    memset(c, 0, sizeof *c);
    if (frame_len < PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file (%zu bytes)", name, frame_len);
    source s = {-1, frame, frame_len, name};
    return chunked_read(c, &s, 0, frame_len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES,
                        noun);
}

ppnn_status ppnn_chunk_verify(const ppnn_chunked *c, uint64_t i, const uint8_t *body,
                              const char *name)
{
    uint8_t d[PPNN_CHUNK_DIGEST_BYTES];
    ppnn_chunk_digest(d, i, body, (size_t)c->len[i]);
    if (sodium_memcmp(d, c->digest + i * PPNN_CHUNK_DIGEST_BYTES, sizeof d) != 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %s %llu of %llu: checksum mismatch (file "
                         "corrupted)", name, c->noun, (unsigned long long)i,
                         (unsigned long long)c->count);
    return PPNN_OK;
}

void ppnn_chunked_reseal(uint8_t *frame, size_t len)
{
    if (len < PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES)
        return;
    const uint64_t L = len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES;
    ppnn_put_u64(frame + 48, L);
    uint8_t *p = frame + PPNN_FILE_HEADER_BYTES, *trailer = frame + len - PPNN_FILE_TRAILER_BYTES;
    uint64_t count = L >= PPNN_CHUNKED_FIXED_BYTES ? ppnn_get_u64(p) : 0;
    uint64_t meta_len = L >= PPNN_CHUNKED_FIXED_BYTES ? ppnn_get_u64(p + 8) : 0;
    int ok = L >= PPNN_CHUNKED_FIXED_BYTES && ppnn_chunked_sizes_fit(count, meta_len, L);
    size_t front = ok ? PPNN_CHUNKED_FIXED_BYTES + (size_t)meta_len + 8 * (size_t)count : 0;
    size_t table = ok ? (size_t)count * PPNN_CHUNK_DIGEST_BYTES : 0;
    uint64_t at = front;
    for (uint64_t i = 0; ok && i < count; i++) {
        uint64_t n = ppnn_get_u64(p + PPNN_CHUNKED_FIXED_BYTES + meta_len + 8 * i);
        ok = n <= L - table - at;
        at += ok ? n : 0;
    }
    ok = ok && at == L - table;
    if (!ok) {
        crypto_generichash(trailer, PPNN_FILE_TRAILER_BYTES, frame, len - PPNN_FILE_TRAILER_BYTES,
                           NULL, 0);
        return;
    }
    uint8_t *digests = p + L - table;
    at = front;
    for (uint64_t i = 0; i < count; i++) {
        uint64_t n = ppnn_get_u64(p + PPNN_CHUNKED_FIXED_BYTES + meta_len + 8 * i);
        ppnn_chunk_digest(digests + i * PPNN_CHUNK_DIGEST_BYTES, i, p + at, (size_t)n);
        at += n;
    }
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0, PPNN_FILE_TRAILER_BYTES);
    crypto_generichash_update(&hs, frame, PPNN_FILE_HEADER_BYTES + front);
    crypto_generichash_update(&hs, digests, table);
    crypto_generichash_final(&hs, trailer, PPNN_FILE_TRAILER_BYTES);
}

/* ---- streaming check of a chunked frame (ppnn_file_check, container.c) ----------------------- */

void ppnn_file_check_chunked(ppnn_file_check *c, const char kind[4], uint32_t version,
                             uint64_t max_chunks, const char *noun)
{
    memcpy(c->chunked_kind, kind, 4);
    c->chunked_version = version;
    c->max_chunks = max_chunks;
    c->noun = noun;
}

void ppnn_chunk_check_free(ppnn_file_check *c)
{
    free(c->len), free(c->digest);
    XXH3_freeState(c->chunk_state);
    c->len = NULL, c->digest = NULL, c->chunk_state = NULL;
}

/* Finishes the digests of every chunk whose bytes have all passed (zero-length ones too). */
static void finish_chunks(ppnn_file_check *c)
{
    while (c->next < c->count && c->seen == c->body_at + c->len[c->next]) {
        XXH3_state_t *hs = c->chunk_state;
        if (!c->chunk_open) /* a zero-length chunk: no update opened it */
            (void)XXH3_128bits_reset_withSeed(hs, chunk_seed(c->next));
        chunk_store(c->digest + c->next * PPNN_CHUNK_DIGEST_BYTES, XXH3_128bits_digest(hs));
        c->chunk_open = 0;
        c->body_at += c->len[c->next];
        c->next++;
    }
}

static ppnn_status fixed_done(ppnn_file_check *c)
{
    c->count = ppnn_get_u64(c->item);
    c->meta_len = ppnn_get_u64(c->item + 8);
    uint64_t max = c->max_chunks ? c->max_chunks : PPNN_CHUNKS_MAX;
    if (c->count == 0 || c->count > max ||
        !ppnn_chunked_sizes_fit(c->count, c->meta_len, c->payload_len))
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %llu %ss and %llu metadata bytes do not fit this "
                         "upload (at most %llu %ss, %llu payload bytes)", c->name,
                         (unsigned long long)c->count, c->noun,
                         (unsigned long long)c->meta_len, (unsigned long long)max, c->noun,
                         (unsigned long long)c->payload_len);
    c->len = malloc(c->count * sizeof *c->len);
    c->digest = malloc(c->count * PPNN_CHUNK_DIGEST_BYTES);
    c->chunk_state = XXH3_createState(); /* aligned as XXH3 needs */
    if (!c->len || !c->digest || !c->chunk_state)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    const uint64_t front = PPNN_FILE_HEADER_BYTES + PPNN_CHUNKED_FIXED_BYTES + c->meta_len;
    c->body_at = front + 8 * c->count;
    c->table_at = PPNN_FILE_HEADER_BYTES + c->payload_len - c->count * PPNN_CHUNK_DIGEST_BYTES;
    c->next = 0;
    return PPNN_OK;
}

/* Appends byte b to the entry being assembled; 1 when it holds n bytes (then reset). */
static int entry_byte(ppnn_file_check *c, uint8_t b, size_t n)
{
    c->item[c->item_fill++] = b;
    if (c->item_fill < n)
        return 0;
    c->item_fill = 0;
    return 1;
}

/* The bytes after the header of a chunked frame, by region (layout in ppnn/util.h). */
ppnn_status ppnn_chunk_check_update(ppnn_file_check *c, const uint8_t *buf, size_t len)
{
    const uint64_t fixed_end = PPNN_FILE_HEADER_BYTES + PPNN_CHUNKED_FIXED_BYTES;
    const uint64_t trailer_at = c->total - PPNN_FILE_TRAILER_BYTES;
    while (len) {
        const uint64_t pos = c->seen;
        const uint64_t meta_end = fixed_end + c->meta_len, lens_end = meta_end + 8 * c->count;
        ppnn_status st = PPNN_OK;
        size_t take;
#define TAKE_TO(end) (take = (end) - pos < len ? (size_t)((end) - pos) : len)
        if (pos < fixed_end) { /* count and metadata length */
            TAKE_TO(fixed_end);
            crypto_generichash_update(c->hash_state, buf, take);
            memcpy(c->item + (pos - PPNN_FILE_HEADER_BYTES), buf, take);
            if (pos + take == fixed_end)
                st = fixed_done(c);
        } else if (pos < meta_end) {
            TAKE_TO(meta_end);
            crypto_generichash_update(c->hash_state, buf, take);
        } else if (pos < lens_end) { /* whole u64s, possibly split between updates */
            TAKE_TO(lens_end);
            crypto_generichash_update(c->hash_state, buf, take);
            for (size_t k = 0; k < take; k++)
                if (entry_byte(c, buf[k], 8))
                    c->len[(pos + k - meta_end) / 8] = ppnn_get_u64(c->item);
            if (pos + take == lens_end) {
                uint64_t room = c->table_at - lens_end;
                for (uint64_t i = 0; i < c->count && room != UINT64_MAX; i++)
                    room = c->len[i] <= room ? room - c->len[i] : UINT64_MAX;
                if (room != 0)
                    st = ppnn_fail(PPNN_ERR_FORMAT, "%s: the %s lengths do not add up to the "
                                   "payload", c->name, c->noun);
            }
        } else if (pos < c->table_at) { /* the body of chunk `next` */
            TAKE_TO(c->body_at + c->len[c->next]);
            XXH3_state_t *hs = c->chunk_state;
            if (!c->chunk_open) {
                (void)XXH3_128bits_reset_withSeed(hs, chunk_seed(c->next));
                c->chunk_open = 1;
            }
            (void)XXH3_128bits_update(hs, buf, take);
        } else if (pos < trailer_at) { /* the digest table, entry by entry */
            TAKE_TO(trailer_at);
            crypto_generichash_update(c->hash_state, buf, take);
            for (size_t k = 0; k < take && !st; k++) {
                if (!entry_byte(c, buf[k], PPNN_CHUNK_DIGEST_BYTES))
                    continue;
                uint64_t i = (pos + k - c->table_at) / PPNN_CHUNK_DIGEST_BYTES;
                if (sodium_memcmp(c->item, c->digest + i * PPNN_CHUNK_DIGEST_BYTES,
                                  PPNN_CHUNK_DIGEST_BYTES) != 0)
                    st = ppnn_fail(PPNN_ERR_FORMAT, "%s: %s %llu of %llu: checksum mismatch "
                                   "(file corrupted)", c->name, c->noun, (unsigned long long)i,
                                   (unsigned long long)c->count);
            }
        } else {
            TAKE_TO(c->total);
            memcpy(c->trailer + (pos - trailer_at), buf, take);
        }
#undef TAKE_TO
        if (st)
            return st;
        c->seen += take, buf += take, len -= take;
        if (c->count && c->seen >= lens_end && c->seen <= c->table_at)
            finish_chunks(c);
    }
    return PPNN_OK;
}
