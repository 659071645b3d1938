/* libFuzzer harness for the ONNX importer: any input must import or be refused with a
 * message, never crash, hang or allocate without bound (the protobuf allocator is budgeted
 * by the input size). An imported model must be a valid ppnn model: it serialises and parses
 * back to the same bytes. The same bytes are also tried as a TensorProto (test-case data). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ppnn/onnx.h"

/* The round trip runs on models of up to 2^18 trainable floats. A few hundred bytes of ONNX
 * can declare dims whose lowering yields up to NN_MAX_PARAMS (2^26) floats, and the round trip
 * (two serialisations, one parse, a compare) of such a model took seconds under ASan: those
 * inputs set the pace (20 000 runs/s on the seeds, < 1 000/s once the corpus held them). The
 * import itself, with its limits, still runs on every input; the round trip's code is the same
 * per-layer and per-float loops for small models, which reach it. */
#define FUZZ_ROUND_TRIP_PARAMS ((size_t)1 << 18)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nn_model m;
    ppnn_status st = onnx_import(&m, data, size, "fuzz.onnx", NULL);
    if (st == PPNN_OK && m.nparams > FUZZ_ROUND_TRIP_PARAMS) {
        nn_model_free(&m);
    } else if (st == PPNN_OK) {
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
