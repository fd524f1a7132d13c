/*
 * A backend as all workers share it: the state that must be the same
 * everywhere (requests in flight, for least_connections; later health and
 * breaker) lives here, changed with C11 atomics. One struct per configured
 * backend id; it survives a reload when the id stays.
 *
 * Per-worker parts (the keep-alive pool) are indexed by worker id and only
 * ever touched by that worker.
 */
#ifndef LV_UPSTREAM_BACKEND_H
#define LV_UPSTREAM_BACKEND_H

#include <stdatomic.h>
#include <stdint.h>

#include "upstream/pool.h"

struct lv_backend_cfg;

struct lv_backend {
    char *id;
    unsigned index;                   /* position in the current configuration */
    atomic_int active;                /* attempts in flight, all workers */
    atomic_uint_fast64_t requests;    /* attempts started */
    const struct lv_backend_cfg *cfg; /* of the configuration in use */
    unsigned nworkers;
    struct lv_pool *pools; /* [nworkers] */
};

/* Creates the shared state for a backend, with one empty pool per worker.
 * Returns NULL on ENOMEM. */
struct lv_backend *lv_backend_create(const struct lv_backend_cfg *cfg, unsigned index,
                                     unsigned nworkers, unsigned max_idle);
/* Frees it; the pools must be empty (their connections closed). */
void lv_backend_destroy(struct lv_backend *b);

static inline int lv_backend_active(const struct lv_backend *b)
{
    return atomic_load_explicit(&((struct lv_backend *)b)->active, memory_order_relaxed);
}

#endif
