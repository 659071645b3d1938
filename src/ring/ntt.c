/* Per-prime NTT tables, portable negacyclic NTT (Harvey lazy butterflies), kernel dispatch. */
#include "inner.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int ring_cpu_has_avx512dq(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw");
}

int ring_cpu_has_avx512ifma(void)
{
    return ring_cpu_has_avx512dq() && __builtin_cpu_supports("avx512ifma");
}

static int ifma_prime(uint64_t q) { return q < ((uint64_t)1 << RING_IFMA_MAX_BITS); }

ring_impl ring_best_impl(uint64_t q)
{
    if (ifma_prime(q) && ring_cpu_has_avx512ifma())
        return RING_IMPL_AVX512;
    return ring_cpu_has_avx512dq() ? RING_IMPL_AVX512DQ : RING_IMPL_PORTABLE;
}

static size_t bitrev(size_t x, unsigned bits)
{
    size_t r = 0;
    for (unsigned i = 0; i < bits; i++)
        r |= ((x >> i) & 1) << (bits - 1 - i);
    return r;
}

/* tab[k] = w^brv(k) for k < n, with Shoup companions (64- and, if s52 != NULL, 52-bit). */
static void power_table(uint64_t *tab, uint64_t *s64, uint64_t *s52, uint64_t w,
                        const ring_prime *p)
{
    uint64_t x = 1;
    for (size_t i = 0; i < p->n; i++) {
        size_t k = bitrev(i, p->logn);
        tab[k] = x;
        s64[k] = mq_shoup(x, p->q);
        if (s52)
            s52[k] = (uint64_t)(((mq_u128)x << 52) / p->q);
        x = mq_mul(x, w, &p->mod);
    }
}

ppnn_status ring_prime_init_impl(ring_prime *p, uint64_t q, unsigned logn, ring_impl impl)
{
    memset(p, 0, sizeof *p);
    if (logn < RING_MIN_LOGN || logn > RING_MAX_LOGN)
        return ppnn_fail(PPNN_ERR_PARAM, "ring degree 2^%u is outside 2^%d..2^%d", logn,
                         RING_MIN_LOGN, RING_MAX_LOGN);
    size_t n = (size_t)1 << logn;
    if (q >= ((uint64_t)1 << 61) || !mq_is_prime(q) || (q - 1) % (2 * n) != 0)
        return ppnn_fail(PPNN_ERR_PARAM,
                         "modulus %llu is not an NTT prime for N = %zu (need prime q < 2^61, "
                         "q = 1 mod 2N)",
                         (unsigned long long)q, n);
    if (impl == RING_IMPL_AUTO)
        impl = ring_best_impl(q);
    if (impl == RING_IMPL_AVX512 && !ring_cpu_has_avx512ifma())
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "AVX-512 IFMA kernels requested but this CPU "
                                               "lacks avx512ifma");
    if (impl == RING_IMPL_AVX512 && !ifma_prime(q))
        return ppnn_fail(PPNN_ERR_UNSUPPORTED,
                         "AVX-512 IFMA kernels need q < 2^%d (q = %llu)", RING_IFMA_MAX_BITS,
                         (unsigned long long)q);
    if (impl == RING_IMPL_AVX512DQ && !ring_cpu_has_avx512dq())
        return ppnn_fail(PPNN_ERR_UNSUPPORTED, "AVX-512 F/DQ kernels requested but this CPU "
                                               "lacks avx512f/dq/vl/bw");
    if (impl != RING_IMPL_AVX512 && impl != RING_IMPL_AVX512DQ && impl != RING_IMPL_PORTABLE)
        return ppnn_fail(PPNN_ERR_PARAM, "unknown ring implementation %d", (int)impl);

    uint64_t psi;
    ppnn_status st = mq_primitive_root_2n(&psi, q, 2 * n);
    if (st != PPNN_OK)
        return st;
    int avx = impl == RING_IMPL_AVX512;
    size_t ntab = avx ? 6 : 4;
    /* n >= 4 words of 8 bytes per table: the size is a multiple of 64 (aligned_alloc rule). */
    uint64_t *mem = aligned_alloc(64, ntab * n * sizeof(uint64_t));
    if (!mem)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for NTT tables (N = %zu)", n);
    mq_modulus_init(&p->mod, q);
    p->q = q;
    p->logn = logn;
    p->n = n;
    p->psi = psi;
    p->mem_ = mem;
    p->psi_rev = mem;
    p->psi_rev_shoup = mem + n;
    p->ipsi_rev = mem + 2 * n;
    p->ipsi_rev_shoup = mem + 3 * n;
    if (avx) {
        p->psi_rev_shoup52 = mem + 4 * n;
        p->ipsi_rev_shoup52 = mem + 5 * n;
    }
    power_table(p->psi_rev, p->psi_rev_shoup, p->psi_rev_shoup52, psi, p);
    power_table(p->ipsi_rev, p->ipsi_rev_shoup, p->ipsi_rev_shoup52, mq_inv(psi, &p->mod), p);
    p->n_inv = mq_inv(n % q, &p->mod);
    p->n_inv_shoup = mq_shoup(p->n_inv, q);
    p->n_inv_shoup52 = (uint64_t)(((mq_u128)p->n_inv << 52) / q);
    p->kern = avx                          ? &ring_kernels_avx512
              : impl == RING_IMPL_AVX512DQ ? &ring_kernels_avx512dq
                                           : &ring_kernels_portable;
    return PPNN_OK;
}

ppnn_status ring_prime_init(ring_prime *p, uint64_t q, unsigned logn)
{
    return ring_prime_init_impl(p, q, logn, RING_IMPL_AUTO);
}

void ring_prime_free(ring_prime *p)
{
    if (!p)
        return;
    free(p->mem_);
    memset(p, 0, sizeof *p);
}

/* ---- portable NTT ----
 * Forward: Cooley-Tukey, twiddle psi_rev[m+i] for block i of stage m (Longa-Naehrig / SEAL
 * order). Harvey's lazy butterfly keeps every value in [0, 4q): X in [0,4q) is brought to
 * [0,2q), T = W*Y mod q in [0,2q) (lazy Shoup, valid for any 64-bit Y), then X+T < 4q and
 * X-T+2q in (0, 4q). 4q < 2^63 because q < 2^61. */
void ring_ntt_forward_portable(uint64_t *a, const ring_prime *p)
{
    const size_t n = p->n;
    const uint64_t q = p->q, q2 = 2 * q;
    size_t t = n;
    for (size_t m = 1; m < n; m <<= 1) {
        t >>= 1;
        for (size_t i = 0; i < m; i++) {
            const uint64_t w = p->psi_rev[m + i], ws = p->psi_rev_shoup[m + i];
            uint64_t *x = a + 2 * i * t, *y = x + t;
            for (size_t j = 0; j < t; j++) {
                uint64_t u = x[j];
                u = u >= q2 ? u - q2 : u;
                uint64_t v = mq_mul_shoup_lazy(y[j], w, ws, q);
                x[j] = u + v;
                y[j] = u - v + q2;
            }
        }
    }
    for (size_t j = 0; j < n; j++) {
        uint64_t u = a[j];
        u = u >= q2 ? u - q2 : u;
        a[j] = u >= q ? u - q : u;
    }
}

/* Inverse: Gentleman-Sande stages in reverse order, twiddle psi^-brv(m+i) (the inverse of the
 * forward twiddle of the same butterfly). Values stay in [0, 2q): U+V < 4q is reduced once,
 * (U - V + 2q) < 4q goes through lazy Shoup to [0, 2q). The factor 2 per stage accumulates to
 * N and is removed by the final multiplication by N^-1 (Shoup, canonical output). */
void ring_ntt_inverse_portable(uint64_t *a, const ring_prime *p)
{
    const size_t n = p->n;
    const uint64_t q = p->q, q2 = 2 * q;
    size_t t = 1;
    for (size_t m = n >> 1; m >= 1; m >>= 1) {
        for (size_t i = 0; i < m; i++) {
            const uint64_t w = p->ipsi_rev[m + i], ws = p->ipsi_rev_shoup[m + i];
            uint64_t *x = a + 2 * i * t, *y = x + t;
            for (size_t j = 0; j < t; j++) {
                uint64_t u = x[j], v = y[j];
                uint64_t s = u + v;
                x[j] = s >= q2 ? s - q2 : s;
                y[j] = mq_mul_shoup_lazy(u - v + q2, w, ws, q);
            }
        }
        t <<= 1;
    }
    for (size_t j = 0; j < n; j++)
        a[j] = mq_mul_shoup(a[j], p->n_inv, p->n_inv_shoup, q);
}

/* ---- dispatching wrappers ---- */
void _ring_ntt_forward(uint64_t *a, const ring_prime *p) { p->kern->ntt_forward(a, p); }
void _ring_ntt_inverse(uint64_t *a, const ring_prime *p) { p->kern->ntt_inverse(a, p); }
void _ring_add(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    p->kern->add(r, a, b, p);
}
void _ring_sub(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    p->kern->sub(r, a, b, p);
}
void _ring_neg(uint64_t *r, const uint64_t *a, const ring_prime *p) { p->kern->neg(r, a, p); }
void _ring_mul(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    p->kern->mul(r, a, b, p);
}
void _ring_muladd(uint64_t *r, const uint64_t *a, const uint64_t *b, const ring_prime *p)
{
    assert(r != a && r != b);
    p->kern->muladd(r, a, b, p);
}
void _ring_mul_scalar(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p)
{
    assert(w < p->q);
    p->kern->mul_scalar(r, a, w, p);
}
void _ring_muladd_scalar(uint64_t *r, const uint64_t *a, uint64_t w, const ring_prime *p)
{
    assert(r != a && w < p->q);
    p->kern->muladd_scalar(r, a, w, p);
}
void _ring_sub_mul_scalar(uint64_t *r, const uint64_t *a, const uint64_t *b, uint64_t w,
                          const ring_prime *p)
{
    assert(w < p->q);
    p->kern->sub_mul_scalar(r, a, b, w, p);
}
void _ring_extend_single(uint64_t *r, const uint64_t *a, const ring_prime *from,
                         const ring_prime *to)
{
    assert(from->n == to->n);
    to->kern->extend_single(r, a, from, to);
}
