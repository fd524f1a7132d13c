/*
 * Outlier ejection by latency and by timeouts: a backend that answers far
 * slower, or times out far more often, than its peers is taken out of
 * rotation — its breaker opened by lv_breaker_eject, for the breaker's
 * growing open time, and brought back by its half-open probes. Envoy
 * ejects on consecutive errors and on success rate; nothing in nginx,
 * HAProxy or Envoy ejects on latency. A hang costs a client the per-try
 * timeout and a POST its request (it cannot be replayed): a backend that
 * hangs one request in five must not keep a third of the traffic.
 *
 * One sweep, every `interval`, over the backends of a set, from what each
 * did over the last interval and its recent latency (struct
 * lv_outlier_stat; the caller keeps the counters and the latency window,
 * upstream/latwin.h). Backend i, in
 * rotation and with at least minimum_requests tries that ended (answered
 * + timed out), is compared with the median M of its peers — the other
 * backends in rotation with minimum_requests — on two figures:
 *
 *   timeouts   share t = timeouts / (answered + timeouts):
 *              outlier if t >= factor × M(t) and t - M(t) >= timeout_floor
 *   latency    its recent latency l (0: unknown, not judged):
 *              outlier if l >= factor × M(l) and l - M(l) >= latency_floor
 *
 * The floors keep a backend from being ejected for being 3 × faster-than-
 * noise slower (2 ms against 0.5 ms) or for one timeout among peers with
 * none. Without a peer, nothing is judged.
 *
 * The cap (Envoy's max_ejection_percent): backends out of rotation, for any
 * reason (breaker, health, operator), count against it; at most
 * max(1, n × max_ejection_percent / 100) of the n may be out, and never all
 * of them. Under the cap, timeout outliers go first (a timeout is a request
 * lost), the greatest share above the median first; then latency outliers,
 * the greatest ratio to the median first.
 *
 * Pure: no clock, no I/O, no state of its own (tests/unit/upstream/
 * test_outlier.c).
 */
#ifndef LV_UPSTREAM_OUTLIER_H
#define LV_UPSTREAM_OUTLIER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lv_outlier_cfg {
    bool enabled;
    uint64_t interval;             /* ms between sweeps; the stats cover one (1s) */
    double factor;                 /* k: at least k × the peers' median (3) */
    uint64_t latency_floor;        /* µs: and at least this above it (50ms) */
    double timeout_floor;          /* share: and at least this above it (0.05) */
    uint32_t minimum_requests;     /* tries that ended in the interval, to be judged (10) */
    double latency_quantile;       /* which quantile of the answers is "its latency" (0.5) */
    uint32_t max_ejection_percent; /* of the set, out at once, at least one (50) */
};

/* One backend over the last interval: what the sweep reads. */
struct lv_outlier_stat {
    bool in;           /* in rotation (usable); the others are neither judged nor
                          peers, but count against the cap */
    uint64_t answered; /* tries that got a response head */
    uint64_t timeouts; /* tries that timed out, or lost the race to a hedge */
    uint64_t latency;  /* µs, the latency_quantile of its answers in its latency
                          window (lv_latwin_quantile); 0: unknown */
};

enum lv_outlier_why {
    LV_OUTLIER_NONE = 0,
    LV_OUTLIER_TIMEOUTS, /* ejected: its timeout share */
    LV_OUTLIER_SLOW,     /* ejected: its latency */
};

/* Token for logs: "-", "timeouts", "slow". Static. */
const char *lv_outlier_why_name(enum lv_outlier_why why);

/*
 * Judges the n backends of a set; why[i] says whether and why backend i
 * is to be ejected. Returns how many are. Nothing is ejected when the
 * configuration is disabled. n may be 0.
 */
size_t lv_outlier_sweep(const struct lv_outlier_cfg *cfg, const struct lv_outlier_stat *st,
                        size_t n, enum lv_outlier_why *why);

/* How many of n backends may be out of rotation at once: max(1, n ×
 * max_ejection_percent / 100), at most n - 1; 0 when n < 2. Workers sweep
 * on their own clocks, so the caller that ejects checks it again, under a
 * lock, against what is out at that moment. */
size_t lv_outlier_cap(const struct lv_outlier_cfg *cfg, size_t n);

/*
 * One worker's sweeps over one set of n backends: it counts what each try
 * of its own came to (lv_outlier_count) and, when a sweep is due
 * (lv_outlier_due: the first call starts the clock, then one sweep per
 * `interval`), the caller fills in st[i].in and st[i].latency (shared
 * state: breakers, latency windows) and calls lv_outlier_run_sweep, which
 * judges the interval's counts and starts the next interval from zero.
 * Each worker judges its own share of the traffic; the ejection itself
 * (the breaker) is shared, and the cap counts what every worker ejected.
 */
struct lv_outlier_run {
    size_t n;
    uint64_t next;                /* ms: the next sweep; 0: the clock has not started */
    struct lv_outlier_stat *st;   /* [n]: this interval's counts */
    struct lv_outlier_stat *last; /* [n]: what the last sweep judged (for its log line) */
    enum lv_outlier_why *why;     /* [n]: the last sweep's verdicts */
};

/* 0, or -1 (ENOMEM). n may be 0. */
int lv_outlier_run_init(struct lv_outlier_run *r, size_t n);
void lv_outlier_run_dispose(struct lv_outlier_run *r);

/* Backend i's try ended: it answered (a response head), or it timed out
 * or lost the race to a hedge (timed_out). */
void lv_outlier_count(struct lv_outlier_run *r, size_t i, bool timed_out);

/* Is a sweep due at `now`? False when disabled; the first call only starts
 * the clock. When true, the next one is due `interval` later. */
bool lv_outlier_due(struct lv_outlier_run *r, const struct lv_outlier_cfg *cfg, uint64_t now);

/* Judges the interval (lv_outlier_sweep over r->st into r->why), moves
 * it to r->last and starts the next from zero. Returns how many are to be
 * ejected. */
size_t lv_outlier_run_sweep(struct lv_outlier_run *r, const struct lv_outlier_cfg *cfg);

#endif
