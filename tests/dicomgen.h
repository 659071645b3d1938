/* Test helper: minimal DICOM Part 10 files written byte by byte (explicit VR little endian),
 * independent of DCMTK, for the reader's tests and the fuzz seed corpus (header-only). */
#ifndef PPNN_TEST_DICOMGEN_H
#define PPNN_TEST_DICOMGEN_H

#include <stdint.h>
#include <string.h>

typedef struct dg_buf {
    uint8_t *p;
    size_t n, cap;
} dg_buf;

static inline void dg_put(dg_buf *b, const void *v, size_t len)
{
    if (b->n + len <= b->cap)
        memcpy(b->p + b->n, v, len);
    b->n += len;
}
static inline void dg_u16(dg_buf *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    dg_put(b, x, 2);
}
static inline void dg_u32(dg_buf *b, uint32_t v)
{
    dg_u16(b, (uint16_t)v);
    dg_u16(b, (uint16_t)(v >> 16));
}
/* Data set elements after the meta group are written in implicit VR (tag, 32-bit length) when
 * set: the encoding of transfer syntax 1.2.840.10008.1.2. */
static int dg_implicit;

/* One element; OB/OW/UN/SQ use the long form (2 reserved bytes, 32-bit length). */
static inline void dg_elem(dg_buf *b, uint16_t g, uint16_t e, const char *vr, const void *v,
                           uint32_t len)
{
    if (dg_implicit && g != 0x0002) {
        dg_u16(b, g), dg_u16(b, e), dg_u32(b, len);
        if (v)
            dg_put(b, v, len);
        return;
    }
    dg_u16(b, g), dg_u16(b, e), dg_put(b, vr, 2);
    if (!strcmp(vr, "OB") || !strcmp(vr, "OW") || !strcmp(vr, "UN") || !strcmp(vr, "SQ")) {
        dg_u16(b, 0), dg_u32(b, len);
    } else {
        dg_u16(b, (uint16_t)len);
    }
    if (v)
        dg_put(b, v, len);
}
/* A string value padded to even length (UI with NUL, others with a space). */
static inline void dg_str(dg_buf *b, uint16_t g, uint16_t e, const char *vr, const char *s)
{
    char tmp[128];
    size_t len = strlen(s);
    memcpy(tmp, s, len);
    if (len % 2)
        tmp[len++] = strcmp(vr, "UI") ? ' ' : '\0';
    dg_elem(b, g, e, vr, tmp, (uint32_t)len);
}
static inline void dg_us(dg_buf *b, uint16_t g, uint16_t e, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    dg_elem(b, g, e, "US", x, 2);
}

#define DG_EXPLICIT_LE "1.2.840.10008.1.2.1"
#define DG_IMPLICIT_LE "1.2.840.10008.1.2"
#define DG_JPEG_BASELINE "1.2.840.10008.1.2.4.50"

typedef struct dg_image {
    const char *xfer;        /* transfer syntax UID (DG_EXPLICIT_LE) */
    const char *photometric; /* "MONOCHROME2" */
    uint16_t spp, rows, cols, ba, bs, pr;
    const char *frames;      /* NumberOfFrames (IS) or NULL */
    const char *wc, *ww;     /* Window Center / Width (DS) or NULL */
    const char *intercept, *slope;
    const void *pixels;      /* frames * rows * cols samples of ba bits, little endian */
    uint32_t pixel_bytes;
    const void *extra;       /* encoded elements inserted after (0008,0018), or NULL */
    size_t extra_len;
} dg_image;

/* Writes the file into b (b->n = its length; nothing written past b->cap). */
static inline void dg_write(dg_buf *b, const dg_image *im)
{
    static const uint8_t zero[128] = {0};
    dg_implicit = !strcmp(im->xfer, DG_IMPLICIT_LE);
    b->n = 0;
    dg_put(b, zero, 128);
    dg_put(b, "DICM", 4);
    dg_buf meta = {NULL, 0, 0}; /* measure the meta group after its length element */
    for (int pass = 0; pass < 2; pass++) {
        dg_buf *t = pass ? b : &meta;
        if (pass)
            dg_elem(b, 0x0002, 0x0000, "UL", (uint8_t[4]){(uint8_t)meta.n, (uint8_t)(meta.n >> 8), 0, 0}, 4);
        dg_elem(t, 0x0002, 0x0001, "OB", (uint8_t[2]){0, 1}, 2);
        dg_str(t, 0x0002, 0x0002, "UI", "1.2.840.10008.5.1.4.1.1.7");
        dg_str(t, 0x0002, 0x0003, "UI", "1.2.826.0.1.3680043.2.1143.1");
        dg_str(t, 0x0002, 0x0010, "UI", im->xfer);
    }
    dg_str(b, 0x0008, 0x0016, "UI", "1.2.840.10008.5.1.4.1.1.7");
    dg_str(b, 0x0008, 0x0018, "UI", "1.2.826.0.1.3680043.2.1143.1");
    if (im->extra)
        dg_put(b, im->extra, im->extra_len);
    dg_us(b, 0x0028, 0x0002, im->spp);
    dg_str(b, 0x0028, 0x0004, "CS", im->photometric);
    if (im->frames)
        dg_str(b, 0x0028, 0x0008, "IS", im->frames);
    dg_us(b, 0x0028, 0x0010, im->rows);
    dg_us(b, 0x0028, 0x0011, im->cols);
    dg_us(b, 0x0028, 0x0100, im->ba);
    dg_us(b, 0x0028, 0x0101, im->bs);
    dg_us(b, 0x0028, 0x0102, (uint16_t)(im->bs - 1));
    dg_us(b, 0x0028, 0x0103, im->pr);
    if (im->wc)
        dg_str(b, 0x0028, 0x1050, "DS", im->wc);
    if (im->ww)
        dg_str(b, 0x0028, 0x1051, "DS", im->ww);
    if (im->intercept)
        dg_str(b, 0x0028, 0x1052, "DS", im->intercept);
    if (im->slope)
        dg_str(b, 0x0028, 0x1053, "DS", im->slope);
    if (!strcmp(im->xfer, DG_EXPLICIT_LE) || !strcmp(im->xfer, DG_IMPLICIT_LE)) {
        dg_elem(b, 0x7fe0, 0x0010, im->ba == 8 ? "OB" : "OW", im->pixels, im->pixel_bytes);
        return;
    }
    /* Encapsulated: undefined length, empty offset table item, one fragment, delimiter. */
    dg_u16(b, 0x7fe0), dg_u16(b, 0x0010), dg_put(b, "OB", 2), dg_u16(b, 0), dg_u32(b, 0xffffffffu);
    dg_u16(b, 0xfffe), dg_u16(b, 0xe000), dg_u32(b, 0);
    dg_u16(b, 0xfffe), dg_u16(b, 0xe000), dg_u32(b, 4), dg_put(b, "\xff\xd8\xff\xd9", 4);
    dg_u16(b, 0xfffe), dg_u16(b, 0xe0dd), dg_u32(b, 0);
}

#endif
