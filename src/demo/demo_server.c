/* Workers and connections of the demo backend. Each connection parses requests with llhttp
 * and answers them strictly in order: while one request waits (latency, /delay), streams a
 * body, or must be followed by a close, the parser is paused, reading stops and any input
 * already received is kept for later. Immediate answers of pipelined requests are collected
 * in one buffer and leave in one uv_write; a second buffer takes new answers while the first
 * is being written. A connection's memory is freed in the close callback of its last handle.
 */
#include "demo/demo_server.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "demo/routes.h"

#define HEAD_MAX (64 * 1024)   /* request target and headers, with 4 bytes per item */
#define OUT_HIGH (256 * 1024)  /* stop parsing pipelined requests beyond this backlog */
#define OUT_CAP (1024 * 1024)  /* one answer (an /echo of a full head) always fits */
#define PEND_CAP (1024 * 1024) /* input waiting for the parser */
#define LINGER_MS 2000         /* after our FIN, how long we drain the peer's input */
#define NO_ITEM SIZE_MAX

enum conn_state {
    C_READY,       /* parsing; answers go to the output buffer */
    C_DELAY,       /* the timer runs, then the request is answered */
    C_STREAM,      /* writing a generated body, one 64 KiB step at a time */
    C_HUNG,        /* a request will never be answered; input is read and dropped */
    C_DRAIN_CLOSE, /* write what is buffered, then shut down and linger */
    C_DRAIN_RESET, /* write what is buffered, then reset */
    C_LINGER,      /* FIN sent; drop input until the peer closes or the timer fires */
    C_CLOSED,
};

struct lv_demo_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t wreq, sreq; /* output buffer write; body stream write */
    uv_shutdown_t sdreq;
    llhttp_t parser;
    struct lv_demo_worker *w;
    enum conn_state state;
    int handles; /* still open; the memory goes with the last */
    unsigned writing : 1, swriting : 1, reading : 1, paused : 1, eof : 1, too_large : 1;
    uint64_t nreq;
    struct lv_demo_req req;
    struct lv_demo_buf head; /* the request being parsed: target, then header items */
    size_t item;             /* offset of the open item's length, or NO_ITEM */
    struct lv_demo_buf out[2];
    unsigned cur;            /* out[cur] collects answers; out[!cur] may be in flight */
    struct lv_demo_buf pend; /* input received while the parser was paused */
    size_t pend_off;
    uint64_t chunk_left; /* of the chunk being streamed */
    char chunk_line[20];
};

static void advance(struct lv_demo_conn *c);

static void on_closed(uv_handle_t *h)
{
    struct lv_demo_conn *c = h->data;
    if (--c->handles) return;
    lv_demo_buf_dispose(&c->head);
    lv_demo_buf_dispose(&c->out[0]);
    lv_demo_buf_dispose(&c->out[1]);
    lv_demo_buf_dispose(&c->pend);
    free(c);
}

/* Closes at once; reset sends RST instead of FIN. Pending writes are cancelled. */
static void conn_close(struct lv_demo_conn *c, int reset)
{
    if (c->state == C_CLOSED) return;
    c->state = C_CLOSED;
    atomic_fetch_sub_explicit(&c->w->open, 1, memory_order_relaxed);
    if (!reset || uv_tcp_close_reset(&c->tcp, on_closed) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_closed);
    uv_close((uv_handle_t *)&c->timer, on_closed);
}

/* --- request parsing ---------------------------------------------------------------------- */

/* Appends to the open item of the head, opening one if needed: llhttp may deliver a target,
 * name or value in several pieces (split reads), or none at all (an empty value). */
static int on_data(llhttp_t *p, const char *at, size_t n)
{
    static const char zero[4];
    struct lv_demo_conn *c = p->data;
    if (c->item == NO_ITEM) {
        c->item = c->head.len;
        lv_demo_buf_add(&c->head, zero, 4);
    }
    if (lv_demo_buf_add(&c->head, at, n)) {
        c->too_large = 1;
        return -1;
    }
    return 0;
}

/* Closes the open item by writing its length in front of it. */
static int on_item_end(llhttp_t *p)
{
    struct lv_demo_conn *c = p->data;
    if (on_data(p, NULL, 0)) return -1;
    uint32_t len = (uint32_t)(c->head.len - c->item - 4);
    memcpy(c->head.data + c->item, &len, 4);
    c->item = NO_ITEM;
    return 0;
}

/* Points the request at the head buffer, which may have moved since the last call. */
static void req_point(struct lv_demo_conn *c)
{
    uint32_t tlen;
    memcpy(&tlen, c->head.data, 4);
    c->req.target = c->head.data + 4;
    c->req.target_len = tlen;
    c->req.headers = c->req.target + tlen;
    c->req.headers_len = c->head.len - 4 - tlen;
}

static int on_message_begin(llhttp_t *p)
{
    struct lv_demo_conn *c = p->data;
    lv_demo_buf_reset(&c->head);
    c->item = NO_ITEM;
    memset(&c->req, 0, sizeof(c->req));
    c->req.body_hash = LV_DEMO_FNV_BASIS;
    return 0;
}

static int on_url_complete(llhttp_t *p)
{
    struct lv_demo_conn *c = p->data;
    if (on_item_end(p)) return -1;
    req_point(c);
    c->req.route = lv_demo_route_find(c->req.target, c->req.target_len);
    return 0;
}

static void flush(struct lv_demo_conn *c);

static int on_headers_complete(llhttp_t *p)
{
    struct lv_demo_conn *c = p->data;
    req_point(c);
    int body = (p->flags & F_CHUNKED) || p->content_length > 0;
    if (body && p->http_major == 1 && p->http_minor == 1 && lv_demo_req_expects_continue(&c->req)) {
        if (lv_demo_buf_str(&c->out[c->cur], "HTTP/1.1 100 Continue\r\n\r\n")) return -1;
        flush(c);
    }
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct lv_demo_conn *c = p->data;
    c->req.body_len += n;
    if (c->req.route != LV_DEMO_ECHO && c->req.route != LV_DEMO_UPLOAD) return 0;
    uint64_t h = c->req.body_hash;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)at[i]) * LV_DEMO_FNV_PRIME;
    c->req.body_hash = h;
    return 0;
}

/* Answers the planned request now: appends to the output and picks the next state. */
static void answer(struct lv_demo_conn *c)
{
    if (c->req.action == LV_DEMO_RESET) {
        c->state = C_DRAIN_RESET;
        return;
    }
    if (lv_demo_route_respond(c->w, &c->req, &c->out[c->cur])) {
        conn_close(c, 0);
        return;
    }
    c->chunk_left = 0;
    c->state = c->req.stream_left ? C_STREAM : c->req.close ? C_DRAIN_CLOSE : C_READY;
}

static void on_timer(uv_timer_t *t)
{
    struct lv_demo_conn *c = t->data;
    if (c->state == C_LINGER) {
        conn_close(c, 0);
    } else if (c->state == C_DELAY) {
        answer(c);
        advance(c);
    }
}

static int on_message_complete(llhttp_t *p)
{
    struct lv_demo_conn *c = p->data;
    struct lv_demo_req *r = &c->req;
    req_point(c); /* trailers may have moved the head */
    r->method = p->method;
    r->http_minor = p->http_minor;
    /* After an upgrade request the bytes that follow are not HTTP: answer, then close. */
    r->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
    r->conn_requests = ++c->nreq;
    if (r->route != LV_DEMO_STATS)
        atomic_fetch_add_explicit(&c->w->requests, 1, memory_order_relaxed);
    lv_demo_route_plan(c->w, r);
    if (r->action == LV_DEMO_HANG) {
        c->state = C_HUNG;
    } else if (r->delay_ms) {
        c->state = C_DELAY;
        uv_timer_start(&c->timer, on_timer, r->delay_ms, 0);
    } else {
        answer(c);
    }
    return c->state == C_READY && c->out[c->cur].len < OUT_HIGH ? 0 : HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_data,
    .on_url_complete = on_url_complete,
    .on_header_field = on_data,
    .on_header_field_complete = on_item_end,
    .on_header_value = on_data,
    .on_header_value_complete = on_item_end,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* Runs the parser; returns the bytes consumed, all of them unless it paused. A malformed
 * request is answered with 400 (431 for an oversized head) and the connection closes. */
static size_t parse(struct lv_demo_conn *c, const char *data, size_t n)
{
    if (c->paused) llhttp_resume(&c->parser);
    c->paused = 0;
    llhttp_errno_t err = llhttp_execute(&c->parser, data, n);
    if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
        c->paused = 1;
        return (size_t)(llhttp_get_error_pos(&c->parser) - data);
    }
    if (err != HPE_OK && c->state != C_CLOSED) {
        lv_demo_route_reject(c->w, &c->out[c->cur], c->too_large ? 431 : 400);
        c->state = C_DRAIN_CLOSE;
    }
    return n;
}

/* Takes input: parses it if the parser may run, keeps it if it will run later. */
static void feed(struct lv_demo_conn *c, const char *data, size_t n)
{
    if (c->state == C_READY && c->pend_off == c->pend.len) {
        size_t used = parse(c, data, n);
        data += used;
        n -= used;
    }
    if (n == 0 || (c->state != C_READY && c->state != C_DELAY && c->state != C_STREAM)) return;
    if (c->pend_off) {
        memmove(c->pend.data, c->pend.data + c->pend_off, c->pend.len - c->pend_off);
        c->pend.len -= c->pend_off;
        c->pend_off = 0;
    }
    if (lv_demo_buf_add(&c->pend, data, n)) conn_close(c, 0);
}

/* --- output ------------------------------------------------------------------------------- */

static void on_write(uv_write_t *req, int status)
{
    struct lv_demo_conn *c = req->handle->data;
    c->writing = 0;
    lv_demo_buf_reset(&c->out[c->cur ^ 1]);
    if (status < 0)
        conn_close(c, 0);
    else
        advance(c);
}

static void flush(struct lv_demo_conn *c)
{
    struct lv_demo_buf *b = &c->out[c->cur];
    if (c->writing || b->len == 0 || c->state == C_CLOSED) return;
    uv_buf_t ub = uv_buf_init(b->data, (unsigned)b->len);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &ub, 1, on_write)) {
        conn_close(c, 0);
        return;
    }
    c->writing = 1;
    c->cur ^= 1;
}

static void on_stream_write(uv_write_t *req, int status)
{
    struct lv_demo_conn *c = req->handle->data;
    c->swriting = 0;
    if (status < 0)
        conn_close(c, 0);
    else
        advance(c);
}

/* Writes the next piece of a generated body: at most 64 KiB of data, framed when chunked.
 * The next piece waits for this write's callback, so memory stays flat for any size. */
static void stream_step(struct lv_demo_conn *c)
{
    struct lv_demo_req *r = &c->req;
    uv_buf_t b[3];
    unsigned n = 0;
    if (r->stream_chunk && c->chunk_left == 0) {
        c->chunk_left = r->stream_chunk < r->stream_left ? r->stream_chunk : r->stream_left;
        struct lv_demo_buf line = {.data = c->chunk_line, .size = 20, .cap = 20};
        lv_demo_buf_num(&line, c->chunk_left, 16, 1);
        lv_demo_buf_add(&line, "\r\n", 2);
        b[n++] = uv_buf_init(c->chunk_line, (unsigned)line.len);
    }
    uint64_t span = r->stream_chunk ? c->chunk_left : r->stream_left;
    size_t len = span < LV_DEMO_FILL ? (size_t)span : LV_DEMO_FILL;
    int last = len == r->stream_left;
    if (len - last) b[n++] = uv_buf_init((char *)lv_demo_fill, (unsigned)(len - last));
    r->stream_left -= len;
    if (r->stream_chunk) c->chunk_left -= len;
    if (last)
        b[n++] = r->stream_chunk ? uv_buf_init("\n\r\n0\r\n\r\n", 8) : uv_buf_init("\n", 1);
    else if (r->stream_chunk && c->chunk_left == 0)
        b[n++] = uv_buf_init("\r\n", 2);
    if (uv_write(&c->sreq, (uv_stream_t *)&c->tcp, b, n, on_stream_write)) {
        conn_close(c, 0);
        return;
    }
    c->swriting = 1;
}

/* --- connection life ---------------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct lv_demo_conn *c = h->data;
    (void)hint;
    *buf = uv_buf_init(c->w->rbuf, sizeof(c->w->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct lv_demo_conn *c = s->data;
    if (nread < 0) {
        if (nread != UV_EOF || c->state == C_HUNG || c->state == C_LINGER) {
            conn_close(c, 0);
            return;
        }
        c->eof = 1; /* a half-close: answer what was asked, then close */
    } else if (nread > 0) {
        feed(c, buf->base, (size_t)nread);
    }
    advance(c);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct lv_demo_conn *c = req->handle->data;
    if (status < 0 || c->eof) conn_close(c, 0);
}

/* Moves the connection on after any event, then reads only if input can be used. */
static void advance(struct lv_demo_conn *c)
{
    for (;;) {
        flush(c);
        int idle = !c->writing && !c->swriting && c->out[c->cur].len == 0;
        switch (c->state) {
        case C_READY:
            if (c->pend_off < c->pend.len && c->out[c->cur].len < OUT_HIGH) {
                c->pend_off += parse(c, c->pend.data + c->pend_off, c->pend.len - c->pend_off);
                if (c->pend_off == c->pend.len) c->pend_off = c->pend.len = 0;
                continue;
            }
            if (c->eof && c->pend_off == c->pend.len) {
                c->state = C_DRAIN_CLOSE;
                continue;
            }
            break;
        case C_STREAM:
            if (c->swriting) break;
            if (c->req.stream_left) {
                stream_step(c);
                continue;
            }
            c->state = c->req.close ? C_DRAIN_CLOSE : C_READY;
            continue;
        case C_DRAIN_CLOSE:
            if (!idle) break;
            if (uv_shutdown(&c->sdreq, (uv_stream_t *)&c->tcp, on_shutdown)) {
                conn_close(c, 0);
                return;
            }
            c->state = C_LINGER;
            uv_timer_start(&c->timer, on_timer, LINGER_MS, 0);
            break;
        case C_DRAIN_RESET:
            if (idle) conn_close(c, 1);
            return;
        case C_CLOSED: return;
        default: break;
        }
        break;
    }
    int want =
        !c->eof &&
        ((c->state == C_READY && c->pend_off == c->pend.len && c->out[c->cur].len < OUT_HIGH) ||
         c->state == C_HUNG || c->state == C_LINGER);
    if (want && !c->reading && uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read)) {
        conn_close(c, 0);
        return;
    }
    if (!want && c->reading) uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = (unsigned)want;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct lv_demo_worker *w = listener->data;
    if (status < 0) return;
    struct lv_demo_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) return;
    c->w = w;
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    lv_demo_buf_init(&c->head, HEAD_MAX);
    lv_demo_buf_init(&c->out[0], OUT_CAP);
    lv_demo_buf_init(&c->out[1], OUT_CAP);
    lv_demo_buf_init(&c->pend, PEND_CAP);
    llhttp_init(&c->parser, HTTP_REQUEST, &settings);
    c->parser.data = c;
    atomic_fetch_add_explicit(&w->accepted, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w->open, 1, memory_order_relaxed);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp)) {
        conn_close(c, 0);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    advance(c); /* starts reading */
}

/* --- workers ------------------------------------------------------------------------------ */

/* Closes a handle met by uv_walk at stop. A connection's socket takes its timer with it and
 * frees the connection; every other handle belongs to the worker. */
static void close_handle(uv_handle_t *h, void *w)
{
    if (uv_is_closing(h)) return;
    if (h->type == UV_TCP && h != (uv_handle_t *)&((struct lv_demo_worker *)w)->listener)
        conn_close(h->data, 0);
    else if (h->type != UV_TIMER)
        uv_close(h, NULL);
}

/* Closes every handle of the worker's loop; the loop ends once their callbacks ran. */
static void worker_close_all(struct lv_demo_worker *w)
{
    uv_walk(&w->loop, close_handle, w);
}

static void on_stop(uv_async_t *a)
{
    worker_close_all(a->data);
}

static void worker_run(void *arg)
{
    struct lv_demo_worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    w->close_err = uv_loop_close(&w->loop);
}

static int resolve(const char *host, int port, struct sockaddr_storage *addr)
{
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0) return 0;
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr);
}

static int worker_listen(struct lv_demo_worker *w, const struct sockaddr_storage *addr,
                         int reuseport)
{
    int err = uv_tcp_init_ex(&w->loop, &w->listener, addr->ss_family);
    if (err) return err;
    w->listener.data = w;
    if (reuseport) {
        /* libuv 1.44 has no UV_TCP_REUSEPORT: set it on the socket before bind. */
        uv_os_fd_t fd;
        int one = 1;
        if ((err = uv_fileno((uv_handle_t *)&w->listener, &fd))) return err;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one))) return UV_EINVAL;
    }
    if ((err = uv_tcp_bind(&w->listener, (const struct sockaddr *)addr, 0))) return err;
    return uv_listen((uv_stream_t *)&w->listener, 4096, on_connection);
}

int lv_demo_server_init(struct lv_demo_server *s, const struct lv_demo_options *o)
{
    struct sockaddr_storage addr;
    int err = resolve(o->host, o->port, &addr);
    if (err) return err;
    s->opts = o;
    s->port = o->port;
    s->nworkers = o->workers;
    s->workers = calloc((size_t)o->workers, sizeof(*s->workers));
    if (s->workers == NULL) return UV_ENOMEM;
    for (int i = 0; i < o->workers && !err; i++) {
        struct lv_demo_worker *w = &s->workers[i];
        w->server = s;
        w->index = i;
        w->rng =
            o->seed + (uint64_t)i * UINT64_C(0x632be59bd9b4e019); /* distinct sequence per worker */
        lv_demo_buf_init(&w->scratch, OUT_CAP);
        if ((err = uv_loop_init(&w->loop))) break;
        w->loop_ready = 1;
        if ((err = uv_async_init(&w->loop, &w->stop, on_stop))) break;
        w->stop.data = w;
        if ((err = worker_listen(w, &addr, o->workers > 1))) break;
        if (s->port == 0) { /* the others share the port the kernel picked */
            struct sockaddr_storage bound;
            int len = sizeof(bound);
            err = uv_tcp_getsockname(&w->listener, (struct sockaddr *)&bound, &len);
            s->port = ntohs(((struct sockaddr_in *)&bound)->sin_port); /* same offset in v6 */
            if (err == 0) err = resolve(o->host, s->port, &addr);
        }
    }
    if (err) lv_demo_server_dispose(s);
    return err;
}

int lv_demo_server_start(struct lv_demo_server *s)
{
    for (int i = 0; i < s->nworkers; i++) {
        int err = uv_thread_create(&s->workers[i].thread, worker_run, &s->workers[i]);
        if (err) return err;
        s->workers[i].started = 1;
    }
    return 0;
}

void lv_demo_server_stop(struct lv_demo_server *s)
{
    for (int i = 0; i < s->nworkers; i++)
        if (s->workers[i].started) uv_async_send(&s->workers[i].stop);
}

int lv_demo_server_dispose(struct lv_demo_server *s)
{
    int result = 0;
    for (int i = 0; i < s->nworkers; i++) {
        struct lv_demo_worker *w = &s->workers[i];
        if (w->started) {
            uv_thread_join(&w->thread);
        } else if (w->loop_ready) {
            worker_close_all(w);
            uv_run(&w->loop, UV_RUN_DEFAULT);
            w->close_err = uv_loop_close(&w->loop);
        }
        if (result == 0) result = w->close_err;
        lv_demo_buf_dispose(&w->scratch);
    }
    free(s->workers);
    s->workers = NULL;
    return result;
}
