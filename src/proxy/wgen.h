/*
 * A worker's view of a configuration generation (config/gen.h): the
 * balancer's state, scratch arrays, the access-log buffer, and a plain
 * count of the requests using it. Nothing on the request path touches an
 * atomic reference count: the view holds one reference on the generation
 * for all its requests.
 *
 * The worker's current view is wctx->wgen; a view replaced by a reload is
 * kept on wctx->retired until its last request is done.
 */
#ifndef LV_PROXY_WGEN_H
#define LV_PROXY_WGEN_H

#include <stdbool.h>
#include <stdint.h>

#include "proxy/wctx.h"

struct lv_gen;
struct lv_accesslog;
struct lv_backend;
struct lv_backend_cfg;
struct lv_balancer_ops;
struct lv_retry_cfg;
struct lv_breaker_cfg;
struct lv_timeouts_cfg;
struct lv_health_check_cfg;
struct lv_outlier_cfg;
struct lv_outlier_run;
struct lv_revive;
struct lv_revive_stat;

/*
 * A pool of backends as one worker picks from it: the backends and their
 * configuration (from the generation), the policies that govern tries on
 * them, the balancer's per-worker state and scratch arrays. The attempt
 * loop sees nothing else of the configuration.
 *
 * A view has one per pool of its generation (the top-level `backends:` is
 * the pool "default"), and one per route that forwards: a copy of its
 * pool's that shares the pool's backends, balancer state and scratch, with
 * the route's own retry and timeouts (route beats pool beats global,
 * resolved at load: config/routes.h).
 */
struct lv_wpool {
    struct lv_backend *const *backends; /* [n], shared state */
    const struct lv_backend_cfg *cfgs;  /* [n], where each is and its weight */
    size_t n;
    const struct lv_balancer_ops *balancer;
    void *lb_state;    /* the balancer's per-worker state */
    bool *eligible;    /* scratch for picks, [n] */
    uint32_t *weights; /* scratch: effective weights, [n] */
    const struct lv_retry_cfg *retry;
    const struct lv_breaker_cfg *breaker;
    const struct lv_timeouts_cfg *timeouts;
    const struct lv_health_check_cfg *health;
    const struct lv_outlier_cfg *outlier;
    struct lv_outlier_run *od;    /* this worker's outlier sweeps (NULL: none) */
    struct lv_revive **rslots;    /* scratch for a revive pick, [n] (NULL: no revive) */
    struct lv_revive_stat *rstat; /* ... and what the pick reads of each, [n] */
    const char *name;             /* the pool's */
};

struct lv_route_scratch;

struct lv_wgen {
    struct lv_gen *gen;
    unsigned inflight;                /* exchanges that started on it and are not done */
    struct lv_wpool *pools;           /* [gen->npools] */
    struct lv_wpool *routes;          /* [gen->nroutes]: a pool route's pool, with its policies
                                       * (routes that do not forward: unused) */
    struct lv_route_scratch *scratch; /* for matching routes (route/route.h) */
    struct lv_accesslog *alog;
    struct lv_list link; /* in the worker's list of retired views */
};

/* The worker's view of g (taking a reference on g). NULL on ENOMEM. */
struct lv_wgen *lv_wgen_create(struct lv_wctx *w, struct lv_gen *g);
/* Frees a view no request uses any more (dropping its reference on g). */
void lv_wgen_destroy(struct lv_wgen *wg);

/* Whether p is one of wg's pools (a pool's or a forwarding route's). */
bool lv_wgen_has_pool(const struct lv_wgen *wg, const struct lv_wpool *p);

/* Makes g the worker's current generation. 0, or UV_ENOMEM (nothing
 * changed). *old is the view it replaced (NULL: none), still alive: the
 * caller moves what leads into its generation (idle connections) to the
 * new one, then calls lv_wgen_retire. */
int lv_wgen_install(struct lv_wctx *w, struct lv_gen *g, struct lv_wgen **old);
/* A replaced view is freed, or kept until its requests are done. */
void lv_wgen_retire(struct lv_wctx *w, struct lv_wgen *old);

/* A request starts on the current view; returns it. */
struct lv_wgen *lv_wgen_enter(struct lv_wctx *w);
/* A request on wg is done: a retired view with no request left is freed. */
void lv_wgen_leave(struct lv_wctx *w, struct lv_wgen *wg);

/* Frees every view (the worker is stopping: no request is left). */
void lv_wgen_dispose_all(struct lv_wctx *w);

#endif
