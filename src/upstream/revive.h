/*
 * Recovery without waiting for a check. When no backend of a set is usable
 * (every breaker open, every backend failing its checks) levee answers 503
 * at once — and, without this, keeps answering 503 until a check passes or
 * an open period ends, up to one check interval or `timeout` after the
 * backends are back. Instead, a request that finds nothing usable may
 * probe one backend: the one most likely to be back. A dead backend
 * refuses a connect in microseconds (and a silent one costs at most
 * timeouts.connect), so a probe is cheap; bounded, it cannot become a
 * storm: at most one probe in flight per backend, and at most one started
 * per backend per `interval`.
 *
 * Which backend: among the candidates (enabled by the operator, not
 * usable) whose probe slot is free,
 *   1. one that passed a health check after it went out, the newest pass
 *      first (it says it is back; the checks have not yet risen);
 *   2. else the one out the longest (its breaker opened, or its checks
 *      failed, longest ago): after a crash and restart of several, the
 *      first to go down is the first back.
 * Ties go to the lower index.
 *
 * The slot of a backend is one atomic word: the start of its last probe
 * (ms) and whether it is still in flight, changed by compare-and-swap, so
 * workers racing for the same backend send one probe. The wiring: take a
 * slot with lv_revive_take, send the request there as a breaker probe
 * (lv_breaker_health_passed, then lv_breaker_allow), and give the slot
 * back with lv_revive_done when the try ends, whatever its outcome.
 *
 * Pure: no clock, no I/O (tests/unit/upstream/test_revive.c).
 */
#ifndef LV_UPSTREAM_REVIVE_H
#define LV_UPSTREAM_REVIVE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One per backend, shared by the workers; zeroed: free, never used. */
struct lv_revive {
    atomic_uint_fast64_t word; /* (start ms + 1) << 1 | in flight; 0: never */
};

/* A backend as the choice sees it. */
struct lv_revive_stat {
    bool candidate;     /* enabled, not usable now, and out because it could not be
                           reached: its last try or check got no answer at all (one
                           that answers 5xx, or fails its checks with a status, is
                           left to its breaker and checks) */
    uint64_t out_since; /* ms: when it went out (its breaker opened, its checks failed);
                           0: unknown (ranks as out the longest) */
    uint64_t last_pass; /* ms: its last passing health check; 0: none */
};

/* May a probe of r start at `now`: none in flight, and the last one
 * started at least `interval` ms ago (or never)? */
bool lv_revive_ready(const struct lv_revive *r, uint64_t now, uint64_t interval);

/* Takes r's slot for a probe starting at `now` if lv_revive_ready; true
 * if this caller got it. */
bool lv_revive_claim(struct lv_revive *r, uint64_t now, uint64_t interval);

/* The probe ended: the slot is free again (its start still counts for the
 * interval). */
void lv_revive_done(struct lv_revive *r);

/*
 * Picks the backend to probe among the n (ranking above) and claims its
 * slot: slots[i] belongs to st[i]. Returns its index, or -1 when no
 * candidate's slot is free. A slot lost to another worker is skipped for
 * the next in rank.
 */
int lv_revive_take(struct lv_revive *const *slots, const struct lv_revive_stat *st, size_t n,
                   uint64_t now, uint64_t interval);

#endif
