/*
 * Load balancing strategies behind one interface. A strategy is a small
 * file with a `static const` table of callbacks (h2o's shape): per-worker
 * state (create/destroy) and pick, which chooses one eligible backend.
 * Eligibility (health, breaker, "not tried yet for this request") is decided
 * by the caller; strategies only choose among what they are offered.
 */
#ifndef LV_UPSTREAM_BALANCER_H
#define LV_UPSTREAM_BALANCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lv_backend;
struct lv_rand;

struct lv_pick {
    struct lv_backend *const *backends;
    size_t n;
    const bool *eligible;    /* [n]; NULL: all eligible */
    const uint32_t *weights; /* [n] effective weights, each >= 1 */
    struct lv_rand *rand;
    uint64_t now_ns; /* monotonic, for time-decayed metrics */
};

struct lv_balancer_ops {
    const char *name;
    /* Per-worker state for n backends; NULL on ENOMEM. */
    void *(*create)(size_t n);
    void (*destroy)(void *state);
    /* Index of the chosen backend, or -1 when none is eligible. */
    int (*pick)(void *state, const struct lv_pick *p);
};

/* NULL-terminated list of every strategy. */
extern const struct lv_balancer_ops *const lv_balancers[];

/* The strategy with that name, or NULL. */
const struct lv_balancer_ops *lv_balancer_find(const char *name);

static inline bool lv_pick_eligible(const struct lv_pick *p, size_t i)
{
    return p->eligible == NULL || p->eligible[i];
}

#endif
