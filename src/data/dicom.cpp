/* DICOM decoder: a thin C++ shim over DCMTK's dcmdata with the C API data_dicom_parse.
 *
 * Accepted: a DICOM Part 10 file (preamble + "DICM" + meta header) in an uncompressed transfer
 * syntax (implicit / explicit VR little endian, explicit big endian, deflated), Samples per
 * Pixel 1, Photometric Interpretation MONOCHROME1 or MONOCHROME2, Bits Allocated 8 or 16 with
 * High Bit = Bits Stored - 1, unsigned or two's-complement pixels, any Number of Frames (each
 * frame one image). Compressed (encapsulated) pixel data, colour, and VOI LUT functions other
 * than LINEAR are refused with a message saying so.
 *
 * Values (docs/images.md): stored value p -> modality value v = p * RescaleSlope +
 * RescaleIntercept (defaults 1 and 0) -> [0, 1] by the DICOM linear window function
 * (PS3.3 C.11.2.1.2) with the file's first Window Center / Window Width pair, or, when the file
 * has none, by (v - min) / (max - min) over all frames of the file (0 when max = min);
 * MONOCHROME1 (white = 0) is inverted to x = 1 - x so that larger always means brighter. */
#include "dcmtk/config/osconfig.h"
#include "dcmtk/dcmdata/dcdeftag.h"
#include "dcmtk/dcmdata/dcfilefo.h"
#include "dcmtk/dcmdata/dcistrmb.h"
#include "dcmtk/dcmdata/dcxfer.h"
#include "dcmtk/oflog/oflog.h"

#include <cmath>
#include <cstring>
#include <new>
#include <vector>

#include "data/inner.h"

namespace {

/* DCMTK logs warnings about every oddity to stderr; our errors are our own one-line messages. */
void quiet_dcmtk()
{
    static bool done = false;
    if (!done) {
        OFLog::configure(OFLogger::OFF_LOG_LEVEL);
        done = true;
    }
}

ppnn_status need_u16(DcmDataset *ds, const DcmTagKey &tag, const char *what, Uint16 *v,
                     const char *name)
{
    if (ds->findAndGetUint16(tag, *v).bad())
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: DICOM attribute %s is missing or malformed", name,
                         what);
    return PPNN_OK;
}

/* Optional decimal string attribute (first value); `def` when absent. */
ppnn_status opt_f64(DcmDataset *ds, const DcmTagKey &tag, const char *what, double def,
                    double *v, int *present, const char *name)
{
    *v = def;
    if (present)
        *present = 0;
    if (!ds->tagExistsWithValue(tag))
        return PPNN_OK;
    Float64 x;
    if (ds->findAndGetFloat64(tag, x, 0).bad() || !std::isfinite(x))
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: DICOM attribute %s is malformed", name, what);
    *v = x;
    if (present)
        *present = 1;
    return PPNN_OK;
}

/* DICOM PS3.3 C.11.2.1.2.1: the LINEAR VOI function, output range [0, 1]. */
double window_linear(double v, double c, double w)
{
    if (w <= 1)
        return v <= c - 0.5 ? 0.0 : 1.0;
    const double lo = c - 0.5 - (w - 1) / 2, hi = c - 0.5 + (w - 1) / 2;
    if (v <= lo)
        return 0;
    if (v > hi)
        return 1;
    return (v - (c - 0.5)) / (w - 1) + 0.5;
}

ppnn_status parse(data_images *out, const uint8_t *buf, size_t len, const char *name)
{
    ppnn_status st = _data_dicom_scan(buf, len, name);
    if (st)
        return st;
    quiet_dcmtk();
    DcmInputBufferStream is;
    is.setBuffer(buf, static_cast<offile_off_t>(len));
    is.setEos();
    DcmFileFormat ff;
    ff.transferInit();
    OFCondition cond = ff.read(is, EXS_Unknown, EGL_noChange, DCM_MaxReadLength);
    ff.transferEnd();
    if (cond.bad())
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: corrupted or truncated DICOM file (%s)", name,
                         cond.text());
    DcmDataset *ds = ff.getDataset();
    DcmXfer xfer(ds->getOriginalXfer());
    if (xfer.isEncapsulated())
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: compressed DICOM pixel data (%s) is not "
                         "supported; decompress it first (e.g. dcmdjpeg / dcmdrle)", name,
                         xfer.getXferName());
    Uint16 rows, cols, spp, ba, bs, hb, pr;
    if ((st = need_u16(ds, DCM_SamplesPerPixel, "SamplesPerPixel", &spp, name)) ||
        (st = need_u16(ds, DCM_Rows, "Rows", &rows, name)) ||
        (st = need_u16(ds, DCM_Columns, "Columns", &cols, name)) ||
        (st = need_u16(ds, DCM_BitsAllocated, "BitsAllocated", &ba, name)) ||
        (st = need_u16(ds, DCM_BitsStored, "BitsStored", &bs, name)) ||
        (st = need_u16(ds, DCM_HighBit, "HighBit", &hb, name)) ||
        (st = need_u16(ds, DCM_PixelRepresentation, "PixelRepresentation", &pr, name)))
        return st;
    OFString photo;
    if (ds->findAndGetOFString(DCM_PhotometricInterpretation, photo).bad())
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: DICOM attribute PhotometricInterpretation is "
                         "missing", name);
    const bool mono1 = photo == "MONOCHROME1";
    if (spp != 1 || (!mono1 && photo != "MONOCHROME2"))
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: DICOM image is %s with %u samples per pixel; "
                         "only monochrome (MONOCHROME1/2) images are supported", name,
                         photo.c_str(), spp);
    if ((ba != 8 && ba != 16) || bs == 0 || bs > ba || hb != bs - 1 || pr > 1)
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: DICOM pixel layout not supported (bits "
                         "allocated %u, stored %u, high bit %u, representation %u)", name, ba,
                         bs, hb, pr);
    long frames = 1;
    if (ds->tagExistsWithValue(DCM_NumberOfFrames)) {
        Sint32 f;
        if (ds->findAndGetSint32(DCM_NumberOfFrames, f).bad() || f < 1)
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: DICOM NumberOfFrames is malformed", name);
        frames = f;
    }
    OFString voi;
    if (ds->findAndGetOFString(DCM_VOILUTFunction, voi).good() && voi != "LINEAR")
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "%s: DICOM VOI LUT function %s is not supported "
                         "(only LINEAR)", name, voi.c_str());
    double slope, icept, wc, ww;
    int have_c, have_w;
    if ((st = opt_f64(ds, DCM_RescaleSlope, "RescaleSlope", 1, &slope, nullptr, name)) ||
        (st = opt_f64(ds, DCM_RescaleIntercept, "RescaleIntercept", 0, &icept, nullptr, name)) ||
        (st = opt_f64(ds, DCM_WindowCenter, "WindowCenter", 0, &wc, &have_c, name)) ||
        (st = opt_f64(ds, DCM_WindowWidth, "WindowWidth", 0, &ww, &have_w, name)))
        return st;
    if (have_c != have_w || (have_w && ww < 1))
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: DICOM window needs both Window Center and Window "
                         "Width >= 1", name);
    /* The pixel data must hold every frame before the tensor is allocated by the header's
     * sizes (the pre-scan bounded it by the file's length). */
    const size_t n = static_cast<size_t>(frames) * rows * cols; /* < 2^31 * 2^32: no overflow */
    const Uint8 *p8 = nullptr;
    const Uint16 *p16 = nullptr;
    unsigned long count = 0;
    OFCondition pc = ba == 8 ? ds->findAndGetUint8Array(DCM_PixelData, p8, &count)
                             : ds->findAndGetUint16Array(DCM_PixelData, p16, &count);
    if (pc.bad() || count < n)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: DICOM pixel data is missing or shorter (%lu "
                         "values) than %ld frame(s) of %ux%u", name, pc.bad() ? 0ul : count,
                         frames, rows, cols);
    if ((st = _data_images_alloc(out, static_cast<size_t>(frames), 1, rows, cols, name)))
        return st;
    /* Stored value -> modality value (double: 16-bit values times any slope stay exact enough). */
    const uint32_t mask = (1u << bs) - 1, sign = 1u << (bs - 1); /* bs <= 16 */
    double lo = INFINITY, hi = -INFINITY;
    std::vector<double> v;
    try {
        v.resize(n);
    } catch (const std::bad_alloc &) {
        data_images_free(out);
        return ppnn_fail(PPNN_ERR_NOMEM, "%s: out of memory", name);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t raw = (ba == 8 ? p8[i] : p16[i]) & mask;
        double s = pr && (raw & sign) ? static_cast<double>(raw) - static_cast<double>(mask) - 1
                                      : static_cast<double>(raw);
        v[i] = s * slope + icept;
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    for (size_t i = 0; i < n; i++) {
        double x = have_w ? window_linear(v[i], wc, ww) : (hi > lo ? (v[i] - lo) / (hi - lo) : 0);
        out->values[i] = static_cast<float>(mono1 ? 1 - x : x);
    }
    return PPNN_OK;
}

} // namespace

extern "C" ppnn_status data_dicom_parse(data_images *out, const uint8_t *buf, size_t len,
                                        const char *name)
{
    std::memset(out, 0, sizeof *out);
    try {
        return parse(out, buf, len, name);
    } catch (...) { /* no C++ exception may cross into C */
        data_images_free(out);
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: DICOM file could not be decoded", name);
    }
}
