/*
 * Routes: which requests go where. A route is a match (host, path, methods,
 * header and query conditions) and an action (a pool, a redirect or a
 * direct answer); a table is an ordered list of routes in which the first
 * route that matches a request wins, as nginx's regex locations, HAProxy's
 * use_backend lines and Envoy's routes do.
 *
 * A table is built once per configuration (lv_route_table_create), is
 * immutable afterwards and is shared by every worker: matching only reads
 * it. What a match needs that changes — PCRE2's match data — is in a
 * scratch block that each worker owns (lv_route_scratch_create), so a
 * match allocates nothing.
 *
 * The table is indexed (route/index.h): a hash of the host names and
 * wildcard suffixes routes name, and per host a trie of path segments, so
 * that a request is checked against the few routes that can match it, in
 * table order, instead of against every route. The answer is by
 * definition the one a scan of every route in order would give (the unit
 * tests compare the two).
 *
 * Matching is on the request as route/path.h normalizes it: the host
 * without port in lower case, the path with its unreserved escapes
 * decoded, "//" merged and dot segments resolved; query parameters and
 * header values as the client sent them. docs/routes.md has the rules.
 *
 * Pure: no I/O, no clock, no global state.
 */
#ifndef LV_ROUTE_ROUTE_H
#define LV_ROUTE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "route/path.h"
#include "route/route-t.h"
#include "route/template.h"

struct lv_head;

/* Frees what a route owns (not the route itself). */
void lv_route_dispose(struct lv_route *r);

/* A compiled table: routes in order, and their index. */
struct lv_route_table {
    struct lv_route *routes;
    uint32_t n;
    struct lv_route_index *index;
};

/*
 * Builds a table from routes[0..n) (a heap array, taken over whatever
 * happens; n <= LV_ROUTE_MAX). Returns NULL when out of memory.
 */
struct lv_route_table *lv_route_table_create(struct lv_route *routes, uint32_t n);
void lv_route_table_destroy(struct lv_route_table *t);

/* A worker's scratch for matching (PCRE2 match data). One per thread; it
 * serves any table, across reloads. NULL when out of memory. */
struct lv_route_scratch;
struct lv_route_scratch *lv_route_scratch_create(void);
void lv_route_scratch_destroy(struct lv_route_scratch *s);

/* A request as routes see it. Every pointer is the caller's and must stay
 * valid while the request is matched and its action built. */
struct lv_route_req {
    uint8_t method;   /* llhttp_method_t */
    const char *host; /* lv_route_host's result; NULL: no usable host */
    size_t host_len;
    const char *path; /* lv_path_normalize's result */
    size_t path_len;
    const char *query; /* raw, without '?'; NULL: the target has no '?' */
    size_t query_len;
    const struct lv_head *head; /* header fields; NULL: none */
};

/*
 * Fills req from a request: host (the Host value, or an absolute-form
 * target's authority; NULL/0 when there is none), target (origin form, or
 * "*"), the parsed head. path_buf has room for target_len bytes and
 * host_buf for LV_ROUTE_HOST_MAX: req points into them. Returns 0, or -1
 * when the path has an invalid escape (answer 400).
 */
int lv_route_req_init(struct lv_route_req *req, uint8_t method, const char *host, size_t host_len,
                      const char *target, size_t target_len, const struct lv_head *head,
                      char *path_buf, char *host_buf);

/* The outcome of a match. */
struct lv_route_hit {
    const struct lv_route *route;                    /* NULL: no route matched */
    uint32_t index;                                  /* of the route in the table */
    uint32_t npairs;                                 /* path_regex captures: $0 .. $(npairs - 1) */
    size_t ovector[2 * (LV_ROUTE_MAX_CAPTURES + 1)]; /* offsets into req->path */
};

/*
 * The first route of t that matches req; fills *hit and returns hit->route
 * (NULL when none matches). Uses s, which the calling thread owns. Reads t
 * only: any number of threads may match against one table at once.
 */
const struct lv_route *lv_route_match(const struct lv_route_table *t,
                                      const struct lv_route_req *req, struct lv_route_scratch *s,
                                      struct lv_route_hit *hit);

/* The same answer by checking every route in order: the reference the
 * index is tested against. */
const struct lv_route *lv_route_match_linear(const struct lv_route_table *t,
                                             const struct lv_route_req *req,
                                             struct lv_route_scratch *s, struct lv_route_hit *hit);

/*
 * Fills env's host, path, query, method, route, pool and captures from a
 * match; the caller sets scheme, client_addr and request_id. env points
 * into req and hit.
 */
void lv_route_env_init(struct lv_template_env *env, const struct lv_route_req *req,
                       const struct lv_route_hit *hit);

/*
 * The target a pool route sends: its path rewritten (strip_prefix, then
 * add_prefix; or rewrite), from the normalized path, followed by "?" and the
 * query when the request has one. Writes it to out (cap bytes) and returns
 * its length; returns 0 when the route rewrites nothing (the client's target
 * is sent as it came), -1 when it would be longer than cap (answer 414).
 */
ssize_t lv_route_target(const struct lv_route *r, const struct lv_route_req *req,
                        const struct lv_template_env *env, char *out, size_t cap);

/*
 * A redirect route's Location: the location expanded, then "?" and the
 * request's query when keep_query is on, the request has a query and the
 * location has none of its own. Returns the length written to out, or -1
 * when longer than cap (answer 414).
 */
ssize_t lv_route_location(const struct lv_route *r, const struct lv_route_req *req,
                          const struct lv_template_env *env, char *out, size_t cap);

/*
 * True if every request that b matches is matched by a too (so b, after a,
 * is never reached). Conservative: false when it cannot tell (two different
 * regexes).
 */
bool lv_route_covers(const struct lv_route *a, const struct lv_route *b);

/* True if a host pattern is valid: a name in lower case (letters, digits,
 * '-', '.', '_'), optionally "*." first, or an IP literal. */
bool lv_route_host_pattern_ok(const char *p);

#endif
