/* libFuzzer harness for the DICOM reader (data_dicom_parse), see fuzz_images.h. */
#include "fuzz_images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_image_decoder(data_dicom_parse, data, size);
}
