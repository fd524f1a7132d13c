/* Per-backend status as JSON. */
#include "admin/backends.h"

#include <llhttp.h>
#include <stdlib.h>

#include "admin/history.h"
#include "config/config.h"
#include "config/routes.h"
#include "core/strbuf.h"
#include "route/route-t.h"
#include "upstream/backend.h"
#include "upstream/eligible.h"
#include "config/gen.h"

/* What route r matches, in a line: "host a.example.com path_prefix /v1
 * methods GET header X-Tenant" ("any" when it matches everything). */
static void match_summary(struct lv_strbuf *m, const struct lv_route *r)
{
    static const char *const kinds[] = {"", "path_prefix", "path_exact", "path_regex"};
    if (r->nhosts) lv_strbuf_puts(m, "host ");
    for (uint32_t i = 0; i < r->nhosts; i++)
        lv_strbuf_printf(m, "%s%s", i ? "," : "", r->hosts[i]);
    if (r->path_kind != LV_RPATH_ANY && r->path)
        lv_strbuf_printf(m, "%s%s %s", m->len ? " " : "", kinds[r->path_kind], r->path);
    if (r->methods) {
        lv_strbuf_printf(m, "%smethods ", m->len ? " " : "");
        bool first = true;
        for (unsigned k = 0; k < 64; k++) {
            if (!(r->methods & ((uint64_t)1 << k))) continue;
            lv_strbuf_printf(m, "%s%s", first ? "" : ",", llhttp_method_name((llhttp_method_t)k));
            first = false;
        }
    }
    for (uint32_t i = 0; i < r->nheaders; i++)
        lv_strbuf_printf(m, "%sheader %s", m->len ? " " : "", r->headers[i].name);
    for (uint32_t i = 0; i < r->nquery; i++)
        lv_strbuf_printf(m, "%squery %s", m->len ? " " : "", r->query[i].name);
    if (m->len == 0) lv_strbuf_puts(m, r->implicit ? "no other route" : "any");
}

/* The routes, first match first: name, what they match, what they do. */
static void routes_json(struct lv_strbuf *sb, const struct lv_gen *g)
{
    static const char *const actions[] = {"pool", "redirect", "respond"};
    const struct lv_route_table *t = g->cfg->routing->table;
    lv_strbuf_puts(sb, "[");
    for (size_t i = 0; i < t->n; i++) {
        const struct lv_route *r = &t->routes[i];
        struct lv_strbuf m;
        lv_strbuf_init(&m, 4096);
        match_summary(&m, r);
        lv_strbuf_printf(sb, "%s{\"name\":", i ? "," : "");
        lv_strbuf_json_str(sb, r->name);
        lv_strbuf_printf(sb, ",\"implicit\":%s,\"match\":", r->implicit ? "true" : "false");
        lv_strbuf_puts(sb, "\"");
        lv_strbuf_json_escape(sb, m.p ? m.p : "", m.len, false);
        lv_strbuf_puts(sb, "\"");
        lv_strbuf_printf(sb, ",\"action\":\"%s\",\"pool\":", actions[r->action]);
        if (r->action == LV_ROUTE_POOL)
            lv_strbuf_json_str(sb, r->pool_name);
        else
            lv_strbuf_puts(sb, "null");
        if (r->action == LV_ROUTE_POOL)
            lv_strbuf_puts(sb, ",\"status\":null}");
        else
            lv_strbuf_printf(sb, ",\"status\":%u}", r->status);
        lv_strbuf_dispose(&m);
    }
    lv_strbuf_puts(sb, "]");
}

/* The shared rate-limit store (Redis), or null when limits are local. */
static void store_json(struct lv_strbuf *sb, const struct lv_gen *g,
                       const struct lv_admin_store *st)
{
    static const char *const on_error[] = {"local", "allow", "deny"};
    const struct lv_rate_cfg *rc = &g->cfg->rate_limit;
    if (g->limiter == NULL || rc->store != LV_STORE_REDIS) {
        lv_strbuf_puts(sb, "null");
        return;
    }
    lv_strbuf_puts(sb, "{\"type\":\"redis\",\"address\":");
    lv_strbuf_json_str(sb, rc->redis.address);
    lv_strbuf_printf(sb,
                     ",\"state\":\"%s\",\"workers_connected\":%d,\"workers\":%u,"
                     "\"on_store_error\":\"%s\",\"fallbacks\":%llu}",
                     st->connected > 0 ? "up" : "down", st->connected, st->workers,
                     on_error[rc->on_store_error], (unsigned long long)st->fallbacks);
}

void lv_admin_backends_json(struct lv_strbuf *sb, const struct lv_gen *g, struct lv_history *hist,
                            const struct lv_admin_store *store, const struct lv_admin_now *when)
{
    const struct lv_config *cfg = g->cfg;
    uint64_t now = when->ms;
    lv_strbuf_printf(sb, "{\"time\":%llu,\"generation\":%llu,\"backends\":[",
                     (unsigned long long)when->wall_ms, (unsigned long long)g->id);
    for (size_t i = 0; i < g->nbackends; i++) {
        struct lv_backend *b = g->backends[i];
        const struct lv_backend_cfg *bc = &cfg->backends[i];
        const struct lv_backend_pool_cfg *pool = lv_gen_backend_pool(g, i);
        const struct lv_breaker_cfg *brk = pool ? &pool->breaker : &cfg->breaker;
        uint64_t requests = 0, errors = 0;
        for (unsigned w = 0; w < b->nworkers; w++) {
            requests += lv_stat_read(&b->wstats[w].attempts);
            errors += lv_stat_read(&b->wstats[w].errors);
        }
        double p50, p99;
        lv_history_backend_latency(hist, b->id, &p50, &p99);
        enum lv_verdict v = lv_eligible_verdict(b, brk, now);
        enum lv_breaker_state bs = lv_breaker_state(&b->breaker);
        uint64_t until = lv_breaker_open_until(&b->breaker);
        uint64_t ok = 0, fail = 0;
        lv_breaker_window_counts(&b->breaker, brk, now, &ok, &fail);
        lv_strbuf_printf(sb, "%s{\"id\":", i ? "," : "");
        lv_strbuf_json_str(sb, b->id);
        lv_strbuf_puts(sb, ",\"pool\":");
        lv_strbuf_json_str(sb, pool ? pool->name : "default");
        lv_strbuf_puts(sb, ",\"url\":");
        lv_strbuf_json_str(sb, bc->url);
        lv_strbuf_printf(sb,
                         ",\"weight\":%u,\"admin_state\":\"%s\",\"state\":\"%s\",\"usable\":%s,"
                         "\"health\":\"%s\",",
                         bc->weight, lv_admin_state_name(lv_backend_admin(b)), lv_verdict_state(v),
                         lv_verdict_usable(v) ? "true" : "false",
                         !bc->health_check_enabled  ? "unchecked"
                         : atomic_load(&b->healthy) ? "healthy"
                                                    : "unhealthy");
        lv_strbuf_printf(sb, "\"breaker\":{\"state\":\"%s\",\"next_change_ms\":",
                         brk->enabled ? lv_breaker_state_name(bs) : "disabled");
        if (bs == LV_BREAKER_OPEN)
            lv_strbuf_printf(sb, "%llu", (unsigned long long)(until > now ? until - now : 0));
        else
            lv_strbuf_puts(sb, "null");
        lv_strbuf_printf(sb,
                         ",\"consecutive_failures\":%u,\"window\":{\"ok\":%llu,\"fail\":%llu}},"
                         "\"consecutive_check_failures\":%u,\"consecutive_check_successes\":%u,"
                         "\"active_requests\":%d,\"requests\":%llu,\"errors\":%llu,"
                         "\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"ewma\":%.3f},"
                         "\"last_check\":",
                         (unsigned)atomic_load(&b->breaker.consecutive_fail),
                         (unsigned long long)ok, (unsigned long long)fail, b->health.fail_streak,
                         b->health.ok_streak, lv_backend_active(b), (unsigned long long)requests,
                         (unsigned long long)errors, p50, p99,
                         lv_ewma_read(&b->rtt, when->ns, LV_EWMA_TAU_NS) / 1000.0);
        if (b->last_check_ms && bc->health_check_enabled) {
            lv_strbuf_puts(sb, "{\"result\":");
            lv_strbuf_json_str(sb, b->last_check);
            lv_strbuf_printf(sb, ",\"time\":%llu}", (unsigned long long)b->last_check_ms);
        } else {
            lv_strbuf_puts(sb, "null");
        }
        lv_strbuf_puts(sb, "}");
    }
    /* The pools, each with its backends in order (the same entries as above). */
    lv_strbuf_puts(sb, "],\"pools\":[");
    for (size_t k = 0; k < g->npools; k++) {
        const struct lv_backend_pool_cfg *p = &g->pools[k];
        struct lv_eligible_tally t =
            lv_eligible_tally(g->backends + p->first, p->n, &p->breaker, now);
        lv_strbuf_printf(sb, "%s{\"name\":", k ? "," : "");
        lv_strbuf_json_str(sb, p->name);
        lv_strbuf_printf(sb, ",\"usable\":%zu,\"total\":%zu,\"backends\":[", t.usable, p->n);
        for (size_t i = 0; i < p->n; i++) {
            if (i) lv_strbuf_puts(sb, ",");
            lv_strbuf_json_str(sb, g->backends[p->first + i]->id);
        }
        lv_strbuf_puts(sb, "]}");
    }
    lv_strbuf_puts(sb, "],\"routes\":");
    routes_json(sb, g);
    lv_strbuf_puts(sb, ",\"rate_limit_store\":");
    store_json(sb, g, store);
    lv_strbuf_puts(sb, "}\n");
}
