/*
 * A backend as all workers share it: the state that must be the same
 * everywhere lives here, changed with C11 atomics — requests in flight (for
 * least_connections), the circuit breaker, the health verdict of active
 * checks, and when the backend last came back (for slow start). One struct
 * per configured backend id.
 *
 * Per-worker parts (the keep-alive pool) are indexed by worker id and only
 * ever touched by that worker.
 */
#ifndef LV_UPSTREAM_BACKEND_H
#define LV_UPSTREAM_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "upstream/breaker.h"
#include "upstream/health.h"
#include "upstream/pool.h"

struct lv_backend_cfg;
struct lv_config;

struct lv_backend {
    char *id;
    unsigned index;                    /* position in the current configuration */
    atomic_int active;                 /* attempts in flight, all workers */
    atomic_uint_fast64_t requests;     /* attempts started */
    atomic_bool healthy;               /* active checks' verdict (true without checks) */
    atomic_uint_fast64_t recovered_at; /* ms: last return to service, for slow start */
    struct lv_breaker breaker;
    const struct lv_backend_cfg *cfg; /* of the configuration in use */
    unsigned nworkers;
    struct lv_pool *pools; /* [nworkers] */
    /* Active checks: touched by the main thread only. */
    struct lv_health health;
    uint64_t last_check_ms; /* wall clock */
    char last_check[48];    /* "ok (200)", "timeout", "connection refused" */
};

/* Creates the shared state for backend `index` of cfg, with one empty pool
 * per worker. Returns NULL on ENOMEM. */
struct lv_backend *lv_backend_create(const struct lv_config *cfg, unsigned index,
                                     unsigned nworkers);
/* Frees it; the pools must be empty (their connections closed). */
void lv_backend_destroy(struct lv_backend *b);

static inline int lv_backend_active(const struct lv_backend *b)
{
    return atomic_load_explicit(&((struct lv_backend *)b)->active, memory_order_relaxed);
}

/* Could b take a request now: healthy, and its breaker not refusing? Does
 * not admit anything (lv_breaker_allow does). */
bool lv_backend_usable(struct lv_backend *b, uint64_t now);

/* The share (0..1] of its traffic a backend that came back at
 * recovered_at gets at `now`, ramping linearly over slow_start ms. */
double lv_backend_ramp(const struct lv_backend *b, uint64_t now, uint64_t slow_start);

/* Marks the backend back in service (slow start begins). */
void lv_backend_recovered(struct lv_backend *b, uint64_t now);

#endif
