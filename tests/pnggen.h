/* Test helper: PNG files written with libspng's encoder (header-only, static functions). */
#ifndef PPNN_TEST_PNGGEN_H
#define PPNN_TEST_PNGGEN_H

#include <spng.h>
#include <stdlib.h>
#include <string.h>

/* Encodes img (PNG sample layout: interleaved, 16-bit samples host-endian) into a malloc'd PNG;
 * plte / trns optional. Returns NULL on failure. */
static inline uint8_t *pnggen_encode(size_t *len, const void *img, size_t img_len, uint32_t w,
                                     uint32_t h, uint8_t depth, uint8_t color,
                                     struct spng_plte *plte, struct spng_trns *trns)
{
    spng_ctx *enc = spng_ctx_new(SPNG_CTX_ENCODER);
    struct spng_ihdr ih = {w, h, depth, color, 0, 0, 0};
    int err = 0;
    void *png = NULL;
    spng_set_option(enc, SPNG_ENCODE_TO_BUFFER, 1);
    if (!spng_set_ihdr(enc, &ih) && (!plte || !spng_set_plte(enc, plte)) &&
        (!trns || !spng_set_trns(enc, trns)) &&
        !spng_encode_image(enc, img, img_len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE))
        png = spng_get_png_buffer(enc, len, &err);
    spng_ctx_free(enc);
    return err ? (free(png), NULL) : png;
}

#endif
