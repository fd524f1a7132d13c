/*
 * Circuit breaker: a state machine over atomics. Every transition is one
 * compare-and-swap of (generation, state); whatever a transition must reset
 * is reset before its CAS, so a thread that sees the new state also sees the
 * reset. A report carries the generation that admitted its request: reports
 * from before a transition (a slow request admitted while closed, finishing
 * after the breaker opened) cannot move the new state, nor count in its
 * window.
 *
 * Two things cannot be reset before the CAS without racing with the winner
 * of a concurrent transition, so they carry their generation instead: the
 * half-open probe slots (one word: generation, probes, successes, changed
 * only by CAS and only for its own generation) and the window buckets (each
 * tagged with the epoch — the number of closes — it counts for).
 */
#include "upstream/breaker.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define STATE(sg) ((enum lv_breaker_state)((sg)&3u))
#define GEN(sg) ((sg) >> 2)
#define MAKE(gen, st) (((uint64_t)(gen) << 2) | (uint64_t)(st))

#define H_GEN(h) ((uint32_t)((h) >> 32))
#define H_PROBES(h) ((unsigned)(((h) >> 16) & 0xffffu))
#define H_OK(h) ((unsigned)((h)&0xffffu))
#define H_MAKE(g, p, o) (((uint64_t)(uint32_t)(g) << 32) | ((uint64_t)(p) << 16) | (uint64_t)(o))

int lv_breaker_init(struct lv_breaker *b, unsigned nworkers)
{
    memset(b, 0, sizeof(*b));
    b->nwindows = nworkers ? nworkers : 1;
    b->windows = calloc(b->nwindows, sizeof(*b->windows));
    if (b->windows == NULL) return UV_ENOMEM;
    atomic_init(&b->sg, MAKE(0, LV_BREAKER_CLOSED));
    return 0;
}

void lv_breaker_dispose(struct lv_breaker *b)
{
    free(b->windows);
    b->windows = NULL;
}

const char *lv_breaker_state_name(enum lv_breaker_state s)
{
    switch (s) {
    case LV_BREAKER_CLOSED: return "closed";
    case LV_BREAKER_OPEN: return "open";
    case LV_BREAKER_HALF_OPEN: return "half_open";
    }
    return "unknown";
}

enum lv_breaker_state lv_breaker_state(const struct lv_breaker *b)
{
    return STATE(atomic_load(&((struct lv_breaker *)b)->sg));
}

uint64_t lv_breaker_open_until(const struct lv_breaker *b)
{
    struct lv_breaker *m = (struct lv_breaker *)b;
    return STATE(atomic_load(&m->sg)) == LV_BREAKER_OPEN ? atomic_load(&m->open_until) : 0;
}

unsigned lv_breaker_probes(const struct lv_breaker *b)
{
    struct lv_breaker *m = (struct lv_breaker *)b;
    uint64_t sg = atomic_load(&m->sg);
    uint64_t h = atomic_load(&m->half);
    return STATE(sg) == LV_BREAKER_HALF_OPEN && H_GEN(h) == (uint32_t)GEN(sg) ? H_PROBES(h) : 0;
}

static unsigned probe_slots(const struct lv_breaker_cfg *cfg)
{
    unsigned n = cfg->half_open_requests ? cfg->half_open_requests : 1;
    return n > 0xffff ? 0xffff : n;
}

/* --- the sliding windows ------------------------------------------------------ */

/* Two rings per worker, of the same shape: the rate rule's (`window`, every
 * outcome) and the count rule's (`fail_window`, failures only). */
enum ring { RING_RATE, RING_COUNT };

static uint64_t span_of(const struct lv_breaker_cfg *cfg, enum ring r)
{
    return r == RING_RATE ? cfg->window : cfg->fail_window;
}

static uint64_t bucket_ms(uint64_t span)
{
    uint64_t ms = span / LV_BREAKER_BUCKETS;
    return ms ? ms : 1;
}

static struct lv_breaker_bucket *ring_of(struct lv_breaker *b, unsigned w, enum ring r)
{
    return r == RING_RATE ? b->windows[w].b : b->windows[w].f;
}

static void ring_add(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, enum ring r,
                     unsigned w, uint64_t now, bool ok)
{
    if (w >= b->nwindows) w = 0;
    uint64_t slot = now / bucket_ms(span_of(cfg, r));
    uint64_t epoch = atomic_load_explicit(&b->epoch, memory_order_acquire);
    struct lv_breaker_bucket *bk = &ring_of(b, w, r)[slot % LV_BREAKER_BUCKETS];
    if (atomic_load_explicit(&bk->slot, memory_order_relaxed) != slot ||
        atomic_load_explicit(&bk->epoch, memory_order_relaxed) != epoch) {
        atomic_store_explicit(&bk->ok, 0, memory_order_relaxed);
        atomic_store_explicit(&bk->fail, 0, memory_order_relaxed);
        atomic_store_explicit(&bk->epoch, epoch, memory_order_relaxed);
        atomic_store_explicit(&bk->slot, slot, memory_order_release);
    }
    atomic_fetch_add_explicit(ok ? &bk->ok : &bk->fail, 1, memory_order_relaxed);
}

static void ring_sum(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, enum ring r,
                     uint64_t now, uint64_t *ok, uint64_t *fail)
{
    uint64_t span = span_of(cfg, r);
    uint64_t bm = bucket_ms(span);
    uint64_t from = now > span ? now - span : 0;
    uint64_t first = from / bm, last = now / bm;
    uint64_t epoch = atomic_load_explicit(&b->epoch, memory_order_acquire);
    *ok = *fail = 0;
    for (unsigned w = 0; w < b->nwindows; w++) {
        const struct lv_breaker_bucket *ring = ring_of(b, w, r);
        for (unsigned i = 0; i < LV_BREAKER_BUCKETS; i++) {
            struct lv_breaker_bucket *bk = (struct lv_breaker_bucket *)&ring[i];
            uint64_t slot = atomic_load_explicit(&bk->slot, memory_order_acquire);
            if (slot < first || slot > last) continue;
            if (atomic_load_explicit(&bk->epoch, memory_order_relaxed) != epoch) continue;
            *ok += atomic_load_explicit(&bk->ok, memory_order_relaxed);
            *fail += atomic_load_explicit(&bk->fail, memory_order_relaxed);
        }
    }
}

void lv_breaker_window_counts(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, uint64_t now,
                              uint64_t *ok, uint64_t *fail)
{
    ring_sum(b, cfg, RING_RATE, now, ok, fail);
}

uint64_t lv_breaker_recent_failures(struct lv_breaker *b, const struct lv_breaker_cfg *cfg,
                                    uint64_t now)
{
    uint64_t ok, fail;
    ring_sum(b, cfg, RING_COUNT, now, &ok, &fail);
    return fail;
}

/* --- transitions -------------------------------------------------------------- */

static uint64_t open_period(const struct lv_breaker_cfg *cfg, unsigned opened, double jitter)
{
    uint64_t max = cfg->max_timeout > cfg->timeout ? cfg->max_timeout : cfg->timeout;
    uint64_t period = cfg->timeout;
    for (unsigned i = 0; i < opened && period < max; i++)
        period *= 2;
    if (period > max) period = max;
    /* +-20%: breakers of backends that failed together do not all probe at once. */
    double f = 1.0 + (jitter - 0.5) * 0.4;
    uint64_t p = (uint64_t)((double)period * f);
    return p ? p : 1;
}

static bool trip(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, uint64_t sg, uint64_t now,
                 double jitter)
{
    /* The open period doubles while the backend keeps failing: after a
     * failed probe, and also when it fails again within `window` of being
     * closed (a backend that passes two probes and falls over at once must
     * not get back in every `timeout`). Only a backend that stayed closed
     * longer than that starts again from `timeout` (as Envoy's ejection
     * multiplier decays). */
    unsigned opened = atomic_load(&b->opened);
    if (STATE(sg) == LV_BREAKER_CLOSED && now >= atomic_load(&b->closed_at) + cfg->window)
        opened = 0;
    atomic_store(&b->open_until, now + open_period(cfg, opened, jitter));
    atomic_store(&b->opened_at, now ? now : 1);
    if (!atomic_compare_exchange_strong(&b->sg, &sg, MAKE(GEN(sg) + 1, LV_BREAKER_OPEN)))
        return false;
    atomic_store(&b->opened, opened + 1);
    atomic_store(&b->consecutive_fail, 0);
    atomic_fetch_add(&b->transitions, 1);
    return true;
}

static bool close_breaker(struct lv_breaker *b, uint64_t sg, uint64_t now)
{
    atomic_store(&b->consecutive_fail, 0);
    atomic_store(&b->closed_at, now);
    if (!atomic_compare_exchange_strong(&b->sg, &sg, MAKE(GEN(sg) + 1, LV_BREAKER_CLOSED)))
        return false;
    atomic_fetch_add(&b->epoch, 1); /* a fresh window: the old outcomes are history */
    atomic_fetch_add(&b->transitions, 1);
    return true;
}

enum lv_breaker_peek lv_breaker_peek(const struct lv_breaker *b, const struct lv_breaker_cfg *cfg,
                                     uint64_t now)
{
    struct lv_breaker *m = (struct lv_breaker *)b;
    if (!cfg->enabled) return LV_PEEK_ADMITS;
    uint64_t sg = atomic_load(&m->sg);
    switch (STATE(sg)) {
    case LV_BREAKER_CLOSED: return LV_PEEK_ADMITS;
    case LV_BREAKER_OPEN: return now < atomic_load(&m->open_until) ? LV_PEEK_OPEN : LV_PEEK_PROBES;
    case LV_BREAKER_HALF_OPEN: {
        /* Slots of another generation are not this period's: none taken. */
        uint64_t h = atomic_load(&m->half);
        unsigned taken = H_GEN(h) == (uint32_t)GEN(sg) ? H_PROBES(h) : 0;
        return taken >= probe_slots(cfg) ? LV_PEEK_PROBES_OUT : LV_PEEK_PROBES;
    }
    }
    return LV_PEEK_ADMITS;
}

/* Takes a probe slot of half-open generation g: 1 taken, 0 all taken, -1
 * the breaker moved on (look again). */
static int take_probe(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, uint64_t sg)
{
    uint32_t g = (uint32_t)GEN(sg);
    for (;;) {
        uint64_t h = atomic_load(&b->half);
        uint64_t next;
        if (H_GEN(h) != g) {
            /* The first admission of this half-open period sets the word up. */
            if (atomic_load(&b->sg) != sg) return -1;
            next = H_MAKE(g, 1, 0);
        } else {
            if (H_PROBES(h) >= probe_slots(cfg)) return 0;
            next = H_MAKE(g, H_PROBES(h) + 1, H_OK(h));
        }
        if (atomic_compare_exchange_weak(&b->half, &h, next)) return 1;
    }
}

/* Gives back a probe slot of generation g, counting a success if ok.
 * Returns the successes so far, or -1 if g is over. */
static int give_probe(struct lv_breaker *b, uint64_t g, bool ok)
{
    for (;;) {
        uint64_t h = atomic_load(&b->half);
        if (H_GEN(h) != (uint32_t)g) return -1;
        unsigned p = H_PROBES(h) ? H_PROBES(h) - 1 : 0;
        unsigned o = H_OK(h) + (ok && H_OK(h) < 0xffff ? 1 : 0);
        if (atomic_compare_exchange_weak(&b->half, &h, H_MAKE(g, p, o))) return (int)o;
    }
}

bool lv_breaker_allow(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, uint64_t now,
                      struct lv_breaker_ticket *t)
{
    t->probe = false;
    t->admitted = true;
    t->gen = 0;
    if (!cfg->enabled) return true;
    for (;;) {
        uint64_t sg = atomic_load(&b->sg);
        t->gen = GEN(sg);
        switch (STATE(sg)) {
        case LV_BREAKER_CLOSED: return true;
        case LV_BREAKER_OPEN:
            if (now < atomic_load(&b->open_until)) {
                t->admitted = false;
                return false;
            }
            if (atomic_compare_exchange_strong(&b->sg, &sg,
                                               MAKE(GEN(sg) + 1, LV_BREAKER_HALF_OPEN)))
                atomic_fetch_add(&b->transitions, 1);
            continue; /* now half-open (by us or another thread): take a slot */
        case LV_BREAKER_HALF_OPEN: {
            int got = take_probe(b, cfg, sg);
            if (got < 0) continue;
            if (got == 0) {
                t->admitted = false;
                return false;
            }
            t->probe = true;
            return true;
        }
        }
    }
}

void lv_breaker_cancel(struct lv_breaker *b, const struct lv_breaker_ticket *t)
{
    if (t->admitted && t->probe) give_probe(b, t->gen, false);
}

bool lv_breaker_report(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, unsigned w,
                       uint64_t now, bool success, double jitter, const struct lv_breaker_ticket *t)
{
    if (!cfg->enabled || !t->admitted) return false;
    uint64_t sg = atomic_load(&b->sg);
    if (GEN(sg) != t->gen) return false; /* admitted before the last transition */
    switch (STATE(sg)) {
    case LV_BREAKER_CLOSED: {
        ring_add(b, cfg, RING_RATE, w, now, success);
        if (!success && cfg->failures_in_window) ring_add(b, cfg, RING_COUNT, w, now, false);
        if (success) {
            if (atomic_load_explicit(&b->consecutive_fail, memory_order_relaxed) != 0)
                atomic_store(&b->consecutive_fail, 0);
            return false;
        }
        unsigned n = atomic_fetch_add(&b->consecutive_fail, 1) + 1;
        bool open = n >= (cfg->failure_threshold ? cfg->failure_threshold : 1);
        if (!open && cfg->failure_rate_threshold > 0) {
            uint64_t ok, fail;
            lv_breaker_window_counts(b, cfg, now, &ok, &fail);
            uint64_t total = ok + fail;
            open = total >= cfg->minimum_requests && total > 0 &&
                   (double)fail >= cfg->failure_rate_threshold * (double)total;
        }
        /* nginx's max_fails per fail_timeout: a count, whatever the volume,
         * so that a backend failing a third of its requests is out after a
         * few of them, long before a rate could be judged. A timeout or a
         * reset counts the moment its attempt ends, as any failure. */
        if (!open && cfg->failures_in_window)
            open = lv_breaker_recent_failures(b, cfg, now) >= cfg->failures_in_window;
        return open && trip(b, cfg, sg, now, jitter);
    }
    case LV_BREAKER_HALF_OPEN: {
        if (!t->probe) return false;
        int ok = give_probe(b, t->gen, success);
        if (ok < 0) return false;
        if (!success) return trip(b, cfg, sg, now, jitter);
        if ((unsigned)ok >= (cfg->success_threshold ? cfg->success_threshold : 1))
            return close_breaker(b, sg, now);
        return false;
    }
    case LV_BREAKER_OPEN: return false;
    }
    return false;
}

bool lv_breaker_eject(struct lv_breaker *b, const struct lv_breaker_cfg *cfg, uint64_t now,
                      double jitter)
{
    if (!cfg->enabled) return false;
    uint64_t sg = atomic_load(&b->sg);
    if (STATE(sg) != LV_BREAKER_CLOSED) return false;
    return trip(b, cfg, sg, now, jitter);
}

uint64_t lv_breaker_opened_at(const struct lv_breaker *b)
{
    return atomic_load(&((struct lv_breaker *)b)->opened_at);
}

void lv_breaker_health_passed(struct lv_breaker *b, uint64_t now)
{
    uint64_t sg = atomic_load(&b->sg);
    if (STATE(sg) != LV_BREAKER_OPEN) return;
    uint64_t until = atomic_load(&b->open_until);
    if (until > now) atomic_compare_exchange_strong(&b->open_until, &until, now);
}
