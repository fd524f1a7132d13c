/*
 * A worker's idle keep-alive connections to one backend: a LIFO list (the
 * most recently used connection is the warmest, and the least recently used
 * ones age out), bounded by max_idle. Pure bookkeeping: the connections
 * themselves (sockets, timers) belong to the proxy, which embeds a
 * struct lv_pool_entry in each.
 *
 * The bound is not stored here: the caller passes the max_idle of its
 * current configuration generation with each put. The pool outlives
 * reloads (it belongs to a backend that keeps its id), and only its worker
 * touches it, so a reload's new max_idle applies from the worker's first
 * put after it switched generation — no shared copy of the limit to keep
 * in step across threads. A lowered limit closes the excess at that put.
 */
#ifndef LV_UPSTREAM_POOL_H
#define LV_UPSTREAM_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"

/* max_idle "unlimited" (the default): the pool holds as many idle
 * connections as demand recently needed; idle_timeout closes the ones LIFO
 * reuse leaves cold, so it shrinks when demand falls. */
#define LV_POOL_UNLIMITED UINT64_MAX

/* pool: in the configuration. */
struct lv_pool_cfg {
    uint64_t max_idle; /* per backend, per worker; LV_POOL_UNLIMITED: no cap */
    uint64_t idle_timeout;
};

/* Embedded in a connection; zeroed memory is a valid entry, not pooled. */
struct lv_pool_entry {
    struct lv_list node;
    bool pooled;
};

struct lv_pool {
    struct lv_list idle; /* first: most recent */
    size_t n;
    uint64_t reused;  /* acquisitions served from the pool */
    uint64_t created; /* connections this worker opened to the backend */
};

void lv_pool_init(struct lv_pool *p);

/* Adds an idle connection as the most recent. If the pool holds more than
 * max_idle afterwards, removes and returns the oldest, to be closed (e
 * itself when max_idle is 0); else NULL. Only after max_idle was lowered can
 * more than one be over: call lv_pool_trim until it returns NULL. */
struct lv_pool_entry *lv_pool_put(struct lv_pool *p, struct lv_pool_entry *e, size_t max_idle);

/* While the pool holds more than max_idle, removes and returns the oldest
 * entry, to be closed; then NULL. */
struct lv_pool_entry *lv_pool_trim(struct lv_pool *p, size_t max_idle);

/* Takes the most recently used idle connection, or NULL. */
struct lv_pool_entry *lv_pool_get(struct lv_pool *p);

/* Removes e (closed by the backend, or timed out). No-op if not pooled. */
void lv_pool_remove(struct lv_pool *p, struct lv_pool_entry *e);

/* The oldest idle entry, or NULL (for closing everything at shutdown). */
struct lv_pool_entry *lv_pool_oldest(struct lv_pool *p);

#endif
