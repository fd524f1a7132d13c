/*
 * The match of a route in the configuration (config/routes_read.h): host
 * patterns, paths (checked to be in the normalized form requests are
 * matched in), regexes compiled with their errors at the offending column,
 * methods, and header and query conditions.
 */
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/routes_read.h"
#include "route/regex.h"

struct cond_yaml {
    yaml_node_t *present, *equal, *regex;
    bool ignore_case;
};

static int parse_hosts(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
static int parse_path_regex(struct lv_cfg_ctx *, yaml_node_t *, void *,
                            const struct lv_cfg_field *);
static int parse_methods(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
static int parse_conds(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);

#define K(key, type, member, aux)                                                                  \
    {                                                                                              \
        key, lv_cfg_keep, offsetof(type, member), 0, 0, aux                                        \
    }

static const struct lv_cfg_field cond_fields[] = {
    K("present", struct cond_yaml, present, NULL),
    K("equal", struct cond_yaml, equal, NULL),
    K("regex", struct cond_yaml, regex, NULL),
    {"ignore_case", lv_cfg_bool, offsetof(struct cond_yaml, ignore_case), 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

/* The match parsers write into the struct lv_route being read. */
const struct lv_cfg_field lv_cfg_match_fields[] = {
    {"host", parse_hosts, 0, 0, 0, NULL},
    {"path_prefix", lv_cfg_route_path, 0, LV_RPATH_PREFIX, 0, NULL},
    {"path_exact", lv_cfg_route_path, 0, LV_RPATH_EXACT, 0, NULL},
    {"path_regex", parse_path_regex, 0, 0, 0, NULL},
    {"methods", parse_methods, 0, 0, 0, NULL},
    {"headers", parse_conds, 0, 1, 0, cond_fields},
    {"query", parse_conds, 0, 0, 0, cond_fields},
    {NULL, NULL, 0, 0, 0, NULL},
};

/* --- small readers --------------------------------------------------------------- */

/* Reports an error at byte `off` of a scalar's text: exact for a scalar on
 * one line without escapes (a plain or quoted pattern, as one writes them);
 * at the scalar's start otherwise. */
void lv_cfg_error_at(struct lv_cfg_ctx *c, const yaml_node_t *n, size_t off, const char *msg)
{
    yaml_node_t at = *n;
    if (n->start_mark.line == n->end_mark.line && off <= (size_t)1 << 20) {
        bool quoted = n->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                      n->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
        at.start_mark.column += off + (quoted ? 1 : 0);
    }
    lv_cfg_error(c, &at, "%s", msg);
}

char *lv_cfg_dup_scalar(struct lv_cfg_ctx *c, yaml_node_t *n, const char *expected, size_t *len)
{
    const char *s = lv_cfg_scalar(c, n, expected);
    if (s == NULL) return NULL;
    char *d = strdup(s);
    if (d == NULL) lv_cfg_error(c, n, "out of memory");
    if (len) *len = strlen(s);
    return d;
}

static bool is_tchar(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

bool lv_cfg_is_token(const char *s)
{
    for (const char *p = s; *p; p++) {
        if (!is_tchar((unsigned char)*p)) return false;
    }
    return s[0] != '\0';
}

bool lv_cfg_visible(const char *s, const char *except)
{
    for (const char *p = s; *p; p++) {
        unsigned char ch = (unsigned char)*p;
        if (ch <= 0x20 || ch >= 0x7f || strchr(except, ch)) return false;
    }
    return true;
}

/* --- match ------------------------------------------------------------------------- */

static int parse_hosts(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                       const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_route *r = dst;
    yaml_node_item_t one = 0;
    yaml_node_item_t *first = &one, *last = &one + 1;
    if (n->type == YAML_SEQUENCE_NODE) {
        first = n->data.sequence.items.start;
        last = n->data.sequence.items.top;
    } else if (n->type != YAML_SCALAR_NODE) {
        lv_cfg_error(c, n, "expected a host or a list of hosts");
        return -1;
    }
    size_t count = (size_t)(last - first);
    if (count == 0 || count > LV_ROUTE_MAX_HOSTS) {
        lv_cfg_error(c, n, "%zu hosts: from 1 to %d (no host key: any host)", count,
                     LV_ROUTE_MAX_HOSTS);
        return -1;
    }
    r->hosts = calloc(count, sizeof(*r->hosts));
    if (r->hosts == NULL) {
        lv_cfg_error(c, n, "out of memory");
        return -1;
    }
    int rc = 0;
    for (yaml_node_item_t *it = first; it < last; it++) {
        yaml_node_t *item = n->type == YAML_SCALAR_NODE ? n : lv_cfg_node(c, *it);
        char *h = lv_cfg_dup_scalar(c, item, "a host name", NULL);
        if (h == NULL) {
            rc = -1;
            continue;
        }
        for (char *p = h; *p; p++)
            *p = (*p >= 'A' && *p <= 'Z') ? (char)(*p - 'A' + 'a') : *p;
        const char *close = h[0] == '[' ? strchr(h, ']') : NULL;
        if ((close && close[1] == ':') || (!close && h[0] != '[' && strchr(h, ':'))) {
            lv_cfg_error(c, item, "'%s': a host pattern has no port (a request's port is ignored)",
                         h);
            free(h);
            rc = -1;
        } else if (!lv_route_host_pattern_ok(h)) {
            lv_cfg_error(c, item,
                         "'%s' is not a host name, a *.domain wildcard or an IP address "
                         "(letters, digits, '-', '_', '.')",
                         h);
            free(h);
            rc = -1;
        } else {
            r->hosts[r->nhosts++] = h;
        }
    }
    return rc;
}

static int path_taken(struct lv_cfg_ctx *c, yaml_node_t *n, const struct lv_route *r)
{
    if (r->path_kind == LV_RPATH_ANY) return 0;
    lv_cfg_error(c, n, "a route takes one of path_prefix, path_exact and path_regex");
    return -1;
}

int lv_cfg_route_path(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    struct lv_route *r = dst;
    if (path_taken(c, n, r) != 0) return -1;
    const char *s = lv_cfg_scalar(c, n, "a path");
    if (s == NULL) return -1;
    size_t len = strlen(s);
    if (s[0] != '/' || len > LV_ROUTE_LOCATION_MAX) {
        lv_cfg_error(c, n, "'%s': a path starts with '/' (and has at most %d bytes)", s,
                     LV_ROUTE_LOCATION_MAX);
        return -1;
    }
    char *norm = malloc(len + 1);
    if (norm == NULL) {
        lv_cfg_error(c, n, "out of memory");
        return -1;
    }
    ssize_t m = lv_path_normalize(s, len, norm);
    if (m < 0) {
        lv_cfg_error(c, n, "'%s': '%%' must be followed by two hex digits", s);
        free(norm);
        return -1;
    }
    norm[m] = '\0';
    if ((size_t)m != len || memcmp(norm, s, len) != 0) {
        lv_cfg_error(c, n,
                     "'%s' is not in normalized form: requests are matched once normalized "
                     "(docs/routes.md), so it would never match; write '%s'",
                     s, norm);
        free(norm);
        return -1;
    }
    r->path = norm;
    r->path_len = (size_t)m;
    r->path_kind = (enum lv_route_path_kind)f->min;
    return 0;
}

/* Compiles a regex scalar; errors with PCRE2's message at its offset. */
struct lv_regex *lv_cfg_regex(struct lv_cfg_ctx *c, yaml_node_t *n)
{
    const char *s = lv_cfg_scalar(c, n, "a regular expression");
    if (s == NULL) return NULL;
    char err[256];
    size_t off;
    struct lv_regex *re = lv_regex_create(s, strlen(s), err, sizeof(err), &off);
    if (re == NULL) {
        char msg[1600];
        snprintf(msg, sizeof(msg), "bad regular expression '%s': %s (at offset %zu)", s, err, off);
        lv_cfg_error_at(c, n, off, msg);
    }
    return re;
}

static int parse_path_regex(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                            const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_route *r = dst;
    if (path_taken(c, n, r) != 0) return -1;
    r->path_re = lv_cfg_regex(c, n);
    if (r->path_re == NULL) return -1;
    r->path_kind = LV_RPATH_REGEX;
    /* The pattern as written, for the admin API (never matched on). */
    r->path = strdup((const char *)n->data.scalar.value);
    if (r->path == NULL) return -1;
    r->path_len = strlen(r->path);
    return 0;
}

static const struct {
    uint8_t id;
    const char *name;
} methods[] = {
#define XX(num, name, string) {num, #string},
    HTTP_METHOD_MAP(XX)
#undef XX
};

static int parse_methods(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                         const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_route *r = dst;
    yaml_node_item_t one = 0;
    yaml_node_item_t *first = &one, *last = &one + 1;
    if (n->type == YAML_SEQUENCE_NODE) {
        first = n->data.sequence.items.start;
        last = n->data.sequence.items.top;
    } else if (n->type != YAML_SCALAR_NODE) {
        lv_cfg_error(c, n, "expected a method or a list of methods");
        return -1;
    }
    if (first == last) {
        lv_cfg_error(c, n, "an empty list would match no request (no methods key: any method)");
        return -1;
    }
    int rc = 0;
    for (yaml_node_item_t *it = first; it < last; it++) {
        yaml_node_t *item = n->type == YAML_SCALAR_NODE ? n : lv_cfg_node(c, *it);
        const char *s = lv_cfg_scalar(c, item, "a method");
        if (s == NULL) {
            rc = -1;
            continue;
        }
        size_t i = 0;
        while (i < sizeof(methods) / sizeof(methods[0]) && strcmp(methods[i].name, s) != 0)
            i++;
        if (i == sizeof(methods) / sizeof(methods[0])) {
            lv_cfg_error(c, item,
                         "unknown method '%s' (methods are upper case: GET, HEAD, POST, PUT, "
                         "DELETE, PATCH, OPTIONS, ...)",
                         s);
            rc = -1;
            continue;
        }
        _Static_assert(sizeof(((struct lv_route *)0)->methods) * 8 > 46, "a bit per method");
        r->methods |= 1ull << methods[i].id;
    }
    return rc;
}

/* One header or query condition: `Name: value` (equal) or `Name: {present:
 * bool | equal: text | regex: pattern, ignore_case: bool}`. */
static int parse_cond(struct lv_cfg_ctx *c, yaml_node_t *k, yaml_node_t *v, bool header,
                      struct lv_route_cond *out)
{
    const char *name = lv_cfg_scalar(c, k, header ? "a header name" : "a parameter name");
    if (name == NULL) return -1;
    if (header ? !lv_cfg_is_token(name) : (!lv_cfg_visible(name, "&=#") || name[0] == '\0')) {
        lv_cfg_error(c, k,
                     header ? "'%s' is not a header name (letters, digits and !#$%%&'*+-.^_`|~)"
                            : "'%s' is not a query parameter name as a target carries it "
                              "(visible characters but & = #; percent-encoded)",
                     name);
        return -1;
    }
    out->name = strdup(name);
    out->name_len = strlen(name);
    if (out->name == NULL) {
        lv_cfg_error(c, k, "out of memory");
        return -1;
    }
    struct cond_yaml y = {0};
    yaml_node_t *equal = NULL;
    if (v->type == YAML_SCALAR_NODE && !lv_cfg_is_null(v)) {
        equal = v;
    } else if (v->type == YAML_MAPPING_NODE) {
        if (lv_cfg_walk(c, v, cond_fields, &y) != 0) return -1;
        int kinds = (y.present != NULL) + (y.equal != NULL) + (y.regex != NULL);
        if (kinds != 1) {
            lv_cfg_error(c, v, "one of present, equal and regex (%d given)", kinds);
            return -1;
        }
        if (y.ignore_case && y.equal == NULL) {
            lv_cfg_error(c, lv_cfg_map_get(c, v, "ignore_case"),
                         "ignore_case goes with equal (a regex says (?i) itself)");
            return -1;
        }
        equal = y.equal;
    } else {
        lv_cfg_error(c, lv_cfg_is_null(v) ? k : v,
                     "expected a value, or {present: true|false}, {equal: ...} or {regex: ...}");
        return -1;
    }
    if (y.present) {
        bool present;
        static const struct lv_cfg_field bf = {"present", lv_cfg_bool, 0, 0, 0, NULL};
        if (lv_cfg_bool(c, y.present, &present, &bf) != 0) return -1;
        out->kind = present ? LV_RCOND_PRESENT : LV_RCOND_ABSENT;
        return 0;
    }
    if (y.regex) {
        out->kind = LV_RCOND_REGEX;
        out->re = lv_cfg_regex(c, y.regex);
        return out->re ? 0 : -1;
    }
    out->kind = LV_RCOND_EQUAL;
    out->ignore_case = y.ignore_case;
    out->value = lv_cfg_dup_scalar(c, equal, "a value", &out->value_len);
    if (out->value == NULL) return -1;
    for (const char *p = out->value; *p; p++) {
        if (((unsigned char)*p < 0x20 && *p != '\t') || *p == 0x7f) {
            lv_cfg_error(c, equal, "a value has no control characters");
            return -1;
        }
    }
    if (!header && !lv_cfg_visible(out->value, "&#") && out->value[0] != '\0') {
        lv_cfg_error(c, equal,
                     "'%s' is not a query value as a target carries it (visible characters but "
                     "& #; percent-encoded)",
                     out->value);
        return -1;
    }
    return 0;
}

/* headers: (f->min 1) or query: (f->min 0) of the route at dst. */
static int parse_conds(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                       const struct lv_cfg_field *f)
{
    struct lv_route *r = dst;
    bool header = f->min == 1;
    struct lv_route_cond **conds = header ? &r->headers : &r->query;
    uint32_t *count = header ? &r->nheaders : &r->nquery;
    if (n->type != YAML_MAPPING_NODE) {
        lv_cfg_error(c, n, "expected a mapping of names to conditions (Name: value)");
        return -1;
    }
    size_t npairs = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (npairs == 0 || npairs > LV_ROUTE_MAX_CONDS) {
        lv_cfg_error(c, n, "%zu conditions: from 1 to %d", npairs, LV_ROUTE_MAX_CONDS);
        return -1;
    }
    *conds = calloc(npairs, sizeof(**conds));
    if (*conds == NULL) {
        lv_cfg_error(c, n, "out of memory");
        return -1;
    }
    int rc = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = lv_cfg_node(c, p->key), *v = lv_cfg_node(c, p->value);
        size_t old = lv_cfg_keypath_push(
            c, ".%s", k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?");
        /* Kept even when broken, so that what it holds is freed. */
        if (parse_cond(c, k, v, header, &(*conds)[*count]) != 0) rc = -1;
        (*count)++;
        c->keypath[old] = '\0';
    }
    return rc;
}
