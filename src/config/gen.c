/* Generations: building one from a configuration, sharing backends and
 * files with the previous one; the /health document. */
#include "config/gen.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/routes.h"
#include "core/log.h"
#include "core/logfile.h"
#include "core/strbuf.h"
#include "limit/limiter.h"
#include "upstream/backend.h"
#include "upstream/eligible.h"

const struct lv_backend_pool_cfg *lv_gen_backend_pool(const struct lv_gen *g, size_t i)
{
    for (size_t k = 0; k < g->npools; k++) {
        if (i >= g->pools[k].first && i < g->pools[k].first + g->pools[k].n) return &g->pools[k];
    }
    return NULL;
}

/* prev's backend with this id in a pool of this name: its state carries
 * over. A backend moved to another pool starts afresh (its breaker and
 * health were judged under the other pool's settings). */
static struct lv_backend *find_backend(const struct lv_gen *g, const char *id, const char *pool)
{
    for (size_t i = 0; g && i < g->nbackends; i++) {
        if (strcmp(g->backends[i]->id, id) != 0) continue;
        const struct lv_backend_pool_cfg *p = lv_gen_backend_pool(g, i);
        return p && strcmp(p->name, pool) == 0 ? g->backends[i] : NULL;
    }
    return NULL;
}

/* prev's limiter of the route named name, if any. */
static struct lv_limiter *find_route_limiter(const struct lv_gen *g, const char *name)
{
    if (g == NULL) return NULL;
    const struct lv_route_table *t = g->cfg->routing->table;
    for (size_t i = 0; i < g->nroutes; i++) {
        if (g->route_limiters[i] && strcmp(t->routes[i].name, name) == 0)
            return g->route_limiters[i];
    }
    return NULL;
}

/* The per-route traffic counters (struct lv_route_wstats). 0, or -1. */
static int build_rstats(struct lv_gen *g)
{
    const struct lv_route_table *t = g->cfg->routing->table;
    size_t per = g->nroutes + 1, rows = 0;
    for (size_t r = 0; r < per; r++) {
        bool pool = r < g->nroutes && t->routes[r].action == LV_ROUTE_POOL;
        rows += 1 + (pool ? g->pools[t->routes[r].pool].n : 0);
    }
    g->rstats = calloc((size_t)g->nworkers * per, sizeof(*g->rstats));
    atomic_uint_fast64_t *cells = calloc(g->nworkers * rows * LV_STATUS_CODES, sizeof(*cells));
    if (g->rstats == NULL || cells == NULL) {
        free(cells);
        return -1;
    }
    for (unsigned w = 0; w < g->nworkers; w++) {
        for (size_t r = 0; r < per; r++) {
            struct lv_route_wstats *rs = &g->rstats[w * per + r];
            bool pool = r < g->nroutes && t->routes[r].action == LV_ROUTE_POOL;
            rs->rows = 1 + (pool ? g->pools[t->routes[r].pool].n : 0);
            rs->status = cells;
            cells += rs->rows * LV_STATUS_CODES;
        }
    }
    return 0;
}

/* Pools, health-check groups and route limiters. 0, or -1 (ENOMEM). */
static int build_routing(struct lv_gen *g, const struct lv_gen *prev)
{
    const struct lv_routes_cfg *rc = g->cfg->routing;
    g->pools = rc->pools;
    g->npools = rc->npools;
    g->checks = calloc(rc->npools + 1, sizeof(*g->checks));
    g->nroutes = rc->table->n;
    g->route_limiters = calloc(g->nroutes + 1, sizeof(*g->route_limiters));
    if (g->checks == NULL || g->route_limiters == NULL) return -1;
    for (size_t k = 0; k < rc->npools; k++) {
        const struct lv_backend_pool_cfg *p = &rc->pools[k];
        g->checks[k] = (struct lv_checker_group){p->first, p->n, &p->health, &p->breaker};
    }
    for (size_t i = 0; i < g->nroutes; i++) {
        const struct lv_rate_cfg *r = rc->routes[i].rate_limit;
        if (r == NULL || !lv_rate_cfg_enabled(r)) continue;
        struct lv_limiter *old = find_route_limiter(prev, rc->table->routes[i].name);
        g->route_limiters[i] = lv_limiter_reuse(old, r);
        if (g->route_limiters[i] == NULL) return -1;
    }
    return rc->configured ? build_rstats(g) : 0;
}

struct lv_gen *lv_gen_create(struct lv_config *cfg, const struct lv_gen *prev, unsigned nworkers,
                             uint64_t id)
{
    struct lv_gen *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        lv_config_destroy(cfg);
        return NULL;
    }
    g->id = id;
    g->cfg = cfg;
    g->nworkers = nworkers;
    atomic_init(&g->refs, 1);
    if (cfg->routing == NULL || cfg->routing->table == NULL) goto fail;
    g->pools = cfg->routing->pools;
    g->npools = cfg->routing->npools;
    g->backends = calloc(cfg->n_backends + 1, sizeof(*g->backends));
    if (g->backends == NULL) goto fail;
    for (size_t i = 0; i < cfg->n_backends; i++) {
        const struct lv_backend_pool_cfg *pool = lv_gen_backend_pool(g, i);
        assert(pool != NULL);
        struct lv_backend *b = find_backend(prev, cfg->backends[i].id, pool->name);
        if (b) {
            lv_backend_ref(b);
        } else {
            b = lv_backend_create(cfg->backends[i].id, nworkers);
            if (b == NULL) goto fail;
        }
        g->backends[g->nbackends++] = b;
    }
    if (build_routing(g, prev) != 0) goto fail;
    if (lv_config_rate_limiting(cfg)) {
        /* The state carries over a reload unless its shape changed. */
        g->limiter = lv_limiter_reuse(prev ? prev->limiter : NULL, &cfg->rate_limit);
        if (g->limiter == NULL) goto fail;
    }
    const char *path = cfg->access_log.path;
    if (path) {
        if (prev && prev->alog && strcmp(prev->alog->path, path) == 0) {
            g->alog = prev->alog;
            lv_logfile_ref(g->alog);
        } else if ((g->alog = lv_logfile_open(path)) == NULL) {
            goto fail;
        }
    }
    return g;
fail:
    lv_gen_unref(g);
    return NULL;
}

void lv_gen_ref(struct lv_gen *g)
{
    atomic_fetch_add(&g->refs, 1);
}

void lv_gen_unref(struct lv_gen *g)
{
    if (g == NULL || atomic_fetch_sub(&g->refs, 1) != 1) return;
    for (size_t i = 0; i < g->nbackends; i++)
        lv_backend_unref(g->backends[i]);
    free(g->backends);
    for (size_t i = 0; g->route_limiters && i < g->nroutes; i++)
        lv_limiter_unref(g->route_limiters[i]);
    free(g->route_limiters);
    free(g->checks);
    if (g->rstats) free(g->rstats[0].status);
    free(g->rstats);
    lv_logfile_unref(g->alog);
    lv_limiter_unref(g->limiter);
    lv_config_destroy(g->cfg);
    free(g);
}

int lv_gen_health_json(struct lv_strbuf *sb, const struct lv_gen *g, uint64_t start_ms,
                       uint64_t now)
{
    struct lv_eligible_tally t = {0};
    for (size_t k = 0; k < g->npools; k++) {
        const struct lv_backend_pool_cfg *p = &g->pools[k];
        struct lv_eligible_tally pt =
            lv_eligible_tally(g->backends + p->first, p->n, &p->breaker, now);
        t.usable += pt.usable;
        t.last_resort += pt.last_resort;
    }
    bool breakers = false;
    for (size_t k = 0; k < g->npools; k++)
        breakers |= g->pools[k].breaker.enabled;
    bool checks = false;
    for (size_t i = 0; i < g->nbackends; i++)
        checks |= g->cfg->backends[i].health_check_enabled;
    /* Serving from the last resort (a backend on its way back) is degraded,
     * not unhealthy: levee answers, so whatever balances in front of it
     * should keep sending. */
    bool serving = t.usable > 0 || t.last_resort > 0;
    const char *status = !serving ? "unhealthy" : t.usable == g->nbackends ? "healthy" : "degraded";
    lv_strbuf_printf(sb,
                     "{\"status\":\"%s\",\"uptime_seconds\":%llu,"
                     "\"backends\":{\"healthy\":%zu,\"total\":%zu},"
                     "\"features\":{\"circuit_breaker\":%s,\"rate_limiting\":%s,"
                     "\"health_checks\":%s}}\n",
                     status, (unsigned long long)(now > start_ms ? (now - start_ms) / 1000 : 0),
                     t.usable, g->nbackends, breakers ? "true" : "false",
                     lv_config_rate_limiting(g->cfg) ? "true" : "false", checks ? "true" : "false");
    return serving ? 200 : 503;
}
