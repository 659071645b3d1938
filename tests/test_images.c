/* The image tensor and its loader: directories (sorted, strict), mixed formats, shape checks
 * naming both shapes, --resize (area averaging), limits, and the IDX data set as a tensor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pnggen.h"
#include "ppnn/data.h"
#include "testutil.h"

static const char *write_png(const char *name, const uint8_t *px, uint32_t w, uint32_t h,
                             int rgb)
{
    size_t len;
    uint8_t *png = pnggen_encode(&len, px, (size_t)w * h * (rgb ? 3 : 1), w, h, 8,
                                 rgb ? SPNG_COLOR_TYPE_TRUECOLOR : SPNG_COLOR_TYPE_GRAYSCALE,
                                 NULL, NULL);
    CHECK(png != NULL);
    const char *p = tu_write(name, png, len);
    free(png);
    return p;
}

static void test_resize_area(void)
{
    /* 4x4 -> 2x2 is the 2x2 block mean. */
    float src[16], dst[4];
    for (int i = 0; i < 16; i++)
        src[i] = (float)i / 15.0f;
    data_resize_area(dst, 2, 2, src, 4, 4);
    const int tl[4] = {0, 2, 8, 10};
    for (int k = 0; k < 4; k++) {
        int i = tl[k];
        double want = (src[i] + src[i + 1] + src[i + 4] + src[i + 5]) / 4.0;
        CHECK_MSG(fabs(dst[k] - want) < 1e-6, "block %d: %f vs %f", k, (double)dst[k], want);
    }
    /* 3 -> 2 columns: output 0 covers [0, 1.5): (a + b/2) / 1.5. */
    float row[3] = {0.0f, 0.6f, 0.9f}, out2[2];
    data_resize_area(out2, 1, 2, row, 1, 3);
    CHECK(fabs(out2[0] - (0.0 + 0.5 * 0.6) / 1.5) < 1e-6);
    CHECK(fabs(out2[1] - (0.5 * 0.6 + 0.9) / 1.5) < 1e-6);
    /* Upscaling 2 -> 4: each output lies inside one input pixel. */
    float two[2] = {0.25f, 0.75f}, four[4];
    data_resize_area(four, 1, 4, two, 1, 2);
    CHECK(four[0] == 0.25f && four[1] == 0.25f && four[2] == 0.75f && four[3] == 0.75f);
    /* Constants stay constant; values stay within [min, max] for an odd ratio. */
    float c[35], o[6 * 4];
    for (int i = 0; i < 35; i++)
        c[i] = 0.3f;
    data_resize_area(o, 6, 4, c, 5, 7);
    for (int i = 0; i < 24; i++)
        CHECK(fabs(o[i] - 0.3f) < 1e-6);
}

static void test_load_dir_sorted_and_mixed(void)
{
    char dir[600];
    snprintf(dir, sizeof dir, "%s/imgs", tu_tmpdir());
    CHECK(mkdir(dir, 0755) == 0);
    uint8_t a[4] = {10, 10, 10, 10}, b[4] = {20, 20, 20, 20}, cc[4] = {30, 30, 30, 30};
    /* Written in another order than their names sort. */
    write_png("imgs/b.png", b, 2, 2, 0);
    write_png("imgs/a.png", a, 2, 2, 0);
    write_png("imgs/.hidden.png", cc, 2, 2, 0);
    /* a .npy of two 2x2 images, extension-less names are detected by content */
    static const char npy_hdr[] = "\x93NUMPY\x01\x00\x76\x00{'descr': '|u1', 'fortran_order': "
                                  "False, 'shape': (2, 2, 2), }";
    uint8_t npy[128 + 8];
    memset(npy, ' ', 128);
    memcpy(npy, npy_hdr, sizeof npy_hdr - 1);
    npy[127] = '\n';
    memset(npy + 128, 40, 4);
    memset(npy + 132, 50, 4);
    tu_write("imgs/c_arrays", npy, sizeof npy);
    const char *paths[2] = {dir, write_png("last.png", cc, 2, 2, 0)};
    data_images im;
    CHECK_OK(data_images_load(&im, paths, 2, NULL));
    CHECK_MSG(im.count == 5, "count %zu", im.count);
    const int want[5] = {10, 20, 40, 50, 30};
    for (size_t i = 0; i < im.count && i < 5; i++)
        CHECK_MSG(fabs(im.values[4 * i] - want[i] / 255.0) < 1e-6, "image %zu", i);
    if (im.count == 5) {
        CHECK(strstr(im.names[0], "imgs/a.png") && strstr(im.names[1], "imgs/b.png"));
        CHECK(strstr(im.names[2], "c_arrays[0]") && strstr(im.names[3], "c_arrays[1]"));
        CHECK(strstr(im.names[4], "last.png"));
    }
    data_images_free(&im);
    /* A trailing slash does not double in the names. */
    char slashed[620];
    snprintf(slashed, sizeof slashed, "%s/", dir);
    const char *sl[1] = {slashed};
    CHECK_OK(data_images_load(&im, sl, 1, NULL));
    CHECK(im.count == 4 && strstr(im.names[0], "imgs/a.png") && !strstr(im.names[0], "//"));
    data_images_free(&im);
    /* max_images */
    data_load_opts o = {NULL, 0, 4};
    CHECK_ERR(data_images_load(&im, paths, 2, &o), PPNN_ERR_PARAM);
    CHECK(im.values == NULL && im.count == 0);
    /* A file that is no image fails the whole load, naming it. */
    tu_write("imgs/notes.txt", "hello", 5);
    CHECK_ERR(data_images_load(&im, paths, 1, NULL), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "notes.txt") != NULL);
}

static void test_shape_checks_and_resize(void)
{
    uint8_t g4[16], g2[4] = {0, 255, 255, 0}, rgb[2 * 2 * 3] = {0};
    for (int i = 0; i < 16; i++)
        g4[i] = (uint8_t)(i * 17);
    const char *p4 = write_png("g4.png", g4, 4, 4, 0);
    const char *p2 = write_png("g2.png", g2, 2, 2, 0);
    const char *pc = write_png("c2.png", rgb, 2, 2, 1);
    data_images im;
    /* Without a wanted shape, every image must match the first. */
    const char *two[2] = {p2, p4};
    CHECK_ERR(data_images_load(&im, two, 2, NULL), PPNN_ERR_MISMATCH);
    CHECK(strstr(ppnn_last_error(), "1x4x4") && strstr(ppnn_last_error(), "1x2x2") &&
          strstr(ppnn_last_error(), "g4.png"));
    /* With the model's shape: mismatch names both; --resize fixes H x W but not C. */
    data_shape want = {1, 2, 2};
    data_load_opts o = {&want, 0, 0};
    const char *one[1] = {p4};
    CHECK_ERR(data_images_load(&im, one, 1, &o), PPNN_ERR_MISMATCH);
    CHECK(strstr(ppnn_last_error(), "model expects 1x2x2") && strstr(ppnn_last_error(), "--resize"));
    o.resize = 1;
    CHECK_OK(data_images_load(&im, one, 1, &o));
    CHECK(im.h == 2 && im.w == 2);
    /* top-left 2x2 block of g4: 0, 17, 68, 85 -> mean 42.5 */
    CHECK(fabs(im.values[0] - 42.5 / 255.0) < 1e-6);
    data_images_free(&im);
    const char *col[1] = {pc};
    CHECK_ERR(data_images_load(&im, col, 1, &o), PPNN_ERR_MISMATCH);
    CHECK(strstr(ppnn_last_error(), "3x2x2") != NULL);
    /* A missing path. */
    const char *none[1] = {"/nonexistent/x.png"};
    CHECK_ERR(data_images_load(&im, none, 1, NULL), PPNN_ERR_IO);
}

static void test_from_set(void)
{
    uint8_t px[2 * 4] = {0, 51, 102, 255, 1, 2, 3, 4}, lab[2] = {0, 1};
    data_set ds = {2, 1, 2, 2, px, lab, "mnist-test"};
    data_images im;
    CHECK_OK(data_images_from_set(&im, &ds, 100));
    CHECK(im.count == 2 && im.c == 1 && im.h == 2 && im.w == 2);
    CHECK(fabs(im.values[1] - 0.2) < 1e-6 && strcmp(im.names[1], "mnist-test[101]") == 0);
    data_images_free(&im);
    data_images_free(NULL);
}

int main(void)
{
    test_resize_area();
    test_load_dir_sorted_and_mixed();
    test_shape_checks_and_resize();
    test_from_set();
    return tu_finish("test_images");
}
