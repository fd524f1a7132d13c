/* Token bucket (GCRA) and sliding window. */
#include "limit/bucket.h"

#include <math.h>

static uint64_t period_us(const struct lv_limit_cfg *cfg)
{
    double t = 1e6 / (cfg->rate > 0 ? cfg->rate : 1e-6);
    return t < 1 ? 1 : (uint64_t)t;
}

void lv_bucket_take(atomic_uint_fast64_t *tat, const struct lv_limit_cfg *cfg, uint64_t now,
                    struct lv_limit_result *res)
{
    uint64_t T = period_us(cfg);
    uint32_t burst = cfg->burst ? cfg->burst : 1;
    uint64_t tau = (uint64_t)(burst - 1) * T; /* how far ahead tat may run */
    res->limit = burst;
    uint64_t old = atomic_load_explicit(tat, memory_order_relaxed);
    for (;;) {
        uint64_t base = old > now ? old : now;
        if (base - now > tau) { /* the bucket is empty */
            res->allowed = false;
            res->remaining = 0;
            res->retry_us = base - now - tau;
            res->reset_us = base - now;
            return;
        }
        uint64_t next = base + T;
        if (atomic_compare_exchange_weak_explicit(tat, &old, next, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            res->allowed = true;
            res->retry_us = 0;
            res->reset_us = next - now;
            uint64_t used = (next - now + T - 1) / T; /* tokens in use, rounded up */
            res->remaining = used >= burst ? 0 : burst - (uint32_t)used;
            return;
        }
    }
}

void lv_window_take(struct lv_window *w, const struct lv_limit_cfg *cfg, uint64_t now,
                    struct lv_limit_result *res)
{
    uint64_t win = cfg->window ? cfg->window : 1000000;
    uint32_t limit = cfg->burst ? cfg->burst : 1;
    res->limit = limit;
    if (now >= w->start + win) {
        uint64_t behind = (now - w->start) / win;
        w->prev = behind == 1 ? w->cur : 0;
        w->cur = 0;
        w->start += behind * win;
    }
    uint64_t into = now - w->start; /* µs into the current window */
    double weight = (double)(win - into) / (double)win;
    double estimate = (double)w->prev * weight + (double)w->cur;
    if (estimate + 1.0 > (double)limit) {
        res->allowed = false;
        res->remaining = 0;
        if (w->cur + 1 > limit) {
            /* Only the next window can make room, and there this window's
             * count weighs (win - t)/win: one more fits once
             * cur * (win - t)/win + 1 <= limit. */
            double t = (double)win * (1.0 - (double)(limit - 1) / (double)w->cur);
            res->retry_us = (win - into) + (uint64_t)ceil(t < 0 ? 0 : t);
        } else {
            /* The previous window's share decays linearly: wait until it
             * has dropped enough for one more. */
            double need = estimate + 1.0 - (double)limit;
            res->retry_us = (uint64_t)ceil(need * (double)win / (double)w->prev);
        }
        if (res->retry_us == 0) res->retry_us = 1;
    } else {
        w->cur++;
        res->allowed = true;
        res->retry_us = 0;
        double left = (double)limit - (estimate + 1.0);
        res->remaining = left > 0 ? (uint32_t)left : 0;
    }
    /* What is counted now weighs on the sliding window until the end of
     * the next fixed window; the previous window's, until this one ends. */
    res->reset_us = w->cur ? 2 * win - into : w->prev ? win - into : 0;
}
