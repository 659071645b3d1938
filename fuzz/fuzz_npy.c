/* libFuzzer harness for the NPY reader (data_npy_parse), see fuzz_images.h. */
#include "fuzz_images.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_image_decoder(data_npy_parse, data, size);
}
