/* Bit packing of coefficient arrays: ceil(log2 q) bits per value instead of 64. */
#include <string.h>

#include "ppnn/util.h"

size_t ppnn_packed_bytes(size_t n, unsigned bits)
{
    /* n * bits may not overflow: callers pass n <= 2^40 and bits <= 64. */
    return (n * bits + 7) / 8;
}

static uint64_t load64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    return x; /* compilers turn this into one little-endian load */
}

void ppnn_bitpack(uint8_t *out, const uint64_t *v, size_t n, unsigned bits)
{
    /* A 128-bit window: at most 63 pending bits + 64 new bits = 127 < 128; whole 64-bit words
     * are flushed as soon as they are complete. */
    ppnn_u128 acc = 0;
    unsigned have = 0;
    size_t o = 0;
    uint64_t mask = bits == 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
    for (size_t i = 0; i < n; i++) {
        acc |= (ppnn_u128)(v[i] & mask) << have;
        have += bits;
        if (have >= 64) {
            ppnn_put_u64(out + o, (uint64_t)acc);
            o += 8;
            acc >>= 64;
            have -= 64;
        }
    }
    for (; have > 0; have = have > 8 ? have - 8 : 0) {
        out[o++] = (uint8_t)acc;
        acc >>= 8;
    }
}

ppnn_status ppnn_bitunpack(uint64_t *v, const uint8_t *in, size_t n, unsigned bits,
                           uint64_t bound, const char *name)
{
    /* Reads whole 64-bit words while they lie inside the ceil(n*bits/8) packed bytes, bytes
     * at the end; the window holds < bits + 64 <= 128 bits. */
    size_t nbytes = ppnn_packed_bytes(n, bits), p = 0;
    ppnn_u128 acc = 0;
    unsigned have = 0;
    uint64_t mask = bits == 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
    for (size_t i = 0; i < n; i++) {
        if (have < bits) {
            if (p + 8 <= nbytes) {
                acc |= (ppnn_u128)load64(in + p) << have;
                p += 8;
                have += 64;
            } else {
                while (have < bits) {
                    acc |= (ppnn_u128)in[p++] << have;
                    have += 8;
                }
            }
        }
        uint64_t x = (uint64_t)acc & mask;
        acc = bits == 64 ? acc >> 64 : acc >> bits;
        have -= bits;
        if (x >= bound)
            return ppnn_fail(PPNN_ERR_FORMAT, "%s: coefficient %zu out of range (corrupted data)",
                             name, i);
        v[i] = x;
    }
    /* Padding bits of the last byte must be zero: a canonical encoding has one form. */
    while (p < nbytes) {
        acc |= (ppnn_u128)in[p++] << have;
        have += 8;
    }
    if (acc != 0)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: non-zero padding bits (corrupted data)", name);
    return PPNN_OK;
}
