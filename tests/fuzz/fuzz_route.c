/*
 * libFuzzer target: routing (route/path.c, route/route.c, route/index.c).
 * The input's first line is a Host value, the rest a request target. The
 * path is normalized into a heap buffer of the target's exact size (ASan
 * catches a write past it) and must be in normal form: shorter or as long,
 * starting with '/', idempotent, no "//", no "." or ".." segment, no escape
 * of an unreserved character, escapes in upper case. Then the request is
 * matched against a fixed table with the index and with a scan of every
 * route, which must agree, and a matched route's target and location are
 * built into buffers of a capped size.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/routes.h"
#include "route/route.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) __builtin_trap();                                                             \
    } while (0)

static const char table_yaml[] =
    "pools:\n"
    "  p: { backends: [{ id: a, url: \"http://127.0.0.1:8001\" }] }\n"
    "routes:\n"
    "  - { match: { host: a.test, path_prefix: /api/ }, pool: p, strip_prefix: /api }\n"
    "  - { match: { host: '*.b.test', path_exact: /x }, pool: p, add_prefix: /in }\n"
    "  - { match: { path_regex: '^/old/([^/]*)/(.*)$' }, redirect: { location: '/n/$2/$1' } }\n"
    "  - { match: { path_regex: '^/r/(.*)$' }, pool: p, rewrite: '/$1/$1/$1' }\n"
    "  - { match: { path_prefix: /a/b/c, query: { k: { present: true } } }, pool: p }\n"
    "  - { match: { host: [c.test, '*.test'], path_prefix: / }, pool: p }\n"
    "  - { match: { path_exact: / }, respond: { body: hi } }\n";

static struct lv_config *cfg;
static struct lv_route_scratch *scratch;

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1; /* lower case is not normal form */
}

static bool unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static void check_normal(const char *p, size_t n)
{
    if (n == 1 && p[0] == '*') return;
    CHECK(n >= 1 && p[0] == '/');
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '/') {
            CHECK(i + 1 == n || p[i + 1] != '/');
            size_t end = i + 1;
            while (end < n && p[end] != '/')
                end++;
            size_t len = end - i - 1;
            CHECK(!(len == 1 && p[i + 1] == '.'));
            CHECK(!(len == 2 && p[i + 1] == '.' && p[i + 2] == '.'));
        } else if (p[i] == '%') {
            CHECK(i + 2 < n);
            int hi = hexval(p[i + 1]), lo = hexval(p[i + 2]);
            CHECK(hi >= 0 && lo >= 0);
            CHECK(!unreserved((unsigned char)(hi * 16 + lo)));
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cfg == NULL) {
        int nerr;
        cfg = lv_config_load_string("fuzz.yaml", table_yaml, sizeof(table_yaml) - 1, stderr, &nerr);
        scratch = lv_route_scratch_create();
        CHECK(cfg && scratch);
    }
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size);
    size_t host_len = nl ? (size_t)(nl - in) : 0;
    const char *target = nl ? nl + 1 : in;
    size_t tlen = size - (size_t)(target - in);
    if (tlen == 0) return 0;

    char *copy = malloc(tlen), *path = malloc(tlen), *again = malloc(tlen);
    char *host = malloc(host_len + 1);
    CHECK(copy && path && again && host);
    memcpy(copy, target, tlen);
    memcpy(host, in, host_len);
    char host_buf[LV_ROUTE_HOST_MAX];
    struct lv_route_req req;
    if (lv_route_req_init(&req, 1 /* GET */, host, host_len, copy, tlen, NULL, path, host_buf) ==
        0) {
        CHECK(req.path_len <= tlen);
        check_normal(req.path, req.path_len);
        ssize_t m = lv_path_normalize(req.path, req.path_len, again);
        CHECK(m == (ssize_t)req.path_len && memcmp(again, req.path, req.path_len) == 0);

        struct lv_route_hit hit, lin;
        const struct lv_route *r = lv_route_match(cfg->routing->table, &req, scratch, &hit);
        const struct lv_route *l = lv_route_match_linear(cfg->routing->table, &req, scratch, &lin);
        CHECK(r == l && r != NULL);
        CHECK(hit.npairs == lin.npairs);
        struct lv_template_env env;
        lv_route_env_init(&env, &req, &hit);
        char out[256];
        if (r->action == LV_ROUTE_POOL) {
            ssize_t k = lv_route_target(r, &req, &env, out, sizeof(out));
            CHECK(k <= (ssize_t)sizeof(out) && (k <= 0 || out[0] == '/'));
        } else if (r->action == LV_ROUTE_REDIRECT) {
            ssize_t k = lv_route_location(r, &req, &env, out, sizeof(out));
            CHECK(k <= (ssize_t)sizeof(out));
        }
    }
    free(copy);
    free(path);
    free(again);
    free(host);
    return 0;
}
