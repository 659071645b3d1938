/* NumPy .npy reader: files built byte by byte here (independent of the parser), every dtype,
 * order and shape it accepts, and strict refusals of malformed headers and sizes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/data.h"
#include "testutil.h"

/* Builds a version-`major` .npy: magic, version, header length, dict + padding + '\n', data. */
static size_t make_npy(uint8_t *buf, int major, const char *dict, const void *data, size_t dlen)
{
    size_t pre = major == 1 ? 10 : 12, dl = strlen(dict);
    size_t hlen = dl + 1;
    while ((pre + hlen) % 64)
        hlen++;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major, buf[7] = 0;
    if (major == 1) {
        buf[8] = (uint8_t)hlen, buf[9] = (uint8_t)(hlen >> 8);
    } else {
        for (int i = 0; i < 4; i++)
            buf[8 + i] = (uint8_t)(hlen >> (8 * i));
    }
    memcpy(buf + pre, dict, dl);
    memset(buf + pre + dl, ' ', hlen - dl - 1);
    buf[pre + hlen - 1] = '\n';
    memcpy(buf + pre + hlen, data, dlen);
    return pre + hlen + dlen;
}

static uint8_t buf[1 << 16];

static void test_uint8_nhw(void)
{
    uint8_t px[2 * 2 * 3];
    for (int i = 0; i < 12; i++)
        px[i] = (uint8_t)(20 * i);
    size_t n = make_npy(buf, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3), }",
                        px, sizeof px);
    data_images im;
    CHECK_OK(data_npy_parse(&im, buf, n, "a.npy"));
    CHECK(im.count == 2 && im.c == 1 && im.h == 2 && im.w == 3);
    for (int i = 0; i < 12; i++)
        CHECK(fabs(im.values[i] - px[i] / 255.0) < 1e-6);
    CHECK(strcmp(im.names[0], "a.npy[0]") == 0 && strcmp(im.names[1], "a.npy[1]") == 0);
    data_images_free(&im);
    /* (H, W): one image, named after the file; version 2.0 header; double quotes, any order. */
    n = make_npy(buf, 2, "{\"shape\": (3, 4), \"fortran_order\": False, \"descr\": \"|u1\"}", px,
                 12);
    CHECK_OK(data_npy_parse(&im, buf, n, "one.npy"));
    CHECK(im.count == 1 && im.h == 3 && im.w == 4 && strcmp(im.names[0], "one.npy") == 0);
    data_images_free(&im);
}

static void test_float_nchw_and_endianness(void)
{
    float v[1 * 3 * 2 * 2];
    for (int i = 0; i < 12; i++)
        v[i] = (float)i / 11.0f;
    size_t n = make_npy(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 2, 2), }",
                        v, sizeof v);
    data_images im;
    CHECK_OK(data_npy_parse(&im, buf, n, "f.npy"));
    CHECK(im.count == 1 && im.c == 3 && im.h == 2 && im.w == 2);
    CHECK(memcmp(im.values, v, sizeof v) == 0);
    data_images_free(&im);
    uint8_t be[sizeof v];
    for (size_t i = 0; i < 12; i++) {
        uint8_t b[4];
        memcpy(b, &v[i], 4);
        for (int k = 0; k < 4; k++)
            be[4 * i + k] = b[3 - k];
    }
    n = make_npy(buf, 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1, 3, 2, 2), }", be,
                 sizeof be);
    CHECK_OK(data_npy_parse(&im, buf, n, "be.npy"));
    CHECK(memcmp(im.values, v, sizeof v) == 0);
    data_images_free(&im);
}

static void test_fortran_order(void)
{
    /* A (2, 3, 4) array a[n][h][w] = 100 n + 10 h + w stored column-major. */
    uint8_t f[24];
    for (int nn = 0; nn < 2; nn++)
        for (int h = 0; h < 3; h++)
            for (int w = 0; w < 4; w++)
                f[nn + 2 * (h + 3 * w)] = (uint8_t)(100 * nn + 10 * h + w);
    size_t n = make_npy(buf, 1, "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3, 4), }", f,
                        sizeof f);
    data_images im;
    CHECK_OK(data_npy_parse(&im, buf, n, "fo.npy"));
    for (int nn = 0; nn < 2; nn++)
        for (int h = 0; h < 3; h++)
            for (int w = 0; w < 4; w++)
                CHECK(fabs(im.values[(nn * 3 + h) * 4 + w] - (100 * nn + 10 * h + w) / 255.0) < 1e-6);
    data_images_free(&im);
}

static void refuse(const char *dict, const void *data, size_t dlen, ppnn_status code)
{
    size_t n = make_npy(buf, 1, dict, data, dlen);
    data_images im;
    ppnn_fail(PPNN_OK, "%s", "");
    ppnn_status st = data_npy_parse(&im, buf, n, "bad.npy");
    CHECK_MSG(st == code && strstr(ppnn_last_error(), "bad.npy"), "%s -> %s (%s)", dict,
              ppnn_status_name(st), ppnn_last_error());
    CHECK(im.values == NULL);
}

static void test_refusals(void)
{
    uint8_t px[64] = {0};
    const char *ok = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3), }";
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3), }", px, 11,
           PPNN_ERR_FORMAT); /* short payload */
    refuse(ok, px, 13, PPNN_ERR_FORMAT); /* trailing byte */
    refuse("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 2), }", px, 16,
           PPNN_ERR_UNSUPPORTED);
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 2, 2), }", px, 4,
           PPNN_ERR_UNSUPPORTED);
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (4,), }", px, 4, PPNN_ERR_UNSUPPORTED);
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (0, 2, 2), }", px, 0, PPNN_ERR_FORMAT);
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3), 'x': 1}", px, 12,
           PPNN_ERR_FORMAT); /* unknown key */
    refuse("{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3)}", px, 12,
           PPNN_ERR_FORMAT); /* duplicate */
    refuse("{'descr': '|u1', 'shape': (2, 2, 3)}", px, 12, PPNN_ERR_FORMAT); /* missing key */
    refuse("{'descr': '|u1', 'fortran_order': 0, 'shape': (2, 2, 3)}", px, 12, PPNN_ERR_FORMAT);
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2 3)}", px, 12, PPNN_ERR_FORMAT);
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3)} junk", px, 12,
           PPNN_ERR_FORMAT);
    /* Sizes that overflow or exceed the cap are refused before any allocation. */
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16)}", px,
           4, PPNN_ERR_FORMAT);
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999999, 2, 2)}",
           px, 4, PPNN_ERR_FORMAT);
    refuse("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 100000)}", px, 4,
           PPNN_ERR_FORMAT);
    /* float32 outside [0, 1], NaN */
    float f[2] = {0.5f, 2.0f};
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2)}", f, sizeof f, PPNN_ERR_FORMAT);
    f[1] = NAN;
    refuse("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2)}", f, sizeof f, PPNN_ERR_FORMAT);

    /* Truncated anywhere (including inside the header), bad magic, unknown version. */
    size_t n = make_npy(buf, 1, ok, px, 12);
    data_images im;
    for (size_t cut = 0; cut < n; cut++) {
        ppnn_status st = data_npy_parse(&im, buf, cut, "cut.npy");
        CHECK_MSG(st != PPNN_OK && strstr(ppnn_last_error(), "cut.npy"), "cut at %zu", cut);
    }
    buf[6] = 9;
    CHECK_ERR(data_npy_parse(&im, buf, n, "v9.npy"), PPNN_ERR_UNSUPPORTED);
    buf[6] = 1;
    buf[8] = 0xff, buf[9] = 0xff; /* header length beyond the file */
    CHECK_ERR(data_npy_parse(&im, buf, n, "hl.npy"), PPNN_ERR_FORMAT);
}

int main(void)
{
    test_uint8_nhw();
    test_float_nchw_and_endianness();
    test_fortran_order();
    test_refusals();
    return tu_finish("test_npy");
}
