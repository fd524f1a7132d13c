/*
 * The circuit breaker of one backend, shared by every worker.
 *
 *            failure_threshold consecutive failures,
 *            or failure rate >= failure_rate_threshold
 *            over `window` with >= minimum_requests,
 *            or failures_in_window failures within
 *            fail_window (any volume: nginx's max_fails),
 *            or an outlier ejection (lv_breaker_eject)
 *   CLOSED ───────────────────────────────────────────► OPEN
 *     ▲                                                 │  ▲
 *     │ success_threshold                  open time    │  │ a probe fails: open again,
 *     │ consecutive probe                  elapsed (or  │  │ for twice as long (capped
 *     │ successes                          an active    ▼  │ at max_timeout, jittered)
 *     └─────────────────────────────────── HALF_OPEN ───────┘
 *                                          (at most half_open_requests
 *                                           probes in flight)
 *
 * Pure policy: no I/O and no clock of its own — every call takes `now` (ms)
 * and randomness is passed in, so every transition is unit tested with a
 * fake clock. Thread-safe without locks: the state and its generation live
 * in one atomic word changed by compare-and-swap; counters are atomics; the
 * sliding windows (one for the rate rule, one for the count rule) are rings
 * of buckets per worker (a single writer each), summed only when a failure
 * has to be judged. Probe slots are counted in a word tagged with the
 * half-open generation they belong to, so a thread that raced with a
 * transition can never take or give back a slot of another generation.
 * The common case — closed, success, no failure pending — is a load and an
 * uncontended add.
 */
#ifndef LV_UPSTREAM_BREAKER_H
#define LV_UPSTREAM_BREAKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

enum lv_breaker_state { LV_BREAKER_CLOSED = 0, LV_BREAKER_OPEN = 1, LV_BREAKER_HALF_OPEN = 2 };

struct lv_breaker_cfg {
    bool enabled;
    uint32_t failure_threshold;    /* consecutive failures that open it */
    uint32_t success_threshold;    /* consecutive probe successes that close it */
    uint64_t timeout;              /* first open period, ms */
    uint64_t max_timeout;          /* cap of the doubling open period, ms */
    double failure_rate_threshold; /* 0..1; 0 disables the rate rule */
    uint32_t minimum_requests;     /* in the window, for the rate rule */
    uint64_t window;               /* ms, for the rate rule */
    uint32_t half_open_requests;   /* probes in flight at once */
    uint32_t failures_in_window;   /* failures within fail_window that open it; 0: rule off */
    uint64_t fail_window;          /* ms, for the count rule */
};

#define LV_BREAKER_BUCKETS 10

/* A window bucket: outcomes of one bucket-sized period, in one epoch (the
 * number of times the breaker closed: a close starts a fresh window). */
struct lv_breaker_bucket {
    atomic_uint_fast64_t slot;  /* which bucket-sized period this counts */
    atomic_uint_fast64_t epoch; /* which closed period */
    atomic_uint ok, fail;
};

struct lv_breaker_window {
    struct lv_breaker_bucket b[LV_BREAKER_BUCKETS]; /* rate rule: `window` / 10 each */
    struct lv_breaker_bucket f[LV_BREAKER_BUCKETS]; /* count rule: `fail_window` / 10 each
                                                       (failures only) */
};

/* The state of a breaker. Its configuration is passed to every call (it
 * belongs to the configuration generation of the request), so a reload can
 * change thresholds without resetting the state. */
struct lv_breaker {
    atomic_uint_fast64_t sg;         /* generation << 2 | state */
    atomic_uint_fast64_t half;       /* half-open generation:32 | probes:16 | successes:16 */
    atomic_uint consecutive_fail;    /* while closed */
    atomic_uint opened;              /* times opened without staying closed for a window */
    atomic_uint_fast64_t closed_at;  /* ms: the last close */
    atomic_uint_fast64_t opened_at;  /* ms: the last time it opened; 0: never */
    atomic_uint_fast64_t open_until; /* ms */
    atomic_uint_fast64_t epoch;      /* closes so far: the window's epoch */
    atomic_uint_fast64_t transitions;
    unsigned nwindows;
    struct lv_breaker_window *windows; /* [nwindows], one per worker */
};

/* An admission: which generation admitted the request, and whether it is a
 * half-open probe. Pass it back to lv_breaker_report. */
struct lv_breaker_ticket {
    uint64_t gen;
    bool probe;
    bool admitted;
};

/* Sets up a closed breaker with one window per worker. 0 or UV_ENOMEM. */
int lv_breaker_init(struct lv_breaker *b, unsigned nworkers);
void lv_breaker_dispose(struct lv_breaker *b);

/* May a request go to this backend now? Fills *t. An open breaker whose
 * time is up turns half-open here (the caller becomes a probe). */
bool lv_breaker_allow(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, uint64_t now,
                      struct lv_breaker_ticket *t);

/* Gives back an admission that was not used (the request went elsewhere). */
void lv_breaker_cancel(struct lv_breaker *b, const struct lv_breaker_ticket *t);

/*
 * Reports the outcome of an admitted request, from worker `w`. `jitter` is
 * a random number in [0, 1) used to spread the next open period (0.5 means
 * none). Returns true if this report changed the state.
 */
bool lv_breaker_report(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, unsigned w,
                       uint64_t now, bool success, double jitter,
                       const struct lv_breaker_ticket *t);

/* An active health check passed: an open breaker may probe now. */
void lv_breaker_health_passed(struct lv_breaker *b, uint64_t now);

/*
 * Opens a closed breaker from outside its own rules — an outlier ejection
 * (upstream/outlier.h): the backend is far slower or times out far more
 * often than its peers. It opens as a failure would open it, for the same
 * growing period (doubling while it keeps being opened within `window` of
 * its last close, up to max_timeout; `jitter` as in lv_breaker_report), and
 * comes back the same way, through half-open probes. Returns true if it
 * opened the breaker; false if the breaker is disabled, not closed (already
 * out), or another thread moved it first.
 */
bool lv_breaker_eject(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, uint64_t now,
                      double jitter);

/* When it last opened (ms; 0: never): which backend has been out longest
 * (upstream/revive.h). */
uint64_t lv_breaker_opened_at(const struct lv_breaker *b);

/* Current state (OPEN whose time is up still reads OPEN until someone is
 * admitted). */
enum lv_breaker_state lv_breaker_state(const struct lv_breaker *b);

/* When the breaker will let a probe through (ms), if it is open; else 0. */
uint64_t lv_breaker_open_until(const struct lv_breaker *b);

/* Outcomes in the current window, summed over workers. */
void lv_breaker_window_counts(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, uint64_t now,
                              uint64_t *ok, uint64_t *fail);

/* Failures in the count rule's window (fail_window), summed over workers:
 * what failures_in_window is compared with. */
uint64_t lv_breaker_recent_failures(struct lv_breaker *b, const struct lv_breaker_cfg *cfg,
                                    uint64_t now);

/* Half-open probes in flight (0 unless half-open). */
unsigned lv_breaker_probes(const struct lv_breaker *b);

/* What lv_breaker_allow would answer now, from one read of the state.
 * Admits nothing. */
enum lv_breaker_peek {
    LV_PEEK_ADMITS,     /* closed, or the breaker is disabled */
    LV_PEEK_PROBES,     /* a probe: open and its period is over, or half-open
                           with a probe slot free */
    LV_PEEK_OPEN,       /* refuses: open, its period not over */
    LV_PEEK_PROBES_OUT, /* refuses: half-open, every probe slot taken */
};
enum lv_breaker_peek lv_breaker_peek(const struct lv_breaker *b, const struct lv_breaker_cfg *cfg,
                                     uint64_t now);

const char *lv_breaker_state_name(enum lv_breaker_state s);

#endif
