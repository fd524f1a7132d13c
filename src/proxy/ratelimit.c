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
static size_t client_key(const struct lv_ratelimit *rl, char *out, size_t cap)
{
    const struct lv_rate_cfg *rc = rl->rc;
    const struct lv_head *h = rl->req;
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
    return 3 + lv_client_address(rl->peer_ip, xff_prev, &it, rc->trusted, rc->ntrusted, out + 3,
                                 cap - 3);
}

static enum lv_rl_verdict apply(struct lv_ratelimit *rl, const struct lv_limit_verdict *v)
{
    const struct lv_rate_cfg *rc = rl->rc;
    rl->state = LV_RL_DONE;
    if (v->allowed) {
        if (rc->headers) lv_limiter_headers(rc, v, true, rl->headers, sizeof(rl->headers));
        return LV_RL_ALLOWED;
    }
    LV_STAT_INC(rl->w->stats.rate_limited[v->denied_by]);
    rl->denied_by = v->denied_by;
    uint64_t retry_us = v->r[v->denied_by].retry_us;
    rl->retry_after_s = (unsigned)((retry_us + 999999) / 1000000);
    if (rl->retry_after_s == 0) rl->retry_after_s = 1;
    lv_limiter_headers(rc, v, true, rl->headers, sizeof(rl->headers));
    return LV_RL_REFUSED;
}

/* Without the store's answer: rate_limit.on_store_error decides, or the
 * local state when there is no store at all. */
static enum lv_rl_verdict decide_locally(struct lv_ratelimit *rl, bool store_failed)
{
    const struct lv_rate_cfg *rc = rl->rc;
    if (store_failed) {
        LV_STAT_INC(rl->w->stats.store_fallbacks);
        if (rc->on_store_error == LV_ON_ERROR_ALLOW) {
            rl->state = LV_RL_DONE;
            return LV_RL_ALLOWED;
        }
        if (rc->on_store_error == LV_ON_ERROR_DENY) {
            /* Every configured limit is reported exhausted for a second. */
            struct lv_limit_verdict v = {.allowed = false};
            v.has[LV_SCOPE_GLOBAL] = rc->rate > 0;
            v.has[LV_SCOPE_CLIENT] = rc->client_rate > 0;
            v.denied_by = v.has[LV_SCOPE_GLOBAL] ? LV_SCOPE_GLOBAL : LV_SCOPE_CLIENT;
            for (int s = 0; s < LV_SCOPE_COUNT; s++)
                v.r[s].retry_us = v.r[s].reset_us = 1000000;
            return apply(rl, &v);
        }
    }
    char key[256];
    size_t len = rc->client_rate > 0 ? client_key(rl, key, sizeof(key)) : 0;
    struct lv_limit_verdict v;
    lv_limiter_check(rl->limiter, rc, key, len, lv_clock_ns() / 1000, &v);
    return apply(rl, &v);
}

static void on_verdict(void *arg, int status, const struct lv_limit_verdict *v)
{
    struct lv_ratelimit *rl = arg;
    rl->call = NULL;
    enum lv_rl_verdict r = status == 0 ? apply(rl, v) : decide_locally(rl, true);
    rl->cb(rl->arg, r);
}

enum lv_rl_verdict lv_ratelimit_check(struct lv_ratelimit *rl, struct lv_wctx *w,
                                      struct lv_limiter *limiter, const struct lv_rate_cfg *rc,
                                      const struct lv_head *req, const char *peer_ip,
                                      lv_ratelimit_cb cb, void *arg)
{
    rl->state = LV_RL_DONE;
    rl->call = NULL;
    rl->w = w;
    rl->limiter = limiter;
    rl->rc = rc;
    rl->req = req;
    rl->peer_ip = peer_ip;
    rl->cb = cb;
    rl->arg = arg;
    rl->retry_after_s = 0;
    rl->headers[0] = '\0';
    if (limiter == NULL) return LV_RL_ALLOWED;
    if (rc->store != LV_STORE_REDIS) return decide_locally(rl, false);
    char key[256];
    size_t len = rc->client_rate > 0 ? client_key(rl, key, sizeof(key)) : 0;
    rl->state = LV_RL_ASKING;
    if (lv_redis_take(w->redis, rc, key, len, on_verdict, rl, &rl->call) == 0) return LV_RL_WAIT;
    return decide_locally(rl, true);
}

void lv_ratelimit_cancel(struct lv_ratelimit *rl)
{
    if (rl->state != LV_RL_ASKING) return;
    lv_redis_call_cancel(rl->call);
    rl->call = NULL;
    rl->state = LV_RL_DONE;
}
