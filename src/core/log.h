/*
 * The error log: one line per event on stderr (or a file), with a UTC
 * timestamp and a level. Safe to call from any thread: each line is written
 * with a single write(2).
 *
 * Lines that a peer can cause again and again (a failed accept, a client's
 * bad TLS handshake, a backend refusing connections, Redis errors) go
 * through a rate limiter instead: at most one line per second per call site
 * (or per limiter, e.g. one per backend), and the next line written says how
 * many were suppressed in between, so that a flood of events costs a few
 * lines, not gigabytes. The counters in /metrics keep the exact numbers.
 */
#ifndef LV_CORE_LOG_H
#define LV_CORE_LOG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/clock.h"

enum lv_log_level { LV_LOG_DEBUG, LV_LOG_INFO, LV_LOG_WARN, LV_LOG_ERROR };

void lv_log_set_level(enum lv_log_level level);
bool lv_log_enabled(enum lv_log_level level);
/* Parses "debug", "info", "warn", "error"; returns 0 or UV_EINVAL. */
int lv_log_level_parse(const char *s, enum lv_log_level *out);

/* Where lines go: stderr unless set (tests point it at a pipe). */
void lv_log_set_fd(int fd);

void lv_log(enum lv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define lv_debug(...)                                                                              \
    do {                                                                                           \
        if (lv_log_enabled(LV_LOG_DEBUG)) lv_log(LV_LOG_DEBUG, __VA_ARGS__);                       \
    } while (0)
#define lv_info(...) lv_log(LV_LOG_INFO, __VA_ARGS__)
#define lv_warn(...) lv_log(LV_LOG_WARN, __VA_ARGS__)
#define lv_error(...) lv_log(LV_LOG_ERROR, __VA_ARGS__)

/* --- rate-limited lines ---------------------------------------------------------- */

/* One line per LV_LOG_LIMIT_MS on average per limiter, after a burst of at
 * most `burst` lines (a token bucket, GCRA). */
#define LV_LOG_LIMIT_MS 1000u
/* The burst of limiters for state changes (a backend's breaker or health,
 * the rate-limit store): the changes of an ordinary incident are all
 * logged; only a flapping peer is cut down to one line a second. */
#define LV_LOG_BURST_STATE 10u

/*
 * One limiter's state: shared by every thread that logs through it (two
 * atomics, no lock). Zero-initialized is ready, with a burst of 1 (a
 * static, or a member of a calloc'ed struct); set `burst` before first use
 * for more.
 */
struct lv_log_limit {
    atomic_uint_fast64_t tat_ms;     /* when the bucket is full again (monotonic ms) */
    atomic_uint_fast64_t suppressed; /* lines refused since the last one written */
    uint32_t burst;                  /* 0 means 1 */
};

/*
 * The policy, with the clock passed in: may a line be written at now_ms?
 * Allows `burst` lines at once, then one per LV_LOG_LIMIT_MS. On true sets
 * *suppressed to the calls refused since the previous true; a refused call
 * is counted and returns false. Thread-safe.
 */
bool lv_log_limit_take(struct lv_log_limit *lim, uint64_t now_ms, uint64_t *suppressed);

/*
 * Writes the line if lim allows it at now_ms, with " (N similar lines
 * suppressed)" appended when some were. Nothing happens, and nothing is
 * counted, when `level` is not logged.
 */
void lv_log_limited_at(enum lv_log_level level, struct lv_log_limit *lim, uint64_t now_ms,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The same on the monotonic clock, with a limiter the caller keeps (e.g.
 * one per backend). */
#define lv_log_limited(level, lim, ...)                                                            \
    do {                                                                                           \
        if (lv_log_enabled(level)) lv_log_limited_at((level), (lim), lv_clock_ms(), __VA_ARGS__);  \
    } while (0)

/* The same with a limiter for this call site, allowing `burst` lines at
 * once; lv_log_ratelimited: one line a second. */
#define lv_log_ratelimited_burst(level, nburst, ...)                                               \
    do {                                                                                           \
        static struct lv_log_limit lv_log_site_ = {.burst = (nburst)};                             \
        lv_log_limited((level), &lv_log_site_, __VA_ARGS__);                                       \
    } while (0)
#define lv_log_ratelimited(level, ...) lv_log_ratelimited_burst((level), 1, __VA_ARGS__)

#endif
