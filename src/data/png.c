/* PNG decoder (libspng): grey, grey+alpha, RGB, RGBA, palette; bit depths 1..16.
 *
 * Channels: grey (any depth) -> 1; RGB and palette -> 3 (a palette is expanded, even an all-grey
 * one). Alpha (an alpha channel or a tRNS chunk) must be fully opaque and is then dropped; an
 * image with any transparent pixel is refused rather than silently composited onto a guessed
 * background. Samples are used as stored: gAMA / iCCP / sRGB are not applied. 8-bit and lower
 * depths go through data_normalize (p/255; libspng scales 1/2/4-bit samples to 8 bits), 16-bit
 * through data_normalize_u16 (p/65535), so 16-bit images keep their precision. */
#include <math.h>
#include <spng.h>
#include <stdlib.h>
#include <string.h>

#include "data/inner.h"

/* Caps on ancillary chunks (text, ICC, ...): we use none of them, so keep memory small. */
#define PNG_CHUNK_LIMIT ((size_t)1 << 24)
#define PNG_CHUNK_CACHE ((size_t)1 << 26)

static ppnn_status spng_err(const char *name, const char *what, int rc)
{
    return ppnn_fail(PPNN_ERR_FORMAT, "%s: corrupted or unsupported PNG (%s: %s)", name, what,
                     spng_strerror(rc));
}

/* Copies channel ch of an interleaved RGBA buffer of n pixels into plane (8 or 16 bit). */
static void gather8(uint8_t *plane, const uint8_t *rgba, size_t n, size_t ch)
{
    for (size_t i = 0; i < n; i++)
        plane[i] = rgba[4 * i + ch];
}
static void gather16(uint16_t *plane, const uint16_t *rgba, size_t n, size_t ch)
{
    for (size_t i = 0; i < n; i++)
        plane[i] = rgba[4 * i + ch];
}

ppnn_status data_png_parse(data_images *out, const uint8_t *buf, size_t len, const char *name)
{
    memset(out, 0, sizeof *out);
    spng_ctx *ctx = spng_ctx_new(0);
    if (!ctx)
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", name);
    ppnn_status st = PPNN_OK;
    void *rgba = NULL, *plane = NULL;
    int rc;
    struct spng_ihdr ih;
    /* A complete file ends with the fixed 12-byte IEND chunk (length 0, "IEND", its CRC);
     * libspng stops reading after the pixel data, so a cut tail would go unnoticed. */
    static const uint8_t iend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xae, 0x42, 0x60, 0x82};
    if (len < 8 + 25 + 12 || memcmp(buf + len - 12, iend, 12) != 0) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated PNG (no IEND chunk at the end)", name);
        goto done;
    }
    spng_set_crc_action(ctx, SPNG_CRC_ERROR, SPNG_CRC_ERROR);
    spng_set_image_limits(ctx, DATA_IMAGE_MAX_SIDE, DATA_IMAGE_MAX_SIDE);
    spng_set_chunk_limits(ctx, PNG_CHUNK_LIMIT, PNG_CHUNK_CACHE);
    if ((rc = spng_set_png_buffer(ctx, buf, len)) || (rc = spng_get_ihdr(ctx, &ih))) {
        st = spng_err(name, "header", rc);
        goto done;
    }
    const int grey = ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE ||
                     ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
    const int deep = ih.bit_depth == 16;
    const size_t c = grey ? 1 : 3, h = ih.height, w = ih.width, n = h * w;
    /* Before allocating by the header's size: deflate expands at most 1032:1 (a 258-byte match
     * per 2 bits at best), so the filtered scanlines, h * (1 + ceil(w * bits / 8)) bytes even
     * without interlacing, cannot come from fewer than 1/1032 of them. A small file claiming a
     * huge image is refused here instead of costing gigabytes. */
    const size_t samples = ih.color_type == SPNG_COLOR_TYPE_TRUECOLOR ? 3
                         : ih.color_type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA ? 4
                         : ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA ? 2 : 1;
    const double raw = (double)h * (1.0 + ceil((double)w * (double)samples * ih.bit_depth / 8.0));
    if (raw > 1032.0 * (double)len) {
        st = ppnn_fail(PPNN_ERR_FORMAT, "%s: truncated or corrupted PNG (%zux%zu pixels cannot "
                       "be stored in %zu bytes)", name, w, h, len);
        goto done;
    }
    if ((st = _data_images_alloc(out, 1, c, h, w, name)))
        goto done;
    const int fmt = deep ? SPNG_FMT_RGBA16 : SPNG_FMT_RGBA8;
    size_t bytes;
    if ((rc = spng_decoded_image_size(ctx, fmt, &bytes))) {
        st = spng_err(name, "size", rc);
        goto done;
    }
    rgba = malloc(bytes);
    plane = malloc(n * (deep ? 2 : 1));
    if (!rgba || !plane) {
        st = ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory for a %zux%zu image", name, h, w);
        goto done;
    }
    /* Decode the pixels, then the chunks after them (IEND and every CRC: a corrupted tail is
     * an error too, not ignored). */
    if ((rc = spng_decode_image(ctx, rgba, bytes, fmt, SPNG_DECODE_TRNS)) ||
        (rc = spng_decode_chunks(ctx))) {
        st = spng_err(name, "pixels", rc);
        goto done;
    }
    const uint16_t opaque = deep ? 0xffff : 0xff;
    for (size_t i = 0; i < n; i++) {
        uint16_t a = deep ? ((const uint16_t *)rgba)[4 * i + 3] : ((const uint8_t *)rgba)[4 * i + 3];
        if (a != opaque) {
            st = ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: pixel (%zu, %zu) is transparent (alpha %u); "
                           "flatten the image onto a background first", name, i / w, i % w, a);
            goto done;
        }
    }
    for (size_t ch = 0; ch < c; ch++) {
        float *dst = out->values + ch * n;
        if (deep) {
            gather16(plane, rgba, n, ch);
            data_normalize_u16(dst, plane, n);
        } else {
            gather8(plane, rgba, n, ch);
            data_normalize(dst, plane, n);
        }
    }
done:
    if (st)
        data_images_free(out);
    free(rgba);
    free(plane);
    spng_ctx_free(ctx);
    return st;
}
