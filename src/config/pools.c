/*
 * Pools in the configuration (config/routes_read.h): the default pool made of the
 * top-level backends, the named pools of `pools:` with what they inherit
 * from the global keys, and backend ids unique across all of them.
 */
#include "config/config.h"
#include "config/routes.h"
#include "config/routes_read.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_tls.h"

#define DAY (86400ull * 1000u)

const struct lv_cfg_field lv_cfg_upstream_timeout_fields[] = {
    {"connect", lv_cfg_duration, offsetof(struct lv_timeouts_cfg, connect), 1, DAY, NULL},
    {"per_try", lv_cfg_duration, offsetof(struct lv_timeouts_cfg, per_try), 1, DAY, NULL},
    {"backend", lv_cfg_duration, offsetof(struct lv_timeouts_cfg, backend), 1, DAY, NULL},
    {"tunnel", lv_cfg_duration, offsetof(struct lv_timeouts_cfg, tunnel), 1, 7 * DAY, NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

/* What walking a pool's mapping fills. */
struct pool_yaml {
    struct lv_backend_pool_cfg p;
    yaml_node_t *backends;
    yaml_node_t *tls; /* the defaults of its https backends' tls */
};

#define P(key, parse, member, aux)                                                                 \
    {                                                                                              \
        key, parse, offsetof(struct pool_yaml, member), 0, 0, aux                                  \
    }

const struct lv_cfg_field lv_cfg_pool_fields[] = {
    P("backends", lv_cfg_keep, backends, NULL),
    P("tls", lv_cfg_keep, tls, lv_cfg_backend_tls_fields),
    P("load_balancing", lv_cfg_like_global, p.balancer, NULL),
    P("timeouts", lv_cfg_section, p.timeouts, lv_cfg_upstream_timeout_fields),
    P("retry", lv_cfg_like_global, p.retry, NULL),
    P("circuit_breaker", lv_cfg_like_global, p.breaker, NULL),
    P("health_check", lv_cfg_like_global, p.health, NULL),
    P("pool", lv_cfg_like_global, p.pool, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

/* --- helpers ------------------------------------------------------------------- */

yaml_node_t *lv_cfg_map_get(struct lv_cfg_ctx *c, yaml_node_t *map, const char *key)
{
    if (map == NULL || map->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = lv_cfg_node(c, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return lv_cfg_node(c, p->value);
    }
    return NULL;
}

void lv_cfg_warn(struct lv_cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    fprintf(c->errs, "%s:%zu:%zu: ", c->file, n ? n->start_mark.line + 1 : 1,
            n ? n->start_mark.column + 1 : 1);
    if (c->keypath[0]) fprintf(c->errs, "%s: ", c->keypath);
    fputs("warning: ", c->errs);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->errs, fmt, ap);
    va_end(ap);
    fputc('\n', c->errs);
}

size_t lv_cfg_keypath_push(struct lv_cfg_ctx *c, const char *fmt, ...)
{
    size_t old = strlen(c->keypath);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->keypath + old, sizeof(c->keypath) - old, fmt, ap);
    va_end(ap);
    return old;
}

int lv_cfg_keep(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    (void)c, (void)f;
    *(yaml_node_t **)dst = n;
    return 0;
}

int lv_cfg_like_global(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                       const struct lv_cfg_field *f)
{
    const struct lv_cfg_field *g = lv_config_fields();
    while (g->key && strcmp(g->key, f->key) != 0)
        g++;
    /* A table naming a key the root table does not have is a bug. */
    if (g->key == NULL) abort();
    return g->parse(c, n, dst, g);
}

bool lv_cfg_name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return n > 0 && n <= LV_NAME_MAX;
}

/* --- pools --------------------------------------------------------------------- */

void lv_pool_cfg_dispose(struct lv_backend_pool_cfg *p)
{
    free(p->name);
    free(p->health.path);
    memset(p, 0, sizeof(*p));
}

/* A pool with the global settings (the health path copied: each pool owns
 * its strings). false when out of memory. */
static bool pool_init(struct lv_backend_pool_cfg *p, const struct lv_config *cfg, const char *name)
{
    *p = (struct lv_backend_pool_cfg){
        .name = strdup(name),
        .balancer = cfg->balancer,
        .timeouts = cfg->timeouts,
        .retry = cfg->retry,
        .breaker = cfg->breaker,
        .health = cfg->health,
        .pool = cfg->pool,
    };
    p->health.path = cfg->health.path ? strdup(cfg->health.path) : NULL;
    if (p->name && (p->health.path || !cfg->health.path)) return true;
    lv_pool_cfg_dispose(p);
    return false;
}

/* The node of the id of the backend with that id in a backends list. */
static yaml_node_t *id_node(struct lv_cfg_ctx *c, yaml_node_t *list, const char *id)
{
    for (yaml_node_item_t *it = list->data.sequence.items.start; it < list->data.sequence.items.top;
         it++) {
        yaml_node_t *n = lv_cfg_map_get(c, lv_cfg_node(c, *it), "id");
        if (n && n->type == YAML_SCALAR_NODE && strcmp((const char *)n->data.scalar.value, id) == 0)
            return n;
    }
    return list;
}

/* Reads a pool's backends with the top-level `backends:` parser and moves
 * them to the end of cfg->backends; ids must be new there. */
static int read_backends(struct lv_cfg_ctx *c, yaml_node_t *list, struct lv_config *cfg,
                         struct lv_backend_pool_cfg *p)
{
    /* parse_backends fills the backends of the config it is given, and
     * touches nothing else of it. */
    struct lv_config tmp = {0};
    static const struct lv_cfg_field backends_key = {"backends", lv_cfg_like_global, 0, 0, 0, NULL};
    int rc_parse = lv_cfg_like_global(c, list, &tmp, &backends_key);
    int rc_out = rc_parse;
    p->first = cfg->n_backends;
    p->n = 0;
    if (tmp.n_backends > 0) {
        struct lv_backend_cfg *all =
            realloc(cfg->backends, (cfg->n_backends + tmp.n_backends) * sizeof(*all));
        if (all == NULL) {
            lv_cfg_error(c, list, "out of memory");
            for (size_t i = 0; i < tmp.n_backends; i++)
                lv_backend_cfg_dispose(&tmp.backends[i]);
            free(tmp.backends);
            return -1;
        }
        cfg->backends = all;
        for (size_t i = 0; i < tmp.n_backends; i++) {
            const struct lv_backend_cfg *b = &tmp.backends[i];
            for (size_t j = 0; j < cfg->n_backends; j++) {
                if (strcmp(cfg->backends[j].id, b->id) != 0) continue;
                const struct lv_backend_pool_cfg *q = lv_routes_backend_pool(cfg, j);
                lv_cfg_error(c, id_node(c, list, b->id),
                             "backend id '%s' is already in pool '%s' (ids are unique across "
                             "pools: a backend's state follows its id)",
                             b->id, q ? q->name : "?");
                rc_out = -1;
                break;
            }
            cfg->backends[cfg->n_backends++] = *b;
            p->n++;
        }
    }
    free(tmp.backends);
    return rc_out;
}

static bool push_pool(struct lv_cfg_ctx *c, yaml_node_t *at, struct lv_routes_cfg *rc,
                      struct lv_backend_pool_cfg *p)
{
    struct lv_backend_pool_cfg *v = realloc(rc->pools, (rc->npools + 1) * sizeof(*v));
    if (v == NULL) {
        lv_cfg_error(c, at, "out of memory");
        lv_pool_cfg_dispose(p);
        return false;
    }
    rc->pools = v;
    rc->pools[rc->npools++] = *p;
    return true;
}

/* Reads one pool and adds it to rc; false when out of memory. */
static bool read_pool(struct lv_cfg_ctx *c, yaml_node_t *k, yaml_node_t *v, const char *name,
                      struct lv_config *cfg, struct lv_routes_cfg *rc)
{
    struct pool_yaml y;
    if (!pool_init(&y.p, cfg, name)) {
        lv_cfg_error(c, k, "out of memory");
        return false;
    }
    y.p.line = (uint32_t)k->start_mark.line + 1;
    y.p.col = (uint32_t)k->start_mark.column + 1;
    y.backends = NULL;
    y.tls = NULL;
    int rc_walk = lv_cfg_walk(c, v, lv_cfg_pool_fields, &y);
    if (y.backends != NULL && !lv_cfg_is_null(y.backends)) {
        size_t old = lv_cfg_keypath_push(c, ".backends");
        c->pool_tls = y.tls;
        if (read_backends(c, y.backends, cfg, &y.p) != 0) rc_walk = -1;
        c->pool_tls = NULL;
        c->keypath[old] = '\0';
    } else {
        y.p.first = cfg->n_backends;
    }
    if (y.p.n == 0 && rc_walk == 0)
        lv_cfg_error(c, k, "pool '%s' has no backends (add `backends:` with at least one)", name);
    return push_pool(c, k, rc, &y.p);
}

void lv_cfg_read_pools(struct lv_cfg_ctx *c, yaml_node_t *root, yaml_node_t *pools,
                       struct lv_config *cfg, struct lv_routes_cfg *rc)
{
    rc->default_pool = LV_NO_POOL;
    yaml_node_t *top = lv_cfg_map_get(c, root, "backends");
    if (top != NULL || !rc->configured) {
        struct lv_backend_pool_cfg p;
        if (!pool_init(&p, cfg, "default")) {
            lv_cfg_error(c, top, "out of memory");
            return;
        }
        p.first = 0;
        p.n = cfg->n_backends;
        if (!push_pool(c, top, rc, &p)) return;
        rc->default_pool = 0;
    }
    if (pools == NULL || lv_cfg_is_null(pools)) return;
    size_t old = lv_cfg_keypath_push(c, "pools");
    if (pools->type != YAML_MAPPING_NODE) {
        lv_cfg_error(c, pools, "expected a mapping of pool names to pools (api: {backends: ...})");
        c->keypath[old] = '\0';
        return;
    }
    for (yaml_node_pair_t *pr = pools->data.mapping.pairs.start; pr < pools->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *k = lv_cfg_node(c, pr->key), *v = lv_cfg_node(c, pr->value);
        const char *name = lv_cfg_scalar(c, k, "a pool name");
        if (name == NULL) continue;
        if (!lv_cfg_name_ok(name)) {
            lv_cfg_error(c, k,
                         "pool name '%s': 1 to %d letters, digits, '_', '-' and '.' (it is a "
                         "metrics label)",
                         name, LV_NAME_MAX);
            continue;
        }
        if (strcmp(name, "none") == 0) {
            lv_cfg_error(c, k,
                         "pool name 'none' is the metrics' label of answers no pool gave: "
                         "choose another");
            continue;
        }
        size_t dup = lv_routes_find_pool(rc, name);
        if (dup != LV_NO_POOL) {
            if (rc->pools[dup].line == 0)
                lv_cfg_error(c, k,
                             "pool 'default' is the top-level backends: list them there or "
                             "here, not both");
            else
                lv_cfg_error(c, k, "duplicate pool '%s' (first at line %u)", name,
                             rc->pools[dup].line);
            continue;
        }
        if (rc->npools == LV_POOL_MAX) {
            lv_cfg_error(c, k, "at most %d pools", LV_POOL_MAX);
            break;
        }
        size_t kp = lv_cfg_keypath_push(c, ".%s", name);
        bool added = read_pool(c, k, v, name, cfg, rc);
        c->keypath[kp] = '\0';
        if (added && strcmp(name, "default") == 0) rc->default_pool = rc->npools - 1;
    }
    c->keypath[old] = '\0';
}

/* --- lookups ------------------------------------------------------------------- */

size_t lv_routes_find_pool(const struct lv_routes_cfg *rc, const char *name)
{
    for (size_t i = 0; rc && i < rc->npools; i++) {
        if (strcmp(rc->pools[i].name, name) == 0) return i;
    }
    return LV_NO_POOL;
}

const struct lv_backend_pool_cfg *lv_routes_backend_pool(const struct lv_config *cfg, size_t i)
{
    const struct lv_routes_cfg *rc = cfg->routing;
    for (size_t k = 0; rc && k < rc->npools; k++) {
        const struct lv_backend_pool_cfg *p = &rc->pools[k];
        if (i >= p->first && i < p->first + p->n) return p;
    }
    return NULL;
}
