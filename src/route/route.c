/*
 * Route tables (route/route.h): what one route's conditions mean, the
 * first-match walk over the index's candidates, and what a matched route
 * makes of the request (target, location).
 */
#include "route/route.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/head.h"
#include "route/index.h"
#include "route/regex.h"

_Static_assert(LV_ROUTE_MAX_CAPTURES == LV_REGEX_MAX_CAPTURES, "one capture limit");

struct lv_route_scratch {
    pcre2_match_data *md;
};

static void conds_free(struct lv_route_cond *c, uint32_t n)
{
    for (uint32_t i = 0; c && i < n; i++) {
        free(c[i].name);
        free(c[i].value);
        lv_regex_destroy(c[i].re);
    }
    free(c);
}

static void field_list_free(struct lv_route_field *f, uint32_t n)
{
    for (uint32_t i = 0; f && i < n; i++) {
        free(f[i].name);
        lv_template_destroy(f[i].value);
    }
    free(f);
}

static void fields_dispose(struct lv_route_fields *f)
{
    for (uint32_t i = 0; f->remove && i < f->nremove; i++)
        free(f->remove[i]);
    free(f->remove);
    field_list_free(f->set, f->nset);
    field_list_free(f->add, f->nadd);
}

void lv_route_dispose(struct lv_route *r)
{
    free(r->name);
    for (uint32_t i = 0; r->hosts && i < r->nhosts; i++)
        free(r->hosts[i]);
    free(r->hosts);
    free(r->path);
    lv_regex_destroy(r->path_re);
    conds_free(r->headers, r->nheaders);
    conds_free(r->query, r->nquery);
    free(r->pool_name);
    free(r->strip_prefix);
    free(r->add_prefix);
    lv_template_destroy(r->rewrite);
    free(r->host_rewrite);
    fields_dispose(&r->request_fields);
    fields_dispose(&r->response_fields);
    lv_template_destroy(r->location);
    free(r->body);
    free(r->content_type);
    memset(r, 0, sizeof(*r));
}

struct lv_route_table *lv_route_table_create(struct lv_route *routes, uint32_t n)
{
    assert(n <= LV_ROUTE_MAX);
    struct lv_route_table *t = calloc(1, sizeof(*t));
    if (t == NULL) {
        for (uint32_t i = 0; i < n; i++)
            lv_route_dispose(&routes[i]);
        free(routes);
        return NULL;
    }
    t->routes = routes;
    t->n = n;
    t->index = lv_route_index_create(routes, n);
    if (t->index == NULL) {
        lv_route_table_destroy(t);
        return NULL;
    }
    return t;
}

void lv_route_table_destroy(struct lv_route_table *t)
{
    if (t == NULL) return;
    lv_route_index_destroy(t->index);
    for (uint32_t i = 0; i < t->n; i++)
        lv_route_dispose(&t->routes[i]);
    free(t->routes);
    free(t);
}

struct lv_route_scratch *lv_route_scratch_create(void)
{
    struct lv_route_scratch *s = calloc(1, sizeof(*s));
    if (s == NULL) return NULL;
    s->md = lv_regex_md_create();
    if (s->md == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

void lv_route_scratch_destroy(struct lv_route_scratch *s)
{
    if (s == NULL) return;
    lv_regex_md_destroy(s->md);
    free(s);
}

int lv_route_req_init(struct lv_route_req *req, uint8_t method, const char *host, size_t host_len,
                      const char *target, size_t target_len, const struct lv_head *head,
                      char *path_buf, char *host_buf)
{
    size_t plen;
    memset(req, 0, sizeof(*req));
    req->method = method;
    req->head = head;
    lv_target_split(target, target_len, &plen, &req->query, &req->query_len);
    ssize_t n = lv_path_normalize(target, plen, path_buf);
    if (n < 0) return -1;
    req->path = path_buf;
    req->path_len = (size_t)n;
    ssize_t h = lv_route_host(host, host_len, host_buf);
    if (h > 0) {
        req->host = host_buf;
        req->host_len = (size_t)h;
    }
    return 0;
}

/* --- one route's conditions ------------------------------------------------------ */

static bool host_matches(const struct lv_route *r, const char *host, size_t n)
{
    if (host == NULL) return false;
    for (uint32_t i = 0; i < r->nhosts; i++) {
        const char *p = r->hosts[i];
        size_t m = strlen(p);
        if (p[0] == '*') {
            /* "*.example.com": at least one character before ".example.com" */
            if (n > m - 1 && memcmp(host + n - (m - 1), p + 1, m - 1) == 0) return true;
        } else if (m == n && memcmp(p, host, n) == 0) {
            return true;
        }
    }
    return false;
}

/* path_prefix on segment boundaries: "/api" matches /api, /api/ and
 * /api/x, never /apix; "/api/" matches /api/ and /api/x. */
static bool prefix_matches(const char *pre, size_t m, const char *path, size_t n)
{
    return n >= m && memcmp(path, pre, m) == 0 && (n == m || pre[m - 1] == '/' || path[m] == '/');
}

static bool value_equals(const struct lv_route_cond *c, const char *v, size_t n)
{
    if (n != c->value_len) return false;
    return c->ignore_case ? strncasecmp(v, c->value, n) == 0 : memcmp(v, c->value, n) == 0;
}

/* One value against an equal or regex condition. */
static bool value_matches(const struct lv_route_cond *c, const char *v, size_t n,
                          pcre2_match_data *md)
{
    if (c->kind == LV_RCOND_EQUAL) return value_equals(c, v, n);
    return lv_regex_match(c->re, v, n, md) == 1;
}

static bool header_cond(const struct lv_route_cond *c, const struct lv_head *h,
                        pcre2_match_data *md)
{
    bool found = false;
    for (uint32_t i = 0; h && i < h->nfields; i++) {
        const struct lv_hfield *f = &h->fields[i];
        if (!lv_hfield_is(h, f, c->name, c->name_len)) continue;
        found = true;
        if (c->kind == LV_RCOND_PRESENT) return true;
        if (c->kind == LV_RCOND_ABSENT) return false;
        if (value_matches(c, lv_head_str(h, f->value), f->value_len, md)) return true;
    }
    return c->kind == LV_RCOND_ABSENT && !found;
}

static bool query_cond(const struct lv_route_cond *c, const char *q, size_t n, pcre2_match_data *md)
{
    bool found = false;
    for (size_t i = 0; q && i <= n;) {
        const char *amp = memchr(q + i, '&', n - i);
        size_t end = amp ? (size_t)(amp - q) : n;
        const char *eq = memchr(q + i, '=', end - i);
        size_t name_end = eq ? (size_t)(eq - q) : end;
        if (name_end - i == c->name_len && memcmp(q + i, c->name, c->name_len) == 0) {
            found = true;
            if (c->kind == LV_RCOND_PRESENT) return true;
            if (c->kind == LV_RCOND_ABSENT) return false;
            size_t vstart = eq ? name_end + 1 : end;
            if (value_matches(c, q + vstart, end - vstart, md)) return true;
        }
        i = end + 1;
    }
    return c->kind == LV_RCOND_ABSENT && !found;
}

/* Conditions of one kind: regexes in a second pass, after every cheap one. */
static bool conds_hold(const struct lv_route_cond *c, uint32_t n, const struct lv_route_req *req,
                       bool headers, bool regex, pcre2_match_data *md)
{
    for (uint32_t i = 0; i < n; i++) {
        if ((c[i].kind == LV_RCOND_REGEX) != regex) continue;
        bool ok = headers ? header_cond(&c[i], req->head, md)
                          : query_cond(&c[i], req->query, req->query_len, md);
        if (!ok) return false;
    }
    return true;
}

static bool route_matches(const struct lv_route *r, const struct lv_route_req *req,
                          pcre2_match_data *md, struct lv_route_hit *hit)
{
    if (r->methods && (req->method >= 64 || !((r->methods >> req->method) & 1))) return false;
    if (r->nhosts && !host_matches(r, req->host, req->host_len)) return false;
    if (r->path_kind == LV_RPATH_PREFIX &&
        !prefix_matches(r->path, r->path_len, req->path, req->path_len))
        return false;
    if (r->path_kind == LV_RPATH_EXACT &&
        (req->path_len != r->path_len || memcmp(req->path, r->path, r->path_len) != 0))
        return false;
    if (!conds_hold(r->headers, r->nheaders, req, true, false, md) ||
        !conds_hold(r->query, r->nquery, req, false, false, md))
        return false;
    hit->npairs = 0;
    if (r->path_kind == LV_RPATH_REGEX) {
        if (lv_regex_match(r->path_re, req->path, req->path_len, md) != 1) return false;
        /* Kept before a header regex reuses md. */
        uint32_t pairs = pcre2_get_ovector_count(md);
        uint32_t groups = r->path_re->ngroups + 1;
        hit->npairs = groups < pairs ? groups : pairs;
        memcpy(hit->ovector, pcre2_get_ovector_pointer(md), 2 * hit->npairs * sizeof(size_t));
    }
    return conds_hold(r->headers, r->nheaders, req, true, true, md) &&
           conds_hold(r->query, r->nquery, req, false, true, md);
}

static const struct lv_route *found(const struct lv_route_table *t, uint32_t i,
                                    struct lv_route_hit *hit)
{
    hit->route = &t->routes[i];
    hit->index = i;
    return hit->route;
}

const struct lv_route *lv_route_match_linear(const struct lv_route_table *t,
                                             const struct lv_route_req *req,
                                             struct lv_route_scratch *s, struct lv_route_hit *hit)
{
    for (uint32_t i = 0; i < t->n; i++) {
        if (route_matches(&t->routes[i], req, s->md, hit)) return found(t, i, hit);
    }
    memset(hit, 0, sizeof(*hit));
    return NULL;
}

const struct lv_route *lv_route_match(const struct lv_route_table *t,
                                      const struct lv_route_req *req, struct lv_route_scratch *s,
                                      struct lv_route_hit *hit)
{
    struct lv_route_span spans[LV_ROUTE_SPANS];
    uint32_t at[LV_ROUTE_SPANS] = {0};
    int n =
        lv_route_index_lookup(t->index, req->host, req->host_len, req->path, req->path_len, spans);
    if (n < 0) return lv_route_match_linear(t, req, s, hit);
    /* Merge the sorted spans, smallest index first; a route that is in
     * several spans (several of its hosts match) is checked once. */
    int64_t last = -1;
    for (;;) {
        int best = -1;
        for (int k = 0; k < n; k++) {
            if (at[k] < spans[k].n && (best < 0 || spans[k].ids[at[k]] < spans[best].ids[at[best]]))
                best = k;
        }
        if (best < 0) break;
        uint32_t i = spans[best].ids[at[best]++];
        if ((int64_t)i <= last) continue;
        last = i;
        if (route_matches(&t->routes[i], req, s->md, hit)) return found(t, i, hit);
    }
    memset(hit, 0, sizeof(*hit));
    return NULL;
}

/* --- actions --------------------------------------------------------------------- */

void lv_route_env_init(struct lv_template_env *env, const struct lv_route_req *req,
                       const struct lv_route_hit *hit)
{
    memset(env, 0, sizeof(*env));
    const struct lv_route *r = hit->route;
    env->vars[LV_TVAR_HOST] = (struct lv_str){req->host, req->host_len};
    env->vars[LV_TVAR_PATH] = (struct lv_str){req->path, req->path_len};
    env->vars[LV_TVAR_QUERY] = (struct lv_str){req->query, req->query_len};
    if (r) {
        env->vars[LV_TVAR_ROUTE] = (struct lv_str){r->name, r->name ? strlen(r->name) : 0};
        env->vars[LV_TVAR_POOL] =
            (struct lv_str){r->pool_name, r->pool_name ? strlen(r->pool_name) : 0};
    }
    env->subject = req->path;
    env->ovector = hit->ovector;
    env->npairs = hit->npairs;
}

/* Appends s[0..n) at *o; false when it does not fit. */
static bool put(char *out, size_t cap, size_t *o, const char *s, size_t n)
{
    if (n > cap - *o) return false;
    if (n) memcpy(out + *o, s, n);
    *o += n;
    return true;
}

static bool put_query(char *out, size_t cap, size_t *o, const struct lv_route_req *req)
{
    if (req->query == NULL) return true;
    return put(out, cap, o, "?", 1) && put(out, cap, o, req->query, req->query_len);
}

ssize_t lv_route_target(const struct lv_route *r, const struct lv_route_req *req,
                        const struct lv_template_env *env, char *out, size_t cap)
{
    if (r->action != LV_ROUTE_POOL || (!r->strip_prefix && !r->add_prefix && !r->rewrite)) return 0;
    size_t o = 0;
    if (r->rewrite) {
        ssize_t n = lv_template_expand(r->rewrite, env, out, cap);
        if (n < 0) return -1;
        o = (size_t)n;
        if (o == 0 && !put(out, cap, &o, "/", 1)) return -1;
        return put_query(out, cap, &o, req) ? (ssize_t)o : -1;
    }
    const char *p = req->path;
    size_t n = req->path_len;
    if (r->strip_prefix && prefix_matches(r->strip_prefix, r->strip_len, p, n)) {
        /* "/v1" off "/v1/x" leaves "/x"; off "/v1" leaves "" (sent as "/") */
        size_t cut = r->strip_len;
        if (cut > 0 && r->strip_prefix[cut - 1] == '/') cut--;
        p += cut;
        n -= cut;
    }
    if (r->add_prefix && !put(out, cap, &o, r->add_prefix, r->add_len)) return -1;
    if (n == 0 && !(o > 0 && out[o - 1] == '/')) {
        if (!put(out, cap, &o, "/", 1)) return -1;
    } else if (n > 0 && o > 0 && out[o - 1] == '/' && p[0] == '/') {
        if (!put(out, cap, &o, p + 1, n - 1)) return -1; /* "/api/" + "/x" */
    } else if (!put(out, cap, &o, p, n)) {
        return -1;
    }
    return put_query(out, cap, &o, req) ? (ssize_t)o : -1;
}

ssize_t lv_route_location(const struct lv_route *r, const struct lv_route_req *req,
                          const struct lv_template_env *env, char *out, size_t cap)
{
    assert(r->action == LV_ROUTE_REDIRECT && r->location);
    ssize_t n = lv_template_expand(r->location, env, out, cap);
    if (n < 0) return -1;
    size_t o = (size_t)n;
    if (r->keep_query && req->query && req->query_len > 0 && !r->location->has_query &&
        !memchr(out, '?', o) && !put_query(out, cap, &o, req))
        return -1;
    return (ssize_t)o;
}

/* --- shadowing ------------------------------------------------------------------- */

/* Does host pattern a match every host that pattern b matches? */
static bool pattern_covers(const char *a, const char *b)
{
    if (strcmp(a, b) == 0) return true;
    if (a[0] != '*') return false;
    size_t la = strlen(a) - 1, lb = strlen(b); /* a + 1: ".example.com" */
    const char *bs = b[0] == '*' ? b + 1 : b;
    if (b[0] == '*') lb--;
    /* b exact "x.example.com", or b "*.x.example.com" / "*.example.com"'s
     * own suffix: b's names all end with a's suffix after a label */
    if (b[0] == '*') return lb >= la && memcmp(bs + lb - la, a + 1, la) == 0;
    return lb > la && memcmp(bs + lb - la, a + 1, la) == 0;
}

static bool hosts_cover(const struct lv_route *a, const struct lv_route *b)
{
    if (a->nhosts == 0) return true;
    if (b->nhosts == 0) return false;
    for (uint32_t j = 0; j < b->nhosts; j++) {
        bool covered = false;
        for (uint32_t i = 0; i < a->nhosts && !covered; i++)
            covered = pattern_covers(a->hosts[i], b->hosts[j]);
        if (!covered) return false;
    }
    return true;
}

static bool path_covers(const struct lv_route *a, const struct lv_route *b)
{
    switch (a->path_kind) {
    case LV_RPATH_ANY: return true;
    case LV_RPATH_PREFIX:
        /* "/" takes every path but "*" (OPTIONS *): close enough to warn. */
        if (a->path_len == 1) return true;
        if (b->path_kind == LV_RPATH_EXACT)
            return prefix_matches(a->path, a->path_len, b->path, b->path_len);
        /* b's paths all start with b's prefix, so with a's when b's prefix
         * extends a's on a segment boundary */
        if (b->path_kind == LV_RPATH_PREFIX)
            return prefix_matches(a->path, a->path_len, b->path, b->path_len);
        return false;
    case LV_RPATH_EXACT:
        return b->path_kind == LV_RPATH_EXACT && a->path_len == b->path_len &&
               memcmp(a->path, b->path, a->path_len) == 0;
    case LV_RPATH_REGEX: return false; /* two patterns cannot be compared */
    }
    return false;
}

static bool same_cond(const struct lv_route_cond *x, const struct lv_route_cond *y, bool header)
{
    if (x->name_len != y->name_len) return false;
    if (header ? strncasecmp(x->name, y->name, x->name_len) != 0
               : memcmp(x->name, y->name, x->name_len) != 0)
        return false;
    if (x->kind == LV_RCOND_PRESENT) return y->kind != LV_RCOND_ABSENT; /* y needs one there */
    if (x->kind != y->kind) return false;
    if (x->kind == LV_RCOND_EQUAL)
        return y->value_len == x->value_len && (x->ignore_case || !y->ignore_case) &&
               (x->ignore_case ? strncasecmp(x->value, y->value, x->value_len) == 0
                               : memcmp(x->value, y->value, x->value_len) == 0);
    return x->kind == LV_RCOND_ABSENT; /* two regexes: cannot tell */
}

/* Every condition of a's is implied by one of b's. */
static bool conds_cover(const struct lv_route_cond *a, uint32_t na, const struct lv_route_cond *b,
                        uint32_t nb, bool header)
{
    for (uint32_t i = 0; i < na; i++) {
        bool implied = false;
        for (uint32_t j = 0; j < nb && !implied; j++)
            implied = same_cond(&a[i], &b[j], header);
        if (!implied) return false;
    }
    return true;
}

bool lv_route_covers(const struct lv_route *a, const struct lv_route *b)
{
    if (a->methods && (b->methods == 0 || (b->methods & ~a->methods) != 0)) return false;
    return hosts_cover(a, b) && path_covers(a, b) &&
           conds_cover(a->headers, a->nheaders, b->headers, b->nheaders, true) &&
           conds_cover(a->query, a->nquery, b->query, b->nquery, false);
}

bool lv_route_host_pattern_ok(const char *p)
{
    if (p[0] == '[') {
        size_t n = strlen(p);
        if (n < 3 || p[n - 1] != ']') return false;
        for (size_t i = 1; i + 1 < n; i++) {
            char c = p[i];
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == ':' || c == '.'))
                return false;
        }
        return true;
    }
    if (p[0] == '*') {
        if (p[1] != '.' || p[2] == '\0') return false;
        p += 2;
    }
    if (p[0] == '\0' || p[0] == '.') return false;
    for (const char *q = p; *q; q++) {
        char c = *q;
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            return false;
        if (c == '.' && (q[1] == '.' || q[1] == '\0')) return false;
    }
    return true;
}
