/*
 * The route index (route/index.h): a hash of host keys to groups, and a
 * trie of path segments per group, its children found through one hash
 * keyed by (parent, segment). Built once; read-only afterwards.
 */
#include "route/index.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "route/route-t.h"

/* Where a route sits on the node its path ends at. */
enum {
    L_PREFIX,      /* path_prefix "/a": the request's path is /a, or /a/... */
    L_SLASH,       /* path_prefix "/a/" (or "/"): the request's path goes on after /a/ */
    L_EXACT,       /* path_exact "/a" */
    L_EXACT_SLASH, /* path_exact "/a/" (or "/") */
    L_COUNT
};

struct idlist {
    uint32_t *ids;
    uint32_t n, cap;
};

struct node {
    uint32_t parent; /* NO_NODE for a group's root */
    const char *seg; /* in a route's path */
    uint32_t seg_len;
    struct idlist lists[L_COUNT];
};

struct group {
    uint32_t root;
    struct idlist always; /* no path condition, or path_regex */
};

enum { KEY_HOST, KEY_WILDCARD };

struct hslot {
    const char *key; /* NULL: free */
    uint32_t len;
    uint8_t kind;
    uint32_t group;
};

#define NO_NODE UINT32_MAX

struct lv_route_index {
    struct group *groups;
    uint32_t ngroups;
    struct node *nodes;
    uint32_t nnodes;
    struct hslot *hslots;
    uint32_t hmask;
    uint32_t *nslots; /* node index + 1; 0: free */
    uint32_t nmask;
    uint32_t wild_labels; /* labels of the longest wildcard suffix */
};

static uint64_t fnv(uint64_t h, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ull;
    }
    return h;
}

#define FNV_SEED 14695981039346656037ull

static uint32_t pow2_above(uint64_t n)
{
    uint32_t p = 16;
    while (p < 2 * n)
        p <<= 1;
    return p;
}

static bool push(struct idlist *l, uint32_t id)
{
    if (l->n && l->ids[l->n - 1] == id) return true; /* a route with two hosts of one group */
    if (l->n == l->cap) {
        uint32_t cap = l->cap ? 2 * l->cap : 4;
        uint32_t *ids = realloc(l->ids, cap * sizeof(*ids));
        if (ids == NULL) return false;
        l->ids = ids;
        l->cap = cap;
    }
    l->ids[l->n++] = id;
    return true;
}

/* --- host keys ------------------------------------------------------------- */

static struct hslot *host_slot(const struct lv_route_index *ix, uint8_t kind, const char *key,
                               size_t len)
{
    uint32_t i = (uint32_t)fnv(FNV_SEED ^ kind, key, len) & ix->hmask;
    for (;; i = (i + 1) & ix->hmask) {
        struct hslot *s = &ix->hslots[i];
        if (s->key == NULL || (s->kind == kind && s->len == len && memcmp(s->key, key, len) == 0))
            return s;
    }
}

static uint32_t new_node(struct lv_route_index *ix, uint32_t parent, const char *seg, size_t len)
{
    uint32_t id = ix->nnodes++;
    ix->nodes[id] = (struct node){.parent = parent, .seg = seg, .seg_len = (uint32_t)len};
    return id;
}

/* The group of a host pattern, made when new. */
static uint32_t host_group(struct lv_route_index *ix, const char *pattern)
{
    bool wild = pattern[0] == '*';
    const char *key = wild ? pattern + 1 : pattern;
    size_t len = strlen(key);
    struct hslot *s = host_slot(ix, wild ? KEY_WILDCARD : KEY_HOST, key, len);
    if (s->key) return s->group;
    *s = (struct hslot){.key = key,
                        .len = (uint32_t)len,
                        .kind = wild ? KEY_WILDCARD : KEY_HOST,
                        .group = ix->ngroups};
    ix->groups[ix->ngroups++] = (struct group){.root = new_node(ix, NO_NODE, "", 0)};
    if (wild) {
        uint32_t labels = 0;
        for (const char *p = key; *p; p++)
            labels += *p == '.';
        if (labels > ix->wild_labels) ix->wild_labels = labels;
    }
    return s->group;
}

/* --- path trie ------------------------------------------------------------- */

static uint32_t *child_slot(const struct lv_route_index *ix, uint32_t parent, const char *seg,
                            size_t len)
{
    uint32_t i = (uint32_t)fnv(FNV_SEED ^ parent, seg, len) & ix->nmask;
    for (;; i = (i + 1) & ix->nmask) {
        uint32_t *s = &ix->nslots[i];
        if (*s == 0) return s;
        const struct node *c = &ix->nodes[*s - 1];
        if (c->parent == parent && c->seg_len == len && memcmp(c->seg, seg, len) == 0) return s;
    }
}

static uint32_t child(const struct lv_route_index *ix, uint32_t parent, const char *seg, size_t len)
{
    uint32_t s = *child_slot(ix, parent, seg, len);
    return s ? s - 1 : NO_NODE;
}

/* Segments of a normalized path, after its leading '/': "/a/b/" has two,
 * and a trailing slash. */
static uint32_t count_segments(const char *p, size_t n)
{
    uint32_t k = 0;
    for (size_t i = 1; i < n; i++)
        k += p[i] == '/';
    return k + (n > 1 && p[n - 1] != '/');
}

static bool add_to_group(struct lv_route_index *ix, uint32_t g, const struct lv_route *r,
                         uint32_t id)
{
    if (r->path_kind != LV_RPATH_PREFIX && r->path_kind != LV_RPATH_EXACT)
        return push(&ix->groups[g].always, id);
    const char *p = r->path;
    size_t n = r->path_len, i = 1;
    uint32_t node = ix->groups[g].root;
    while (i < n) {
        const char *slash = memchr(p + i, '/', n - i);
        size_t end = slash ? (size_t)(slash - p) : n;
        uint32_t *s = child_slot(ix, node, p + i, end - i);
        if (*s == 0) *s = new_node(ix, node, p + i, end - i) + 1;
        node = *s - 1;
        i = end + 1;
    }
    bool trailing = n > 0 && p[n - 1] == '/';
    int l = r->path_kind == LV_RPATH_PREFIX ? (trailing ? L_SLASH : L_PREFIX)
                                            : (trailing ? L_EXACT_SLASH : L_EXACT);
    return push(&ix->nodes[node].lists[l], id);
}

struct lv_route_index *lv_route_index_create(const struct lv_route *routes, uint32_t n)
{
    uint64_t nhosts = 0, nnodes = 1;
    for (uint32_t i = 0; i < n; i++) {
        const struct lv_route *r = &routes[i];
        uint32_t groups = r->nhosts ? r->nhosts : 1;
        nhosts += r->nhosts;
        nnodes += r->nhosts; /* roots */
        if (r->path_kind == LV_RPATH_PREFIX || r->path_kind == LV_RPATH_EXACT)
            nnodes += (uint64_t)groups * count_segments(r->path, r->path_len);
    }
    struct lv_route_index *ix = calloc(1, sizeof(*ix));
    if (ix == NULL) return NULL;
    ix->hmask = pow2_above(nhosts) - 1;
    ix->nmask = pow2_above(nnodes) - 1;
    ix->groups = calloc(nhosts + 1, sizeof(*ix->groups));
    ix->nodes = calloc(nnodes, sizeof(*ix->nodes));
    ix->hslots = calloc((size_t)ix->hmask + 1, sizeof(*ix->hslots));
    ix->nslots = calloc((size_t)ix->nmask + 1, sizeof(*ix->nslots));
    if (!ix->groups || !ix->nodes || !ix->hslots || !ix->nslots) goto fail;
    ix->groups[ix->ngroups++] = (struct group){.root = new_node(ix, NO_NODE, "", 0)};
    for (uint32_t i = 0; i < n; i++) {
        const struct lv_route *r = &routes[i];
        if (r->nhosts == 0 && !add_to_group(ix, 0, r, i)) goto fail;
        for (uint32_t h = 0; h < r->nhosts; h++) {
            if (!add_to_group(ix, host_group(ix, r->hosts[h]), r, i)) goto fail;
        }
    }
    return ix;
fail:
    lv_route_index_destroy(ix);
    return NULL;
}

void lv_route_index_destroy(struct lv_route_index *ix)
{
    if (ix == NULL) return;
    for (uint32_t i = 0; i < ix->nnodes; i++) {
        for (int l = 0; l < L_COUNT; l++)
            free(ix->nodes[i].lists[l].ids);
    }
    for (uint32_t g = 0; g < ix->ngroups; g++)
        free(ix->groups[g].always.ids);
    free(ix->groups);
    free(ix->nodes);
    free(ix->hslots);
    free(ix->nslots);
    free(ix);
}

/* --- lookup ---------------------------------------------------------------- */

struct spans {
    struct lv_route_span *v;
    int n;
    bool overflow;
};

static void add_span(struct spans *s, const struct idlist *l)
{
    if (l->n == 0) return;
    if (s->n == LV_ROUTE_SPANS) {
        s->overflow = true;
        return;
    }
    s->v[s->n++] = (struct lv_route_span){l->ids, l->n};
}

static void walk(const struct lv_route_index *ix, const struct group *g, const char *path, size_t n,
                 struct spans *s)
{
    add_span(s, &g->always);
    if (n == 0 || path[0] != '/') return; /* "*" */
    uint32_t node = g->root;
    size_t pos = 0; /* path[0..pos) is the node's path */
    for (;;) {
        const struct node *nd = &ix->nodes[node];
        add_span(s, &nd->lists[L_PREFIX]);
        if (pos == n) {
            add_span(s, &nd->lists[L_EXACT]);
            return;
        }
        add_span(s, &nd->lists[L_SLASH]); /* path[pos] is '/' */
        if (pos + 1 == n) {
            add_span(s, &nd->lists[L_EXACT_SLASH]);
            return;
        }
        const char *seg = path + pos + 1;
        const char *slash = memchr(seg, '/', n - pos - 1);
        size_t len = slash ? (size_t)(slash - seg) : n - pos - 1;
        node = child(ix, node, seg, len);
        if (node == NO_NODE) return;
        pos += 1 + len;
    }
}

static void host_groups(const struct lv_route_index *ix, const char *host, size_t n,
                        const char *path, size_t path_len, struct spans *s)
{
    const struct hslot *h = host_slot(ix, KEY_HOST, host, n);
    if (h->key) walk(ix, &ix->groups[h->group], path, path_len, s);
    /* The suffixes that start at one of the last wild_labels dots; the
     * first character is never one (a wildcard needs a label before). */
    uint32_t seen = 0;
    for (size_t i = n; i-- > 1 && seen < ix->wild_labels;) {
        if (host[i] != '.') continue;
        seen++;
        h = host_slot(ix, KEY_WILDCARD, host + i, n - i);
        if (h->key) walk(ix, &ix->groups[h->group], path, path_len, s);
    }
}

int lv_route_index_lookup(const struct lv_route_index *ix, const char *host, size_t host_len,
                          const char *path, size_t path_len, struct lv_route_span *spans)
{
    struct spans s = {spans, 0, false};
    walk(ix, &ix->groups[0], path, path_len, &s);
    if (host && host_len) host_groups(ix, host, host_len, path, path_len, &s);
    return s.overflow ? -1 : s.n;
}
