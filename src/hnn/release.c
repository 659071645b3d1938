/* Release policy for decrypted logits (hnn.h hnn_release_flood, docs/security.md): the
 * flooding of ckks_flood sized by the plan's own error estimate, and the refusal when the
 * flooded logits would be noise. */
#include <math.h>

#include "hnn/inner.h"

ppnn_status hnn_release_flood(ckks_flood *f, double *slot_sigma, const hnn_plan *p,
                              const ckks_params *params, unsigned stat_bits, double queries,
                              int force)
{
    f->error = p->est_error;
    f->stat_bits = stat_bits;
    f->queries = queries;
    *slot_sigma = ckks_flood_slot_sigma(f, params);
    if (!(f->error > 0) || stat_bits < 1 || stat_bits > CKKS_FLOOD_MAX_BITS || !(queries >= 1))
        return ppnn_fail(PPNN_ERR_PARAM, "release: statistical security %u bits (1..%u) and %g "
                         "released decryptions (>= 1) needed", stat_bits, CKKS_FLOOD_MAX_BITS,
                         queries);
    const double limit = p->max_logit / HNN_RELEASE_MAX_NOISE;
    if (*slot_sigma > limit && !force)
        return ppnn_fail(PPNN_ERR_PARAM,
                         "release: flooding for %u-bit security over %g released decryptions "
                         "with the plan's error estimate %.2g adds noise of sigma %.3g to every "
                         "logit (logits up to %.3g): the released logits would be useless; "
                         "release labels only, or override knowingly",
                         stat_bits, queries, f->error, *slot_sigma, p->max_logit);
    return PPNN_OK;
}
