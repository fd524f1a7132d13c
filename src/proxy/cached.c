/*
 * The cache on the request path: lookups, answers from stored responses,
 * fetches and revalidations through the attempt loop, storing while
 * relaying, stale answers on errors, invalidation. The rules are
 * cache/cache.h's; this file wires them to the attempt loop, the
 * exchange's callbacks and the worker's loop.
 */
#include "proxy/cached.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config-t.h"
#include "core/clock.h"
#include "core/strbuf.h"
#include "proxy/flow.h"
#include "proxy/wgen.h"

#define TICK_MS 50

_Static_assert(LV_CDR_COUNT == LV_CACHE_RESULTS,
               "wstats.h counts the cache results"); /* how often collapsed waits are checked for
                                                        their deadline */

struct lv_cached_worker {
    uv_async_t async; /* first: its memory is the struct's */
    uv_timer_t timer;
    struct lv_list waiting;   /* struct lv_cached, by link: parked on a waiter */
    struct lv_list refreshes; /* struct bg_refresh, by link: in the background */
    bool ticking;
};

static const struct lv_attempt_ops attempt_ops;
static void lookup(struct lv_cached *c, bool may_wait);
static void pump(struct lv_cached *c);
static void on_tick(uv_timer_t *t);

/*
 * The background revalidation of a stale-while-revalidate entry: an
 * attempt loop of its own, on a copy of the request that won the entry's
 * refresh lease (that request is answered stale at once). It holds the
 * worker's generation (the pool and the cache configuration) until done,
 * and its memory until its timer is closed.
 */
struct bg_refresh {
    uv_timer_t timer;    /* the attempt's; first: freed in its close callback */
    struct lv_list link; /* in the worker's refreshes */
    struct lv_wctx *w;
    struct lv_wgen *wg;
    const struct lv_cache_cfg *cfg;
    struct lv_cache_store *store;
    struct lv_attempt at;
    struct lv_attempt_req req;
    struct lv_head head;  /* the client's, its buffer shared by reference */
    struct lv_bodyq body; /* empty: a refresh sends no body */
    struct lv_cache_req creq;
    struct lv_cache_writer wr;
    int64_t request_time;
    bool done;
    bool refreshed; /* the entry was revalidated or replaced */
    char client_ip[64];
    char extra[1024];
    struct lv_cache_lookup l; /* last: large */
};

static void bg_finish(struct bg_refresh *bg);

static const char *const result_names[LV_CDR_COUNT] = {
    [LV_CDR_NONE] = "none",
    [LV_CDR_HIT] = "hit",
    [LV_CDR_MISS] = "miss",
    [LV_CDR_STALE] = "stale",
    [LV_CDR_REVALIDATED] = "revalidated",
    [LV_CDR_UNCACHEABLE] = "uncacheable",
    [LV_CDR_BYPASS] = "bypass",
    [LV_CDR_COLLAPSED] = "collapsed",
};

const char *lv_cached_result_name(enum lv_cached_result r)
{
    return (unsigned)r < LV_CDR_COUNT ? result_names[r] : "none";
}

/* Moves to state `to`: only along the arrows of cached.h's diagram. */
static void set_state(struct lv_cached *c, enum lv_cached_state to)
{
    enum lv_cached_state from = c->state;
    switch (to) {
    case LV_CD_IDLE: assert(!"a lookup starts IDLE, never goes back"); break;
    case LV_CD_WAITING: assert(from == LV_CD_IDLE || from == LV_CD_WAITING); break;
    case LV_CD_FORWARDING: assert(from == LV_CD_IDLE || from == LV_CD_WAITING); break;
    case LV_CD_RELAYING: assert(from == LV_CD_FORWARDING); break;
    case LV_CD_SERVING:
        assert(from == LV_CD_IDLE || from == LV_CD_WAITING || from == LV_CD_FORWARDING);
        break;
    case LV_CD_DONE: assert(from != LV_CD_DONE); break;
    }
    c->state = to;
}

static int64_t wall_now(void)
{
    return (int64_t)lv_clock_wall_ms();
}

/* --- the worker's wakeups ------------------------------------------------------ */

/* Any thread, with a store lock held: only a flag and a signal. */
static void on_wake(void *arg)
{
    struct lv_cached *c = arg;
    atomic_store(&c->woken, true);
    uv_async_send(&c->w->cached->async);
}

/* Takes c off its waiter (armed or fired) and the worker's list. Before an
 * entry the waiter may be parked on is released: the waiter remembers its
 * lock. */
static void unwait(struct lv_cached *c)
{
    lv_cache_waiter_cancel(&c->waiter);
    c->waiter.lock = NULL;
    atomic_store(&c->woken, false);
    if (lv_list_linked(&c->link)) lv_list_remove(&c->link);
}

static void park(struct lv_cached *c)
{
    struct lv_cached_worker *cw = c->w->cached;
    if (!lv_list_linked(&c->link)) lv_list_push_back(&cw->waiting, &c->link);
    if (c->state == LV_CD_WAITING && !cw->ticking) {
        cw->ticking = true;
        uv_timer_start(&cw->timer, on_tick, TICK_MS, TICK_MS);
    }
}

static void wake(struct lv_cached *c, bool timed_out)
{
    unwait(c);
    if (c->state == LV_CD_WAITING)
        lookup(c, !timed_out);
    else if (c->state == LV_CD_SERVING && !c->paused)
        pump(c);
}

static void on_async(uv_async_t *h)
{
    struct lv_cached_worker *cw = (struct lv_cached_worker *)h;
    struct lv_list ready;
    lv_list_init(&ready);
    struct lv_list *n, *next;
    for (n = cw->waiting.next; n != &cw->waiting; n = next) {
        next = n->next;
        struct lv_cached *c = lv_container_of(n, struct lv_cached, link);
        if (!atomic_load(&c->woken)) continue;
        lv_list_remove(n);
        lv_list_push_back(&ready, n);
    }
    /* One at a time from the front: handling one may end another's request
     * (its stop takes it off this list). */
    while (!lv_list_empty(&ready)) {
        struct lv_cached *c = lv_container_of(ready.next, struct lv_cached, link);
        lv_list_remove(&c->link);
        wake(c, false);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct lv_cached_worker *cw = lv_container_of(t, struct lv_cached_worker, timer);
    uint64_t now = lv_clock_ms();
    struct lv_list due;
    lv_list_init(&due);
    bool any = false;
    struct lv_list *n, *next;
    for (n = cw->waiting.next; n != &cw->waiting; n = next) {
        next = n->next;
        struct lv_cached *c = lv_container_of(n, struct lv_cached, link);
        if (c->state != LV_CD_WAITING) continue;
        if (c->wait_until > now) {
            any = true;
            continue;
        }
        lv_list_remove(n);
        lv_list_push_back(&due, n);
    }
    while (!lv_list_empty(&due)) {
        struct lv_cached *c = lv_container_of(due.next, struct lv_cached, link);
        lv_list_remove(&c->link);
        wake(c, true);
    }
    if (!any) {
        uv_timer_stop(t);
        cw->ticking = false;
    }
}

int lv_cached_worker_start(struct lv_wctx *w)
{
    struct lv_cached_worker *cw = calloc(1, sizeof(*cw));
    if (cw == NULL) return UV_ENOMEM;
    lv_list_init(&cw->waiting);
    lv_list_init(&cw->refreshes);
    uv_async_init(w->loop, &cw->async, on_async);
    uv_timer_init(w->loop, &cw->timer);
    w->cached = cw;
    return 0;
}

static void on_async_closed(uv_handle_t *h)
{
    free(h);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct lv_cached_worker *cw = lv_container_of(h, struct lv_cached_worker, timer);
    uv_close((uv_handle_t *)&cw->async, on_async_closed);
}

void lv_cached_worker_stop_refreshes(struct lv_wctx *w)
{
    struct lv_cached_worker *cw = w->cached;
    if (cw == NULL) return;
    while (!lv_list_empty(&cw->refreshes))
        bg_finish(lv_container_of(cw->refreshes.next, struct bg_refresh, link));
}

void lv_cached_worker_close(struct lv_wctx *w)
{
    struct lv_cached_worker *cw = w->cached;
    if (cw == NULL) return;
    assert(lv_list_empty(&cw->waiting));
    assert(lv_list_empty(&cw->refreshes));
    w->cached = NULL;
    uv_close((uv_handle_t *)&cw->timer, on_timer_closed);
}

/* --- results ------------------------------------------------------------------- */

static void count(struct lv_cached *c)
{
    if (c->counted || !c->active || c->result == LV_CDR_NONE) return;
    c->counted = true;
    LV_STAT_INC(c->w->stats.cache[c->result]);
}

/* The request is done with the cache: everything it holds goes back. */
static void release_all(struct lv_cached *c)
{
    unwait(c);
    if (c->wr.entry) lv_cache_writer_abort(&c->wr);
    if (c->serving) lv_cache_entry_release(c->serving);
    c->serving = NULL;
    if (c->looked_up) {
        lv_cache_lookup_dispose(c->store, &c->l, wall_now());
        c->looked_up = false;
    }
}

/* The last word is a failure. A tail call: c may be reused when it returns. */
static void fail(struct lv_cached *c, enum lv_fail_kind kind)
{
    release_all(c);
    count(c);
    set_state(c, LV_CD_DONE);
    c->ops->failed(c->user, kind);
}

/* The answer is complete. A tail call. */
static void end(struct lv_cached *c)
{
    release_all(c);
    count(c);
    set_state(c, LV_CD_DONE);
    c->ops->end(c->user);
}

/* --- answers from the store ------------------------------------------------------ */

static void put_line(struct lv_strbuf *sb, const char *name, size_t nlen, const char *v,
                     size_t vlen)
{
    lv_strbuf_add(sb, name, nlen);
    lv_strbuf_add(sb, ": ", 2);
    lv_strbuf_add(sb, v, vlen);
    lv_strbuf_add(sb, "\r\n", 2);
}

/*
 * Answers from e (a reference, taken over) with what c->l says of it: its
 * head at once, its body as the client takes it (and as it fills).
 */
static void serve(struct lv_cached *c, struct lv_cache_entry *e)
{
    unwait(c);
    if (c->serving) lv_cache_entry_release(c->serving);
    c->serving = e;
    lv_cache_cursor_init(&c->cur);
    set_state(c, LV_CD_SERVING);
    struct lv_cache_reply rp;
    lv_cache_reply_init(&rp, c->cfg, &c->l, &c->creq, e, wall_now());
    char stack[2048];
    struct lv_strbuf sb;
    lv_strbuf_init_fixed(&sb, stack, sizeof(stack));
    struct lv_field f;
    for (int pass = 0; pass < 2; pass++) {
        while (lv_cache_reply_field(&rp, &f))
            put_line(&sb, f.name, f.name_len, f.value, f.value_len);
        char age[32];
        int n = snprintf(age, sizeof(age), "%lld", (long long)rp.age);
        put_line(&sb, "Age", 3, age, (size_t)n);
        put_line(&sb, "Cache-Status", 12, rp.cache_status, strlen(rp.cache_status));
        lv_strbuf_add(&sb, "", 1); /* the NUL */
        if (!sb.truncated) break;
        /* A head larger than the stack: once more in the heap. */
        lv_strbuf_init(&sb, LV_CACHE_HEAD_MAX * 2 + LV_CACHE_MAX_FIELDS * 4 + 1024);
        rp.next = 0;
    }
    bool is_head = c->creq.method == HTTP_HEAD;
    struct lv_cached_answer a = {
        .status = rp.status,
        .lines = sb.truncated ? "" : sb.p,
        .body = rp.body,
        .length_known = rp.length >= 0,
        .length = rp.length >= 0 ? (uint64_t)rp.length : 0,
        .head_only = is_head && rp.status != 304 && rp.status != 204 && rp.length >= 0,
    };
    int rc = c->ops->head(c->user, &a);
    if (sb.p != stack) lv_strbuf_dispose(&sb);
    if (rc < 0) {
        fail(c, LV_FAIL_INTERNAL);
        return;
    }
    if (!a.body || rc == 1) {
        end(c);
        return;
    }
    pump(c);
}

/* Writes the stored body while the client keeps up; parks on the entry
 * when it is still filling. */
static void pump(struct lv_cached *c)
{
    assert(c->state == LV_CD_SERVING);
    struct lv_bufpool *pool = &c->w->env.bufs;
    for (;;) {
        if (c->ops->backlog(c->user) > LV_FLOW_HIGH) {
            c->paused = true;
            return;
        }
        const char *p;
        size_t n;
        switch (lv_cache_entry_read(c->serving, &c->cur, LV_BUF_SIZE, &p, &n)) {
        case LV_READ_DATA: {
            struct lv_buf *b = lv_buf_get(pool);
            if (b == NULL) {
                fail(c, LV_FAIL_INTERNAL);
                return;
            }
            memcpy(b->data, p, n);
            b->len = (uint32_t)n;
            int rc = c->ops->body(c->user, b, b->data, n);
            lv_buf_unref(b);
            if (rc != 0) {
                fail(c, LV_FAIL_INTERNAL);
                return;
            }
            LV_STAT_ADD(c->w->stats.cache_bytes_served, n);
            break;
        }
        case LV_READ_WAIT:
            if (lv_cache_entry_wait(c->serving, &c->cur, &c->waiter)) {
                park(c);
                return;
            }
            break;
        case LV_READ_END: end(c); return;
        case LV_READ_ABORTED: /* the fill broke off: as if the origin had */
            fail(c, LV_FAIL_RESET);
            return;
        }
    }
}

/* --- forwarding ---------------------------------------------------------------- */

/* The client's conditionals are levee's to answer: the origin is asked
 * for the full response (or levee's own validators). */
static void strip_conditionals(struct lv_cached *c)
{
    struct lv_head *h = (struct lv_head *)c->req->head;
    for (uint32_t i = 0; i < h->nfields; i++) {
        struct lv_hfield *f = &h->fields[i];
        if (LV_HFIELD_IS(h, f, "if-none-match") || LV_HFIELD_IS(h, f, "if-modified-since"))
            f->flags |= LV_HF_DROP;
    }
}

/* The exchange's lines and the stored response's validators. When they do
 * not fit, none is sent: the origin answers in full, which is stored. */
static void validators_into(const struct lv_cache_entry *e, const char *orig, char *out,
                            size_t size)
{
    struct lv_fields stored = lv_cache_entry_fields(e);
    struct lv_cache_validators v;
    lv_cache_validators(&stored, &v);
    int n = snprintf(out, size, "%s", orig ? orig : "");
    if (n < 0 || (size_t)n >= size) return;
    size_t len = (size_t)n;
    if (v.etag) {
        int k = snprintf(out + len, size - len, "If-None-Match: %.*s\r\n", (int)v.etag_len, v.etag);
        if (k > 0 && (size_t)k < size - len) len += (size_t)k;
        out[len] = '\0';
    }
    if (v.last_modified) {
        int k = snprintf(out + len, size - len, "If-Modified-Since: %.*s\r\n",
                         (int)v.last_modified_len, v.last_modified);
        if (k > 0 && (size_t)k < size - len) len += (size_t)k;
        out[len] = '\0';
    }
}

static void add_validators(struct lv_cached *c)
{
    validators_into(c->l.entry, c->orig_extra, c->fwd_extra, sizeof(c->fwd_extra));
    c->req->fwd.extra = c->fwd_extra;
}

/* A HEAD fetched as a GET is a HEAD again once the request went out (the
 * access log, the exchange read it). */
static void restore_head(struct lv_cached *c)
{
    if (c->head_get) ((struct lv_head *)c->req->head)->method = HTTP_HEAD;
}

static void forward(struct lv_cached *c)
{
    set_state(c, LV_CD_FORWARDING);
    if (c->head_get) ((struct lv_head *)c->req->head)->method = HTTP_GET;
    if (c->active) {
        if (c->l.strip_conditionals) strip_conditionals(c);
        if (c->l.action == LV_CACHE_REVALIDATE) add_validators(c);
    }
    c->request_time = wall_now();
    /* The body may have completed while the request waited. */
    if (c->req->body_complete && c->req->deadline_ms == 0)
        c->req->deadline_ms = lv_clock_ms() + c->pool->timeouts->backend;
    lv_attempt_start(c->at, c->req, c->pool, &attempt_ops, c);
}

/* A stale-while-revalidate entry, when no background refresh can be had:
 * this request (the one that won the entry's refresh lease) revalidates it
 * in the foreground; the others are answered stale meanwhile. If the
 * origin fails, it is answered stale too. */
static void refresh(struct lv_cached *c)
{
    c->refreshing = true;
    c->l.action = LV_CACHE_REVALIDATE;
    c->l.strip_conditionals = true;
    c->l.status.hit = false;
    c->l.status.fwd = LV_FWD_STALE;
    forward(c);
}

/* --- the background refresh ---------------------------------------------------- */

static void bg_closed(uv_handle_t *h)
{
    free(h);
}

/* The refresh is over (or the worker stops): everything goes back; the
 * memory once the timer is closed. Idempotent. */
static void bg_finish(struct bg_refresh *bg)
{
    if (bg->done) return;
    bg->done = true;
    lv_attempt_stop(&bg->at);
    if (bg->wr.entry) lv_cache_writer_abort(&bg->wr);
    /* Not refreshed: the next request may try at once. */
    if (!bg->refreshed && bg->l.entry) lv_cache_entry_refresh_end(bg->l.entry);
    lv_cache_lookup_dispose(bg->store, &bg->l, wall_now());
    lv_head_dispose(&bg->head);
    lv_bodyq_dispose(&bg->body);
    lv_list_remove(&bg->link);
    lv_wgen_leave(bg->w, bg->wg);
    uv_close((uv_handle_t *)&bg->timer, bg_closed);
}

static int bg_head(void *user, const struct lv_upconn_head *h)
{
    struct bg_refresh *bg = user;
    struct lv_fields rf = lv_fields_of_head(h->head);
    uint16_t status = (uint16_t)h->status;
    int64_t now = wall_now();
    if (status == 304) {
        struct lv_cache_entry *e;
        if (lv_cache_revalidated(bg->store, bg->cfg, &bg->l, &rf, bg->request_time, now, &e) == 0) {
            bg->refreshed = true;
            lv_cache_entry_release(e);
        }
        return 1;
    }
    if (status >= 500) return 0; /* the stale copy stays; its body is read and dropped */
    enum lv_cache_nostore why;
    if (lv_cache_begin(bg->store, bg->cfg, &bg->l, &bg->creq, status, &rf, bg->request_time, now,
                       &bg->wr, &why) == 0)
        LV_STAT_INC(bg->w->stats.cache_stores);
    return 0;
}

static void bg_interim(void *user, const struct lv_upconn_head *h)
{
    (void)user;
    (void)h;
}

static int bg_body(void *user, struct lv_buf *b, const char *p, size_t len)
{
    struct bg_refresh *bg = user;
    (void)b;
    if (bg->wr.entry) lv_cache_writer_append(&bg->wr, p, len);
    return 0;
}

static void bg_end(void *user)
{
    struct bg_refresh *bg = user;
    if (bg->wr.entry) {
        lv_cache_writer_finish(&bg->wr);
        bg->refreshed = true;
    }
    bg_finish(bg);
}

/* Never asked for (req.upgrade is false). */
static void bg_upgraded(void *user, struct lv_sock *backend, struct lv_buf *b, const char *rest,
                        size_t n)
{
    (void)backend;
    (void)rest;
    (void)n;
    (void)b;
    bg_finish(user);
}

static void bg_failed(void *user, enum lv_fail_kind kind)
{
    (void)kind;
    bg_finish(user);
}

static void bg_body_sent(void *user)
{
    (void)user;
}

static bool bg_client_gone(void *user)
{
    (void)user;
    return false; /* nobody waits, but the store does */
}

static const struct lv_attempt_ops bg_ops = {
    .head = bg_head,
    .interim = bg_interim,
    .body = bg_body,
    .end = bg_end,
    .upgraded = bg_upgraded,
    .failed = bg_failed,
    .body_sent = bg_body_sent,
    .client_gone = bg_client_gone,
};

/* c won the refresh lease of the stale entry it found: a background
 * refresh revalidates the entry and c is answered stale at once. -1 when
 * no background refresh can be had (the request runs on a generation a
 * reload replaced, no memory): c refreshes in the foreground. */
static int bg_start(struct lv_cached *c)
{
    struct lv_wctx *w = c->w;
    if (w->draining || w->wgen == NULL || !lv_wgen_has_pool(w->wgen, c->pool)) return -1;
    struct bg_refresh *bg = calloc(1, sizeof(*bg));
    if (bg == NULL) return -1;
    if (lv_cache_refresh_prepare(&c->l, &bg->l) != 0) {
        lv_cache_lookup_dispose(c->store, &bg->l, wall_now());
        free(bg);
        return -1;
    }
    const struct lv_head *src = c->req->head;
    bg->head = *src;
    if (src->fields == src->inline_fields) {
        bg->head.fields = bg->head.inline_fields;
    } else {
        bg->head.fields = malloc(sizeof(*src->fields) * src->nfields);
        if (bg->head.fields == NULL) {
            lv_cache_lookup_dispose(c->store, &bg->l, wall_now());
            free(bg);
            return -1;
        }
        memcpy(bg->head.fields, src->fields, sizeof(*src->fields) * src->nfields);
        bg->head.cap_fields = src->nfields;
    }
    if (bg->head.buf) lv_buf_ref(bg->head.buf);
    /* Levee's validators, not the client's; no body, as a GET or HEAD. */
    for (uint32_t i = 0; i < bg->head.nfields; i++) {
        struct lv_hfield *f = &bg->head.fields[i];
        if (LV_HFIELD_IS(&bg->head, f, "if-none-match") ||
            LV_HFIELD_IS(&bg->head, f, "if-modified-since") ||
            LV_HFIELD_IS(&bg->head, f, "if-match") ||
            LV_HFIELD_IS(&bg->head, f, "if-unmodified-since") ||
            LV_HFIELD_IS(&bg->head, f, "range"))
            f->flags |= LV_HF_DROP;
    }
    bg->w = w;
    bg->wg = lv_wgen_enter(w);
    bg->cfg = c->cfg;
    bg->store = c->store;
    lv_cache_req_from_head(&bg->creq, &bg->head, c->creq.tls);
    lv_bodyq_init(&bg->body, &w->env.bufs);
    snprintf(bg->client_ip, sizeof(bg->client_ip), "%s",
             c->req->fwd.client_ip ? c->req->fwd.client_ip : "");
    validators_into(bg->l.entry, c->orig_extra, bg->extra, sizeof(bg->extra));
    bg->req.head = &bg->head;
    bg->req.fwd = c->req->fwd;
    bg->req.fwd.client_ip = c->req->fwd.client_ip ? bg->client_ip : NULL;
    bg->req.fwd.backend_authority = NULL;
    bg->req.fwd.framing = LV_FRAME_NONE;
    bg->req.fwd.content_length = 0;
    bg->req.fwd.extra = bg->extra;
    bg->req.body = &bg->body;
    bg->req.body_complete = true;
    bg->req.idempotent = true;
    bg->req.deadline_ms = lv_clock_ms() + c->pool->timeouts->backend;
    lv_list_push_back(&w->cached->refreshes, &bg->link);
    uv_timer_init(w->loop, &bg->timer);
    lv_attempt_init(&bg->at, w, &bg->timer);
    bg->request_time = wall_now();
    lv_attempt_start(&bg->at, &bg->req, c->pool, &bg_ops, bg); /* may end at once */
    return 0;
}

static void lookup(struct lv_cached *c, bool may_wait)
{
    c->waiter.cb = on_wake;
    c->waiter.arg = c;
    lv_cache_lookup(c->store, c->cfg, &c->creq, wall_now(), may_wait ? &c->waiter : NULL, &c->l);
    switch (c->l.action) {
    case LV_CACHE_PASS:
        c->result = LV_CDR_BYPASS;
        forward(c);
        return;
    case LV_CACHE_REJECT:
        c->result = LV_CDR_MISS;
        fail(c, LV_FAIL_NOT_CACHED);
        return;
    case LV_CACHE_WAIT:
        set_state(c, LV_CD_WAITING);
        c->wait_until = lv_clock_ms() + c->cfg->collapse_timeout;
        park(c);
        return;
    case LV_CACHE_SERVE: {
        struct lv_cache_entry *e = c->l.entry;
        if (c->l.refresh && bg_start(c) != 0) {
            refresh(c);
            return;
        }
        bool stale = lv_cache_ttl(lv_cache_entry_meta(e), wall_now()) <= 0;
        c->result = c->l.waited ? LV_CDR_COLLAPSED : stale ? LV_CDR_STALE : LV_CDR_HIT;
        serve(c, lv_cache_entry_ref(e));
        return;
    }
    case LV_CACHE_FETCH:
    case LV_CACHE_REVALIDATE:
        c->result = LV_CDR_MISS;
        /* A HEAD miss asks for the GET, to store it (as nginx's
         * proxy_cache_convert_head); the client gets the head only. */
        c->head_get = c->l.action == LV_CACHE_FETCH && c->creq.method == HTTP_HEAD && c->l.store;
        forward(c);
        return;
    }
}

void lv_cached_init(struct lv_cached *c, struct lv_wctx *w, struct lv_attempt *at)
{
    memset(c, 0, offsetof(struct lv_cached, fwd_extra));
    c->state = LV_CD_IDLE;
    c->w = w;
    c->at = at;
    atomic_init(&c->woken, false);
    lv_list_init(&c->link);
}

void lv_cached_start(struct lv_cached *c, struct lv_attempt_req *req, bool tls,
                     const struct lv_wpool *pool, const struct lv_cache_cfg *cfg,
                     const struct lv_cached_ops *ops, void *user)
{
    assert(c->state == LV_CD_IDLE);
    c->req = req;
    c->pool = pool;
    c->cfg = cfg;
    c->ops = ops;
    c->user = user;
    c->store = c->w->cache_store;
    c->orig_extra = req->fwd.extra;
    c->active = cfg && cfg->enabled && c->store && c->w->cached && !req->upgrade;
    if (!c->active) {
        c->result = LV_CDR_BYPASS;
        forward(c);
        return;
    }
    lv_cache_req_from_head(&c->creq, req->head, tls);
    lv_cache_lookup_init(&c->l);
    c->looked_up = true;
    lookup(c, true);
}

/* The attempt loop has the request once it started (at->req is set). */
void lv_cached_body_added(struct lv_cached *c)
{
    if (c->at->req) lv_attempt_body_added(c->at);
}

void lv_cached_body_complete(struct lv_cached *c)
{
    if (c->at->req)
        lv_attempt_body_complete(c->at);
    else
        c->req->body_complete = true;
}

uint64_t lv_cached_body_backlog(const struct lv_cached *c)
{
    if (c->at->req) return lv_attempt_body_backlog(c->at);
    return lv_bodyq_mem_from(c->req->body, c->req->body->base);
}

void lv_cached_pause(struct lv_cached *c)
{
    if (c->state == LV_CD_RELAYING) lv_attempt_pause(c->at);
}

void lv_cached_resume(struct lv_cached *c)
{
    if (c->state == LV_CD_RELAYING) {
        lv_attempt_resume(c->at);
    } else if (c->state == LV_CD_SERVING && c->paused) {
        c->paused = false;
        pump(c);
    }
}

void lv_cached_stop(struct lv_cached *c)
{
    lv_attempt_stop(c->at);
    if (c->req) restore_head(c);
    if (c->state == LV_CD_IDLE && !c->looked_up) return;
    release_all(c);
    count(c);
    if (c->state != LV_CD_DONE) set_state(c, LV_CD_DONE);
}

/* --- the attempt loop's callbacks --------------------------------------------------- */

/* A 5xx or a failure in place of the answer: a stored copy answers if it
 * may (stale-if-error, serve_stale_on_error, or the stale-while-revalidate
 * window of a refresh). */
static bool stale_answer(struct lv_cached *c, uint16_t fwd_status)
{
    if (!c->active || c->l.entry == NULL) return false;
    bool ok = lv_cache_serve_stale(c->store, c->cfg, &c->l, fwd_status, wall_now());
    if (!ok && c->refreshing) {
        lv_cache_entry_refresh_end(c->l.entry); /* the next request may try */
        c->l.status.hit = false;
        c->l.status.fwd = LV_FWD_STALE;
        c->l.status.fwd_status = fwd_status;
        c->l.status.detail = fwd_status ? "origin-error" : "origin-unreachable";
        ok = true;
    }
    if (!ok) return false;
    c->swallow = true;
    c->result = LV_CDR_STALE;
    serve(c, lv_cache_entry_ref(c->l.entry));
    return true;
}

/* Relays the backend's head with the cache's lines. */
static int relay(struct lv_cached *c, const struct lv_upconn_head *h, const char *lines)
{
    unsigned status = h->status;
    bool is_head = c->req->head->method == HTTP_HEAD;
    struct lv_cached_answer a = {
        .status = status,
        .head = h->head,
        .lines = lines,
        .body = status != 101 && !is_head && status != 204 && status != 304,
        .length_known = h->framing == LV_FRAME_LENGTH,
        .length = h->content_length,
    };
    set_state(c, LV_CD_RELAYING);
    int rc = c->ops->head(c->user, &a);
    if (rc < 0 && c->wr.entry) lv_cache_writer_abort(&c->wr);
    return rc;
}

static int at_head(void *user, const struct lv_upconn_head *h)
{
    struct lv_cached *c = user;
    restore_head(c);
    if (!c->active || h->status == 101) return relay(c, h, "");
    struct lv_head *rh = (struct lv_head *)h->head;
    struct lv_fields rf = lv_fields_of_head(rh);
    uint16_t status = (uint16_t)h->status;
    int64_t now = wall_now();
    if (c->creq.method != HTTP_GET && c->creq.method != HTTP_HEAD)
        lv_cache_invalidate(c->store, c->cfg, &c->creq, status, &rf);
    if (c->looked_up && c->l.action == LV_CACHE_REVALIDATE && status == 304) {
        struct lv_cache_entry *e;
        if (lv_cache_revalidated(c->store, c->cfg, &c->l, &rf, c->request_time, now, &e) == 0) {
            c->swallow = true;
            c->result = LV_CDR_REVALIDATED;
            serve(c, e);
            return 1;
        }
    }
    if (c->looked_up && status >= 500 && stale_answer(c, status)) return 0;
    if (c->looked_up && (c->l.action == LV_CACHE_FETCH || c->l.action == LV_CACHE_REVALIDATE)) {
        enum lv_cache_nostore why;
        struct lv_cache_req asked = c->creq;
        if (c->head_get) asked.method = HTTP_GET;
        if (lv_cache_begin(c->store, c->cfg, &c->l, &asked, status, &rf, c->request_time, now,
                           &c->wr, &why) != 0)
            c->result = LV_CDR_UNCACHEABLE;
        else
            LV_STAT_INC(c->w->stats.cache_stores);
        if (c->refreshing && c->wr.entry == NULL) lv_cache_entry_refresh_end(c->l.entry);
    }
    for (uint32_t i = 0; i < rh->nfields; i++) {
        struct lv_field f = lv_fields_at(&rf, i);
        if (lv_cache_field_hidden(c->cfg, f.name, f.name_len)) rh->fields[i].flags |= LV_HF_DROP;
    }
    char st[LV_CACHE_STATUS_MAX];
    struct lv_cache_status cs = c->l.status;
    cs.fwd_status = status;
    lv_cache_status_format(st, sizeof(st), &cs);
    snprintf(c->lines, sizeof(c->lines), "Cache-Status: %s\r\n", st);
    int rc = relay(c, h, c->lines);
    /* The GET's body follows from the backend (stored, not relayed). */
    return c->head_get && rc >= 0 ? 0 : rc;
}

static void at_interim(void *user, const struct lv_upconn_head *h)
{
    struct lv_cached *c = user;
    if (!c->swallow) c->ops->interim(c->user, h);
}

static int at_body(void *user, struct lv_buf *b, const char *p, size_t len)
{
    struct lv_cached *c = user;
    if (c->swallow) return 0;
    if (c->wr.entry) lv_cache_writer_append(&c->wr, p, len); /* a failure: relayed unstored */
    if (c->head_get) return 0;
    return c->ops->body(c->user, b, p, len);
}

static void at_end(void *user)
{
    struct lv_cached *c = user;
    c->up_done = true;
    if (c->swallow) return; /* the stored response answers; it ends on its own */
    if (c->wr.entry) lv_cache_writer_finish(&c->wr);
    end(c);
}

static void at_upgraded(void *user, struct lv_sock *backend, struct lv_buf *b, const char *rest,
                        size_t n)
{
    struct lv_cached *c = user;
    c->ops->upgraded(c->user, backend, b, rest, n);
}

static void at_failed(void *user, enum lv_fail_kind kind)
{
    struct lv_cached *c = user;
    c->up_done = true;
    restore_head(c);
    if (c->swallow) return;
    if (c->state == LV_CD_FORWARDING && c->looked_up) {
        if (stale_answer(c, 0)) return;
        /* §5.2.2.2: a response that must be revalidated is never served
         * stale; the cache answers 504. */
        if (c->l.entry && (lv_cache_entry_meta(c->l.entry)->flags & LV_META_MUST_REVALIDATE) != 0)
            kind = LV_FAIL_NOT_CACHED;
    }
    fail(c, kind);
}

static void at_body_sent(void *user)
{
    struct lv_cached *c = user;
    c->ops->body_sent(c->user);
}

static bool at_client_gone(void *user)
{
    struct lv_cached *c = user;
    return c->ops->client_gone(c->user);
}

static const struct lv_attempt_ops attempt_ops = {
    .head = at_head,
    .interim = at_interim,
    .body = at_body,
    .end = at_end,
    .upgraded = at_upgraded,
    .failed = at_failed,
    .body_sent = at_body_sent,
    .client_gone = at_client_gone,
};
