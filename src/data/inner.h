/* Internal header of the data layer: what the image decoders share. */
#ifndef PPNN_DATA_INNER_H
#define PPNN_DATA_INNER_H

#include "ppnn/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Allocates out for count images of c x h x w (values uninitialised) named after `name`
 * ("name" for a single image, "name[i]" otherwise), after checking every dimension against the
 * DATA_IMAGE_* limits (PPNN_ERR_FORMAT naming `name` and the shape when one is exceeded). */
PPNN_MUST_CHECK ppnn_status _data_images_alloc(data_images *out, size_t count, size_t c,
                                               size_t h, size_t w, const char *name);

/* Frees n strings and the array holding them (names may be NULL). */
void _data_free_names(char **names, size_t n);

/* The product of n factors, or 0 when it exceeds `cap` (overflow included) or a factor is 0. */
size_t _data_checked_product(const size_t *f, size_t n, size_t cap);

/* Walks every element header of a DICOM Part 10 file and refuses any length beyond the bytes
 * present (dicom_scan.c), so that DCMTK, which allocates announced lengths, never allocates
 * more than the file holds. */
PPNN_MUST_CHECK ppnn_status _data_dicom_scan(const uint8_t *buf, size_t len, const char *name);

#ifdef __cplusplus
}
#endif
#endif
