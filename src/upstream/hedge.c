/* The hedge delay and the decision to send a copy: see hedge.h. */
#include "upstream/hedge.h"

const char *lv_hedge_why_name(enum lv_hedge_why why)
{
    static const char *const names[LV_HEDGE_WHY_COUNT] = {
        "go", "off", "unsafe", "settled", "attempts_exhausted", "nowhere", "deadline", "budget",
    };
    return (unsigned)why < LV_HEDGE_WHY_COUNT ? names[why] : "unknown";
}

uint64_t lv_hedge_delay(const struct lv_hedge_cfg *cfg, uint64_t est_us, uint64_t samples)
{
    if (cfg->after != LV_HEDGE_AUTO) return cfg->after;
    uint64_t max = cfg->max ? cfg->max : 1;
    uint64_t min = cfg->min < max ? cfg->min : max;
    if (samples < cfg->min_samples || samples == 0) return max;
    /* Rounded up: a delay a hair under the quantile would hedge a little
     * more than the share the quantile promises. */
    uint64_t ms = est_us / 1000 + (est_us % 1000 != 0);
    return ms < min ? min : ms > max ? max : ms;
}

enum lv_hedge_why lv_hedge_decide(const struct lv_hedge_cfg *cfg, const struct lv_hedge_ask *a)
{
    if (!lv_hedge_on(cfg)) return LV_HEDGE_OFF;
    if (!a->idempotent || !a->body_complete || !a->replayable || a->upgrade) return LV_HEDGE_UNSAFE;
    if (a->answered || a->hedged) return LV_HEDGE_SETTLED;
    if (a->attempts >= a->max_attempts) return LV_HEDGE_ATTEMPTS;
    if (!a->other_backend) return LV_HEDGE_NOWHERE;
    if (a->now >= a->deadline || a->deadline - a->now < cfg->min) return LV_HEDGE_DEADLINE;
    if (!a->budget) return LV_HEDGE_BUDGET;
    return LV_HEDGE_GO;
}
