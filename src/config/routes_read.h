/*
 * The loader's side of pools and routes (config/routes.h has the types):
 * the root table's entries, reading `pools:` (pools.c) and `routes:` and
 * `no_route:` (routes.c), and the helpers they share. Internal to
 * src/config.
 */
#ifndef LV_CONFIG_ROUTES_READ_H
#define LV_CONFIG_ROUTES_READ_H

#include <stdbool.h>
#include <stddef.h>

#include "config/config-t.h"
#include "config/load.h"
#include "route/route.h"

struct lv_routes_cfg;
struct lv_backend_pool_cfg;

/* The root table's entries for pools, routes and no_route parse with this
 * (nothing: lv_config_read_routes reads them once the global keys are
 * known); their aux are these tables. */
int lv_cfg_later(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f);
extern const struct lv_cfg_field lv_cfg_pool_fields[];
extern const struct lv_cfg_field lv_cfg_route_fields[];
extern const struct lv_cfg_field lv_cfg_respond_fields[];

/* Reads pools, routes and no_route from the root mapping into
 * cfg->routing (always set, errors or not; errors are reported in c). */
void lv_config_read_routes(struct lv_cfg_ctx *c, yaml_node_t *root, struct lv_config *cfg);

/*
 * Fills rc->pools: the default pool (the top-level backends, when the file
 * has `backends:` or has neither `pools:` nor `routes:`), then each pool of
 * `pools:` (node pools, NULL when absent), its backends appended to
 * cfg->backends. Errors are reported in c; every pool read is kept, even a
 * broken one, so that routes naming it get no second error.
 */
void lv_cfg_read_pools(struct lv_cfg_ctx *c, yaml_node_t *root, yaml_node_t *pools,
                       struct lv_config *cfg, struct lv_routes_cfg *rc);

void lv_pool_cfg_dispose(struct lv_backend_pool_cfg *p);

/* --- routes (routes.c, match.c, action.c) ------------------------------------------ */

/* What walking a route's mapping keeps, read in an order of routes.c's. */
struct route_yaml {
    yaml_node_t *name, *match, *pool, *strip_prefix, *add_prefix, *rewrite, *host_rewrite,
        *request_headers, *response_headers, *forwarded, *timeouts, *retry, *rate_limit, *upgrade,
        *cache, *redirect, *respond;
};

/* Field tables: a route's match (its parsers write into a struct
 * lv_route), request_headers / response_headers, redirect. */
extern const struct lv_cfg_field lv_cfg_match_fields[];
extern const struct lv_cfg_field lv_cfg_edit_fields[];
extern const struct lv_cfg_field lv_cfg_redirect_fields[];

/* A path_prefix / path_exact (f->min: the enum lv_route_path_kind) into
 * the struct lv_route at dst: starts with '/', in normalized form. */
int lv_cfg_route_path(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                      const struct lv_cfg_field *f);
/* Compiles a regex scalar; NULL after an error at the offending column. */
struct lv_regex *lv_cfg_regex(struct lv_cfg_ctx *c, yaml_node_t *n);

/* strip_prefix, add_prefix, rewrite and host_rewrite of a pool route;
 * groups: its path_regex's capture groups, -1 without one. */
int lv_cfg_read_rewrites(struct lv_cfg_ctx *c, const struct route_yaml *y, struct lv_route *r,
                         int groups);
/* request_headers / response_headers: set, add, remove. */
int lv_cfg_read_edits(struct lv_cfg_ctx *c, yaml_node_t *n, int groups, struct lv_route_fields *e);
int lv_cfg_read_redirect(struct lv_cfg_ctx *c, yaml_node_t *n, struct lv_route *r, int groups);
/* respond: and no_route: (status, body, content_type). */
int lv_cfg_read_respond(struct lv_cfg_ctx *c, yaml_node_t *n, struct lv_route *r,
                        uint64_t default_status);

/* --- helpers ----------------------------------------------------------------------- */

/* Reports msg at byte off of a scalar's text (exact for a one-line scalar
 * without escapes; at the scalar otherwise). */
void lv_cfg_error_at(struct lv_cfg_ctx *c, const yaml_node_t *n, size_t off, const char *msg);
/* A copy of a scalar (its length in *len when not NULL); NULL after an error. */
char *lv_cfg_dup_scalar(struct lv_cfg_ctx *c, yaml_node_t *n, const char *expected, size_t *len);
/* An HTTP token (a header name). */
bool lv_cfg_is_token(const char *s);
/* Visible ASCII only (no space, no control), none of the bytes in except. */
bool lv_cfg_visible(const char *s, const char *except);

/* The value of key in mapping map, or NULL (absent, or map is not a mapping). */
yaml_node_t *lv_cfg_map_get(struct lv_cfg_ctx *c, yaml_node_t *map, const char *key);

/* Prints "FILE:LINE:COL: key.path: warning: ..." to c->errs; not an error. */
void lv_cfg_warn(struct lv_cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends to c->keypath; returns the length to restore it to. */
size_t lv_cfg_keypath_push(struct lv_cfg_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A parser that keeps the node (yaml_node_t * at dst) to read later. */
int lv_cfg_keep(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f);

/* A parser that reads the value with the global key of the same name's
 * parser: a pool's `retry:` means what the top-level `retry:` means. */
int lv_cfg_like_global(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                       const struct lv_cfg_field *f);

/* A pool or route name: 1 to LV_NAME_MAX letters, digits, '_', '-', '.'
 * (it appears in metrics labels and logs as it is). */
bool lv_cfg_name_ok(const char *s);

/* The timeouts a pool or a route may set: connect, per_try, backend,
 * tunnel (the client-side ones are read before a route is known). */
extern const struct lv_cfg_field lv_cfg_upstream_timeout_fields[];

#endif
