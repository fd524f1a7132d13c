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
#include "limit/key.h"
#include "limit/table.h"
#include "net/addr.h"

enum lv_store_kind { LV_STORE_LOCAL, LV_STORE_REDIS };
enum lv_store_error { LV_ON_ERROR_LOCAL, LV_ON_ERROR_ALLOW, LV_ON_ERROR_DENY };
enum lv_key_kind { LV_KEY_IP, LV_KEY_HEADER };

/* rate_limit: in the configuration. */
struct lv_rate_cfg {
    /* global: all clients together; rate 0 = no global limit */
    double rate;
    uint64_t burst;
    /* per client; rate 0 = no per-client limit */
    double client_rate;
    uint64_t client_burst;
    enum lv_key_kind key;
    char *key_header;        /* with LV_KEY_HEADER */
    struct lv_cidr *trusted; /* proxies whose X-Forwarded-For is believed */
    size_t ntrusted;
    uint64_t max_clients;
    enum lv_limit_algo algorithm;
    uint64_t window; /* ms, sliding window */
    bool headers;    /* RateLimit on allowed responses too */
    enum lv_store_kind store;
    enum lv_store_error on_store_error;
    struct lv_addr_cfg redis; /* rate_limit.redis.address */
    uint64_t redis_timeout;   /* ms */
    char *redis_prefix;
    char *redis_password;
};

/* Is any limit configured (a global or a per-client rate)? */
static inline bool lv_rate_cfg_enabled(const struct lv_rate_cfg *cfg)
{
    return cfg->rate > 0 || cfg->client_rate > 0;
}

/* Frees the strings and tables cfg holds and zeroes it. */
void lv_rate_cfg_dispose(struct lv_rate_cfg *cfg);

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
    enum lv_limit_algo algorithm;
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
