/* libFuzzer harness for the client's side of a result: ckks_batch_load against the secret
 * key's parameters, then decryption of what loaded (hnn_decrypt_batch for element-wise
 * logits, one ciphertext per image for channel-wise), as `ppnn decrypt` does. A hostile
 * server controls every byte of this file. */
#include <math.h>

#include "fuzz_common.h"
#include "ppnn/hnn.h"

static const ckks_secret_key *secret(void)
{
    static ckks_secret_key sk;
    if (!sk.s && ckks_keygen_secret(&sk, fuzz_seed_params()))
        abort();
    return &sk;
}

static void try_one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_scratch(data, size);
    ckks_params *seed = (ckks_params *)fuzz_seed_params(), *p = seed;
    ckks_ciphertext *cts = NULL;
    size_t count = 0;
    ckks_batch_info info;
    if (ckks_batch_load(&cts, &count, &info, &p, path) != PPNN_OK) {
        if (p != seed || cts)
            abort();
        return;
    }
    enum { MAX_VALUES = 4096 };
    static double logits[MAX_VALUES];
    if (info.packing == CKKS_PACKING_ELEMENT && info.images * count <= MAX_VALUES) {
        if (hnn_decrypt_batch(logits, secret(), cts, count, (size_t)info.images, 0) == PPNN_OK)
            for (size_t i = 0; i < info.images * count; i++)
                if (isnan(logits[i]))
                    abort(); /* finite scale, bounded coefficients: never NaN */
    } else if (info.packing == CKKS_PACKING_CHANNEL) {
        ckks_plaintext pt = {0};
        for (size_t i = 0; i < count && i < 4; i++)
            if (ckks_decrypt(&pt, secret(), &cts[i]) == PPNN_OK &&
                ckks_decode(logits, cts[i].params->n / 2 < 16 ? cts[i].params->n / 2 : 16,
                            &pt) != PPNN_OK)
                abort(); /* up to 16 slots: N = 16 has 8 */
        ckks_pt_free(&pt);
    }
    for (size_t i = 0; i < count; i++)
        ckks_ct_free(&cts[i]);
    free(cts);
}

FUZZ_CONTAINER_HARNESS(try_one)
