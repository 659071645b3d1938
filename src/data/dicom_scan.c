/* Structural pre-check of a DICOM Part 10 file, run before DCMTK sees it.
 *
 * DCMTK allocates every element's value field at the length its header announces before
 * reading it, so a 400-byte file claiming a 4 GB element makes it allocate 4 GB. This walk
 * visits every element header — file meta group (explicit VR little endian), then the data set
 * in the encoding its Transfer Syntax UID names, descending into sequences and items of
 * undefined length — and refuses any defined length larger than the bytes that remain in the
 * enclosing item or file. After it, no value DCMTK reads can be larger than the file.
 * Deflated data sets (their lengths are only known after inflating) and unknown VRs are
 * refused; nesting is limited to DICOM_MAX_DEPTH. */
#include <string.h>

#include "data/inner.h"

#define DICOM_MAX_DEPTH 16
#define UNDEFINED 0xffffffffu

typedef struct scan {
    const uint8_t *p, *end;
    int explicit_vr, big_endian;
    const char *name;
} scan;

static uint16_t rd16(const uint8_t *p, int be)
{
    return be ? (uint16_t)(p[0] << 8 | p[1]) : (uint16_t)(p[1] << 8 | p[0]);
}
static uint32_t rd32(const uint8_t *p, int be)
{
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static ppnn_status fail(const scan *s, const char *what, uint16_t g, uint16_t e)
{
    return ppnn_fail(PPNN_ERR_FORMAT, "%s: corrupted or truncated DICOM file (%s at element "
                     "(%04X,%04X))", s->name, what, g, e);
}

/* VRs whose explicit-VR header has 2 reserved bytes and a 32-bit length. */
static int long_vr(const uint8_t *vr)
{
    static const char *const v[] = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN",
                                    "UR", "UT", "UV"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!memcmp(vr, v[i], 2))
            return 1;
    return 0;
}
static int short_vr(const uint8_t *vr)
{
    static const char *const v[] = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS",
                                    "LO", "LT", "PN", "SH", "SL", "SS", "ST", "TM", "UI", "UL",
                                    "US"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        if (!memcmp(vr, v[i], 2))
            return 1;
    return 0;
}

static ppnn_status elements(scan *s, int depth, uint16_t stop_elem, int meta);

/* The items of a sequence (or encapsulated pixel data) of undefined length, up to and
 * including the sequence delimiter. */
static ppnn_status items(scan *s, int depth, uint16_t g, uint16_t e)
{
    if (depth > DICOM_MAX_DEPTH)
        return fail(s, "sequences nested too deeply", g, e);
    for (;;) {
        if (s->end - s->p < 8)
            return fail(s, "sequence without its delimiter", g, e);
        uint16_t ig = rd16(s->p, s->big_endian), ie = rd16(s->p + 2, s->big_endian);
        uint32_t len = rd32(s->p + 4, s->big_endian);
        s->p += 8;
        if (ig != 0xfffe || (ie != 0xe000 && ie != 0xe0dd))
            return fail(s, "expected an item", ig, ie);
        if (ie == 0xe0dd)
            return PPNN_OK;
        if (len == UNDEFINED) {
            ppnn_status st = elements(s, depth + 1, 0xe00d, 0);
            if (st)
                return st;
            continue;
        }
        if (len > (size_t)(s->end - s->p))
            return fail(s, "item longer than the file", ig, ie);
        scan sub = *s;
        sub.end = s->p + len;
        ppnn_status st = elements(&sub, depth + 1, 0, 0);
        if (st && !(g == 0x7fe0 && e == 0x0010))
            return st;
        s->p += len; /* pixel data fragments hold compressed bytes, not elements */
    }
}

/* Data elements until the end of s, an item delimiter (FFFE,stop_elem) when stop_elem != 0,
 * or (meta group only) the first element of another group than 0002. */
static ppnn_status elements(scan *s, int depth, uint16_t stop_elem, int meta)
{
    while (s->p < s->end) {
        if (s->end - s->p < 8)
            return fail(s, "truncated element header", 0, 0);
        const int be = s->big_endian && !meta;
        uint16_t g = rd16(s->p, be), e = rd16(s->p + 2, be);
        if (meta && g != 0x0002)
            return PPNN_OK;
        uint32_t len;
        const uint8_t *vr = NULL;
        if (g == 0xfffe) { /* item / delimiter tags: no VR in any encoding */
            len = rd32(s->p + 4, be);
            s->p += 8;
            if (stop_elem && e == stop_elem)
                return PPNN_OK;
            return fail(s, "unexpected item tag", g, e);
        }
        if (s->explicit_vr || meta) {
            vr = s->p + 4;
            if (long_vr(vr)) {
                if (s->end - s->p < 12)
                    return fail(s, "truncated element header", g, e);
                len = rd32(s->p + 8, be);
                s->p += 12;
            } else if (short_vr(vr)) {
                len = rd16(s->p + 6, be);
                s->p += 8;
            } else {
                return fail(s, "unknown value representation", g, e);
            }
        } else {
            len = rd32(s->p + 4, be);
            s->p += 8;
        }
        if (len == UNDEFINED) {
            if (vr && memcmp(vr, "SQ", 2) && memcmp(vr, "UN", 2) && memcmp(vr, "OB", 2) &&
                memcmp(vr, "OW", 2))
                return fail(s, "undefined length on a value that cannot have one", g, e);
            ppnn_status st = items(s, depth + 1, g, e);
            if (st)
                return st;
            continue;
        }
        if (len > (size_t)(s->end - s->p))
            return fail(s, "value longer than the rest of the file", g, e);
        if (vr && !memcmp(vr, "SQ", 2)) { /* a sequence of defined length: its items */
            scan sub = *s;
            sub.end = s->p + len;
            while (sub.p < sub.end) {
                if (sub.end - sub.p < 8)
                    return fail(s, "truncated item", g, e);
                uint32_t il = rd32(sub.p + 4, be);
                if (rd16(sub.p, be) != 0xfffe || rd16(sub.p + 2, be) != 0xe000)
                    return fail(s, "expected an item", g, e);
                sub.p += 8;
                if (il == UNDEFINED) {
                    ppnn_status st = elements(&sub, depth + 1, 0xe00d, 0);
                    if (st)
                        return st;
                } else {
                    if (il > (size_t)(sub.end - sub.p))
                        return fail(s, "item longer than its sequence", g, e);
                    scan item = sub;
                    item.end = sub.p + il;
                    ppnn_status st = elements(&item, depth + 1, 0, 0);
                    if (st)
                        return st;
                    sub.p += il;
                }
            }
        }
        s->p += len;
    }
    return stop_elem ? fail(s, "item without its delimiter", 0, 0) : PPNN_OK;
}

ppnn_status _data_dicom_scan(const uint8_t *buf, size_t len, const char *name)
{
    if (len < 132 || memcmp(buf + 128, "DICM", 4) != 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: not a DICOM Part 10 file (no \"DICM\" after the "
                         "128-byte preamble)", name);
    scan s = {buf + 132, buf + len, 1, 0, name};
    const uint8_t *meta = s.p;
    ppnn_status st = elements(&s, 0, 0, 1);
    if (st)
        return st;
    /* The Transfer Syntax UID (0002,0010) decides how the data set is encoded. A group
     * length (0002,0000) must come first and count exactly the group's remaining bytes: DCMTK
     * reads the meta group up to the length it states, whatever the groups of the elements
     * there, so a length that disagrees with where group 0002 ends would make it read
     * elements (and allocate values) this walk never checked. */
    char uid[65] = "";
    for (const uint8_t *p = meta; p + 8 <= s.p;) {
        uint16_t e = rd16(p + 2, 0);
        size_t l = long_vr(p + 4) ? rd32(p + 8, 0) : rd16(p + 6, 0);
        size_t h = long_vr(p + 4) ? 12 : 8;
        if (e == 0x0000 && (p != meta || l != 4 || memcmp(p + 4, "UL", 2) ||
                            rd32(p + 8, 0) != (size_t)(s.p - (p + 12))))
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: corrupted DICOM file (the file meta "
                             "information group length does not match its elements)", name);
        if (e == 0x0010 && l < sizeof uid) {
            memcpy(uid, p + h, l);
            uid[l] = 0;
            while (l && (uid[l - 1] == 0 || uid[l - 1] == ' '))
                uid[--l] = 0;
        }
        p += h + l;
    }
    if (!uid[0])
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: DICOM file meta information has no transfer "
                         "syntax", name);
    if (!strcmp(uid, "1.2.840.10008.1.2.1.99"))
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: deflated DICOM data sets are not supported",
                         name);
    s.explicit_vr = strcmp(uid, "1.2.840.10008.1.2") != 0;
    s.big_endian = strcmp(uid, "1.2.840.10008.1.2.2") == 0;
    return elements(&s, 0, 0, 0);
}
