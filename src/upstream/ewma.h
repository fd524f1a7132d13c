/*
 * Peak EWMA of a backend's latency (Finagle's and Linkerd's load metric).
 * A sample above the estimate replaces it at once (the peak: one slow answer
 * is news); a sample below moves it with time constant `tau`. Read, the
 * estimate decays toward 0 with the time since the last sample, so that a
 * backend penalized by a timeout is tried again once it has had a rest.
 *
 * Shared by all workers without a lock: the value and its time are two
 * relaxed atomics; two updates racing lose one sample, which an estimate can
 * afford. Times are passed in (ns), so the math is tested with a fake clock.
 */
#ifndef LV_UPSTREAM_EWMA_H
#define LV_UPSTREAM_EWMA_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* Zeroed: no sample yet. */
struct lv_ewma {
    atomic_uint_fast64_t value; /* µs, the bits of a double */
    atomic_uint_fast64_t at;    /* ns of the last sample; 0: none */
};

#define LV_EWMA_TAU_NS (10 * 1000000000ull) /* Finagle's and Linkerd's default */

void lv_ewma_observe(struct lv_ewma *e, double sample_us, uint64_t now_ns, uint64_t tau_ns);

/* The estimate at now (µs), decayed since the last sample; 0 without any. */
double lv_ewma_read(const struct lv_ewma *e, uint64_t now_ns, uint64_t tau_ns);

/* Forgets every sample: the next one is the estimate. A backend that was
 * taken out (its breaker opened, its checks failed) comes back without the
 * penalty that steered requests away from it, so that peak_ewma sends its
 * half-open probes at once instead of after the penalty decayed. */
void lv_ewma_reset(struct lv_ewma *e);

/* Has it seen a sample? */
bool lv_ewma_has_sample(const struct lv_ewma *e);

#endif
