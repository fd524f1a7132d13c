/* The /health document. */
#include "admin/health.h"

#include <stddef.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/strbuf.h"
#include "upstream/gen.h"
#include "upstream/backend.h"

bool lv_admin_backend_usable(const struct lv_gen *g, size_t i, uint64_t now)
{
    return lv_backend_usable(g->backends[i], &g->cfg->breaker, now);
}

int lv_admin_health_json(struct lv_strbuf *sb, const struct lv_gen *g, uint64_t start_ms)
{
    uint64_t now = lv_clock_ms();
    size_t usable = 0;
    bool checks = false;
    for (size_t i = 0; i < g->nbackends; i++) {
        usable += lv_admin_backend_usable(g, i, now);
        checks |= g->cfg->backends[i].health_check_enabled;
    }
    const char *status = usable == 0              ? "unhealthy"
                         : usable == g->nbackends ? "healthy"
                                                  : "degraded";
    lv_strbuf_printf(sb,
                     "{\"status\":\"%s\",\"uptime_seconds\":%llu,"
                     "\"backends\":{\"healthy\":%zu,\"total\":%zu},"
                     "\"features\":{\"circuit_breaker\":%s,\"rate_limiting\":%s,"
                     "\"health_checks\":%s}}\n",
                     status, (unsigned long long)((now - start_ms) / 1000), usable, g->nbackends,
                     g->cfg->breaker.enabled ? "true" : "false",
                     lv_config_rate_limiting(g->cfg) ? "true" : "false", checks ? "true" : "false");
    return usable == 0 ? 503 : 200;
}
