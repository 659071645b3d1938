/* One normalisation (issue 13 item 12): every path turns a pixel byte p into the same float
 * p / 255 — data_normalize (encrypt), hnn_plan_inputs (what bench/compare encrypt) and
 * nn_model_normalize with the identity normalisation (eval, demo) — for all 256 bytes. They
 * used to differ (p * (1/255) against p / 255) for 126 of them. */
#include <string.h>

#include "ppnn/hnn.h"
#include "testutil.h"

int main(void)
{
    uint8_t px[256];
    for (int i = 0; i < 256; i++)
        px[i] = (uint8_t)i;
    float a[256], b[256], c[256];
    nn_model m;
    memset(&m, 0, sizeof m);
    m.input = (nn_shape){1, 16, 16};
    m.norm_mean = 0.1307f, m.norm_std = 0.3081f; /* folded by the planner, not applied */
    data_normalize(a, px, 256);
    hnn_plan_inputs(b, &m, px, 1);
    m.norm_mean = 0, m.norm_std = 1;
    nn_model_normalize(&m, c, px, 1);
    int same_plan = 0, same_model = 0, exact = 0;
    for (int i = 0; i < 256; i++) {
        same_plan += !memcmp(&a[i], &b[i], sizeof(float));
        same_model += !memcmp(&a[i], &c[i], sizeof(float));
        exact += a[i] == (float)i / 255.0f; /* the correctly rounded quotient */
    }
    CHECK_MSG(same_plan == 256, "hnn_plan_inputs differs from data_normalize on %d bytes",
              256 - same_plan);
    CHECK_MSG(same_model == 256, "nn_model_normalize differs on %d bytes", 256 - same_model);
    CHECK_MSG(exact == 256, "data_normalize is not p / 255 on %d bytes", 256 - exact);
    CHECK(a[0] == 0.0f && a[255] == 1.0f);
    return tu_finish("test_normalize");
}
