/*
 * Configuration generations. A generation is an immutable configuration
 * with the backends it names and its access-log file. Reloading builds a
 * new one beside the running one; each worker switches to it between two
 * requests, and requests in flight finish on the generation they started
 * with. A generation is freed when nothing holds it any more.
 *
 * Backends are shared between generations by id: a backend whose id stays
 * keeps its state (breaker, health, pools, counters) across reloads.
 *
 * It lives in config/ because it assembles what the layers below provide
 * (the configuration, upstream's backends, limit's limiter, core's log
 * file) and is what the layers above (proxy, admin) run on. So is the
 * `/health` document, which both the proxy port and the admin port answer.
 */
#ifndef LV_CONFIG_GEN_H
#define LV_CONFIG_GEN_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/stats.h"
#include "upstream/checker.h"

struct lv_config;
struct lv_backend;
struct lv_logfile;
struct lv_limiter;
struct lv_strbuf;
struct lv_backend_pool_cfg;

/*
 * Pools (config/routes.h): a pool is a slice of the backends,
 * backends[first .. first + n), with its own settings; the top-level
 * `backends:` is the pool "default". checks[p] is pool p as the health
 * checker takes it (upstream/checker.h). route_limiters[r] is route r's
 * own rate limiter, or NULL when the route has no rate_limit of its own
 * (the global limiter counts it).
 */
/*
 * Traffic counters by route (kept only when the file has pools or routes):
 * one set per worker and route of the generation, plus one per worker for
 * requests answered before they were routed (route "none"). The route
 * gives the pool, so cardinality is the configuration's. status has a row
 * per backend of the route's pool (the answer's backend, by its place in
 * the pool) and a last row for answers levee wrote itself; a route that
 * does not forward has that row only.
 */
struct lv_route_wstats {
    struct lv_lathist duration;           /* whole requests */
    atomic_uint_fast64_t retries;         /* retry attempts made */
    atomic_uint_fast64_t rate_limited[2]; /* refused: global, client */
    atomic_uint_fast64_t *status;         /* [(rows) * LV_STATUS_CODES] */
    size_t rows;                          /* the pool's backends + 1 */
};

struct lv_gen {
    uint64_t id;
    struct lv_config *cfg;
    struct lv_backend **backends; /* parallel to cfg->backends */
    size_t nbackends;
    const struct lv_backend_pool_cfg *pools; /* cfg->routing->pools */
    size_t npools;
    struct lv_checker_group *checks;    /* [npools] */
    struct lv_limiter **route_limiters; /* [number of routes] */
    size_t nroutes;
    struct lv_logfile *alog;        /* NULL: access log off */
    struct lv_limiter *limiter;     /* NULL: no rate limit configured */
    struct lv_route_wstats *rstats; /* [nworkers][nroutes + 1], or NULL: no routing */
    unsigned nworkers;
    atomic_int refs;
};

/* Worker w's counters of route r (nroutes: requests not routed), or NULL
 * when the file has no pools or routes. */
static inline struct lv_route_wstats *lv_gen_rstats(const struct lv_gen *g, unsigned w, size_t r)
{
    return g->rstats ? &g->rstats[(size_t)w * (g->nroutes + 1) + r] : NULL;
}

/* The pool backend i belongs to (every backend is in exactly one). */
const struct lv_backend_pool_cfg *lv_gen_backend_pool(const struct lv_gen *g, size_t i);

/*
 * Builds a generation from cfg (taken over), reusing prev's backends where
 * the id and its pool's name are the same, its log file where the path is,
 * and its rate limiters (global, and a route's of the same name) where
 * their shape is (prev may be NULL). Returns
 * NULL after logging why (cfg is then destroyed).
 */
struct lv_gen *lv_gen_create(struct lv_config *cfg, const struct lv_gen *prev, unsigned nworkers,
                             uint64_t id);
void lv_gen_ref(struct lv_gen *g);
/* Drops a reference; the last one frees the generation, the backends only
 * it held, and its log file if unshared. Any thread. */
void lv_gen_unref(struct lv_gen *g);

/*
 * Writes levee's health as the load balancers in front of it see it (the
 * `/health` document, docs/admin-api.md) for g's backends at `now` (ms,
 * monotonic; start_ms: when levee started, for the uptime). Each backend
 * counts by its verdict (upstream/eligible.h) under its pool's breaker
 * settings. Returns the HTTP status to
 * answer with: 200 (healthy or degraded: some backend, or the last resort,
 * can serve) or 503 (none can). Any thread: it reads the backends' atomics.
 */
int lv_gen_health_json(struct lv_strbuf *sb, const struct lv_gen *g, uint64_t start_ms,
                       uint64_t now);

#endif
