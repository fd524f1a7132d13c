/*
 * Backend connections: connect with a timeout, parse responses, keep idle
 * connections in the worker's pool, and turn every way a connection can go
 * wrong into one failure kind for the exchange.
 *
 * One timer per connection serves every phase: connect timeout, per-try
 * timeout (attempt start to response head, bounded by the request's
 * deadline), inactivity while a body streams, and idle time in the pool.
 */
#include "proxy/upconn.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "proxy/attempt.h"
#include "proxy/client.h"
#include "proxy/exchange.h"
#include "proxy/proxy.h"
#include "proxy/server.h"
#include "proxy/tunnel.h"
#include "upstream/backend.h"
#include "config/gen.h"

/* Response heads bigger than one buffer are refused (502 bad_response). */
#define RESP_HEAD_LIMIT LV_BUF_SIZE
#define RESP_MAX_FIELDS 256

static struct lv_upconn *of_sock(struct lv_sock *s)
{
    return (struct lv_upconn *)(void *)((char *)s - offsetof(struct lv_upconn, sock));
}

static struct lv_upconn *of_link(struct lv_pool_entry *e)
{
    return (struct lv_upconn *)(void *)((char *)e - offsetof(struct lv_upconn, link));
}

static bool same_address(const struct lv_backend_cfg *a, const struct lv_backend_cfg *b)
{
    return a == b || (a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0);
}

static struct lv_pool *pool_of(struct lv_upconn *up)
{
    return &up->backend->pools[up->srv->w.id];
}

/* --- teardown ------------------------------------------------------------------- */

static void on_handle_closed(struct lv_upconn *up)
{
    if (--up->handles_open > 0) return;
    struct lv_server *srv = up->srv;
    if (up->prev)
        up->prev->next = up->next;
    else
        srv->upconns = up->next;
    if (up->next) up->next->prev = up->prev;
    srv->nupconns--;
    LV_STAT_ADD(srv->stats.backend_connections, (uint64_t)-1);
    lv_head_dispose(&up->resp);
    free(up);
    lv_server_check_done(srv);
}

static void on_sock_closed(struct lv_sock *s)
{
    on_handle_closed(of_sock(s));
}

static void on_timer_closed(uv_handle_t *h)
{
    on_handle_closed(h->data);
}

void lv_upconn_close(struct lv_upconn *up)
{
    if (up->state == LV_UP_CLOSING) return;
    if (up->active_counted) {
        atomic_fetch_sub_explicit(&up->backend->active, 1, memory_order_relaxed);
        up->active_counted = false;
    }
    lv_pool_remove(pool_of(up), &up->link);
    up->state = LV_UP_CLOSING;
    up->ex = NULL;
    lv_sock_close(&up->sock);
    uv_close((uv_handle_t *)&up->timer, on_timer_closed);
}

/* --- timers ------------------------------------------------------------------------- */

static void on_timer(uv_timer_t *t);

static uint64_t remaining(uint64_t deadline, uint64_t now)
{
    return deadline > now ? deadline - now : 0;
}

/* Arms the timer for the phase the connection is in. */
static void arm(struct lv_upconn *up)
{
    struct lv_exchange *ex = up->ex;
    const struct lv_config *cfg = ex ? ex->cfg : up->srv->cfg;
    uint64_t now = lv_clock_ms(), ms;
    if (up->state == LV_UP_IDLE) {
        ms = cfg->pool.idle_timeout;
    } else if (ex == NULL) {
        return;
    } else if (up->resp_head) {
        if (up->paused) { /* the client is slow, not the backend */
            uv_timer_stop(&up->timer);
            return;
        }
        ms = cfg->timeouts.idle;
    } else {
        uint64_t per_try = remaining(up->attempt_start_ms + cfg->timeouts.per_try, now);
        uint64_t whole = remaining(ex->deadline_ms, now);
        ms = per_try < whole ? per_try : whole;
        if (up->state == LV_UP_CONNECTING) {
            uint64_t connect = remaining(up->attempt_start_ms + cfg->timeouts.connect, now);
            if (connect < ms) ms = connect;
        }
    }
    uv_timer_start(&up->timer, on_timer, ms, 0);
}

static void fail(struct lv_upconn *up, enum lv_fail_kind kind, int sys_err)
{
    struct lv_exchange *ex = up->ex;
    if (ex == NULL) {
        lv_upconn_close(up);
        return;
    }
    lv_attempt_failed(ex, up, kind, sys_err);
    /* The exchange released (closed) us. */
}

static void on_timer(uv_timer_t *t)
{
    struct lv_upconn *up = t->data;
    switch (up->state) {
    case LV_UP_IDLE: lv_upconn_close(up); return;
    case LV_UP_CONNECTING: fail(up, LV_FAIL_CONNECT_TIMEOUT, UV_ETIMEDOUT); return;
    case LV_UP_BUSY: fail(up, LV_FAIL_RESPONSE_TIMEOUT, UV_ETIMEDOUT); return;
    case LV_UP_CLOSING: return;
    }
}

/* --- response parsing ------------------------------------------------------------------ */

static int on_begin(struct lv_http_parser *p)
{
    struct lv_upconn *up = p->owner;
    lv_head_dispose(&up->resp);
    lv_head_init(&up->resp, RESP_HEAD_LIMIT, RESP_MAX_FIELDS);
    if (up->ex) { /* headers.remove_response of the request's generation */
        p->drop = up->ex->cfg->headers.remove_response.items;
        p->ndrop = up->ex->cfg->headers.remove_response.n;
    }
    return 0;
}

static int on_head(struct lv_http_parser *p)
{
    struct lv_upconn *up = p->owner;
    if (up->ex == NULL) return -1;
    int rc = lv_exchange_on_response_head(up->ex, up);
    if (rc < 0 && p->fail == LV_FAIL_NONE) p->fail = LV_FAIL_BAD_RESPONSE;
    if (up->resp_head) {
        lv_head_dispose(&up->resp); /* forwarded: the memory can go back */
        arm(up);
    }
    return rc;
}

static int on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    struct lv_upconn *up = p->owner;
    if (up->ex == NULL || up->interim) return 0;
    return lv_exchange_on_response_body(up->ex, up, p->cur_buf, at, len);
}

static int on_complete(struct lv_http_parser *p)
{
    struct lv_upconn *up = p->owner;
    if (up->interim) { /* a 1xx: the final response follows */
        up->interim = false;
        return 0;
    }
    up->resp_done = true;
    /* After a 101, llhttp stops by itself (HPE_PAUSED_UPGRADE). */
    return p->ll.upgrade ? 0 : HPE_PAUSED;
}

static const struct lv_http_handler response_handler = {on_begin, on_head, on_body, on_complete};

static void response_complete(struct lv_upconn *up, bool clean)
{
    struct lv_exchange *ex = up->ex;
    llhttp_resume(&up->parser.ll);
    lv_exchange_on_response_end(ex, up, clean);
}

static void on_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct lv_upconn *up = of_sock(s);
    if (up->tunnel) {
        lv_tunnel_backend_read(up, b, nread);
        return;
    }
    if (up->state == LV_UP_IDLE || up->ex == NULL) {
        /* The backend closed an idle connection, or sent bytes nobody asked
         * for: either way it cannot be used any more. */
        lv_upconn_close(up);
        return;
    }
    struct lv_exchange *ex = up->ex;
    if (nread < 0) {
        if (nread == UV_EOF && up->resp_head && llhttp_message_needs_eof(&up->parser.ll)) {
            /* A close-delimited body ends here. */
            if (llhttp_finish(&up->parser.ll) == HPE_PAUSED || up->resp_done) {
                response_complete(up, false);
                return;
            }
        }
        if (nread == UV_EPROTO && s->tls_why[0]) {
            /* A TLS error after the handshake. Before any response byte it
             * is the backend refusing the handshake late (TLS 1.3 checks the
             * client certificate after the client has finished): tls_failed. */
            lv_log_limited(LV_LOG_WARN, &up->backend->log_conn, "backend %s: TLS error: %s",
                           up->backend->id, s->tls_why);
            if (!up->got_bytes) {
                fail(up, LV_FAIL_TLS, (int)nread);
                return;
            }
        }
        /* Closed or reset before the response was complete. */
        fail(up, LV_FAIL_RESET, (int)nread);
        return;
    }
    up->got_bytes = true;
    size_t consumed = 0;
    llhttp_errno_t err = lv_http_parser_execute(&up->parser, b, b->data, (size_t)nread, &consumed);
    if (up->ex != ex) return; /* the exchange failed us from a callback */
    if (err == HPE_PAUSED) {
        response_complete(up, consumed == (size_t)nread);
        return;
    }
    if (err == HPE_PAUSED_UPGRADE && ex->status == 101) {
        /* Switching protocols: from here on, bytes are relayed as they are. */
        lv_tunnel_start(ex, b, b->data + consumed, (size_t)nread - consumed);
        return;
    }
    if (err != HPE_OK) {
        fail(up, lv_http_parser_failure(&up->parser, err), 0);
        return;
    }
    lv_sock_flush(&ex->client->sock);
    /* Interim responses are written to the client too: a backend streaming
     * them to a client that does not read is paused as a body would be. */
    if ((up->resp_head || up == ex->up) && lv_exchange_client_full(ex))
        lv_upconn_pause(up);
    else if (up->resp_head)
        arm(up);
}

static void on_written(struct lv_sock *s, int status)
{
    struct lv_upconn *up = of_sock(s);
    if (up->tunnel) {
        if (status == 0) lv_tunnel_backend_written(up);
        return;
    }
    if (up->ex == NULL) return;
    if (status < 0) {
        /* The read side says what happened: a backend that refuses the
         * request (a TLS 1.3 alert after the handshake, an early error
         * response) and closes may make the write fail before its last
         * bytes are read, and those say more than the reset. A write error
         * alone (EPIPE) with a response already in is not a failure of the
         * response. The per-try timer bounds the wait. */
        if (!up->resp_head && !up->sock.reading) fail(up, LV_FAIL_RESET, status);
        return;
    }
    lv_exchange_on_upconn_drain(up->ex, up);
}

/* --- connecting ------------------------------------------------------------------------------ */

static void bind_attempt(struct lv_upconn *up, struct lv_exchange *ex)
{
    up->ex = ex;
    up->cursor = 0;
    up->interim_count = 0;
    up->interim_bytes = 0;
    up->head_sent = up->req_done = up->resp_head = up->resp_done = false;
    up->got_bytes = up->paused = up->interim = false;
    up->attempt_start_ns = lv_clock_ns();
    up->attempt_start_ms = up->attempt_start_ns / 1000000u;
    up->nrequests++;
    atomic_fetch_add_explicit(&up->backend->active, 1, memory_order_relaxed);
    up->active_counted = true;
    struct lv_backend_wstats *st = &up->backend->wstats[up->srv->w.id];
    LV_STAT_INC(st->attempts);
    if (up->reused) LV_STAT_INC(st->reuses);
}

static void on_handshake(struct lv_sock *s, int status)
{
    struct lv_upconn *up = of_sock(s);
    if (up->state != LV_UP_CONNECTING) return;
    if (status != 0) {
        lv_log_limited(LV_LOG_WARN, &up->backend->log_conn, "backend %s: TLS handshake failed: %s",
                       up->backend->id, s->tls_why);
        fail(up, LV_FAIL_TLS, status);
        return;
    }
    up->state = LV_UP_BUSY;
    if (up->ex)
        lv_exchange_on_connected(up->ex, up);
    else
        lv_upconn_close(up);
}

/* TLS to the backend: SNI and the verified name are tls.server_name, or
 * the URL's host; the last session of this worker is offered again. */
static int start_tls(struct lv_upconn *up)
{
    const struct lv_backend_cfg *bc = up->bcfg;
    const char *name = bc->tls.server_name ? bc->tls.server_name : bc->host;
    SSL_SESSION **slot = &up->backend->tls_sessions[up->srv->w.id];
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
    if (status == UV_ECANCELED || up->state == LV_UP_CLOSING) return;
    if (status < 0) {
        fail(up, LV_FAIL_CONNECT_FAILED, status);
        return;
    }
    uv_tcp_nodelay(&up->sock.tcp, 1);
    if (up->bcfg->tls.enabled) {
        int rc = start_tls(up);
        if (rc != 0) fail(up, LV_FAIL_TLS, rc);
        return; /* still connecting until the handshake is done */
    }
    up->state = LV_UP_BUSY;
    lv_exchange_on_connected(up->ex, up);
}

struct lv_upconn *lv_upconn_acquire(struct lv_server *srv, struct lv_backend *b,
                                    const struct lv_backend_cfg *bcfg, struct lv_exchange *ex,
                                    int *err)
{
    struct lv_pool *pool = &b->pools[srv->w.id];
    struct lv_pool_entry *e;
    while ((e = lv_pool_get(pool)) != NULL) {
        struct lv_upconn *up = of_link(e);
        /* After a reload that moved the backend, old connections go. */
        if (!same_address(up->bcfg, bcfg)) {
            lv_upconn_close(up);
            continue;
        }
        uv_timer_stop(&up->timer);
        up->state = LV_UP_BUSY;
        up->reused = true;
        up->idle_ms = lv_clock_ms() - up->idle_since_ms;
        up->bcfg = bcfg;
        bind_attempt(up, ex);
        return up;
    }
    struct lv_upconn *up = calloc(1, sizeof(*up));
    if (up == NULL) {
        *err = UV_ENOMEM;
        return NULL;
    }
    int rc = lv_sock_init(&srv->env, &up->sock);
    if (rc != 0) {
        free(up);
        *err = rc;
        return NULL;
    }
    up->srv = srv;
    up->backend = b;
    up->bcfg = bcfg;
    up->handles_open = 2;
    up->sock.on_read = on_read;
    up->sock.on_written = on_written;
    up->sock.on_close = on_sock_closed;
    uv_timer_init(&srv->w.loop, &up->timer);
    up->timer.data = up;
    lv_http_parser_init(&up->parser, HTTP_RESPONSE, &response_handler, up);
    up->parser.pool = &srv->env.bufs;
    up->parser.head = &up->resp;
    lv_head_init(&up->resp, RESP_HEAD_LIMIT, RESP_MAX_FIELDS);
    up->next = srv->upconns;
    if (srv->upconns) srv->upconns->prev = up;
    srv->upconns = up;
    srv->nupconns++;
    pool->created++;
    LV_STAT_INC(b->wstats[srv->w.id].connects);
    LV_STAT_INC(srv->stats.backend_connections);

    up->state = LV_UP_CONNECTING;
    bind_attempt(up, ex);
    up->creq.data = up;
    rc = uv_tcp_connect(&up->creq, &up->sock.tcp, (const struct sockaddr *)&bcfg->addr, on_connect);
    if (rc != 0) {
        *err = rc;
        lv_upconn_close(up);
        return NULL;
    }
    arm(up);
    return up;
}

void lv_upconn_await_response(struct lv_upconn *up)
{
    lv_sock_read_start(&up->sock);
    arm(up);
}

bool lv_upconn_adopt(struct lv_upconn *up, const struct lv_gen *g)
{
    for (size_t i = 0; i < g->nbackends; i++) {
        const struct lv_backend_cfg *bc = &g->cfg->backends[i];
        if (g->backends[i] == up->backend && same_address(bc, up->bcfg)) {
            up->bcfg = bc;
            return true;
        }
    }
    return false;
}

void lv_upconn_release(struct lv_upconn *up, bool reusable)
{
    if (up->active_counted) {
        atomic_fetch_sub_explicit(&up->backend->active, 1, memory_order_relaxed);
        up->active_counted = false;
    }
    up->ex = NULL;
    if (!reusable || up->state != LV_UP_BUSY || up->srv->draining || up->sock.write_error ||
        atomic_load_explicit(&up->backend->retired, memory_order_relaxed) ||
        lv_backend_admin(up->backend) != LV_ADMIN_ENABLED) {
        lv_upconn_close(up);
        return;
    }
    /* In the pool a connection belongs to the current generation. */
    if (!lv_upconn_adopt(up, up->srv->wgen->gen)) {
        lv_upconn_close(up);
        return;
    }
    lv_head_dispose(&up->resp);
    up->idle_since_ms = lv_clock_ms();
    up->state = LV_UP_IDLE;
    up->reused = false;
    up->paused = false;
    /* The bound is the current generation's (the one just adopted): a
     * reload's max_idle holds from here on, for backends it kept too. */
    size_t max_idle = up->srv->cfg->pool.max_idle;
    struct lv_pool *pool = pool_of(up);
    for (struct lv_pool_entry *e = lv_pool_put(pool, &up->link, max_idle); e;
         e = lv_pool_trim(pool, max_idle))
        lv_upconn_close(of_link(e));
    if (up->state != LV_UP_IDLE) return;
    lv_sock_read_start(&up->sock); /* to see the backend close it */
    arm(up);
}

static void on_finished(struct lv_sock *s, int status)
{
    (void)status;
    lv_upconn_close(of_sock(s));
}

void lv_upconn_finish(struct lv_upconn *up)
{
    if (up->active_counted) {
        atomic_fetch_sub_explicit(&up->backend->active, 1, memory_order_relaxed);
        up->active_counted = false;
    }
    up->ex = NULL;
    lv_sock_read_stop(&up->sock);
    /* A backend that does not read what is left would keep the shutdown
     * waiting forever: its inactivity timeout closes it. */
    uv_timer_start(&up->timer, on_timer, up->srv->cfg->timeouts.idle, 0);
    if (lv_sock_shutdown(&up->sock, on_finished) != 0) lv_upconn_close(up);
}

void lv_upconn_pause(struct lv_upconn *up)
{
    if (up->paused) return;
    up->paused = true;
    lv_sock_read_stop(&up->sock);
    arm(up);
    if (up->ex) lv_client_arm_send_timeout(up->ex->client);
}

void lv_upconn_resume(struct lv_upconn *up)
{
    if (!up->paused) return;
    up->paused = false;
    lv_sock_read_start(&up->sock);
    arm(up);
}

void lv_upconn_close_idle(struct lv_server *srv, const struct lv_backend *only)
{
    for (struct lv_upconn *up = srv->upconns; up; up = up->next) {
        if (up->state == LV_UP_IDLE && (only == NULL || up->backend == only)) lv_upconn_close(up);
    }
}

void lv_upconn_close_all(struct lv_server *srv)
{
    for (struct lv_upconn *up = srv->upconns; up; up = up->next)
        lv_upconn_close(up);
}
