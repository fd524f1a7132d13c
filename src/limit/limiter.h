/*
 * The rate limiter levee runs: a per-client limit (by key) and a global one
 * (all clients together), with their state kept locally (lock-free global
 * bucket, sharded client table) or in Redis (limit/redis.h) so that several
 * levee instances share one limit.
 *
 * The client limit is checked first, then the global one: an abusive client
 * is turned away by its own limit before it can spend everybody's global
 * allowance.
 */
#ifndef LV_LIMIT_LIMITER_H
#define LV_LIMIT_LIMITER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "limit/bucket.h"
#include "limit/table.h"

struct lv_rate_cfg;

enum lv_limit_scope { LV_SCOPE_GLOBAL = 0, LV_SCOPE_CLIENT = 1, LV_SCOPE_COUNT };

/* The outcome of a check, with what the client needs to know. */
struct lv_limit_verdict {
    bool allowed;
    enum lv_limit_scope denied_by; /* when !allowed */
    bool has[LV_SCOPE_COUNT];      /* which limits applied */
    struct lv_limit_result r[LV_SCOPE_COUNT];
};

struct lv_limiter {
    atomic_int refs;
    int algorithm; /* enum lv_limit_algo */
    uint64_t max_clients;
    atomic_uint_fast64_t global_tat; /* token bucket */
    pthread_mutex_t global_lock;     /* sliding window */
    struct lv_window global_win;
    struct lv_ratetable *clients;
};

/* A limiter for cfg's algorithm and table size. NULL on ENOMEM. */
struct lv_limiter *lv_limiter_create(const struct lv_rate_cfg *cfg);
/* Keeps `prev` when it fits cfg (same algorithm and table size), else a
 * new one. */
struct lv_limiter *lv_limiter_reuse(struct lv_limiter *prev, const struct lv_rate_cfg *cfg);
void lv_limiter_ref(struct lv_limiter *l);
void lv_limiter_unref(struct lv_limiter *l);

/* Checks one request against the local state: client key (len 0: no
 * per-client limit), then the global limit. now in µs. Thread-safe. */
void lv_limiter_check(struct lv_limiter *l, const struct lv_rate_cfg *cfg, const char *key,
                      size_t len, uint64_t now, struct lv_limit_verdict *v);

/* The limit parameters of a scope, as the algorithms take them. */
void lv_limiter_params(const struct lv_rate_cfg *cfg, enum lv_limit_scope scope,
                       struct lv_limit_cfg *out);

/* Formats the RateLimit-Policy and RateLimit fields (draft-ietf-httpapi-
 * ratelimit-headers) for a verdict into out, as header lines. */
size_t lv_limiter_headers(const struct lv_rate_cfg *cfg, const struct lv_limit_verdict *v,
                          bool policy, char *out, size_t cap);

#endif
