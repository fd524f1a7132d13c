/*
 * The attempt loop: choosing backends, retrying, hedging, telling each
 * backend's circuit breaker how its tries went, and streaming the request
 * body to each try. The decisions themselves are pure functions — which
 * backends are eligible (upstream/eligible.c), what an outcome counts for
 * (upstream/outcome.c: the stale keep-alive rule, the hedge race, what a
 * failure weighs), retries (upstream/retry.c), the breaker
 * (upstream/breaker.c), the hedge's delay and go-ahead (upstream/hedge.c,
 * from the latency window of upstream/latwin.c), outlier ejection
 * (upstream/outlier.c) and the probe of a backend while none is usable
 * (upstream/revive.c); this file wires them to connections and a timer.
 *
 * What each try feeds, by how it ends:
 *
 *   ends with                  breaker   latwin    outlier    peak_ewma
 *   a head (answer)            status    latency   answered   latency
 *   a head, retryable status   failure   latency   answered   penalty
 *   lost the race to a hedge   -         -         timeout    its wait
 *   timeout                    failure   -         timeout    its wait
 *   reset, refused, bad resp.  failure   -         -          penalty
 *   (the stale keep-alive race forgives a reset: nothing is fed)
 */
#include "proxy/attempt.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/units.h"
#include "proxy/flow.h"
#include "config/gen.h"
#include "proxy/wgen.h"
#include "upstream/backend.h"
#include "upstream/balancer.h"
#include "upstream/eligible.h"
#include "upstream/hedge.h"
#include "upstream/latwin.h"
#include "upstream/outcome.h"
#include "upstream/outlier.h"
#include "upstream/revive.h"

/* Interim (1xx) responses accepted per try: Go's client gives up after 5;
 * 16 leaves room for honest use, and 64 KiB is two heads at their limit.
 * Beyond either, the backend is flooding: bad_response. */
#define INTERIM_MAX_COUNT 16
#define INTERIM_MAX_BYTES (64 * 1024)

/* A revive probe of one backend starts at most this often (ms): service
 * resumes within 50 ms of a backend's return at any request rate, for at
 * most 20 refused connects a second per dead backend (docs/resilience.md). */
#define REVIVE_INTERVAL_MS 50

static const struct lv_upconn_ops upconn_ops;
static void start_try(struct lv_attempt *at, bool hedge);
static void on_timer(uv_timer_t *t);

/* Moves to state `to`: only along the arrows of attempt.h's diagram. The
 * worker's retry budget counts the request from start to DONE. */
static void set_state(struct lv_attempt *at, enum lv_attempt_state to)
{
    enum lv_attempt_state from = at->state;
    switch (to) {
    case LV_AT_IDLE: assert(!"an attempt never goes back to IDLE"); break;
    case LV_AT_TRYING: assert(from == LV_AT_IDLE || from == LV_AT_BACKOFF); break;
    case LV_AT_BACKOFF: assert(from == LV_AT_TRYING); break;
    case LV_AT_ANSWERED: assert(from == LV_AT_TRYING); break;
    case LV_AT_TUNNEL: assert(from == LV_AT_ANSWERED); break;
    case LV_AT_DONE: assert(from != LV_AT_DONE && from != LV_AT_IDLE); break;
    }
    struct lv_retry_budget *bud = &at->w->budget;
    if (from == LV_AT_IDLE) bud->active++;
    if (to == LV_AT_DONE) {
        bud->active--;
        if (at->holds_retry_slot) bud->retrying--;
        at->holds_retry_slot = false;
        uv_timer_stop(at->timer);
    }
    at->state = to;
}

/* --- choosing a backend ------------------------------------------------------- */

static bool was_tried(const struct lv_attempt *at, const struct lv_backend *b)
{
    for (unsigned i = 0; i < at->ntried; i++) {
        if (at->tried[i] == b) return true;
    }
    return false;
}

/* Marks the eligible backends in pool->eligible, their effective weights
 * in pool->weights; returns how many there are (lv_eligible_mark). */
static size_t mark_eligible(struct lv_attempt *at, const struct lv_backend *busy, bool untried,
                            uint64_t now)
{
    const struct lv_wpool *p = at->pool;
    for (size_t i = 0; i < p->n; i++)
        p->weights[i] = p->cfgs[i].weight;
    struct lv_eligible_ask ask = {
        .backends = p->backends,
        .n = p->n,
        .breaker = p->breaker,
        .slow_start = p->health->slow_start,
        .busy = busy,
        .tried = at->tried,
        .ntried = at->ntried,
        .untried_only = untried,
    };
    return lv_eligible_mark(&ask, now, at->w->rand, p->eligible, p->weights);
}

/* Backends of the pool out of rotation now (breaker, health, operator). */
static size_t count_out(const struct lv_wpool *p, uint64_t now)
{
    size_t out = 0;
    for (size_t i = 0; i < p->n; i++)
        out += !lv_verdict_usable(lv_eligible_verdict(p->backends[i], p->breaker, now));
    return out;
}

/* Workers sweep on their own clocks from their own counts: two sweeps at
 * the same moment could each see room under the cap and together eject
 * more than max_ejection_percent. Ejections therefore happen under one
 * process-wide lock (a sweep is once per interval per worker and pool),
 * each after a fresh count of what is out. */
static pthread_mutex_t eject_lock = PTHREAD_MUTEX_INITIALIZER;

/* Once per outlier interval, this worker judges its tries of the last
 * interval (upstream/outlier.h) and ejects the outliers: their breakers
 * open for the breaker's growing open time. */
static void outlier_sweep(struct lv_attempt *at, uint64_t now)
{
    const struct lv_wpool *p = at->pool;
    struct lv_outlier_run *od = p->od;
    if (od == NULL || !lv_outlier_due(od, p->outlier, now)) return; /* a pool without sweeps */
    uint64_t span = p->retry->hedge.window;
    for (size_t i = 0; i < p->n; i++) {
        struct lv_backend *b = p->backends[i];
        od->st[i].in = lv_verdict_usable(lv_eligible_verdict(b, p->breaker, now));
        od->st[i].latency = lv_latwin_quantile(&b->lat, span, now, p->outlier->latency_quantile).us;
    }
    if (lv_outlier_run_sweep(od, p->outlier) == 0) return;
    size_t cap = lv_outlier_cap(p->outlier, p->n);
    pthread_mutex_lock(&eject_lock);
    for (size_t i = 0; i < p->n; i++) {
        if (od->why[i] == LV_OUTLIER_NONE) continue;
        if (count_out(p, now) >= cap ||
            !lv_breaker_eject(&p->backends[i]->breaker, p->breaker, now, lv_rand_unit(at->w->rand)))
            od->why[i] = LV_OUTLIER_NONE;
    }
    pthread_mutex_unlock(&eject_lock);
    for (size_t i = 0; i < p->n; i++) {
        if (od->why[i] == LV_OUTLIER_NONE) continue;
        struct lv_backend *b = p->backends[i];
        lv_ewma_reset(&b->rtt);
        uint64_t until = lv_breaker_open_until(&b->breaker);
        const struct lv_outlier_stat *st = &od->last[i];
        lv_log_limited(LV_LOG_WARN, &b->log_state,
                       "backend %s: ejected as an outlier (%s: %llu answered, %llu timed out, "
                       "latency %llu us) for %llums",
                       b->id, lv_outlier_why_name(od->why[i]), (unsigned long long)st->answered,
                       (unsigned long long)st->timeouts, (unsigned long long)st->latency,
                       (unsigned long long)(until > now ? until - now : 0));
    }
}

/* When nothing of the pool can serve (no backend usable, none rising), a
 * request may probe the backend most likely to be back (upstream/
 * revive.h): its breaker lets it through as a probe. Returns its index and
 * fills *t, or -1. */
static int revive_pick(struct lv_attempt *at, uint64_t now, struct lv_breaker_ticket *t)
{
    const struct lv_wpool *p = at->pool;
    if (p->rslots == NULL || p->rstat == NULL) return -1; /* a pool without revive scratch */
    struct lv_eligible_tally tally = lv_eligible_tally(p->backends, p->n, p->breaker, now);
    if (tally.usable + tally.last_resort > 0) return -1;
    for (size_t i = 0; i < p->n; i++) {
        struct lv_backend *b = p->backends[i];
        enum lv_verdict v = lv_eligible_verdict(b, p->breaker, now);
        uint64_t out_since = 0;
        if (lv_breaker_state(&b->breaker) != LV_BREAKER_CLOSED)
            out_since = lv_breaker_opened_at(&b->breaker);
        if (!atomic_load_explicit(&b->healthy, memory_order_relaxed)) {
            uint64_t down = atomic_load_explicit(&b->down_at, memory_order_relaxed);
            if (down > out_since) out_since = down;
        }
        bool gone = atomic_load_explicit(&b->unreachable, memory_order_relaxed);
        p->rslots[i] = &b->revive;
        p->rstat[i] = (struct lv_revive_stat){
            .candidate = gone && v != LV_VERDICT_DISABLED && v != LV_VERDICT_DRAINING &&
                         !lv_verdict_usable(v) && !was_tried(at, b),
            .out_since = out_since,
            .last_pass = atomic_load_explicit(&b->last_pass, memory_order_relaxed),
        };
    }
    int idx = lv_revive_take(p->rslots, p->rstat, p->n, now, REVIVE_INTERVAL_MS);
    if (idx < 0) return -1;
    struct lv_backend *b = p->backends[idx];
    lv_breaker_health_passed(&b->breaker, now);
    if (!lv_breaker_allow(&b->breaker, p->breaker, now, t)) {
        lv_revive_done(&b->revive);
        return -1;
    }
    return idx;
}

/* Picks a usable backend (untried ones first) and has its breaker admit
 * the request. Returns its index in the generation, or -1 if none will.
 * A first copy that finds nothing usable may probe a backend (*revive). */
static int choose(struct lv_attempt *at, const struct lv_backend *busy, struct lv_breaker_ticket *t,
                  bool *revive)
{
    const struct lv_wpool *p = at->pool;
    uint64_t now = lv_clock_ms();
    *revive = false;
    outlier_sweep(at, now);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && at->ntried == 0) break;
        size_t count = mark_eligible(at, busy, pass == 0, now);
        while (count > 0) {
            struct lv_pick pick = {p->backends, p->n,        p->eligible,
                                   p->weights,  at->w->rand, lv_clock_ns()};
            int idx = p->balancer->pick(p->lb_state, &pick);
            if (idx < 0) break;
            struct lv_breaker *br = &p->backends[idx]->breaker;
            if (lv_breaker_allow(br, p->breaker, now, t)) {
                if (busy == NULL || !t->probe) return idx;
                /* A hedge is no probe: a recovering backend gets one real
                 * request at a time, and a copy that loses is cancelled
                 * while the backend still works on it. */
                lv_breaker_cancel(br, t);
            }
            p->eligible[idx] = false; /* half-open and its probes are out */
            count--;
        }
    }
    if (busy != NULL) return -1; /* a hedge goes where a request may go, or nowhere */
    int idx = revive_pick(at, now, t);
    *revive = idx >= 0;
    return idx;
}

/* --- tries ---------------------------------------------------------------------- */

static struct lv_try *try_of(struct lv_attempt *at, const struct lv_upconn *up)
{
    for (int i = 0; i < 2; i++) {
        if (at->tries[i].req != LV_TRY_FREE && at->tries[i].up == up) return &at->tries[i];
    }
    assert(!"an upconn reports to the attempt whose try it serves");
    return NULL;
}

static struct lv_try *other_of(struct lv_attempt *at, const struct lv_try *t)
{
    struct lv_try *o = &at->tries[t == &at->tries[0] ? 1 : 0];
    return o->req != LV_TRY_FREE ? o : NULL;
}

static unsigned in_flight(const struct lv_attempt *at)
{
    return (at->tries[0].req != LV_TRY_FREE) + (at->tries[1].req != LV_TRY_FREE);
}

static void report(struct lv_attempt *at, struct lv_try *t, bool ok)
{
    if (!t->ticket.admitted) return;
    struct lv_backend *b = t->backend;
    struct lv_wctx *w = at->w;
    uint64_t now = lv_clock_ms();
    bool changed = lv_breaker_report(&b->breaker, at->pool->breaker, w->id, now, ok,
                                     lv_rand_unit(w->rand), &t->ticket);
    if (!ok) LV_STAT_INC(b->wstats[w->id].errors);
    t->ticket.admitted = false;
    if (ok && t->revive && !atomic_load(&b->healthy) && !atomic_load(&b->rising)) {
        /* Back before its checks saw it: it serves as the last resort
         * (upstream/eligible.h) until they rise, or fail again. */
        atomic_store(&b->rising, true);
        lv_log_limited(LV_LOG_INFO, &b->log_state,
                       "backend %s: answered while no backend was usable: taking requests as "
                       "the last resort",
                       b->id);
    }
    if (!changed) return;
    enum lv_breaker_state st = lv_breaker_state(&b->breaker);
    if (st == LV_BREAKER_OPEN) {
        lv_ewma_reset(&b->rtt); /* the breaker keeps it out now (ewma.h) */
        uint64_t until = lv_breaker_open_until(&b->breaker);
        lv_log_limited(LV_LOG_WARN, &b->log_state,
                       "backend %s: circuit breaker open for %llums (%s)", b->id,
                       (unsigned long long)(until > now ? until - now : 0),
                       lv_fail_info(at->last_fail)->reason);
    } else if (st == LV_BREAKER_CLOSED) {
        lv_log_limited(LV_LOG_INFO, &b->log_state, "backend %s: circuit breaker closed", b->id);
        lv_backend_recovered(b, now);
    }
}

/* Frees a try's slot: its breaker admission given back if unused, its
 * connection released (closed unless `reusable`; a connection that already
 * failed is closed by itself: pass up == NULL). The first slot always
 * holds the try in flight when only one is. */
static void drop(struct lv_attempt *at, struct lv_try *t, bool reusable)
{
    if (t->ticket.admitted) {
        lv_breaker_cancel(&t->backend->breaker, &t->ticket);
        t->ticket.admitted = false;
    }
    if (t->revive) lv_revive_done(&t->backend->revive);
    struct lv_upconn *up = t->up;
    bool sent = t->req == LV_TRY_SENT;
    memset(t, 0, sizeof(*t));
    t->req = LV_TRY_FREE;
    if (t == &at->tries[0] && at->tries[1].req != LV_TRY_FREE) {
        at->tries[0] = at->tries[1];
        memset(&at->tries[1], 0, sizeof(at->tries[1]));
        at->tries[1].req = LV_TRY_FREE;
    }
    if (up) lv_upconn_release(up, reusable && sent);
}

/* A try that waited and got nothing (timed out, or lost to a hedge): at
 * least that long is what the backend takes now (peak_ewma's estimate). */
static void observe_wait(struct lv_try *t, uint64_t now_ns)
{
    double waited_us = (double)(now_ns - t->start_ns) / 1000.0;
    lv_ewma_observe(&t->backend->rtt, waited_us, now_ns, LV_EWMA_TAU_NS);
}

/* A try of backend i ended for the outlier detector (a pool built
 * without one, od NULL, counts nothing). */
static void count_outlier(struct lv_attempt *at, size_t i, bool timed_out)
{
    if (at->pool->od) lv_outlier_count(at->pool->od, i, timed_out);
}

/* A failure weighs in peak_ewma's estimate at once (lv_outcome_penalty_us). */
static void observe_failure(struct lv_attempt *at, struct lv_try *t, enum lv_fail_kind kind,
                            uint64_t now_ns)
{
    uint64_t us =
        lv_outcome_penalty_us(kind, (now_ns - t->start_ns) / 1000, at->pool->timeouts->per_try);
    if (us) lv_ewma_observe(&t->backend->rtt, (double)us, now_ns, LV_EWMA_TAU_NS);
}

/* The last word is a failure: the exchange answers (or cuts) with kind. */
static void give_up(struct lv_attempt *at, enum lv_fail_kind kind)
{
    for (int i = 1; i >= 0; i--) {
        if (at->tries[i].req != LV_TRY_FREE) drop(at, &at->tries[i], false);
    }
    set_state(at, LV_AT_DONE);
    at->ops->failed(at->user, kind);
}

/* --- the request body ------------------------------------------------------------ */

bool lv_attempt_replayable(const struct lv_attempt *at)
{
    /* The memory held counts too, with room for one partly filled buffer:
     * a body read in full buffers holds about its size, a trickled one is
     * compacted (bodyq.h), and anything that still holds more is released
     * as it is sent. */
    const struct lv_bodyq *q = at->req->body;
    uint64_t max = at->pool->retry->max_replay_body;
    return !q->dropped && q->bytes <= max && q->mem <= max + LV_BUF_SIZE;
}

/* The first body offset some try in flight has not sent yet. */
static uint64_t sent_by_all(const struct lv_attempt *at)
{
    const struct lv_bodyq *q = at->req->body;
    if (in_flight(at) == 0) return q->base;
    uint64_t from = lv_bodyq_end(q);
    for (int i = 0; i < 2; i++) {
        const struct lv_try *t = &at->tries[i];
        if (t->req == LV_TRY_FREE) continue;
        uint64_t c = t->req == LV_TRY_CONNECTING ? q->base : t->cursor;
        if (c < from) from = c;
    }
    return from;
}

/* A body too large to replay is released as soon as every try sent it. */
static void release_sent(struct lv_attempt *at)
{
    if (!lv_attempt_replayable(at)) lv_bodyq_drop_before(at->req->body, sent_by_all(at));
}

uint64_t lv_attempt_body_backlog(const struct lv_attempt *at)
{
    return lv_bodyq_mem_from(at->req->body, sent_by_all(at));
}

/* Hands body bytes to the try's socket while it has room. */
static void pump_body(struct lv_attempt *at, struct lv_try *t)
{
    if (t->req != LV_TRY_SENDING) return;
    struct lv_attempt_req *req = at->req;
    struct lv_sock *s = lv_upconn_sock(t->up);
    bool chunked = req->fwd.framing == LV_FRAME_CHUNKED;
    while (t->cursor < lv_bodyq_end(req->body) && lv_sock_queued(s) < LV_FLOW_HIGH) {
        struct lv_slice sl;
        uint32_t n = lv_bodyq_peek(req->body, t->cursor, &sl);
        if (n == 0) break;
        if (chunked) {
            char line[20];
            size_t hn = lv_chunk_header(line, n);
            lv_sock_add_copy(s, line, hn);
        }
        lv_sock_add(s, sl.p, n, sl.buf);
        if (chunked) lv_sock_add(s, "\r\n", 2, NULL);
        t->cursor += n;
        lv_sock_flush(s);
    }
    if (req->body_complete && t->cursor == lv_bodyq_end(req->body)) {
        if (chunked) lv_sock_add(s, "0\r\n\r\n", 5, NULL);
        t->req = LV_TRY_SENT;
        lv_sock_flush(s);
    }
}

/* The connection is ready: the rewritten head, then the body. Returns
 * false when the attempt gave up (the head could not be written). */
static bool send_head(struct lv_attempt *at, struct lv_try *t)
{
    assert(t->req == LV_TRY_CONNECTING);
    struct lv_attempt_req *req = at->req;
    struct lv_fwd_info fwd = req->fwd;
    fwd.backend_authority = t->up->bcfg->authority;
    size_t need = lv_rewrite_request_size(req->head, &fwd);
    struct lv_buf *head = lv_buf_get_size(&at->w->env.bufs, need);
    if (head == NULL || lv_rewrite_request(req->head, &fwd, head) != 0) {
        if (head) lv_buf_unref(head);
        give_up(at, LV_FAIL_INTERNAL);
        return false;
    }
    struct lv_sock *s = lv_upconn_sock(t->up);
    lv_sock_add(s, head->data, head->len, head);
    lv_buf_unref(head);
    t->req = fwd.framing == LV_FRAME_NONE ? LV_TRY_SENT : LV_TRY_SENDING;
    t->cursor = req->body->base;
    lv_sock_flush(s);
    pump_body(at, t);
    lv_upconn_await(t->up);
    return true;
}

void lv_attempt_body_added(struct lv_attempt *at)
{
    for (int i = 0; i < 2; i++)
        pump_body(at, &at->tries[i]);
    release_sent(at);
}

/* --- retrying and hedging ------------------------------------------------------------ */

static bool take_retry_slot(struct lv_attempt *at)
{
    if (at->holds_retry_slot) return true;
    if (!lv_retry_budget_allows(at->pool->retry, &at->w->budget)) return false;
    at->holds_retry_slot = true;
    at->w->budget.retrying++;
    return true;
}

/* Decides on a retry after the last try in flight failed; schedules it
 * (BACKOFF) and returns true, or records why not and returns false with
 * *nothing_left when a retry was due but no backend can take it. */
static bool retry(struct lv_attempt *at, enum lv_fail_kind kind, unsigned status, bool sent,
                  bool *nothing_left)
{
    const struct lv_retry_cfg *rc = at->pool->retry;
    struct lv_wctx *w = at->w;
    uint64_t now = lv_clock_ms();
    *nothing_left = false;
    /* A retry on a backend this request has not tried goes at once, as
     * nginx and HAProxy do: the backoff protects a backend from being asked
     * again too soon, and this one was not asked. Only a retry that goes
     * back to a tried backend waits (full jitter), or for its Retry-After. */
    size_t usable = mark_eligible(at, NULL, false, now);
    bool fresh = usable > 0 && mark_eligible(at, NULL, true, now) > 0;
    uint64_t delay = fresh ? 0 : lv_retry_backoff(rc, at->attempts, lv_rand_unit(w->rand));
    if (at->retry_after_ms > delay && !fresh) delay = at->retry_after_ms;
    struct lv_retry_input in = {
        .kind = kind,
        .status = status,
        .sent = sent,
        .idempotent = at->req->idempotent,
        .replayable = lv_attempt_replayable(at),
        .attempts = at->attempts,
        .now = now,
        .deadline = at->req->deadline_ms ? at->req->deadline_ms : UINT64_MAX,
        .delay = delay,
        .already_retrying = at->holds_retry_slot,
    };
    enum lv_retry_skip skip = lv_retry_decide(rc, &in, &w->budget);
    if (skip == LV_SKIP_NONE && usable == 0) {
        /* A retry was due but nothing is left to take it (this failure may
         * have opened the last breaker): answer now, do not wait. */
        *nothing_left = true;
        return false;
    }
    if (skip == LV_SKIP_NONE) {
        take_retry_slot(at);
        LV_STAT_INC(w->stats.retries);
        set_state(at, LV_AT_BACKOFF);
        uv_timer_start(at->timer, on_timer, delay, 0);
        return true;
    }
    at->skip = skip;
    if (skip != LV_SKIP_NOT_RETRYABLE) LV_STAT_INC(w->stats.retry_skips[skip]);
    return false;
}

/* The hedge's timer: a fixed hedge_after, or with `auto` the first try's
 * backend's recent p95 within [hedge_min, hedge_max] (lv_hedge_delay).
 * Armed only for what may be hedged at all; lv_hedge_decide has the last
 * word when it fires. */
static void arm_hedge(struct lv_attempt *at)
{
    const struct lv_retry_cfg *rc = at->pool->retry;
    const struct lv_hedge_cfg *hc = &rc->hedge;
    const struct lv_attempt_req *req = at->req;
    if (!lv_hedge_on(hc) || !req->idempotent || !req->body_complete) return;
    if (req->upgrade) return; /* two tunnels for one client would be wrong */
    if (at->state != LV_AT_TRYING || in_flight(at) != 1 || uv_is_active((uv_handle_t *)at->timer))
        return;
    if (at->attempts >= rc->max_attempts || !lv_attempt_replayable(at)) return;
    struct lv_latwin_est est = {0, 0};
    if (hc->after == LV_HEDGE_AUTO)
        est =
            lv_latwin_estimate(&at->tries[0].backend->lat, hc->window, lv_clock_ms(), hc->quantile);
    uint64_t delay = lv_hedge_delay(hc, est.us, est.n);
    if (delay > 0) uv_timer_start(at->timer, on_timer, delay, 0);
}

static void hedge(struct lv_attempt *at)
{
    const struct lv_retry_cfg *rc = at->pool->retry;
    const struct lv_attempt_req *req = at->req;
    uint64_t now = lv_clock_ms();
    bool answered = at->state != LV_AT_TRYING;
    const struct lv_backend *busy = in_flight(at) ? at->tries[0].backend : NULL;
    struct lv_hedge_ask a = {
        .idempotent = req->idempotent,
        .body_complete = req->body_complete,
        .replayable = lv_attempt_replayable(at),
        .upgrade = req->upgrade,
        .answered = answered,
        .hedged = in_flight(at) != 1,
        .attempts = at->attempts,
        .max_attempts = rc->max_attempts,
        .other_backend = busy && mark_eligible(at, busy, false, now) > 0,
        .budget = at->holds_retry_slot || lv_retry_budget_allows(rc, &at->w->budget),
        .now = now,
        .deadline = req->deadline_ms ? req->deadline_ms : UINT64_MAX,
    };
    enum lv_hedge_why why = lv_hedge_decide(&rc->hedge, &a);
    if (why == LV_HEDGE_BUDGET) LV_STAT_INC(at->w->stats.retry_skips[LV_SKIP_BUDGET]);
    if (why != LV_HEDGE_GO) {
        lv_debug("hedge not sent: %s", lv_hedge_why_name(why));
        return;
    }
    take_retry_slot(at);
    start_try(at, true);
}

static void on_timer(uv_timer_t *timer)
{
    struct lv_attempt *at = timer->data;
    if (at->state == LV_AT_TRYING) {
        hedge(at);
        return;
    }
    assert(at->state == LV_AT_BACKOFF);
    if (at->ops->client_gone(at->user)) {
        /* Nobody is waiting for this retry any more: spare the backends. */
        give_up(at, LV_FAIL_CLIENT_CLOSED);
        return;
    }
    set_state(at, LV_AT_TRYING);
    start_try(at, false);
}

/* --- starting tries --------------------------------------------------------------- */

/* When a try started at `now` must have its response head: per_try after
 * the later of its start and the request's end, and the request's deadline
 * (timeouts.backend, counted from the request's end) at the latest. 0 while
 * the request still streams in: a slow upload is no slow backend (the
 * connection times the upload by inactivity meanwhile). */
static uint64_t head_deadline(const struct lv_attempt *at, uint64_t now)
{
    if (!at->req->body_complete) return 0;
    uint64_t per_try = now + at->pool->timeouts->per_try;
    return per_try < at->req->deadline_ms ? per_try : at->req->deadline_ms;
}

static void start_try(struct lv_attempt *at, bool is_hedge)
{
    assert(at->state == LV_AT_TRYING);
    struct lv_breaker_ticket ticket;
    const struct lv_backend *busy = is_hedge ? at->tries[0].backend : NULL;
    bool revive;
    int idx = choose(at, busy, &ticket, &revive);
    struct lv_backend *b = idx >= 0 ? at->pool->backends[idx] : NULL;
    if (b == NULL) {
        if (is_hedge) return; /* nowhere else to send a copy */
        /* A backend's answer that was to be retried is gone: say "no
         * backend" (503, Retry-After) rather than make up a 502. */
        bool answer_lost = at->last_fail == LV_FAIL_BAD_STATUS;
        give_up(at, at->attempts && !answer_lost ? at->last_fail : LV_FAIL_NO_BACKEND);
        return;
    }
    if (!was_tried(at, b) && at->ntried < LV_RETRY_MAX_ATTEMPTS) at->tried[at->ntried++] = b;
    at->attempts++;
    at->backend = b;
    uint64_t now = lv_clock_ms();
    const struct lv_timeouts_cfg *to = at->pool->timeouts;
    struct lv_upconn_times times = {
        .connect_deadline = now + to->connect,
        .head_deadline = head_deadline(at, now),
        .inactivity_ms = to->idle,
    };
    struct lv_try *t = &at->tries[is_hedge ? 1 : 0];
    assert(t->req == LV_TRY_FREE);
    *t = (struct lv_try){
        .req = LV_TRY_CONNECTING,
        .backend = b,
        .ticket = ticket,
        .start_ns = lv_clock_ns(),
        .idx = (size_t)idx,
        .hedge = is_hedge,
        .revive = revive,
    };
    int err = 0;
    t->up = lv_upconn_acquire(at->w->ups, b, &at->pool->cfgs[idx], &times, &upconn_ops, at, &err);
    if (t->up == NULL) {
        lv_log_limited(LV_LOG_WARN, &b->log_conn, "backend %s: cannot open a connection: %s", b->id,
                       uv_strerror(err));
        drop(at, t, false);
        if (!is_hedge) give_up(at, LV_FAIL_CONNECT_FAILED);
        return;
    }
    if (is_hedge) {
        at->hedges++;
        LV_STAT_INC(at->w->stats.hedges);
    }
    if (lv_upconn_ready(t->up) && !send_head(at, t)) return;
    if (!is_hedge) arm_hedge(at);
}

void lv_attempt_init(struct lv_attempt *at, struct lv_wctx *w, uv_timer_t *timer)
{
    memset(at, 0, sizeof(*at));
    at->w = w;
    at->timer = timer;
    at->state = LV_AT_IDLE;
}

void lv_attempt_start(struct lv_attempt *at, struct lv_attempt_req *req,
                      const struct lv_wpool *pool, const struct lv_attempt_ops *ops, void *user)
{
    assert(at->state == LV_AT_IDLE);
    at->req = req;
    at->pool = pool;
    at->ops = ops;
    at->user = user;
    at->timer->data = at;
    at->skip = LV_SKIP_NONE;
    at->last_fail = LV_FAIL_NONE;
    set_state(at, LV_AT_TRYING);
    start_try(at, false);
}

void lv_attempt_body_complete(struct lv_attempt *at)
{
    uint64_t now = lv_clock_ms();
    at->req->body_complete = true;
    if (at->req->deadline_ms == 0) at->req->deadline_ms = now + at->pool->timeouts->backend;
    if (at->state == LV_AT_IDLE || at->state == LV_AT_DONE) return;
    lv_attempt_body_added(at);
    for (int i = 0; i < 2; i++) {
        struct lv_try *t = &at->tries[i];
        if (t->req != LV_TRY_FREE && t->up)
            lv_upconn_set_head_deadline(t->up, head_deadline(at, now));
    }
    arm_hedge(at);
}

/* --- what the connections report --------------------------------------------------- */

static void up_ready(void *user, struct lv_upconn *up)
{
    struct lv_attempt *at = user;
    send_head(at, try_of(at, up));
}

/* Retry-After: delta-seconds (an HTTP date is not worth parsing here). */
static uint64_t retry_after_ms(const struct lv_head *h)
{
    const struct lv_hfield *f = LV_HEAD_FIND(h, "retry-after");
    if (f == NULL || f->value_len == 0 || f->value_len > 9) return 0;
    char tmp[10];
    memcpy(tmp, lv_head_str(h, f->value), f->value_len);
    tmp[f->value_len] = '\0';
    uint64_t s;
    return lv_parse_u64(tmp, &s) == 0 ? s * 1000 : 0;
}

/* A 1xx: counted against the caps, relayed when it is the only try. */
static int interim(struct lv_attempt *at, struct lv_try *t, const struct lv_upconn_head *h)
{
    const struct lv_head *hd = h->head;
    t->interim_count++;
    t->interim_bytes += (hd->buf ? hd->buf->len : 0) + (uint64_t)hd->nfields * 4 + 32;
    if (t->interim_count > INTERIM_MAX_COUNT || t->interim_bytes > INTERIM_MAX_BYTES) {
        lv_debug("backend %s: more than %d interim responses or %d bytes of them", t->backend->id,
                 INTERIM_MAX_COUNT, INTERIM_MAX_BYTES);
        lv_upconn_refuse(t->up, LV_FAIL_BAD_RESPONSE);
        return -1;
    }
    /* 100 answered a question levee did not forward. */
    if (h->status != 100 && in_flight(at) == 1) at->ops->interim(at->user, h);
    return 0;
}

static int up_head(void *user, struct lv_upconn *up, const struct lv_upconn_head *h)
{
    struct lv_attempt *at = user;
    struct lv_try *t = try_of(at, up);
    unsigned status = h->status;
    if (status == 101 && !at->req->upgrade) return -1; /* no upgrade was asked for */
    if (status < 200 && status != 101) return interim(at, t, h);

    uint64_t now_ns = lv_clock_ns();
    uint64_t ttfb_us = (now_ns - t->start_ns) / 1000;
    lv_lathist_add(&t->backend->wstats[at->w->id].latency, ttfb_us);
    lv_ewma_observe(&t->backend->rtt, (double)ttfb_us, now_ns, LV_EWMA_TAU_NS);
    lv_latwin_add(&t->backend->lat, at->w->id, at->pool->retry->hedge.window, now_ns / 1000000,
                  ttfb_us);
    if (atomic_load_explicit(&t->backend->unreachable, memory_order_relaxed))
        atomic_store(&t->backend->unreachable, false);
    count_outlier(at, t->idx, false);
    struct lv_try *other = other_of(at, t);
    struct lv_head_in hi = {
        .status = status,
        .retryable = lv_retry_status(at->pool->retry, status),
        .on_hedge = t->hedge,
        .other_in_flight = other != NULL,
    };
    struct lv_head_out ho = lv_outcome_head(&hi);
    if (hi.retryable) {
        at->last_fail = LV_FAIL_BAD_STATUS;
        if (status == 503 || status == 429) at->retry_after_ms = retry_after_ms(h->head);
    }
    /* The penalty first: a report that opens the breaker resets it. */
    if (hi.retryable) observe_failure(at, t, LV_FAIL_BAD_STATUS, now_ns);
    report(at, t, ho.success);
    if (ho.action == LV_HEAD_WAIT_OTHER) {
        drop(at, t, false);
        return -1;
    }
    if (ho.action == LV_HEAD_ASK_RETRY) {
        bool nothing_left;
        if (retry(at, LV_FAIL_BAD_STATUS, status, true, &nothing_left)) {
            drop(at, t, false);
            return -1;
        }
        /* Not retried: this answer is the answer. */
    }
    /* This head is the answer. */
    if (ho.hedge_won) LV_STAT_INC(at->w->stats.hedge_wins);
    if (other) {
        if (ho.loser == LV_LOSER_FAILED) {
            /* Lost to a copy sent later: the outlier detector and
             * peak_ewma hear it, not the breaker (outcome.h). */
            count_outlier(at, other->idx, true);
            observe_wait(other, now_ns);
        }
        drop(at, other, false); /* a loser not reported gives its admission back */
        t = try_of(at, up);     /* the answer may have moved to the first slot */
    }
    at->winner = (unsigned)(t - at->tries);
    at->backend = t->backend;
    uv_timer_stop(at->timer);
    set_state(at, LV_AT_ANSWERED);
    int rc = at->ops->head(at->user, h);
    if (rc < 0) lv_upconn_refuse(up, LV_FAIL_BAD_RESPONSE);
    return rc;
}

static int up_body(void *user, struct lv_upconn *up, struct lv_buf *b, const char *p, size_t len)
{
    struct lv_attempt *at = user;
    (void)up;
    assert(at->state == LV_AT_ANSWERED && at->tries[at->winner].up == up);
    return at->ops->body(at->user, b, p, len);
}

static void up_end(void *user, struct lv_upconn *up, bool reusable)
{
    struct lv_attempt *at = user;
    struct lv_try *t = try_of(at, up);
    assert(at->state == LV_AT_ANSWERED && t == &at->tries[at->winner]);
    drop(at, t, reusable);
    set_state(at, LV_AT_DONE);
    at->ops->end(at->user);
}

static void up_upgraded(void *user, struct lv_upconn *up, struct lv_buf *b, const char *rest,
                        size_t n)
{
    struct lv_attempt *at = user;
    assert(at->state == LV_AT_ANSWERED && at->tries[at->winner].up == up);
    set_state(at, LV_AT_TUNNEL);
    struct lv_sock *s = lv_upconn_take_stream(up);
    at->ops->upgraded(at->user, s, b, rest, n);
}

static void up_failed(void *user, struct lv_upconn *up, enum lv_fail_kind kind, int sys_err)
{
    struct lv_attempt *at = user;
    struct lv_try *t = try_of(at, up);
    bool answered = at->state == LV_AT_ANSWERED;
    struct lv_stale_in si = {
        .kind = kind,
        .reused = up->reused,
        .idle_ms = up->idle_ms,
        .got_bytes = up->got_bytes,
        .resp_started = answered,
        .idempotent = at->req->idempotent,
        .replayable = lv_attempt_replayable(at),
        .stale_retried = at->stale_retried,
    };
    enum lv_stale stale = lv_outcome_stale(&si);
    LV_STAT_INC(at->w->stats.attempt_failures[kind]);
    bool sent = t->req != LV_TRY_CONNECTING;
    at->last_fail = kind;
    if (lv_fail_is_backend(kind) && stale == LV_STALE_BLAMED) {
        observe_failure(at, t, kind, lv_clock_ns()); /* before: an opening resets it */
        report(at, t, false);
        if (kind == LV_FAIL_RESPONSE_TIMEOUT) count_outlier(at, t->idx, true);
        if (kind == LV_FAIL_CONNECT_FAILED || kind == LV_FAIL_CONNECT_TIMEOUT)
            atomic_store(&t->backend->unreachable, true);
    }
    lv_debug("backend %s: attempt %u failed: %s (%s)", t->backend->id, at->attempts,
             lv_fail_info(kind)->reason, sys_err ? uv_strerror(sys_err) : "-");
    bool revive = t->revive;
    t->up = NULL; /* the connection closes itself */
    drop(at, t, false);
    if (answered) { /* the answer broke off: it is cut short */
        give_up(at, kind);
        return;
    }
    if (in_flight(at) > 0) return; /* the other try may still answer */
    if (revive && !sent) {
        /* The probe found it still gone: the client gets what it would
         * have had without it, 503 no_backend (Retry-After). */
        give_up(at, LV_FAIL_NO_BACKEND);
        return;
    }
    if (stale == LV_STALE_RETRY_NOW) {
        at->stale_retried = true;
        at->attempts--; /* this one does not count */
        set_state(at, LV_AT_BACKOFF);
        uv_timer_start(at->timer, on_timer, 0, 0);
        return;
    }
    bool nothing_left;
    if (!retry(at, kind, 0, sent, &nothing_left))
        give_up(at, nothing_left ? LV_FAIL_NO_BACKEND : kind);
}

static void up_drained(void *user, struct lv_upconn *up)
{
    struct lv_attempt *at = user;
    struct lv_try *t = try_of(at, up);
    pump_body(at, t);
    release_sent(at);
    at->ops->body_sent(at->user);
}

static const struct lv_upconn_ops upconn_ops = {
    .ready = up_ready,
    .head = up_head,
    .body = up_body,
    .end = up_end,
    .upgraded = up_upgraded,
    .failed = up_failed,
    .drained = up_drained,
};

/* --- the exchange's controls --------------------------------------------------------- */

void lv_attempt_pause(struct lv_attempt *at)
{
    if (at->state == LV_AT_ANSWERED) lv_upconn_pause(at->tries[at->winner].up);
}

void lv_attempt_resume(struct lv_attempt *at)
{
    if (at->state == LV_AT_ANSWERED) lv_upconn_resume(at->tries[at->winner].up);
}

void lv_attempt_tunnel_end(struct lv_attempt *at, uint64_t idle_ms)
{
    if (at->state != LV_AT_TUNNEL) return;
    struct lv_try *t = &at->tries[at->winner];
    struct lv_upconn *up = t->up;
    t->up = NULL;
    drop(at, t, false);
    lv_upconn_finish(up, idle_ms);
    set_state(at, LV_AT_DONE);
}

void lv_attempt_stop(struct lv_attempt *at)
{
    if (at->state == LV_AT_IDLE || at->state == LV_AT_DONE) return;
    for (int i = 1; i >= 0; i--) {
        if (at->tries[i].req != LV_TRY_FREE) drop(at, &at->tries[i], false);
    }
    set_state(at, LV_AT_DONE);
}

unsigned lv_attempt_retry_after(const struct lv_attempt *at)
{
    const struct lv_wpool *p = at->pool;
    return lv_eligible_retry_after(p->backends, p->n, p->health->interval, lv_clock_ms());
}
