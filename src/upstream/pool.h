/*
 * A worker's idle keep-alive connections to one backend: a LIFO list (the
 * most recently used connection is the warmest, and the least recently used
 * ones age out), bounded by max_idle. Pure bookkeeping: the connections
 * themselves (sockets, timers) belong to the proxy, which embeds a
 * struct lv_pool_entry in each.
 */
#ifndef LV_UPSTREAM_POOL_H
#define LV_UPSTREAM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lv_pool_entry {
    struct lv_pool_entry *prev, *next;
    bool pooled;
};

struct lv_pool {
    struct lv_pool_entry head; /* head.next: most recent */
    size_t n;
    size_t max_idle;
    uint64_t reused;  /* acquisitions served from the pool */
    uint64_t created; /* connections this worker opened to the backend */
};

void lv_pool_init(struct lv_pool *p, size_t max_idle);

/* Adds an idle connection. If the pool is over max_idle afterwards, returns
 * the entry to close (the oldest, or e itself when max_idle is 0), already
 * removed; else NULL. */
struct lv_pool_entry *lv_pool_put(struct lv_pool *p, struct lv_pool_entry *e);

/* Takes the most recently used idle connection, or NULL. */
struct lv_pool_entry *lv_pool_get(struct lv_pool *p);

/* Removes e (closed by the backend, or timed out). No-op if not pooled. */
void lv_pool_remove(struct lv_pool *p, struct lv_pool_entry *e);

/* The oldest idle entry, or NULL (for closing everything at shutdown). */
struct lv_pool_entry *lv_pool_oldest(struct lv_pool *p);

#endif
