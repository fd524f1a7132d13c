/* A sliding-window latency histogram: see latwin.h. */
#include "upstream/latwin.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MIN_US 16u
#define FIRST_OCTAVE 4u /* 2^4 = MIN_US */
#define LAST_OCTAVE 27u /* samples >= 2^28 µs go to the last bucket */

int lv_latwin_init(struct lv_latwin *l, unsigned nworkers)
{
    memset(l, 0, sizeof(*l));
    l->nworkers = nworkers ? nworkers : 1;
    l->w = calloc(l->nworkers, sizeof(*l->w));
    return l->w ? 0 : -1;
}

void lv_latwin_dispose(struct lv_latwin *l)
{
    free(l->w);
    l->w = NULL;
}

unsigned lv_latwin_bucket(uint64_t us)
{
    if (us < MIN_US) return 0;
    unsigned e = 63u - (unsigned)__builtin_clzll(us);
    if (e > LAST_OCTAVE) return LV_LATWIN_BUCKETS - 1;
    unsigned sub = (unsigned)(us >> (e - 2)) & 3u;
    return 1 + (e - FIRST_OCTAVE) * 4 + sub;
}

void lv_latwin_bounds(unsigned bucket, uint64_t *lo, uint64_t *hi)
{
    if (bucket == 0) {
        *lo = 0;
        *hi = MIN_US;
        return;
    }
    if (bucket >= LV_LATWIN_BUCKETS - 1) {
        *lo = 1ull << (LAST_OCTAVE + 1);
        *hi = *lo * 2;
        return;
    }
    unsigned e = FIRST_OCTAVE + (bucket - 1) / 4, sub = (bucket - 1) % 4;
    *lo = (uint64_t)(4 + sub) << (e - 2);
    *hi = (uint64_t)(5 + sub) << (e - 2);
}

static uint64_t slice_ms(uint64_t span)
{
    uint64_t ms = span / LV_LATWIN_SLICES;
    return ms ? ms : 1;
}

void lv_latwin_add(struct lv_latwin *l, unsigned w, uint64_t span, uint64_t now, uint64_t us)
{
    if (w >= l->nworkers) w = 0;
    uint64_t slot = now / slice_ms(span) + 1;
    struct lv_latwin_slice *s = &l->w[w].s[slot % LV_LATWIN_SLICES];
    if (atomic_load_explicit(&s->slot, memory_order_relaxed) != slot) {
        /* The single writer of this slice recycles it: a reader may see a
         * mix for a moment, which an estimate affords. */
        for (unsigned i = 0; i < LV_LATWIN_BUCKETS; i++)
            atomic_store_explicit(&s->count[i], 0, memory_order_relaxed);
        atomic_store_explicit(&s->slot, slot, memory_order_release);
    }
    atomic_uint *c = &s->count[lv_latwin_bucket(us)];
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

struct lv_latwin_est lv_latwin_quantile(struct lv_latwin *l, uint64_t span, uint64_t now, double q)
{
    uint64_t counts[LV_LATWIN_BUCKETS] = {0};
    uint64_t cur = now / slice_ms(span) + 1;
    uint64_t first = cur >= LV_LATWIN_SLICES ? cur - (LV_LATWIN_SLICES - 1) : 1;
    uint64_t n = 0;
    for (unsigned w = 0; w < l->nworkers; w++) {
        for (unsigned k = 0; k < LV_LATWIN_SLICES; k++) {
            struct lv_latwin_slice *s = &l->w[w].s[k];
            uint64_t slot = atomic_load_explicit(&s->slot, memory_order_acquire);
            if (slot < first || slot > cur) continue;
            for (unsigned i = 0; i < LV_LATWIN_BUCKETS; i++) {
                unsigned c = atomic_load_explicit(&s->count[i], memory_order_relaxed);
                counts[i] += c;
                n += c;
            }
        }
    }
    struct lv_latwin_est est = {0, n};
    if (n == 0) return est;
    if (!(q > 0)) q = 1e-9;
    if (q > 1) q = 1;
    /* The rank-th sample (nearest rank), placed inside its bucket as if
     * the bucket's samples were spread evenly over it. */
    double rank = ceil(q * (double)n);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LV_LATWIN_BUCKETS; i++) {
        if (counts[i] == 0) continue;
        if ((double)(seen + counts[i]) >= rank) {
            uint64_t lo, hi;
            lv_latwin_bounds(i, &lo, &hi);
            double f = (rank - (double)seen) / (double)counts[i];
            est.us = lo + (uint64_t)((double)(hi - lo) * f);
            if (est.us >= hi) est.us = hi - 1;
            return est;
        }
        seen += counts[i];
    }
    return est; /* not reached: rank <= n */
}

static uint64_t cache_key(uint64_t span, double q)
{
    uint64_t qq = (uint64_t)(q * 1e6 + 0.5) & 0xfffff;
    return span << 20 | qq;
}

struct lv_latwin_est lv_latwin_estimate(struct lv_latwin *l, uint64_t span, uint64_t now, double q)
{
    struct lv_latwin_cache *c = &l->cache;
    uint64_t key = cache_key(span, q);
    uint64_t at = atomic_load_explicit(&c->at, memory_order_acquire);
    if (at != 0 && now + 1 >= at && now + 1 - at < LV_LATWIN_REFRESH_MS &&
        atomic_load_explicit(&c->key, memory_order_relaxed) == key) {
        struct lv_latwin_est est = {atomic_load_explicit(&c->us, memory_order_relaxed),
                                    atomic_load_explicit(&c->n, memory_order_relaxed)};
        return est;
    }
    /* Two workers may both recompute: the later store wins, both are
     * recent. */
    struct lv_latwin_est est = lv_latwin_quantile(l, span, now, q);
    atomic_store_explicit(&c->us, est.us, memory_order_relaxed);
    atomic_store_explicit(&c->n, est.n, memory_order_relaxed);
    atomic_store_explicit(&c->key, key, memory_order_relaxed);
    atomic_store_explicit(&c->at, now + 1, memory_order_release);
    return est;
}
