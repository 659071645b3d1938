/* Finite parameters that overflow float32 inside the network (weights of 3e38, a normalisation
 * std of 1e-38) give non-finite logits: nn_predict and nn_evaluate must report
 * PPNN_ERR_NUMERIC instead of returning them (issue 13 item 9). */
#include <stdlib.h>
#include <string.h>

#include "ppnn/nn.h"
#include "testutil.h"

static void make(nn_model *m, data_set *ds)
{
    static uint8_t pixels[4 * 8 * 8], labels[4];
    for (size_t i = 0; i < sizeof pixels; i++)
        pixels[i] = (uint8_t)(37 * i + 11);
    memset(ds, 0, sizeof *ds);
    ds->count = 4, ds->channels = 1, ds->rows = 8, ds->cols = 8, ds->pixels = pixels,
    ds->labels = labels;
    CHECK_OK(nn_arch_build(m, "cryptonets", NN_ACT_ELEMENT, (nn_shape){1, 8, 8}, 10));
    CHECK_OK(nn_model_init_params(m, ds, 1));
}

static void expect_numeric(const nn_model *m, const data_set *ds, const char *what)
{
    float x[4 * 64], logits[4 * 10];
    nn_model_normalize(m, x, ds->pixels, 4);
    ppnn_status st = nn_predict(m, logits, x, 4);
    CHECK_MSG(st == PPNN_ERR_NUMERIC, "%s: nn_predict gave %s", what, ppnn_status_name(st));
    size_t correct[10], total[10];
    st = nn_evaluate(m, ds, correct, total);
    CHECK_MSG(st == PPNN_ERR_NUMERIC, "%s: nn_evaluate gave %s", what, ppnn_status_name(st));
    CHECK(strstr(ppnn_last_error(), "not finite") != NULL);
}

int main(void)
{
    nn_model m;
    data_set ds;
    make(&m, &ds);
    float x[4 * 64], logits[4 * 10];
    nn_model_normalize(&m, x, ds.pixels, 4);
    CHECK_OK(nn_predict(&m, logits, x, 4)); /* the model as initialised is fine */
    for (size_t i = 0; i < m.nparams; i++)
        m.params[i] = 3e38f;
    expect_numeric(&m, &ds, "weights 3e38");
    nn_model_free(&m);

    make(&m, &ds);
    m.norm_std = 1e-38f;
    expect_numeric(&m, &ds, "std 1e-38");
    nn_model_free(&m);
    return tu_finish("test_nn_finite");
}
