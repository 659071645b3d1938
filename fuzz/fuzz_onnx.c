/* libFuzzer harness for the ONNX importer: any input must import or be refused with a
 * message, never crash, hang or allocate without bound (the protobuf allocator is budgeted
 * by the input size). An imported model must be a valid ppnn model: it serialises and parses
 * back to the same bytes. The same bytes are also tried as a TensorProto (test-case data). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/onnx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_model m;
    if (onnx_import(&m, data, size, "fuzz.onnx", NULL) == PPNN_OK) {
        uint8_t *buf, *again;
        size_t len, len2;
        nn_model back;
        if (nn_model_serialize(&buf, &len, &m) != PPNN_OK)
            abort();
        if (nn_model_parse(&back, buf, len) != PPNN_OK)
            abort();
        if (nn_model_serialize(&again, &len2, &back) != PPNN_OK || len2 != len ||
            memcmp(buf, again, len))
            abort();
        free(buf), free(again);
        nn_model_free(&back);
        nn_model_free(&m);
    } else if (!ppnn_last_error()[0]) {
        abort(); /* a refusal always says why */
    }
    onnx_tensor t;
    if (onnx_tensor_parse(&t, data, size, "fuzz.pb") == PPNN_OK)
        onnx_tensor_free(&t);
    return 0;
}
