/*
 * `cache:` — the HTTP cache's keys (see docs/cache.md): sizes, freshness
 * defaults, how stale a copy may answer when no backend can, collapsed
 * forwarding, the cache key and the targeted Cache-Control fields.
 */
#include "config/cache.h"

#include <stdlib.h>
#include <string.h>

#include "cache/policy.h"

#define KIB 1024ull
#define TIB (1024ull * 1024 * 1024 * 1024)
#define DAY (86400ull * 1000)

static const struct {
    const char *name;
    uint32_t bit;
} key_parts[] = {
    {"method", LV_CKEY_METHOD}, {"scheme", LV_CKEY_SCHEME}, {"host", LV_CKEY_HOST},
    {"path", LV_CKEY_PATH},     {"query", LV_CKEY_QUERY},
};
#define NPARTS (sizeof(key_parts) / sizeof(key_parts[0]))

/* key: a list of parts; path is required (without it every URL of a host
 * would be one response). */
static int parse_key(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    (void)f;
    if (n->type != YAML_SEQUENCE_NODE) {
        lv_cfg_error(c, n, "expected a list of key parts (method, scheme, host, path, query)");
        return -1;
    }
    uint32_t bits = 0;
    int rc = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = lv_cfg_node(c, *it);
        const char *s = lv_cfg_scalar(c, item, "a key part");
        if (s == NULL) {
            rc = -1;
            continue;
        }
        size_t i = 0;
        while (i < NPARTS && strcmp(s, key_parts[i].name) != 0)
            i++;
        if (i == NPARTS) {
            lv_cfg_error(c, item,
                         "unknown key part '%s' (allowed: method, scheme, host, path, "
                         "query)",
                         s);
            rc = -1;
        } else if (bits & key_parts[i].bit) {
            lv_cfg_error(c, item, "'%s' is listed twice", s);
            rc = -1;
        } else {
            bits |= key_parts[i].bit;
        }
    }
    if (rc == 0 && !(bits & LV_CKEY_PATH)) {
        lv_cfg_error(c, n, "must include path (every URL of a host would share one response)");
        rc = -1;
    }
    if (rc == 0) *(uint32_t *)dst = bits;
    return rc;
}

static bool is_tchar(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           (ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL);
}

/* targeted_fields: header field names, in order of precedence; [] turns
 * targeted fields off. */
static int parse_targets(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                         const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_cache_cfg *cc = dst;
    if (lv_cfg_is_null(n)) return 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        lv_cfg_error(c, n, "expected a list of header field names");
        return -1;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **items = calloc(count ? count : 1, sizeof(char *));
    size_t k = 0;
    int rc = items ? 0 : -1;
    for (size_t i = 0; i < count && items; i++) {
        yaml_node_t *item = lv_cfg_node(c, n->data.sequence.items.start[i]);
        const char *s = lv_cfg_scalar(c, item, "a header field name");
        bool ok = s != NULL && s[0] != '\0';
        for (const char *p = s; ok && *p; p++)
            ok = is_tchar(*p);
        if (!ok) {
            if (s) lv_cfg_error(c, item, "'%s' is not a header field name", s);
            rc = -1;
            continue;
        }
        items[k++] = strdup(s);
    }
    lv_cache_cfg_dispose(cc);
    cc->targets = items;
    cc->ntargets = k;
    return rc;
}

static yaml_node_t *value_of(struct lv_cfg_ctx *c, yaml_node_t *map, const char *key)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = lv_cfg_node(c, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return lv_cfg_node(c, p->value);
    }
    return map;
}

#define F(key, parse, member, min, max, aux)                                                       \
    {                                                                                              \
        key, parse, offsetof(struct lv_cache_cfg, member), min, max, aux                           \
    }

const struct lv_cfg_field lv_cfg_cache_fields[] = {
    F("enabled", lv_cfg_bool, enabled, 0, 0, NULL),
    F("max_size", lv_cfg_size, max_size, 64 * KIB, TIB, NULL),
    F("max_object_size", lv_cfg_size, max_object_size, 1, TIB, NULL),
    F("default_ttl", lv_cfg_duration, default_ttl, 0, 365 * DAY, NULL),
    F("serve_stale_on_error", lv_cfg_duration, serve_stale_on_error, 0, 365 * DAY, NULL),
    F("collapse_timeout", lv_cfg_duration, collapse_timeout, 0, 3600 * 1000, NULL),
    F("key", parse_key, key, 0, 0, NULL),
    {"targeted_fields", parse_targets, 0, 0, 0, NULL},
    F("forward_targeted", lv_cfg_bool, forward_targeted, 0, 0, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

/* A route's `cache:`: the keys that make sense per request; the store and
 * its sizes, and the targeted fields, stay global. */
const struct lv_cfg_field lv_cfg_route_cache_fields[] = {
    F("enabled", lv_cfg_bool, enabled, 0, 0, NULL),
    F("default_ttl", lv_cfg_duration, default_ttl, 0, 365 * DAY, NULL),
    F("serve_stale_on_error", lv_cfg_duration, serve_stale_on_error, 0, 365 * DAY, NULL),
    F("collapse_timeout", lv_cfg_duration, collapse_timeout, 0, 3600 * 1000, NULL),
    F("key", parse_key, key, 0, 0, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

int lv_cfg_cache(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    if (lv_cfg_walk(c, n, f->aux, dst) != 0) return -1;
    const struct lv_cache_cfg *cc = dst;
    if (n->type == YAML_MAPPING_NODE && cc->max_object_size > cc->max_size) {
        lv_cfg_error(c, value_of(c, n, "max_object_size"),
                     "max_object_size (%llu bytes) is larger than max_size (%llu bytes)",
                     (unsigned long long)cc->max_object_size, (unsigned long long)cc->max_size);
        return -1;
    }
    return 0;
}
