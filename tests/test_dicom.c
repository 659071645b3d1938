/* DICOM reader: files written byte by byte (tests/dicomgen.h, not DCMTK), checked against the
 * rescale and window formulas computed here; refusals; truncated and corrupted files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dicomgen.h"
#include "ppnn/data.h"
#include "testutil.h"

static uint8_t fbuf[1 << 16];

static size_t build(const dg_image *im)
{
    dg_buf b = {fbuf, 0, sizeof fbuf};
    dg_write(&b, im);
    CHECK(b.n <= sizeof fbuf);
    return b.n;
}

static dg_image base16(const int16_t *px, uint16_t rows, uint16_t cols)
{
    dg_image im = {DG_EXPLICIT_LE, "MONOCHROME2", 1, rows, cols, 16, 16, 1, NULL, NULL, NULL,
                   NULL, NULL, px, (uint32_t)(2u * rows * cols), NULL, 0};
    return im;
}

/* Reference: DICOM PS3.3 C.11.2.1.2.1 linear window, written out independently. */
static double ref_window(double v, double c, double w)
{
    double x = ((v - (c - 0.5)) / (w - 1) + 0.5);
    return v <= c - 0.5 - (w - 1) / 2 ? 0 : v > c - 0.5 + (w - 1) / 2 ? 1 : x;
}

static void test_ct_rescale_window(void)
{
    /* CT-like: stored signed values, HU = stored * 1 + (-1024), soft-tissue window 40/400. */
    int16_t px[2 * 3] = {0, 1024, 1064, 1264, 800, 2000};
    dg_image d = base16(px, 2, 3);
    d.intercept = "-1024", d.slope = "1", d.wc = "40", d.ww = "400";
    size_t n = build(&d);
    data_images im;
    CHECK_OK(data_dicom_parse(&im, fbuf, n, "ct.dcm"));
    CHECK(im.count == 1 && im.c == 1 && im.h == 2 && im.w == 3);
    for (int i = 0; i < 6; i++) {
        double want = ref_window(px[i] - 1024.0, 40, 400);
        CHECK_MSG(fabs(im.values[i] - want) < 1e-6, "pixel %d: %f want %f", i,
                  (double)im.values[i], want);
    }
    CHECK(im.values[0] == 0 && im.values[5] == 1);        /* clipped below / above */
    CHECK(fabs(im.values[2] - 0.5 - 0.5 / 399) < 1e-6);   /* HU 40 = the centre */
    data_images_free(&im);

    /* Slope 2.5 with negative stored values (two's complement) and a window. */
    int16_t neg[4] = {-100, -1, 0, 50};
    d = base16(neg, 1, 4);
    d.slope = "2.5", d.intercept = "10", d.wc = "0", d.ww = "500";
    n = build(&d);
    CHECK_OK(data_dicom_parse(&im, fbuf, n, "neg.dcm"));
    for (int i = 0; i < 4; i++)
        CHECK(fabs(im.values[i] - ref_window(neg[i] * 2.5 + 10, 0, 500)) < 1e-6);
    data_images_free(&im);
}

/* Implicit VR little endian (the DICOM default transfer syntax): same values. */
static void test_implicit_vr(void)
{
    int16_t px[4] = {-5, 0, 100, 2000};
    dg_image d = base16(px, 2, 2);
    d.xfer = DG_IMPLICIT_LE, d.intercept = "-1024", d.slope = "1", d.wc = "40", d.ww = "400";
    size_t n = build(&d);
    data_images im;
    CHECK_OK(data_dicom_parse(&im, fbuf, n, "imp.dcm"));
    for (int i = 0; i < 4 && im.values; i++)
        CHECK(fabs(im.values[i] - ref_window(px[i] - 1024.0, 40, 400)) < 1e-6);
    data_images_free(&im);
    for (size_t cut = 132; cut < n; cut += 7)
        CHECK(data_dicom_parse(&im, fbuf, cut, "imp.dcm") != PPNN_OK);
    memcpy(fbuf + n - 8 - 4, "\xf0\xff\xff\x7f", 4); /* pixel data length ~2 GB */
    CHECK_ERR(data_dicom_parse(&im, fbuf, n, "imp.dcm"), PPNN_ERR_FORMAT);
}

static void test_minmax_mono1_frames_bits(void)
{
    /* 8-bit unsigned, two frames, no window: (v - min) / (max - min) over the whole file. */
    uint8_t px[2 * 2 * 2] = {10, 20, 30, 40, 50, 60, 70, 110};
    dg_image d = {DG_EXPLICIT_LE, "MONOCHROME2", 1, 2, 2, 8, 8, 0, "2", NULL, NULL, NULL, NULL,
                  px, sizeof px, NULL, 0};
    size_t n = build(&d);
    data_images im;
    CHECK_OK(data_dicom_parse(&im, fbuf, n, "mf.dcm"));
    CHECK(im.count == 2 && im.h == 2 && im.w == 2);
    for (int i = 0; i < 8; i++)
        CHECK(fabs(im.values[i] - (px[i] - 10) / 100.0) < 1e-6);
    CHECK(strcmp(im.names[1], "mf.dcm[1]") == 0);
    data_images_free(&im);
    /* MONOCHROME1: inverted. */
    d.photometric = "MONOCHROME1";
    n = build(&d);
    CHECK_OK(data_dicom_parse(&im, fbuf, n, "m1.dcm"));
    for (int i = 0; i < 8; i++)
        CHECK(fabs(im.values[i] - (1 - (px[i] - 10) / 100.0)) < 1e-6);
    data_images_free(&im);
    /* 12 bits stored in 16 allocated, unsigned: bits above the 12th are ignored. */
    uint16_t p12[3] = {0xF000 | 0, 0xA000 | 2048, 4095};
    d = (dg_image){DG_EXPLICIT_LE, "MONOCHROME2", 1, 1, 3, 16, 12, 0, NULL, NULL, NULL, NULL,
                   NULL, p12, sizeof p12, NULL, 0};
    n = build(&d);
    CHECK_OK(data_dicom_parse(&im, fbuf, n, "b12.dcm"));
    CHECK(fabs(im.values[0]) < 1e-6 && fabs(im.values[1] - 2048 / 4095.0) < 1e-6 &&
          fabs(im.values[2] - 1) < 1e-6);
    data_images_free(&im);
}

static void refuse(const dg_image *d, ppnn_status code, const char *needle)
{
    size_t n = build(d);
    data_images im;
    ppnn_fail(PPNN_OK, "%s", "");
    ppnn_status st = data_dicom_parse(&im, fbuf, n, "bad.dcm");
    CHECK_MSG(st == code && strstr(ppnn_last_error(), "bad.dcm") &&
                  strstr(ppnn_last_error(), needle),
              "%s: got %s (%s)", needle, ppnn_status_name(st), ppnn_last_error());
    CHECK(im.values == NULL);
}

static void test_refusals(void)
{
    int16_t px[8] = {0}; /* room for the 2x2 32-bit case */
    dg_image d = base16(px, 2, 2);
    d.spp = 3, d.photometric = "RGB";
    refuse(&d, PPNN_ERR_UNSUPPORTED, "monochrome");
    d = base16(px, 2, 2);
    d.xfer = DG_JPEG_BASELINE;
    refuse(&d, PPNN_ERR_UNSUPPORTED, "compressed");
    d = base16(px, 2, 2);
    d.pixel_bytes = 6; /* shorter than 2x2 16-bit samples */
    refuse(&d, PPNN_ERR_FORMAT, "pixel data");
    d = base16(px, 2, 2);
    d.wc = "40"; /* a centre without a width */
    refuse(&d, PPNN_ERR_FORMAT, "Window");
    d = base16(px, 2, 2);
    d.ba = 32, d.bs = 32, d.pixel_bytes = 16;
    refuse(&d, PPNN_ERR_UNSUPPORTED, "bits");
    d = base16(px, 0, 2);
    refuse(&d, PPNN_ERR_FORMAT, "shape");
    d = base16(px, 2, 2);
    d.frames = "1000000"; /* a million frames announced, 4 pixels present: no allocation */
    refuse(&d, PPNN_ERR_FORMAT, "pixel data");
}

static void test_truncated_corrupted(void)
{
    int16_t px[8 * 8];
    for (int i = 0; i < 64; i++)
        px[i] = (int16_t)(i * 10);
    dg_image d = base16(px, 8, 8);
    d.wc = "300", d.ww = "600";
    size_t n = build(&d);
    data_images im;
    for (size_t cut = 0; cut < n; cut++) {
        ppnn_status st = data_dicom_parse(&im, fbuf, cut, "cut.dcm");
        CHECK_MSG(st != PPNN_OK && strstr(ppnn_last_error(), "cut.dcm") && im.values == NULL,
                  "cut at %zu of %zu accepted", cut, n);
        if (st == PPNN_OK)
            data_images_free(&im);
    }
    /* The pixel data element claims ~4 GB: refused without trying to allocate it. */
    size_t len_at = n - 128 - 4; /* the OW length field precedes the 128 pixel bytes */
    memcpy(fbuf + len_at, "\xf0\xff\xff\xff", 4);
    CHECK(data_dicom_parse(&im, fbuf, n, "huge.dcm") != PPNN_OK);
    /* Every single-byte corruption either decodes (values stay in [0, 1]) or fails cleanly. */
    n = build(&d);
    for (size_t pos = 0; pos < n; pos++) {
        uint8_t keep = fbuf[pos];
        fbuf[pos] ^= 0x5a;
        if (data_dicom_parse(&im, fbuf, n, "flip.dcm") == PPNN_OK) {
            for (size_t i = 0; i < im.count * im.h * im.w; i++)
                CHECK(im.values[i] >= 0 && im.values[i] <= 1);
            data_images_free(&im);
        }
        fbuf[pos] = keep;
    }
}

/* Sequences: undefined-length SQ / items are walked; a nested length beyond the file is
 * refused before DCMTK would allocate it. */
static void test_sequences(void)
{
    uint8_t seq[128];
    dg_buf q = {seq, 0, sizeof seq};
    dg_u16(&q, 0x0008), dg_u16(&q, 0x1140), dg_put(&q, "SQ", 2), dg_u16(&q, 0), dg_u32(&q, 0xffffffffu);
    dg_u16(&q, 0xfffe), dg_u16(&q, 0xe000), dg_u32(&q, 0xffffffffu);        /* item, undefined */
    dg_str(&q, 0x0008, 0x1150, "UI", "1.2.840.10008.5.1.4.1.1.7");
    size_t inner_len_at = q.n + 6;                                          /* its 16-bit length */
    dg_str(&q, 0x0008, 0x1155, "UI", "1.2.3.4");
    dg_u16(&q, 0xfffe), dg_u16(&q, 0xe00d), dg_u32(&q, 0);                  /* item delimiter */
    dg_u16(&q, 0xfffe), dg_u16(&q, 0xe0dd), dg_u32(&q, 0);                  /* sequence delimiter */
    int16_t px[4] = {1, 2, 3, 4};
    dg_image d = base16(px, 2, 2);
    d.extra = seq, d.extra_len = q.n;
    size_t n = build(&d);
    data_images im;
    CHECK_OK(data_dicom_parse(&im, fbuf, n, "seq.dcm"));
    CHECK(im.count == 1 && fabs(im.values[3] - 1) < 1e-6);
    data_images_free(&im);
    seq[inner_len_at] = 0xff, seq[inner_len_at + 1] = 0x7f; /* a nested value of 32767 bytes */
    n = build(&d);
    CHECK_ERR(data_dicom_parse(&im, fbuf, n, "seq.dcm"), PPNN_ERR_FORMAT);
    CHECK(strstr(ppnn_last_error(), "(0008,1155)") != NULL);
    /* The sequence delimiter missing: the walk reaches the end of the file inside the item. */
    d.extra_len = q.n - 8;
    n = build(&d);
    CHECK(data_dicom_parse(&im, fbuf, n, "seq.dcm") != PPNN_OK);
}

/* The file meta group length must count exactly the group's elements: DCMTK reads the meta
 * group up to the stated length, so a longer one made it read (and allocate, 4 GB in the
 * fuzzer's case) an element of another group that the pre-scan had not checked. */
static void test_meta_group_length(void)
{
    int16_t px[4] = {1, 2, 3, 4};
    dg_image d = base16(px, 2, 2);
    size_t n = build(&d);
    data_images im;
    CHECK_OK(data_dicom_parse(&im, fbuf, n, "gl.dcm"));
    data_images_free(&im);
    const size_t at = 132 + 8; /* (0002,0000) UL: 8-byte header, then its 32-bit value */
    CHECK(fbuf[132] == 2 && fbuf[134] == 0 && !memcmp(fbuf + 136, "UL", 2));
    for (int delta = -2; delta <= 2; delta += 4) {
        n = build(&d);
        fbuf[at] = (uint8_t)(fbuf[at] + delta);
        CHECK_ERR(data_dicom_parse(&im, fbuf, n, "gl.dcm"), PPNN_ERR_FORMAT);
        CHECK(strstr(ppnn_last_error(), "group length") != NULL);
    }
    /* The fuzzer's input: a stated length reaching past group 0002 into an element of
     * group 0000 whose value claims 4278190080 bytes. */
    n = build(&d);
    size_t end = 132 + 12 + fbuf[at];           /* where group 0002 ends */
    fbuf[at] = (uint8_t)(fbuf[at] + 12);        /* now covers the next 12 bytes too */
    memset(fbuf + end, 0, 12);
    memcpy(fbuf + end + 4, "\x00\x00\x00\xff", 4); /* implicit-style length 0xff000000 */
    CHECK_ERR(data_dicom_parse(&im, fbuf, n, "gl.dcm"), PPNN_ERR_FORMAT);
}

int main(void)
{
    test_meta_group_length();
    test_ct_rescale_window();
    test_implicit_vr();
    test_minmax_mono1_frames_bits();
    test_refusals();
    test_truncated_corrupted();
    test_sequences();
    return tu_finish("test_dicom");
}
