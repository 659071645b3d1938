/* Calibration of an imported model: the ranges the planner checks precision against
 * (nn_layer.in_range, nn_model.out_range), recorded from a set of images exactly as training
 * records them (nn_record_ranges_from). Any image source fits: IDX data sets, image
 * directories or arrays once they are network inputs. */
#include "onnx/inner.h"

ppnn_status onnx_calibrate(nn_model *m, nn_input_fill fill, void *ctx, size_t count)
{
    if (!m->nlayers)
        return ppnn_fail(PPNN_ERR_PARAM, "calibration: the model has no layers");
    if (!count)
        return ppnn_fail(PPNN_ERR_PARAM, "calibration: no images");
    ppnn_status st = nn_record_ranges_from(m, fill, ctx, count);
    if (st)
        ppnn_error_context("calibration");
    return st;
}
