/* Bit packing of coefficient arrays: ceil(log2 q) bits per value instead of 64. */
#include <string.h>

#include "ppnn/util.h"

size_t ppnn_packed_bytes(size_t n, unsigned bits)
{
    /* n * bits may not overflow: callers pass n <= 2^40 and bits <= 64. */
    return (n * bits + 7) / 8;
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t x;
    memcpy(&x, p, 8); /* one unaligned load; the byte loop was not always merged into one */
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    return x;
}

static inline void store64(uint8_t *p, uint64_t x)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x);
#endif
    memcpy(p, &x, 8); /* inline: a call to ppnn_put_u64 per word cost more than the packing */
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
            store64(out + o, (uint64_t)acc);
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

/* Values i0..n-1 one at a time through a 128-bit window, starting at bit i0 * bits; the
 * window holds < bits + 64 <= 128 bits. Returns the index of the first value >= bound, n when
 * none is, n + 1 when the padding bits of the last byte are not zero. */
static size_t unpack_window(uint64_t *v, const uint8_t *in, size_t i0, size_t n, unsigned bits,
                            uint64_t bound)
{
    size_t nbytes = ppnn_packed_bytes(n, bits), bit = i0 * bits, p = bit / 8;
    ppnn_u128 acc = 0;
    unsigned have = 0;
    if (bit % 8 && p < nbytes) { /* the rest of a byte the fast loop shared with us */
        acc = in[p++] >> (bit % 8);
        have = 8 - (unsigned)(bit % 8);
    }
    uint64_t mask = bits == 64 ? ~(uint64_t)0 : (((uint64_t)1 << bits) - 1);
    for (size_t i = i0; i < n; i++) {
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
            return i;
        v[i] = x;
    }
    /* Padding bits of the last byte must be zero: a canonical encoding has one form. */
    while (p < nbytes) {
        acc |= (ppnn_u128)in[p++] << have;
        have += 8;
    }
    return acc != 0 ? n + 1 : n;
}

ppnn_status ppnn_bitunpack(uint64_t *v, const uint8_t *in, size_t n, unsigned bits,
                           uint64_t bound, const char *name)
{
    /* Fast path (bits <= 57: a value and its bit offset inside a byte, < 8 + 57 bits, lie in
     * one unaligned 64-bit load): value i is the load at byte i*bits/8 shifted by
     * (i*bits) % 8, independent of the others, so the loop has no carried window. It runs
     * while those 8 bytes lie inside the ceil(n*bits/8) packed bytes; the window loop does the
     * rest and the padding check. The bound is checked once for the whole run (`bad` is an
     * OR of comparisons), and only a failing run looks for the first bad index. */
    size_t done = 0;
    if (bits <= 57) {
        size_t nbytes = ppnn_packed_bytes(n, bits);
        size_t fast = nbytes >= 8 ? ((nbytes - 8) * 8) / bits + 1 : 0;
        fast = fast < n ? fast : n;
        const uint64_t mask = ((uint64_t)1 << bits) - 1;
        uint64_t bad = 0;
        for (size_t i = 0; i < fast; i++) {
            size_t bit = i * bits;
            uint64_t x = (load64(in + bit / 8) >> (bit % 8)) & mask;
            bad |= x >= bound;
            v[i] = x;
        }
        if (bad)
            for (size_t i = 0; i < fast; i++)
                if (v[i] >= bound)
                    return ppnn_fail(PPNN_ERR_FORMAT, "%s: coefficient %zu out of range "
                                     "(corrupted data)", name, i);
        done = fast;
    }
    size_t r = unpack_window(v, in, done, n, bits, bound);
    if (r < n)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: coefficient %zu out of range (corrupted data)",
                         name, r);
    if (r > n)
        return ppnn_fail(PPNN_ERR_FORMAT, "%s: non-zero padding bits (corrupted data)", name);
    return PPNN_OK;
}
