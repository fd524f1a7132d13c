/*
 * Pools and routes in the configuration (config/pools.c, config/routes.c):
 * the issue's example, what pools and routes inherit, the default pool and
 * the implicit last route, every error with its FILE:LINE:COL, the
 * warnings, and requests matched against a loaded table.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/routes.h"
#include "route/regex.h"
#include "unit/lv_test.h"
#include "unit/route/route_fixture.h"
#include "upstream/balancer.h"

struct result {
    struct lv_config *cfg;
    char *errs; /* errors and warnings, one a line */
    int nerrors;
};

static struct result load(const char *text)
{
    struct result r = {NULL, NULL, -1};
    size_t len = 0;
    FILE *errs = open_memstream(&r.errs, &len);
    cr_assert_not_null(errs);
    r.cfg = lv_config_load_string("t.yaml", text, strlen(text), errs, &r.nerrors);
    fclose(errs);
    return r;
}

static void result_dispose(struct result *r)
{
    lv_config_destroy(r->cfg);
    r->cfg = NULL;
    free(r->errs);
    r->errs = NULL;
}

static struct result load_ok(const char *text)
{
    struct result r = load(text);
    cr_assert_not_null(r.cfg, "config rejected:\n%s", r.errs);
    cr_assert_not_null(r.cfg->routing);
    return r;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/* True if a line of errs starts with prefix and contains fragment. */
static bool has_line(const char *errs, const char *prefix, const char *fragment)
{
    for (const char *line = errs; *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            const char *hit = strstr(line, fragment);
            if (hit && hit + strlen(fragment) <= line + n) return true;
        }
        if (end == NULL) break;
        line = end + 1;
    }
    return false;
}

/* text must be refused with exactly one error, at prefix ("t.yaml:L:C: "),
 * containing fragment. */
static void expect_one_error(const char *text, const char *prefix, const char *fragment)
{
    struct result r = load(text);
    cr_expect_null(r.cfg);
    cr_expect_eq(r.nerrors, 1, "errors:\n%s", r.errs);
    cr_expect(has_line(r.errs, prefix, fragment), "expected '%s...%s' in:\n%s", prefix, fragment,
              r.errs);
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

static const char issue_example[] =
    "pools:\n"
    "  api:\n"
    "    backends: [{ id: api1, url: \"http://127.0.0.1:8080\" }, { id: api2, url: "
    "\"http://127.0.0.2:8080\" }]\n"
    "    load_balancing: peak_ewma\n"
    "    health_check: { path: /healthz }\n"
    "    circuit_breaker: { failure_threshold: 5 }\n"
    "    retry: { max_attempts: 3 }\n"
    "    timeouts: { per_try: 2s }\n"
    "  chat:\n"
    "    backends: [{ id: chat1, url: \"http://127.0.0.3:9000\" }]\n"
    "routes:\n"
    "  - match: { host: api.example.com, path_prefix: /v1/ }\n"
    "    pool: api\n"
    "    strip_prefix: /v1\n"
    "    rate_limit: { per_client: { requests_per_second: 20 } }\n"
    "  - match: { path_prefix: /ws, headers: { Upgrade: websocket } }\n"
    "    pool: chat\n"
    "    timeouts: { tunnel: 1h }\n"
    "  - match: { path_regex: '^/old/(.*)$' }\n"
    "    redirect: { status: 301, location: '/new/$1' }\n"
    "  - match: { path_exact: /robots.txt }\n"
    "    respond: { status: 200, body: \"User-agent: *\\nDisallow:\\n\", content_type: "
    "text/plain }\n";

/* --- what loads ---------------------------------------------------------------------- */

Test(config_routes, the_issue_example)
{
    struct result r = load_ok(issue_example);
    const struct lv_config *c = r.cfg;
    const struct lv_routes_cfg *rc = c->routing;
    cr_expect_str_empty(r.errs);
    cr_expect(rc->configured);
    cr_expect_eq(rc->default_pool, LV_NO_POOL);
    cr_assert_eq(rc->npools, 2);
    cr_assert_eq(c->n_backends, 3);
    const struct lv_backend_pool_cfg *api = &rc->pools[0], *chat = &rc->pools[1];
    cr_expect_str_eq(api->name, "api");
    cr_expect_eq(api->first, 0);
    cr_expect_eq(api->n, 2);
    cr_expect_str_eq(c->backends[0].id, "api1");
    cr_expect_str_eq(c->backends[1].id, "api2");
    cr_expect_str_eq(api->balancer->name, "peak_ewma");
    cr_expect_str_eq(api->health.path, "/healthz");
    cr_expect_eq(api->breaker.failure_threshold, 5);
    cr_expect_eq(api->retry.max_attempts, 3);
    cr_expect_eq(api->timeouts.per_try, 2000);
    cr_expect_eq(api->timeouts.connect, c->timeouts.connect);
    cr_expect_str_eq(chat->name, "chat");
    cr_expect_eq(chat->first, 2);
    cr_expect_eq(chat->n, 1);
    cr_expect_str_eq(c->backends[2].id, "chat1");
    cr_expect_str_eq(chat->balancer->name, "peak_ewma");
    cr_expect_str_eq(chat->health.path, "/health");
    cr_expect_eq(chat->timeouts.per_try, c->timeouts.per_try);
    cr_expect_str_eq(lv_routes_backend_pool(c, 1)->name, "api");
    cr_expect_str_eq(lv_routes_backend_pool(c, 2)->name, "chat");

    const struct lv_route_table *t = rc->table;
    cr_assert_eq(t->n, 5);
    const struct lv_route *r0 = &t->routes[0];
    cr_expect_str_eq(r0->name, "routes[0]");
    cr_expect_eq(r0->nhosts, 1);
    cr_expect_str_eq(r0->hosts[0], "api.example.com");
    cr_expect_eq(r0->path_kind, LV_RPATH_PREFIX);
    cr_expect_str_eq(r0->path, "/v1/");
    cr_expect_eq(r0->action, LV_ROUTE_POOL);
    cr_expect_eq(r0->pool, 0);
    cr_expect_str_eq(r0->strip_prefix, "/v1");
    cr_expect_eq(r0->line, 12);
    cr_assert_not_null(rc->routes[0].rate_limit);
    cr_expect_eq(rc->routes[0].rate_limit->client_rate, 20);
    cr_expect_eq(rc->routes[0].rate_limit->client_burst, 20);
    cr_expect_eq(rc->routes[0].rate_limit->rate, 0);
    cr_expect_eq(rc->routes[0].timeouts.per_try, 2000); /* the pool's */
    cr_expect_eq(rc->routes[0].retry.max_attempts, 3);

    const struct lv_route *r1 = &t->routes[1];
    cr_expect_eq(r1->pool, 1);
    cr_assert_eq(r1->nheaders, 1);
    cr_expect_str_eq(r1->headers[0].name, "Upgrade");
    cr_expect_eq(r1->headers[0].kind, LV_RCOND_EQUAL);
    cr_expect_str_eq(r1->headers[0].value, "websocket");
    cr_expect_eq(rc->routes[1].timeouts.tunnel, 3600000);
    cr_expect_eq(rc->routes[1].timeouts.per_try, c->timeouts.per_try);
    cr_expect_null(rc->routes[1].rate_limit);

    const struct lv_route *r2 = &t->routes[2];
    cr_expect_eq(r2->action, LV_ROUTE_REDIRECT);
    cr_expect_eq(r2->status, 301);
    cr_expect_eq(r2->path_kind, LV_RPATH_REGEX);
    cr_expect_eq(r2->path_re->ngroups, 1);
    cr_expect(r2->keep_query);

    const struct lv_route *r3 = &t->routes[3];
    cr_expect_eq(r3->action, LV_ROUTE_RESPOND);
    cr_expect_eq(r3->status, 200);
    cr_expect_str_eq(r3->body, "User-agent: *\nDisallow:\n");
    cr_expect_str_eq(r3->content_type, "text/plain");

    const struct lv_route *last = &t->routes[4];
    cr_expect(last->implicit);
    cr_expect_str_eq(last->name, "no_route");
    cr_expect_eq(last->action, LV_ROUTE_RESPOND);
    cr_expect_eq(last->status, 404);
    cr_expect_str_eq(last->content_type, "application/json");
    cr_expect_str_eq(last->body,
                     "{\"status\":404,\"error\":\"no_route\",\"message\":\"no route matches this "
                     "request\"}\n");
    result_dispose(&r);
}

/* The name of the route of the loaded table that raw goes to. */
static const char *route_for(const struct lv_config *c, const char *raw)
{
    struct lv_route_scratch *s = lv_route_scratch_create();
    struct rq q;
    rq_parse(&q, raw);
    cr_assert_eq(q.init_rc, 0);
    struct lv_route_hit hit;
    const struct lv_route *r = lv_route_match(c->routing->table, &q.req, s, &hit);
    rq_dispose(&q);
    lv_route_scratch_destroy(s);
    return r ? r->name : "<none>";
}

Test(config_routes, the_issue_example_routes_requests)
{
    struct result r = load_ok(issue_example);
    const struct lv_config *c = r.cfg;
    cr_expect_str_eq(route_for(c, "GET /v1/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
                     "routes[0]");
    cr_expect_str_eq(route_for(c, "GET /v1/x HTTP/1.1\r\nHost: www.example.com\r\n\r\n"),
                     "no_route");
    cr_expect_str_eq(
        route_for(
            c, "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n"),
        "routes[1]");
    cr_expect_str_eq(route_for(c, "GET /ws HTTP/1.1\r\nHost: h\r\n\r\n"), "no_route");
    cr_expect_str_eq(route_for(c, "GET /old/a/b HTTP/1.1\r\nHost: h\r\n\r\n"), "routes[2]");
    cr_expect_str_eq(route_for(c, "GET /robots.txt HTTP/1.1\r\nHost: h\r\n\r\n"), "routes[3]");
    cr_expect_str_eq(route_for(c, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"), "no_route");
    result_dispose(&r);
}

Test(config_routes, top_level_backends_are_the_default_pool_with_one_route)
{
    struct result r = load_ok("backends:\n"
                              "  - id: a\n"
                              "    url: http://127.0.0.1:8001\n"
                              "  - id: b\n"
                              "    url: http://127.0.0.1:8002\n"
                              "retry: { max_attempts: 5 }\n");
    const struct lv_routes_cfg *rc = r.cfg->routing;
    cr_expect_not(rc->configured);
    cr_assert_eq(rc->npools, 1);
    cr_expect_eq(rc->default_pool, 0);
    cr_expect_str_eq(rc->pools[0].name, "default");
    cr_expect_eq(rc->pools[0].first, 0);
    cr_expect_eq(rc->pools[0].n, 2);
    cr_expect_eq(rc->pools[0].retry.max_attempts, 5);
    cr_assert_eq(rc->table->n, 1);
    const struct lv_route *d = &rc->table->routes[0];
    cr_expect(d->implicit);
    cr_expect_str_eq(d->name, "default");
    cr_expect_eq(d->action, LV_ROUTE_POOL);
    cr_expect_eq(d->pool, 0);
    cr_expect_str_eq(d->pool_name, "default");
    cr_expect_eq(rc->routes[0].retry.max_attempts, 5);
    cr_expect_str_eq(route_for(r.cfg, "GET /anything HTTP/1.1\r\nHost: h\r\n\r\n"), "default");
    result_dispose(&r);
}

Test(config_routes, a_file_without_backends_still_has_an_empty_default_pool)
{
    struct result r = load_ok("listen: 127.0.0.1:8080\n");
    cr_assert_eq(r.cfg->routing->npools, 1);
    cr_expect_eq(r.cfg->routing->pools[0].n, 0);
    cr_expect_str_eq(r.cfg->routing->table->routes[0].name, "default");
    result_dispose(&r);
    r = load_ok("backends: []\n");
    cr_expect_eq(r.cfg->routing->default_pool, 0);
    result_dispose(&r);
}

Test(config_routes, routes_and_top_level_backends_fall_back_to_the_default_pool)
{
    struct result r = load_ok("backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                              "routes:\n"
                              "  - name: hello\n"
                              "    match: { path_exact: /hello }\n"
                              "    respond: { body: hi }\n");
    const struct lv_routes_cfg *rc = r.cfg->routing;
    cr_expect(rc->configured);
    cr_assert_eq(rc->table->n, 2);
    cr_expect_str_eq(rc->table->routes[0].name, "hello");
    cr_expect_eq(rc->table->routes[0].status, 200);
    cr_expect_str_eq(rc->table->routes[0].content_type, "text/plain; charset=utf-8");
    cr_expect_str_eq(route_for(r.cfg, "GET /hello HTTP/1.1\r\nHost: h\r\n\r\n"), "hello");
    cr_expect_str_eq(route_for(r.cfg, "GET /x HTTP/1.1\r\nHost: h\r\n\r\n"), "default");
    result_dispose(&r);
}

Test(config_routes, a_pool_named_default_is_the_default_pool)
{
    struct result r =
        load_ok("pools:\n"
                "  api: { backends: [{ id: a, url: \"http://127.0.0.1:8001\" }] }\n"
                "  default: { backends: [{ id: d, url: \"http://127.0.0.1:8002\" }] }\n"
                "routes:\n"
                "  - { match: { path_prefix: /api }, pool: api }\n");
    const struct lv_routes_cfg *rc = r.cfg->routing;
    cr_expect_eq(rc->default_pool, 1);
    cr_expect_str_eq(rc->table->routes[1].name, "default");
    cr_expect_eq(rc->table->routes[1].pool, 1);
    cr_expect_str_eq(r.errs, "");
    result_dispose(&r);
}

Test(config_routes, route_beats_pool_beats_global)
{
    struct result r = load_ok("timeouts: { connect: 3s, per_try: 4s, backend: 40s }\n"
                              "retry: { max_attempts: 4, base_delay: 10ms }\n"
                              "upgrade: { allow: [websocket, h2c] }\n"
                              "rate_limit: { requests_per_second: 100, per_client: { key: "
                              "'header:X-Key' } }\n"
                              "pools:\n"
                              "  p:\n"
                              "    backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                              "    timeouts: { per_try: 2s }\n"
                              "    retry: { max_attempts: 2 }\n"
                              "routes:\n"
                              "  - match: { path_prefix: /slow }\n"
                              "    pool: p\n"
                              "    timeouts: { backend: 2m }\n"
                              "    retry: { base_delay: 50ms }\n"
                              "    upgrade: { allow: [] }\n"
                              "    forwarded: false\n"
                              "    rate_limit: { requests_per_second: 5 }\n"
                              "  - { pool: p }\n");
    const struct lv_routes_cfg *rc = r.cfg->routing;
    const struct lv_route_cfg *slow = &rc->routes[0], *plain = &rc->routes[1];
    cr_expect_eq(slow->timeouts.connect, 3000);   /* global */
    cr_expect_eq(slow->timeouts.per_try, 2000);   /* pool */
    cr_expect_eq(slow->timeouts.backend, 120000); /* route */
    cr_expect_eq(slow->retry.max_attempts, 2);    /* pool */
    cr_expect_eq(slow->retry.base_delay, 50);     /* route */
    cr_expect_eq(slow->upgrade_allow.n, 0);
    cr_expect_not(slow->forwarded);
    cr_assert_not_null(slow->rate_limit);
    cr_expect_eq(slow->rate_limit->rate, 5);
    cr_expect_eq(slow->rate_limit->burst, 5); /* follows the route's rate */
    cr_expect_str_eq(slow->rate_limit->key_header, "X-Key");
    /* Its keys in a shared store are its own. */
    cr_expect_str_eq(slow->rate_limit->redis_prefix, "levee:rl:route:routes[0]:");
    cr_expect_str_eq(r.cfg->rate_limit.redis_prefix, "levee:rl:");
    cr_expect_eq(plain->timeouts.backend, 40000);
    cr_expect_eq(plain->retry.base_delay, 10);
    cr_expect_eq(plain->upgrade_allow.n, 2);
    cr_expect_not(plain->forwarded);
    cr_expect_null(plain->rate_limit);
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

Test(config_routes, a_pools_pool_settings_beat_the_global_ones_key_by_key)
{
    struct result r = load_ok("pool: { max_idle: 0, idle_timeout: 7s }\n"
                              "pools:\n"
                              "  own:\n"
                              "    backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                              "    pool: { max_idle: 4 }\n"
                              "  plain:\n"
                              "    backends: [{ id: b, url: \"http://127.0.0.1:8002\" }]\n"
                              "routes:\n"
                              "  - { match: { path_prefix: /own }, pool: own }\n"
                              "  - { pool: plain }\n");
    cr_expect_null(strstr(r.errs, "warning"), "no warning any more: %s", r.errs);
    const struct lv_backend_pool_cfg *own = lv_routes_backend_pool(r.cfg, 0);
    const struct lv_backend_pool_cfg *plain = lv_routes_backend_pool(r.cfg, 1);
    cr_assert(own && plain);
    cr_expect_str_eq(own->name, "own");
    cr_expect_eq(own->pool.max_idle, 4);          /* pool */
    cr_expect_eq(own->pool.idle_timeout, 7000);   /* global */
    cr_expect_eq(plain->pool.max_idle, 0);        /* global */
    cr_expect_eq(plain->pool.idle_timeout, 7000); /* global */
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

Test(config_routes, a_routes_cache_is_the_global_one_with_its_keys_on_top)
{
    struct result r =
        load_ok("cache: { enabled: true, serve_stale_on_error: 9s, default_ttl: 2s }\n"
                "backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                "routes:\n"
                "  - match: { path_prefix: /off }\n"
                "    pool: default\n"
                "    cache: { enabled: false }\n"
                "  - match: { path_prefix: /ttl }\n"
                "    pool: default\n"
                "    cache: { default_ttl: 5s, key: [host, path] }\n"
                "  - { match: { path_prefix: /plain }, pool: default }\n");
    const struct lv_route_cfg *off = &r.cfg->routing->routes[0];
    const struct lv_route_cfg *ttl = &r.cfg->routing->routes[1];
    const struct lv_route_cfg *plain = &r.cfg->routing->routes[2];
    cr_expect_not(off->cache.enabled);
    cr_expect_eq(off->cache.serve_stale_on_error, 9000); /* global */
    cr_expect(ttl->cache.enabled);                       /* global */
    cr_expect_eq(ttl->cache.default_ttl, 5000);          /* route */
    cr_expect_eq(ttl->cache.key, LV_CKEY_HOST | LV_CKEY_PATH);
    cr_expect_eq(ttl->cache.max_size, r.cfg->cache.max_size); /* the store stays global */
    cr_expect(plain->cache.enabled);
    cr_expect_eq(plain->cache.default_ttl, 2000);
    cr_expect_eq(plain->cache.key, r.cfg->cache.key);
    result_dispose(&r);
    /* A store setting, and a cache on a route without a pool, are refused. */
    struct result bad = load("backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                             "routes:\n"
                             "  - { pool: default, cache: { max_size: 1MiB } }\n"
                             "  - { respond: { status: 200 }, cache: { enabled: true } }\n");
    cr_expect_null(bad.cfg);
    cr_expect_eq(bad.nerrors, 2, "%s", bad.errs);
    cr_expect(has_line(bad.errs, "t.yaml:3:", "max_size"), "%s", bad.errs);
    cr_expect(has_line(bad.errs, "t.yaml:4:", "only a route with a pool"), "%s", bad.errs);
    result_dispose(&bad);
    LV_EXPECT_NO_LEAKS();
}

Test(config_routes, every_route_key)
{
    struct result r =
        load_ok("pools:\n"
                "  p: { backends: [{ id: a, url: \"http://127.0.0.1:8001\" }] }\n"
                "routes:\n"
                "  - name: all.keys\n"
                "    match:\n"
                "      host: [API.example.com, \"*.api.example.com\", 10.0.0.1, \"[::1]\"]\n"
                "      path_regex: '^/v1/(\\w+)/(.*)$'\n"
                "      methods: [GET, POST, M-SEARCH]\n"
                "      headers:\n"
                "        X-A: a\n"
                "        X-B: { present: false }\n"
                "        X-C: { equal: c, ignore_case: true }\n"
                "        X-D: { regex: '^d+$' }\n"
                "      query: { v: '2', debug: { present: true }, id: { regex: '^[0-9]+$' } }\n"
                "    pool: p\n"
                "    rewrite: /v2/$1/$2\n"
                "    host_rewrite: internal.example:8080\n"
                "    request_headers:\n"
                "      set: { X-Route: '${route}', X-Client: '${client_addr} ${request_id}' }\n"
                "      add: { Via-Levee: '${pool}' }\n"
                "      remove: [X-Debug]\n"
                "    response_headers: { remove: [Server], set: { X-Served-By: '${pool}' } }\n"
                "    forwarded: true\n"
                "  - match: { path_prefix: /strip }\n"
                "    pool: p\n"
                "    strip_prefix: /strip\n"
                "    add_prefix: /base\n"
                "  - match: { path_prefix: /go }\n"
                "    redirect: { location: 'https://${host}${path}', keep_query: false }\n"
                "no_route: { status: 421, body: nope, content_type: text/plain }\n");
    const struct lv_route *a = &r.cfg->routing->table->routes[0];
    cr_expect_str_eq(a->name, "all.keys");
    cr_assert_eq(a->nhosts, 4);
    cr_expect_str_eq(a->hosts[0], "api.example.com");
    cr_expect_eq(a->methods, (1ull << HTTP_GET) | (1ull << HTTP_POST) | (1ull << HTTP_MSEARCH));
    cr_assert_eq(a->nheaders, 4);
    cr_expect_eq(a->headers[1].kind, LV_RCOND_ABSENT);
    cr_expect(a->headers[2].ignore_case);
    cr_expect_eq(a->headers[3].kind, LV_RCOND_REGEX);
    cr_assert_eq(a->nquery, 3);
    cr_expect_eq(a->query[1].kind, LV_RCOND_PRESENT);
    cr_expect_eq(a->rewrite->max_group, 2);
    cr_expect_str_eq(a->host_rewrite, "internal.example:8080");
    cr_expect_eq(a->request_fields.nset, 2);
    cr_expect_eq(a->request_fields.nadd, 1);
    cr_expect_eq(a->request_fields.nremove, 1);
    cr_expect_eq(a->response_fields.nremove, 1);
    cr_expect(r.cfg->routing->routes[0].forwarded);
    const struct lv_route *s = &r.cfg->routing->table->routes[1];
    cr_expect_str_eq(s->strip_prefix, "/strip");
    cr_expect_str_eq(s->add_prefix, "/base");
    const struct lv_route *g = &r.cfg->routing->table->routes[2];
    cr_expect_eq(g->status, 302);
    cr_expect_not(g->keep_query);
    const struct lv_route *nr = &r.cfg->routing->table->routes[3];
    cr_expect_str_eq(nr->name, "no_route");
    cr_expect_eq(nr->status, 421);
    cr_expect_str_eq(nr->body, "nope");
    cr_expect_str_eq(r.errs, "");
    result_dispose(&r);
}

/* --- errors, each at its place ----------------------------------------------------------- */

#define POOL_P "pools:\n  p: { backends: [{ id: a, url: \"http://127.0.0.1:8001\" }] }\n"

Test(config_routes, unknown_pool)
{
    expect_one_error(POOL_P "routes:\n"
                            "  - match: { path_prefix: /x }\n"
                            "    pool: q\n",
                     "t.yaml:5:11: routes[0].pool: ", "unknown pool 'q' (pools: p)");
}

Test(config_routes, duplicate_pool)
{
    expect_one_error(POOL_P "  p: { backends: [{ id: b, url: \"http://127.0.0.1:8002\" }] }\n",
                     "t.yaml:3:3: pools: ", "duplicate pool 'p' (first at line 2)");
}

Test(config_routes, a_pool_default_beside_top_level_backends)
{
    expect_one_error("backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                     "pools:\n"
                     "  default: { backends: [{ id: b, url: \"http://127.0.0.1:8002\" }] }\n",
                     "t.yaml:3:3: pools: ", "pool 'default' is the top-level backends");
}

Test(config_routes, duplicate_backend_id_across_pools)
{
    expect_one_error(
        "backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
        "pools:\n"
        "  p:\n"
        "    backends:\n"
        "      - { id: b, url: \"http://127.0.0.1:8002\" }\n"
        "      - { id: a, url: \"http://127.0.0.1:8003\" }\n",
        "t.yaml:6:15: pools.p.backends: ", "backend id 'a' is already in pool 'default'");
}

Test(config_routes, empty_pool)
{
    expect_one_error("pools:\n  p: { backends: [] }\n",
                     "t.yaml:2:3: pools.p: ", "pool 'p' has no backends");
    expect_one_error("pools:\n  p:\n", "t.yaml:2:3: pools.p: ", "pool 'p' has no backends");
}

Test(config_routes, bad_pool_name_and_keys)
{
    expect_one_error("pools:\n  'a b': { backends: [] }\n",
                     "t.yaml:2:3: pools: ", "pool name 'a b'");
    expect_one_error("pools:\n  p:\n    backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                     "    limits: { max_body: 1 }\n",
                     "t.yaml:4:5: pools.p: ",
                     "unknown key 'limits' (allowed here: backends, tls, load_balancing, timeouts, "
                     "retry, circuit_breaker, health_check, pool)");
    expect_one_error("pools:\n  p:\n    backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                     "    timeouts: { client_header: 1s }\n",
                     "t.yaml:4:17: pools.p.timeouts: ", "unknown key 'client_header'");
    expect_one_error("pools:\n  p:\n    backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                     "    retry: { max_attempts: 0 }\n",
                     "t.yaml:4:28: pools.p.retry.max_attempts: ", "out of range");
    expect_one_error("pools:\n  p:\n    backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                     "    load_balancing: fastest\n",
                     "t.yaml:4:21: pools.p.load_balancing: ", "unknown balancer 'fastest'");
}

Test(config_routes, bad_regex_at_its_offset)
{
    /* '^/old/(.*$': the quote is column 26, the end of the pattern (offset
     * 10) column 37. */
    expect_one_error(POOL_P "routes:\n"
                            "  - match: { path_regex: '^/old/(.*$' }\n"
                            "    pool: p\n",
                     "t.yaml:4:37: routes[0].match.path_regex: ",
                     "bad regular expression '^/old/(.*$': missing closing parenthesis (at "
                     "offset 10)");
    expect_one_error(
        POOL_P "routes:\n"
               "  - match:\n"
               "      path_regex: ^/a[b\n"
               "    pool: p\n",
        "t.yaml:5:24: routes[0].match.path_regex: ", "missing terminating ] for character class");
    expect_one_error(POOL_P "routes:\n"
                            "  - match: { headers: { X-A: { regex: 'a)' } } }\n"
                            "    pool: p\n",
                     "t.yaml:4:41: routes[0].match.headers.X-A: ", "unmatched closing parenthesis");
}

Test(config_routes, a_regex_is_bounded)
{
    char text[2048];
    char pattern[1100];
    memset(pattern, 'a', sizeof(pattern) - 1);
    pattern[sizeof(pattern) - 1] = '\0';
    snprintf(text, sizeof(text), POOL_P "routes:\n  - match: { path_regex: '%s' }\n    pool: p\n",
             pattern);
    expect_one_error(text, "t.yaml:4:", "longer than 1024 bytes");
    expect_one_error(POOL_P "routes:\n  - match: { path_regex: '(*UTF)^/caf.$' }\n    pool: p\n",
                     "t.yaml:4:", "bad regular expression");
}

Test(config_routes, captures_a_template_names)
{
    expect_one_error(
        POOL_P "routes:\n"
               "  - match: { path_regex: '^/old/(.*)$' }\n"
               "    redirect: { location: '/new/$2' }\n",
        "t.yaml:5:33: routes[0].redirect.location: ", "no capture group $2: path_regex has 1");
    expect_one_error(POOL_P "routes:\n"
                            "  - match: { path_prefix: /old }\n"
                            "    redirect: { location: /new/$1 }\n",
                     "t.yaml:5:32: routes[0].redirect.location: ", "no path_regex");
    expect_one_error(POOL_P "routes:\n"
                            "  - match: { path_prefix: /old }\n"
                            "    pool: p\n"
                            "    request_headers: { set: { X-A: '${user}' } }\n",
                     "t.yaml:6:37: routes[0].request_headers: ", "unknown variable");
}

Test(config_routes, paths)
{
    expect_one_error(POOL_P "routes:\n  - { match: { path_prefix: /a/../b }, pool: p }\n",
                     "t.yaml:4:29: routes[0].match.path_prefix: ", "write '/b'");
    expect_one_error(POOL_P "routes:\n  - { match: { path_exact: /%7euser }, pool: p }\n",
                     "t.yaml:4:28: routes[0].match.path_exact: ", "write '/~user'");
    expect_one_error(POOL_P "routes:\n  - { match: { path_exact: /a%zz }, pool: p }\n",
                     "t.yaml:4:28: routes[0].match.path_exact: ", "two hex digits");
    expect_one_error(POOL_P "routes:\n  - { match: { path_prefix: api }, pool: p }\n",
                     "t.yaml:4:29: routes[0].match.path_prefix: ", "starts with '/'");
    expect_one_error(POOL_P
                     "routes:\n  - { match: { path_prefix: /a, path_exact: /b }, pool: p }\n",
                     "t.yaml:4:45: routes[0].match.path_exact: ",
                     "one of path_prefix, path_exact and path_regex");
}

Test(config_routes, hosts_and_methods)
{
    expect_one_error(POOL_P "routes:\n  - { match: { host: 'a.example:80' }, pool: p }\n",
                     "t.yaml:4:22: routes[0].match.host: ", "has no port");
    expect_one_error(POOL_P "routes:\n  - { match: { host: 'a..b' }, pool: p }\n",
                     "t.yaml:4:22: routes[0].match.host: ", "is not a host name");
    expect_one_error(POOL_P "routes:\n  - { match: { host: [] }, pool: p }\n",
                     "t.yaml:4:22: routes[0].match.host: ", "from 1 to 64");
    expect_one_error(POOL_P "routes:\n  - { match: { methods: [GET, get] }, pool: p }\n",
                     "t.yaml:4:31: routes[0].match.methods: ", "unknown method 'get'");
}

Test(config_routes, conditions)
{
    expect_one_error(POOL_P "routes:\n  - { match: { headers: { 'X A': b } }, pool: p }\n",
                     "t.yaml:4:27: routes[0].match.headers.X A: ", "is not a header name");
    expect_one_error(
        POOL_P
        "routes:\n  - { match: { headers: { X-A: { present: true, equal: b } } }, pool: p }\n",
        "t.yaml:4:32: routes[0].match.headers.X-A: ", "one of present, equal and regex (2 given)");
    expect_one_error(POOL_P "routes:\n  - { match: { headers: { X-A: } }, pool: p }\n",
                     "t.yaml:4:27: routes[0].match.headers.X-A: ", "expected a value");
    expect_one_error(POOL_P "routes:\n  - { match: { query: { 'a&b': '1' } }, pool: p }\n",
                     "t.yaml:4:25: routes[0].match.query.a&b: ", "is not a query parameter name");
    expect_one_error(
        POOL_P
        "routes:\n  - { match: { query: { a: { regex: x, ignore_case: true } } }, pool: p }\n",
        "t.yaml:4:", "ignore_case goes with equal");
}

Test(config_routes, actions)
{
    expect_one_error(POOL_P "routes:\n  - match: { path_prefix: /a }\n",
                     "t.yaml:4:5: routes[0]: ", "a route needs pool, redirect or respond");
    expect_one_error(
        POOL_P "routes:\n  - pool: p\n    respond: { body: x }\n",
        "t.yaml:5:14: routes[0]: ", "one of pool, redirect and respond (pool and respond)");
    expect_one_error(POOL_P "routes:\n  - respond: { body: x }\n    strip_prefix: /a\n",
                     "t.yaml:5:19: routes[0]: ", "strip_prefix: only a route with a pool takes it");
    expect_one_error(POOL_P "routes:\n  - redirect: { status: 300, location: /x }\n",
                     "t.yaml:4:", "is out of range");
    expect_one_error(POOL_P "routes:\n  - redirect: { status: 304, location: /x }\n",
                     "t.yaml:4:25: routes[0].redirect: ", "not a redirect status");
    expect_one_error(POOL_P "routes:\n  - redirect: { status: 301 }\n",
                     "t.yaml:4:15: routes[0].redirect: ", "needs a location");
    expect_one_error(POOL_P "routes:\n  - redirect: { location: '/a b' }\n",
                     "t.yaml:4:27: routes[0].redirect.location: ", "no spaces");
    expect_one_error(POOL_P "routes:\n  - respond: { status: 204, body: x }\n",
                     "t.yaml:4:35: routes[0].respond: ", "a 204 response has no body");
    expect_one_error(POOL_P "routes:\n  - respond: { status: 100 }\n", "t.yaml:4:", "out of range");
}

Test(config_routes, rewrites)
{
    expect_one_error(POOL_P
                     "routes:\n  - { match: { path_prefix: /api }, pool: p, strip_prefix: /v1 }\n",
                     "t.yaml:4:60: routes[0].strip_prefix: ", "does not begin the paths");
    expect_one_error(
        POOL_P "routes:\n  - { match: { path_prefix: /api }, pool: p, strip_prefix: /api/ }\n",
        "t.yaml:4:60: routes[0].strip_prefix: ", "does not begin the paths");
    expect_one_error(POOL_P "routes:\n  - { pool: p, rewrite: /x, add_prefix: /y }\n",
                     "t.yaml:4:25: routes[0].rewrite: ", "does not go with strip_prefix");
    expect_one_error(POOL_P "routes:\n  - { pool: p, rewrite: 'x/$$' }\n",
                     "t.yaml:4:25: routes[0].rewrite: ", "starts with '/'");
    expect_one_error(POOL_P "routes:\n  - { pool: p, host_rewrite: 'a b' }\n",
                     "t.yaml:4:30: routes[0].host_rewrite: ", "is not a host[:port]");
    expect_one_error(POOL_P "routes:\n  - { pool: p, request_headers: { set: { Host: x } } }\n",
                     "t.yaml:4:42: routes[0].request_headers: ", "use host_rewrite");
    expect_one_error(POOL_P
                     "routes:\n  - { pool: p, response_headers: { remove: [Content-Length] } }\n",
                     "t.yaml:4:45: routes[0].response_headers: ", "cannot be changed by a route");
    expect_one_error(POOL_P "routes:\n  - { pool: p, timeouts: { idle: 1s } }\n",
                     "t.yaml:4:28: routes[0].timeouts: ",
                     "unknown key 'idle' (allowed here: connect, per_try, backend, tunnel)");
}

Test(config_routes, names)
{
    expect_one_error(POOL_P "routes:\n  - { name: a, pool: p }\n  - { name: a, pool: p }\n",
                     "t.yaml:5:13: routes[1].name: ", "duplicate route name 'a' (first at line 4)");
    expect_one_error(
        POOL_P "routes:\n  - { name: default, pool: p }\n",
        "t.yaml:4:13: routes[0].name: ", "'default' is the name of levee's own last route");
    expect_one_error(POOL_P "routes:\n  - { name: none, pool: p }\n",
                     "t.yaml:4:13: routes[0].name: ", "'none' is the metrics' label");
    expect_one_error("pools:\n  none:\n    backends: [{ id: a, url: 'http://127.0.0.1:1' }]\n",
                     "t.yaml:2:3: pools: ", "pool name 'none' is the metrics' label");
    expect_one_error(POOL_P "routes:\n  - { name: 'a/b', pool: p }\n",
                     "t.yaml:4:13: routes[0].name: ", "letters, digits");
}

Test(config_routes, too_many_routes)
{
    size_t cap = 128 + 64 * (size_t)LV_ROUTE_MAX;
    char *text = malloc(cap);
    size_t o = (size_t)snprintf(text, cap, POOL_P "routes:\n");
    for (int i = 0; i < LV_ROUTE_MAX; i++)
        o += (size_t)snprintf(text + o, cap - o, "  - { match: { path_exact: /r%d }, pool: p }\n",
                              i);
    expect_one_error(text, "t.yaml:4:3: routes: ", "4096 routes: at most 4095");
    free(text);
}

Test(config_routes, every_error_is_reported_at_once)
{
    struct result r = load(POOL_P "routes:\n"
                                  "  - { match: { path_regex: '(' }, pool: p }\n"
                                  "  - { match: { path_prefix: /x }, pool: nope }\n"
                                  "  - { respond: { status: 204, body: x } }\n");
    cr_expect_null(r.cfg);
    cr_expect_eq(r.nerrors, 3, "%s", r.errs);
    cr_expect(has_line(r.errs, "t.yaml:4:", "bad regular expression"));
    cr_expect(has_line(r.errs, "t.yaml:5:", "unknown pool 'nope'"));
    cr_expect(has_line(r.errs, "t.yaml:6:", "has no body"));
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

/* --- warnings: the file loads ------------------------------------------------------------ */

Test(config_routes, a_route_after_a_broader_one_is_a_warning)
{
    struct result r = load_ok(POOL_P "routes:\n"
                                     "  - { name: all, match: { path_prefix: / }, pool: p }\n"
                                     "  - { name: api, match: { path_prefix: /api }, pool: p }\n"
                                     "  - { name: ws, match: { host: '*.a.test' }, pool: p }\n"
                                     "  - { name: get, match: { methods: [GET] }, pool: p }\n");
    cr_expect_eq(r.nerrors, 0);
    cr_expect(has_line(r.errs, "t.yaml:5:5: routes[1]: warning: ",
                       "never used: route 'all' (line 4) comes first"),
              "%s", r.errs);
    cr_expect(has_line(r.errs, "t.yaml:6:5: routes[2]: warning: ", "route 'all'"), "%s", r.errs);
    cr_expect(has_line(r.errs, "t.yaml:7:5: routes[3]: warning: ", "route 'all'"), "%s", r.errs);
    cr_expect_eq(count_lines(r.errs), 3, "%s", r.errs);
    result_dispose(&r);
}

Test(config_routes, narrower_routes_first_are_not_warned_about)
{
    struct result r = load_ok(POOL_P "routes:\n"
                                     "  - { match: { path_prefix: /api/ }, pool: p }\n"
                                     "  - { match: { path_prefix: /api }, pool: p }\n"
                                     "  - { match: { path_prefix: /apix }, pool: p }\n"
                                     "  - { match: { host: a.test }, pool: p }\n"
                                     "  - { match: { host: '*.test' }, pool: p }\n"
                                     "  - { match: { path_regex: '^/a' }, pool: p }\n"
                                     "  - { match: { path_regex: '^/a' }, pool: p }\n"
                                     "  - { match: { headers: { X-A: b } }, pool: p }\n"
                                     "  - { match: { methods: [GET] }, pool: p }\n"
                                     "  - { pool: p }\n");
    cr_expect_str_eq(r.errs, "");
    result_dispose(&r);
}

Test(config_routes, unused_pools_and_no_route_are_warnings)
{
    struct result r = load_ok("backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                              "pools:\n"
                              "  spare: { backends: [{ id: b, url: \"http://127.0.0.1:8002\" }] }\n"
                              "no_route: { status: 404 }\n");
    cr_expect(has_line(r.errs, "t.yaml:3:3: pools.spare: warning: ", "no route uses pool 'spare'"),
              "%s", r.errs);
    cr_expect(has_line(r.errs, "t.yaml:4:11: no_route: warning: ", "never used"), "%s", r.errs);
    cr_expect_eq(count_lines(r.errs), 2, "%s", r.errs);
    result_dispose(&r);
}

Test(config_routes, an_unused_no_route_is_still_checked)
{
    expect_one_error("backends: [{ id: a, url: \"http://127.0.0.1:8001\" }]\n"
                     "no_route: { status: 99 }\n",
                     "t.yaml:2:21: no_route.status: ", "out of range (200 to 599)");
    expect_one_error("backends: []\nno_route: 5\n",
                     "t.yaml:2:11: no_route: ", "expected a mapping");
}

Test(config_routes, no_route_without_a_body_gets_the_json_one_with_its_status)
{
    struct result r = load_ok(POOL_P "routes: [{ match: { path_prefix: /a }, pool: p }]\n"
                                     "no_route: { status: 421 }\n");
    const struct lv_route *nr = &r.cfg->routing->table->routes[1];
    cr_expect_eq(nr->status, 421);
    cr_expect_str_eq(nr->body, "{\"status\":421,\"error\":\"no_route\",\"message\":\"no route "
                               "matches this request\"}\n");
    cr_expect_str_eq(nr->content_type, "application/json");
    result_dispose(&r);
    r = load_ok(POOL_P "routes: [{ match: { path_prefix: /a }, pool: p }]\n"
                       "no_route: { status: 404, body: '' }\n");
    cr_expect_eq(r.cfg->routing->table->routes[1].body_len, 0);
    result_dispose(&r);
}

Test(config_routes, a_pools_tls_is_the_default_of_its_https_backends)
{
    struct result r =
        load_ok("pools:\n"
                "  api:\n"
                "    tls: { server_name: api.internal, min_version: '1.3' }\n"
                "    backends:\n"
                "      - { id: a, url: \"https://127.0.0.1:8443\" }\n"
                "      - { id: b, url: \"https://127.0.0.1:8444\",\n"
                "          tls: { server_name: b.internal } }\n"
                "      - { id: c, url: \"http://127.0.0.1:8001\" }\n"
                "  web: { backends: [{ id: w, url: \"https://127.0.0.1:8445\" }] }\n");
    const struct lv_backend_cfg *b = r.cfg->backends;
    cr_assert_eq(r.cfg->n_backends, 4);
    cr_expect_str_eq(b[0].tls.server_name, "api.internal", "the pool's");
    cr_expect_eq(b[0].tls.min_version, TLS1_3_VERSION);
    cr_expect_not_null(b[0].tls_ctx);
    cr_expect_str_eq(b[1].tls.server_name, "b.internal", "the backend's own beats the pool's");
    cr_expect_eq(b[1].tls.min_version, TLS1_3_VERSION, "what it does not set is the pool's");
    cr_expect_not(b[2].tls.enabled, "an http backend ignores the pool's tls");
    cr_expect_null(b[3].tls.server_name, "another pool's backend: its own defaults");
    cr_expect_eq(b[3].tls.min_version, TLS1_2_VERSION);
    cr_expect_eq(r.nerrors, 0, "%s", r.errs);
    result_dispose(&r);
    /* The pool's block is checked like a backend's. */
    struct result bad = load("pools:\n"
                             "  api:\n"
                             "    tls: { sni: x }\n"
                             "    backends: [{ id: a, url: \"https://127.0.0.1:8443\" }]\n");
    cr_expect_null(bad.cfg);
    cr_expect(strstr(bad.errs, "t.yaml:3:12: ") && strstr(bad.errs, "unknown key 'sni'"), "%s",
              bad.errs);
    result_dispose(&bad);
}
