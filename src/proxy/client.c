/*
 * HTTP/1.x client connections. Requests are parsed as bytes arrive and run
 * one at a time: when a request is complete the parser pauses, and bytes of
 * the next (pipelined) request stay in `pending` until the answer is out,
 * so that answers leave in order. An idle connection holds no buffer.
 *
 * The connection is its exchange's downstream (struct lv_downstream_ops):
 * the exchange says what to answer, this file says it in HTTP/1.x — status
 * line, the relayed fields, levee's framing (Content-Length, chunked, or
 * close for an HTTP/1.0 client), Connection — and writes it.
 *
 * While an exchange waits for its answer the socket keeps being read, so
 * that a keep-alive request costs no read stop and start: a client that
 * sends the next request early (pipelining) has it kept in `pending`, and
 * reading stops only then.
 */
#include "proxy/client.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "net/addr.h"
#include "proxy/exchange.h"
#include "proxy/flow.h"
#include "proxy/h2conn.h"
#include "proxy/wgen.h"
#include "config/gen.h"

#define LINGER_MS 2000

/* What an idle keep-alive connection costs is mostly this struct (issue 14:
 * at most 0.6 KiB each, nginx's level): what only a request needs goes in
 * struct lv_client_req. 568 bytes is a 576-byte malloc chunk on glibc. */
#if defined(__linux__) && defined(__x86_64__)
_Static_assert(sizeof(struct lv_client) <= 568, "struct lv_client grew: issue 14");
#endif

static void process(struct lv_client *c);
static void close_now(struct lv_client *c);
static const struct lv_downstream_ops downstream_ops;

static struct lv_client *of_sock(struct lv_sock *s)
{
    return lv_container_of(s, struct lv_client, sock);
}

static const struct lv_config *cfg_of(const struct lv_client *c)
{
    return c->w->wgen->gen->cfg;
}

/* Moves to state `to`: only along the arrows of client.h's diagram. */
static void set_state(struct lv_client *c, enum lv_client_state to)
{
    enum lv_client_state from = c->state;
    switch (to) {
    case LV_CL_HANDSHAKE: assert(!"a client starts in HANDSHAKE, never moves there"); break;
    case LV_CL_H2: assert(from == LV_CL_HANDSHAKE || from == LV_CL_IDLE); break;
    case LV_CL_IDLE: assert(from == LV_CL_HANDSHAKE || from == LV_CL_REQUEST); break;
    case LV_CL_REQUEST: assert(from == LV_CL_IDLE || from == LV_CL_TUNNEL); break;
    case LV_CL_TUNNEL: assert(from == LV_CL_REQUEST); break;
    case LV_CL_SHUTDOWN: assert(from == LV_CL_IDLE || from == LV_CL_REQUEST); break;
    case LV_CL_LINGER: assert(from == LV_CL_SHUTDOWN); break;
    case LV_CL_CLOSING: assert(from != LV_CL_CLOSING); break;
    }
    c->state = to;
}

/* --- the request part -------------------------------------------------------- */

/* Spare request parts a worker keeps: enough for the requests under way at
 * once in a busy worker; past it they go back to malloc. */
#define MAX_FREE_CREQS 256

static const struct lv_http_handler request_handler;

/* The connection's request part, taken when a request's bytes arrive. */
static struct lv_client_req *rq_get(struct lv_client *c)
{
    if (c->rq) return c->rq;
    struct lv_wctx *w = c->w;
    struct lv_client_req *rq = w->free_creqs;
    if (rq) {
        w->free_creqs = rq->next_free;
        w->nfree_creqs--;
    } else {
        rq = malloc(sizeof(*rq));
        if (rq == NULL) return NULL;
    }
    rq->next_free = NULL;
    lv_http_parser_init(&rq->parser, HTTP_REQUEST, &request_handler, c);
    rq->parser.pool = &w->env.bufs;
    rq->parser.max_target = (uint32_t)cfg_of(c)->limits.max_uri;
    c->rq = rq;
    return rq;
}

/* Gives the request part back: the connection is between requests (the
 * parser is at a message's start, so a fresh one parses the same) or ends. */
static void rq_put(struct lv_client *c)
{
    struct lv_client_req *rq = c->rq;
    if (rq == NULL) return;
    c->rq = NULL;
    struct lv_wctx *w = c->w;
    if (w->nfree_creqs >= MAX_FREE_CREQS || w->wgen == NULL) {
        free(rq);
        return;
    }
    rq->next_free = w->free_creqs;
    w->free_creqs = rq;
    w->nfree_creqs++;
}

void lv_client_free_list(struct lv_wctx *w)
{
    while (w->free_creqs) {
        struct lv_client_req *rq = w->free_creqs;
        w->free_creqs = rq->next_free;
        free(rq);
    }
    w->nfree_creqs = 0;
}

/* --- timer ------------------------------------------------------------------ */

/* On the worker's coarse wheel: restarted on every request, and a libuv
 * timer each (a heap operation per start and stop) cost more than the rest
 * of the request's bookkeeping. */
static void arm(struct lv_client *c, enum lv_client_timer mode, uint64_t ms)
{
    c->timer_mode = mode;
    if (mode == LV_CT_NONE)
        lv_sockenv_timer_stop(c->sock.env, &c->timer);
    else
        lv_sockenv_timer_start(c->sock.env, &c->timer, ms);
}

static void on_timer(struct lv_wheel_timer *t)
{
    struct lv_client *c = t->data;
    enum lv_client_timer mode = c->timer_mode;
    c->timer_mode = LV_CT_NONE;
    switch (mode) {
    case LV_CT_HEADER:
        if (c->ex == NULL) { /* connected and never said a word */
            close_now(c);
            return;
        }
        lv_exchange_fail(c->ex, LV_FAIL_HEADER_TIMEOUT);
        return;
    case LV_CT_BODY:
        if (c->ex) lv_exchange_fail(c->ex, LV_FAIL_BODY_TIMEOUT);
        return;
    case LV_CT_HANDSHAKE:
        LV_STAT_INC(c->w->stats.tls_handshake_failures);
        lv_log_ratelimited(LV_LOG_INFO, "client %s: TLS handshake timed out", c->ip);
        close_now(c);
        return;
    case LV_CT_SEND:
    case LV_CT_IDLE:
    case LV_CT_LINGER:
    case LV_CT_NONE: close_now(c); return;
    }
}

/* --- closing ---------------------------------------------------------------- */

static void on_handle_closed(struct lv_client *c)
{
    if (--c->handles_open > 0) return;
    if (c->pending) lv_buf_unref(c->pending);
    c->pending = NULL;
    rq_put(c);
    c->on_freed(c);
    free(c);
}

static void on_sock_closed(struct lv_sock *s)
{
    on_handle_closed(of_sock(s));
}

/* The exchange under way is over: it logs itself and goes. */
static void end_exchange(struct lv_client *c)
{
    struct lv_exchange *ex = c->ex;
    c->ex = NULL;
    if (c->rq) c->rq->parser.head = NULL;
    c->paused = false; /* back-pressure belonged to that exchange's body */
    lv_exchange_destroy(ex);
}

static void close_now(struct lv_client *c)
{
    if (c->state == LV_CL_CLOSING) return;
    set_state(c, LV_CL_CLOSING);
    if (c->ex) {
        lv_exchange_cancel(c->ex);
        end_exchange(c);
    }
    lv_sockenv_timer_stop(c->sock.env, &c->timer);
    lv_sock_close(&c->sock);
    if (c->h2) { /* issue 17: its memory counts as one more handle */
        struct lv_h2conn *h2 = c->h2;
        c->h2 = NULL;
        lv_h2conn_close(h2);
    }
}

void lv_client_abort(struct lv_client *c)
{
    close_now(c);
}

static void on_shutdown(struct lv_sock *s, int status)
{
    struct lv_client *c = of_sock(s);
    if (c->state != LV_CL_SHUTDOWN) return;
    if (status < 0 || c->peer_closed) {
        close_now(c);
        return;
    }
    /* Everything is written. Read and drop what the client still sends,
     * briefly, so that closing does not reset the connection under the
     * answer it has not read yet. */
    set_state(c, LV_CL_LINGER);
    lv_sock_read_start(&c->sock);
    arm(c, LV_CT_LINGER, LINGER_MS);
}

/* Shuts the write side once the answers are written. `linger`: then read
 * and drop input for a while before closing (not after a cut answer). */
static void close_gracefully(struct lv_client *c, bool linger)
{
    if (c->state != LV_CL_IDLE && c->state != LV_CL_REQUEST) return;
    set_state(c, LV_CL_SHUTDOWN);
    if (!linger) c->peer_closed = true; /* nothing more is read: close when written */
    if (c->pending) {
        lv_buf_unref(c->pending);
        c->pending = NULL;
    }
    lv_sock_read_stop(&c->sock);
    arm(c, LV_CT_SEND, cfg_of(c)->timeouts.idle);
    if (lv_sock_shutdown(&c->sock, on_shutdown) != 0) close_now(c);
}

void lv_client_drain(struct lv_client *c)
{
    if (c->state == LV_CL_H2) { /* issue 17: GOAWAY, streams under way finish */
        lv_h2conn_drain(c->h2);
        return;
    }
    if ((c->state == LV_CL_IDLE || c->state == LV_CL_HANDSHAKE) && c->pending == NULL) close_now(c);
}

/* --- parsing requests ---------------------------------------------------------- */

static int on_begin(struct lv_http_parser *p)
{
    struct lv_client *c = p->owner;
    struct lv_exchange *ex =
        lv_exchange_create(c->w, &downstream_ops, c, c->ip, c->sock.ssl != NULL);
    if (ex == NULL) {
        p->fail = LV_FAIL_INTERNAL;
        return -1;
    }
    c->ex = ex;
    c->nrequests++;
    set_state(c, LV_CL_REQUEST);
    /* Limits come from the generation this request runs on. */
    const struct lv_config *cfg = ex->cfg;
    p->head = lv_exchange_head(ex);
    p->max_target = (uint32_t)cfg->limits.max_uri;
    p->drop = cfg->headers.remove_request.items;
    p->ndrop = cfg->headers.remove_request.n;
    arm(c, LV_CT_HEADER, cfg->timeouts.client_header);
    return 0;
}

static int on_head(struct lv_http_parser *p)
{
    struct lv_client *c = p->owner;
    struct lv_exchange *ex = c->ex;
    const llhttp_t *ll = &p->ll;
    c->http10 = ll->http_major == 1 && ll->http_minor == 0;
    struct lv_req_framing f = {.keep_alive = llhttp_should_keep_alive(ll)};
    if (ll->flags & F_CHUNKED) {
        f.framing = LV_FRAME_CHUNKED;
    } else if (ll->flags & F_CONTENT_LENGTH) {
        f.framing = LV_FRAME_LENGTH;
        f.length = ll->content_length;
    }
    int rc = lv_exchange_on_head(ex, &f);
    if (rc == 0 && !lv_exchange_done(ex)) {
        bool body = f.framing == LV_FRAME_CHUNKED || (f.framing == LV_FRAME_LENGTH && f.length);
        if (body)
            arm(c, LV_CT_BODY, cfg_of(c)->timeouts.client_body);
        else
            arm(c, LV_CT_NONE, 0);
    }
    return rc;
}

static int on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    struct lv_client *c = p->owner;
    if (!c->paused && !lv_exchange_done(c->ex)) arm(c, LV_CT_BODY, cfg_of(c)->timeouts.client_body);
    return lv_exchange_on_body(c->ex, p->cur_buf, at, len);
}

static int on_complete(struct lv_http_parser *p)
{
    struct lv_client *c = p->owner;
    /* The body is all in: its back-pressure is over (the pause may have come
     * with the read that held the body's end). */
    c->paused = false;
    if (c->timer_mode == LV_CT_BODY || c->timer_mode == LV_CT_HEADER) arm(c, LV_CT_NONE, 0);
    lv_exchange_on_request_end(c->ex);
    /* One request at a time. After an upgrade request llhttp stops by
     * itself (HPE_PAUSED_UPGRADE): what follows may not be HTTP. */
    return p->ll.upgrade ? 0 : HPE_PAUSED;
}

static const struct lv_http_handler request_handler = {on_begin, on_head, on_body, on_complete};

/* Feeds pending bytes to the parser. Returns false when processing must
 * stop (the connection is closing). */
static bool parse_pending(struct lv_client *c)
{
    struct lv_buf *b = c->pending;
    size_t consumed = 0;
    struct lv_client_req *rq = rq_get(c);
    if (rq == NULL) {
        close_now(c);
        return false;
    }
    llhttp_errno_t err =
        lv_http_parser_execute(&rq->parser, b, b->data + c->pending_off, c->pending_len, &consumed);
    if (c->state == LV_CL_CLOSING) return false;
    if (c->pending == b) {
        c->pending_off += (uint32_t)consumed;
        c->pending_len -= (uint32_t)consumed;
        if (c->pending_len == 0 ||
            (err != HPE_OK && err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE)) {
            lv_buf_unref(b);
            c->pending = NULL;
        }
    }
    if (err == HPE_OK) return true;
    if (err == HPE_PAUSED) {
        llhttp_resume(&rq->parser.ll);
        return true;
    }
    if (err == HPE_PAUSED_UPGRADE) {
        c->upgrade_paused = true; /* resumed as HTTP unless a tunnel starts */
        return true;
    }
    c->parse_failed = true;
    struct lv_exchange *ex = c->ex;
    if (ex && lv_exchange_done(ex)) return true; /* the exchange answered and stopped us */
    enum lv_fail_kind kind = lv_http_parser_failure(&rq->parser, err);
    lv_debug("client %s: bad request: %s (%s)", c->ip, lv_fail_info(kind)->reason,
             llhttp_errno_name(err));
    if (ex == NULL) {
        ex = lv_exchange_create(c->w, &downstream_ops, c, c->ip, c->sock.ssl != NULL);
        if (ex == NULL) {
            close_now(c);
            return false;
        }
        c->ex = ex;
        set_state(c, LV_CL_REQUEST);
    }
    lv_exchange_fail(ex, kind);
    return true;
}

/* Answers handed to the socket but not yet written, each holding its
 * buffers: past the socket's backlog bounds no new request is started.
 * Without it a client pipelining requests levee answers itself (429,
 * /health) while reading slowly would make levee buffer answers without
 * limit. */
static bool write_backlog(const struct lv_client *c)
{
    return lv_sock_backlogged(&c->sock);
}

static void process(struct lv_client *c)
{
    if (c->in_process) return;
    c->in_process = true;
    while (c->state == LV_CL_IDLE || c->state == LV_CL_REQUEST) {
        const struct lv_config *cfg = cfg_of(c);
        struct lv_exchange *ex = c->ex;
        if (ex && lv_exchange_done(ex) &&
            (lv_exchange_request_complete(ex) || lv_exchange_end(ex) != LV_EXE_KEEP ||
             c->parse_failed)) {
            enum lv_ex_end end = lv_exchange_end(ex);
            bool close = end != LV_EXE_KEEP || c->close_after || c->w->draining ||
                         c->parse_failed || c->peer_closed;
            end_exchange(c);
            set_state(c, LV_CL_IDLE);
            c->close_after = false;
            if (c->upgrade_paused) { /* no tunnel after all: HTTP goes on */
                c->upgrade_paused = false;
                llhttp_resume_after_upgrade(&c->rq->parser.ll);
            }
            if (close) {
                close_gracefully(c, end != LV_EXE_ABORT);
                break;
            }
            continue;
        }
        if (ex && lv_exchange_request_complete(ex)) {
            /* Waiting for the answer: go on reading (a close is seen, and
             * no read stop and start per request), unless the next request
             * already waits in `pending` or the client shut its side. */
            if (c->pending || c->peer_closed)
                lv_sock_read_stop(&c->sock);
            else
                lv_sock_read_start(&c->sock);
            break;
        }
        if (c->parse_failed) break;
        if (ex == NULL && write_backlog(c)) {
            /* A pipelining client that does not read its answers: the next
             * request waits until they are written. */
            c->write_blocked = true;
            lv_sock_read_stop(&c->sock);
            if (c->timer_mode != LV_CT_SEND) arm(c, LV_CT_SEND, cfg->timeouts.idle);
            break;
        }
        if (c->pending == NULL || c->paused) {
            if (c->paused) {
                lv_sock_read_stop(&c->sock);
                if (c->timer_mode == LV_CT_BODY) arm(c, LV_CT_NONE, 0);
            } else {
                lv_sock_read_start(&c->sock);
                /* Between requests: the parser is at a message's start. */
                if (ex == NULL && !c->upgrade_paused) rq_put(c);
                if (ex == NULL && c->timer_mode != LV_CT_HEADER)
                    arm(c, LV_CT_IDLE, cfg->timeouts.idle);
                else if (ex && c->timer_mode == LV_CT_NONE && !lv_exchange_done(ex) &&
                         ex->req_state == LV_EXR_BODY)
                    arm(c, LV_CT_BODY, cfg->timeouts.client_body);
            }
            break;
        }
        if (!parse_pending(c)) break;
    }
    c->in_process = false;
}

/* --- HTTP/2 (issue 17) -------------------------------------------------------------- */

static void h2_close(void *owner)
{
    close_now(owner);
}

static void h2_freed(void *owner)
{
    on_handle_closed(owner);
}

static const struct lv_h2conn_ops h2_ops = {.close = h2_close, .freed = h2_freed};

/* The connection speaks HTTP/2 from here on: the socket's handlers go to
 * an HTTP/2 connection, which closes the client through h2_ops. */
static void start_h2(struct lv_client *c, struct lv_buf *b, size_t n)
{
    set_state(c, LV_CL_H2);
    arm(c, LV_CT_NONE, 0); /* the HTTP/2 connection times itself */
    c->handles_open++;
    c->h2 = lv_h2conn_start(c->w, &c->sock, c->ip, c->sock.ssl != NULL, b, b ? b->data : NULL, n,
                            &h2_ops, c);
    if (c->h2 == NULL) {
        c->handles_open--;
        close_now(c);
    }
}

/* The HTTP/2 connection preface (RFC 9113 §3.4), or the start of it. */
static bool h2_preface(const char *p, size_t n)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    return n > 0 && memcmp(p, preface, n < sizeof(preface) - 1 ? n : sizeof(preface) - 1) == 0;
}

/* --- I/O ------------------------------------------------------------------------ */

static void on_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct lv_client *c = of_sock(s);
    if (c->state == LV_CL_LINGER || c->state == LV_CL_SHUTDOWN) { /* drop input until EOF */
        if (nread < 0) close_now(c);
        return;
    }
    if (nread < 0) {
        /* A client that shut its side after a complete request still gets
         * its answer (then the connection closes); anything else ends it. */
        if (nread == UV_EOF && c->ex && lv_exchange_request_complete(c->ex) &&
            !lv_exchange_done(c->ex)) {
            c->peer_closed = true;
            lv_sock_read_stop(&c->sock);
            return;
        }
        close_now(c);
        return;
    }
    if (c->pending) {
        /* Reads are stopped while bytes are pending. */
        assert(!"a client with bytes pending is not read");
        close_now(c);
        return;
    }
    if (c->h2_prior && c->nrequests == 0 && c->ex == NULL && c->state == LV_CL_IDLE &&
        h2_preface(b->data, (size_t)nread)) {
        start_h2(c, b, (size_t)nread);
        return;
    }
    c->pending = lv_buf_ref(b);
    c->pending_off = 0;
    c->pending_len = (uint32_t)nread;
    process(c);
}

static void on_written(struct lv_sock *s, int status)
{
    struct lv_client *c = of_sock(s);
    if (status < 0) {
        close_now(c);
        return;
    }
    if (c->timer_mode == LV_CT_SEND) {
        if (s->write_pending > 0 || c->state == LV_CL_SHUTDOWN)
            arm(c, LV_CT_SEND, cfg_of(c)->timeouts.idle);
        else
            arm(c, LV_CT_NONE, 0);
    }
    if (c->ex) lv_exchange_on_drain(c->ex);
    if (c->write_blocked && !write_backlog(c)) {
        c->write_blocked = false;
        process(c);
    }
}

/* --- the downstream: writing answers ---------------------------------------------------- */

static int ds_head(void *d, const struct lv_answer *a)
{
    struct lv_client *c = d;
    enum lv_framing framing = LV_FRAME_NONE;
    if (a->body == LV_BODY_LENGTH)
        framing = LV_FRAME_LENGTH;
    else if (a->body == LV_BODY_STREAM) /* an HTTP/1.0 client cannot take chunks */
        framing = c->http10 ? LV_FRAME_CLOSE : LV_FRAME_CHUNKED;
    bool keep_alive =
        !a->must_close && framing != LV_FRAME_CLOSE && !c->w->draining && !c->peer_closed;
    if (a->status < 200) keep_alive = true; /* a 101: the connection becomes a tunnel */
    struct lv_resp_info info = {
        .status = a->status,
        .client_http10 = c->http10,
        .framing = framing,
        .content_length = a->length,
        .keep_alive = keep_alive,
        .extra = a->extra,
    };
    size_t need = lv_rewrite_response_size(a->head, &info);
    struct lv_buf *b = lv_buf_get_exact(&c->w->env.bufs, need);
    if (b == NULL || lv_rewrite_response(a->head, &info, b) != 0) {
        if (b) lv_buf_unref(b);
        return -1;
    }
    lv_sock_add(&c->sock, b->data, b->len, b);
    lv_buf_unref(b);
    lv_sock_flush_soon(&c->sock);
    c->resp_framing = a->head_only ? LV_FRAME_NONE : framing;
    if (!keep_alive) c->close_after = true;
    return 0;
}

static void ds_interim(void *d, const struct lv_head *h)
{
    struct lv_client *c = d;
    if (c->http10) return; /* HTTP/1.0 has no interim responses */
    struct lv_resp_info info = {.status = h->status, .framing = LV_FRAME_NONE, .keep_alive = true};
    size_t need = lv_rewrite_response_size(h, &info);
    struct lv_buf *b = lv_buf_get_exact(&c->w->env.bufs, need);
    if (b == NULL) return; /* an interim response is advice: the final one matters */
    if (lv_rewrite_response(h, &info, b) == 0) {
        lv_sock_add(&c->sock, b->data, b->len, b);
        lv_sock_flush_soon(&c->sock);
    }
    lv_buf_unref(b);
}

static void ds_send_continue(void *d)
{
    struct lv_client *c = d;
    if (c->http10) return;
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    lv_sock_add(&c->sock, cont, sizeof(cont) - 1, NULL);
    lv_sock_flush(&c->sock);
}

static int ds_body(void *d, struct lv_buf *b, const char *p, size_t len)
{
    struct lv_client *c = d;
    struct lv_sock *s = &c->sock;
    /* A piece small relative to its buffer (a backend trickling small
     * chunks) is copied: held by reference while a slow client reads, each
     * would keep a whole read buffer alive. */
    bool copy = (uint64_t)len * 2 < b->cap;
    if (c->resp_framing == LV_FRAME_CHUNKED) {
        char line[20];
        size_t n = lv_chunk_header(line, len);
        lv_sock_add_copy(s, line, n);
        if (copy) {
            lv_sock_add_copy(s, p, len);
            lv_sock_add_copy(s, "\r\n", 2); /* next to the copy: one iovec */
        } else {
            lv_sock_add(s, p, len, b);
            lv_sock_add(s, "\r\n", 2, NULL);
        }
    } else if (copy) {
        lv_sock_add_copy(s, p, len);
    } else {
        lv_sock_add(s, p, len, b);
    }
    lv_sock_flush_soon(s);
    /* The client does not keep up: it has timeouts.idle to make progress. */
    if (lv_sock_queued(s) > LV_FLOW_HIGH && c->timer_mode != LV_CT_SEND)
        arm(c, LV_CT_SEND, cfg_of(c)->timeouts.idle);
    return 0;
}

static void ds_end(void *d)
{
    struct lv_client *c = d;
    if (c->resp_framing == LV_FRAME_CHUNKED) lv_sock_add(&c->sock, "0\r\n\r\n", 5, NULL);
    lv_sock_flush_soon(&c->sock);
}

static size_t ds_backlog(void *d)
{
    struct lv_client *c = d;
    return lv_sock_queued(&c->sock);
}

static void ds_pause_body(void *d, bool pause)
{
    struct lv_client *c = d;
    if (pause == c->paused) return;
    c->paused = pause;
    if (pause)
        lv_sock_read_stop(&c->sock);
    else
        process(c);
}

/* Has the client closed its connection? Checked without reading (a peek),
 * before levee spends a retry on a request: a client that half-closed
 * after its request counts as gone too. */
static bool ds_gone(void *d)
{
    struct lv_client *c = d;
    uv_os_fd_t fd;
    if (c->peer_closed || c->state == LV_CL_CLOSING ||
        uv_fileno((uv_handle_t *)&c->sock.tcp, &fd) != 0)
        return true;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static struct lv_sock *ds_take_stream(void *d, struct lv_buf **b, const char **p, size_t *n)
{
    struct lv_client *c = d;
    set_state(c, LV_CL_TUNNEL);
    arm(c, LV_CT_NONE, 0); /* the tunnel times itself */
    *b = c->pending;       /* bytes the client sent right behind its upgrade request */
    *p = c->pending ? c->pending->data + c->pending_off : NULL;
    *n = c->pending ? c->pending_len : 0;
    c->pending = NULL;
    return &c->sock;
}

static void ds_done(void *d)
{
    struct lv_client *c = d;
    if (c->state == LV_CL_TUNNEL) set_state(c, LV_CL_REQUEST); /* the tunnel is over */
    if (c->timer_mode == LV_CT_HEADER || c->timer_mode == LV_CT_BODY) arm(c, LV_CT_NONE, 0);
    process(c);
}

static const struct lv_downstream_ops downstream_ops = {
    .head = ds_head,
    .interim = ds_interim,
    .send_continue = ds_send_continue,
    .body = ds_body,
    .end = ds_end,
    .backlog = ds_backlog,
    .pause_body = ds_pause_body,
    .gone = ds_gone,
    .take_stream = ds_take_stream,
    .done = ds_done,
};

/* --- accepting --------------------------------------------------------------------- */

static void on_handshake(struct lv_sock *s, int status)
{
    struct lv_client *c = of_sock(s);
    if (status != 0) {
        /* Any client can fail handshakes as fast as it can connect:
         * counted exactly (levee_tls_handshakes_total), logged at most
         * once a second. */
        LV_STAT_INC(c->w->stats.tls_handshake_failures);
        lv_log_ratelimited(LV_LOG_INFO, "client %s: TLS handshake failed: %s", c->ip,
                           lv_sock_tls_why(s));
        close_now(c);
        return;
    }
    LV_STAT_INC(c->w->stats.tls_handshakes);
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(s->ssl, &alpn, &alpn_len);
    if (alpn_len == 2 && memcmp(alpn, "h2", 2) == 0) {
        start_h2(c, NULL, 0);
        return;
    }
    set_state(c, LV_CL_IDLE);
    arm(c, LV_CT_HEADER, cfg_of(c)->timeouts.client_header);
}

struct lv_client *lv_client_accept(struct lv_wctx *w, int fd, SSL_CTX *tls, uint64_t handshake_ms,
                                   bool h2_prior, void (*on_freed)(struct lv_client *c))
{
    struct lv_client *c = calloc(1, sizeof(*c));
    if (c == NULL || lv_sock_init(&w->env, &c->sock) != 0) {
        free(c);
        close(fd);
        return NULL;
    }
    c->w = w;
    c->on_freed = on_freed;
    c->h2_prior = h2_prior && tls == NULL;
    c->state = LV_CL_HANDSHAKE;
    c->sock.on_read = on_read;
    c->sock.on_written = on_written;
    c->sock.on_close = on_sock_closed;
    c->timer.cb = on_timer;
    c->timer.data = c;
    c->handles_open = 1;
    lv_list_init(&c->link);
    if (uv_tcp_open(&c->sock.tcp, fd) != 0) {
        close(fd); /* not the handle's: closing it closes nothing */
        close_now(c);
        return c;
    }
    uv_tcp_nodelay(&c->sock.tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->sock.tcp, (struct sockaddr *)&ss, &len) == 0)
        lv_addr_ip((struct sockaddr *)&ss, c->ip, sizeof(c->ip));
    if (tls) {
        c->sock.on_handshake = on_handshake;
        if (lv_sock_tls_start(&c->sock, tls, false, NULL, NULL, NULL, NULL) != 0) {
            close_now(c);
            return c;
        }
        arm(c, LV_CT_HANDSHAKE, handshake_ms);
    } else {
        set_state(c, LV_CL_IDLE);
        arm(c, LV_CT_HEADER, cfg_of(c)->timeouts.client_header);
    }
    lv_sock_read_start(&c->sock);
    return c;
}
