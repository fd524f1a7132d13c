/* Verdicts, eligibility for a pick, slow start and Retry-After. */
#include "upstream/eligible.h"

#include "core/rand.h"
#include "upstream/backend.h"

static const struct {
    const char *name, *state;
} verdicts[LV_VERDICT_COUNT] = {
    [LV_VERDICT_SERVING] = {"serving", "ok"},
    [LV_VERDICT_PROBING] = {"probing", "half_open"},
    [LV_VERDICT_RISING] = {"rising", "unhealthy"},
    [LV_VERDICT_UNHEALTHY] = {"unhealthy", "unhealthy"},
    [LV_VERDICT_PROBES_OUT] = {"probes_out", "half_open"},
    [LV_VERDICT_OPEN] = {"open", "open"},
    [LV_VERDICT_DRAINING] = {"draining", "draining"},
    [LV_VERDICT_DISABLED] = {"disabled", "disabled"},
};

const char *lv_verdict_state(enum lv_verdict v)
{
    return (unsigned)v < LV_VERDICT_COUNT ? verdicts[v].state : "unknown";
}

const char *lv_verdict_name(enum lv_verdict v)
{
    return (unsigned)v < LV_VERDICT_COUNT ? verdicts[v].name : "unknown";
}

enum lv_verdict lv_eligible_verdict(const struct lv_backend *b, const struct lv_breaker_cfg *bc,
                                    uint64_t now)
{
    struct lv_backend *m = (struct lv_backend *)b;
    switch (lv_backend_admin(b)) {
    case LV_ADMIN_DISABLED: return LV_VERDICT_DISABLED;
    case LV_ADMIN_DRAINING: return LV_VERDICT_DRAINING;
    case LV_ADMIN_ENABLED: break;
    }
    /* A refusing breaker comes before health: it is what a request would
     * meet first, and what ends it (a probe) is the breaker's. */
    enum lv_breaker_peek peek = lv_breaker_peek(&b->breaker, bc, now);
    if (peek == LV_PEEK_OPEN) return LV_VERDICT_OPEN;
    if (peek == LV_PEEK_PROBES_OUT) return LV_VERDICT_PROBES_OUT;
    if (!atomic_load_explicit(&m->healthy, memory_order_relaxed))
        return atomic_load_explicit(&m->rising, memory_order_relaxed) ? LV_VERDICT_RISING
                                                                      : LV_VERDICT_UNHEALTHY;
    return peek == LV_PEEK_PROBES ? LV_VERDICT_PROBING : LV_VERDICT_SERVING;
}

bool lv_eligible_any_usable(struct lv_backend *const *bs, size_t n, const struct lv_breaker_cfg *bc,
                            uint64_t now)
{
    for (size_t i = 0; i < n; i++) {
        if (lv_verdict_usable(lv_eligible_verdict(bs[i], bc, now))) return true;
    }
    return false;
}

struct lv_eligible_tally lv_eligible_tally(struct lv_backend *const *bs, size_t n,
                                           const struct lv_breaker_cfg *bc, uint64_t now)
{
    struct lv_eligible_tally t = {0, 0};
    size_t rising = 0;
    for (size_t i = 0; i < n; i++) {
        enum lv_verdict v = lv_eligible_verdict(bs[i], bc, now);
        t.usable += lv_verdict_usable(v);
        rising += v == LV_VERDICT_RISING;
    }
    t.last_resort = t.usable ? 0 : rising;
    return t;
}

double lv_eligible_ramp(uint64_t recovered_at, uint64_t now, uint64_t slow_start)
{
    if (slow_start == 0 || recovered_at == 0 || now >= recovered_at + slow_start) return 1.0;
    /* Start at 10%, not 0: a recovered backend must see some traffic to
     * prove itself. (now may trail recovered_at by a hair: another thread
     * stamped it after this one read the clock.) */
    double f = now > recovered_at ? (double)(now - recovered_at) / (double)slow_start : 0.0;
    return 0.1 + 0.9 * f;
}

static bool was_tried(const struct lv_eligible_ask *a, const struct lv_backend *b)
{
    for (size_t i = 0; i < a->ntried; i++) {
        if (a->tried[i] == b) return true;
    }
    return false;
}

size_t lv_eligible_mark(const struct lv_eligible_ask *a, uint64_t now, struct lv_rand *rand,
                        bool *eligible, uint32_t *weights)
{
    size_t count = 0;
    bool any_usable = false;
    for (size_t i = 0; i < a->n; i++) {
        struct lv_backend *b = a->backends[i];
        enum lv_verdict v = lv_eligible_verdict(b, a->breaker, now);
        bool usable = lv_verdict_usable(v);
        any_usable |= usable;
        bool open_to_it = b != a->busy && (!a->untried_only || !was_tried(a, b));
        eligible[i] = open_to_it && usable;
        count += eligible[i];
    }
    if (count == 0 && !any_usable) {
        /* The last resort: nothing at all is usable. */
        for (size_t i = 0; i < a->n; i++) {
            struct lv_backend *b = a->backends[i];
            bool open_to_it = b != a->busy && (!a->untried_only || !was_tried(a, b));
            eligible[i] =
                open_to_it && lv_eligible_verdict(b, a->breaker, now) == LV_VERDICT_RISING;
            count += eligible[i];
        }
    }
    if (a->slow_start == 0 || count < 2) return count;
    /* Slow start: a backend back from an outage gets a growing share, by
     * weight (for the weighted strategies) and by thinning (for those that
     * ignore weights). */
    for (size_t i = 0; i < a->n && count > 1; i++) {
        if (!eligible[i]) continue;
        uint64_t at = atomic_load_explicit(&a->backends[i]->recovered_at, memory_order_relaxed);
        double r = lv_eligible_ramp(at, now, a->slow_start);
        if (r >= 1.0) continue;
        uint32_t w = (uint32_t)(weights[i] * r);
        weights[i] = w ? w : 1;
        if (lv_rand_unit(rand) >= r) {
            eligible[i] = false;
            count--;
        }
    }
    return count;
}

unsigned lv_eligible_retry_after(struct lv_backend *const *bs, size_t n, uint64_t check_interval,
                                 uint64_t now)
{
    uint64_t soonest = UINT64_MAX;
    for (size_t i = 0; i < n; i++) {
        struct lv_backend *b = bs[i];
        uint64_t wait = UINT64_MAX;
        if (!atomic_load_explicit(&b->healthy, memory_order_relaxed)) wait = check_interval;
        uint64_t until = lv_breaker_open_until(&b->breaker);
        if (until > now && until - now < wait) wait = until - now;
        if (wait < soonest) soonest = wait;
    }
    if (soonest == UINT64_MAX) return 1;
    uint64_t s = (soonest + 999) / 1000;
    return s < 1 ? 1 : s > 3600 ? 3600 : (unsigned)s;
}
