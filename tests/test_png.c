/* PNG reader: every colour type and depth against known pixel values; alpha/tRNS policy;
 * truncated and corrupted files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "pnggen.h"
#include "ppnn/data.h"
#include "testutil.h"

static int near(float a, double b) { return fabs((double)a - b) < 1e-6; }

static void test_grey8(void)
{
    uint8_t px[3 * 2] = {0, 51, 255, 128, 7, 200}; /* h = 2, w = 3 */
    size_t len;
    uint8_t *png = pnggen_encode(&len, px, sizeof px, 3, 2, 8, SPNG_COLOR_TYPE_GRAYSCALE, NULL, NULL);
    CHECK(png != NULL);
    data_images im;
    CHECK_OK(data_png_parse(&im, png, len, "g8.png"));
    CHECK(im.count == 1 && im.c == 1 && im.h == 2 && im.w == 3);
    for (int i = 0; i < 6; i++)
        CHECK_MSG(near(im.values[i], px[i] / 255.0), "pixel %d: %f", i, (double)im.values[i]);
    CHECK(strcmp(im.names[0], "g8.png") == 0);
    data_images_free(&im);
    free(png);
}

static void test_grey16_precision(void)
{
    /* Neighbouring 16-bit levels must stay distinct (no quantisation to 8 bits). */
    uint16_t px[4] = {0, 1, 0x1234, 65535};
    size_t len;
    uint8_t *png = pnggen_encode(&len, px, sizeof px, 4, 1, 16, SPNG_COLOR_TYPE_GRAYSCALE, NULL, NULL);
    data_images im;
    CHECK_OK(data_png_parse(&im, png, len, "g16.png"));
    CHECK(im.c == 1 && im.h == 1 && im.w == 4);
    for (int i = 0; i < 4; i++)
        CHECK_MSG(fabs(im.values[i] - px[i] / 65535.0) < 1e-7, "sample %d: %.9f", i,
                  (double)im.values[i]);
    CHECK(im.values[1] > im.values[0]);
    data_images_free(&im);
    free(png);
}

static void test_grey1(void)
{
    /* 1-bit grey, 8 pixels in one byte: 1 -> 1.0, 0 -> 0.0 (libspng scales to 8 bits). */
    uint8_t row = 0xA5; /* 10100101 */
    size_t len;
    uint8_t *png = pnggen_encode(&len, &row, 1, 8, 1, 1, SPNG_COLOR_TYPE_GRAYSCALE, NULL, NULL);
    data_images im;
    CHECK_OK(data_png_parse(&im, png, len, "g1.png"));
    for (int i = 0; i < 8; i++)
        CHECK(near(im.values[i], (row >> (7 - i)) & 1));
    data_images_free(&im);
    free(png);
}

static void test_rgb_chw(void)
{
    /* 2x2 RGB: the tensor is CHW (all R, then all G, then all B). */
    uint8_t px[2 * 2 * 3];
    for (int i = 0; i < 12; i++)
        px[i] = (uint8_t)(10 * i);
    size_t len;
    uint8_t *png = pnggen_encode(&len, px, sizeof px, 2, 2, 8, SPNG_COLOR_TYPE_TRUECOLOR, NULL, NULL);
    data_images im;
    CHECK_OK(data_png_parse(&im, png, len, "rgb.png"));
    CHECK(im.c == 3 && im.h == 2 && im.w == 2);
    for (int ch = 0; ch < 3; ch++)
        for (int p = 0; p < 4; p++)
            CHECK(near(im.values[ch * 4 + p], px[3 * p + ch] / 255.0));
    data_images_free(&im);
    free(png);
}

static void test_alpha_and_palette(void)
{
    uint8_t rgba[2 * 4] = {1, 2, 3, 255, 4, 5, 6, 255};
    size_t len;
    uint8_t *png = pnggen_encode(&len, rgba, sizeof rgba, 2, 1, 8, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA,
                                 NULL, NULL);
    data_images im;
    CHECK_OK(data_png_parse(&im, png, len, "opaque.png")); /* opaque alpha: dropped */
    CHECK(im.c == 3 && near(im.values[1], 4 / 255.0) && near(im.values[5], 6 / 255.0));
    data_images_free(&im);
    free(png);
    rgba[7] = 254; /* one pixel slightly transparent: refused */
    png = pnggen_encode(&len, rgba, sizeof rgba, 2, 1, 8, SPNG_COLOR_TYPE_TRUECOLOR_ALPHA, NULL,
                        NULL);
    CHECK_ERR(data_png_parse(&im, png, len, "alpha.png"), PPNN_ERR_UNSUPPORTED);
    CHECK(strstr(ppnn_last_error(), "alpha.png") && strstr(ppnn_last_error(), "(0, 1)"));
    free(png);

    /* Palette -> RGB; a tRNS entry making index 1 transparent is refused. */
    struct spng_plte pl;
    memset(&pl, 0, sizeof pl);
    pl.n_entries = 2;
    pl.entries[0] = (struct spng_plte_entry){255, 0, 0, 255};
    pl.entries[1] = (struct spng_plte_entry){0, 0, 255, 255};
    uint8_t idx[3] = {0, 1, 0};
    png = pnggen_encode(&len, idx, sizeof idx, 3, 1, 8, SPNG_COLOR_TYPE_INDEXED, &pl, NULL);
    CHECK_OK(data_png_parse(&im, png, len, "pal.png"));
    CHECK(im.c == 3 && near(im.values[0], 1) && near(im.values[1], 0) && near(im.values[7], 1));
    data_images_free(&im);
    free(png);
    struct spng_trns tr;
    memset(&tr, 0, sizeof tr);
    tr.n_type3_entries = 2;
    tr.type3_alpha[0] = 255;
    tr.type3_alpha[1] = 0;
    png = pnggen_encode(&len, idx, sizeof idx, 3, 1, 8, SPNG_COLOR_TYPE_INDEXED, &pl, &tr);
    CHECK_ERR(data_png_parse(&im, png, len, "trns.png"), PPNN_ERR_UNSUPPORTED);
    free(png);
}

static void test_truncated_corrupted(void)
{
    uint8_t px[16 * 16];
    for (int i = 0; i < 256; i++)
        px[i] = (uint8_t)(i * 7);
    size_t len;
    uint8_t *png = pnggen_encode(&len, px, sizeof px, 16, 16, 8, SPNG_COLOR_TYPE_GRAYSCALE, NULL,
                                 NULL);
    data_images im;
    for (size_t cut = 0; cut < len; cut++) {
        ppnn_status st = data_png_parse(&im, png, cut, "cut.png");
        CHECK_MSG(st == PPNN_ERR_FORMAT && strstr(ppnn_last_error(), "cut.png"),
                  "cut at %zu of %zu: %s", cut, len, ppnn_last_error());
        CHECK(im.values == NULL && im.count == 0);
    }
    /* A flipped bit anywhere after the signature: header, pixel data, IEND (CRC mismatch). */
    for (size_t pos = 8; pos < len; pos += 5) {
        png[pos] ^= 0x10;
        CHECK_MSG(data_png_parse(&im, png, len, "flip.png") != PPNN_OK, "flip at %zu", pos);
        png[pos] ^= 0x10;
    }
    CHECK_OK(data_png_parse(&im, png, len, "ok.png"));
    data_images_free(&im);
    /* Dimensions beyond the limit are refused before decoding. */
    uint8_t one = 0;
    uint8_t *big = pnggen_encode(&len, &one, 1, 1, 1, 8, SPNG_COLOR_TYPE_GRAYSCALE, NULL, NULL);
    big[16] = 0, big[17] = 0x01, big[18] = 0, big[19] = 0; /* width = 65536 (CRC now wrong too) */
    CHECK(data_png_parse(&im, big, len, "big.png") != PPNN_OK);
    /* A valid header (CRC fixed) claiming 16384 x 16384 16-bit pixels in a ~70-byte file: refused
     * by the deflate bound before the 1 GiB tensor would be allocated. */
    big[16] = 0, big[17] = 0, big[18] = 0x40, big[19] = 0;  /* width 16384 */
    big[20] = 0, big[21] = 0, big[22] = 0x40, big[23] = 0;  /* height 16384 */
    big[24] = 16;                                           /* bit depth */
    uint32_t crc = (uint32_t)crc32(0, big + 12, 17);        /* "IHDR" + 13 data bytes */
    big[29] = (uint8_t)(crc >> 24), big[30] = (uint8_t)(crc >> 16), big[31] = (uint8_t)(crc >> 8);
    big[32] = (uint8_t)crc;
    CHECK_ERR(data_png_parse(&im, big, len, "bomb.png"), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "cannot be stored") != NULL);
    free(big);
    free(png);
}

int main(void)
{
    test_grey8();
    test_grey16_precision();
    test_grey1();
    test_rgb_chw();
    test_alpha_and_palette();
    test_truncated_corrupted();
    return tu_finish("test_png");
}
