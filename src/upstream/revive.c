/* Probing a backend that may be back, bounded: see revive.h. */
#include "upstream/revive.h"

#define IN_FLIGHT 1u
#define START(w) (((w) >> 1) - 1) /* only when w != 0 */
#define MAKE(start, busy) ((((uint64_t)(start) + 1) << 1) | ((busy) ? IN_FLIGHT : 0))

static bool ready(uint64_t w, uint64_t now, uint64_t interval)
{
    if (w == 0) return true;
    if (w & IN_FLIGHT) return false;
    uint64_t start = START(w);
    /* A clock read a hair behind another worker's: not ready yet. */
    return now >= start && now - start >= interval;
}

bool lv_revive_ready(const struct lv_revive *r, uint64_t now, uint64_t interval)
{
    return ready(atomic_load(&((struct lv_revive *)r)->word), now, interval);
}

bool lv_revive_claim(struct lv_revive *r, uint64_t now, uint64_t interval)
{
    uint64_t w = atomic_load(&r->word);
    if (!ready(w, now, interval)) return false;
    return atomic_compare_exchange_strong(&r->word, &w, MAKE(now, true));
}

void lv_revive_done(struct lv_revive *r)
{
    uint64_t w = atomic_load(&r->word);
    while (w & IN_FLIGHT) {
        if (atomic_compare_exchange_weak(&r->word, &w, w & ~(uint64_t)IN_FLIGHT)) return;
    }
}

/* Does a rank before b? */
static bool before(const struct lv_revive_stat *a, const struct lv_revive_stat *b)
{
    bool pa = a->last_pass && a->last_pass > a->out_since;
    bool pb = b->last_pass && b->last_pass > b->out_since;
    if (pa != pb) return pa;
    if (pa) return a->last_pass > b->last_pass;
    return a->out_since < b->out_since;
}

int lv_revive_take(struct lv_revive *const *slots, const struct lv_revive_stat *st, size_t n,
                   uint64_t now, uint64_t interval)
{
    /* A claim fails only when another worker claimed the slot first, which
     * leaves it in flight, no longer ready: the next round skips it. The
     * rounds are bounded all the same (with interval 0 a slot can be
     * claimed and freed again between two looks). */
    for (size_t round = 0; round <= n; round++) {
        size_t best = n;
        for (size_t i = 0; i < n; i++) {
            if (!st[i].candidate || !lv_revive_ready(slots[i], now, interval)) continue;
            if (best == n || before(&st[i], &st[best])) best = i;
        }
        if (best == n) return -1;
        if (lv_revive_claim(slots[best], now, interval)) return (int)best;
    }
    return -1;
}
