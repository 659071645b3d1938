/* Ciphertext objects: allocation, shape changes, copies. Layout in ckks.h. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ckks/inner.h"

/* Words of the current shape (the meaningful prefix of the buffer). */
static size_t shape_words(const ckks_ciphertext *ct)
{
    if (!ct->data || !ct->params)
        return 0;
    size_t w = ct->size * (ct->level + 1) * ct->params->n;
    return w < ct->cap ? w : ct->cap;
}

/* Moves ct to a pool buffer of at least `words` words (its current shape copied over). */
static int pool_move(ckks_ciphertext *ct, size_t words)
{
    size_t cap = 0;
    uint64_t *d = _ckks_ct_pool_take(ct->pool, words, &cap);
    if (!d)
        return 0;
    if (ct->data) {
        size_t keep = shape_words(ct);
        memcpy(d, ct->data, (keep < words ? keep : words) * sizeof *d);
        _ckks_ct_pool_give(ct->pool, ct->data, ct->cap);
    }
    ct->data = d;
    ct->cap = cap;
    return 1;
}

ppnn_status ckks_ct_reserve(ckks_ciphertext *ct, size_t words)
{
    if (words == 0 || (ct->data && ct->cap >= words))
        return PPNN_OK;
    if (ct->pool) {
        if (!pool_move(ct, words))
            return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for a ciphertext (%zu words)", words);
        return PPNN_OK;
    }
    uint64_t *d = realloc(ct->data, words * sizeof *d);
    if (!d)
        return ppnn_fail(PPNN_ERR_NOMEM, "out of memory for a ciphertext (%zu words)", words);
    ct->data = d;
    ct->cap = words;
    return PPNN_OK;
}

ppnn_status ckks_ct_shape(ckks_ciphertext *ct, const ckks_params *params, size_t level,
                          size_t size, double scale)
{
    assert(level < params->nq && size >= 1 && size <= 3);
    size_t words = size * (level + 1) * params->n;
    ppnn_status st = ckks_ct_reserve(ct, words);
    if (st)
        return st;
    ct->params = params;
    ct->level = level;
    ct->size = size;
    ct->scale = scale;
    ct->has_seed = 0;
    return PPNN_OK;
}

ppnn_status ckks_ct_init(ckks_ciphertext *ct, const ckks_params *params, size_t level,
                         size_t size, double scale)
{
    ppnn_status st = ckks_ct_shape(ct, params, level, size, scale);
    if (st)
        return st;
    memset(ct->data, 0, size * (level + 1) * params->n * sizeof *ct->data);
    memset(ct->seed, 0, sizeof ct->seed);
    return PPNN_OK;
}

ppnn_status ckks_ct_prepare(ckks_ciphertext *ct, const ckks_params *params, size_t level,
                            size_t size, double scale)
{
    ppnn_status st = ckks_ct_shape(ct, params, level, size, scale);
    if (!st)
        memset(ct->seed, 0, sizeof ct->seed);
    return st;
}

void ckks_ct_shrink(ckks_ciphertext *ct)
{
    if (!ct->data)
        return;
    size_t words = ct->size * (ct->level + 1) * ct->params->n;
    if (words >= ct->cap)
        return;
    if (ct->pool) { /* a smaller class; a failed move keeps the larger buffer */
        if (ct->cap - words >= ct->params->n)
            (void)pool_move(ct, words);
        return;
    }
    uint64_t *d = realloc(ct->data, words * sizeof *d);
    if (d) { /* a failed shrink keeps the larger buffer: still correct */
        ct->data = d;
        ct->cap = words;
    }
}

void ckks_ct_free(ckks_ciphertext *ct)
{
    if (!ct)
        return;
    if (ct->pool && ct->data)
        _ckks_ct_pool_give(ct->pool, ct->data, ct->cap);
    else
        free(ct->data);
    memset(ct, 0, sizeof *ct); /* detaches it from its pool too */
}

ppnn_status ckks_ct_copy(ckks_ciphertext *dst, const ckks_ciphertext *src)
{
    if (dst == src)
        return PPNN_OK;
    ppnn_status st = ckks_ct_shape(dst, src->params, src->level, src->size, src->scale);
    if (st)
        return st;
    memcpy(dst->data, src->data, src->size * (src->level + 1) * src->params->n * sizeof(uint64_t));
    dst->has_seed = src->has_seed;
    memcpy(dst->seed, src->seed, sizeof dst->seed);
    return PPNN_OK;
}

void ckks_ct_drop_rows(ckks_ciphertext *ct, size_t level)
{
    assert(level <= ct->level);
    size_t n = ct->params->n, old = ct->level + 1, keep = level + 1;
    /* Component k moves from k*old*N to k*keep*N; destinations lie below sources and moving
     * in increasing k never overwrites a component that is still to be moved. */
    for (size_t k = 1; k < ct->size; k++)
        memmove(ct->data + k * keep * n, ct->data + k * old * n, keep * n * sizeof(uint64_t));
    ct->level = level;
}
