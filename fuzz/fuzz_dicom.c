/* libFuzzer harness for the DICOM reader (data_dicom_parse): any input must decode into a tensor whose
 * values are all in [0, 1], or be refused with a message; never crash, hang or leak. */
#include <stdint.h>
#include <stdlib.h>

#include "ppnn/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    data_images im;
    if (data_dicom_parse(&im, data, size, "fuzz") == PPNN_OK) {
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
