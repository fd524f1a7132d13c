/*
 * The index of a route table (route/route.h): which routes can match a
 * request, found without looking at the others.
 *
 * Routes are grouped by the host patterns they name: one group per exact
 * host, one per wildcard suffix ("*.example.com" -> ".example.com"), and
 * group 0 for routes that name no host. A request's groups are group 0,
 * its host's group, and the group of each suffix of its host that starts
 * at a dot (as many as the longest wildcard has labels). In a group, a
 * route with path_prefix or path_exact sits on a trie of path segments;
 * the others (no path condition, path_regex) are always candidates.
 *
 * A lookup answers with sorted lists of route indexes (spans) whose union
 * holds every route that can match; the caller checks the candidates in
 * table order and takes the first that matches. It reads the index only,
 * so any number of threads may look up at once.
 */
#ifndef LV_ROUTE_INDEX_H
#define LV_ROUTE_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct lv_route;
struct lv_route_index;

/* A sorted list of route indexes. */
struct lv_route_span {
    const uint32_t *ids;
    uint32_t n;
};

/* Spans one lookup may return; more (a path deeper than the tries of many
 * host groups) makes the caller check every route. */
#define LV_ROUTE_SPANS 48

/* Indexes routes[0..n); the routes must outlive the index (it points into
 * their strings). NULL when out of memory. */
struct lv_route_index *lv_route_index_create(const struct lv_route *routes, uint32_t n);
void lv_route_index_destroy(struct lv_route_index *ix);

/*
 * Writes to spans (LV_ROUTE_SPANS of them) the candidates for a request
 * with this host (lv_route_host's form; NULL when none) and path
 * (normalized). Returns how many spans, or -1 when they do not fit.
 */
int lv_route_index_lookup(const struct lv_route_index *ix, const char *host, size_t host_len,
                          const char *path, size_t path_len, struct lv_route_span *spans);

#endif
