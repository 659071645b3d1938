/* libFuzzer harness for the ciphertext-batch loader (parameters rebuilt from the input). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/ckks_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    if (size)
        memcpy(buf, data, size);
    ckks_ciphertext *cts = NULL;
    size_t count = 0;
    ckks_batch_info info;
    ckks_params *params = NULL;
    if (ckks_batch_parse(&cts, &count, &info, &params, buf, size, "fuzz") == PPNN_OK) {
        for (size_t i = 0; i < count; i++)
            ckks_ct_free(&cts[i]);
        free(cts);
        ckks_params_free(params);
    } else if (params) {
        abort(); /* a failed load must not leak a parameter set */
    }
    return 0;
}
