/*
 * Routes in the configuration (config/routes.h): a route's table, what a
 * route inherits from its pool and the global keys, the implicit last
 * route, the route table built from them, and the checks that span routes
 * (unknown and unused pools, duplicate names, routes an earlier one
 * shadows). A route's match is read by match.c, its action by action.c.
 */
#include "config/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cache.h"
#include "config/routes_read.h"
#include "route/regex.h"

/* --- tables ---------------------------------------------------------------------- */

#define K(key, type, member, aux)                                                                  \
    {                                                                                              \
        key, lv_cfg_keep, offsetof(type, member), 0, 0, aux                                        \
    }

static const struct lv_cfg_field upgrade_fields[] = {
    {"allow", lv_cfg_strlist, offsetof(struct lv_route_cfg, upgrade_allow), 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

const struct lv_cfg_field lv_cfg_route_fields[] = {
    K("name", struct route_yaml, name, NULL),
    K("match", struct route_yaml, match, lv_cfg_match_fields),
    K("pool", struct route_yaml, pool, NULL),
    K("strip_prefix", struct route_yaml, strip_prefix, NULL),
    K("add_prefix", struct route_yaml, add_prefix, NULL),
    K("rewrite", struct route_yaml, rewrite, NULL),
    K("host_rewrite", struct route_yaml, host_rewrite, NULL),
    K("request_headers", struct route_yaml, request_headers, lv_cfg_edit_fields),
    K("response_headers", struct route_yaml, response_headers, lv_cfg_edit_fields),
    K("forwarded", struct route_yaml, forwarded, NULL),
    K("timeouts", struct route_yaml, timeouts, lv_cfg_upstream_timeout_fields),
    K("retry", struct route_yaml, retry, NULL),
    K("rate_limit", struct route_yaml, rate_limit, NULL),
    K("upgrade", struct route_yaml, upgrade, upgrade_fields),
    K("cache", struct route_yaml, cache, lv_cfg_route_cache_fields),
    K("redirect", struct route_yaml, redirect, lv_cfg_redirect_fields),
    K("respond", struct route_yaml, respond, lv_cfg_respond_fields),
    {NULL, NULL, 0, 0, 0, NULL},
};

int lv_cfg_later(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    (void)c, (void)n, (void)dst, (void)f;
    return 0;
}

/* --- copies of the global settings -------------------------------------------------- */

static char *dup_or_null(const char *s, bool *ok)
{
    if (s == NULL) return NULL;
    char *d = strdup(s);
    if (d == NULL) *ok = false;
    return d;
}

static void rate_free(struct lv_rate_cfg *r)
{
    if (r == NULL) return;
    free(r->key_header);
    free(r->trusted);
    free(r->redis.address);
    free(r->redis_prefix);
    free(r->redis_password);
    free(r);
}

static struct lv_rate_cfg *rate_copy(const struct lv_rate_cfg *g)
{
    struct lv_rate_cfg *r = malloc(sizeof(*r));
    if (r == NULL) return NULL;
    *r = *g;
    bool ok = true;
    r->key_header = dup_or_null(g->key_header, &ok);
    r->redis.address = dup_or_null(g->redis.address, &ok);
    r->redis_prefix = dup_or_null(g->redis_prefix, &ok);
    r->redis_password = dup_or_null(g->redis_password, &ok);
    r->trusted = NULL;
    if (g->ntrusted) {
        r->trusted = malloc(g->ntrusted * sizeof(*r->trusted));
        if (r->trusted) memcpy(r->trusted, g->trusted, g->ntrusted * sizeof(*r->trusted));
        ok = ok && r->trusted;
    }
    if (!ok) {
        rate_free(r);
        return NULL;
    }
    return r;
}

static bool strlist_copy(struct lv_strlist *d, const struct lv_strlist *s)
{
    d->items = calloc(s->n ? s->n : 1, sizeof(char *));
    d->n = 0;
    if (d->items == NULL) return false;
    for (size_t i = 0; i < s->n; i++) {
        if ((d->items[i] = strdup(s->items[i])) == NULL) return false;
        d->n++;
    }
    return true;
}

static void route_cfg_dispose(struct lv_route_cfg *rc)
{
    for (size_t i = 0; i < rc->upgrade_allow.n; i++)
        free(rc->upgrade_allow.items[i]);
    free(rc->upgrade_allow.items);
    rate_free(rc->rate_limit);
    memset(rc, 0, sizeof(*rc));
}

/* A route's own rate_limit: the global one with the route's keys on top. A
 * burst not written follows the route's rate, as the global one does. */
static int read_rate_limit(struct lv_cfg_ctx *c, yaml_node_t *n, const struct lv_config *cfg,
                           struct lv_route_cfg *out)
{
    out->rate_limit = rate_copy(&cfg->rate_limit);
    if (out->rate_limit == NULL) {
        lv_cfg_error(c, n, "out of memory");
        return -1;
    }
    static const struct lv_cfg_field key = {"rate_limit", lv_cfg_like_global, 0, 0, 0, NULL};
    if (lv_cfg_like_global(c, n, out->rate_limit, &key) != 0) return -1;
    struct lv_rate_cfg *r = out->rate_limit;
    yaml_node_t *pc = lv_cfg_map_get(c, n, "per_client");
    if (lv_cfg_map_get(c, n, "requests_per_second") && !lv_cfg_map_get(c, n, "burst"))
        r->burst = r->rate < 1 ? 1 : (uint64_t)r->rate;
    if (lv_cfg_map_get(c, pc, "requests_per_second") && !lv_cfg_map_get(c, pc, "burst"))
        r->client_burst = r->client_rate < 1 ? 1 : (uint64_t)r->client_rate;
    return 0;
}

/* --- one route ------------------------------------------------------------------------ */

struct reader {
    struct lv_cfg_ctx *c;
    struct lv_config *cfg;
    struct lv_routes_cfg *rc;
    struct lv_route *routes;
    struct lv_route_cfg *rcfgs;
    yaml_node_t **at; /* where each route is written */
    bool *bad;        /* a route with errors: no warnings about it */
    bool *used;       /* per pool */
    uint32_t n;
};

static const char *const pool_only[] = {
    "strip_prefix", "add_prefix", "rewrite", "host_rewrite", "request_headers", "response_headers",
    "forwarded",    "timeouts",   "retry",   "upgrade",      "cache",           NULL,
};

/* The route's action: exactly one of pool, redirect, respond. */
static int read_action_kind(struct lv_cfg_ctx *c, yaml_node_t *item, const struct route_yaml *y,
                            struct lv_route *r)
{
    yaml_node_t *given[3] = {y->pool, y->redirect, y->respond};
    static const char *const names[3] = {"pool", "redirect", "respond"};
    int first = -1;
    for (int i = 0; i < 3; i++) {
        if (given[i] == NULL) continue;
        if (first >= 0) {
            lv_cfg_error(c, given[i], "a route takes one of pool, redirect and respond (%s and %s)",
                         names[first], names[i]);
            return -1;
        }
        first = i;
    }
    if (first < 0) {
        lv_cfg_error(c, item, "a route needs pool, redirect or respond");
        return -1;
    }
    r->action = first == 0 ? LV_ROUTE_POOL : first == 1 ? LV_ROUTE_REDIRECT : LV_ROUTE_RESPOND;
    if (r->action == LV_ROUTE_POOL) return 0;
    int rc = 0;
    for (int i = 0; pool_only[i]; i++) {
        yaml_node_t *v = lv_cfg_map_get(c, item, pool_only[i]);
        if (v == NULL) continue;
        lv_cfg_error(c, v, "%s: only a route with a pool takes it (this one has %s)", pool_only[i],
                     names[first]);
        rc = -1;
    }
    return rc;
}

static int read_pool_ref(struct reader *rd, const struct route_yaml *y, struct lv_route *r)
{
    struct lv_cfg_ctx *c = rd->c;
    size_t old = lv_cfg_keypath_push(c, ".pool");
    const char *s = lv_cfg_scalar(c, y->pool, "a pool name");
    size_t i = s ? lv_routes_find_pool(rd->rc, s) : LV_NO_POOL;
    if (s && i == LV_NO_POOL) {
        char known[256] = "";
        for (size_t k = 0; k < rd->rc->npools; k++)
            lv_cfg_append(known, sizeof(known), ", ", rd->rc->pools[k].name);
        lv_cfg_error(c, y->pool, "unknown pool '%s' (pools: %s)", s,
                     known[0] ? known : "none; define them under pools:");
    }
    c->keypath[old] = '\0';
    if (i == LV_NO_POOL) return -1;
    r->pool = (uint32_t)i;
    r->pool_name = strdup(rd->rc->pools[i].name);
    rd->used[i] = true;
    return r->pool_name ? 0 : -1;
}

/* The settings a pool route resolves: route, else pool, else global. */
static int read_overrides(struct reader *rd, const struct route_yaml *y, const struct lv_route *r,
                          struct lv_route_cfg *out)
{
    struct lv_cfg_ctx *c = rd->c;
    const struct lv_config *cfg = rd->cfg;
    const struct lv_backend_pool_cfg *p =
        r->action == LV_ROUTE_POOL ? &rd->rc->pools[r->pool] : NULL;
    out->timeouts = p ? p->timeouts : cfg->timeouts;
    out->retry = p ? p->retry : cfg->retry;
    /* The global cache settings, its targeted fields borrowed (they live as
     * long as cfg); the route's own keys on top. */
    out->cache = cfg->cache;
    if (!strlist_copy(&out->upgrade_allow, &cfg->upgrade_allow)) {
        lv_cfg_error(c, y->pool, "out of memory");
        return -1;
    }
    int rc = 0;
    size_t old;
    if (y->timeouts) {
        old = lv_cfg_keypath_push(c, ".timeouts");
        if (lv_cfg_walk(c, y->timeouts, lv_cfg_upstream_timeout_fields, &out->timeouts) != 0)
            rc = -1;
        c->keypath[old] = '\0';
    }
    if (y->retry) {
        static const struct lv_cfg_field key = {"retry", lv_cfg_like_global, 0, 0, 0, NULL};
        old = lv_cfg_keypath_push(c, ".retry");
        if (lv_cfg_like_global(c, y->retry, &out->retry, &key) != 0) rc = -1;
        c->keypath[old] = '\0';
    }
    if (y->forwarded) {
        static const struct lv_cfg_field key = {"forwarded", lv_cfg_bool, 0, 0, 0, NULL};
        old = lv_cfg_keypath_push(c, ".forwarded");
        if (lv_cfg_bool(c, y->forwarded, &out->forwarded, &key) != 0) rc = -1;
        c->keypath[old] = '\0';
    }
    if (y->cache) {
        old = lv_cfg_keypath_push(c, ".cache");
        if (lv_cfg_walk(c, y->cache, lv_cfg_route_cache_fields, &out->cache) != 0) rc = -1;
        c->keypath[old] = '\0';
    }
    if (y->upgrade) {
        old = lv_cfg_keypath_push(c, ".upgrade");
        if (lv_cfg_walk(c, y->upgrade, upgrade_fields, out) != 0) rc = -1;
        c->keypath[old] = '\0';
    }
    if (y->rate_limit) {
        old = lv_cfg_keypath_push(c, ".rate_limit");
        if (read_rate_limit(c, y->rate_limit, cfg, out) != 0) rc = -1;
        c->keypath[old] = '\0';
        /* In a shared store, the route's buckets are its own: its keys
         * carry its name unless it names a key_prefix itself. */
        struct lv_rate_cfg *rl = out->rate_limit;
        if (rc == 0 && rl && r->name &&
            !lv_cfg_map_get(c, lv_cfg_map_get(c, y->rate_limit, "redis"), "key_prefix")) {
            size_t n = strlen(rl->redis_prefix) + strlen(r->name) + 16;
            char *prefix = malloc(n);
            if (prefix == NULL) return -1;
            snprintf(prefix, n, "%sroute:%s:", rl->redis_prefix, r->name);
            free(rl->redis_prefix);
            rl->redis_prefix = prefix;
        }
    }
    return rc;
}

static int read_route_name(struct reader *rd, const struct route_yaml *y, struct lv_route *r,
                           uint32_t index)
{
    struct lv_cfg_ctx *c = rd->c;
    if (y->name == NULL) {
        char def[32];
        snprintf(def, sizeof(def), "routes[%u]", index);
        r->name = strdup(def);
        return r->name ? 0 : -1;
    }
    size_t old = lv_cfg_keypath_push(c, ".name");
    int rc = -1;
    const char *s = lv_cfg_scalar(c, y->name, "a name");
    if (s == NULL) {
    } else if (!lv_cfg_name_ok(s)) {
        lv_cfg_error(c, y->name, "'%s': 1 to %d letters, digits, '_', '-' and '.'", s, LV_NAME_MAX);
    } else if (strcmp(s, "default") == 0 || strcmp(s, "no_route") == 0) {
        lv_cfg_error(c, y->name,
                     "'%s' is the name of levee's own last route (to the default pool, or the "
                     "no_route answer): choose another",
                     s);
    } else if (strcmp(s, "none") == 0) {
        lv_cfg_error(c, y->name,
                     "'none' is the metrics' label of requests answered before routing: choose "
                     "another");
    } else {
        rc = 0;
        for (uint32_t i = 0; i < rd->n && rc == 0; i++) {
            if (rd->routes[i].name && strcmp(rd->routes[i].name, s) == 0) {
                lv_cfg_error(c, y->name, "duplicate route name '%s' (first at line %u)", s,
                             rd->routes[i].line);
                rc = -1;
            }
        }
        if (rc == 0 && (r->name = strdup(s)) == NULL) rc = -1;
    }
    c->keypath[old] = '\0';
    return rc;
}

static bool read_route(struct reader *rd, yaml_node_t *item, struct lv_route *r,
                       struct lv_route_cfg *out)
{
    struct lv_cfg_ctx *c = rd->c;
    struct route_yaml y = {0};
    r->line = (uint32_t)item->start_mark.line + 1;
    r->col = (uint32_t)item->start_mark.column + 1;
    if (item->type != YAML_MAPPING_NODE) {
        lv_cfg_error(c, item, "expected a route (a mapping: match, and pool, redirect or respond)");
        return false;
    }
    bool ok = lv_cfg_walk(c, item, lv_cfg_route_fields, &y) == 0;
    ok = read_route_name(rd, &y, r, (uint32_t)(r - rd->routes)) == 0 && ok;
    if (y.match && !lv_cfg_is_null(y.match)) {
        size_t old = lv_cfg_keypath_push(c, ".match");
        ok = lv_cfg_walk(c, y.match, lv_cfg_match_fields, r) == 0 && ok;
        c->keypath[old] = '\0';
    }
    if (read_action_kind(c, item, &y, r) != 0) return false;
    int groups = r->path_re ? (int)r->path_re->ngroups : -1;
    /* A path_regex that did not compile has had its error: no second one
     * about the $N that use it. */
    if (groups > LV_ROUTE_MAX_CAPTURES || (!r->path_re && lv_cfg_map_get(c, y.match, "path_regex")))
        groups = LV_ROUTE_MAX_CAPTURES;
    if (r->action == LV_ROUTE_POOL) {
        if (read_pool_ref(rd, &y, r) != 0) return false;
        ok = lv_cfg_read_rewrites(c, &y, r, groups) == 0 && ok;
        if (y.request_headers) {
            size_t old = lv_cfg_keypath_push(c, ".request_headers");
            ok = lv_cfg_read_edits(c, y.request_headers, groups, &r->request_fields) == 0 && ok;
            c->keypath[old] = '\0';
        }
        if (y.response_headers) {
            size_t old = lv_cfg_keypath_push(c, ".response_headers");
            ok = lv_cfg_read_edits(c, y.response_headers, groups, &r->response_fields) == 0 && ok;
            c->keypath[old] = '\0';
        }
    } else if (r->action == LV_ROUTE_REDIRECT) {
        ok = lv_cfg_read_redirect(c, y.redirect, r, groups) == 0 && ok;
    } else {
        size_t old = lv_cfg_keypath_push(c, ".respond");
        ok = lv_cfg_read_respond(c, y.respond, r, 200) == 0 && ok;
        c->keypath[old] = '\0';
    }
    ok = read_overrides(rd, &y, r, out) == 0 && ok;
    return ok;
}

/* --- the table ------------------------------------------------------------------------- */

static bool grow(struct reader *rd, uint32_t need)
{
    struct lv_route *routes = realloc(rd->routes, need * sizeof(*routes));
    if (routes) rd->routes = routes;
    struct lv_route_cfg *rcfgs = realloc(rd->rcfgs, need * sizeof(*rcfgs));
    if (rcfgs) rd->rcfgs = rcfgs;
    yaml_node_t **at = realloc(rd->at, need * sizeof(*at));
    if (at) rd->at = at;
    bool *bad = realloc(rd->bad, need * sizeof(*bad));
    if (bad) rd->bad = bad;
    return routes && rcfgs && at && bad;
}

static void read_routes(struct reader *rd, yaml_node_t *n)
{
    struct lv_cfg_ctx *c = rd->c;
    if (n == NULL || lv_cfg_is_null(n)) return;
    size_t old = lv_cfg_keypath_push(c, "routes");
    if (n->type != YAML_SEQUENCE_NODE) {
        lv_cfg_error(c, n, "expected a list of routes (- match: ..., pool: ...)");
        c->keypath[old] = '\0';
        return;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count >= LV_ROUTE_MAX) {
        lv_cfg_error(c, n, "%zu routes: at most %d", count, LV_ROUTE_MAX - 1);
        c->keypath[old] = '\0';
        return;
    }
    if (!grow(rd, (uint32_t)count + 1)) {
        lv_cfg_error(c, n, "out of memory");
        c->keypath[old] = '\0';
        return;
    }
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = lv_cfg_node(c, *it);
        size_t kp = lv_cfg_keypath_push(c, "[%u]", rd->n);
        uint32_t i = rd->n++;
        memset(&rd->routes[i], 0, sizeof(rd->routes[i]));
        memset(&rd->rcfgs[i], 0, sizeof(rd->rcfgs[i]));
        rd->at[i] = item;
        rd->bad[i] = !read_route(rd, item, &rd->routes[i], &rd->rcfgs[i]);
        c->keypath[kp] = '\0';
    }
    c->keypath[old] = '\0';
}

/* The route every table ends with: to the default pool, or no_route. */
static bool add_implicit(struct reader *rd, yaml_node_t *no_route)
{
    struct lv_cfg_ctx *c = rd->c;
    if (!grow(rd, rd->n + 1)) return false;
    uint32_t i = rd->n++;
    struct lv_route *r = &rd->routes[i];
    struct lv_route_cfg *out = &rd->rcfgs[i];
    memset(r, 0, sizeof(*r));
    memset(out, 0, sizeof(*out));
    rd->at[i] = no_route;
    rd->bad[i] = false;
    r->implicit = true;
    size_t d = rd->rc->default_pool;
    struct route_yaml none = {0};
    if (d != LV_NO_POOL) {
        r->name = strdup("default");
        r->action = LV_ROUTE_POOL;
        r->pool = (uint32_t)d;
        r->pool_name = strdup(rd->rc->pools[d].name);
        rd->used[d] = true;
        if (no_route) {
            /* Checked all the same: a mistake there is one. */
            struct lv_route unused = {0};
            size_t old = lv_cfg_keypath_push(c, "no_route");
            if (lv_cfg_read_respond(c, no_route, &unused, 404) == 0 && c->nerrors == 0)
                lv_cfg_warn(c, no_route,
                            "never used: a request no route matches goes to the pool 'default'");
            c->keypath[old] = '\0';
            lv_route_dispose(&unused);
        }
        return r->name && r->pool_name && read_overrides(rd, &none, r, out) == 0;
    }
    r->name = strdup("no_route");
    r->action = LV_ROUTE_RESPOND;
    size_t old = lv_cfg_keypath_push(c, "no_route");
    bool ok = no_route == NULL || lv_cfg_read_respond(c, no_route, r, 404) == 0;
    c->keypath[old] = '\0';
    if (ok && no_route == NULL) r->status = 404;
    if (ok && r->body == NULL && (no_route == NULL || !lv_cfg_map_get(c, no_route, "body"))) {
        char body[128];
        int n = snprintf(body, sizeof(body),
                         "{\"status\":%u,\"error\":\"no_route\",\"message\":\"no route matches "
                         "this request\"}\n",
                         r->status);
        r->body = strdup(body);
        r->body_len = (size_t)n;
        free(r->content_type);
        r->content_type = strdup("application/json");
        ok = r->body && r->content_type;
    }
    return r->name && ok && read_overrides(rd, &none, r, out) == 0;
}

/* Routes that an earlier one shadows, and pools no route uses: warnings. */
static void warn_unused(struct reader *rd)
{
    struct lv_cfg_ctx *c = rd->c;
    for (uint32_t b = 0; b < rd->n; b++) {
        if (rd->bad[b] || rd->routes[b].implicit) continue;
        for (uint32_t a = 0; a < b; a++) {
            if (rd->bad[a] || !lv_route_covers(&rd->routes[a], &rd->routes[b])) continue;
            size_t old = lv_cfg_keypath_push(c, "routes[%u]", b);
            lv_cfg_warn(c, rd->at[b],
                        "never used: route '%s' (line %u) comes first and matches every request "
                        "this one matches",
                        rd->routes[a].name, rd->routes[a].line);
            c->keypath[old] = '\0';
            break;
        }
    }
    for (size_t p = 0; p < rd->rc->npools; p++) {
        if (rd->used[p]) continue;
        size_t old = lv_cfg_keypath_push(c, "pools.%s", rd->rc->pools[p].name);
        yaml_node_t at = {0};
        at.start_mark.line = rd->rc->pools[p].line ? rd->rc->pools[p].line - 1 : 0;
        at.start_mark.column = rd->rc->pools[p].col ? rd->rc->pools[p].col - 1 : 0;
        lv_cfg_warn(c, &at, "no route uses pool '%s'", rd->rc->pools[p].name);
        c->keypath[old] = '\0';
    }
}

void lv_config_read_routes(struct lv_cfg_ctx *c, yaml_node_t *root, struct lv_config *cfg)
{
    struct lv_routes_cfg *rc = calloc(1, sizeof(*rc));
    if (rc == NULL) {
        lv_cfg_error(c, root, "out of memory");
        return;
    }
    cfg->routing = rc;
    yaml_node_t *pools = lv_cfg_map_get(c, root, "pools");
    yaml_node_t *routes = lv_cfg_map_get(c, root, "routes");
    yaml_node_t *no_route = lv_cfg_map_get(c, root, "no_route");
    rc->configured = pools != NULL || routes != NULL;
    char saved[sizeof(c->keypath)];
    memcpy(saved, c->keypath, sizeof(saved));
    c->keypath[0] = '\0';
    lv_cfg_read_pools(c, root, pools, cfg, rc);

    struct reader rd = {.c = c, .cfg = cfg, .rc = rc};
    rd.used = calloc(rc->npools + 1, sizeof(*rd.used));
    bool ok = rd.used != NULL;
    if (ok) read_routes(&rd, routes);
    if (ok && !add_implicit(&rd, no_route)) {
        lv_cfg_error(c, no_route ? no_route : root, "no_route: cannot be built");
        ok = false;
    }
    /* A file with errors is not loaded: warnings about it would be noise
     * (a route with a mistyped pool makes that pool look unused). */
    if (ok && c->nerrors == 0) warn_unused(&rd);
    free(rd.used);
    free(rd.at);
    free(rd.bad);
    rc->routes = rd.rcfgs;
    /* The table takes the routes over, even when out of memory. */
    rc->table = rd.routes ? lv_route_table_create(rd.routes, rd.n) : NULL;
    if (rc->table == NULL) {
        for (uint32_t i = 0; i < rd.n; i++)
            route_cfg_dispose(&rc->routes[i]);
        free(rc->routes);
        rc->routes = NULL;
        if (ok) lv_cfg_error(c, root, "out of memory building the route table");
    }
    memcpy(c->keypath, saved, sizeof(saved));
}

void lv_routes_cfg_destroy(struct lv_routes_cfg *rc)
{
    if (rc == NULL) return;
    if (rc->table) {
        for (uint32_t i = 0; i < rc->table->n; i++)
            route_cfg_dispose(&rc->routes[i]);
    }
    free(rc->routes);
    lv_route_table_destroy(rc->table);
    for (size_t i = 0; i < rc->npools; i++)
        lv_pool_cfg_dispose(&rc->pools[i]);
    free(rc->pools);
    free(rc);
}
