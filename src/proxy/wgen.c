/* A worker's view of a configuration generation. */
#include "proxy/wgen.h"

#include <stdlib.h>

#include "config/config.h"
#include "core/logfile.h"
#include "proxy/accesslog.h"
#include "upstream/balancer.h"
#include "config/gen.h"

struct lv_wgen *lv_wgen_create(struct lv_server *srv, struct lv_gen *g)
{
    struct lv_wgen *wg = calloc(1, sizeof(*wg));
    if (wg == NULL) return NULL;
    size_t n = g->nbackends + 1;
    wg->eligible = calloc(n, sizeof(*wg->eligible));
    wg->weights = calloc(n, sizeof(*wg->weights));
    wg->lb_state = g->cfg->balancer->create(g->nbackends);
    if (wg->eligible == NULL || wg->weights == NULL || wg->lb_state == NULL) {
        if (wg->lb_state) g->cfg->balancer->destroy(wg->lb_state);
        free(wg->eligible);
        free(wg->weights);
        free(wg);
        return NULL;
    }
    wg->alog =
        lv_accesslog_create(&srv->w.loop, g->alog ? g->alog->fd : -1, g->cfg->access_log.format);
    lv_gen_ref(g);
    wg->gen = g;
    return wg;
}

void lv_wgen_destroy(struct lv_wgen *wg)
{
    struct lv_gen *g = wg->gen;
    lv_accesslog_close(wg->alog);
    g->cfg->balancer->destroy(wg->lb_state);
    free(wg->eligible);
    free(wg->weights);
    free(wg);
    lv_gen_unref(g);
}
