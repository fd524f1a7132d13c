/*
 * Rate limits on the request path: the client key of a request (its
 * address, the client its trusted proxies name, or a header), the check —
 * in this process, or in Redis shared by several levees — and what a
 * refusal carries (Retry-After, the RateLimit fields). The check happens
 * once the head is parsed, before any backend is chosen, so a refused
 * request costs the backends nothing.
 *
 *   IDLE ──check──► DONE (allowed or refused at once: local limits)
 *     └───────────► ASKING (Redis) ──verdict, or the store fails──► DONE
 *                      └──cancel──► DONE (no callback)
 */
#ifndef LV_PROXY_RATELIMIT_H
#define LV_PROXY_RATELIMIT_H

#include <stdbool.h>

#include "http/head.h"
#include "proxy/wctx.h"

struct lv_limiter;
struct lv_rate_cfg;
struct lv_redis_call;

enum lv_rl_state { LV_RL_IDLE, LV_RL_ASKING, LV_RL_DONE };

enum lv_rl_verdict {
    LV_RL_ALLOWED,
    LV_RL_REFUSED, /* answer 429: retry_after_s and headers say more */
    LV_RL_WAIT,    /* asking the store: the callback gives the verdict */
};

/* The verdict of a check that had to wait (ALLOWED or REFUSED). */
typedef void (*lv_ratelimit_cb)(void *arg, enum lv_rl_verdict v);

struct lv_ratelimit {
    enum lv_rl_state state;
    struct lv_redis_call *call; /* while ASKING */
    lv_ratelimit_cb cb;
    void *arg;
    struct lv_wctx *w;
    struct lv_limiter *limiter;   /* the limits' local state */
    const struct lv_rate_cfg *rc; /* ... and settings */
    const struct lv_head *req;
    const char *peer_ip;
    unsigned retry_after_s; /* with REFUSED: Retry-After */
    unsigned denied_by;     /* with REFUSED: the limit that refused (0 global, 1 client) */
    char headers[200];      /* RateLimit-Policy / RateLimit lines for the response, or "" */
};

/*
 * Checks request `req` from peer_ip against the limits rc and their local
 * state `limiter` (the generation's global ones, or a route's own; NULL:
 * none configured, ALLOWED). Both must live until the verdict. Counts refusals and store fallbacks
 * in the worker's metrics. With WAIT, cb(arg, verdict) follows, never before this returns. req and
 * peer_ip must live until the verdict.
 */
enum lv_rl_verdict lv_ratelimit_check(struct lv_ratelimit *rl, struct lv_wctx *w,
                                      struct lv_limiter *limiter, const struct lv_rate_cfg *rc,
                                      const struct lv_head *req, const char *peer_ip,
                                      lv_ratelimit_cb cb, void *arg);

/* Forgets a pending check: no callback follows. */
void lv_ratelimit_cancel(struct lv_ratelimit *rl);

#endif
