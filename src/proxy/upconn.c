/*
 * Backend connections: connect with a timeout, parse responses, keep idle
 * connections in the worker's pool, and turn every way a connection can go
 * wrong into one failure kind for the attempt it serves.
 *
 * One timer per connection times the phase it is in (see arm()): connect
 * and handshake, the response head's deadline, inactivity while a body
 * streams, idle time in the pool, and the last writes after a tunnel.
 */
#include "proxy/upconn.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/routes.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/check.h"
#include "proxy/wgen.h"
#include "upstream/backend.h"
#include "config/gen.h"

/* Response heads bigger than one buffer are refused (502 bad_response). */
#define RESP_HEAD_LIMIT LV_BUF_SIZE
#define RESP_MAX_FIELDS 256

static struct lv_upconn *of_sock(struct lv_sock *s)
{
    return lv_container_of(s, struct lv_upconn, sock);
}

static struct lv_upconn *of_link(struct lv_pool_entry *e)
{
    return lv_container_of(e, struct lv_upconn, link);
}

static bool same_address(const struct lv_backend_cfg *a, const struct lv_backend_cfg *b)
{
    return a == b || (a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0);
}

static struct lv_pool *pool_of(struct lv_upconn *up)
{
    return &up->backend->pools[up->set->w->id];
}

/* Moves to state `to`. The moves the diagram in upconn.h draws, and only
 * those; entering and leaving ACTIVE counts the backend's requests in
 * flight (least_connections, power_of_two, /backends/health). */
static void set_state(struct lv_upconn *up, enum lv_up_state to)
{
    enum lv_up_state from = up->state;
    switch (to) {
    case LV_UP_CONNECTING: assert(!"an upconn starts CONNECTING, never moves there"); break;
    case LV_UP_HANDSHAKING: assert(from == LV_UP_CONNECTING); break;
    case LV_UP_ACTIVE:
        assert(from == LV_UP_CONNECTING || from == LV_UP_HANDSHAKING || from == LV_UP_IDLE);
        break;
    case LV_UP_IDLE: assert(from == LV_UP_ACTIVE); break;
    case LV_UP_TUNNEL: assert(from == LV_UP_ACTIVE); break;
    case LV_UP_FINISHING: assert(from == LV_UP_TUNNEL); break;
    case LV_UP_CLOSING: assert(from != LV_UP_CLOSING); break;
    }
    /* A connection counts as a request in flight from its connect (or its
     * reuse) until it goes back to the pool or closes; a tunnel counts too
     * (least_connections balances WebSocket connections that way). */
    bool was_busy = from != LV_UP_IDLE && from != LV_UP_FINISHING;
    bool busy = to != LV_UP_IDLE && to != LV_UP_FINISHING && to != LV_UP_CLOSING;
    if (was_busy && !busy)
        atomic_fetch_sub_explicit(&up->backend->active, 1, memory_order_relaxed);
    else if (!was_busy && busy)
        atomic_fetch_add_explicit(&up->backend->active, 1, memory_order_relaxed);
    up->state = to;
}

/* --- teardown ------------------------------------------------------------------- */

static void on_handle_closed(struct lv_upconn *up)
{
    if (--up->handles_open > 0) return;
    struct lv_upconns *set = up->set;
    lv_list_remove(&up->link_all);
    set->n--;
    LV_STAT_ADD(set->w->stats.backend_connections, (uint64_t)-1);
    lv_head_dispose(&up->resp);
    free(up);
    set->on_freed(set);
}

static void on_sock_closed(struct lv_sock *s)
{
    on_handle_closed(of_sock(s));
}

static void close_now(struct lv_upconn *up)
{
    if (up->state == LV_UP_CLOSING) return;
    lv_pool_remove(pool_of(up), &up->link);
    set_state(up, LV_UP_CLOSING);
    up->ops = NULL;
    up->user = NULL;
    lv_sockenv_timer_stop(up->sock.env, &up->timer);
    lv_sock_close(&up->sock);
}

/* --- timers ------------------------------------------------------------------------- */

static void on_timer(struct lv_wheel_timer *t);

static uint64_t remaining(uint64_t deadline, uint64_t now)
{
    return deadline > now ? deadline - now : 0;
}

/* Arms the timer for the phase the connection is in. */
static void arm(struct lv_upconn *up)
{
    uint64_t now = lv_clock_ms(), ms;
    switch (up->state) {
    case LV_UP_CONNECTING:
    case LV_UP_HANDSHAKING: {
        ms = remaining(up->connect_deadline, now);
        if (up->head_deadline && remaining(up->head_deadline, now) < ms)
            ms = remaining(up->head_deadline, now);
        break;
    }
    case LV_UP_ACTIVE:
        if (up->resp_state == LV_UPR_HEAD || up->resp_state == LV_UPR_INTERIM) {
            /* No head deadline yet: the request is still streaming in from
             * the client, and the backend is timed by its inactivity. */
            ms = up->head_deadline ? remaining(up->head_deadline, now) : up->inactivity_ms;
        } else if (up->resp_state == LV_UPR_BODY && !up->paused) {
            ms = up->inactivity_ms; /* the client is not slow: the backend is */
        } else {
            lv_sockenv_timer_stop(up->sock.env, &up->timer);
            return;
        }
        break;
    case LV_UP_IDLE: ms = up->idle_timeout_ms; break;
    case LV_UP_TUNNEL:
    case LV_UP_FINISHING:
    case LV_UP_CLOSING: return; /* timed by the tunnel, by lv_upconn_finish, or not at all */
    default: return;
    }
    lv_sockenv_timer_start(up->sock.env, &up->timer, ms);
}

/* The attempt failed: tell its user, then close. */
static void fail(struct lv_upconn *up, enum lv_fail_kind kind, int sys_err)
{
    const struct lv_upconn_ops *ops = up->ops;
    void *user = up->user;
    up->ops = NULL;
    up->user = NULL;
    if (up->state == LV_UP_CLOSING) return;
    if (ops) ops->failed(user, up, kind, sys_err);
    close_now(up);
}

static void on_timer(struct lv_wheel_timer *t)
{
    struct lv_upconn *up = t->data;
    switch (up->state) {
    case LV_UP_IDLE:
    case LV_UP_FINISHING: close_now(up); return;
    case LV_UP_CONNECTING:
    case LV_UP_HANDSHAKING: {
        /* The head's deadline can be the nearer one (a retry late in the
         * request's budget): then it is the response that timed out. */
        bool head = up->head_deadline && up->head_deadline <= up->connect_deadline;
        fail(up, head ? LV_FAIL_RESPONSE_TIMEOUT : LV_FAIL_CONNECT_TIMEOUT, UV_ETIMEDOUT);
        return;
    }
    case LV_UP_ACTIVE: fail(up, LV_FAIL_RESPONSE_TIMEOUT, UV_ETIMEDOUT); return;
    case LV_UP_TUNNEL:
    case LV_UP_CLOSING: return;
    }
}

/* --- response parsing ------------------------------------------------------------------ */

/* Has the attempt that was current when `serial` was read let go of up
 * (released it, or it failed) from inside a callback? */
static bool let_go(const struct lv_upconn *up, uint32_t serial)
{
    return up->state != LV_UP_ACTIVE || up->nrequests != serial;
}

static int on_begin(struct lv_http_parser *p)
{
    struct lv_upconn *up = p->owner;
    lv_head_dispose(&up->resp);
    lv_head_init(&up->resp, RESP_HEAD_LIMIT, RESP_MAX_FIELDS);
    return up->state == LV_UP_ACTIVE ? 0 : -1;
}

static enum lv_framing framing_of(const llhttp_t *ll, unsigned status)
{
    if (status < 200 || status == 204) return LV_FRAME_NONE; /* llhttp knows: no body */
    if (ll->flags & F_CHUNKED) return LV_FRAME_CHUNKED;
    if (ll->flags & F_CONTENT_LENGTH) return LV_FRAME_LENGTH;
    return LV_FRAME_CLOSE;
}

static int on_head(struct lv_http_parser *p)
{
    struct lv_upconn *up = p->owner;
    if (up->state != LV_UP_ACTIVE) return -1;
    /* A framing levee and the backend could read differently (or a coding
     * levee would strip the label of): bad_response, before any of it
     * reaches the attempt (http/check.h). */
    if (lv_check_response(&up->resp) != LV_FAIL_NONE) {
        p->fail = LV_FAIL_BAD_RESPONSE;
        return -1;
    }
    unsigned status = up->resp.status;
    bool interim = status < 200 && status != 101;
    up->status = status;
    up->resp_state = interim ? LV_UPR_INTERIM : LV_UPR_BODY;
    struct lv_upconn_head h = {
        .head = &up->resp,
        .status = status,
        .framing = framing_of(&p->ll, status),
        .content_length = p->ll.content_length,
    };
    uint32_t serial = up->nrequests;
    int rc = up->ops->head(up->user, up, &h);
    if (let_go(up, serial)) return -1; /* released or failed: stop here */
    if (rc < 0) {
        if (p->fail == LV_FAIL_NONE) p->fail = LV_FAIL_BAD_RESPONSE;
        return -1;
    }
    if (!interim) {
        lv_head_dispose(&up->resp); /* relayed: the memory can go back */
        arm(up);
    }
    return rc;
}

static int on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    struct lv_upconn *up = p->owner;
    if (up->state != LV_UP_ACTIVE) return -1;
    if (up->resp_state != LV_UPR_BODY) return 0; /* a 1xx has no body */
    uint32_t serial = up->nrequests;
    int rc = up->ops->body(up->user, up, p->cur_buf, at, len);
    if (let_go(up, serial)) return -1;
    if (rc < 0 && p->fail == LV_FAIL_NONE) p->fail = LV_FAIL_BAD_RESPONSE;
    return rc;
}

static int on_complete(struct lv_http_parser *p)
{
    struct lv_upconn *up = p->owner;
    if (up->state != LV_UP_ACTIVE) return HPE_PAUSED;
    if (up->resp_state == LV_UPR_INTERIM) { /* the final response follows */
        up->resp_state = LV_UPR_HEAD;
        return 0;
    }
    up->resp_state = LV_UPR_DONE;
    /* After a 101, llhttp stops by itself (HPE_PAUSED_UPGRADE). Otherwise
     * stop: the response is handed over once llhttp_execute has returned. */
    return p->ll.upgrade ? 0 : HPE_PAUSED;
}

static const struct lv_http_handler response_handler = {on_begin, on_head, on_body, on_complete};

static void response_complete(struct lv_upconn *up, bool clean)
{
    llhttp_resume(&up->parser.ll);
    bool reusable = clean && llhttp_should_keep_alive(&up->parser.ll);
    lv_sockenv_timer_stop(up->sock.env, &up->timer);
    up->ops->end(up->user, up, reusable);
}

/* A read error or EOF while an attempt is served. */
static void read_failed(struct lv_upconn *up, ssize_t nread)
{
    if (nread == UV_EOF && up->resp_state == LV_UPR_BODY &&
        llhttp_message_needs_eof(&up->parser.ll)) {
        /* A close-delimited body ends here. */
        if (llhttp_finish(&up->parser.ll) == HPE_PAUSED || up->resp_state == LV_UPR_DONE) {
            response_complete(up, false);
            return;
        }
    }
    if (nread == UV_EPROTO && lv_sock_tls_why(&up->sock)[0]) {
        /* A TLS error after the handshake. Before any response byte it is
         * the backend refusing the handshake late (TLS 1.3 checks the
         * client certificate after the client has finished): tls_failed. */
        lv_log_limited(LV_LOG_WARN, &up->backend->log_conn, "backend %s: TLS error: %s",
                       up->backend->id, lv_sock_tls_why(&up->sock));
        if (!up->got_bytes) {
            fail(up, LV_FAIL_TLS, (int)nread);
            return;
        }
    }
    /* Closed or reset before the response was complete. */
    fail(up, LV_FAIL_RESET, (int)nread);
}

static void on_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct lv_upconn *up = of_sock(s);
    if (up->state != LV_UP_ACTIVE) {
        /* Idle: the backend closed the connection, or sent bytes nobody
         * asked for; either way it cannot be used any more. Finishing: the
         * backend's last words after a tunnel are not wanted. */
        if (up->state == LV_UP_IDLE || nread < 0) close_now(up);
        return;
    }
    if (nread < 0) {
        read_failed(up, nread);
        return;
    }
    up->got_bytes = true;
    uint32_t serial = up->nrequests;
    size_t consumed = 0;
    llhttp_errno_t err = lv_http_parser_execute(&up->parser, b, b->data, (size_t)nread, &consumed);
    if (let_go(up, serial)) return; /* released or failed from a callback */
    if (err == HPE_PAUSED) {
        response_complete(up, consumed == (size_t)nread);
        return;
    }
    if (err == HPE_PAUSED_UPGRADE && up->resp_state == LV_UPR_DONE && up->status == 101) {
        /* Switching protocols: what follows is not HTTP. */
        lv_sockenv_timer_stop(up->sock.env, &up->timer);
        up->ops->upgraded(up->user, up, b, b->data + consumed, (size_t)nread - consumed);
        return;
    }
    if (err != HPE_OK) {
        fail(up, lv_http_parser_failure(&up->parser, err), 0);
        return;
    }
    if (up->resp_state == LV_UPR_BODY) arm(up); /* progress: a new inactivity period */
}

static void on_written(struct lv_sock *s, int status)
{
    struct lv_upconn *up = of_sock(s);
    if (up->state == LV_UP_FINISHING) {
        if (status < 0) close_now(up); /* else the shutdown's callback closes it */
        return;
    }
    if (up->state != LV_UP_ACTIVE) return;
    if (status < 0) {
        /* The read side says what happened: a backend that refuses the
         * request (a TLS 1.3 alert after the handshake, an early error
         * response) and closes may make the write fail before its last
         * bytes are read, and those say more than the reset. A write error
         * alone (EPIPE) with the response's head already in is not a
         * failure of the response. The head deadline bounds the wait. */
        if (up->resp_state != LV_UPR_BODY && up->resp_state != LV_UPR_DONE && !up->sock.reading)
            fail(up, LV_FAIL_RESET, status);
        return;
    }
    if (up->head_deadline == 0 && up->resp_state == LV_UPR_HEAD) arm(up); /* upload progress */
    up->ops->drained(up->user, up);
}

/* --- connecting ------------------------------------------------------------------------------ */

static void bind_attempt(struct lv_upconn *up, const struct lv_upconn_times *t,
                         const struct lv_upconn_ops *ops, void *user)
{
    up->ops = ops;
    up->user = user;
    up->resp_state = LV_UPR_HEAD;
    up->got_bytes = up->paused = false;
    up->connect_deadline = t->connect_deadline;
    up->head_deadline = t->head_deadline;
    up->inactivity_ms = t->inactivity_ms;
    up->nrequests++;
    struct lv_backend_wstats *st = &up->backend->wstats[up->set->w->id];
    LV_STAT_INC(st->attempts);
    if (up->reused) LV_STAT_INC(st->reuses);
}

static void became_ready(struct lv_upconn *up)
{
    set_state(up, LV_UP_ACTIVE);
    arm(up);
    up->ops->ready(up->user, up);
}

static void on_handshake(struct lv_sock *s, int status)
{
    struct lv_upconn *up = of_sock(s);
    if (up->state != LV_UP_HANDSHAKING) return;
    if (status != 0) {
        lv_log_limited(LV_LOG_WARN, &up->backend->log_conn, "backend %s: TLS handshake failed: %s",
                       up->backend->id, lv_sock_tls_why(s));
        fail(up, LV_FAIL_TLS, status);
        return;
    }
    became_ready(up);
}

/* TLS to the backend: SNI and the verified name are tls.server_name, or
 * the URL's host; the last session of this worker is offered again. */
static int start_tls(struct lv_upconn *up)
{
    const struct lv_backend_cfg *bc = up->bcfg;
    const char *name = bc->tls.server_name ? bc->tls.server_name : bc->host;
    SSL_SESSION **slot = &up->backend->tls_sessions[up->set->w->id];
    up->sock.on_handshake = on_handshake;
    int rc = lv_sock_read_start(&up->sock);
    if (rc == 0) {
        rc = lv_sock_tls_start(&up->sock, bc->tls_ctx, true, name,
                               bc->tls.insecure_skip_verify ? NULL : name, slot, *slot);
    }
    return rc;
}

static void on_connect(uv_connect_t *req, int status)
{
    struct lv_upconn *up = req->data;
    if (status == UV_ECANCELED || up->state != LV_UP_CONNECTING) return;
    if (status < 0) {
        fail(up, LV_FAIL_CONNECT_FAILED, status);
        return;
    }
    uv_tcp_nodelay(&up->sock.tcp, 1);
    if (up->bcfg->tls.enabled) {
        set_state(up, LV_UP_HANDSHAKING);
        int rc = start_tls(up);
        if (rc != 0) fail(up, LV_FAIL_TLS, rc);
        return; /* ready when the handshake is done */
    }
    became_ready(up);
}

static struct lv_upconn *from_pool(struct lv_upconns *set, struct lv_backend *b,
                                   const struct lv_backend_cfg *bcfg)
{
    struct lv_pool *pool = &b->pools[set->w->id];
    struct lv_pool_entry *e;
    while ((e = lv_pool_get(pool)) != NULL) {
        struct lv_upconn *up = of_link(e);
        assert(up->state == LV_UP_IDLE);
        /* After a reload that moved the backend, old connections go. */
        if (!same_address(up->bcfg, bcfg)) {
            close_now(up);
            continue;
        }
        return up;
    }
    return NULL;
}

struct lv_upconn *lv_upconn_acquire(struct lv_upconns *set, struct lv_backend *b,
                                    const struct lv_backend_cfg *bcfg,
                                    const struct lv_upconn_times *t,
                                    const struct lv_upconn_ops *ops, void *user, int *err)
{
    struct lv_upconn *up = from_pool(set, b, bcfg);
    if (up) {
        lv_sockenv_timer_stop(up->sock.env, &up->timer);
        up->reused = true;
        up->idle_ms = lv_clock_ms() - up->idle_since_ms;
        up->bcfg = bcfg;
        bind_attempt(up, t, ops, user);
        set_state(up, LV_UP_ACTIVE);
        arm(up);
        return up;
    }
    struct lv_wctx *w = set->w;
    up = calloc(1, sizeof(*up));
    if (up == NULL) {
        *err = UV_ENOMEM;
        return NULL;
    }
    int rc = lv_sock_init(&w->env, &up->sock);
    if (rc != 0) {
        free(up);
        *err = rc;
        return NULL;
    }
    up->set = set;
    up->backend = b;
    up->bcfg = bcfg;
    up->handles_open = 1;
    up->state = LV_UP_CONNECTING; /* busy from here on (set_state) */
    atomic_fetch_add_explicit(&b->active, 1, memory_order_relaxed);
    up->sock.on_read = on_read;
    up->sock.on_written = on_written;
    up->sock.on_close = on_sock_closed;
    up->timer.cb = on_timer;
    up->timer.data = up;
    lv_http_parser_init(&up->parser, HTTP_RESPONSE, &response_handler, up);
    up->parser.pool = &w->env.bufs;
    up->parser.head = &up->resp;
    lv_head_init(&up->resp, RESP_HEAD_LIMIT, RESP_MAX_FIELDS);
    lv_list_push_front(&set->all, &up->link_all);
    set->n++;
    b->pools[w->id].created++;
    LV_STAT_INC(b->wstats[w->id].connects);
    LV_STAT_INC(w->stats.backend_connections);

    bind_attempt(up, t, ops, user);
    up->creq.data = up;
    rc = uv_tcp_connect(&up->creq, &up->sock.tcp, (const struct sockaddr *)&bcfg->addr, on_connect);
    if (rc != 0) {
        *err = rc;
        up->ops = NULL;
        close_now(up);
        return NULL;
    }
    arm(up);
    return up;
}

void lv_upconn_await(struct lv_upconn *up)
{
    assert(up->state == LV_UP_ACTIVE);
    if (!up->paused) lv_sock_read_start(&up->sock);
}

void lv_upconn_set_head_deadline(struct lv_upconn *up, uint64_t deadline)
{
    up->head_deadline = deadline;
    if (up->state == LV_UP_ACTIVE || up->state == LV_UP_CONNECTING ||
        up->state == LV_UP_HANDSHAKING)
        arm(up);
}

void lv_upconn_refuse(struct lv_upconn *up, enum lv_fail_kind kind)
{
    up->parser.fail = kind;
}

/* Points an idle connection at generation g's entry for its backend (same
 * backend, same address). False when g has no such entry. */
/* Moves up to generation g when its backend is there (same address) and
 * returns the idle settings of the backend's pool in g (the pool's `pool:`,
 * else the global one); NULL when g does not have it. */
static const struct lv_pool_cfg *adopt(struct lv_upconn *up, const struct lv_gen *g)
{
    for (size_t i = 0; i < g->nbackends; i++) {
        const struct lv_backend_cfg *bc = &g->cfg->backends[i];
        if (g->backends[i] == up->backend && same_address(bc, up->bcfg)) {
            up->bcfg = bc;
            const struct lv_backend_pool_cfg *p = lv_routes_backend_pool(g->cfg, i);
            return p ? &p->pool : &g->cfg->pool;
        }
    }
    return NULL;
}

void lv_upconn_release(struct lv_upconn *up, bool reusable)
{
    if (up->state == LV_UP_CLOSING || up->state == LV_UP_FINISHING) return;
    assert(up->state != LV_UP_IDLE);
    up->ops = NULL;
    up->user = NULL;
    struct lv_wctx *w = up->set->w;
    const struct lv_pool_cfg *pc = NULL;
    if (!reusable || up->state != LV_UP_ACTIVE || w->draining || up->sock.write_error ||
        up->resp_state != LV_UPR_DONE ||
        atomic_load_explicit(&up->backend->retired, memory_order_relaxed) ||
        lv_backend_admin(up->backend) != LV_ADMIN_ENABLED ||
        !(pc = adopt(up, w->wgen->gen))) { /* in the pool it belongs to the current generation */
        close_now(up);
        return;
    }
    lv_head_dispose(&up->resp);
    up->idle_since_ms = lv_clock_ms();
    up->reused = false;
    up->paused = false;
    set_state(up, LV_UP_IDLE);
    /* The bound is the current generation's, of the backend's pool: a
     * reload's max_idle holds from here on, for backends it kept too. */
    size_t max_idle = pc->max_idle;
    up->idle_timeout_ms = pc->idle_timeout;
    struct lv_pool *pool = pool_of(up);
    for (struct lv_pool_entry *e = lv_pool_put(pool, &up->link, max_idle); e;
         e = lv_pool_trim(pool, max_idle))
        close_now(of_link(e));
    if (up->state != LV_UP_IDLE) return; /* it was the one over the bound */
    lv_sock_read_start(&up->sock);       /* to see the backend close it */
    arm(up);
}

struct lv_sock *lv_upconn_take_stream(struct lv_upconn *up)
{
    assert(up->state == LV_UP_ACTIVE);
    up->ops = NULL;
    up->user = NULL;
    lv_sockenv_timer_stop(up->sock.env, &up->timer);
    set_state(up, LV_UP_TUNNEL);
    return &up->sock;
}

static void on_finished(struct lv_sock *s, int status)
{
    (void)status;
    struct lv_upconn *up = of_sock(s);
    if (up->state != LV_UP_CLOSING) close_now(up);
}

void lv_upconn_finish(struct lv_upconn *up, uint64_t idle_ms)
{
    if (up->state == LV_UP_CLOSING) return;
    assert(up->state == LV_UP_TUNNEL);
    set_state(up, LV_UP_FINISHING);
    up->sock.on_read = on_read;
    up->sock.on_written = on_written;
    lv_sock_read_stop(&up->sock);
    /* A backend that does not read what is left would keep the shutdown
     * waiting forever: its inactivity timeout closes it. */
    lv_sockenv_timer_start(up->sock.env, &up->timer, idle_ms);
    if (lv_sock_shutdown(&up->sock, on_finished) != 0) close_now(up);
}

void lv_upconn_pause(struct lv_upconn *up)
{
    if (up->paused || up->state != LV_UP_ACTIVE) return;
    up->paused = true;
    lv_sock_read_stop(&up->sock);
    arm(up);
}

void lv_upconn_resume(struct lv_upconn *up)
{
    if (!up->paused || up->state != LV_UP_ACTIVE) return;
    up->paused = false;
    lv_sock_read_start(&up->sock);
    arm(up);
}

/* --- the registry ------------------------------------------------------------------------------
 */

void lv_upconns_init(struct lv_upconns *set, struct lv_wctx *w,
                     void (*on_freed)(struct lv_upconns *set))
{
    memset(set, 0, sizeof(*set));
    lv_list_init(&set->all);
    set->w = w;
    set->on_freed = on_freed;
}

void lv_upconns_adopt(struct lv_upconns *set)
{
    struct lv_list *n;
    for (n = set->all.next; n != &set->all; n = n->next) {
        struct lv_upconn *up = lv_container_of(n, struct lv_upconn, link_all);
        if (up->state == LV_UP_IDLE && !adopt(up, set->w->wgen->gen)) close_now(up);
    }
}

void lv_upconns_close_idle(struct lv_upconns *set, const struct lv_backend *only)
{
    struct lv_list *n;
    for (n = set->all.next; n != &set->all; n = n->next) {
        struct lv_upconn *up = lv_container_of(n, struct lv_upconn, link_all);
        if (up->state == LV_UP_IDLE && (only == NULL || up->backend == only)) close_now(up);
    }
}

void lv_upconns_close_all(struct lv_upconns *set)
{
    struct lv_list *n;
    for (n = set->all.next; n != &set->all; n = n->next)
        close_now(lv_container_of(n, struct lv_upconn, link_all));
}
