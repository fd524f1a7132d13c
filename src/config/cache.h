/*
 * The `cache:` section of the configuration file: its field table and the
 * checks across its keys. The struct it fills, struct lv_cache_cfg, is the
 * cache's own (cache/policy.h).
 */
#ifndef LV_CONFIG_CACHE_H
#define LV_CONFIG_CACHE_H

#include "config/load.h"

/* The keys under `cache:`, for the table that holds it (its aux). */
extern const struct lv_cfg_field lv_cfg_cache_fields[];
/* The keys a route's `cache:` may set (enabled, default_ttl,
 * serve_stale_on_error, collapse_timeout, key), over the global ones. */
extern const struct lv_cfg_field lv_cfg_route_cache_fields[];

/* Parses the `cache:` mapping into the struct lv_cache_cfg at dst (the
 * field's aux is lv_cfg_cache_fields) and checks it as a whole. */
int lv_cfg_cache(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f);

#endif
