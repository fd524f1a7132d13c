/*
 * Client connections. Requests are parsed as bytes arrive and run one at a
 * time: when a request is complete the parser pauses, and bytes of the next
 * (pipelined) request stay in `pending` until the response is out, so that
 * responses leave in order. An idle connection holds no buffer.
 *
 * One timer serves every phase, each with its own meaning:
 *   idle    between requests (timeouts.idle): close quietly
 *   header  from the first byte of a head (timeouts.client_header, total,
 *           so trickling one byte at a time does not extend it): 408
 *   body    between two reads of the body (timeouts.client_body): 408
 *   send    the client does not read what levee writes (timeouts.idle)
 *   linger  after the final response, before closing (drain its input)
 *   handshake  a TLS client's handshake (tls.handshake_timeout)
 *   tunnel  no byte either way in an upgrade tunnel (timeouts.tunnel)
 */
#include "proxy/client.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/log.h"
#include "net/addr.h"
#include "proxy/accesslog.h"
#include "proxy/exchange.h"
#include "proxy/server.h"
#include "proxy/tunnel.h"

#define LINGER_MS 2000

enum timer_mode { T_NONE, T_IDLE, T_HEADER, T_BODY, T_SEND, T_LINGER, T_HANDSHAKE, T_TUNNEL };

static void process(struct lv_client *c);
static void close_now(struct lv_client *c);
static void close_gracefully(struct lv_client *c, bool linger);

static struct lv_client *of_sock(struct lv_sock *s)
{
    return (struct lv_client *)(void *)((char *)s - offsetof(struct lv_client, sock));
}

/* --- timer ------------------------------------------------------------------ */

static void on_timer(uv_timer_t *t);

static void arm(struct lv_client *c, enum timer_mode mode, uint64_t ms)
{
    c->timer_mode = (uint8_t)mode;
    if (mode == T_NONE)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

void lv_client_arm_tunnel(struct lv_client *c)
{
    if (!c->closing && c->ex) arm(c, T_TUNNEL, c->ex->cfg->timeouts.tunnel);
}

void lv_client_arm_send_timeout(struct lv_client *c)
{
    if (!c->closing) arm(c, T_SEND, c->srv->cfg->timeouts.idle);
}

static void on_timer(uv_timer_t *t)
{
    struct lv_client *c = t->data;
    enum timer_mode mode = (enum timer_mode)c->timer_mode;
    c->timer_mode = T_NONE;
    struct lv_exchange *ex = c->ex;
    switch (mode) {
    case T_HEADER:
        if (ex == NULL) { /* connected and never said a word */
            close_now(c);
            return;
        }
        lv_exchange_fail(ex, LV_FAIL_HEADER_TIMEOUT);
        return;
    case T_BODY:
        if (ex) lv_exchange_fail(ex, LV_FAIL_BODY_TIMEOUT);
        return;
    case T_SEND: lv_client_abort(c); return;
    case T_TUNNEL: lv_tunnel_idle(c); return;
    case T_HANDSHAKE:
        LV_STAT_INC(c->srv->stats.tls_handshake_failures);
        lv_log_ratelimited(LV_LOG_INFO, "client %s: TLS handshake timed out", c->ip);
        close_now(c);
        return;
    case T_IDLE:
    case T_LINGER:
    case T_NONE: close_now(c); return;
    }
}

/* --- closing ---------------------------------------------------------------- */

static void on_handle_closed(struct lv_client *c)
{
    if (--c->handles_open > 0) return;
    struct lv_server *srv = c->srv;
    if (c->pending) lv_buf_unref(c->pending);
    c->pending = NULL;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    srv->nclients--;
    LV_STAT_ADD(srv->stats.client_connections, (uint64_t)-1);
    free(c);
    lv_server_conn_freed(srv);
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

static void end_exchange(struct lv_client *c)
{
    struct lv_exchange *ex = c->ex;
    c->ex = NULL;
    c->parser.head = NULL;
    c->paused = false; /* back-pressure belonged to that exchange's body */
    if (ex->head_done || ex->fail != LV_FAIL_NONE) {
        lv_exchange_account(ex);
        lv_accesslog_write(ex->wg->alog, ex);
    }
    lv_exchange_destroy(ex);
}

static void close_now(struct lv_client *c)
{
    if (c->closing) return;
    c->closing = true;
    if (c->ex) {
        lv_exchange_cancel(c->ex);
        end_exchange(c);
    }
    uv_timer_stop(&c->timer);
    lv_sock_close(&c->sock);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void lv_client_abort(struct lv_client *c)
{
    close_now(c);
}

bool lv_client_gone(struct lv_client *c)
{
    uv_os_fd_t fd;
    if (c->closing || uv_fileno((uv_handle_t *)&c->sock.tcp, &fd) != 0) return true;
    char byte;
    ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static void on_shutdown(struct lv_sock *s, int status)
{
    struct lv_client *c = of_sock(s);
    if (c->closing) return;
    if (status < 0 || !c->lingering) {
        close_now(c);
        return;
    }
    /* Everything is written. Read and drop what the client still sends,
     * briefly, so that closing does not reset the connection under the
     * response it has not read yet. */
    lv_sock_read_start(&c->sock);
    arm(c, T_LINGER, LINGER_MS);
}

static void close_gracefully(struct lv_client *c, bool linger)
{
    if (c->closing || c->shutting_down) return;
    c->shutting_down = true;
    c->lingering = linger;
    if (c->pending) {
        lv_buf_unref(c->pending);
        c->pending = NULL;
    }
    lv_sock_read_stop(&c->sock);
    arm(c, T_SEND, c->srv->cfg->timeouts.idle);
    if (lv_sock_shutdown(&c->sock, on_shutdown) != 0) close_now(c);
}

void lv_client_drain(struct lv_client *c)
{
    if (c->ex == NULL && c->pending == NULL && !c->shutting_down) close_now(c);
}

/* --- parsing requests ---------------------------------------------------------- */

static int on_begin(struct lv_http_parser *p)
{
    struct lv_client *c = p->owner;
    struct lv_exchange *ex = lv_exchange_create(c);
    if (ex == NULL) {
        p->fail = LV_FAIL_INTERNAL;
        return -1;
    }
    c->ex = ex;
    /* Limits come from the generation this request runs on. */
    const struct lv_config *cfg = ex->cfg;
    p->head = &ex->req;
    p->max_target = (uint32_t)cfg->limits.max_uri;
    p->drop = cfg->headers.remove_request.items;
    p->ndrop = cfg->headers.remove_request.n;
    arm(c, T_HEADER, cfg->timeouts.client_header);
    return 0;
}

static int on_head(struct lv_http_parser *p)
{
    struct lv_client *c = p->owner;
    struct lv_exchange *ex = c->ex;
    ex->head_done = true;
    int rc = lv_exchange_on_head(ex);
    if (rc == 0 && !ex->done) {
        if (ex->has_body)
            arm(c, T_BODY, c->srv->cfg->timeouts.client_body);
        else
            arm(c, T_NONE, 0);
    }
    return rc;
}

static int on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    struct lv_client *c = p->owner;
    if (!c->paused && !c->ex->done) arm(c, T_BODY, c->srv->cfg->timeouts.client_body);
    return lv_exchange_on_body(c->ex, p->cur_buf, at, len);
}

static int on_complete(struct lv_http_parser *p)
{
    struct lv_client *c = p->owner;
    /* The body is all in: its back-pressure is over (the pause may have
     * come with the read that held the body's end). Reading stays stopped
     * until the response is out, for the exchange is not done. */
    c->paused = false;
    if (c->timer_mode == T_BODY || c->timer_mode == T_HEADER) arm(c, T_NONE, 0);
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
    llhttp_errno_t err =
        lv_http_parser_execute(&c->parser, b, b->data + c->pending_off, c->pending_len, &consumed);
    if (c->closing) return false;
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
        llhttp_resume(&c->parser.ll);
        return true;
    }
    if (err == HPE_PAUSED_UPGRADE) {
        c->upgrade_paused = true; /* resumed as HTTP unless a tunnel starts */
        return true;
    }
    c->parse_dead = true;
    struct lv_exchange *ex = c->ex;
    if (ex && ex->done) return true; /* the exchange answered and stopped us */
    enum lv_fail_kind kind = lv_http_parser_failure(&c->parser, err);
    lv_debug("client %s: bad request: %s (%s)", c->ip, lv_fail_info(kind)->reason,
             llhttp_errno_name(err));
    if (ex == NULL) {
        ex = lv_exchange_create(c);
        if (ex == NULL) {
            close_now(c);
            return false;
        }
        c->ex = ex;
    }
    lv_exchange_fail(ex, kind);
    return true;
}

/* Responses handed to the socket but not yet written, each holding its
 * buffers: past either bound, no new request is started. Without it a client
 * pipelining requests levee answers itself (429, /health) while reading
 * slowly would make levee buffer answers without limit. */
#define BACKLOG_MAX_WRITES 8
#define BACKLOG_MAX_BYTES (64 * 1024)

static bool write_backlog(const struct lv_client *c)
{
    return c->sock.writes_pending >= BACKLOG_MAX_WRITES ||
           c->sock.write_pending > BACKLOG_MAX_BYTES;
}

static void process(struct lv_client *c)
{
    if (c->in_process || c->tunnel) return;
    c->in_process = true;
    const struct lv_config *cfg = c->srv->cfg;
    while (!c->closing && !c->shutting_down) {
        struct lv_exchange *ex = c->ex;
        if (ex && ex->done && (ex->req_complete || ex->close_after || c->parse_dead)) {
            bool close = ex->close_after || ex->aborted || c->srv->draining || c->parse_dead;
            bool linger = !ex->aborted;
            end_exchange(c);
            if (c->upgrade_paused) { /* no tunnel after all: HTTP goes on */
                c->upgrade_paused = false;
                llhttp_resume_after_upgrade(&c->parser.ll);
            }
            if (close) {
                close_gracefully(c, linger);
                break;
            }
            continue;
        }
        if (ex && ex->req_complete) { /* waiting for the response */
            lv_sock_read_stop(&c->sock);
            break;
        }
        if (c->parse_dead) break;
        if (ex == NULL && write_backlog(c)) {
            /* A pipelining client that does not read its answers: the next
             * request waits until they are written (see write_backlog). */
            c->write_blocked = true;
            lv_sock_read_stop(&c->sock);
            if (c->timer_mode != T_SEND) arm(c, T_SEND, cfg->timeouts.idle);
            break;
        }
        if (c->pending == NULL || c->paused) {
            if (c->paused) {
                lv_sock_read_stop(&c->sock);
                if (c->timer_mode == T_BODY) arm(c, T_NONE, 0);
            } else {
                lv_sock_read_start(&c->sock);
                if (ex == NULL && c->timer_mode != T_HEADER)
                    arm(c, T_IDLE, cfg->timeouts.idle);
                else if (ex && ex->head_done && c->timer_mode == T_NONE && !ex->done)
                    arm(c, T_BODY, cfg->timeouts.client_body);
            }
            break;
        }
        if (!parse_pending(c)) break;
    }
    c->in_process = false;
}

/* --- I/O ------------------------------------------------------------------------ */

static void on_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct lv_client *c = of_sock(s);
    if (c->tunnel) {
        lv_tunnel_client_read(c, b, nread);
        return;
    }
    if (c->shutting_down) { /* lingering: drop input until EOF */
        if (nread < 0) close_now(c);
        return;
    }
    if (nread < 0) {
        close_now(c);
        return;
    }
    if (c->pending) {
        /* Reads are stopped while bytes are pending; this cannot happen. */
        close_now(c);
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
    if (c->tunnel) {
        lv_tunnel_client_written(c);
        return;
    }
    if (c->timer_mode == T_SEND) {
        if (s->write_pending > 0 || c->shutting_down)
            arm(c, T_SEND, c->srv->cfg->timeouts.idle);
        else
            arm(c, T_NONE, 0);
    }
    if (c->ex) lv_exchange_on_client_drain(c->ex);
    if (c->write_blocked && !write_backlog(c)) {
        c->write_blocked = false;
        process(c);
    }
}

void lv_client_exchange_done(struct lv_client *c)
{
    if (c->timer_mode == T_HEADER || c->timer_mode == T_BODY) arm(c, T_NONE, 0);
    process(c);
}

void lv_client_pause(struct lv_client *c)
{
    if (c->paused) return;
    c->paused = true;
    lv_sock_read_stop(&c->sock);
}

void lv_client_resume(struct lv_client *c)
{
    if (!c->paused) return;
    c->paused = false;
    process(c);
}

static void on_handshake(struct lv_sock *s, int status)
{
    struct lv_client *c = of_sock(s);
    if (status != 0) {
        /* Any client can fail handshakes as fast as it can connect:
         * counted exactly (levee_tls_handshakes_total), logged at most
         * once a second. */
        LV_STAT_INC(c->srv->stats.tls_handshake_failures);
        lv_log_ratelimited(LV_LOG_INFO, "client %s: TLS handshake failed: %s", c->ip, s->tls_why);
        close_now(c);
        return;
    }
    LV_STAT_INC(c->srv->stats.tls_handshakes);
    arm(c, T_HEADER, c->srv->cfg->timeouts.client_header);
}

void lv_client_accept(struct lv_server *srv, struct lv_listener *ls, int fd)
{
    struct lv_client *c = calloc(1, sizeof(*c));
    if (c == NULL || lv_sock_init(&srv->env, &c->sock) != 0) {
        free(c);
        close(fd);
        lv_server_conn_freed(srv);
        return;
    }
    c->srv = srv;
    c->sock.on_read = on_read;
    c->sock.on_written = on_written;
    c->sock.on_close = on_sock_closed;
    uv_timer_init(&srv->w.loop, &c->timer);
    c->timer.data = c;
    c->handles_open = 2;
    c->next = srv->clients;
    if (srv->clients) srv->clients->prev = c;
    srv->clients = c;
    srv->nclients++;
    LV_STAT_INC(srv->stats.connections_accepted);
    LV_STAT_INC(srv->stats.client_connections);
    if (uv_tcp_open(&c->sock.tcp, fd) != 0) {
        close(fd); /* not the handle's: closing it closes nothing */
        close_now(c);
        return;
    }
    uv_tcp_nodelay(&c->sock.tcp, 1);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->sock.tcp, (struct sockaddr *)&ss, &len) == 0)
        lv_addr_ip((struct sockaddr *)&ss, c->ip, sizeof(c->ip));
    lv_http_parser_init(&c->parser, HTTP_REQUEST, &request_handler, c);
    c->parser.pool = &srv->env.bufs;
    c->parser.max_target = (uint32_t)srv->cfg->limits.max_uri;
    if (ls->tls) {
        c->sock.on_handshake = on_handshake;
        if (lv_sock_tls_start(&c->sock, ls->tls, false, NULL, NULL, NULL, NULL) != 0) {
            close_now(c);
            return;
        }
        arm(c, T_HANDSHAKE, ls->handshake_ms);
    } else {
        arm(c, T_HEADER, srv->cfg->timeouts.client_header);
    }
    lv_sock_read_start(&c->sock);
}
