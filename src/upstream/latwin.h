/*
 * A backend's recent latency distribution: a small log-bucketed histogram
 * over a sliding window, from which adaptive hedging reads its delay (the
 * p95 of the backend's answers: upstream/hedge.h) and outlier detection
 * its latency figure (upstream/outlier.h).
 *
 * Buckets: [0, 16 µs), then 4 per octave (each about 19% wide) up to
 * 2^28 µs (4.5 min); a longer sample falls in the last bucket. A quantile
 * is interpolated inside its bucket, so it is within one bucket width of
 * the true one.
 *
 * The window is LV_LATWIN_SLICES slices of `span` / LV_LATWIN_SLICES; a
 * read covers the current slice and the ones before it that are still in
 * the window, so it sees between (1 - 1/SLICES) and all of `span`. A slice
 * is dropped whole when it leaves: no per-sample timestamps.
 *
 * Shared by all workers without a lock: each worker writes its own slices
 * (a single writer each, as the breaker's windows), a reader sums them with
 * relaxed loads. A read that races with a slice being recycled may miss or
 * double a few samples: an estimate can afford it. Summing is
 * workers × slices × buckets loads, so the estimate is cached for
 * LV_LATWIN_REFRESH_MS (lv_latwin_estimate): the request path pays a load
 * and a compare.
 *
 * Pure: no clock (`now` in ms is passed in), no I/O; tested with a fake
 * clock (tests/unit/upstream/test_latwin.c).
 */
#ifndef LV_UPSTREAM_LATWIN_H
#define LV_UPSTREAM_LATWIN_H

#include <stdatomic.h>
#include <stdint.h>

#define LV_LATWIN_SLICES 4
#define LV_LATWIN_BUCKETS 98     /* [0,16 µs), 24 octaves × 4, and [2^28 µs, ∞) */
#define LV_LATWIN_REFRESH_MS 100 /* an estimate is recomputed at most this often */

struct lv_latwin_slice {
    atomic_uint_fast64_t slot; /* which slice-length period it counts, + 1; 0: never used */
    atomic_uint count[LV_LATWIN_BUCKETS];
};

struct lv_latwin_worker {
    struct lv_latwin_slice s[LV_LATWIN_SLICES];
};

/* The cached estimate: one quantile, computed at `at`. */
struct lv_latwin_cache {
    atomic_uint_fast64_t at;  /* ms + 1 of the computation; 0: none yet */
    atomic_uint_fast64_t key; /* the quantile (× 1e6) and span it was computed for */
    atomic_uint_fast64_t us;  /* the quantile, µs */
    atomic_uint_fast64_t n;   /* samples it came from */
};

struct lv_latwin {
    unsigned nworkers;
    struct lv_latwin_worker *w; /* [nworkers] */
    struct lv_latwin_cache cache;
};

/* A quantile and the number of samples it comes from. */
struct lv_latwin_est {
    uint64_t us; /* 0 when n is 0 */
    uint64_t n;
};

/* An empty window with slices for `nworkers` writers (at least 1).
 * 0 or -1 (ENOMEM). */
int lv_latwin_init(struct lv_latwin *l, unsigned nworkers);
void lv_latwin_dispose(struct lv_latwin *l);

/* Records one latency (µs) from worker w (w >= nworkers counts as worker
 * 0) at `now` (ms), in a window of `span` ms (>= LV_LATWIN_SLICES; the
 * same span for every call on one window: a reload that changes it
 * recycles the slices as they come). */
void lv_latwin_add(struct lv_latwin *l, unsigned w, uint64_t span, uint64_t now, uint64_t us);

/* The q-quantile (0 < q <= 1) of the samples in the window at `now`,
 * summed over every worker; computed now. */
struct lv_latwin_est lv_latwin_quantile(struct lv_latwin *l, uint64_t span, uint64_t now, double q);

/* The same, from the cache when it is younger than LV_LATWIN_REFRESH_MS
 * and was computed for the same q and span; else computed and cached. */
struct lv_latwin_est lv_latwin_estimate(struct lv_latwin *l, uint64_t span, uint64_t now, double q);

/* The bucket of a latency, and the bounds [lo, hi) of a bucket (µs; the
 * last bucket's hi is twice its lo). For the tests and the docs. */
unsigned lv_latwin_bucket(uint64_t us);
void lv_latwin_bounds(unsigned bucket, uint64_t *lo, uint64_t *hi);

#endif
