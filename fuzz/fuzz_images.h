/* Shared body of the image-decoder harnesses (fuzz_png.c, fuzz_npy.c, fuzz_dicom.c): any input
 * must decode into a tensor whose values are all in [0, 1], or be refused with a message and
 * nothing allocated; never crash, hang or leak. */
#ifndef PPNN_FUZZ_IMAGES_H
#define PPNN_FUZZ_IMAGES_H

#include <stdint.h>
#include <stdlib.h>

#include "ppnn/data.h"

typedef ppnn_status (*fuzz_decoder)(data_images *, const uint8_t *, size_t, const char *);

static inline int fuzz_image_decoder(fuzz_decoder decode, const uint8_t *data, size_t size)
{
    data_images im;
    if (decode(&im, data, size, "fuzz") == PPNN_OK) {
        size_t n = im.count * im.c * im.h * im.w;
        if (n == 0 || n > DATA_IMAGES_MAX_VALUES || !im.names || !im.names[im.count - 1])
            abort();
        for (size_t i = 0; i < n; i++)
            if (!(im.values[i] >= 0.0f && im.values[i] <= 1.0f))
                abort();
        data_images_free(&im);
    } else if (im.values || im.names || ppnn_last_error()[0] == 0) {
        abort();
    }
    return 0;
}

#endif
