/* Retry policy: backoff, budget, decision. */
#include "upstream/retry.h"

const char *lv_retry_skip_name(enum lv_retry_skip s)
{
    static const char *const names[LV_SKIP_COUNT] = {
        "-",        "not_retryable", "attempts_exhausted", "not_idempotent", "body_too_large",
        "deadline", "budget",
    };
    return (unsigned)s < LV_SKIP_COUNT ? names[s] : "-";
}

uint64_t lv_retry_backoff(const struct lv_retry_cfg *cfg, unsigned retry, double u)
{
    uint64_t cap = cfg->base_delay;
    for (unsigned i = 1; i < retry && cap < cfg->max_delay; i++)
        cap *= 2;
    if (cap > cfg->max_delay) cap = cfg->max_delay;
    return (uint64_t)((double)cap * u);
}

bool lv_retry_status(const struct lv_retry_cfg *cfg, unsigned status)
{
    for (uint32_t i = 0; i < cfg->nstatuses; i++) {
        if (cfg->statuses[i] == status) return true;
    }
    return false;
}

bool lv_retry_budget_allows(const struct lv_retry_cfg *cfg, const struct lv_retry_budget *b)
{
    uint64_t cap = (uint64_t)b->active * cfg->budget_percent / 100;
    if (cap < cfg->min_retry_concurrency) cap = cfg->min_retry_concurrency;
    return b->retrying < cap;
}

enum lv_retry_skip lv_retry_decide(const struct lv_retry_cfg *cfg, const struct lv_retry_input *in,
                                   const struct lv_retry_budget *budget)
{
    const struct lv_fail_info *fi = lv_fail_info(in->kind);
    bool retryable = in->kind == LV_FAIL_BAD_STATUS ? lv_retry_status(cfg, in->status)
                                                    : (fi->cls & cfg->classes) != 0;
    if (!retryable) return LV_SKIP_NOT_RETRYABLE;
    if (in->attempts >= cfg->max_attempts) return LV_SKIP_ATTEMPTS;
    /* Nothing was sent on a failed connect: always safe to try again. */
    if (in->sent && !in->idempotent && !cfg->non_idempotent) return LV_SKIP_NOT_IDEMPOTENT;
    if (!in->replayable) return LV_SKIP_BODY_TOO_LARGE;
    if (in->now + in->delay >= in->deadline) return LV_SKIP_DEADLINE;
    if (!in->already_retrying && !lv_retry_budget_allows(cfg, budget)) return LV_SKIP_BUDGET;
    return LV_SKIP_NONE;
}
