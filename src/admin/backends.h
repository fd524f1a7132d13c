/*
 * The /backends/health document: every backend of the current
 * configuration with its operator state, health, breaker, traffic and
 * recent latency (docs/admin-api.md).
 */
#ifndef LV_ADMIN_BACKENDS_H
#define LV_ADMIN_BACKENDS_H

#include <stdint.h>

struct lv_gen;
struct lv_history;
struct lv_strbuf;

/* The shared rate-limit store (Redis) as the document shows it. */
struct lv_admin_store {
    int connected;      /* workers connected to it now */
    unsigned workers;   /* workers in all */
    uint64_t fallbacks; /* checks it did not answer (levee_rate_limit_store_fallbacks_total) */
};

/* When the document is made: the monotonic clock in ms (breakers and
 * verdicts) and in ns (the latency EWMA), and the wall clock in ms (its
 * "time"). */
struct lv_admin_now {
    uint64_t ms, ns, wall_ms;
};

/* Writes the document for generation g. Each backend's "state" and
 * "usable" come from one verdict (lv_eligible_verdict), so they cannot
 * disagree; latency quantiles come from hist (NULL: 0). store is shown
 * when g's limits are kept in Redis ("rate_limit_store": null otherwise).
 * Reads the backends' atomics only: any thread. */
void lv_admin_backends_json(struct lv_strbuf *sb, const struct lv_gen *g, struct lv_history *hist,
                            const struct lv_admin_store *store, const struct lv_admin_now *now);

#endif
