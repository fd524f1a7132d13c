/*
 * Route tables and requests for the route tests: a builder that adds
 * routes one call per condition (what the config loader produces), and a
 * request parsed from its raw head as the proxy parses it.
 */
#ifndef LV_TESTS_UNIT_ROUTE_ROUTE_FIXTURE_H
#define LV_TESTS_UNIT_ROUTE_ROUTE_FIXTURE_H

#include <criterion/criterion.h>
#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#include "http/check.h"
#include "route/regex.h"
#include "route/route.h"
#include "unit/http/head_fixture.h"

/* --- building tables ------------------------------------------------------------ */

struct builder {
    struct lv_route *routes;
    uint32_t n;
};

static inline struct lv_route *b_add(struct builder *b, const char *name)
{
    b->routes = realloc(b->routes, (b->n + 1) * sizeof(*b->routes));
    cr_assert_not_null(b->routes);
    struct lv_route *r = &b->routes[b->n];
    memset(r, 0, sizeof(*r));
    r->name = strdup(name);
    r->action = LV_ROUTE_POOL;
    r->pool = b->n++;
    r->pool_name = strdup(name);
    return r;
}

static inline void r_host(struct lv_route *r, const char *h)
{
    r->hosts = realloc(r->hosts, (r->nhosts + 1) * sizeof(char *));
    r->hosts[r->nhosts++] = strdup(h);
}

static inline void r_path(struct lv_route *r, enum lv_route_path_kind kind, const char *p)
{
    r->path_kind = kind;
    r->path = strdup(p);
    r->path_len = strlen(p);
}

static inline struct lv_regex *re_of(const char *pattern)
{
    char err[256];
    size_t off;
    struct lv_regex *re = lv_regex_create(pattern, strlen(pattern), err, sizeof(err), &off);
    cr_assert_not_null(re, "%s: %s", pattern, err);
    return re;
}

static inline void r_regex(struct lv_route *r, const char *pattern)
{
    r->path_kind = LV_RPATH_REGEX;
    r->path_re = re_of(pattern);
}

static inline void r_method(struct lv_route *r, llhttp_method_t m)
{
    r->methods |= 1ull << m;
}

/* A header (header true) or query condition; value is the regex for
 * LV_RCOND_REGEX. */
static inline void r_cond(struct lv_route *r, bool header, const char *name,
                          enum lv_route_cond_kind kind, const char *value, bool icase)
{
    struct lv_route_cond **v = header ? &r->headers : &r->query;
    uint32_t *n = header ? &r->nheaders : &r->nquery;
    *v = realloc(*v, (*n + 1) * sizeof(**v));
    struct lv_route_cond *c = &(*v)[(*n)++];
    memset(c, 0, sizeof(*c));
    c->name = strdup(name);
    c->name_len = strlen(name);
    c->kind = kind;
    c->ignore_case = icase;
    if (kind == LV_RCOND_EQUAL) {
        c->value = strdup(value);
        c->value_len = strlen(value);
    } else if (kind == LV_RCOND_REGEX) {
        c->re = re_of(value);
    }
}

static inline struct lv_route_table *b_build(struct builder *b)
{
    struct lv_route_table *t = lv_route_table_create(b->routes, b->n);
    cr_assert_not_null(t);
    b->routes = NULL;
    b->n = 0;
    return t;
}

/* --- requests ------------------------------------------------------------------- */

struct rq {
    struct head_fixture hf;
    char path[8192];
    char host[LV_ROUTE_HOST_MAX];
    struct lv_route_req req;
    int init_rc;
};

/* Parses raw (a whole request head) and prepares q->req as the proxy
 * would: Host, or an absolute-form target's authority. */
static inline void rq_parse(struct rq *q, const char *raw)
{
    fixture_init(&q->hf, HTTP_REQUEST, 16384, 100);
    q->hf.complete_rc = HPE_PAUSED;
    llhttp_errno_t err = fixture_feed_str(&q->hf, raw);
    cr_assert(err == HPE_OK || err == HPE_PAUSED, "parse error %s for\n%s", llhttp_errno_name(err),
              raw);
    cr_assert_eq(q->hf.heads, 1, "head not complete:\n%s", raw);
    struct lv_head *h = &q->hf.head;
    lv_head_classify(h, NULL, 0);
    const char *t = lv_head_str(h, h->target);
    size_t tlen = h->target_len;
    const char *host = NULL;
    size_t host_len = 0;
    size_t rest = lv_target_absolute(t, tlen, &host, &host_len);
    if (rest) {
        t += rest;
        tlen -= rest;
        if (tlen == 0) t = "/", tlen = 1;
    } else {
        const struct lv_hfield *f = LV_HEAD_FIND(h, "Host");
        if (f) {
            host = lv_head_str(h, f->value);
            host_len = f->value_len;
        }
    }
    cr_assert_lt(tlen, sizeof(q->path));
    q->init_rc =
        lv_route_req_init(&q->req, h->method, host, host_len, t, tlen, h, q->path, q->host);
}

static inline void rq_dispose(struct rq *q)
{
    fixture_dispose(&q->hf);
}

#endif
