/*
 * Route tables (route/route.c, route/index.c): every matcher, first-match
 * precedence across hosts and paths, the index against a scan of every
 * route, what a matched route makes of the target and the Location, the
 * shadowing check, and matching from several threads at once.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rand.h"
#include "route/index.h"
#include "unit/lv_test.h"
#include "unit/route/route_fixture.h"

static struct lv_route_scratch *scratch;

static void setup(void)
{
    scratch = lv_route_scratch_create();
    cr_assert_not_null(scratch);
}

static void teardown(void)
{
    lv_route_scratch_destroy(scratch);
    scratch = NULL;
}

TestSuite(route, .init = setup, .fini = teardown);

/* The name of the route raw goes to ("<none>", "<400>" for a bad path);
 * the index and a scan of every route must agree. */
static const char *route_for(const struct lv_route_table *t, const char *raw)
{
    struct rq q;
    rq_parse(&q, raw);
    const char *name = "<400>";
    if (q.init_rc == 0) {
        struct lv_route_hit hit, lin;
        const struct lv_route *r = lv_route_match(t, &q.req, scratch, &hit);
        const struct lv_route *l = lv_route_match_linear(t, &q.req, scratch, &lin);
        cr_assert_eq(r, l, "index and scan disagree on\n%s", raw);
        cr_assert_eq(hit.route, r);
        name = r ? r->name : "<none>";
    }
    rq_dispose(&q);
    return name;
}

#define GET(path, host) "GET " path " HTTP/1.1\r\nHost: " host "\r\n\r\n"

/* --- hosts ------------------------------------------------------------------------- */

Test(route, exact_host_ignores_case_port_and_a_trailing_dot)
{
    struct builder b = {0};
    r_host(b_add(&b, "api"), "api.example.com");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, GET("/", "api.example.com")), "api");
    cr_expect_str_eq(route_for(t, GET("/", "API.Example.COM")), "api");
    cr_expect_str_eq(route_for(t, GET("/", "api.example.com:8443")), "api");
    cr_expect_str_eq(route_for(t, GET("/", "api.example.com.")), "api");
    cr_expect_str_eq(route_for(t, GET("/", "www.example.com")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/", "api.example.co")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/", "xapi.example.com")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/", "api.example.com.evil")), "<none>");
    lv_route_table_destroy(t);
}

Test(route, wildcard_host_needs_a_label_before_the_suffix)
{
    struct builder b = {0};
    r_host(b_add(&b, "wild"), "*.example.com");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, GET("/", "a.example.com")), "wild");
    cr_expect_str_eq(route_for(t, GET("/", "a.b.example.com")), "wild");
    cr_expect_str_eq(route_for(t, GET("/", "A.EXAMPLE.COM:80")), "wild");
    cr_expect_str_eq(route_for(t, GET("/", "example.com")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/", "xexample.com")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/", ".example.com")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/", "a.example.com.evil.net")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/", "a.example.org")), "<none>");
    lv_route_table_destroy(t);
}

Test(route, several_hosts_and_ip_literals)
{
    struct builder b = {0};
    struct lv_route *r = b_add(&b, "multi");
    r_host(r, "a.test");
    r_host(r, "*.b.test");
    r_host(r, "127.0.0.1");
    r_host(r, "[::1]");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, GET("/", "a.test")), "multi");
    cr_expect_str_eq(route_for(t, GET("/", "x.b.test")), "multi");
    cr_expect_str_eq(route_for(t, GET("/", "127.0.0.1:8080")), "multi");
    cr_expect_str_eq(route_for(t, GET("/", "[::1]:8080")), "multi");
    cr_expect_str_eq(route_for(t, GET("/", "b.test")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/", "127.0.0.2")), "<none>");
    lv_route_table_destroy(t);
}

Test(route, absolute_form_authority_is_the_host)
{
    struct builder b = {0};
    r_host(b_add(&b, "api"), "api.example.com");
    b_add(&b, "rest");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(
        route_for(t, "GET http://api.example.com/x HTTP/1.1\r\nHost: api.example.com\r\n\r\n"),
        "api");
    lv_route_table_destroy(t);
}

Test(route, a_request_without_host_matches_no_host_pattern)
{
    struct builder b = {0};
    r_host(b_add(&b, "api"), "api.example.com");
    r_host(b_add(&b, "wild"), "*.example.com");
    b_add(&b, "any");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, "GET / HTTP/1.0\r\n\r\n"), "any");
    lv_route_table_destroy(t);
}

/* --- paths ------------------------------------------------------------------------- */

Test(route, path_prefix_on_segment_boundaries)
{
    struct builder b = {0};
    r_path(b_add(&b, "api"), LV_RPATH_PREFIX, "/api");
    r_path(b_add(&b, "v1"), LV_RPATH_PREFIX, "/v1/");
    r_path(b_add(&b, "root"), LV_RPATH_PREFIX, "/");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, GET("/api", "h")), "api");
    cr_expect_str_eq(route_for(t, GET("/api/", "h")), "api");
    cr_expect_str_eq(route_for(t, GET("/api/x/y", "h")), "api");
    cr_expect_str_eq(route_for(t, GET("/api?x=1", "h")), "api");
    cr_expect_str_eq(route_for(t, GET("/apix", "h")), "root");
    cr_expect_str_eq(route_for(t, GET("/ap", "h")), "root");
    cr_expect_str_eq(route_for(t, GET("/API", "h")), "root"); /* case-sensitive */
    cr_expect_str_eq(route_for(t, GET("/v1/", "h")), "v1");
    cr_expect_str_eq(route_for(t, GET("/v1/users", "h")), "v1");
    cr_expect_str_eq(route_for(t, GET("/v1", "h")), "root");
    cr_expect_str_eq(route_for(t, GET("/v1x/", "h")), "root");
    cr_expect_str_eq(route_for(t, GET("/", "h")), "root");
    lv_route_table_destroy(t);
}

Test(route, path_exact)
{
    struct builder b = {0};
    r_path(b_add(&b, "robots"), LV_RPATH_EXACT, "/robots.txt");
    r_path(b_add(&b, "dir"), LV_RPATH_EXACT, "/dir/");
    r_path(b_add(&b, "home"), LV_RPATH_EXACT, "/");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, GET("/robots.txt", "h")), "robots");
    cr_expect_str_eq(route_for(t, GET("/robots.txt?x", "h")), "robots");
    cr_expect_str_eq(route_for(t, GET("/robots.txt/", "h")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/robots.txtx", "h")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/robots", "h")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/dir/", "h")), "dir");
    cr_expect_str_eq(route_for(t, GET("/dir", "h")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/dir/x", "h")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/", "h")), "home");
    cr_expect_str_eq(route_for(t, GET("/?q", "h")), "home");
    lv_route_table_destroy(t);
}

Test(route, matching_is_on_the_normalized_path)
{
    struct builder b = {0};
    r_path(b_add(&b, "admin"), LV_RPATH_PREFIX, "/admin");
    r_path(b_add(&b, "robots"), LV_RPATH_EXACT, "/robots.txt");
    b_add(&b, "rest");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, GET("/x/../admin/users", "h")), "admin");
    cr_expect_str_eq(route_for(t, GET("/x/%2e%2e/admin", "h")), "admin");
    cr_expect_str_eq(route_for(t, GET("//admin", "h")), "admin");
    cr_expect_str_eq(route_for(t, GET("/./admin/.", "h")), "admin");
    cr_expect_str_eq(route_for(t, GET("/%61dmin", "h")), "admin");
    cr_expect_str_eq(route_for(t, GET("/../../admin", "h")), "admin");
    cr_expect_str_eq(route_for(t, GET("/robots%2Etxt", "h")), "robots");
    /* An encoded slash is not a separator (and is not decoded). */
    cr_expect_str_eq(route_for(t, GET("/admin%2Fusers", "h")), "rest");
    cr_expect_str_eq(route_for(t, GET("/x%2F..%2Fadmin", "h")), "rest");
    /* An invalid escape: no route, the request is refused (400). */
    cr_expect_str_eq(route_for(t, GET("/admin%zz", "h")), "<400>");
    cr_expect_str_eq(route_for(t, GET("/admin%4", "h")), "<400>");
    lv_route_table_destroy(t);
}

Test(route, path_regex_and_its_captures)
{
    struct builder b = {0};
    struct lv_route *r = b_add(&b, "old");
    r_regex(r, "^/old/([^/]+)/(.*)$");
    struct lv_route_table *t = b_build(&b);
    struct rq q;
    rq_parse(&q, GET("/old/a/b/../c?x=1", "h"));
    struct lv_route_hit hit;
    cr_assert_not_null(lv_route_match(t, &q.req, scratch, &hit));
    cr_expect_eq(hit.npairs, 3);
    /* Offsets in the normalized path "/old/a/c" */
    cr_expect_eq(hit.ovector[2], 5);
    cr_expect_eq(hit.ovector[3], 6);
    cr_expect_eq(hit.ovector[4], 7);
    cr_expect_eq(hit.ovector[5], 8);
    rq_dispose(&q);
    cr_expect_str_eq(route_for(t, GET("/old/x", "h")), "<none>");
    cr_expect_str_eq(route_for(t, GET("/older/a/b", "h")), "<none>");
    lv_route_table_destroy(t);
}

Test(route, options_star)
{
    struct builder b = {0};
    r_path(b_add(&b, "root"), LV_RPATH_PREFIX, "/");
    b_add(&b, "any");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), "any");
    lv_route_table_destroy(t);
}

/* --- methods, headers, query ------------------------------------------------------------ */

Test(route, methods)
{
    struct builder b = {0};
    struct lv_route *r = b_add(&b, "read");
    r_method(r, HTTP_GET);
    r_method(r, HTTP_HEAD);
    r_method(b_add(&b, "delete"), HTTP_DELETE);
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"), "read");
    cr_expect_str_eq(route_for(t, "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n"), "read");
    cr_expect_str_eq(route_for(t, "DELETE / HTTP/1.1\r\nHost: h\r\n\r\n"), "delete");
    cr_expect_str_eq(route_for(t, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"),
                     "<none>");
    lv_route_table_destroy(t);
}

Test(route, header_present_absent_equal_regex)
{
    struct builder b = {0};
    r_cond(b_add(&b, "ws"), true, "Upgrade", LV_RCOND_EQUAL, "websocket", false);
    r_cond(b_add(&b, "ws-any-case"), true, "X-Proto", LV_RCOND_EQUAL, "WebSocket", true);
    r_cond(b_add(&b, "keyed"), true, "x-api-key", LV_RCOND_PRESENT, NULL, false);
    r_cond(b_add(&b, "curl"), true, "User-Agent", LV_RCOND_REGEX, "^curl/[0-9]", false);
    r_cond(b_add(&b, "anonymous"), true, "Authorization", LV_RCOND_ABSENT, NULL, false);
    b_add(&b, "rest");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n"), "ws");
    /* equal is case-sensitive unless ignore_case */
    cr_expect_str_eq(route_for(t, "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: x\r\nUpgrade: "
                                  "WebSocket\r\n\r\n"),
                     "rest");
    cr_expect_str_eq(route_for(t, "GET / HTTP/1.1\r\nHost: h\r\nx-proto: websocket  \r\n\r\n"),
                     "ws-any-case");
    cr_expect_str_eq(route_for(t, "GET / HTTP/1.1\r\nHost: h\r\nX-API-KEY:\r\n\r\n"), "keyed");
    cr_expect_str_eq(
        route_for(t,
                  "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: b\r\nUser-Agent: curl/8.1\r\n\r\n"),
        "curl");
    cr_expect_str_eq(
        route_for(t,
                  "GET / HTTP/1.1\r\nHost: h\r\nAuthorization: b\r\nUser-Agent: xcurl/8\r\n\r\n"),
        "rest");
    cr_expect_str_eq(route_for(t, "GET / HTTP/1.1\r\nHost: h\r\n\r\n"), "anonymous");
    lv_route_table_destroy(t);
}

Test(route, a_repeated_header_matches_when_any_field_does)
{
    struct builder b = {0};
    r_cond(b_add(&b, "tenant"), true, "X-Tenant", LV_RCOND_EQUAL, "blue", false);
    r_cond(b_add(&b, "not-red"), true, "X-Red", LV_RCOND_ABSENT, NULL, false);
    b_add(&b, "rest");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(
        route_for(t, "GET / HTTP/1.1\r\nHost: h\r\nX-Tenant: red\r\nX-Tenant: blue\r\n\r\n"),
        "tenant");
    cr_expect_str_eq(route_for(t, "GET / HTTP/1.1\r\nHost: h\r\nX-Red: 1\r\nX-Red: 2\r\n\r\n"),
                     "rest");
    lv_route_table_destroy(t);
}

Test(route, query_parameters_as_written)
{
    struct builder b = {0};
    r_cond(b_add(&b, "v2"), false, "version", LV_RCOND_EQUAL, "2", false);
    r_cond(b_add(&b, "debug"), false, "debug", LV_RCOND_PRESENT, NULL, false);
    r_cond(b_add(&b, "spaced"), false, "q", LV_RCOND_EQUAL, "a%20b", false);
    r_cond(b_add(&b, "id"), false, "id", LV_RCOND_REGEX, "^[0-9]+$", false);
    struct lv_route *r = b_add(&b, "no-token");
    r_cond(r, false, "token", LV_RCOND_ABSENT, NULL, false);
    r_path(r, LV_RPATH_PREFIX, "/public");
    b_add(&b, "rest");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, GET("/?version=2", "h")), "v2");
    cr_expect_str_eq(route_for(t, GET("/?a=1&version=2&b", "h")), "v2");
    cr_expect_str_eq(route_for(t, GET("/?version=22", "h")), "rest");
    cr_expect_str_eq(route_for(t, GET("/?xversion=2", "h")), "rest");
    cr_expect_str_eq(route_for(t, GET("/?version=1&version=2", "h")), "v2");
    cr_expect_str_eq(route_for(t, GET("/?debug", "h")), "debug");
    cr_expect_str_eq(route_for(t, GET("/?debug=", "h")), "debug");
    cr_expect_str_eq(route_for(t, GET("/?x=1&debug=0", "h")), "debug");
    cr_expect_str_eq(route_for(t, GET("/?q=a%20b", "h")), "spaced");
    cr_expect_str_eq(route_for(t, GET("/?q=a+b", "h")), "rest"); /* not decoded */
    cr_expect_str_eq(route_for(t, GET("/?id=123", "h")), "id");
    cr_expect_str_eq(route_for(t, GET("/?id=12a", "h")), "rest");
    cr_expect_str_eq(route_for(t, GET("/public/x", "h")), "no-token");
    cr_expect_str_eq(route_for(t, GET("/public/x?", "h")), "no-token");
    cr_expect_str_eq(route_for(t, GET("/public/x?token=1", "h")), "rest");
    lv_route_table_destroy(t);
}

/* --- precedence ---------------------------------------------------------------------- */

Test(route, first_match_wins_across_hosts_and_paths)
{
    struct builder b = {0};
    r_path(b_add(&b, "any-health"), LV_RPATH_EXACT, "/health");
    struct lv_route *r = b_add(&b, "api-v1");
    r_host(r, "api.example.com");
    r_path(r, LV_RPATH_PREFIX, "/v1");
    r_host(b_add(&b, "wild"), "*.example.com");
    r = b_add(&b, "api-all"); /* shadowed by wild for api.example.com */
    r_host(r, "api.example.com");
    b_add(&b, "catch-all");
    r_path(b_add(&b, "after-all"), LV_RPATH_PREFIX, "/");
    struct lv_route_table *t = b_build(&b);
    cr_expect_str_eq(route_for(t, GET("/health", "api.example.com")), "any-health");
    cr_expect_str_eq(route_for(t, GET("/v1/x", "api.example.com")), "api-v1");
    cr_expect_str_eq(route_for(t, GET("/v2/x", "api.example.com")), "wild");
    cr_expect_str_eq(route_for(t, GET("/v1/x", "www.example.com")), "wild");
    cr_expect_str_eq(route_for(t, GET("/v1/x", "other.org")), "catch-all");
    lv_route_table_destroy(t);
}

/* --- the index against a scan, on random tables and requests -------------------------------- */

static const char *const hosts[] = {"a.test", "b.test", "*.test", "*.a.test", "x.a.test", "c.org"};
static const char *const paths[] = {"/", "/a", "/a/", "/a/b", "/a/b/", "/b", "/a/b/c", "/c/"};
static const char *const req_hosts[] = {"a.test", "b.test", "x.a.test", "y.x.a.test",
                                        "c.org",  "test",   "d.test",   "C.ORG:81"};
static const char *const req_paths[] = {"/",     "/a",  "/a/",  "/a/b",   "/a/b/",
                                        "/a/bc", "/b",  "/b/x", "/a/b/c", "/a/b/c/d",
                                        "/c",    "/c/", "/c/d", "/x"};

Test(route, the_index_answers_as_a_scan_of_every_route)
{
    struct lv_rand rng;
    lv_rand_seed(&rng, 42);
    for (int round = 0; round < 200; round++) {
        struct builder b = {0};
        uint32_t n = 1 + lv_rand_below(&rng, 24);
        for (uint32_t i = 0; i < n; i++) {
            char name[16];
            snprintf(name, sizeof(name), "r%u", i);
            struct lv_route *r = b_add(&b, name);
            uint32_t nh = lv_rand_below(&rng, 3);
            for (uint32_t h = 0; h < nh; h++)
                r_host(r, hosts[lv_rand_below(&rng, 6)]);
            switch (lv_rand_below(&rng, 4)) {
            case 0: break;
            case 1: r_path(r, LV_RPATH_PREFIX, paths[lv_rand_below(&rng, 8)]); break;
            case 2: r_path(r, LV_RPATH_EXACT, paths[lv_rand_below(&rng, 8)]); break;
            default: r_regex(r, lv_rand_below(&rng, 2) ? "^/a" : "b$"); break;
            }
            if (lv_rand_below(&rng, 4) == 0) r_method(r, HTTP_POST);
        }
        struct lv_route_table *t = b_build(&b);
        for (int k = 0; k < 30; k++) {
            char raw[256];
            snprintf(raw, sizeof(raw), "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: 0\r\n\r\n",
                     lv_rand_below(&rng, 3) ? "GET" : "POST", req_paths[lv_rand_below(&rng, 14)],
                     req_hosts[lv_rand_below(&rng, 8)]);
            route_for(t, raw); /* asserts that both agree */
        }
        lv_route_table_destroy(t);
    }
}

Test(route, too_many_candidate_lists_fall_back_to_a_scan)
{
    /* 12 wildcard groups that all match one host, each with 5 prefixes
     * along one path: a request down that path has 60 candidate lists,
     * more than a lookup holds. */
    static const char *const deep[] = {"/x", "/x/", "/x/y", "/x/y/", "/x/y/z"};
    static const char domain[] = "a.b.c.d.e.f.g.h.i.j.k.l.m";
    struct builder b = {0};
    char name[32], host[64];
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof(name), "r%d", i);
        struct lv_route *r = b_add(&b, name);
        snprintf(host, sizeof(host), "*.%s", domain + 2 * (i / 5));
        r_host(r, host);
        r_path(r, LV_RPATH_PREFIX, deep[i % 5]);
        r_cond(r, false, "k", LV_RCOND_EQUAL, name, false);
    }
    struct lv_route_table *t = b_build(&b);
    struct lv_route_span spans[LV_ROUTE_SPANS];
    static const char req_host[] = "z.a.b.c.d.e.f.g.h.i.j.k.l.m";
    cr_assert_eq(lv_route_index_lookup(t->index, req_host, strlen(req_host), "/x/y/z/w", 8, spans),
                 -1);
    cr_expect_str_eq(route_for(t, GET("/x/y/z/w?k=r59", "z.a.b.c.d.e.f.g.h.i.j.k.l.m")), "r59");
    cr_expect_str_eq(route_for(t, GET("/x/y/z?k=r0", "z.a.b.c.d.e.f.g.h.i.j.k.l.m")), "r0");
    cr_expect_str_eq(route_for(t, GET("/x?k=r2", "z.a.b.c.d.e.f.g.h.i.j.k.l.m")), "<none>");
    lv_route_table_destroy(t);
}

/* --- actions --------------------------------------------------------------------------- */

/* The target route `r` (the table's first) sends for raw; "<none>" when it
 * leaves the target alone, "<too long>" past cap. */
static const char *target_of(const struct lv_route_table *t, const char *raw, char *out, size_t cap)
{
    struct rq q;
    rq_parse(&q, raw);
    struct lv_route_hit hit;
    cr_assert_not_null(lv_route_match(t, &q.req, scratch, &hit), "%s", raw);
    struct lv_template_env env;
    lv_route_env_init(&env, &q.req, &hit);
    ssize_t n = lv_route_target(hit.route, &q.req, &env, out, cap);
    rq_dispose(&q);
    if (n == 0) return "<none>";
    if (n < 0) return "<too long>";
    out[n] = '\0';
    return out;
}

static struct lv_template *tmpl(const char *text, int groups)
{
    char err[256];
    size_t off;
    struct lv_template *tp = lv_template_create(text, strlen(text), groups, err, sizeof(err), &off);
    cr_assert_not_null(tp, "%s", err);
    return tp;
}

Test(route, strip_prefix_and_add_prefix)
{
    struct builder b = {0};
    struct lv_route *r = b_add(&b, "v1");
    r_path(r, LV_RPATH_PREFIX, "/v1/");
    r->strip_prefix = strdup("/v1");
    r->strip_len = 3;
    r = b_add(&b, "v2");
    r_path(r, LV_RPATH_PREFIX, "/v2");
    r->strip_prefix = strdup("/v2/");
    r->strip_len = 4;
    r->add_prefix = strdup("/internal");
    r->add_len = 9;
    r = b_add(&b, "add");
    r_path(r, LV_RPATH_PREFIX, "/add");
    r->add_prefix = strdup("/base/");
    r->add_len = 6;
    r_path(b_add(&b, "plain"), LV_RPATH_PREFIX, "/");
    struct lv_route_table *t = b_build(&b);
    char out[64];
    cr_expect_str_eq(target_of(t, GET("/v1/users?id=1", "h"), out, sizeof(out)), "/users?id=1");
    cr_expect_str_eq(target_of(t, GET("/v1/", "h"), out, sizeof(out)), "/");
    cr_expect_str_eq(target_of(t, GET("/v1/a/../b", "h"), out, sizeof(out)), "/b");
    cr_expect_str_eq(target_of(t, GET("/v1/a%2fb", "h"), out, sizeof(out)), "/a%2Fb");
    cr_expect_str_eq(target_of(t, GET("/v2/x", "h"), out, sizeof(out)), "/internal/x");
    cr_expect_str_eq(target_of(t, GET("/v2", "h"), out, sizeof(out)), "/internal/v2");
    cr_expect_str_eq(target_of(t, GET("/v2/", "h"), out, sizeof(out)), "/internal/");
    cr_expect_str_eq(target_of(t, GET("/add/x", "h"), out, sizeof(out)), "/base/add/x");
    cr_expect_str_eq(target_of(t, GET("/anything?q", "h"), out, sizeof(out)), "<none>");
    cr_expect_str_eq(target_of(t, GET("/v1/abcdefgh", "h"), out, 9), "/abcdefgh");
    cr_expect_str_eq(target_of(t, GET("/v1/abcdefgh", "h"), out, 8), "<too long>");
    cr_expect_str_eq(target_of(t, GET("/v1/a?q=12345", "h"), out, 9), "<too long>");
    lv_route_table_destroy(t);
}

Test(route, rewrite_from_captures)
{
    struct builder b = {0};
    struct lv_route *r = b_add(&b, "rw");
    r_regex(r, "^/api/v1/(.*)$");
    r->rewrite = tmpl("/v2/$1", 1);
    r = b_add(&b, "fixed");
    r_path(r, LV_RPATH_EXACT, "/old");
    r->rewrite = tmpl("/new", -1);
    struct lv_route_table *t = b_build(&b);
    char out[64];
    cr_expect_str_eq(target_of(t, GET("/api/v1/a/b?x=1", "h"), out, sizeof(out)), "/v2/a/b?x=1");
    cr_expect_str_eq(target_of(t, GET("/api/v1/", "h"), out, sizeof(out)), "/v2/");
    cr_expect_str_eq(target_of(t, GET("/old", "h"), out, sizeof(out)), "/new");
    lv_route_table_destroy(t);
}

static const char *location_of(const struct lv_route_table *t, const char *raw, char *out,
                               size_t cap)
{
    struct rq q;
    rq_parse(&q, raw);
    struct lv_route_hit hit;
    cr_assert_not_null(lv_route_match(t, &q.req, scratch, &hit), "%s", raw);
    struct lv_template_env env;
    lv_route_env_init(&env, &q.req, &hit);
    env.vars[LV_TVAR_SCHEME] = (struct lv_str){"https", 5};
    ssize_t n = lv_route_location(hit.route, &q.req, &env, out, cap);
    rq_dispose(&q);
    if (n < 0) return "<too long>";
    out[n] = '\0';
    return out;
}

Test(route, redirect_location)
{
    struct builder b = {0};
    struct lv_route *r = b_add(&b, "old");
    r_regex(r, "^/old/(.*)$");
    r->action = LV_ROUTE_REDIRECT;
    r->status = 301;
    r->location = tmpl("/new/$1", 1);
    r->keep_query = true;
    r = b_add(&b, "https");
    r_path(r, LV_RPATH_PREFIX, "/secure");
    r->action = LV_ROUTE_REDIRECT;
    r->location = tmpl("${scheme}://${host}${path}", -1);
    r->keep_query = false;
    r = b_add(&b, "own-query");
    r_path(r, LV_RPATH_EXACT, "/q");
    r->action = LV_ROUTE_REDIRECT;
    r->location = tmpl("/search?from=q", -1);
    r->keep_query = true;
    struct lv_route_table *t = b_build(&b);
    char out[64];
    cr_expect_str_eq(location_of(t, GET("/old/a/b", "h"), out, sizeof(out)), "/new/a/b");
    cr_expect_str_eq(location_of(t, GET("/old/a?x=1", "h"), out, sizeof(out)), "/new/a?x=1");
    cr_expect_str_eq(location_of(t, GET("/old/a?", "h"), out, sizeof(out)), "/new/a");
    cr_expect_str_eq(location_of(t, GET("/secure/x?y", "Ex.com:8080"), out, sizeof(out)),
                     "https://ex.com/secure/x");
    cr_expect_str_eq(location_of(t, GET("/q?x=1", "h"), out, sizeof(out)), "/search?from=q");
    cr_expect_str_eq(location_of(t, GET("/old/abc?x=1", "h"), out, 12), "/new/abc?x=1");
    cr_expect_str_eq(location_of(t, GET("/old/abc?x=1", "h"), out, 11), "<too long>");
    cr_expect_str_eq(location_of(t, GET("/old/abcdefgh", "h"), out, 8), "<too long>");
    lv_route_table_destroy(t);
}

/* --- bounded regex effort ---------------------------------------------------------------- */

Test(route, a_catastrophic_regex_gives_up_and_does_not_match)
{
    struct builder b = {0};
    r_regex(b_add(&b, "slow"), "^/(a+)+$");
    b_add(&b, "rest");
    struct lv_route_table *t = b_build(&b);
    char raw[512];
    char path[200];
    memset(path, 'a', sizeof(path));
    path[0] = '/';
    path[sizeof(path) - 2] = '!';
    path[sizeof(path) - 1] = '\0';
    snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", path);
    cr_expect_str_eq(route_for(t, raw), "rest");
    lv_route_table_destroy(t);
}

/* --- shadowing --------------------------------------------------------------------------- */

static struct lv_route *covered_pair(struct builder *b)
{
    b_add(b, "a");
    b_add(b, "b");
    return b->routes;
}

Test(route, covers)
{
    struct builder b = {0};
    struct lv_route *r = covered_pair(&b);
    /* A catch-all covers everything. */
    r_path(&r[1], LV_RPATH_PREFIX, "/x");
    r_host(&r[1], "a.test");
    cr_expect(lv_route_covers(&r[0], &r[1]));
    cr_expect_not(lv_route_covers(&r[1], &r[0]));
    r_path(&r[0], LV_RPATH_PREFIX, "/");
    cr_expect(lv_route_covers(&r[0], &r[1]));
    lv_route_dispose(&r[0]);
    r[0].name = strdup("a");
    /* Prefixes: on segment boundaries. */
    r_path(&r[0], LV_RPATH_PREFIX, "/x/");
    cr_expect_not(lv_route_covers(&r[0], &r[1])); /* "/x" is not under "/x/" */
    free(r[0].path);
    r_path(&r[0], LV_RPATH_PREFIX, "/xy");
    cr_expect_not(lv_route_covers(&r[0], &r[1]));
    /* Hosts: a wildcard covers its names, not the bare domain. */
    free(r[0].path);
    r_path(&r[0], LV_RPATH_PREFIX, "/x");
    r_host(&r[0], "*.test");
    cr_expect(lv_route_covers(&r[0], &r[1]));
    free(r[1].hosts[0]);
    r[1].hosts[0] = strdup("test");
    cr_expect_not(lv_route_covers(&r[0], &r[1]));
    free(r[1].hosts[0]);
    r[1].hosts[0] = strdup("*.a.test");
    cr_expect(lv_route_covers(&r[0], &r[1]));
    /* Methods: a's set must hold b's. */
    r_method(&r[0], HTTP_GET);
    cr_expect_not(lv_route_covers(&r[0], &r[1]));
    r_method(&r[1], HTTP_GET);
    cr_expect(lv_route_covers(&r[0], &r[1]));
    r_method(&r[1], HTTP_POST);
    cr_expect_not(lv_route_covers(&r[0], &r[1]));
    lv_route_dispose(&r[0]);
    lv_route_dispose(&r[1]);
    free(b.routes);
}

Test(route, covers_conditions_and_regexes)
{
    struct builder b = {0};
    struct lv_route *r = covered_pair(&b);
    /* b has more conditions than a: a still covers it. */
    r_cond(&r[0], true, "upgrade", LV_RCOND_PRESENT, NULL, false);
    r_cond(&r[1], true, "Upgrade", LV_RCOND_EQUAL, "websocket", false);
    r_cond(&r[1], false, "v", LV_RCOND_EQUAL, "1", false);
    cr_expect(lv_route_covers(&r[0], &r[1]));
    cr_expect_not(lv_route_covers(&r[1], &r[0]));
    /* A query condition in a that b lacks: not covered. */
    r_cond(&r[0], false, "v", LV_RCOND_EQUAL, "2", false);
    cr_expect_not(lv_route_covers(&r[0], &r[1]));
    lv_route_dispose(&r[0]);
    lv_route_dispose(&r[1]);
    /* Regexes are never compared: conservative. */
    r[0].name = strdup("a");
    r[1].name = strdup("b");
    r_regex(&r[0], "^/");
    r_regex(&r[1], "^/");
    cr_expect_not(lv_route_covers(&r[0], &r[1]));
    lv_route_dispose(&r[0]);
    r[0].name = strdup("a");
    cr_expect(lv_route_covers(&r[0], &r[1])); /* no condition covers a regex */
    lv_route_dispose(&r[0]);
    lv_route_dispose(&r[1]);
    free(b.routes);
}

Test(route, host_patterns)
{
    const char *good[] = {"example.com", "a",         "a-b.c_d.example", "*.example.com",
                          "*.a",         "127.0.0.1", "[::1]",           "[2001:db8::1]"};
    const char *bad[] = {"",   "*",  "*.",  "*example.com", "a.*.com", "Example.com", "a..b",
                         ".a", "a.", "a b", "[::1",         "[zz]",    "a:80",        "*.*.a"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_expect(lv_route_host_pattern_ok(good[i]), "%s", good[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_not(lv_route_host_pattern_ok(bad[i]), "%s", bad[i]);
}

/* --- threads ------------------------------------------------------------------------------ */

struct worker_arg {
    const struct lv_route_table *t;
    int mismatches;
};

static void *worker(void *p)
{
    struct worker_arg *a = p;
    struct lv_route_scratch *s = lv_route_scratch_create();
    static const struct {
        const char *path, *host, *want;
    } cases[] = {
        {"/old/x", "h", "old"},
        {"/api/v", "api.test", "api"},
        {"/z", "q.test", "wild"},
        {"/z", "other", "<none>"},
    };
    for (int i = 0; i < 20000; i++) {
        int k = i % 4;
        struct lv_route_req req = {.method = HTTP_GET};
        req.path = cases[k].path;
        req.path_len = strlen(cases[k].path);
        req.host = cases[k].host;
        req.host_len = strlen(cases[k].host);
        struct lv_route_hit hit;
        const struct lv_route *r = lv_route_match(a->t, &req, s, &hit);
        if (strcmp(r ? r->name : "<none>", cases[k].want) != 0) a->mismatches++;
    }
    lv_route_scratch_destroy(s);
    return NULL;
}

Test(route, workers_match_one_table_at_once)
{
    struct builder b = {0};
    r_regex(b_add(&b, "old"), "^/old/(.*)$");
    struct lv_route *r = b_add(&b, "api");
    r_host(r, "api.test");
    r_path(r, LV_RPATH_PREFIX, "/api");
    r_host(b_add(&b, "wild"), "*.test");
    struct lv_route_table *t = b_build(&b);
    pthread_t th[4];
    struct worker_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct worker_arg){t, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(args[i].mismatches, 0, "thread %d", i);
    }
    lv_route_table_destroy(t);
}
