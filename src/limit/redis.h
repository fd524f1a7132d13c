/*
 * Rate limits kept in Redis, so that several levee instances enforce one
 * limit. Each worker has its own connection (hiredis' asynchronous API on
 * the worker's libuv loop: no blocking call, no lock); one Lua script per
 * check takes the client and the global allowance atomically, with keys
 * that expire on their own.
 *
 * Redis slow or gone never stalls a request: a check that gets no answer
 * within rate_limit.redis.timeout, or that cannot be sent because the
 * connection is down, fails at once and the caller falls back
 * (rate_limit.on_store_error). The connection is re-established in the
 * background; the state is shared by the workers (for logs and metrics).
 */
#ifndef LV_LIMIT_REDIS_H
#define LV_LIMIT_REDIS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include "limit/limiter.h"

struct lv_rate_cfg;
struct lv_redis;
struct lv_redis_call;

/* State shared by every worker's connection. */
struct lv_redis_shared {
    atomic_int connected; /* workers connected now */
    atomic_int up;        /* last state logged: 1 up, 0 down, -1 never */
};

/* status 0: v holds Redis' verdict; < 0: no answer (down, timeout, error). */
typedef void (*lv_redis_cb)(void *arg, int status, const struct lv_limit_verdict *v);

/* A worker's connection to the store named by cfg; starts connecting. */
struct lv_redis *lv_redis_create(uv_loop_t *loop, const struct lv_rate_cfg *cfg,
                                 struct lv_redis_shared *shared);

/* Does this connection talk to the store cfg names (address, password)? */
bool lv_redis_same(const struct lv_redis *r, const struct lv_rate_cfg *cfg);

/*
 * Sends a check for client key (len 0: no client limit) and the global
 * limit. Returns 0 and sets *call (cb follows, never before this returns),
 * or UV_ENOTCONN (the store cannot be asked now: not connected, or closing)
 * or UV_ENOMEM; cb is not called then.
 */
int lv_redis_take(struct lv_redis *r, const struct lv_rate_cfg *cfg, const char *key, size_t len,
                  lv_redis_cb cb, void *arg, struct lv_redis_call **call);

/* The caller no longer wants the answer: cb will not be called. */
void lv_redis_call_cancel(struct lv_redis_call *call);

/* Closes the connection (pending checks fail); frees itself later. */
void lv_redis_close(struct lv_redis *r);

#endif
