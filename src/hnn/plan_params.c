/* One planning path (hnn.h): the plan infer, demo, compare, bench, the service and MPI ranks
 * all run for a parameter set — as few levels as the model needs, presets named on refusal. */
#include <math.h>
#include <string.h>

#include "hnn/inner.h"

void hnn_budget_for_preset(hnn_budget *b, const char *name)
{
    ckks_spec spec;
    memset(b, 0, sizeof *b);
    if (ckks_preset(&spec, name) != PPNN_OK)
        return;
    b->name = name;
    b->levels = spec.nq - 1;
    b->log2_scale = log2(spec.scale);
    /* q_0 has q_bits[0] bits, so log2(q_0) lies in [bits - 1, bits): half a bit below the top
     * is within 0.5 of the truth without building the parameter set. */
    b->log2_q0 = spec.q_bits[0] - 0.5;
    b->logn = spec.logn;
}

ppnn_status hnn_plan_for_params(hnn_plan **out, const nn_model *m, const ckks_params *params,
                                const char *preset_name)
{
    *out = NULL;
    const char *name = preset_name ? preset_name : params->logn == 13 ? "n13" : "n14";
    hnn_budget b, alt[2];
    hnn_budget_from_params(&b, params, name);
    hnn_budget_for_preset(&alt[0], "n13");
    hnn_budget_for_preset(&alt[1], "n14");
    /* Use as few levels as the model needs: every unused prime above them would only make each
     * operation slower (the executor never reads the rows above the plan's top level). */
    for (size_t levels = 1; levels < b.levels; levels++) {
        hnn_budget fewer = b;
        fewer.levels = levels;
        if (hnn_plan_new(out, m, &fewer, NULL, 0) == PPNN_OK)
            return PPNN_OK;
    }
    return hnn_plan_new(out, m, &b, alt, 2);
}
