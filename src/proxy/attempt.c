/*
 * The attempt loop: choosing backends, retrying, hedging, and telling each
 * backend's circuit breaker how its tries went. The decisions themselves
 * are pure functions — which backends are eligible (upstream/eligible.c),
 * what an outcome counts for (upstream/outcome.c: the stale keep-alive
 * rule, the hedge race), retries (upstream/retry.c), the breaker
 * (upstream/breaker.c); this file wires them to connections and timers.
 */
#include "proxy/attempt.h"

#include <stdlib.h>
#include <strings.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/units.h"
#include "proxy/client.h"
#include "proxy/exchange.h"
#include "config/gen.h"
#include "proxy/wgen.h"
#include "proxy/proxy.h"
#include "proxy/upconn.h"
#include "upstream/backend.h"
#include "upstream/balancer.h"
#include "upstream/eligible.h"
#include "upstream/outcome.h"

enum { EXT_NONE, EXT_BACKOFF, EXT_HEDGE };

static void start(struct lv_exchange *ex, bool hedge);

/* --- choosing a backend ------------------------------------------------------- */

static bool was_tried(const struct lv_exchange *ex, const struct lv_backend *b)
{
    for (unsigned i = 0; i < ex->ntried; i++) {
        if (ex->tried[i] == b) return true;
    }
    return false;
}

/* Marks the eligible backends in wg->eligible, their effective weights in
 * wg->weights; returns how many there are (lv_eligible_mark). */
static size_t mark_eligible(struct lv_exchange *ex, const struct lv_backend *busy, bool untried,
                            uint64_t now)
{
    struct lv_wgen *wg = ex->wg;
    const struct lv_gen *g = wg->gen;
    for (size_t i = 0; i < g->nbackends; i++)
        wg->weights[i] = ex->cfg->backends[i].weight;
    struct lv_eligible_ask ask = {
        .backends = g->backends,
        .n = g->nbackends,
        .breaker = &ex->cfg->breaker,
        .slow_start = ex->cfg->health.slow_start,
        .busy = busy,
        .tried = ex->tried,
        .ntried = ex->ntried,
        .untried_only = untried,
    };
    return lv_eligible_mark(&ask, now, &ex->srv->w.rand, wg->eligible, wg->weights);
}

/* Picks a usable backend (untried ones first) and has its breaker admit
 * the request. Returns its index in the generation, or -1 if none will. */
static int choose(struct lv_exchange *ex, const struct lv_backend *busy,
                  struct lv_breaker_ticket *t)
{
    struct lv_wgen *wg = ex->wg;
    const struct lv_gen *g = wg->gen;
    uint64_t now = lv_clock_ms();
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1 && ex->ntried == 0) break;
        size_t count = mark_eligible(ex, busy, pass == 0, now);
        while (count > 0) {
            struct lv_pick pick = {g->backends, g->nbackends,     wg->eligible,
                                   wg->weights, &ex->srv->w.rand, lv_clock_ns()};
            int idx = ex->cfg->balancer->pick(wg->lb_state, &pick);
            if (idx < 0) break;
            if (lv_breaker_allow(&g->backends[idx]->breaker, &ex->cfg->breaker, now, t)) return idx;
            wg->eligible[idx] = false; /* half-open and its probes are out */
            count--;
        }
    }
    return -1;
}

/* --- outcomes -------------------------------------------------------------------- */

static void report(struct lv_exchange *ex, struct lv_upconn *up, bool ok)
{
    if (!up->ticket.admitted) return;
    struct lv_backend *b = up->backend;
    struct lv_server *srv = ex->srv;
    uint64_t now = lv_clock_ms();
    bool changed = lv_breaker_report(&b->breaker, &ex->cfg->breaker, srv->w.id, now, ok,
                                     lv_rand_unit(&srv->w.rand), &up->ticket);
    if (!ok) LV_STAT_INC(b->wstats[srv->w.id].errors);
    up->ticket.admitted = false;
    if (!changed) return;
    enum lv_breaker_state st = lv_breaker_state(&b->breaker);
    if (st == LV_BREAKER_OPEN) {
        uint64_t until = lv_breaker_open_until(&b->breaker);
        lv_log_limited(LV_LOG_WARN, &b->log_state,
                       "backend %s: circuit breaker open for %llums (%s)", b->id,
                       (unsigned long long)(until > now ? until - now : 0),
                       lv_fail_info(ex->last_fail)->reason);
    } else if (st == LV_BREAKER_CLOSED) {
        lv_log_limited(LV_LOG_INFO, &b->log_state, "backend %s: circuit breaker closed", b->id);
        lv_backend_recovered(b, now);
    }
}

/* Releases one try: its breaker admission back if unused, its connection
 * closed. The other try, if any, becomes the one in flight. */
static void drop(struct lv_exchange *ex, struct lv_upconn *up)
{
    if (ex->up == up) ex->up = NULL;
    if (ex->hedge == up) ex->hedge = NULL;
    if (up->ticket.admitted) {
        lv_breaker_cancel(&up->backend->breaker, &up->ticket);
        up->ticket.admitted = false;
    }
    lv_upconn_release(up, false);
    if (ex->up == NULL && ex->hedge) {
        ex->up = ex->hedge;
        ex->hedge = NULL;
    }
}

static void on_timer(uv_timer_t *t);

static void arm(struct lv_exchange *ex, int mode, uint64_t ms)
{
    ex->timer_mode = (uint8_t)mode;
    ex->timer.data = ex;
    uv_timer_start(&ex->timer, on_timer, ms, 0);
}

static bool take_retry_slot(struct lv_exchange *ex)
{
    if (ex->retrying) return true;
    if (!lv_retry_budget_allows(&ex->cfg->retry, &ex->srv->budget)) return false;
    ex->retrying = true;
    ex->srv->budget.retrying++;
    return true;
}

static bool replayable(const struct lv_exchange *ex)
{
    return lv_exchange_replayable(ex);
}

/* Is there a usable backend this request has not tried? */
static bool untried_left(struct lv_exchange *ex)
{
    return mark_eligible(ex, NULL, true, lv_clock_ms()) > 0;
}

/* Decides on a retry after the last try in flight failed; schedules it and
 * returns true, or records why not and returns false. */
static bool retry(struct lv_exchange *ex, enum lv_fail_kind kind, unsigned status, bool sent)
{
    const struct lv_retry_cfg *rc = &ex->cfg->retry;
    struct lv_server *srv = ex->srv;
    uint64_t now = lv_clock_ms();
    /* A retry on a backend this request has not tried goes at once, as
     * nginx and HAProxy do: the backoff protects a backend from being asked
     * again too soon, and this one was not asked. Only a retry that goes
     * back to a tried backend waits (full jitter), or for its Retry-After. */
    size_t usable = mark_eligible(ex, NULL, false, now);
    bool fresh = usable > 0 && untried_left(ex);
    uint64_t delay = fresh ? 0 : lv_retry_backoff(rc, ex->attempts, lv_rand_unit(&srv->w.rand));
    if (ex->retry_after_ms > delay && !fresh) delay = ex->retry_after_ms;
    struct lv_retry_input in = {
        .kind = kind,
        .status = status,
        .sent = sent,
        .idempotent = ex->idempotent,
        .replayable = replayable(ex),
        .attempts = ex->attempts,
        .now = now,
        .deadline = ex->deadline_ms,
        .delay = delay,
        .already_retrying = ex->retrying,
    };
    enum lv_retry_skip skip = lv_retry_decide(rc, &in, &srv->budget);
    if (skip == LV_SKIP_NONE && usable == 0) {
        /* A retry was due but nothing is left to take it (this failure may
         * have opened the last breaker): answer now, do not wait. */
        ex->nothing_left = true;
        return false;
    }
    if (skip == LV_SKIP_NONE) {
        take_retry_slot(ex);
        LV_STAT_INC(srv->stats.retries);
        arm(ex, EXT_BACKOFF, delay);
        return true;
    }
    ex->skip = skip;
    if (skip != LV_SKIP_NOT_RETRYABLE) LV_STAT_INC(srv->stats.retry_skips[skip]);
    return false;
}

/* A try that waited and got nothing (timed out, or lost to a hedge): at
 * least that long is what the backend takes now (peak_ewma's estimate). */
static void observe_wait(struct lv_upconn *up, uint64_t now_ns)
{
    double waited_us = (double)(now_ns - up->attempt_start_ns) / 1000.0;
    lv_ewma_observe(&up->backend->rtt, waited_us, now_ns, LV_EWMA_TAU_NS);
}

void lv_attempt_failed(struct lv_exchange *ex, struct lv_upconn *up, enum lv_fail_kind kind,
                       int sys_err)
{
    struct lv_stale_in si = {
        .kind = kind,
        .reused = up->reused,
        .idle_ms = up->idle_ms,
        .got_bytes = up->got_bytes,
        .resp_started = ex->resp_started,
        .idempotent = ex->idempotent,
        .replayable = replayable(ex),
        .stale_retried = ex->stale_retried,
    };
    enum lv_stale stale = lv_outcome_stale(&si);
    LV_STAT_INC(ex->srv->stats.attempt_failures[kind]);
    if (kind == LV_FAIL_CONNECT_TIMEOUT || kind == LV_FAIL_RESPONSE_TIMEOUT)
        observe_wait(up, lv_clock_ns());
    bool sent = up->head_sent;
    ex->last_fail = kind;
    if (lv_fail_is_backend(kind) && stale == LV_STALE_BLAMED) report(ex, up, false);
    lv_debug("backend %s: attempt %u failed: %s (%s)", up->backend->id, ex->attempts,
             lv_fail_info(kind)->reason, sys_err ? uv_strerror(sys_err) : "-");
    bool was_winner = ex->resp_started && ex->up == up;
    drop(ex, up);
    if (was_winner) {
        lv_exchange_abort(ex, kind);
        return;
    }
    if (ex->up) return; /* the other try may still answer */
    if (stale == LV_STALE_RETRY_NOW) {
        ex->stale_retried = true;
        ex->attempts--; /* this one does not count */
        arm(ex, EXT_BACKOFF, 0);
        return;
    }
    if (!retry(ex, kind, 0, sent))
        lv_exchange_respond(ex, ex->nothing_left ? LV_FAIL_NO_BACKEND : kind);
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

int lv_attempt_on_response(struct lv_exchange *ex, struct lv_upconn *up)
{
    unsigned status = up->resp.status;
    uint64_t now_ns = lv_clock_ns();
    uint64_t ttfb_us = (now_ns - up->attempt_start_ns) / 1000;
    lv_lathist_add(&up->backend->wstats[ex->srv->w.id].latency, ttfb_us);
    lv_ewma_observe(&up->backend->rtt, (double)ttfb_us, now_ns, LV_EWMA_TAU_NS);
    struct lv_upconn *other = up == ex->up ? ex->hedge : ex->up;
    struct lv_head_in hi = {
        .status = status,
        .retryable = lv_retry_status(&ex->cfg->retry, status),
        .on_hedge = up == ex->hedge,
        .other_in_flight = other != NULL,
    };
    struct lv_head_out ho = lv_outcome_head(&hi);
    if (hi.retryable) {
        ex->last_fail = LV_FAIL_BAD_STATUS;
        if (status == 503 || status == 429) ex->retry_after_ms = retry_after_ms(&up->resp);
    }
    report(ex, up, ho.success);
    if (ho.action == LV_HEAD_WAIT_OTHER ||
        (ho.action == LV_HEAD_ASK_RETRY && retry(ex, LV_FAIL_BAD_STATUS, status, true))) {
        drop(ex, up);
        return -1;
    }
    /* This answer is the answer. */
    if (ho.hedge_won) LV_STAT_INC(ex->srv->stats.hedge_wins);
    if (ho.loser == LV_LOSER_FAILED) {
        ex->last_fail = ho.loser_kind;
        report(ex, other, false);
        observe_wait(other, now_ns);
    }
    if (other) drop(ex, other); /* a loser not reported gives its admission back */
    ex->up = up;
    ex->hedge = NULL;
    ex->backend = up->backend;
    if (ex->timer_mode != EXT_NONE) {
        uv_timer_stop(&ex->timer);
        ex->timer_mode = EXT_NONE;
    }
    return 0;
}

/* --- hedging ------------------------------------------------------------------------ */

static void arm_hedge(struct lv_exchange *ex)
{
    const struct lv_retry_cfg *rc = &ex->cfg->retry;
    if (rc->hedge_after == 0 || !ex->idempotent || !ex->req_complete || !replayable(ex)) return;
    if (ex->upgrade) return; /* two tunnels for one client would be wrong */
    if (ex->up == NULL || ex->hedge || ex->done || ex->timer_mode != EXT_NONE) return;
    if (ex->attempts >= rc->max_attempts) return;
    arm(ex, EXT_HEDGE, rc->hedge_after);
}

static void hedge(struct lv_exchange *ex)
{
    if (ex->up == NULL || ex->up->resp_head || ex->hedge) return;
    if (ex->attempts >= ex->cfg->retry.max_attempts) return;
    if (!take_retry_slot(ex)) {
        LV_STAT_INC(ex->srv->stats.retry_skips[LV_SKIP_BUDGET]);
        return;
    }
    start(ex, true);
}

static void on_timer(uv_timer_t *t)
{
    struct lv_exchange *ex = t->data;
    int mode = ex->timer_mode;
    ex->timer_mode = EXT_NONE;
    if (ex->done) return;
    if (mode == EXT_BACKOFF && lv_client_gone(ex->client)) {
        /* Nobody is waiting for this retry any more: spare the backends. */
        lv_client_abort(ex->client);
        return;
    }
    if (mode == EXT_BACKOFF)
        start(ex, false);
    else if (mode == EXT_HEDGE)
        hedge(ex);
}

/* --- starting tries --------------------------------------------------------------- */

static void start(struct lv_exchange *ex, bool is_hedge)
{
    struct lv_breaker_ticket t;
    int idx = choose(ex, is_hedge && ex->up ? ex->up->backend : NULL, &t);
    struct lv_backend *b = idx >= 0 ? ex->wg->gen->backends[idx] : NULL;
    if (b == NULL) {
        if (is_hedge) return; /* nowhere else to send a copy */
        /* A backend's answer that was to be retried is gone: say "no
         * backend" (503, Retry-After) rather than make up a 502. */
        bool answer_lost = ex->last_fail == LV_FAIL_BAD_STATUS;
        lv_exchange_respond(ex, ex->attempts && !answer_lost ? ex->last_fail : LV_FAIL_NO_BACKEND);
        return;
    }
    if (!was_tried(ex, b) && ex->ntried < LV_RETRY_MAX_ATTEMPTS) ex->tried[ex->ntried++] = b;
    ex->attempts++;
    ex->backend = b;
    int err = 0;
    struct lv_upconn *up = lv_upconn_acquire(ex->srv, b, &ex->cfg->backends[idx], ex, &err);
    if (up == NULL) {
        lv_breaker_cancel(&b->breaker, &t);
        lv_log_limited(LV_LOG_WARN, &b->log_conn, "backend %s: cannot open a connection: %s", b->id,
                       uv_strerror(err));
        if (!is_hedge) lv_exchange_respond(ex, LV_FAIL_CONNECT_FAILED);
        return;
    }
    up->ticket = t;
    if (is_hedge) {
        ex->hedge = up;
        ex->hedged = true;
        LV_STAT_INC(ex->srv->stats.hedges);
    } else {
        ex->up = up;
    }
    if (up->state == LV_UP_BUSY) lv_exchange_on_connected(ex, up);
    if (!is_hedge && !ex->done) arm_hedge(ex);
}

void lv_attempt_first(struct lv_exchange *ex)
{
    ex->counted = true;
    ex->srv->budget.active++;
    start(ex, false);
}

void lv_attempt_request_complete(struct lv_exchange *ex)
{
    arm_hedge(ex);
}

void lv_attempt_stop(struct lv_exchange *ex)
{
    if (ex->timer_mode != EXT_NONE) {
        uv_timer_stop(&ex->timer);
        ex->timer_mode = EXT_NONE;
    }
    if (ex->hedge) drop(ex, ex->hedge);
    if (ex->up) drop(ex, ex->up);
    struct lv_retry_budget *bud = &ex->srv->budget;
    if (ex->retrying) {
        bud->retrying--;
        ex->retrying = false;
    }
    if (ex->counted) {
        bud->active--;
        ex->counted = false;
    }
}

unsigned lv_attempt_retry_after(const struct lv_exchange *ex)
{
    const struct lv_gen *g = ex->wg->gen;
    return lv_eligible_retry_after(g->backends, g->nbackends, ex->cfg->health.interval,
                                   lv_clock_ms());
}
