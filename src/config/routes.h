/*
 * Pools and routes in the configuration (docs/routes.md):
 *
 *   pools:     named pools of backends; each takes the keys that are global
 *              otherwise (backends, load_balancing, timeouts, retry,
 *              circuit_breaker, health_check, pool), and a key it does not
 *              set has the global value.
 *   routes:    the route table (route/route.h), first match wins; a route
 *              forwards to a pool, redirects or answers itself, and may set
 *              its own timeouts, retry, rate_limit and upgrade.allow (route
 *              beats pool beats global).
 *   no_route:  the answer when no route matches and there is no default
 *              pool.
 *
 * The top-level `backends:` is the pool named "default", with the global
 * settings; a file with neither `pools:` nor `routes:` has that pool (even
 * empty) and one route to it: today's single pool, unchanged.
 *
 * Every backend of every pool is in cfg->backends: a pool is the slice
 * backends[first .. first + n), the default pool's first. Backend ids are
 * unique across pools, so a backend keeps its state over a reload when its
 * id and its pool's name both stay (lv_routes_backend_pool).
 *
 * The table always ends with an implicit route that matches everything: to
 * the default pool ("default"), or the no_route answer ("no_route"), so a
 * match always finds a route.
 *
 * Read after the global keys (lv_config_read_routes), since what a pool or a
 * route does not set comes from them wherever they are written in the file.
 */
#ifndef LV_CONFIG_ROUTES_H
#define LV_CONFIG_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config-t.h"
#include "route/route.h"

#define LV_POOL_MAX 1024    /* pools in a file */
#define LV_NAME_MAX 64      /* bytes of a pool or route name */
#define LV_NO_POOL SIZE_MAX /* lv_routes_cfg.default_pool: none */

struct lv_backend_pool_cfg {
    char *name;
    size_t first, n; /* its backends: cfg->backends[first .. first + n) */
    const struct lv_balancer_ops *balancer;
    struct lv_timeouts_cfg timeouts; /* connect, per_try, backend, tunnel are per pool */
    struct lv_retry_cfg retry;
    struct lv_breaker_cfg breaker;
    struct lv_health_check_cfg health;
    struct lv_pool_cfg pool;
    uint32_t line, col; /* where it is written (0: the top-level backends) */
};

/* What a pool route sets for itself, resolved at load: each value is the
 * route's, else its pool's, else the global one. Indexed like the table. */
struct lv_route_cfg {
    struct lv_timeouts_cfg timeouts;
    struct lv_retry_cfg retry;
    /* The route's own limit (own buckets; the global limit does not count
     * its requests), or NULL: the global rate_limit. */
    struct lv_rate_cfg *rate_limit;
    struct lv_strlist upgrade_allow;
    bool forwarded; /* send an RFC 7239 Forwarded field */
    /* The global cache: with the route's keys on top (its targets are the
     * global ones, borrowed: never disposed here). */
    struct lv_cache_cfg cache;
};

struct lv_routes_cfg {
    struct lv_backend_pool_cfg *pools;
    size_t npools;
    size_t default_pool;          /* LV_NO_POOL: none */
    struct lv_route_table *table; /* never empty: the last route is implicit */
    struct lv_route_cfg *routes;  /* table->n of them */
    bool configured;              /* the file has pools: or routes: */
};

/* The pool named name, or LV_NO_POOL. */
size_t lv_routes_find_pool(const struct lv_routes_cfg *rc, const char *name);

/* The pool backend i of cfg->backends belongs to. */
const struct lv_backend_pool_cfg *lv_routes_backend_pool(const struct lv_config *cfg, size_t i);

void lv_routes_cfg_destroy(struct lv_routes_cfg *rc);

#endif
