/*
 * Which backends can serve now, and when one will. The one answer to "can
 * this backend take a request now?" (its verdict), which selection, /health,
 * /backends/health, the metrics and the dashboard all read, so they cannot
 * disagree; the backends eligible for one pick (operator state, health,
 * breaker, untried first, the last resort, slow start); and the
 * Retry-After of a 503 no_backend.
 *
 * Pure policy: it reads the backends' shared state (atomics) and nothing
 * else — no clock, no socket. `now` and the random source are arguments, so
 * every rule is unit tested with a fake clock (tests/unit/upstream/
 * test_eligible.c). It admits nothing: after the balancer chose among the
 * eligible backends, lv_breaker_allow admits (or not) the request.
 *
 * The verdict of one backend is the first line that applies (a disabled
 * breaker counts as closed):
 *
 *   verdict      when                                  "state"     usable
 *   DISABLED     operator disabled it                  disabled    no
 *   DRAINING     operator is draining it               draining    no
 *   OPEN         breaker open, its period not over     open        no
 *   PROBES_OUT   breaker half-open, every probe        half_open   no
 *                slot taken
 *   RISING       checks failing, the last one passed   unhealthy   no (the last
 *                                                                  resort: below)
 *   UNHEALTHY    checks failing                        unhealthy   no
 *   PROBING      breaker open and its period over, or  half_open   yes (as a probe)
 *                half-open with a probe slot free
 *   SERVING      otherwise                             ok          yes
 *
 * The last resort: while no backend of the set is usable, the RISING ones
 * are eligible (a backend on its way back beats a certain 503); while any
 * is usable, rise counts in full.
 */
#ifndef LV_UPSTREAM_ELIGIBLE_H
#define LV_UPSTREAM_ELIGIBLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lv_backend;
struct lv_breaker_cfg;
struct lv_rand;

enum lv_verdict {
    LV_VERDICT_SERVING,
    LV_VERDICT_PROBING,
    LV_VERDICT_RISING,
    LV_VERDICT_UNHEALTHY,
    LV_VERDICT_PROBES_OUT,
    LV_VERDICT_OPEN,
    LV_VERDICT_DRAINING,
    LV_VERDICT_DISABLED,
    LV_VERDICT_COUNT
};

/* Can b take a new request now? Reads b's atomics once each; bc is the
 * breaker configuration of the caller's generation. */
enum lv_verdict lv_eligible_verdict(const struct lv_backend *b, const struct lv_breaker_cfg *bc,
                                    uint64_t now);

/* Usable: SERVING or PROBING. */
static inline bool lv_verdict_usable(enum lv_verdict v)
{
    return v == LV_VERDICT_SERVING || v == LV_VERDICT_PROBING;
}

/* The word /backends/health and /api/history show for it ("ok", "half_open",
 * "unhealthy", "open", "draining", "disabled"; table above). Static. */
const char *lv_verdict_state(enum lv_verdict v);

/* Verdict token for logs and tests: "serving", "probing", ... Static. */
const char *lv_verdict_name(enum lv_verdict v);

/* Is any of the n backends usable? */
bool lv_eligible_any_usable(struct lv_backend *const *bs, size_t n, const struct lv_breaker_cfg *bc,
                            uint64_t now);

/* What a set of backends can do now: how many are usable, and how many
 * serve as the last resort (the RISING ones while none is usable, else 0).
 * Levee answers from the set when usable + last_resort > 0. */
struct lv_eligible_tally {
    size_t usable;
    size_t last_resort;
};
struct lv_eligible_tally lv_eligible_tally(struct lv_backend *const *bs, size_t n,
                                           const struct lv_breaker_cfg *bc, uint64_t now);

/* Slow start: the share (0.1..1] of its traffic a backend that came back
 * into service at recovered_at (ms; 0: never left it) gets at `now`,
 * growing linearly over slow_start ms (0: no slow start, always 1). */
double lv_eligible_ramp(uint64_t recovered_at, uint64_t now, uint64_t slow_start);

/* One pick's question: which backends of a set may take this request. */
struct lv_eligible_ask {
    struct lv_backend *const *backends; /* [n] */
    size_t n;
    const struct lv_breaker_cfg *breaker;
    uint64_t slow_start;             /* ms; 0: off */
    const struct lv_backend *busy;   /* never eligible (a hedge's other try), or NULL */
    struct lv_backend *const *tried; /* [ntried]: the backends the request tried */
    size_t ntried;
    bool untried_only; /* leave out those in tried */
};

/*
 * Marks eligible[i] for each backend and returns how many are. The eligible
 * ones are the usable ones that are not busy (nor tried, with untried_only);
 * if none is and no backend of the whole set is usable, the last resort:
 * the RISING ones, with the same exclusions.
 *
 * weights[] holds the configured weights (each >= 1) on entry; on return
 * an eligible backend in slow start has its weight scaled by its ramp (at
 * least 1). With slow_start, each eligible backend in its ramp stays
 * eligible with the probability of its ramp (one lv_rand_unit draw from
 * rand each), but thinning never takes out the last eligible backend: the
 * count is 0 only when nothing is eligible before thinning.
 */
size_t lv_eligible_mark(const struct lv_eligible_ask *a, uint64_t now, struct lv_rand *rand,
                        bool *eligible, uint32_t *weights);

/*
 * Seconds a client should wait before trying again when no backend of the
 * set can serve (Retry-After of a 503 no_backend): until the soonest of
 * each open breaker's probe and, for each backend failing its checks, one
 * check interval (check_interval ms). 1 when none of these applies; at
 * most 3600.
 */
unsigned lv_eligible_retry_after(struct lv_backend *const *bs, size_t n, uint64_t check_interval,
                                 uint64_t now);

#endif
