/* The /health document. */
#include "admin/health.h"

#include <stddef.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/strbuf.h"
#include "upstream/eligible.h"
#include "upstream/gen.h"

int lv_admin_health_json(struct lv_strbuf *sb, const struct lv_gen *g, uint64_t start_ms)
{
    uint64_t now = lv_clock_ms();
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
                     status, (unsigned long long)((now - start_ms) / 1000), t.usable, g->nbackends,
                     g->cfg->breaker.enabled ? "true" : "false",
                     lv_config_rate_limiting(g->cfg) ? "true" : "false", checks ? "true" : "false");
    return serving ? 200 : 503;
}
