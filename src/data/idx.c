/* IDX file reader (the MNIST format): big-endian header, unsigned-byte payload.
 *   magic: 0x00 0x00 <type> <ndims>, then ndims big-endian uint32 dims, then the data. */
#include "ppnn/data.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_TYPE_UBYTE 0x08

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

ppnn_status data_idx_parse(data_idx *out, const uint8_t *buf, size_t len, const char *name)
{
    memset(out, 0, sizeof *out);
    if (len < 4)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated IDX file (%zu bytes, no header)", name, len);
    if (buf[0] != 0 || buf[1] != 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: not an IDX file (bad magic %02x %02x)", name, buf[0],
                         buf[1]);
    if (buf[2] != IDX_TYPE_UBYTE)
        return ppnn_fail(PPNN_ERR_FORMAT,
                         "%s: unsupported IDX element type 0x%02x (only unsigned byte 0x08)", name,
                         buf[2]);
    size_t ndims = buf[3];
    if (ndims < 1 || ndims > 4)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: unsupported number of IDX dimensions %zu (1..4)",
                         name, ndims);
    size_t header = 4 + 4 * ndims;
    if (len < header)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated IDX header", name);
    size_t total = 1;
    for (size_t i = 0; i < ndims; i++) {
        out->dims[i] = be32(buf + 4 + 4 * i);
        /* Overflow-checked product: the payload must be exactly len - header bytes. */
        if (out->dims[i] != 0 && total > SIZE_MAX / out->dims[i])
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: IDX dimensions overflow", name);
        total *= out->dims[i];
    }
    if (ndims > 1 && out->dims[0] && total / out->dims[0] > DATA_IDX_MAX_ITEM_BYTES)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: IDX items of %zu bytes (limit %zu): not an image "
                         "set ppnn can encrypt", name, total / out->dims[0],
                         (size_t)DATA_IDX_MAX_ITEM_BYTES);
    if (total > DATA_IDX_MAX_BYTES)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: IDX dimensions declare %zu bytes (limit %zu)", name,
                         total, (size_t)DATA_IDX_MAX_BYTES);
    if (total != len - header)
        return ppnn_fail(PPNN_ERR_FORMAT,
                         "%s: IDX dimensions say %zu bytes of data but the file has %zu%s", name,
                         total, len - header, total > len - header ? " (truncated)" : "");
    out->ndims = ndims;
    out->count = out->dims[0];
    out->item_size = out->count ? total / out->count : 0;
    if (out->count == 0)
        out->item_size = 1;
    out->values = malloc(total ? total : 1);
    if (!out->values)
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", name);
    memcpy(out->values, buf + header, total);
    return PPNN_OK;
}

/* Bytes the header at buf declares (header + data); SIZE_MAX while it is incomplete; 0 when
 * it is complete and already refused (bad dims, over a limit: data_idx_parse says why). */
static size_t declared_bytes(const uint8_t *buf, size_t len)
{
    if (len < 4)
        return SIZE_MAX;
    if (buf[3] < 1 || buf[3] > 4)
        return 0;
    size_t total = 1, header = 4 + 4 * (size_t)buf[3];
    if (len < header)
        return SIZE_MAX;
    for (size_t i = 0; i < buf[3]; i++) {
        size_t d = be32(buf + 4 + 4 * i);
        if (d && total > SIZE_MAX / d)
            return 0;
        total *= d;
    }
    size_t first = be32(buf + 4);
    if (total > DATA_IDX_MAX_BYTES || (buf[3] > 1 && first && total / first > DATA_IDX_MAX_ITEM_BYTES))
        return 0;
    return header + total;
}

/* Reads a file through zlib's gz interface, which passes plain files through unchanged.
 * Decompression stops one byte past what the header declares (enough to detect trailing
 * data), so a small gzip bomb never inflates into a large buffer. */
static ppnn_status read_maybe_gz(uint8_t **out, size_t *out_len, const char *path)
{
    *out = NULL;
    *out_len = 0;
    int fd;
    ppnn_status st = ppnn_path_open_input(&fd, path); /* regular files only */
    if (st)
        return st;
    gzFile gz = gzdopen(fd, "rb");
    if (!gz) {
        close(fd);
        return ppnn_fail(PPNN_ERR_IO, "%s: cannot open", path);
    }
    size_t cap = 1 << 16, len = 0; /* grows by doubling, up to what the header declares */
    uint8_t *buf = malloc(cap);
    if (!buf) {
        gzclose(gz);
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", path);
    }
    size_t limit = DATA_IDX_MAX_BYTES;
    for (;;) {
        size_t want_all = declared_bytes(buf, len);
        if (want_all != SIZE_MAX && want_all < limit)
            limit = want_all ? want_all + 1 : len; /* 0: refused, stop reading now */
        if (len >= limit)
            break;
        if (len == cap) {
            if (cap >= DATA_IDX_MAX_BYTES) {
                free(buf);
                gzclose(gz);
                return ppnn_fail(PPNN_ERR_FORMAT, "%s: larger than the %zu-byte limit", path,
                                 (size_t)DATA_IDX_MAX_BYTES);
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                gzclose(gz);
                return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        size_t want = (cap < limit ? cap : limit) - len;
        if (want > (1u << 30))
            want = 1u << 30;
        int got = gzread(gz, buf + len, (unsigned)want);
        if (got < 0)
            break;
        if (got == 0)
            break;
        len += (size_t)got;
    }
    int errnum = Z_OK;
    const char *msg = gzerror(gz, &errnum);
    if (errnum != Z_OK && errnum != Z_STREAM_END) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: corrupted gzip data (%s)", path, msg);
        free(buf);
        gzclose(gz);
        return st;
    }
    if (gzclose(gz) != Z_OK) {
        free(buf);
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: corrupted or truncated gzip data", path);
    }
    *out = buf;
    *out_len = len;
    return PPNN_OK;
}

ppnn_status data_idx_read(data_idx *out, const char *path)
{
    memset(out, 0, sizeof *out);
    uint8_t *buf;
    size_t len;
    ppnn_status st = read_maybe_gz(&buf, &len, path);
    if (st)
        return st;
    st = data_idx_parse(out, buf, len, path);
    free(buf);
    return st;
}

void data_idx_free(data_idx *idx)
{
    if (!idx)
        return;
    free(idx->values);
    memset(idx, 0, sizeof *idx);
}
