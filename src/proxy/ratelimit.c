/*
 * Rate limits on the request path. The check happens once the head is
 * parsed and before any backend is chosen, so a refused request costs the
 * backends nothing.
 */
#include "proxy/ratelimit.h"

#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "limit/key.h"
#include "limit/limiter.h"
#include "limit/redis.h"
#include "proxy/proxy.h"
#include "proxy/attempt.h"
#include "proxy/exchange.h"
#include "config/gen.h"

/* The request's X-Forwarded-For values, last field first, read in place. */
struct xff_iter {
    const struct lv_head *h;
    uint32_t i; /* fields[i - 1] is the next one to look at */
};

static bool xff_prev(void *arg, const char **value, size_t *len)
{
    struct xff_iter *it = arg;
    while (it->i > 0) {
        const struct lv_hfield *f = &it->h->fields[--it->i];
        if (!LV_HFIELD_IS(it->h, f, "x-forwarded-for")) continue;
        *value = lv_head_str(it->h, f->value);
        *len = f->value_len;
        return true;
    }
    return false;
}

/* "ip:203.0.113.9", or "h:<header value>" / "h#<digest>" (limit/key.h):
 * the kinds never collide. cap > LV_LIMIT_KEY_LEN. */
static size_t client_key(struct lv_exchange *ex, char *out, size_t cap)
{
    const struct lv_rate_cfg *rc = &ex->cfg->rate_limit;
    const struct lv_head *h = &ex->req;
    if (rc->key == LV_KEY_HEADER) {
        const struct lv_hfield *f = lv_head_find(h, rc->key_header, strlen(rc->key_header));
        if (f && f->value_len > 0) {
            size_t n = lv_limit_key_header(lv_head_str(h, f->value), f->value_len, out, cap);
            if (n > 0) return n;
        }
        /* No such header: the client is limited by its address. */
    }
    struct xff_iter it = {h, rc->ntrusted ? h->nfields : 0};
    memcpy(out, "ip:", 3);
    return 3 + lv_client_address(ex->client->ip, xff_prev, &it, rc->trusted, rc->ntrusted, out + 3,
                                 cap - 3);
}

int lv_ratelimit_apply(struct lv_exchange *ex, const struct lv_limit_verdict *v)
{
    const struct lv_rate_cfg *rc = &ex->cfg->rate_limit;
    if (v->allowed) {
        if (rc->headers) lv_limiter_headers(rc, v, true, ex->rl_headers, sizeof(ex->rl_headers));
        return 0;
    }
    LV_STAT_INC(ex->srv->stats.rate_limited[v->denied_by]);
    uint64_t retry_us = v->r[v->denied_by].retry_us;
    ex->retry_after_s = (unsigned)((retry_us + 999999) / 1000000);
    if (ex->retry_after_s == 0) ex->retry_after_s = 1;
    lv_limiter_headers(rc, v, true, ex->rl_headers, sizeof(ex->rl_headers));
    lv_exchange_respond(ex, LV_FAIL_RATE_LIMITED);
    return 1;
}

/* Without the store's answer: rate_limit.on_store_error decides, or the
 * local state when there is no store at all. */
static int decide_locally(struct lv_exchange *ex, bool store_failed)
{
    const struct lv_rate_cfg *rc = &ex->cfg->rate_limit;
    if (store_failed) {
        LV_STAT_INC(ex->srv->stats.store_fallbacks);
        if (rc->on_store_error == LV_ON_ERROR_ALLOW) return 0;
        if (rc->on_store_error == LV_ON_ERROR_DENY) {
            /* Every configured limit is reported exhausted for a second. */
            struct lv_limit_verdict v = {.allowed = false};
            v.has[LV_SCOPE_GLOBAL] = rc->rate > 0;
            v.has[LV_SCOPE_CLIENT] = rc->client_rate > 0;
            v.denied_by = v.has[LV_SCOPE_GLOBAL] ? LV_SCOPE_GLOBAL : LV_SCOPE_CLIENT;
            for (int s = 0; s < LV_SCOPE_COUNT; s++)
                v.r[s].retry_us = v.r[s].reset_us = 1000000;
            return lv_ratelimit_apply(ex, &v);
        }
    }
    char key[256];
    size_t len = rc->client_rate > 0 ? client_key(ex, key, sizeof(key)) : 0;
    struct lv_limit_verdict v;
    lv_limiter_check(ex->wg->gen->limiter, rc, key, len, lv_clock_ns() / 1000, &v);
    return lv_ratelimit_apply(ex, &v);
}

static void on_verdict(void *arg, int status, const struct lv_limit_verdict *v)
{
    struct lv_exchange *ex = arg;
    ex->rl_call = NULL;
    int rc = status == 0 ? lv_ratelimit_apply(ex, v) : decide_locally(ex, true);
    if (rc == 0) lv_exchange_proceed(ex);
}

int lv_ratelimit_check(struct lv_exchange *ex)
{
    struct lv_gen *g = ex->wg->gen;
    if (g->limiter == NULL) return 0;
    const struct lv_rate_cfg *rc = &ex->cfg->rate_limit;
    if (rc->store != LV_STORE_REDIS) return decide_locally(ex, false);
    char key[256];
    size_t len = rc->client_rate > 0 ? client_key(ex, key, sizeof(key)) : 0;
    if (lv_redis_take(ex->srv->redis, rc, key, len, on_verdict, ex, &ex->rl_call) == 0)
        return 2; /* the verdict comes later */
    return decide_locally(ex, true);
}

void lv_ratelimit_cancel(struct lv_exchange *ex)
{
    lv_redis_call_cancel(ex->rl_call);
    ex->rl_call = NULL;
}
