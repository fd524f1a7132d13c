/* A worker's views of configuration generations. */
#include "proxy/wgen.h"

#include <assert.h>
#include <stdlib.h>

#include "config/config.h"
#include "config/routes.h"
#include "core/logfile.h"
#include "proxy/accesslog.h"
#include "route/route.h"
#include "upstream/balancer.h"
#include "upstream/outlier.h"
#include "upstream/revive.h"
#include "config/gen.h"

static void pool_dispose(struct lv_wpool *p)
{
    if (p->lb_state) p->balancer->destroy(p->lb_state);
    if (p->od) lv_outlier_run_dispose(p->od);
    free(p->od);
    free(p->rslots);
    free(p->rstat);
    free(p->eligible);
    free(p->weights);
}

/* Pool k of g as this worker picks from it. 0, or -1 (ENOMEM). */
static int pool_init(struct lv_wpool *p, const struct lv_gen *g, size_t k)
{
    const struct lv_backend_pool_cfg *pc = &g->pools[k];
    const struct lv_config *cfg = g->cfg;
    p->backends = g->backends + pc->first;
    p->cfgs = cfg->backends + pc->first;
    p->n = pc->n;
    p->balancer = pc->balancer;
    p->retry = &pc->retry;
    p->breaker = &pc->breaker;
    p->timeouts = &pc->timeouts;
    p->health = &pc->health;
    p->name = pc->name;
    p->eligible = calloc(pc->n + 1, sizeof(*p->eligible));
    p->weights = calloc(pc->n + 1, sizeof(*p->weights));
    p->outlier = &cfg->outlier; /* outlier_detection: global, for every pool */
    p->rslots = calloc(pc->n + 1, sizeof(*p->rslots));
    p->rstat = calloc(pc->n + 1, sizeof(*p->rstat));
    p->od = calloc(1, sizeof(*p->od));
    if (p->od && lv_outlier_run_init(p->od, pc->n) != 0) {
        free(p->od);
        p->od = NULL;
        return -1;
    }
    p->lb_state = pc->balancer->create(pc->n);
    return p->eligible && p->weights && p->rslots && p->rstat && p->od && p->lb_state ? 0 : -1;
}

static void wgen_free(struct lv_wgen *wg)
{
    for (size_t k = 0; wg->pools && k < wg->gen->npools; k++)
        pool_dispose(&wg->pools[k]);
    free(wg->pools);
    free(wg->routes);
    lv_route_scratch_destroy(wg->scratch);
    lv_accesslog_close(wg->alog);
    struct lv_gen *g = wg->gen;
    free(wg);
    lv_gen_unref(g);
}

struct lv_wgen *lv_wgen_create(struct lv_wctx *w, struct lv_gen *g)
{
    struct lv_wgen *wg = calloc(1, sizeof(*wg));
    if (wg == NULL) return NULL;
    lv_gen_ref(g);
    wg->gen = g;
    lv_list_init(&wg->link);
    const struct lv_routes_cfg *rc = g->cfg->routing;
    wg->pools = calloc(g->npools + 1, sizeof(*wg->pools));
    wg->routes = calloc(g->nroutes + 1, sizeof(*wg->routes));
    wg->scratch = lv_route_scratch_create();
    bool ok = wg->pools && wg->routes && wg->scratch;
    for (size_t k = 0; ok && k < g->npools; k++)
        ok = pool_init(&wg->pools[k], g, k) == 0;
    for (size_t i = 0; ok && i < g->nroutes; i++) {
        const struct lv_route *r = &rc->table->routes[i];
        if (r->action != LV_ROUTE_POOL) continue;
        assert(r->pool < g->npools);
        wg->routes[i] = wg->pools[r->pool];
        wg->routes[i].retry = &rc->routes[i].retry;
        wg->routes[i].timeouts = &rc->routes[i].timeouts;
    }
    if (ok) {
        wg->alog =
            lv_accesslog_create(w->loop, g->alog ? g->alog->fd : -1, g->cfg->access_log.format);
    }
    if (!ok) {
        wgen_free(wg);
        return NULL;
    }
    return wg;
}

bool lv_wgen_has_pool(const struct lv_wgen *wg, const struct lv_wpool *p)
{
    for (size_t k = 0; k < wg->gen->npools; k++)
        if (p == &wg->pools[k]) return true;
    for (size_t i = 0; i < wg->gen->nroutes; i++)
        if (p == &wg->routes[i]) return true;
    return false;
}

void lv_wgen_destroy(struct lv_wgen *wg)
{
    wgen_free(wg);
}

int lv_wgen_install(struct lv_wctx *w, struct lv_gen *g, struct lv_wgen **old)
{
    struct lv_wgen *wg = lv_wgen_create(w, g);
    if (wg == NULL) return UV_ENOMEM;
    *old = w->wgen;
    w->wgen = wg;
    return 0;
}

void lv_wgen_retire(struct lv_wctx *w, struct lv_wgen *old)
{
    if (old == NULL) return;
    assert(old != w->wgen);
    if (old->inflight == 0)
        lv_wgen_destroy(old);
    else
        lv_list_push_front(&w->retired, &old->link);
}

struct lv_wgen *lv_wgen_enter(struct lv_wctx *w)
{
    assert(w->wgen != NULL);
    w->wgen->inflight++;
    return w->wgen;
}

void lv_wgen_leave(struct lv_wctx *w, struct lv_wgen *wg)
{
    assert(wg->inflight > 0);
    if (--wg->inflight > 0 || wg == w->wgen) return;
    assert(lv_list_linked(&wg->link)); /* a retired view is on the retired list */
    lv_list_remove(&wg->link);
    lv_wgen_destroy(wg);
}

void lv_wgen_dispose_all(struct lv_wctx *w)
{
    while (!lv_list_empty(&w->retired)) {
        struct lv_wgen *wg = lv_container_of(w->retired.next, struct lv_wgen, link);
        lv_list_remove(&wg->link);
        lv_wgen_destroy(wg);
    }
    if (w->wgen) lv_wgen_destroy(w->wgen);
    w->wgen = NULL;
}
