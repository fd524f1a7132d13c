/* Peak EWMA: see ewma.h. */
#include "upstream/ewma.h"

#include <math.h>
#include <string.h>

static double get(const struct lv_ewma *e)
{
    uint64_t bits = atomic_load_explicit(&((struct lv_ewma *)e)->value, memory_order_relaxed);
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

/* exp(-elapsed/tau): the weight the old value keeps. */
static double keep(uint64_t at, uint64_t now_ns, uint64_t tau_ns)
{
    if (now_ns <= at) return 1.0;
    return exp(-(double)(now_ns - at) / (double)tau_ns);
}

void lv_ewma_observe(struct lv_ewma *e, double sample_us, uint64_t now_ns, uint64_t tau_ns)
{
    if (sample_us < 0) sample_us = 0;
    uint64_t at = atomic_load_explicit(&e->at, memory_order_relaxed);
    double v = get(e);
    if (at == 0 || sample_us > v) {
        v = sample_us;
    } else {
        double w = keep(at, now_ns, tau_ns);
        v = v * w + sample_us * (1.0 - w);
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    atomic_store_explicit(&e->value, bits, memory_order_relaxed);
    atomic_store_explicit(&e->at, now_ns ? now_ns : 1, memory_order_relaxed);
}

double lv_ewma_read(const struct lv_ewma *e, uint64_t now_ns, uint64_t tau_ns)
{
    uint64_t at = atomic_load_explicit(&((struct lv_ewma *)e)->at, memory_order_relaxed);
    if (at == 0) return 0;
    return get(e) * keep(at, now_ns, tau_ns);
}

bool lv_ewma_has_sample(const struct lv_ewma *e)
{
    return atomic_load_explicit(&((struct lv_ewma *)e)->at, memory_order_relaxed) != 0;
}

void lv_ewma_reset(struct lv_ewma *e)
{
    atomic_store_explicit(&e->at, 0, memory_order_relaxed);
    atomic_store_explicit(&e->value, 0, memory_order_relaxed);
}
