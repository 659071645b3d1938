/* Ciphertext batch frames, format version 2 (layout in src/ckks/inner.h and
 * docs/file-formats.md): a chunked frame (ppnn/util.h) whose metadata holds the parameters,
 * key id, batch info and every record head, one chunk per ciphertext body. Whole-file load and
 * save live here; the streamed reader and the multi-batch writer are in batch_set.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"
#include "ppnn/ckks_io.h"

#define CT_HEAD_BYTES CKKS_CT_HEAD_BYTES

static int stored_seeded(const ckks_ciphertext *ct) { return ct->has_seed && ct->size == 2; }

size_t ckks_io_rec_body_bytes(const ckks_params *p, const ckks_io_rec *r)
{
    size_t comps = r->seeded ? 1 : r->size;
    return (r->seeded ? CKKS_SEED_BYTES : 0) + comps * ckks_io_rows_bytes(p, 0, r->level + 1);
}

static ckks_io_rec rec_of(const ckks_ciphertext *ct)
{
    return (ckks_io_rec){(uint32_t)ct->level, (uint32_t)ct->size, (uint32_t)stored_seeded(ct),
                         ct->scale};
}

size_t ckks_batch_record_bytes(const ckks_ciphertext *ct)
{
    ckks_io_rec r = rec_of(ct);
    return ckks_io_rec_body_bytes(ct->params, &r);
}

size_t ckks_io_batch_head_bytes(const ckks_params *p)
{
    return ckks_io_params_bytes(p) + CKKS_KEY_ID_BYTES + CKKS_BATCH_INFO_BYTES;
}

size_t ckks_io_batch_meta_bytes(const ckks_params *p, size_t count)
{
    return ckks_io_batch_head_bytes(p) + count * CT_HEAD_BYTES;
}

static uint64_t bodies_bytes(const ckks_ciphertext *cts, size_t count)
{
    uint64_t b = 0;
    for (size_t i = 0; i < count; i++)
        b += ckks_batch_record_bytes(&cts[i]);
    return b;
}

uint64_t ckks_io_batch_payload_bytes(const ckks_ciphertext *cts, size_t count)
{
    return ppnn_chunked_payload_bytes(count, ckks_io_batch_meta_bytes(cts[0].params, count),
                                      bodies_bytes(cts, count));
}

uint64_t ckks_batch_file_bytes(const ckks_ciphertext *cts, size_t count)
{
    if (!count)
        return 0;
    return PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES +
           ckks_io_batch_payload_bytes(cts, count);
}

uint64_t ckks_batch_max_bytes(const ckks_params *p, size_t count)
{
    /* Every ciphertext at the top level with both components stored (not seeded). */
    uint64_t per = 2 * (uint64_t)ckks_io_rows_bytes(p, 0, p->nq);
    return PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES +
           ppnn_chunked_payload_bytes(count, ckks_io_batch_meta_bytes(p, count), count * per);
}

uint64_t ckks_batch_key_id_offset(const ckks_params *p)
{
    return PPNN_FILE_HEADER_BYTES + PPNN_CHUNKED_FIXED_BYTES + ckks_io_params_bytes(p);
}

void ckks_io_batch_meta_head(uint8_t *meta, const ckks_params *p, size_t count,
                             const ckks_batch_info *info)
{
    size_t o = ckks_io_params_bytes(p);
    ckks_io_put_params(meta, p);
    memcpy(meta + o, info->key_id, CKKS_KEY_ID_BYTES), o += CKKS_KEY_ID_BYTES;
    ppnn_put_u32(meta + o, info->packing), o += 4;
    ppnn_put_u64(meta + o, info->images), o += 8;
    for (int k = 0; k < 3; k++)
        ppnn_put_u32(meta + o, info->shape[k]), o += 4;
    ppnn_put_u32(meta + o, info->role), o += 4;
    ppnn_put_u64(meta + o, count);
}

void ckks_io_record_head(uint8_t *buf, const ckks_ciphertext *ct)
{
    size_t o = 0;
    ppnn_put_u32(buf + o, (uint32_t)ct->level), o += 4;
    ppnn_put_u32(buf + o, (uint32_t)ct->size), o += 4;
    ppnn_put_f64(buf + o, ct->scale), o += 8;
    ppnn_put_u32(buf + o, (uint32_t)stored_seeded(ct));
}

size_t ckks_batch_record_pack(uint8_t *buf, const ckks_ciphertext *ct)
{
    const ckks_params *p = ct->params;
    int seeded = stored_seeded(ct);
    size_t o = 0;
    if (seeded)
        memcpy(buf + o, ct->seed, CKKS_SEED_BYTES), o += CKKS_SEED_BYTES;
    size_t comps = seeded ? 1 : ct->size;
    for (size_t k = 0; k < comps; k++)
        o += ckks_io_put_rows(buf + o, ckks_ct_poly(ct, k, 0), p, 0, ct->level + 1);
    return o;
}

ppnn_status ckks_io_put_batch(ppnn_file_writer *fw, const ckks_ciphertext *cts, size_t count,
                              const ckks_batch_info *info)
{
    const ckks_params *p = cts[0].params;
    size_t mlen = ckks_io_batch_meta_bytes(p, count), scratch = 1;
    for (size_t i = 0; i < count; i++)
        if (ckks_batch_record_bytes(&cts[i]) > scratch)
            scratch = ckks_batch_record_bytes(&cts[i]);
    uint8_t *meta = malloc(mlen), *buf = malloc(scratch);
    uint64_t *len = malloc(count * sizeof *len);
    ppnn_chunk_writer cw = {0};
    ppnn_status st = meta && buf && len ? PPNN_OK : ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st) {
        ckks_io_batch_meta_head(meta, p, count, info);
        for (size_t i = 0; i < count; i++) {
            ckks_io_record_head(meta + ckks_io_batch_head_bytes(p) + i * CT_HEAD_BYTES, &cts[i]);
            len[i] = ckks_batch_record_bytes(&cts[i]);
        }
        st = ppnn_chunk_writer_begin(&cw, fw, meta, mlen, count, len);
    }
    for (size_t i = 0; !st && i < count; i++)
        st = ppnn_chunk_writer_put(&cw, buf, ckks_batch_record_pack(buf, &cts[i]), NULL);
    if (!st)
        st = ppnn_chunk_writer_end(&cw);
    ppnn_chunk_writer_free(&cw);
    free(meta), free(buf), free(len);
    return st;
}

ppnn_status ckks_io_check_batch(const ckks_ciphertext *cts, size_t count, const char *path)
{
    if (count == 0)
        return ppnn_fail(PPNN_ERR_PARAM, "%s: no ciphertexts to write", path);
    for (size_t i = 1; i < count; i++)
        if (!ckks_params_same(cts[i].params, cts[0].params))
            return ppnn_fail(PPNN_ERR_MISMATCH, "%s: ciphertexts of different parameter sets", path);
    return PPNN_OK;
}

ppnn_status ckks_batch_save(const char *path, const ckks_ciphertext *cts, size_t count,
                            const ckks_batch_info *info)
{
    ppnn_status st = ckks_io_check_batch(cts, count, path);
    if (st)
        return st;
    ppnn_file_writer fw;
    st = ppnn_file_create(&fw, path, 0644, CKKS_KIND_BATCH, CKKS_BATCH_FILE_VERSION,
                          cts[0].params->id, ckks_io_batch_payload_bytes(cts, count));
    if (st)
        return st;
    if ((st = ckks_io_put_batch(&fw, cts, count, info))) {
        ppnn_file_abort(&fw);
        return st;
    }
    return ppnn_file_finish(&fw);
}

/* ---- reading -------------------------------------------------------------------------------- */

ppnn_status ckks_io_batch_version(uint32_t version, const char *name)
{
    if (version == CKKS_BATCH_FILE_VERSION)
        return PPNN_OK;
    return ppnn_fail(PPNN_ERR_FORMAT, "%s: ciphertext batch format version %u is not read by this "
                     "ppnn (it reads version %d): re-encrypt the images with this ppnn (batch "
                     "files are transient)", name, version, CKKS_BATCH_FILE_VERSION);
}

/* The scale a stored ciphertext may have under p. Inputs are fresh encryptions at exactly the
 * parameters' scale. Results come back at the scale the plan returns to: exactly Δ = p->scale
 * for element-wise plans (hnn/exec.c), Δ times a drift of (Δ/q_l)^k for channel-wise ones,
 * whose rescale primes lie within 2^-9 of Δ; a factor below sqrt(2) either way accepts both and
 * refuses NaN, infinities, negatives and every other power of two (which would decrypt to
 * values off by a factor of 2 or more). The executor and planner check the exact scale. */
int ckks_io_ct_scale_ok(const ckks_params *p, uint32_t role, double scale)
{
    if (!isfinite(scale) || !(scale > 0))
        return 0;
    if (role == CKKS_BATCH_INPUT)
        return scale == p->scale;
    return fabs(log2(scale / p->scale)) < 0.5;
}

static ppnn_status read_info(ckks_batch_info *info, uint64_t *count, ppnn_reader *r,
                             const ckks_params *p, const char *name)
{
    ppnn_status st;
    if ((st = ppnn_read_bytes(r, info->key_id, CKKS_KEY_ID_BYTES)) ||
        (st = ppnn_read_u32(r, &info->packing)) || (st = ppnn_read_u64(r, &info->images)))
        return st;
    for (int k = 0; k < 3; k++)
        if ((st = ppnn_read_u32(r, &info->shape[k])))
            return st;
    if ((st = ppnn_read_u32(r, &info->role)) || (st = ppnn_read_u64(r, count)))
        return st;
    if (info->packing != CKKS_PACKING_ELEMENT && info->packing != CKKS_PACKING_CHANNEL)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: unknown packing %u", name, info->packing);
    if (info->role != CKKS_BATCH_INPUT && info->role != CKKS_BATCH_LOGITS)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: unknown batch role %u", name, info->role);
    if (info->images == 0 || (info->packing == CKKS_PACKING_ELEMENT && info->images > p->slots))
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: %llu images do not fit %zu slots", name,
                         (unsigned long long)info->images, p->slots);
    return PPNN_OK;
}

static ppnn_status read_recs(ckks_io_rec *recs, ppnn_reader *r, const ckks_params *p,
                             const ppnn_chunked *ch, uint32_t role, const char *name)
{
    ppnn_status st = PPNN_OK;
    for (size_t i = 0; i < ch->count && !st; i++) {
        ckks_io_rec *c = &recs[i];
        if ((st = ppnn_read_u32(r, &c->level)) || (st = ppnn_read_u32(r, &c->size)) ||
            (st = ppnn_read_f64(r, &c->scale)) || (st = ppnn_read_u32(r, &c->seeded)))
            break;
        if (c->level >= p->nq || c->size < 1 || c->size > 3 || c->seeded > 1 ||
            (c->seeded && c->size != 2))
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: ciphertext %zu has an invalid header", name, i);
        if (!ckks_io_ct_scale_ok(p, role, c->scale))
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: ciphertext %zu has scale %g (2^%.2f) but these "
                             "parameters %s 2^%.2f", name, i, c->scale, log2(fabs(c->scale)),
                             role == CKKS_BATCH_INPUT ? "encrypt inputs at" : "return results at",
                             log2(p->scale));
        /* Every ciphertext of a batch went through the same steps: one scale (levels may
         * differ: the executor brings every input to the plan's level). */
        if (i > 0 && c->scale != recs[0].scale)
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: ciphertext %zu has scale 2^%.4f, ciphertext 0 "
                             "2^%.4f (a batch shares one scale)", name, i, log2(c->scale),
                             log2(recs[0].scale));
        if (ch->len[i] != ckks_io_rec_body_bytes(p, c))
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: ciphertext %zu has %llu bytes, its header "
                             "needs %zu", name, i, (unsigned long long)ch->len[i],
                             ckks_io_rec_body_bytes(p, c));
    }
    if (!st)
        st = ppnn_reader_end(r);
    return st;
}

ppnn_status ckks_io_read_batch_meta(ckks_batch_info *info, ckks_io_rec **recs,
                                    const ppnn_chunked *ch, const uint8_t *param_id,
                                    ckks_params **params, int *created, const char *name)
{
    *recs = NULL;
    ppnn_reader r;
    ppnn_reader_init(&r, ch->meta, ch->meta_len, name);
    uint64_t count = 0;
    ppnn_status st = ckks_io_read_params(&r, param_id, params, created, name, NULL);
    if (!st)
        st = read_info(info, &count, &r, *params, name);
    /* The heads must fill the rest of the metadata exactly, one per chunk. */
    if (!st && (count != ch->count || (r.len - r.pos) / CT_HEAD_BYTES != count ||
                (r.len - r.pos) % CT_HEAD_BYTES))
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: invalid ciphertext count %llu (%llu chunks, %zu "
                       "metadata bytes left)", name, (unsigned long long)count,
                       (unsigned long long)ch->count, r.len - r.pos);
    ckks_io_rec *rc = st ? NULL : malloc(count * sizeof *rc);
    if (!st && !rc)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    if (!st)
        st = read_recs(rc, &r, *params, ch, info->role, name);
    if (st) {
        free(rc);
        if (*created) {
            ckks_params_free(*params);
            *params = NULL;
            *created = 0;
        }
        return st;
    }
    *recs = rc;
    return PPNN_OK;
}

ppnn_status ckks_io_unpack_body(ckks_ciphertext *ct, const uint8_t *body, const ckks_io_rec *rec,
                                size_t level, const char *name)
{
    const ckks_params *p = ct->params;
    uint8_t seed[CKKS_SEED_BYTES];
    size_t off = 0, full = ckks_io_rows_bytes(p, 0, rec->level + 1),
           want = ckks_io_rows_bytes(p, 0, level + 1);
    if (rec->seeded)
        memcpy(seed, body, sizeof seed), off = sizeof seed;
    size_t comps = rec->seeded ? 1 : rec->size;
    ppnn_status st = PPNN_OK;
    for (size_t k = 0; k < comps && !st; k++) {
        ppnn_reader rr;
        ppnn_reader_init(&rr, body + off + k * full, want, name);
        st = ckks_io_get_rows(ckks_ct_poly(ct, k, 0), &rr, p, 0, level + 1);
    }
    if (st)
        return st;
    if (rec->seeded) {
        /* c_1 from the seed, which the ciphertext keeps: a copy sent on (src/dist/) or
         * written again travels as (c_0, seed), half the bytes. */
        ckks_expand_seed(ckks_ct_poly(ct, 1, 0), p, level, seed);
        ct->has_seed = 1;
        memcpy(ct->seed, seed, sizeof seed);
    }
    return PPNN_OK;
}

/* A whole batch frame in memory: verified top hash, then every ciphertext verified by its
 * digest before it is unpacked. */
static ppnn_status batch_from_frame(ckks_ciphertext **out, size_t *out_count,
                                    ckks_batch_info *info, ckks_params **params,
                                    const uint8_t *buf, size_t len, const char *name)
{
    uint64_t plen;
    uint32_t version;
    uint8_t pid[PPNN_PARAM_ID_BYTES];
    if (len < PPNN_FILE_HEADER_BYTES + PPNN_FILE_TRAILER_BYTES)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated file (%zu bytes)", name, len);
    ppnn_status st = ppnn_frame_header_parse(&plen, &version, pid, buf, name, CKKS_KIND_BATCH,
                                             UINT32_MAX);
    if (!st)
        st = ckks_io_batch_version(version, name);
    if (!st && plen != len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES)
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: %s (header says %llu payload bytes, file has %zu)",
                       name, plen > len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES
                                 ? "truncated file" : "trailing data",
                       (unsigned long long)plen,
                       len - PPNN_FILE_HEADER_BYTES - PPNN_FILE_TRAILER_BYTES);
    if (st)
        return st;
    ppnn_chunked ch;
    if ((st = ppnn_chunked_view(&ch, buf, len, name, CKKS_CHUNK_NOUN)))
        return st;
    ckks_io_rec *recs = NULL;
    int created = 0;
    st = ckks_io_read_batch_meta(info, &recs, &ch, pid, params, &created, name);
    ckks_ciphertext *cts = st ? NULL : calloc(ch.count, sizeof *cts);
    if (!st && !cts)
        st = ppnn_fail(PPNN_ERR_NOMEM, "out of memory");
    size_t i = 0;
    for (; !st && i < ch.count; i++) {
        const uint8_t *body = buf + ch.offset[i];
        if ((st = ppnn_chunk_verify(&ch, i, body, name)) ||
            (st = ckks_ct_init(&cts[i], *params, recs[i].level, recs[i].size, recs[i].scale)) ||
            (st = ckks_io_unpack_body(&cts[i], body, &recs[i], recs[i].level, name)))
            break;
    }
    if (st) {
        for (size_t j = 0; cts && j <= i && j < ch.count; j++)
            ckks_ct_free(&cts[j]);
        free(cts);
        if (created) {
            ckks_params_free(*params);
            *params = NULL;
        }
    } else {
        *out = cts;
        *out_count = ch.count;
    }
    free(recs);
    ppnn_chunked_free(&ch);
    return st;
}

ppnn_status ckks_batch_load(ckks_ciphertext **cts, size_t *count, ckks_batch_info *info,
                            ckks_params **params, const char *path)
{
    *cts = NULL;
    *count = 0;
    memset(info, 0, sizeof *info);
    uint8_t *buf;
    size_t len;
    ppnn_status st = ppnn_read_file(&buf, &len, path, CKKS_MAX_FILE_BYTES);
    if (st)
        return st;
    st = batch_from_frame(cts, count, info, params, buf, len, path);
    free(buf);
    return st;
}

ppnn_status ckks_batch_parse(ckks_ciphertext **cts, size_t *count, ckks_batch_info *info,
                             ckks_params **params, uint8_t *buf, size_t len, const char *name)
{
    *cts = NULL;
    *count = 0;
    memset(info, 0, sizeof *info);
    ppnn_status st = batch_from_frame(cts, count, info, params, buf, len, name);
    free(buf);
    return st;
}
