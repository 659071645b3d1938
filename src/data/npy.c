/* NumPy .npy decoder (format versions 1.0, 2.0, 3.0).
 *
 * Layout: "\x93NUMPY", major, minor, header length (u16 LE for 1.x, u32 LE for 2.x/3.x), then
 * a Python dict literal terminated by '\n' (space padding allowed before it) with exactly the
 * keys 'descr', 'fortran_order' and 'shape', then the raw array. The header is parsed strictly:
 * any other key, a duplicate, an unknown dtype or a malformed literal is refused. The payload
 * must be exactly prod(shape) * itemsize bytes, checked before anything is allocated.
 *
 * dtypes: uint8 ('|u1', '<u1', '>u1'; x = p/255 through data_normalize) and float32 ('<f4',
 * '>f4'; values must be finite and within [0, 1]: the tensor's contract, so a float image in
 * 0..255 is refused instead of silently saturating). Shapes: (H, W) one image, (N, H, W) grey
 * images, (N, C, H, W) — channels-last (N, H, W, C) arrays must be transposed first
 * (np.transpose(a, (0, 3, 1, 2))): a 4-dimensional shape is always read as N, C, H, W.
 * fortran_order True is handled by reading the array in column-major order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/inner.h"

#define NPY_MAX_DIMS 4

typedef struct npy_header {
    int have_descr, have_order, have_shape;
    int fortran, is_float, big_endian;
    size_t ndims, dims[NPY_MAX_DIMS];
} npy_header;

typedef struct cursor {
    const char *p, *start, *end, *name;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static int eat(cursor *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static ppnn_status bad(const cursor *c, const char *what)
{
    return ppnn_fail(PPNN_ERR_FORMAT, "%s: malformed .npy header (%s at header offset %td)",
                     c->name, what, c->p - c->start);
}

/* A quoted string (single or double quotes, no escapes: none of the valid values has any). */
static ppnn_status parse_str(cursor *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return bad(c, "expected a quoted string");
    const char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || n + 1 >= cap)
            return bad(c, "unexpected string");
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return bad(c, "unterminated string");
    c->p++;
    out[n] = 0;
    return PPNN_OK;
}

static ppnn_status parse_dim(cursor *c, size_t *v)
{
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9')
        return bad(c, "expected a dimension");
    size_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (x > (SIZE_MAX - 9) / 10)
            return bad(c, "dimension too large");
        x = 10 * x + (size_t)(*c->p++ - '0');
    }
    *v = x;
    return PPNN_OK;
}

/* "(d0, d1, ...)" with an optional trailing comma; "()" is a 0-d array (refused later). */
static ppnn_status parse_shape(cursor *c, npy_header *h)
{
    if (!eat(c, '('))
        return bad(c, "expected '(' for the shape");
    h->ndims = 0;
    if (eat(c, ')'))
        return PPNN_OK;
    for (;;) {
        if (h->ndims == NPY_MAX_DIMS)
            return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: .npy arrays of more than %d dimensions "
                             "are not images", c->name, NPY_MAX_DIMS);
        ppnn_status st = parse_dim(c, &h->dims[h->ndims++]);
        if (st)
            return st;
        if (eat(c, ')'))
            return PPNN_OK;
        if (!eat(c, ','))
            return bad(c, "expected ',' or ')' in the shape");
        if (eat(c, ')'))
            return PPNN_OK;
    }
}

static ppnn_status parse_descr(cursor *c, npy_header *h)
{
    char d[16];
    ppnn_status st = parse_str(c, d, sizeof d);
    if (st)
        return st;
    if (!strcmp(d, "|u1") || !strcmp(d, "<u1") || !strcmp(d, ">u1") || !strcmp(d, "u1"))
        h->is_float = 0;
    else if (!strcmp(d, "<f4") || !strcmp(d, ">f4"))
        h->is_float = 1, h->big_endian = d[0] == '>';
    else
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: .npy dtype '%s' is not supported (use uint8 "
                         "or float32)", c->name, d);
    return PPNN_OK;
}

static ppnn_status parse_dict(cursor *c, npy_header *h)
{
    memset(h, 0, sizeof *h);
    if (!eat(c, '{'))
        return bad(c, "expected '{'");
    for (;;) {
        if (eat(c, '}'))
            break;
        char key[32];
        ppnn_status st = parse_str(c, key, sizeof key);
        if (st)
            return st;
        if (!eat(c, ':'))
            return bad(c, "expected ':'");
        if (!strcmp(key, "descr")) {
            if (h->have_descr++)
                return bad(c, "duplicate key 'descr'");
            st = parse_descr(c, h);
        } else if (!strcmp(key, "fortran_order")) {
            if (h->have_order++)
                return bad(c, "duplicate key 'fortran_order'");
            skip_ws(c);
            if ((size_t)(c->end - c->p) >= 4 && !memcmp(c->p, "True", 4))
                h->fortran = 1, c->p += 4;
            else if ((size_t)(c->end - c->p) >= 5 && !memcmp(c->p, "False", 5))
                h->fortran = 0, c->p += 5;
            else
                st = bad(c, "fortran_order must be True or False");
        } else if (!strcmp(key, "shape")) {
            if (h->have_shape++)
                return bad(c, "duplicate key 'shape'");
            st = parse_shape(c, h);
        } else {
            return bad(c, "unknown key");
        }
        if (st)
            return st;
        if (eat(c, '}'))
            break;
        if (!eat(c, ','))
            return bad(c, "expected ',' or '}'");
    }
    skip_ws(c);
    if (c->p + 1 != c->end || *c->p != '\n')
        return bad(c, "the header must end with '\\n' after the dict");
    if (!h->have_descr || !h->have_order || !h->have_shape)
        return bad(c, "missing 'descr', 'fortran_order' or 'shape'");
    return PPNN_OK;
}

static uint32_t get_u32le(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Offset in the payload of C-order element `i` of an array stored in Fortran order. */
static size_t fortran_offset(size_t i, const size_t *dims, size_t nd)
{
    size_t off = 0, stride = 1, idx[NPY_MAX_DIMS];
    for (size_t k = nd; k-- > 0;)
        idx[k] = i % dims[k], i /= dims[k];
    for (size_t k = 0; k < nd; k++)
        off += idx[k] * stride, stride *= dims[k];
    return off;
}

ppnn_status data_npy_parse(data_images *out, const uint8_t *buf, size_t len, const char *name)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: not a .npy file (bad magic or truncated)", name);
    const unsigned major = buf[6];
    size_t pre, hlen;
    if (major == 1) {
        pre = 10, hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated .npy header", name);
        pre = 12, hlen = get_u32le(buf + 8);
    } else {
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: .npy format version %u.%u is not supported",
                         name, major, buf[7]);
    }
    if (hlen > len - pre)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated .npy header (%zu bytes announced, %zu "
                         "present)", name, hlen, len - pre);
    cursor c = {(const char *)buf + pre, (const char *)buf + pre, (const char *)buf + pre + hlen,
                name};
    npy_header h;
    ppnn_status st = parse_dict(&c, &h);
    if (st)
        return st;
    size_t n, ch, ih, iw;
    switch (h.ndims) {
    case 2: n = 1, ch = 1, ih = h.dims[0], iw = h.dims[1]; break;
    case 3: n = h.dims[0], ch = 1, ih = h.dims[1], iw = h.dims[2]; break;
    case 4: n = h.dims[0], ch = h.dims[1], ih = h.dims[2], iw = h.dims[3]; break;
    default:
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: .npy array of %zu dimensions; images are "
                         "(H, W), (N, H, W) or (N, C, H, W)", name, h.ndims);
    }
    const size_t item = h.is_float ? 4 : 1, payload = len - pre - hlen;
    size_t numel = _data_checked_product(h.dims, h.ndims, DATA_IMAGES_MAX_VALUES);
    if (!numel)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: .npy shape is empty or holds more than %zu values",
                         name, DATA_IMAGES_MAX_VALUES);
    if (payload != numel * item)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: .npy payload is %zu bytes but the shape needs %zu "
                         "(truncated or trailing data)", name, payload, numel * item);
    if ((st = _data_images_alloc(out, n, ch, ih, iw, name)))
        return st;
    const uint8_t *data = buf + pre + hlen;
    if (!h.is_float && !h.fortran) {
        data_normalize(out->values, data, numel);
        return PPNN_OK;
    }
    uint8_t *tmp = h.is_float ? NULL : malloc(numel);
    if (!h.is_float && !tmp) {
        data_images_free(out);
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", name);
    }
    for (size_t i = 0; i < numel; i++) {
        size_t off = h.fortran ? fortran_offset(i, h.dims, h.ndims) : i;
        if (!h.is_float) {
            tmp[i] = data[off];
            continue;
        }
        uint8_t b[4];
        memcpy(b, data + 4 * off, 4);
        uint32_t u = h.big_endian ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
                                        (uint32_t)b[2] << 8 | b[3]
                                  : get_u32le(b);
        float f;
        memcpy(&f, &u, sizeof f);
        if (!(f >= 0.0f && f <= 1.0f)) { /* also catches NaN */
            data_images_free(out);
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: float32 value %g at element %zu is outside "
                             "[0, 1] (images are read as values in [0, 1]; scale them first)",
                             name, (double)f, i);
        }
        out->values[i] = f;
    }
    if (tmp)
        data_normalize(out->values, tmp, numel);
    free(tmp);
    return PPNN_OK;
}
