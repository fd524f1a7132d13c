/*
 * The exchange: one request, from its parsed head to the last byte of its
 * answer. It checks the request, asks the rate limits, runs the attempt
 * loop, relays the answer to its downstream with backpressure both ways,
 * and answers itself when levee has the last word. It writes no socket:
 * the downstream serializes, the attempt loop talks to backends.
 */
#include "proxy/exchange.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "http/check.h"
#include "http/status.h"
#include "proxy/accesslog.h"
#include "proxy/flow.h"
#include "proxy/wgen.h"
#include "upstream/backend.h"
#include "upstream/eligible.h"
#include "config/gen.h"

#define MAX_FREE_EXCHANGES 1024

static const struct lv_cached_ops cached_ops;
static const struct lv_tunnel_ops tunnel_ops;
static void respond(struct lv_exchange *ex, enum lv_fail_kind kind);
static void respond_health(struct lv_exchange *ex);
static void abort_answer(struct lv_exchange *ex, enum lv_fail_kind kind);

/* Moves to state `to`: only along the arrows of exchange.h's diagram. */
static void set_state(struct lv_exchange *ex, enum lv_ex_state to)
{
    enum lv_ex_state from = ex->state;
    switch (to) {
    case LV_EX_HEAD: assert(!"an exchange starts in HEAD, never goes back"); break;
    case LV_EX_LIMITING: assert(from == LV_EX_HEAD); break;
    case LV_EX_FORWARDING: assert(from == LV_EX_HEAD || from == LV_EX_LIMITING); break;
    case LV_EX_RESPONDING: assert(from == LV_EX_FORWARDING); break;
    case LV_EX_TUNNEL: assert(from == LV_EX_RESPONDING); break;
    case LV_EX_DONE: assert(from != LV_EX_DONE); break;
    }
    ex->state = to;
}

/* The exchange is DONE: everything in flight stops, the downstream hears. */
static void finish(struct lv_exchange *ex, enum lv_ex_end end)
{
    set_state(ex, LV_EX_DONE);
    ex->end = end;
    lv_ratelimit_cancel(&ex->rl);
    lv_cached_stop(&ex->cd);
    ex->ops->done(ex->d);
}

/* --- lifecycle ------------------------------------------------------------- */

struct lv_exchange *lv_exchange_create(struct lv_wctx *w, const struct lv_downstream_ops *ops,
                                       void *d, const char *peer_ip, bool tls)
{
    struct lv_exchange *ex = NULL;
    if (!lv_list_empty(&w->free_exchanges)) {
        ex = lv_container_of(w->free_exchanges.next, struct lv_exchange, link_free);
        lv_list_remove(&ex->link_free);
        w->nfree_exchanges--;
    } else {
        ex = calloc(1, sizeof(*ex));
        if (ex == NULL) return NULL;
        uv_timer_init(w->loop, &ex->timer);
        uv_timer_init(w->loop, &ex->tun_timer);
        ex->timer.data = ex->tun_timer.data = ex;
        ex->w = w;
        lv_list_init(&ex->link_free);
    }
    /* The text buffers at the end are not cleared: they are written before
     * they are read. */
    memset(&ex->state, 0,
           offsetof(struct lv_exchange, request_id) - offsetof(struct lv_exchange, state));
    ex->request_id[0] = ex->extra[0] = ex->upgrade_to[0] = '\0';
    ex->state = LV_EX_HEAD;
    ex->req_state = LV_EXR_HEAD;
    ex->end = LV_EXE_KEEP;
    ex->ops = ops;
    ex->d = d;
    ex->peer_ip = peer_ip;
    ex->tls = tls;
    ex->wg = lv_wgen_enter(w);
    ex->cfg = ex->wg->gen->cfg;
    lv_head_init(&ex->req, (uint32_t)ex->cfg->limits.max_header_size,
                 (uint32_t)ex->cfg->limits.max_headers);
    lv_bodyq_init(&ex->body, &w->env.bufs);
    lv_attempt_init(&ex->at, w, &ex->timer);
    lv_cached_init(&ex->cd, w, &ex->at);
    ex->start_ns = lv_clock_ns();
    ex->start_wall_ms = lv_clock_wall_ms();
    return ex;
}

/* The first timer is the exchange's first member: freeing it frees the
 * exchange; the tunnel's timer is closed first. */
static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void on_tun_timer_closed(uv_handle_t *h)
{
    struct lv_exchange *ex = h->data;
    uv_close((uv_handle_t *)&ex->timer, on_timer_closed);
}

static void free_exchange(struct lv_exchange *ex)
{
    ex->tun_timer.data = ex;
    uv_close((uv_handle_t *)&ex->tun_timer, on_tun_timer_closed);
}

/* Counts a finished request in the worker's and its backend's metrics. */
static void account(const struct lv_exchange *ex)
{
    struct lv_stats *st = &ex->w->stats;
    unsigned status = ex->status ? ex->status : 499;
    if (status >= LV_STATUS_CODES) status = LV_STATUS_CODES - 1;
    LV_STAT_INC(st->requests);
    if (ex->at.backend)
        LV_STAT_INC(ex->at.backend->wstats[ex->w->id].status[status]);
    else
        LV_STAT_INC(st->status[status]);
    lv_lathist_add(&st->duration, (lv_clock_ns() - ex->start_ns) / 1000);
    unsigned a = ex->at.attempts > LV_RETRY_MAX_ATTEMPTS ? LV_RETRY_MAX_ATTEMPTS : ex->at.attempts;
    LV_STAT_INC(st->attempts[a]);
}

static void log_line(const struct lv_exchange *ex)
{
    struct lv_access_rec r = {
        .client_ip = ex->peer_ip,
        .start_wall_ms = ex->start_wall_ms,
        .start_ns = ex->start_ns,
        .req = ex->req_state != LV_EXR_HEAD ? &ex->req : NULL,
        .status = ex->status,
        .bytes = ex->resp_bytes,
        .backend = ex->at.backend ? ex->at.backend->id : NULL,
        .attempts = ex->at.attempts,
        .fail = ex->fail,
        .skip = ex->at.skip,
        .hedged = ex->at.hedges > 0,
        .request_id = ex->request_id,
        .cache = ex->cd.active ? lv_cached_result_name(ex->cd.result) : NULL,
    };
    lv_accesslog_write(ex->wg->alog, &r);
}

void lv_exchange_destroy(struct lv_exchange *ex)
{
    struct lv_wctx *w = ex->w;
    lv_tunnel_stop(&ex->tunnel);
    lv_ratelimit_cancel(&ex->rl);
    lv_cached_stop(&ex->cd);
    if (ex->req_state != LV_EXR_HEAD || ex->fail != LV_FAIL_NONE) {
        account(ex);
        log_line(ex);
    }
    lv_head_dispose(&ex->req);
    lv_bodyq_dispose(&ex->body);
    lv_wgen_leave(w, ex->wg);
    ex->wg = NULL;
    ex->ops = NULL;
    if (w->nfree_exchanges >= MAX_FREE_EXCHANGES || w->wgen == NULL) {
        free_exchange(ex);
        return;
    }
    lv_list_push_front(&w->free_exchanges, &ex->link_free);
    w->nfree_exchanges++;
}

void lv_exchange_free_list(struct lv_wctx *w)
{
    while (!lv_list_empty(&w->free_exchanges)) {
        struct lv_exchange *ex =
            lv_container_of(w->free_exchanges.next, struct lv_exchange, link_free);
        lv_list_remove(&ex->link_free);
        free_exchange(ex);
    }
    w->nfree_exchanges = 0;
}

/* --- the request ---------------------------------------------------------------- */

static bool method_idempotent(uint8_t m)
{
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS || m == HTTP_PUT ||
           m == HTTP_DELETE || m == HTTP_TRACE;
}

/* A client's X-Request-Id is kept when it looks like an id: 1 to 128
 * characters from a conservative set. Anything else is replaced. */
static bool request_id_ok(const char *v, size_t n)
{
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == ':' ||
                  ch == '/' || ch == '+' || ch == '=' || ch == '@';
        if (!ok) return false;
    }
    return true;
}

static void new_request_id(struct lv_exchange *ex)
{
    struct lv_rand *r = ex->w->rand;
    snprintf(ex->request_id, sizeof(ex->request_id), "%016llx%016llx",
             (unsigned long long)lv_rand_next(r), (unsigned long long)lv_rand_next(r));
    ex->rid_generated = true;
    LV_STAT_INC(ex->w->stats.request_ids_generated);
}

/* Exactly one X-Request-Id that looks like an id is kept; none, a bad one,
 * or several (which one would be true?) get levee's own. */
static void take_request_id(struct lv_exchange *ex)
{
    struct lv_head *h = &ex->req;
    struct lv_hfield *keep = NULL;
    int count = 0;
    for (uint32_t i = 0; i < h->nfields; i++) {
        struct lv_hfield *f = &h->fields[i];
        if (!LV_HFIELD_IS(h, f, "x-request-id")) continue;
        count++;
        keep = f;
    }
    if (count == 1 && request_id_ok(lv_head_str(h, keep->value), keep->value_len) &&
        keep->value_len < sizeof(ex->request_id)) {
        memcpy(ex->request_id, lv_head_str(h, keep->value), keep->value_len);
        ex->request_id[keep->value_len] = '\0';
        return;
    }
    for (uint32_t i = 0; i < h->nfields; i++) {
        if (LV_HFIELD_IS(h, &h->fields[i], "x-request-id")) h->fields[i].flags |= LV_HF_DROP;
    }
    new_request_id(ex);
}

/* Connection: upgrade with Upgrade naming a protocol upgrade.allow lists.
 * Anything else loses its upgrade fields (hop-by-hop) and is a plain
 * request. */
static void detect_upgrade(struct lv_exchange *ex)
{
    const struct lv_head *h = &ex->req;
    const struct lv_hfield *u = LV_HEAD_FIND(h, "upgrade");
    if (u == NULL || u->value_len == 0 || u->value_len >= sizeof(ex->upgrade_to)) return;
    bool conn = false;
    for (uint32_t i = 0; i < h->nfields && !conn; i++) {
        const struct lv_hfield *f = &h->fields[i];
        conn = LV_HFIELD_IS(h, f, "connection") &&
               lv_token_list_has(lv_head_str(h, f->value), f->value_len, "upgrade", 7);
    }
    if (!conn) return;
    const struct lv_strlist *allow = &ex->cfg->upgrade_allow;
    const char *v = lv_head_str(h, u->value);
    for (size_t i = 0; i < allow->n; i++) {
        if (lv_token_list_has(v, u->value_len, allow->items[i], strlen(allow->items[i]))) {
            memcpy(ex->upgrade_to, v, u->value_len);
            ex->upgrade_to[u->value_len] = '\0';
            ex->upgrade = true;
            return;
        }
    }
}

/* GET or HEAD /health on the proxy port: levee answers for itself, for the
 * load balancers in front of it. */
static bool is_health_probe(const struct lv_head *h)
{
    return (h->method == HTTP_GET || h->method == HTTP_HEAD) && h->target_len == 7 &&
           memcmp(lv_head_str(h, h->target), "/health", 7) == 0;
}

static bool has_body(const struct lv_exchange *ex)
{
    return ex->fwd.fwd.framing == LV_FRAME_CHUNKED ||
           (ex->fwd.fwd.framing == LV_FRAME_LENGTH && ex->req_length > 0);
}

/* Stops reading the client while too much body waits for the backends:
 * measured in buffer memory, so that many small pieces count for what they
 * hold, not for their bytes. */
static void body_flow(struct lv_exchange *ex)
{
    if (ex->req_state != LV_EXR_BODY || ex->state == LV_EX_DONE) return;
    uint64_t waiting = ex->state == LV_EX_HEAD || ex->state == LV_EX_LIMITING
                           ? lv_bodyq_mem_from(&ex->body, ex->body.base)
                           : lv_cached_body_backlog(&ex->cd);
    ex->ops->pause_body(ex->d, waiting > LV_FLOW_HIGH);
}

/* The request passed the rate limits: 100 Continue if asked, then the
 * attempt loop. */
static void proceed(struct lv_exchange *ex)
{
    struct lv_head *h = &ex->req;
    const struct lv_hfield *expect = LV_HEAD_FIND(h, "expect");
    if (expect && has_body(ex) && ex->req_state != LV_EXR_COMPLETE &&
        lv_token_list_has(lv_head_str(h, expect->value), expect->value_len, "100-continue", 12))
        ex->ops->send_continue(ex->d); /* levee asks for it: the backend never sees Expect */
    /* The deadline counts from the request's end: now, or when its body
     * is in (lv_cached_body_complete). */
    if (ex->fwd.body_complete) ex->fwd.deadline_ms = lv_clock_ms() + ex->cfg->timeouts.backend;
    set_state(ex, LV_EX_FORWARDING);
    /* The cache answers, or forwards through the attempt loop
     * (proxy/cached.h); cfg->cache is the effective cache configuration. */
    lv_cached_start(&ex->cd, &ex->fwd, ex->tls, &ex->wg->pool, &ex->cfg->cache, &cached_ops, ex);
    body_flow(ex);
}

static void on_verdict(void *arg, enum lv_rl_verdict v)
{
    struct lv_exchange *ex = arg;
    if (v == LV_RL_ALLOWED)
        proceed(ex);
    else
        respond(ex, LV_FAIL_RATE_LIMITED);
}

/* The lines levee adds to the forwarded request: its request id when it
 * made one, and the upgrade fields (hop-by-hop, re-added for this hop). */
static void forwarded_extra(struct lv_exchange *ex)
{
    size_t n = 0, cap = sizeof(ex->extra);
    ex->extra[0] = '\0';
    if (ex->rid_generated) {
        int k = snprintf(ex->extra, cap, "X-Request-Id: %s\r\n", ex->request_id);
        if (k > 0 && (size_t)k < cap) n = (size_t)k;
    }
    if (ex->upgrade)
        snprintf(ex->extra + n, cap - n, "Connection: upgrade\r\nUpgrade: %s\r\n", ex->upgrade_to);
}

int lv_exchange_on_head(struct lv_exchange *ex, const struct lv_req_framing *f)
{
    assert(ex->state == LV_EX_HEAD && ex->req_state == LV_EXR_HEAD);
    struct lv_head *h = &ex->req;
    const struct lv_config *cfg = ex->cfg;
    ex->req_state = LV_EXR_BODY;
    ex->keep_alive = f->keep_alive && !ex->w->draining;
    ex->is_head = h->method == HTTP_HEAD;
    take_request_id(ex);
    if (h->method == HTTP_CONNECT) {
        respond(ex, LV_FAIL_METHOD);
        return -1;
    }
    /* Framing, target and Host (http/check.h), before anything reads them:
     * the health probe, the upgrade, the rate-limit key, the backend. */
    enum lv_fail_kind bad = lv_check_request(h);
    if (bad != LV_FAIL_NONE) {
        respond(ex, bad);
        return -1;
    }
    detect_upgrade(ex);
    if (is_health_probe(h)) {
        respond_health(ex);
        return 0;
    }
    ex->fwd.fwd.framing = f->framing;
    if (f->framing == LV_FRAME_LENGTH) {
        ex->req_length = f->length;
        if (cfg->limits.max_body && ex->req_length > cfg->limits.max_body) {
            respond(ex, LV_FAIL_BODY_TOO_LARGE); /* before a byte of the body is read */
            return -1;
        }
    }
    forwarded_extra(ex);
    ex->fwd.head = h;
    ex->fwd.fwd.client_ip = ex->peer_ip;
    ex->fwd.fwd.proto = ex->tls ? "https" : "http";
    ex->fwd.fwd.content_length = ex->req_length;
    ex->fwd.fwd.extra = ex->extra;
    ex->fwd.body = &ex->body;
    ex->fwd.idempotent = method_idempotent(h->method) ||
                         (cfg->retry.idempotency_key && LV_HEAD_FIND(h, "idempotency-key"));
    ex->fwd.upgrade = ex->upgrade;
    if (!has_body(ex)) ex->fwd.body_complete = true;
    /* Rate limits before anything is asked of the client or the backends. */
    switch (lv_ratelimit_check(&ex->rl, ex->w, ex->wg->gen, h, ex->peer_ip, on_verdict, ex)) {
    case LV_RL_ALLOWED: proceed(ex); break;
    case LV_RL_REFUSED: respond(ex, LV_FAIL_RATE_LIMITED); break;
    case LV_RL_WAIT: set_state(ex, LV_EX_LIMITING); break;
    }
    /* Answered already (429, 503...) with a body still to come: stop reading. */
    return ex->state == LV_EX_DONE && ex->end != LV_EXE_KEEP && has_body(ex) ? -1 : 0;
}

int lv_exchange_on_body(struct lv_exchange *ex, struct lv_buf *b, const char *p, size_t len)
{
    if (ex->state == LV_EX_DONE) return ex->end == LV_EXE_KEEP ? 0 : -1; /* answered: dropped */
    uint64_t max = ex->cfg->limits.max_body;
    if (max && ex->body.bytes + len > max) {
        lv_exchange_fail(ex, LV_FAIL_BODY_TOO_LARGE);
        return -1;
    }
    if (lv_bodyq_push(&ex->body, b, p, (uint32_t)len) != 0) {
        lv_exchange_fail(ex, LV_FAIL_INTERNAL);
        return -1;
    }
    if (ex->state == LV_EX_FORWARDING || ex->state == LV_EX_RESPONDING)
        lv_cached_body_added(&ex->cd);
    body_flow(ex);
    return 0;
}

void lv_exchange_on_request_end(struct lv_exchange *ex)
{
    ex->req_state = LV_EXR_COMPLETE;
    ex->ops->pause_body(ex->d, false); /* the body is all in: its back-pressure is over */
    if (ex->state == LV_EX_DONE) return;
    if (ex->state == LV_EX_FORWARDING || ex->state == LV_EX_RESPONDING)
        lv_cached_body_complete(&ex->cd);
    else
        ex->fwd.body_complete = true;
}

void lv_exchange_on_drain(struct lv_exchange *ex)
{
    if (ex->state == LV_EX_RESPONDING && ex->ops->backlog(ex->d) <= LV_FLOW_LOW)
        lv_cached_resume(&ex->cd);
}

/* --- the answer ------------------------------------------------------------------- */

/* Appends the string s at out + n (the caller sized out); the new length. */
static size_t put(char *out, size_t n, const char *s)
{
    size_t len = strlen(s);
    memcpy(out + n, s, len);
    return n + len;
}

static int at_head(void *user, const struct lv_cached_answer *ca)
{
    struct lv_exchange *ex = user;
    struct lv_head *r = (struct lv_head *)ca->head;
    unsigned status = ca->status;
    char stack[1024];
    char *extra = stack;
    size_t cap = strlen(ca->lines) + strlen(ex->rl.headers) + sizeof(ex->request_id) + 200;
    if (cap > sizeof(stack) && (extra = malloc(cap)) == NULL) return -1;
    if (cap <= sizeof(stack)) cap = sizeof(stack);
    struct lv_answer a = {.status = status, .head = r, .extra = extra};
    /* The backend's request id gives way to the request's. */
    for (uint32_t i = 0; r && i < r->nfields; i++) {
        if (LV_HFIELD_IS(r, &r->fields[i], "x-request-id")) r->fields[i].flags |= LV_HF_DROP;
    }
    if (status == 101) {
        /* The upgrade fields are hop-by-hop, but meant for this hop's other
         * side too. */
        const struct lv_hfield *u = LV_HEAD_FIND(r, "upgrade");
        snprintf(extra, cap, "X-Request-Id: %s\r\nConnection: upgrade\r\nUpgrade: %.*s\r\n",
                 ex->request_id, u ? (int)(u->value_len < 64 ? u->value_len : 64) : 0,
                 u ? lv_head_str(r, u->value) : "");
        a.body = LV_BODY_NONE;
    } else {
        /* By hand: a stored response's fields are all in ca->lines, and
         * this runs on every hit. */
        size_t n = 0;
        n = put(extra, n, ca->lines);
        n = put(extra, n, "X-Request-Id: ");
        n = put(extra, n, ex->request_id);
        n = put(extra, n, "\r\n");
        n = put(extra, n, ex->rl.headers);
        extra[n] = '\0';
        bool bodyless = ex->is_head || !ca->body;
        a.body = bodyless ? LV_BODY_NONE : ca->length_known ? LV_BODY_LENGTH : LV_BODY_STREAM;
        a.length = ca->length; /* the whole length: no body byte is in yet */
        if (ca->head_only) {   /* a stored response to a HEAD states its length */
            a.body = LV_BODY_LENGTH;
            a.head_only = true;
        }
    }
    /* A stored answer can go out from inside on_head: a request without a
     * body is complete then, as for levee's own answers. */
    a.must_close =
        !ex->keep_alive || (ex->req_state != LV_EXR_COMPLETE && has_body(ex)) || ex->w->draining;
    int rc = ex->ops->head(ex->d, &a);
    if (extra != stack) free(extra);
    if (rc != 0) return -1;
    ex->status = status;
    set_state(ex, LV_EX_RESPONDING);
    if (a.must_close) ex->end = LV_EXE_CLOSE;
    return (a.body == LV_BODY_NONE || a.head_only) && status != 101 ? 1 : 0;
}

static void at_interim(void *user, const struct lv_upconn_head *h)
{
    struct lv_exchange *ex = user;
    ex->ops->interim(ex->d, h->head);
}

static int at_body(void *user, struct lv_buf *b, const char *p, size_t len)
{
    struct lv_exchange *ex = user;
    ex->resp_bytes += len;
    if (ex->ops->body(ex->d, b, p, len) != 0) return -1;
    if (ex->ops->backlog(ex->d) > LV_FLOW_HIGH) lv_cached_pause(&ex->cd);
    return 0;
}

static void at_end(void *user)
{
    struct lv_exchange *ex = user;
    ex->ops->end(ex->d);
    finish(ex, ex->end == LV_EXE_CLOSE ? LV_EXE_CLOSE : LV_EXE_KEEP);
}

static void at_upgraded(void *user, struct lv_sock *backend, struct lv_buf *b, const char *rest,
                        size_t n)
{
    struct lv_exchange *ex = user;
    struct lv_buf *ub = NULL;
    const char *up = NULL;
    size_t nup = 0;
    struct lv_sock *client = ex->ops->take_stream(ex->d, &ub, &up, &nup);
    set_state(ex, LV_EX_TUNNEL);
    lv_tunnel_start(&ex->tunnel, client, backend, b, rest, n, ub, up, nup, &ex->tun_timer,
                    ex->cfg->timeouts.tunnel, &ex->w->stats, &tunnel_ops, ex);
    if (ub) lv_buf_unref(ub);
}

static void tunnel_ended(void *user, const char *why)
{
    struct lv_exchange *ex = user;
    (void)why;
    ex->resp_bytes += ex->tunnel.down;
    lv_attempt_tunnel_end(&ex->at, ex->cfg->timeouts.idle);
    finish(ex, LV_EXE_CLOSE);
}

static const struct lv_tunnel_ops tunnel_ops = {.ended = tunnel_ended};

static void at_failed(void *user, enum lv_fail_kind kind)
{
    struct lv_exchange *ex = user;
    if (ex->state == LV_EX_DONE) return;
    if (ex->state == LV_EX_RESPONDING || ex->state == LV_EX_TUNNEL)
        abort_answer(ex, kind);
    else
        respond(ex, kind);
}

static void at_body_sent(void *user)
{
    body_flow(user);
}

static bool at_client_gone(void *user)
{
    struct lv_exchange *ex = user;
    return ex->ops->gone(ex->d);
}

static size_t at_backlog(void *user)
{
    struct lv_exchange *ex = user;
    return ex->ops->backlog(ex->d);
}

static const struct lv_cached_ops cached_ops = {
    .head = at_head,
    .interim = at_interim,
    .body = at_body,
    .end = at_end,
    .upgraded = at_upgraded,
    .failed = at_failed,
    .body_sent = at_body_sent,
    .client_gone = at_client_gone,
    .backlog = at_backlog,
};

/* --- levee's own answers ----------------------------------------------------------- */

static unsigned retry_after_s(const struct lv_exchange *ex, enum lv_fail_kind kind)
{
    if (kind == LV_FAIL_RATE_LIMITED) return ex->rl.retry_after_s;
    if (kind != LV_FAIL_NO_BACKEND) return 0;
    const struct lv_wpool *p = &ex->wg->pool;
    return lv_eligible_retry_after(p->backends, p->n, p->health->interval, lv_clock_ms());
}

/* Sends an answer of levee's own: status, the header lines in extra, a
 * body of blen bytes (not sent to a HEAD), then DONE. */
static void send_own(struct lv_exchange *ex, unsigned status, const char *extra, const char *body,
                     size_t blen, bool must_close)
{
    ex->status = status;
    struct lv_answer a = {
        .status = status,
        .extra = extra,
        .body = LV_BODY_LENGTH,
        .length = blen,
        .head_only = ex->is_head,
        .must_close = must_close,
    };
    bool ok = ex->ops->head(ex->d, &a) == 0;
    if (ok && !ex->is_head && blen > 0) {
        struct lv_buf *b = lv_buf_get_exact(&ex->w->env.bufs, blen);
        ok = b != NULL && lv_buf_append(b, body, blen) == 0 &&
             ex->ops->body(ex->d, b, b->data, blen) == 0;
        if (b) lv_buf_unref(b);
    }
    if (ok) ex->ops->end(ex->d);
    ex->resp_bytes = ok && !ex->is_head ? blen : 0;
    finish(ex, !ok ? LV_EXE_ABORT : must_close ? LV_EXE_CLOSE : LV_EXE_KEEP);
}

/* GET /health on the proxy port: levee's own status. */
static void respond_health(struct lv_exchange *ex)
{
    struct lv_strbuf body;
    lv_strbuf_init(&body, 64 * 1024);
    unsigned status =
        (unsigned)lv_gen_health_json(&body, ex->wg->gen, ex->w->start_ms, lv_clock_ms());
    char extra[256];
    snprintf(extra, sizeof(extra),
             "Content-Type: application/json\r\nCache-Control: no-store\r\nX-Request-Id: %s\r\n",
             ex->request_id);
    send_own(ex, status, extra, body.p ? body.p : "", body.len, !ex->keep_alive);
    lv_strbuf_dispose(&body);
}

static void respond(struct lv_exchange *ex, enum lv_fail_kind kind)
{
    const struct lv_fail_info *fi = lv_fail_info(kind);
    lv_attempt_stop(&ex->at);
    lv_ratelimit_cancel(&ex->rl);
    ex->fail = kind;
    ex->status = (unsigned)fi->status;
    if (ex->request_id[0] == '\0') new_request_id(ex); /* the head never completed */
    /* After a client error, or with a body not read, the connection ends. */
    bool client_fault = fi->side == LV_SIDE_CLIENT && kind != LV_FAIL_RATE_LIMITED;
    bool must_close =
        client_fault || !ex->keep_alive || ex->w->draining ||
        (ex->req_state != LV_EXR_COMPLETE && (ex->req_state == LV_EXR_HEAD || has_body(ex)));
    char extra[420];
    size_t n = 0;
    unsigned ra = retry_after_s(ex, kind);
    int k = snprintf(extra, sizeof(extra),
                     "Content-Type: application/json\r\nCache-Control: no-store\r\n");
    if (k > 0) n = (size_t)k;
    if (ra) {
        k = snprintf(extra + n, sizeof(extra) - n, "Retry-After: %u\r\n", ra);
        if (k > 0 && (size_t)k < sizeof(extra) - n) n += (size_t)k;
    }
    snprintf(extra + n, sizeof(extra) - n, "X-Request-Id: %s\r\n%s", ex->request_id,
             ex->rl.headers);
    char body[LV_STATUS_BODY_MAX];
    size_t blen = lv_status_body(body, sizeof(body), kind);
    LV_STAT_INC(ex->w->stats.generated[kind]);
    send_own(ex, (unsigned)fi->status, extra, body, blen, must_close);
}

/* Part of the answer is out: the only honest thing left is to cut the
 * connection, so that the client sees the answer is short. */
static void abort_answer(struct lv_exchange *ex, enum lv_fail_kind kind)
{
    ex->fail = kind;
    lv_tunnel_stop(&ex->tunnel);
    finish(ex, LV_EXE_ABORT);
}

void lv_exchange_fail(struct lv_exchange *ex, enum lv_fail_kind kind)
{
    if (ex->state == LV_EX_DONE) return;
    if (ex->state == LV_EX_RESPONDING || ex->state == LV_EX_TUNNEL)
        abort_answer(ex, kind);
    else
        respond(ex, kind);
}

void lv_exchange_cancel(struct lv_exchange *ex)
{
    lv_tunnel_stop(&ex->tunnel);
    lv_ratelimit_cancel(&ex->rl);
    lv_cached_stop(&ex->cd);
    if (ex->state == LV_EX_DONE) return;
    if (ex->state == LV_EX_TUNNEL) ex->resp_bytes += ex->tunnel.down;
    if (ex->fail == LV_FAIL_NONE) ex->fail = LV_FAIL_CLIENT_CLOSED;
    if (ex->state != LV_EX_RESPONDING && ex->state != LV_EX_TUNNEL) ex->status = 499;
    set_state(ex, LV_EX_DONE);
    ex->end = LV_EXE_ABORT;
}
