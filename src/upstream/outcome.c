/* The stale keep-alive rule and the hedge race, as decision tables. */
#include "upstream/outcome.h"

enum lv_stale lv_outcome_stale(const struct lv_stale_in *in)
{
    bool race = in->reused && in->idle_ms >= LV_OUTCOME_STALE_IDLE_MS &&
                in->kind == LV_FAIL_RESET && !in->got_bytes && !in->resp_started;
    if (!race) return LV_STALE_BLAMED;
    /* Sending it again must be safe (it may have reached the backend
     * before the reset), and once is enough: a second reset on a fresh
     * connection is the backend's. */
    if (in->idempotent && in->replayable && !in->stale_retried) return LV_STALE_RETRY_NOW;
    return LV_STALE_FORGIVEN;
}

struct lv_head_out lv_outcome_head(const struct lv_head_in *in)
{
    struct lv_head_out out = {
        .action = LV_HEAD_ANSWER,
        .success = in->status < 500,
        .hedge_won = false,
        .loser = LV_LOSER_NONE,
        .loser_kind = LV_FAIL_NONE,
    };
    if (in->retryable) {
        out.action = in->other_in_flight ? LV_HEAD_WAIT_OTHER : LV_HEAD_ASK_RETRY;
        return out;
    }
    if (!in->other_in_flight) return out;
    if (in->on_hedge) {
        out.hedge_won = true;
        out.loser = LV_LOSER_FAILED;
        out.loser_kind = LV_FAIL_RESPONSE_TIMEOUT;
    } else {
        out.loser = LV_LOSER_CANCELLED;
    }
    return out;
}

uint64_t lv_outcome_penalty_us(enum lv_fail_kind kind, uint64_t waited_us, uint64_t per_try_ms)
{
    uint64_t per_try_us = per_try_ms * 1000;
    if (per_try_us > LV_OUTCOME_PENALTY_MAX_US) per_try_us = LV_OUTCOME_PENALTY_MAX_US;
    switch (kind) {
    case LV_FAIL_RESPONSE_TIMEOUT:
    case LV_FAIL_CONNECT_TIMEOUT: return waited_us;
    case LV_FAIL_RESET:
    case LV_FAIL_BAD_RESPONSE:
    case LV_FAIL_TLS:
    case LV_FAIL_CONNECT_FAILED:
    case LV_FAIL_BAD_STATUS: return per_try_us > waited_us ? per_try_us : waited_us;
    default: return 0;
    }
}
