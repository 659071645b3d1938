/* A cache of CKKS parameter sets for the fuzz harnesses (fuzz/README.md, "Speed"), linked into
 * every harness with -Wl,--wrap=ckks_params_new,--wrap=ckks_params_free: every call of
 * ckks_params_new — the loaders' rebuild-from-file path included — first looks up the exact
 * spec it is given. ckks_params_new is deterministic (the primes are searched downward from
 * 2^bits, the tables follow from the primes), so a hit returns a set equal to the one a fresh
 * call would build, and the loader goes on along the same path; only the prime search and table
 * construction, whose code a miss has already covered, are skipped. Refused specs are not
 * cached (their validation is cheap and its message must be set each time). ckks_params_free
 * of a cached set drops a reference; a set is really freed only when evicted with no
 * references left. Bounded by entries and by ring words (N * (nq + 1)) held. */
#include <stdint.h>
#include <string.h>

#include "ppnn/ckks.h"

/* Not instrumented for coverage: the cache's own branches are no feature of the loaders (and
 * would make a before/after comparison of coverage unfair). */
#define NO_COV __attribute__((no_sanitize("coverage")))

ppnn_status __real_ckks_params_new(ckks_params **out, const ckks_spec *spec);
void __real_ckks_params_free(ckks_params *p);
ppnn_status __wrap_ckks_params_new(ckks_params **out, const ckks_spec *spec);
void __wrap_ckks_params_free(ckks_params *p);

enum { CACHE_ENTRIES = 128 };
#define CACHE_MAX_WORDS ((size_t)1 << 21) /* sum of N * (nq + 1) over the cached sets */

typedef struct {
    ckks_spec spec;
    ckks_params *params;
    size_t refs, words;
    uint64_t used;
} cache_entry;

static cache_entry cache[CACHE_ENTRIES];
static size_t cache_words;
static uint64_t cache_clock;


/* Field-by-field (the struct has padding): equal specs give equal parameter sets. */
NO_COV static int same_spec(const ckks_spec *a, const ckks_spec *b)
{
    if (a->logn != b->logn || a->nq != b->nq || a->p_bits != b->p_bits ||
        memcmp(&a->scale, &b->scale, sizeof a->scale) != 0 ||
        a->insecure_for_testing != b->insecure_for_testing || a->nq > CKKS_MAX_PRIMES)
        return 0;
    return memcmp(a->q_bits, b->q_bits, a->nq * sizeof a->q_bits[0]) == 0 &&
           memcmp(a->primes, b->primes, sizeof a->primes) == 0;
}

NO_COV static void evict(cache_entry *e)
{
    __real_ckks_params_free(e->params);
    cache_words -= e->words;
    memset(e, 0, sizeof *e);
}

/* The least recently used unreferenced entry (a free slot first), or NULL. */
NO_COV static cache_entry *victim(void)
{
    cache_entry *best = NULL;
    for (size_t i = 0; i < CACHE_ENTRIES; i++) {
        cache_entry *e = &cache[i];
        if (!e->params)
            return e;
        if (!e->refs && (!best || e->used < best->used))
            best = e;
    }
    return best;
}

NO_COV ppnn_status __wrap_ckks_params_new(ckks_params **out, const ckks_spec *spec)
{
    for (size_t i = 0; i < CACHE_ENTRIES; i++)
        if (cache[i].params && same_spec(&cache[i].spec, spec)) {
            cache[i].refs++;
            cache[i].used = ++cache_clock;
            *out = cache[i].params;
            return PPNN_OK;
        }
    ppnn_status st = __real_ckks_params_new(out, spec);
    if (st)
        return st;
    size_t words = (*out)->n * ((*out)->nq + 1);
    if (words > CACHE_MAX_WORDS / 4)
        return PPNN_OK; /* large sets pass through uncached */
    cache_entry *e;
    while ((e = victim()) && e->params && cache_words + words > CACHE_MAX_WORDS)
        evict(e);
    e = victim();
    if (!e || cache_words + words > CACHE_MAX_WORDS)
        return PPNN_OK; /* every slot referenced: uncached */
    if (e->params)
        evict(e);
    e->spec = *spec;
    e->params = *out;
    e->refs = 1;
    e->words = words;
    e->used = ++cache_clock;
    cache_words += words;
    return PPNN_OK;
}

NO_COV void __wrap_ckks_params_free(ckks_params *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < CACHE_ENTRIES; i++)
        if (cache[i].params == p) {
            if (!cache[i].refs)
                __builtin_trap(); /* freed more often than built: a double free in the library */
            cache[i].refs--;
            return;
        }
    __real_ckks_params_free(p);
}
