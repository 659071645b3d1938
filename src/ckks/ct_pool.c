/* Ciphertext buffer pool (ckks.h): size-classed free lists under a byte cap.
 *
 * Why: the executor allocates and frees thousands of ciphertexts per batch (every input, every
 * intermediate of every tile). Each is hundreds of KiB, so glibc maps it fresh (main.c fixes
 * the mmap threshold so that freed ciphertexts do go back to the kernel) and every page faults
 * on first touch: CryptoNets at n13 touched ~1.7 GB of fresh pages per batch, 0.9 s of system
 * time. Reusing buffers of the same shape touches only the live set once.
 *
 * Bound: total = in_use + kept only grows when a new buffer is allocated; before that, kept
 * buffers of other classes are released while total + new > cap; a buffer given back while
 * total > cap (in use alone exceeded the cap) is released instead of kept. Hence
 * total <= max(cap, in_use) at every moment. */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"

#if defined(__SANITIZE_ADDRESS__)
#define POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ASAN 1
#endif
#endif
#ifdef POOL_ASAN
#include <sanitizer/asan_interface.h>
#define POOL_POISON_REGION(p, len) ASAN_POISON_MEMORY_REGION(p, len)
#define POOL_UNPOISON_REGION(p, len) ASAN_UNPOISON_MEMORY_REGION(p, len)
#else
#define POOL_POISON_REGION(p, len) ((void)(p), (void)(len))
#define POOL_UNPOISON_REGION(p, len) ((void)(p), (void)(len))
#endif

/* Classes 1 .. 3 * CKKS_MAX_PRIMES rows: a ciphertext has at most 3 components of at most
 * CKKS_MAX_PRIMES rows. */
#define NCLASSES (3 * CKKS_MAX_PRIMES + 1)

typedef struct {
    uint64_t **buf;
    size_t count, cap;
} free_list;

struct ckks_ct_pool {
    pthread_mutex_t mu;
    size_t n;
    uint64_t cap_bytes;
    unsigned flags;
    free_list fl[NCLASSES];
    ckks_ct_pool_stats st;
};

ppnn_status ckks_ct_pool_new(ckks_ct_pool **out, size_t n, uint64_t cap_bytes, unsigned flags)
{
    *out = NULL;
    assert(n >= 8 && (n & (n - 1)) == 0); /* rows of N words: multiples of 64 bytes */
    ckks_ct_pool *p = calloc(1, sizeof *p);
    if (!p)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for the ciphertext pool");
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return ppnn_fail(PPNN_ERR_NOMEM, "cannot create the ciphertext pool's lock");
    }
    p->n = n, p->cap_bytes = cap_bytes, p->flags = flags;
    *out = p;
    return PPNN_OK;
}

static uint64_t class_bytes(const ckks_ct_pool *p, size_t c)
{
    return (uint64_t)c * p->n * sizeof(uint64_t);
}

static void release(ckks_ct_pool *p, uint64_t *b, size_t c)
{
    POOL_UNPOISON_REGION(b, class_bytes(p, c));
    free(b);
}

void ckks_ct_pool_free(ckks_ct_pool *p)
{
    if (!p)
        return;
    assert(p->st.in_use == 0); /* every attached ciphertext was freed */
    for (size_t c = 0; c < NCLASSES; c++) {
        for (size_t k = 0; k < p->fl[c].count; k++)
            release(p, p->fl[c].buf[k], c);
        free(p->fl[c].buf);
    }
    pthread_mutex_destroy(&p->mu);
    free(p);
}

void ckks_ct_pool_get_stats(ckks_ct_pool_stats *st, ckks_ct_pool *p)
{
    pthread_mutex_lock(&p->mu);
    *st = p->st;
    pthread_mutex_unlock(&p->mu);
}

void ckks_ct_attach(ckks_ciphertext *ct, ckks_ct_pool *pool)
{
    assert(!ct->data); /* a buffer from elsewhere must not be given to the pool */
    ct->pool = pool;
}

/* Releases kept buffers of classes other than `keep` while total + need > cap. */
static void evict(ckks_ct_pool *p, uint64_t need, size_t keep)
{
    for (size_t c = NCLASSES; c-- > 1;) {
        free_list *f = &p->fl[c];
        while (c != keep && f->count && p->st.in_use + p->st.kept + need > p->cap_bytes) {
            release(p, f->buf[--f->count], c);
            p->st.kept -= class_bytes(p, c);
            p->st.evictions++;
        }
    }
}

uint64_t *_ckks_ct_pool_take(ckks_ct_pool *p, size_t words, size_t *cap)
{
    size_t c = (words + p->n - 1) / p->n;
    assert(c >= 1 && c < NCLASSES);
    const uint64_t bytes = class_bytes(p, c);
    uint64_t *b = NULL;
    pthread_mutex_lock(&p->mu);
    free_list *f = &p->fl[c];
    if (f->count) {
        b = f->buf[--f->count];
        p->st.kept -= bytes;
        p->st.reuses++;
        POOL_UNPOISON_REGION(b, bytes);
    } else {
        evict(p, bytes, c);
    }
    /* Counted before the allocation, so concurrent takes see it and evict for it too. */
    p->st.in_use += bytes;
    uint64_t total = p->st.in_use + p->st.kept;
    p->st.peak = total > p->st.peak ? total : p->st.peak;
    pthread_mutex_unlock(&p->mu);
    if (!b) { /* allocate (and let it fault) outside the lock */
        b = aligned_alloc(64, bytes);
        pthread_mutex_lock(&p->mu);
        if (b)
            p->st.allocs++;
        else
            p->st.in_use -= bytes;
        pthread_mutex_unlock(&p->mu);
    }
    if (b)
        *cap = c * p->n;
    return b;
}

void _ckks_ct_pool_give(ckks_ct_pool *p, uint64_t *b, size_t cap)
{
    size_t c = cap / p->n;
    assert(c >= 1 && c < NCLASSES && c * p->n == cap);
    const uint64_t bytes = class_bytes(p, c);
    if (p->flags & CKKS_POOL_POISON)
        memset(b, 0xff, bytes);
    pthread_mutex_lock(&p->mu);
    assert(p->st.in_use >= bytes);
    p->st.in_use -= bytes;
    free_list *f = &p->fl[c];
    int keep = p->st.in_use + p->st.kept + bytes <= p->cap_bytes;
    if (keep && f->count == f->cap) {
        size_t nc = f->cap ? 2 * f->cap : 16;
        uint64_t **nb = realloc(f->buf, nc * sizeof *nb);
        if (nb)
            f->buf = nb, f->cap = nc;
        else
            keep = 0;
    }
    if (keep) {
        f->buf[f->count++] = b;
        p->st.kept += bytes;
        POOL_POISON_REGION(b, bytes);
        b = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (b)
        free(b);
}
