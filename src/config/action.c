/*
 * The action of a route in the configuration (config/routes_read.h): path
 * rewrites, header edits, redirects and direct answers (respond, and
 * no_route), their templates compiled against the route's path_regex.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/routes_read.h"
#include "http/check.h"

struct edit_yaml {
    yaml_node_t *set, *add, *remove;
};

struct redirect_yaml {
    uint64_t status;
    yaml_node_t *location;
    bool keep_query;
};

struct respond_yaml {
    uint64_t status;
    yaml_node_t *body;
    char *content_type;
};

#define K(key, type, member, aux)                                                                  \
    {                                                                                              \
        key, lv_cfg_keep, offsetof(type, member), 0, 0, aux                                        \
    }

const struct lv_cfg_field lv_cfg_edit_fields[] = {
    K("set", struct edit_yaml, set, NULL),
    K("add", struct edit_yaml, add, NULL),
    K("remove", struct edit_yaml, remove, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

const struct lv_cfg_field lv_cfg_redirect_fields[] = {
    {"status", lv_cfg_uint, offsetof(struct redirect_yaml, status), 301, 308, NULL},
    K("location", struct redirect_yaml, location, NULL),
    {"keep_query", lv_cfg_bool, offsetof(struct redirect_yaml, keep_query), 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

const struct lv_cfg_field lv_cfg_respond_fields[] = {
    {"status", lv_cfg_uint, offsetof(struct respond_yaml, status), 200, 599, NULL},
    K("body", struct respond_yaml, body, NULL),
    {"content_type", lv_cfg_string, offsetof(struct respond_yaml, content_type), 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

/* --- actions ----------------------------------------------------------------------- */

/* A template scalar, with its error at the offending offset. */
static struct lv_template *template_of(struct lv_cfg_ctx *c, yaml_node_t *n, int groups)
{
    const char *s = lv_cfg_scalar(c, n, "a string");
    if (s == NULL) return NULL;
    char err[320];
    size_t off;
    struct lv_template *t = lv_template_create(s, strlen(s), groups, err, sizeof(err), &off);
    if (t == NULL) {
        char msg[1600];
        snprintf(msg, sizeof(msg), "'%.1024s': %s (at offset %zu)", s, err, off);
        lv_cfg_error_at(c, n, off, msg);
    }
    return t;
}

/* A path a route puts in front or takes off: "/x", normalized. */
static char *prefix_of(struct lv_cfg_ctx *c, yaml_node_t *n, size_t *len)
{
    struct lv_route tmp = {0};
    static const struct lv_cfg_field pf = {"", NULL, 0, LV_RPATH_PREFIX, 0, NULL};
    if (lv_cfg_route_path(c, n, &tmp, &pf) != 0) return NULL;
    *len = tmp.path_len;
    return tmp.path;
}

/* Header names a route may not set, add or remove: levee frames messages
 * itself, and Host has host_rewrite. */
static const char *const framing[] = {
    "connection",        "keep-alive", "proxy-connection", "te",   "trailer",
    "transfer-encoding", "upgrade",    "content-length",   "host", NULL,
};

static int field_name(struct lv_cfg_ctx *c, yaml_node_t *n, char **out)
{
    const char *s = lv_cfg_scalar(c, n, "a header name");
    if (s == NULL) return -1;
    if (!lv_cfg_is_token(s)) {
        lv_cfg_error(c, n, "'%s' is not a header name", s);
        return -1;
    }
    for (int i = 0; framing[i]; i++) {
        if (strcasecmp(s, framing[i]) == 0) {
            lv_cfg_error(c, n,
                         "'%s' cannot be changed by a route (levee writes the framing and "
                         "hop-by-hop fields itself; Host: use host_rewrite)",
                         s);
            return -1;
        }
    }
    *out = strdup(s);
    if (*out == NULL) {
        lv_cfg_error(c, n, "out of memory");
        return -1;
    }
    return 0;
}

static int read_field_map(struct lv_cfg_ctx *c, yaml_node_t *n, int groups,
                          struct lv_route_field **out, uint32_t *count)
{
    if (n->type != YAML_MAPPING_NODE) {
        lv_cfg_error(c, n, "expected a mapping of header names to values");
        return -1;
    }
    size_t npairs = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    if (npairs > LV_ROUTE_MAX_CONDS) {
        lv_cfg_error(c, n, "at most %d fields", LV_ROUTE_MAX_CONDS);
        return -1;
    }
    *out = calloc(npairs ? npairs : 1, sizeof(**out));
    if (*out == NULL) {
        lv_cfg_error(c, n, "out of memory");
        return -1;
    }
    int rc = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        struct lv_route_field *fld = &(*out)[(*count)++];
        if (field_name(c, lv_cfg_node(c, p->key), &fld->name) != 0) rc = -1;
        fld->value = template_of(c, lv_cfg_node(c, p->value), groups);
        if (fld->value == NULL) rc = -1;
    }
    return rc;
}

int lv_cfg_read_edits(struct lv_cfg_ctx *c, yaml_node_t *n, int groups, struct lv_route_fields *e)
{
    struct edit_yaml y = {0};
    if (lv_cfg_walk(c, n, lv_cfg_edit_fields, &y) != 0) return -1;
    int rc = 0;
    if (y.remove) {
        if (y.remove->type != YAML_SEQUENCE_NODE) {
            lv_cfg_error(c, y.remove, "expected a list of header names");
            rc = -1;
        } else {
            size_t count =
                (size_t)(y.remove->data.sequence.items.top - y.remove->data.sequence.items.start);
            e->remove = calloc(count ? count : 1, sizeof(*e->remove));
            if (e->remove == NULL) return -1;
            for (yaml_node_item_t *it = y.remove->data.sequence.items.start;
                 it < y.remove->data.sequence.items.top; it++) {
                if (field_name(c, lv_cfg_node(c, *it), &e->remove[e->nremove]) == 0)
                    e->nremove++;
                else
                    rc = -1;
            }
        }
    }
    if (y.set && read_field_map(c, y.set, groups, &e->set, &e->nset) != 0) rc = -1;
    if (y.add && read_field_map(c, y.add, groups, &e->add, &e->nadd) != 0) rc = -1;
    return rc;
}

/* strip_prefix, add_prefix, rewrite, host_rewrite. */
int lv_cfg_read_rewrites(struct lv_cfg_ctx *c, const struct route_yaml *y, struct lv_route *r,
                         int groups)
{
    int rc = 0;
    if (y->strip_prefix) {
        size_t old = lv_cfg_keypath_push(c, ".strip_prefix");
        r->strip_prefix = prefix_of(c, y->strip_prefix, &r->strip_len);
        if (r->strip_prefix == NULL) {
            rc = -1;
        } else if ((r->path_kind == LV_RPATH_PREFIX || r->path_kind == LV_RPATH_EXACT) &&
                   !(r->path_len >= r->strip_len &&
                     memcmp(r->path, r->strip_prefix, r->strip_len) == 0 &&
                     (r->path_len == r->strip_len || r->strip_prefix[r->strip_len - 1] == '/' ||
                      r->path[r->strip_len] == '/'))) {
            lv_cfg_error(c, y->strip_prefix,
                         "'%s' does not begin the paths this route matches ('%s'): nothing "
                         "would be stripped",
                         r->strip_prefix, r->path);
            rc = -1;
        }
        c->keypath[old] = '\0';
    }
    if (y->add_prefix) {
        size_t old = lv_cfg_keypath_push(c, ".add_prefix");
        r->add_prefix = prefix_of(c, y->add_prefix, &r->add_len);
        if (r->add_prefix == NULL) rc = -1;
        c->keypath[old] = '\0';
    }
    if (y->rewrite) {
        size_t old = lv_cfg_keypath_push(c, ".rewrite");
        r->rewrite = template_of(c, y->rewrite, groups);
        if (r->rewrite == NULL) {
            rc = -1;
        } else if (r->rewrite->nparts == 0 || r->rewrite->parts[0].kind != 0 ||
                   r->rewrite->text[r->rewrite->parts[0].off] != '/' ||
                   !lv_cfg_visible(r->rewrite->text, "?#")) {
            lv_cfg_error(c, y->rewrite,
                         "the new path starts with '/' and has no space, '?' or '#' (the "
                         "query is kept)");
            rc = -1;
        } else if (y->strip_prefix || y->add_prefix) {
            lv_cfg_error(c, y->rewrite,
                         "rewrite gives the whole path: it does not go with strip_prefix or "
                         "add_prefix");
            rc = -1;
        }
        c->keypath[old] = '\0';
    }
    if (y->host_rewrite) {
        size_t old = lv_cfg_keypath_push(c, ".host_rewrite");
        r->host_rewrite = lv_cfg_dup_scalar(c, y->host_rewrite, "a host[:port]", NULL);
        if (r->host_rewrite == NULL) {
            rc = -1;
        } else if (!lv_check_authority(r->host_rewrite, strlen(r->host_rewrite))) {
            lv_cfg_error(c, y->host_rewrite, "'%s' is not a host[:port]", r->host_rewrite);
            rc = -1;
        }
        c->keypath[old] = '\0';
    }
    return rc;
}

int lv_cfg_read_redirect(struct lv_cfg_ctx *c, yaml_node_t *n, struct lv_route *r, int groups)
{
    struct redirect_yaml y = {.status = 302, .keep_query = true};
    size_t old = lv_cfg_keypath_push(c, ".redirect");
    int rc = lv_cfg_walk(c, n, lv_cfg_redirect_fields, &y);
    if (rc == 0 && y.status != 301 && y.status != 302 && y.status != 303 && y.status != 307 &&
        y.status != 308) {
        lv_cfg_error(c, lv_cfg_map_get(c, n, "status"),
                     "%llu is not a redirect status (301, 302, 303, 307, 308)",
                     (unsigned long long)y.status);
        rc = -1;
    }
    if (rc == 0 && y.location == NULL) {
        lv_cfg_error(c, n, "a redirect needs a location");
        rc = -1;
    }
    if (rc == 0) {
        lv_cfg_keypath_push(c, ".location");
        const char *s = lv_cfg_scalar(c, y.location, "a URL or a path");
        if (s && (s[0] == '\0' || !lv_cfg_visible(s, ""))) {
            lv_cfg_error(c, y.location, "'%s': a location is not empty and has no spaces (%%20)",
                         s);
            rc = -1;
        } else if (s == NULL || (r->location = template_of(c, y.location, groups)) == NULL) {
            rc = -1;
        }
    }
    r->status = (uint16_t)y.status;
    r->keep_query = y.keep_query;
    c->keypath[old] = '\0';
    return rc;
}

/* respond: and no_route: (status, body, content_type). */
int lv_cfg_read_respond(struct lv_cfg_ctx *c, yaml_node_t *n, struct lv_route *r,
                        uint64_t default_status)
{
    struct respond_yaml y = {.status = default_status};
    int rc = lv_cfg_walk(c, n, lv_cfg_respond_fields, &y);
    r->status = (uint16_t)y.status;
    r->content_type = y.content_type;
    if (rc != 0) return -1;
    if (y.body) {
        const char *s = lv_cfg_scalar(c, y.body, "a string");
        if (s == NULL) return -1;
        size_t len = strlen(s);
        if (len > LV_ROUTE_BODY_MAX) {
            lv_cfg_error(c, y.body, "a body of %zu bytes: at most %d", len, LV_ROUTE_BODY_MAX);
            return -1;
        }
        if (len > 0 && (r->status == 204 || r->status == 304)) {
            lv_cfg_error(c, y.body, "a %u response has no body", r->status);
            return -1;
        }
        if ((r->body = strdup(s)) == NULL) return -1;
        r->body_len = len;
    }
    for (const char *p = r->content_type; p && *p; p++) {
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
            lv_cfg_error(c, lv_cfg_map_get(c, n, "content_type"), "'%s' is not a media type",
                         r->content_type);
            return -1;
        }
    }
    if (r->body_len && r->content_type == NULL &&
        (r->content_type = strdup("text/plain; charset=utf-8")) == NULL)
        return -1;
    return 0;
}
