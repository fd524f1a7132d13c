/* A worker's views of configuration generations. */
#include "proxy/wgen.h"

#include <assert.h>
#include <stdlib.h>

#include "config/config.h"
#include "core/logfile.h"
#include "proxy/accesslog.h"
#include "upstream/balancer.h"
#include "upstream/outlier.h"
#include "upstream/revive.h"
#include "config/gen.h"

struct lv_wgen *lv_wgen_create(struct lv_wctx *w, struct lv_gen *g)
{
    struct lv_wgen *wg = calloc(1, sizeof(*wg));
    if (wg == NULL) return NULL;
    const struct lv_config *cfg = g->cfg;
    struct lv_wpool *p = &wg->pool;
    size_t n = g->nbackends + 1;
    p->backends = g->backends;
    p->cfgs = cfg->backends;
    p->n = g->nbackends;
    p->balancer = cfg->balancer;
    p->retry = &cfg->retry;
    p->breaker = &cfg->breaker;
    p->timeouts = &cfg->timeouts;
    p->health = &cfg->health;
    p->outlier = &cfg->outlier;
    p->eligible = calloc(n, sizeof(*p->eligible));
    p->weights = calloc(n, sizeof(*p->weights));
    p->rslots = calloc(n, sizeof(*p->rslots));
    p->rstat = calloc(n, sizeof(*p->rstat));
    p->od = calloc(1, sizeof(*p->od));
    p->lb_state = cfg->balancer->create(g->nbackends);
    if (p->eligible == NULL || p->weights == NULL || p->rslots == NULL || p->rstat == NULL ||
        p->od == NULL || lv_outlier_run_init(p->od, g->nbackends) != 0 || p->lb_state == NULL) {
        if (p->lb_state) cfg->balancer->destroy(p->lb_state);
        if (p->od) lv_outlier_run_dispose(p->od);
        free(p->od);
        free(p->rslots);
        free(p->rstat);
        free(p->eligible);
        free(p->weights);
        free(wg);
        return NULL;
    }
    lv_list_init(&wg->link);
    wg->alog = lv_accesslog_create(w->loop, g->alog ? g->alog->fd : -1, g->cfg->access_log.format);
    lv_gen_ref(g);
    wg->gen = g;
    return wg;
}

void lv_wgen_destroy(struct lv_wgen *wg)
{
    struct lv_gen *g = wg->gen;
    lv_accesslog_close(wg->alog);
    wg->pool.balancer->destroy(wg->pool.lb_state);
    lv_outlier_run_dispose(wg->pool.od);
    free(wg->pool.od);
    free(wg->pool.rslots);
    free(wg->pool.rstat);
    free(wg->pool.eligible);
    free(wg->pool.weights);
    free(wg);
    lv_gen_unref(g);
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
