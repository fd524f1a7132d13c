/*
 * Rate limits on the request path: the client key of a request, the check
 * (local, or through Redis), and the 429 answer with Retry-After and the
 * RateLimit fields.
 */
#ifndef LV_PROXY_RATELIMIT_H
#define LV_PROXY_RATELIMIT_H

#include "proxy/proxy-t.h"

/* Checks the request of ex. Returns 0: allowed, go on; 1: refused, levee
 * answered 429 (the exchange is done); 2: waiting for the store, which
 * calls lv_attempt_first or answers later. */
int lv_ratelimit_check(struct lv_exchange *ex);

/* The exchange is going away while the store is asked: forget the answer. */
void lv_ratelimit_cancel(struct lv_exchange *ex);

struct lv_limit_verdict;
/* Applies a verdict: 0 allowed (RateLimit fields kept for the response
 * when configured), 1 refused (429 answered). Used by the stores. */
int lv_ratelimit_apply(struct lv_exchange *ex, const struct lv_limit_verdict *v);

#endif
