/* Generations: building one from a configuration, sharing backends and
 * files with the previous one; the /health document. */
#include "config/gen.h"

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

static struct lv_backend *find_backend(const struct lv_gen *g, const char *id)
{
    for (size_t i = 0; g && i < g->nbackends; i++) {
        if (strcmp(g->backends[i]->id, id) == 0) return g->backends[i];
    }
    return NULL;
}

struct lv_gen *lv_gen_create(struct lv_config *cfg, const struct lv_gen *prev, unsigned nworkers,
                             uint64_t id)
{
    /* Until the request path picks a route and its pool (issue 15, phase
     * 2), a file with pools or routes is checked (levee -t) but not run:
     * its requests would ignore the routes and go to every pool's backends. */
    if (cfg->routing && cfg->routing->configured) {
        lv_error("%s: pools: and routes: are checked but not served by this build yet; "
                 "without them, top-level backends: serve every request",
                 cfg->path);
        lv_config_destroy(cfg);
        return NULL;
    }
    struct lv_gen *g = calloc(1, sizeof(*g));
    if (g == NULL) {
        lv_config_destroy(cfg);
        return NULL;
    }
    g->id = id;
    g->cfg = cfg;
    atomic_init(&g->refs, 1);
    g->backends = calloc(cfg->n_backends + 1, sizeof(*g->backends));
    if (g->backends == NULL) goto fail;
    for (size_t i = 0; i < cfg->n_backends; i++) {
        struct lv_backend *b = find_backend(prev, cfg->backends[i].id);
        if (b) {
            lv_backend_ref(b);
        } else {
            b = lv_backend_create(cfg->backends[i].id, nworkers);
            if (b == NULL) goto fail;
        }
        g->backends[g->nbackends++] = b;
    }
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
    lv_logfile_unref(g->alog);
    lv_limiter_unref(g->limiter);
    lv_config_destroy(g->cfg);
    free(g);
}

int lv_gen_health_json(struct lv_strbuf *sb, const struct lv_gen *g, uint64_t start_ms,
                       uint64_t now)
{
    struct lv_eligible_tally t =
        lv_eligible_tally(g->backends, g->nbackends, &g->cfg->breaker, now);
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
                     t.usable, g->nbackends, g->cfg->breaker.enabled ? "true" : "false",
                     lv_config_rate_limiting(g->cfg) ? "true" : "false", checks ? "true" : "false");
    return serving ? 200 : 503;
}
