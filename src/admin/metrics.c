/*
 * The Prometheus exposition. Per-worker counters are single-writer
 * atomics; the scrape reads them with relaxed loads and sums them, so a
 * scrape never stops a worker.
 */
#include "admin/metrics.h"

#include "admin/cacheapi.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "config/config.h"
#include "config/routes.h"
#include "core/buildinfo.h"
#include "core/clock.h"
#include "core/fail.h"
#include "core/stats.h"
#include "core/strbuf.h"
#include "core/version.h"
#include "limit/limiter.h"
#include "proxy/proxy.h"
#include "upstream/backend.h"
#include "upstream/eligible.h"
#include "config/gen.h"

/* Prometheus buckets of proxy_request_duration_seconds: a subset of the
 * latency histogram's bounds (core/stats.c), in microseconds. */
static const uint32_t prom_bounds_us[] = {
    500,    1000,   2000,    5000,    10000,   20000,    50000,    100000,
    200000, 500000, 1000000, 2000000, 5000000, 10000000, 30000000, 60000000,
};

static void header(struct lv_strbuf *sb, const char *name, const char *type, const char *help)
{
    lv_strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A counter of the workers' sum (struct lv_proxy_stats). */
#define WSUM(st, field) lv_stat_read(&(st)->w.field)

static void histogram(struct lv_strbuf *sb, const char *name, const char *labels,
                      const uint64_t counts[LV_LAT_BUCKETS], uint64_t sum_us)
{
    uint64_t cum = 0, total = 0;
    unsigned k = 0;
    for (unsigned i = 0; i < LV_LAT_BUCKETS; i++)
        total += counts[i];
    for (size_t j = 0; j < sizeof(prom_bounds_us) / sizeof(prom_bounds_us[0]); j++) {
        while (k < LV_LAT_BUCKETS - 1 && lv_lat_bounds_us[k] <= prom_bounds_us[j])
            cum += counts[k++];
        lv_strbuf_printf(sb, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, labels[0] ? "," : "",
                         prom_bounds_us[j] / 1e6, (unsigned long long)cum);
    }
    lv_strbuf_printf(sb, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, labels[0] ? "," : "",
                     (unsigned long long)total);
    lv_strbuf_printf(sb, "%s_sum%s%s%s %.6f\n", name, labels[0] ? "{" : "", labels,
                     labels[0] ? "}" : "", (double)sum_us / 1e6);
    lv_strbuf_printf(sb, "%s_count%s%s%s %llu\n", name, labels[0] ? "{" : "", labels,
                     labels[0] ? "}" : "", (unsigned long long)total);
}

/* A backend's labels: backend="id", and pool="name" when the file has
 * pools or routes (a file without them keeps the labels it always had). */
static const char *blabels(const struct lv_gen *g, size_t i, char *out, size_t cap)
{
    const struct lv_backend_pool_cfg *p = lv_gen_backend_pool(g, i);
    if (p && g->cfg->routing->configured)
        snprintf(out, cap, "backend=\"%s\",pool=\"%s\"", g->backends[i]->id, p->name);
    else
        snprintf(out, cap, "backend=\"%s\"", g->backends[i]->id);
    return out;
}

/* The breaker settings backend i runs under: its pool's. */
static const struct lv_breaker_cfg *breaker_of(const struct lv_gen *g, size_t i)
{
    const struct lv_backend_pool_cfg *p = lv_gen_backend_pool(g, i);
    return p ? &p->breaker : &g->cfg->breaker;
}

/* Route r's labels: route="name",pool="name" (r == nroutes: requests not
 * routed, route="none"; a route that does not forward: pool="none"). */
static const char *rlabels(const struct lv_gen *g, size_t r, char *out, size_t cap)
{
    const struct lv_route *rt = r < g->nroutes ? &g->cfg->routing->table->routes[r] : NULL;
    snprintf(out, cap, "route=\"%s\",pool=\"%s\"", rt ? rt->name : "none",
             rt && rt->action == LV_ROUTE_POOL ? rt->pool_name : "none");
    return out;
}

/* A counter of route r, summed over the workers (field: its offset in
 * struct lv_route_wstats). */
static uint64_t rsum(const struct lv_gen *g, size_t r, size_t off)
{
    uint64_t n = 0;
    for (unsigned w = 0; w < g->nworkers; w++) {
        const char *base = (const char *)lv_gen_rstats(g, w, r);
        n += lv_stat_read((const atomic_uint_fast64_t *)(const void *)(base + off));
    }
    return n;
}

/* proxy_requests_total and proxy_request_duration_seconds by route and
 * pool (and backend), when the file has pools or routes. */
static void route_requests(struct lv_strbuf *sb, const struct lv_gen *g)
{
    char lb[400];
    for (size_t r = 0; r <= g->nroutes; r++) {
        const struct lv_route_wstats *r0 = lv_gen_rstats(g, 0, r);
        rlabels(g, r, lb, sizeof(lb));
        const struct lv_route *rt = r < g->nroutes ? &g->cfg->routing->table->routes[r] : NULL;
        size_t first = rt && rt->action == LV_ROUTE_POOL ? g->pools[rt->pool].first : 0;
        for (size_t row = 0; row < r0->rows; row++) {
            const char *bid = row + 1 < r0->rows ? g->backends[first + row]->id : "none";
            for (unsigned code = 100; code < LV_STATUS_CODES; code++) {
                uint64_t n = 0;
                for (unsigned w = 0; w < g->nworkers; w++)
                    n +=
                        lv_stat_read(&lv_gen_rstats(g, w, r)->status[row * LV_STATUS_CODES + code]);
                if (n)
                    lv_strbuf_printf(sb,
                                     "proxy_requests_total{status=\"%u\",backend=\"%s\",%s} %llu\n",
                                     code, bid, lb, (unsigned long long)n);
            }
        }
    }
    header(sb, "proxy_request_duration_seconds", "histogram",
           "Time from a request's first byte to the last byte of its response handed to the "
           "client.");
    for (size_t r = 0; r <= g->nroutes; r++) {
        uint64_t counts[LV_LAT_BUCKETS] = {0}, sum_us = 0;
        for (unsigned w = 0; w < g->nworkers; w++) {
            const struct lv_route_wstats *rs = lv_gen_rstats(g, w, r);
            for (unsigned k = 0; k < LV_LAT_BUCKETS; k++)
                counts[k] += lv_stat_read(&rs->duration.b[k]);
            sum_us += lv_stat_read(&rs->duration.sum_us);
        }
        histogram(sb, "proxy_request_duration_seconds", rlabels(g, r, lb, sizeof(lb)), counts,
                  sum_us);
    }
}

/* proxy_requests_total and proxy_request_duration_seconds as a file
 * without pools or routes has them: by backend only. */
static void plain_requests(struct lv_strbuf *sb, const struct lv_proxy_stats *st,
                           const struct lv_gen *g)
{
    for (unsigned code = 100; code < LV_STATUS_CODES; code++) {
        uint64_t n = WSUM(st, status[code]);
        if (n)
            lv_strbuf_printf(sb, "proxy_requests_total{status=\"%u\",backend=\"none\"} %llu\n",
                             code, (unsigned long long)n);
    }
    char lb[200];
    for (size_t i = 0; i < g->nbackends; i++) {
        const struct lv_backend *b = g->backends[i];
        for (unsigned code = 100; code < LV_STATUS_CODES; code++) {
            uint64_t n = 0;
            for (unsigned w = 0; w < b->nworkers; w++)
                n += lv_stat_read(&b->wstats[w].status[code]);
            if (n)
                lv_strbuf_printf(sb, "proxy_requests_total{status=\"%u\",%s} %llu\n", code,
                                 blabels(g, i, lb, sizeof(lb)), (unsigned long long)n);
        }
    }
    uint64_t counts[LV_LAT_BUCKETS];
    for (unsigned i = 0; i < LV_LAT_BUCKETS; i++)
        counts[i] = WSUM(st, duration.b[i]);
    uint64_t sum_us = WSUM(st, duration.sum_us);
    header(sb, "proxy_request_duration_seconds", "histogram",
           "Time from a request's first byte to the last byte of its response handed to the "
           "client.");
    histogram(sb, "proxy_request_duration_seconds", "", counts, sum_us);
}

static void requests(struct lv_strbuf *sb, const struct lv_proxy_stats *st, const struct lv_gen *g)
{
    header(sb, "proxy_requests_total", "counter",
           "Requests answered, by status and by the backend of their last attempt (\"none\" "
           "when levee answered without trying one); by route and pool too when the file has "
           "pools or routes.");
    if (g->rstats)
        route_requests(sb, g);
    else
        plain_requests(sb, st, g);

    header(sb, "levee_request_attempts", "histogram", "Attempts (tries on backends) per request.");
    uint64_t cum = 0;
    for (unsigned a = 0; a <= LV_RETRY_MAX_ATTEMPTS; a++) {
        cum += WSUM(st, attempts[a]);
        lv_strbuf_printf(sb, "levee_request_attempts_bucket{le=\"%u\"} %llu\n", a,
                         (unsigned long long)cum);
    }
    uint64_t total_attempts = 0;
    for (unsigned a = 0; a <= LV_RETRY_MAX_ATTEMPTS; a++)
        total_attempts += a * WSUM(st, attempts[a]);
    lv_strbuf_printf(sb, "levee_request_attempts_bucket{le=\"+Inf\"} %llu\n",
                     (unsigned long long)cum);
    lv_strbuf_printf(sb, "levee_request_attempts_sum %llu\nlevee_request_attempts_count %llu\n",
                     (unsigned long long)total_attempts, (unsigned long long)cum);
}

static void backends(struct lv_strbuf *sb, const struct lv_gen *g)
{
    uint64_t now = lv_clock_ms();
    char lb[200];
    header(sb, "backend_health", "gauge",
           "1 when a backend can take requests (enabled, healthy, circuit not refusing), else 0.");
    for (size_t i = 0; i < g->nbackends; i++)
        lv_strbuf_printf(
            sb, "backend_health{%s} %d\n", blabels(g, i, lb, sizeof(lb)),
            lv_verdict_usable(lv_eligible_verdict(g->backends[i], breaker_of(g, i), now)) ? 1 : 0);
    header(sb, "circuit_breaker_state", "gauge",
           "Circuit breaker state per backend: 0 closed, 1 open, 2 half-open.");
    for (size_t i = 0; i < g->nbackends; i++)
        lv_strbuf_printf(sb, "circuit_breaker_state{%s} %d\n", blabels(g, i, lb, sizeof(lb)),
                         (int)lv_breaker_state(&g->backends[i]->breaker));
    header(sb, "levee_backend_check_healthy", "gauge",
           "Verdict of active health checks: 1 healthy (or not checked), 0 unhealthy.");
    for (size_t i = 0; i < g->nbackends; i++)
        lv_strbuf_printf(sb, "levee_backend_check_healthy{%s} %d\n", blabels(g, i, lb, sizeof(lb)),
                         atomic_load(&g->backends[i]->healthy) ? 1 : 0);
    header(sb, "levee_backend_admin_state", "gauge",
           "Operator state per backend: 0 enabled, 1 draining, 2 disabled.");
    for (size_t i = 0; i < g->nbackends; i++)
        lv_strbuf_printf(sb, "levee_backend_admin_state{%s} %d\n", blabels(g, i, lb, sizeof(lb)),
                         (int)lv_backend_admin(g->backends[i]));
    header(sb, "levee_backend_active_requests", "gauge", "Attempts in flight per backend.");
    for (size_t i = 0; i < g->nbackends; i++)
        lv_strbuf_printf(sb, "levee_backend_active_requests{%s} %d\n",
                         blabels(g, i, lb, sizeof(lb)), lv_backend_active(g->backends[i]));
    header(sb, "levee_breaker_transitions_total", "counter",
           "Circuit breaker state changes per backend.");
    for (size_t i = 0; i < g->nbackends; i++)
        lv_strbuf_printf(sb, "levee_breaker_transitions_total{%s} %llu\n",
                         blabels(g, i, lb, sizeof(lb)),
                         (unsigned long long)atomic_load(&g->backends[i]->breaker.transitions));

    static const struct {
        const char *name, *help;
        size_t off;
    } per_backend[] = {
        {"levee_backend_attempts_total", "Attempts started per backend.",
         offsetof(struct lv_backend_wstats, attempts)},
        {"levee_backend_errors_total",
         "Failed attempts per backend (connect error, reset, timeout, 5xx).",
         offsetof(struct lv_backend_wstats, errors)},
        {"levee_backend_connections_opened_total", "Connections opened to each backend.",
         offsetof(struct lv_backend_wstats, connects)},
        {"levee_backend_connection_reuses_total",
         "Attempts sent on a pooled keep-alive connection, per backend.",
         offsetof(struct lv_backend_wstats, reuses)},
    };
    for (size_t m = 0; m < sizeof(per_backend) / sizeof(per_backend[0]); m++) {
        header(sb, per_backend[m].name, "counter", per_backend[m].help);
        for (size_t i = 0; i < g->nbackends; i++) {
            const struct lv_backend *b = g->backends[i];
            uint64_t n = 0;
            for (unsigned w = 0; w < b->nworkers; w++) {
                const char *base = (const char *)&b->wstats[w];
                n += lv_stat_read(
                    (const atomic_uint_fast64_t *)(const void *)(base + per_backend[m].off));
            }
            lv_strbuf_printf(sb, "%s{%s} %llu\n", per_backend[m].name,
                             blabels(g, i, lb, sizeof(lb)), (unsigned long long)n);
        }
    }
    header(sb, "levee_backend_response_seconds", "histogram",
           "Time from the start of an attempt to the backend's response head.");
    for (size_t i = 0; i < g->nbackends; i++) {
        const struct lv_backend *b = g->backends[i];
        uint64_t counts[LV_LAT_BUCKETS] = {0}, sum_us = 0;
        for (unsigned w = 0; w < b->nworkers; w++) {
            for (unsigned k = 0; k < LV_LAT_BUCKETS; k++)
                counts[k] += lv_stat_read(&b->wstats[w].latency.b[k]);
            sum_us += lv_stat_read(&b->wstats[w].latency.sum_us);
        }
        histogram(sb, "levee_backend_response_seconds", blabels(g, i, lb, sizeof(lb)), counts,
                  sum_us);
    }
}

static void resilience(struct lv_strbuf *sb, const struct lv_proxy_stats *st,
                       const struct lv_proxy *px)
{
    const struct lv_gen *g = px->gen;
    char lb[400];
    header(sb, "levee_retries_total", "counter",
           "Retry attempts started (by route and pool when the file has pools or routes).");
    if (g->rstats) {
        for (size_t r = 0; r <= g->nroutes; r++)
            lv_strbuf_printf(
                sb, "levee_retries_total{%s} %llu\n", rlabels(g, r, lb, sizeof(lb)),
                (unsigned long long)rsum(g, r, offsetof(struct lv_route_wstats, retries)));
    } else {
        lv_strbuf_printf(sb, "levee_retries_total %llu\n", (unsigned long long)WSUM(st, retries));
    }
    header(sb, "levee_retries_skipped_total", "counter",
           "Failed attempts that were not retried, by reason.");
    for (unsigned s = LV_SKIP_ATTEMPTS; s < LV_SKIP_COUNT; s++)
        lv_strbuf_printf(sb, "levee_retries_skipped_total{reason=\"%s\"} %llu\n",
                         lv_retry_skip_name((enum lv_retry_skip)s),
                         (unsigned long long)WSUM(st, retry_skips[s]));
    header(sb, "levee_hedges_total", "counter", "Hedged copies of requests sent.");
    lv_strbuf_printf(sb, "levee_hedges_total %llu\n", (unsigned long long)WSUM(st, hedges));
    header(sb, "levee_hedge_wins_total", "counter", "Hedged copies that answered first.");
    lv_strbuf_printf(sb, "levee_hedge_wins_total %llu\n", (unsigned long long)WSUM(st, hedge_wins));
    header(sb, "levee_attempt_failures_total", "counter", "Failed attempts, by kind.");
    for (unsigned k = 1; k < LV_FAIL_KIND_COUNT; k++) {
        if (lv_fail_info((enum lv_fail_kind)k)->side != LV_SIDE_BACKEND) continue;
        lv_strbuf_printf(sb, "levee_attempt_failures_total{reason=\"%s\"} %llu\n",
                         lv_fail_info((enum lv_fail_kind)k)->reason,
                         (unsigned long long)WSUM(st, attempt_failures[k]));
    }
    header(sb, "levee_timeouts_total", "counter",
           "Timeouts, by kind: connect and response (per attempt), client_header and "
           "client_body (slow clients).");
    lv_strbuf_printf(sb, "levee_timeouts_total{kind=\"connect\"} %llu\n",
                     (unsigned long long)WSUM(st, attempt_failures[LV_FAIL_CONNECT_TIMEOUT]));
    lv_strbuf_printf(sb, "levee_timeouts_total{kind=\"response\"} %llu\n",
                     (unsigned long long)WSUM(st, attempt_failures[LV_FAIL_RESPONSE_TIMEOUT]));
    lv_strbuf_printf(sb, "levee_timeouts_total{kind=\"client_header\"} %llu\n",
                     (unsigned long long)WSUM(st, generated[LV_FAIL_HEADER_TIMEOUT]));
    lv_strbuf_printf(sb, "levee_timeouts_total{kind=\"client_body\"} %llu\n",
                     (unsigned long long)WSUM(st, generated[LV_FAIL_BODY_TIMEOUT]));
    header(sb, "levee_generated_responses_total", "counter",
           "Responses levee wrote itself, by reason and status.");
    for (unsigned k = 1; k < LV_FAIL_KIND_COUNT; k++) {
        const struct lv_fail_info *fi = lv_fail_info((enum lv_fail_kind)k);
        if (fi->status == 499) continue;
        lv_strbuf_printf(sb, "levee_generated_responses_total{reason=\"%s\",status=\"%d\"} %llu\n",
                         fi->reason, fi->status, (unsigned long long)WSUM(st, generated[k]));
    }
    header(sb, "rate_limit_rejected_total", "counter",
           "Requests refused by a rate limit, by scope (and route and pool when the file has "
           "pools or routes).");
    if (g->rstats) {
        static const char *const scopes[2] = {"global", "client"};
        for (size_t r = 0; r <= g->nroutes; r++) {
            rlabels(g, r, lb, sizeof(lb));
            for (unsigned k = 0; k < 2; k++)
                lv_strbuf_printf(
                    sb, "rate_limit_rejected_total{scope=\"%s\",%s} %llu\n", scopes[k], lb,
                    (unsigned long long)rsum(g, r,
                                             offsetof(struct lv_route_wstats, rate_limited) +
                                                 k * sizeof(atomic_uint_fast64_t)));
        }
    } else {
        lv_strbuf_printf(sb, "rate_limit_rejected_total{scope=\"global\"} %llu\n",
                         (unsigned long long)WSUM(st, rate_limited[0]));
        lv_strbuf_printf(sb, "rate_limit_rejected_total{scope=\"client\"} %llu\n",
                         (unsigned long long)WSUM(st, rate_limited[1]));
    }
    header(sb, "levee_rate_limit_store_fallbacks_total", "counter",
           "Rate-limit checks the shared store (Redis) could not answer in time, decided by "
           "rate_limit.on_store_error.");
    lv_strbuf_printf(sb, "levee_rate_limit_store_fallbacks_total %llu\n",
                     (unsigned long long)WSUM(st, store_fallbacks));
    header(sb, "levee_rate_limit_clients", "gauge",
           "Clients tracked by the local per-client rate limit (bounded by max_clients).");
    lv_strbuf_printf(sb, "levee_rate_limit_clients %zu\n",
                     px->gen->limiter ? lv_ratetable_size(px->gen->limiter->clients) : 0);
    header(sb, "levee_rate_limit_store_up", "gauge",
           "Workers connected to the rate-limit store (Redis); 0 when it is down or not used.");
    lv_strbuf_printf(sb, "levee_rate_limit_store_up %d\n",
                     atomic_load(&px->redis_shared.connected));
}

/* Descriptors open now, counted in /proc/self/fd (-1 if it cannot be read,
 * e.g. when none is left to open it with). */
static long open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return -1;
    long n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

static void connections(struct lv_strbuf *sb, const struct lv_proxy_stats *st,
                        const struct lv_proxy *px)
{
    header(sb, "levee_max_connections", "gauge",
           "limits.max_connections in force: client connections levee holds at once, all "
           "workers together.");
    lv_strbuf_printf(sb, "levee_max_connections %llu\n",
                     (unsigned long long)atomic_load(&px->conns.limit));
    header(sb, "levee_accept_pauses_total", "counter",
           "Times a worker stopped accepting connections, by reason: max_connections (until a "
           "connection closes), fd_limit (accept failed with EMFILE/ENFILE: a back-off of "
           "100 ms to 1 s), error (accept failed otherwise: a back-off).");
    static const char *const reasons[LV_PAUSE_COUNT] = {"max_connections", "fd_limit", "error"};
    for (unsigned r = 0; r < LV_PAUSE_COUNT; r++)
        lv_strbuf_printf(sb, "levee_accept_pauses_total{reason=\"%s\"} %llu\n", reasons[r],
                         (unsigned long long)WSUM(st, accept_pauses[r]));
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        header(sb, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        lv_strbuf_printf(sb, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
    }
    long fds = open_fds();
    if (fds >= 0) {
        header(sb, "process_open_fds", "gauge", "Number of open file descriptors.");
        lv_strbuf_printf(sb, "process_open_fds %ld\n", fds);
    }
}

void lv_metrics_render(struct lv_strbuf *sb, struct lv_proxy *px)
{
    const struct lv_gen *g = px->gen;
    struct lv_proxy_stats stats;
    const struct lv_proxy_stats *st = &stats;
    lv_proxy_stats_sum(px, &stats);
    requests(sb, st, g);
    backends(sb, g);
    resilience(sb, st, px);
    header(sb, "levee_client_connections", "gauge", "Client connections open.");
    lv_strbuf_printf(sb, "levee_client_connections %llu\n",
                     (unsigned long long)WSUM(st, client_connections));
    header(sb, "levee_client_connections_accepted_total", "counter",
           "Client connections accepted.");
    lv_strbuf_printf(sb, "levee_client_connections_accepted_total %llu\n",
                     (unsigned long long)WSUM(st, connections_accepted));
    connections(sb, st, px);
    lv_cacheapi_metrics(sb, px, st);
    header(sb, "levee_backend_connections", "gauge",
           "Backend connections open (busy and idle in the pools).");
    lv_strbuf_printf(sb, "levee_backend_connections %llu\n",
                     (unsigned long long)WSUM(st, backend_connections));
    uint64_t buffer_bytes = st->buffer_bytes;
    header(sb, "levee_buffer_bytes", "gauge",
           "Memory in I/O buffers held by connections and requests (capacity, all workers; "
           "excludes idle buffers kept for reuse).");
    lv_strbuf_printf(sb, "levee_buffer_bytes %llu\n", (unsigned long long)buffer_bytes);
    header(sb, "levee_tunnels_total", "counter", "Upgrade tunnels (WebSocket...) opened.");
    lv_strbuf_printf(sb, "levee_tunnels_total %llu\n", (unsigned long long)WSUM(st, tunnels));
    header(sb, "levee_tunnels_open", "gauge", "Upgrade tunnels open now.");
    lv_strbuf_printf(sb, "levee_tunnels_open %llu\n", (unsigned long long)WSUM(st, tunnels_open));
    header(sb, "levee_tunnel_bytes_total", "counter", "Bytes relayed by tunnels, by direction.");
    lv_strbuf_printf(sb, "levee_tunnel_bytes_total{direction=\"up\"} %llu\n",
                     (unsigned long long)WSUM(st, tunnel_bytes_up));
    lv_strbuf_printf(sb, "levee_tunnel_bytes_total{direction=\"down\"} %llu\n",
                     (unsigned long long)WSUM(st, tunnel_bytes_down));
    /* Issue 17: requests and connections by protocol. */
    header(sb, "levee_requests_by_protocol_total", "counter",
           "Requests finished, by the protocol the client spoke.");
    uint64_t h2req = WSUM(st, h2_requests), allreq = WSUM(st, requests);
    lv_strbuf_printf(sb, "levee_requests_by_protocol_total{protocol=\"HTTP/1.x\"} %llu\n",
                     (unsigned long long)(allreq > h2req ? allreq - h2req : 0));
    lv_strbuf_printf(sb, "levee_requests_by_protocol_total{protocol=\"HTTP/2.0\"} %llu\n",
                     (unsigned long long)h2req);
    header(sb, "levee_http2_connections_total", "counter", "Client connections that spoke HTTP/2.");
    lv_strbuf_printf(sb, "levee_http2_connections_total %llu\n",
                     (unsigned long long)WSUM(st, h2_connections));
    header(sb, "levee_http2_abuse_closed_total", "counter",
           "HTTP/2 connections closed for abuse (floods, rapid reset, stalled windows).");
    lv_strbuf_printf(sb, "levee_http2_abuse_closed_total %llu\n",
                     (unsigned long long)WSUM(st, h2_abuse));
    header(sb, "levee_tls_handshakes_total", "counter",
           "TLS handshakes with clients, by result (failures include timeouts).");
    lv_strbuf_printf(sb, "levee_tls_handshakes_total{result=\"success\"} %llu\n",
                     (unsigned long long)WSUM(st, tls_handshakes));
    lv_strbuf_printf(sb, "levee_tls_handshakes_total{result=\"failure\"} %llu\n",
                     (unsigned long long)WSUM(st, tls_handshake_failures));
    header(sb, "levee_request_ids_generated_total", "counter",
           "Requests that came without a usable X-Request-Id and got one from levee.");
    lv_strbuf_printf(sb, "levee_request_ids_generated_total %llu\n",
                     (unsigned long long)WSUM(st, request_ids_generated));
    header(sb, "levee_config_reloads_total", "counter", "Configuration reloads, by result.");
    lv_strbuf_printf(sb, "levee_config_reloads_total{result=\"success\"} %llu\n",
                     (unsigned long long)atomic_load(&px->reloads_ok));
    lv_strbuf_printf(sb, "levee_config_reloads_total{result=\"failure\"} %llu\n",
                     (unsigned long long)atomic_load(&px->reloads_failed));
    header(sb, "levee_config_generation", "gauge", "Generation of the configuration in use.");
    lv_strbuf_printf(sb, "levee_config_generation %llu\n", (unsigned long long)g->id);
    header(sb, "levee_build_info", "gauge",
           "levee's version, source revision and the versions of its libraries.");
    struct lv_libversion libs[LV_BUILDINFO_NLIBS];
    lv_buildinfo_libs(libs);
    lv_strbuf_printf(sb, "levee_build_info{version=\"%s\",revision=\"%s\"", lv_version, lv_git_rev);
    for (size_t i = 0; i < LV_BUILDINFO_NLIBS; i++)
        lv_strbuf_printf(sb, ",%s=\"%s\"", libs[i].name, libs[i].version);
    lv_strbuf_puts(sb, "} 1\n");
    header(sb, "process_start_time_seconds", "gauge", "Start time of levee, Unix seconds.");
    lv_strbuf_printf(sb, "process_start_time_seconds %.3f\n", (double)px->start_wall_ms / 1000.0);
    header(sb, "levee_workers", "gauge", "Worker threads.");
    lv_strbuf_printf(sb, "levee_workers %u\n", px->nservers);
}
