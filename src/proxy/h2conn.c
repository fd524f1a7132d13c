/*
 * HTTP/2 client connections: nghttp2 sessions wired to levee's sockets,
 * buffers and exchanges. See h2conn.h for the model.
 *
 * Re-entrancy: the exchange's downstream callbacks (ds_*) only queue
 * (nghttp2_submit_*, resume_data, consume) and ask for a pump before the
 * loop waits; nghttp2_session_mem_recv and nghttp2_session_send, which may
 * close streams and so destroy exchanges, run only from the socket's read
 * callback and from the pump, never from inside an exchange's call.
 */
#include "proxy/h2conn.h"

#include <assert.h>
#include <llhttp.h>
#include <nghttp2/nghttp2.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config.h"
#include "config/gen.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "proxy/exchange.h"
#include "proxy/flow.h"
#include "proxy/wgen.h"

#define MAX_CONTINUATIONS 8 /* CONTINUATION frames per header block */

enum h2_state {
    H2_RUNNING,  /* streams come and go */
    H2_DRAINING, /* GOAWAY sent: streams under way finish */
    H2_CLOSED,   /* over: the owner closes the socket */
};

struct slice {
    struct lv_buf *b;
    const char *p;
    size_t len;
};

struct h2stream {
    struct lv_h2conn *h;
    struct lv_list link; /* in h->streams */
    int32_t id;
    struct lv_exchange *ex; /* NULL once destroyed */
    /* the request head, while it arrives */
    enum lv_fail_kind fail; /* the head is refused with this, at its end */
    uint64_t hdr_bytes;     /* RFC 9113 header list size so far */
    bool has_host;
    bool has_method;
    char authority[256];
    size_t authority_len;
    struct lv_strbuf cookies;
    /* the request body */
    bool head_done;
    bool req_end;      /* END_STREAM from the client */
    bool paused;       /* the exchange takes no more body: WINDOW_UPDATEs wait */
    size_t unconsumed; /* DATA bytes held back from the stream window */
    /* the answer */
    struct slice *q;
    size_t qhead, qn, qcap; /* queue of body slices: q[qhead..qn) */
    size_t qbytes;
    bool resp_submitted;
    bool resp_end;      /* the exchange sent its end */
    bool deferred;      /* the data provider waits for ds_body / ds_end */
    bool ex_done;       /* the exchange is DONE: destroy it in the pump */
    bool rst_after_end; /* the request was not read to its end: RST_STREAM(NO_ERROR) */
    bool closed;        /* nghttp2 closed the stream */
    bool large;         /* its answer's queue went past the low mark: drained() looks */
};

struct lv_h2conn {
    uv_timer_t timer;     /* first: idle and stalled-send checks */
    uv_prepare_t prepare; /* the pump, before the loop waits */
    struct lv_wctx *w;
    struct lv_sock *s;
    const struct lv_h2conn_ops *ops;
    void *owner;
    const char *peer_ip;
    bool tls;
    enum h2_state state;
    nghttp2_session *session;
    struct lv_list streams;
    size_t nstreams;
    struct lv_buf *cur;   /* the read buffer being fed to nghttp2 */
    struct lv_buf *first; /* bytes read before the start, fed from the first pump */
    const char *first_p;
    size_t first_n;
    bool in_recv, in_pump, pump_queued, close_when_written, owner_told;
    bool any_done;  /* some stream's exchange is DONE: reap() has work */
    bool any_large; /* some answer went past the low mark: drained() has work */
    int handles_open;
    uint64_t idle_since_ms;  /* no stream since then */
    uint64_t stall_since_ms; /* output waits (window shut or socket full) since then; 0: no */
    uint64_t idle_ms, send_ms;
    uint64_t max_header_list;
    struct lv_h2_rate resets, control;
    double reset_rate, control_rate;
};

static void pump_soon(struct lv_h2conn *h);
static void pump(struct lv_h2conn *h);
static void feed(struct lv_h2conn *h, struct lv_buf *b, const char *p, size_t n);
static const struct lv_downstream_ops downstream_ops;

/* --- policy ------------------------------------------------------------------ */

bool lv_h2_rate_take(struct lv_h2_rate *r, uint64_t now_ms, double rate, double burst)
{
    if (r->last_ms == 0) {
        r->tokens = burst;
        r->last_ms = now_ms;
    }
    if (now_ms > r->last_ms) {
        r->tokens += (double)(now_ms - r->last_ms) * rate / 1000.0;
        if (r->tokens > burst) r->tokens = burst;
        r->last_ms = now_ms;
    }
    if (r->tokens < 1.0) return false;
    r->tokens -= 1.0;
    return true;
}

int lv_h2_method(const char *m, size_t n)
{
    /* HTTP's methods only: PRI and the RTSP ones that follow are not. */
    for (int i = 0; i <= HTTP_SOURCE; i++) {
        const char *name = llhttp_method_name((llhttp_method_t)i);
        if (name == NULL) continue;
        if (strlen(name) == n && memcmp(name, m, n) == 0) return i;
    }
    return -1;
}

bool lv_h2_connection_specific(const char *name, size_t n)
{
    static const char *const names[] = {"connection", "keep-alive", "proxy-connection",
                                        "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0) return true;
    }
    return false;
}

/* --- closing ------------------------------------------------------------------- */

static const struct lv_config *cfg_of(const struct lv_h2conn *h)
{
    return h->w->wgen->gen->cfg;
}

/* The connection is over: tell the owner once, when what is queued is
 * written (a GOAWAY), or at once. */
static void finish(struct lv_h2conn *h, bool after_writes)
{
    h->state = H2_CLOSED;
    if (h->owner_told) return;
    lv_sock_flush(h->s);
    if (h->owner_told) return;
    if (after_writes && h->s->write_pending > 0 && !h->s->write_error) {
        h->close_when_written = true;
        if (h->stall_since_ms == 0) h->stall_since_ms = lv_clock_ms();
        return;
    }
    h->owner_told = true;
    h->ops->close(h->owner);
}

/* Abuse: GOAWAY(ENHANCE_YOUR_CALM), then close. */
static void abuse(struct lv_h2conn *h, const char *what)
{
    if (h->state == H2_CLOSED) return;
    LV_STAT_INC(h->w->stats.h2_abuse);
    lv_log_ratelimited(LV_LOG_INFO, "client %s: HTTP/2 %s: connection closed", h->peer_ip, what);
    nghttp2_session_terminate_session(h->session, NGHTTP2_ENHANCE_YOUR_CALM);
    pump_soon(h);
}

/* --- streams ------------------------------------------------------------------- */

static struct h2stream *stream_of(struct lv_h2conn *h, int32_t id)
{
    return nghttp2_session_get_stream_user_data(h->session, id);
}

static void queue_clear(struct h2stream *st)
{
    for (size_t i = st->qhead; i < st->qn; i++)
        lv_buf_unref(st->q[i].b);
    free(st->q);
    st->q = NULL;
    st->qhead = st->qn = st->qcap = 0;
    st->qbytes = 0;
}

static int queue_push(struct h2stream *st, struct lv_buf *b, const char *p, size_t len)
{
    if (st->qhead > 0 && st->qn == st->qcap) {
        memmove(st->q, st->q + st->qhead, (st->qn - st->qhead) * sizeof(*st->q));
        st->qn -= st->qhead;
        st->qhead = 0;
    }
    if (st->qn == st->qcap) {
        size_t cap = st->qcap ? st->qcap * 2 : 8;
        struct slice *q = realloc(st->q, cap * sizeof(*q));
        if (q == NULL) return -1;
        st->q = q;
        st->qcap = cap;
    }
    st->q[st->qn++] = (struct slice){lv_buf_ref(b), p, len};
    st->qbytes += len;
    return 0;
}

/* Ends the stream's exchange (cancelled when it is still running). Only
 * from the read callback or the pump. */
static void stream_end_exchange(struct h2stream *st)
{
    struct lv_exchange *ex = st->ex;
    if (ex == NULL) return;
    st->ex = NULL;
    if (!lv_exchange_done(ex)) lv_exchange_cancel(ex);
    if (ex->req_state != LV_EXR_HEAD || ex->fail != LV_FAIL_NONE)
        LV_STAT_INC(st->h->w->stats.h2_requests);
    lv_exchange_destroy(ex);
}

static void stream_free(struct h2stream *st)
{
    struct lv_h2conn *h = st->h;
    stream_end_exchange(st);
    queue_clear(st);
    lv_strbuf_dispose(&st->cookies);
    lv_list_remove(&st->link);
    h->nstreams--;
    if (h->nstreams == 0) h->idle_since_ms = lv_clock_ms();
    free(st);
}

/* --- nghttp2 callbacks: output ------------------------------------------------ */

static ssize_t on_send(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user)
{
    (void)session, (void)flags;
    struct lv_h2conn *h = user;
    if (lv_sock_queued(h->s) > LV_FLOW_HIGH) return NGHTTP2_ERR_WOULDBLOCK;
    if (lv_sock_add_copy(h->s, (const char *)data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}

/* A DATA frame: its 9-byte header is copied, its payload goes out from
 * the backend's read buffers by reference. */
static int on_send_data(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user)
{
    (void)session;
    struct lv_h2conn *h = user;
    struct h2stream *st = source->ptr;
    if (lv_sock_queued(h->s) > LV_FLOW_HIGH) return NGHTTP2_ERR_WOULDBLOCK;
    assert(frame->data.padlen == 0);
    if (lv_sock_add_copy(h->s, (const char *)framehd, 9) != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
    while (length > 0) {
        assert(st->qhead < st->qn);
        struct slice *sl = &st->q[st->qhead];
        size_t take = sl->len < length ? sl->len : length;
        /* Small pieces are copied (as for HTTP/1.1): a trickle must not pin
         * a read buffer each. */
        int rc = (uint64_t)take * 2 < sl->b->cap ? lv_sock_add_copy(h->s, sl->p, take)
                                                 : lv_sock_add(h->s, sl->p, take, sl->b);
        if (rc != 0) return NGHTTP2_ERR_CALLBACK_FAILURE;
        sl->p += take;
        sl->len -= take;
        st->qbytes -= take;
        length -= take;
        if (sl->len == 0) {
            lv_buf_unref(sl->b);
            st->qhead++;
        }
    }
    h->stall_since_ms = 0; /* progress */
    return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user)
{
    (void)session, (void)id, (void)buf, (void)user;
    struct h2stream *st = source->ptr;
    if (st->qbytes == 0) {
        if (st->resp_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = st->qbytes < length ? st->qbytes : length;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == st->qbytes && st->resp_end) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct lv_h2conn *h = user;
    if ((frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_DATA || frame->hd.type == NGHTTP2_HEADERS)) {
        struct h2stream *st = stream_of(h, frame->hd.stream_id);
        /* The answer is complete and the client still sends a body nobody
         * reads: stop it (RFC 9113 §8.1). */
        if (st && st->rst_after_end && !st->req_end)
            nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

/* --- nghttp2 callbacks: input --------------------------------------------------- */

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    struct lv_h2conn *h = user;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    struct h2stream *st = calloc(1, sizeof(*st));
    if (st == NULL) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    st->h = h;
    st->id = frame->hd.stream_id;
    lv_strbuf_init(&st->cookies, h->max_header_list);
    st->ex = lv_exchange_create(h->w, &downstream_ops, st, h->peer_ip, h->tls);
    if (st->ex == NULL) {
        free(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    lv_list_push_front(&h->streams, &st->link);
    h->nstreams++;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

static bool name_is(const uint8_t *name, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(name, lit, n) == 0;
}

static void head_add(struct h2stream *st, const char *name, size_t nlen, const char *value,
                     size_t vlen)
{
    struct lv_head *hd = lv_exchange_head(st->ex);
    struct lv_bufpool *pool = &st->h->w->env.bufs;
    if (lv_head_add_name(hd, pool, name, nlen) != 0 ||
        lv_head_add_value(hd, pool, value, vlen) != 0)
        st->fail = LV_FAIL_HEADERS_TOO_LARGE;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)session, (void)flags;
    struct lv_h2conn *h = user;
    struct h2stream *st = stream_of(h, frame->hd.stream_id);
    if (st == NULL) return 0;
    /* RFC 9113 §6.5.2: the header list size counts 32 bytes per field. An
     * HPACK bomb (a small block decoding to a huge list) is refused at the
     * limit, and a client that keeps going far beyond it loses the
     * connection. */
    st->hdr_bytes += nlen + vlen + 32;
    if (st->hdr_bytes > 4 * h->max_header_list) {
        abuse(h, "header list far over the limit");
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    if (st->hdr_bytes > h->max_header_list) st->fail = LV_FAIL_HEADERS_TOO_LARGE;
    if (st->fail != LV_FAIL_NONE || st->ex == NULL) return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0; /* trailers: dropped */
    struct lv_head *hd = lv_exchange_head(st->ex);
    const char *v = (const char *)value;
    if (nlen > 0 && name[0] == ':') {
        if (name_is(name, nlen, ":method")) {
            int m = lv_h2_method(v, vlen);
            if (m < 0) {
                st->fail = LV_FAIL_METHOD;
                return 0;
            }
            hd->method = (uint8_t)m;
            st->has_method = true;
        } else if (name_is(name, nlen, ":path")) {
            if (vlen > cfg_of(h)->limits.max_uri) {
                st->fail = LV_FAIL_URI_TOO_LONG;
                return 0;
            }
            if (lv_head_add_target(hd, &h->w->env.bufs, v, vlen) != 0)
                st->fail = LV_FAIL_HEADERS_TOO_LARGE;
        } else if (name_is(name, nlen, ":authority")) {
            if (vlen >= sizeof(st->authority)) {
                st->fail = LV_FAIL_BAD_REQUEST;
                return 0;
            }
            memcpy(st->authority, v, vlen);
            st->authority_len = vlen;
        }
        return 0; /* :scheme (levee knows its own), :protocol (no RFC 8441) */
    }
    /* nghttp2 has refused connection-specific fields and any TE but
     * "trailers" already (a stream error); TE is hop-by-hop below. */
    if (lv_h2_connection_specific((const char *)name, nlen)) {
        st->fail = LV_FAIL_BAD_REQUEST;
        return 0;
    }
    if (name_is(name, nlen, "cookie")) { /* §8.2.3: one field for HTTP/1.1 */
        if (st->cookies.len) lv_strbuf_add(&st->cookies, "; ", 2);
        lv_strbuf_add(&st->cookies, v, vlen);
        return 0;
    }
    if (name_is(name, nlen, "host")) {
        if (st->has_host) {
            st->fail = LV_FAIL_BAD_REQUEST;
            return 0;
        }
        st->has_host = true;
        if (st->authority_len &&
            (vlen != st->authority_len || strncasecmp(v, st->authority, vlen) != 0)) {
            st->fail = LV_FAIL_BAD_REQUEST; /* two authorities: which one is meant? */
            return 0;
        }
    }
    head_add(st, (const char *)name, nlen, v, vlen);
    return 0;
}

/* The request head is complete: it becomes an HTTP/1.1-shaped head. */
static void head_complete(struct h2stream *st, bool end_stream)
{
    struct lv_h2conn *h = st->h;
    struct lv_exchange *ex = st->ex;
    st->head_done = true;
    if (ex == NULL) return;
    struct lv_head *hd = lv_exchange_head(ex);
    const struct lv_config *cfg = ex->cfg;
    if (st->fail == LV_FAIL_NONE && st->cookies.len) {
        if (st->cookies.truncated)
            st->fail = LV_FAIL_HEADERS_TOO_LARGE;
        else
            head_add(st, "cookie", 6, st->cookies.p, st->cookies.len);
    }
    if (st->fail == LV_FAIL_NONE && !st->has_host && st->authority_len)
        head_add(st, "host", 4, st->authority, st->authority_len);
    hd->http_major = 2;
    hd->http_minor = 0;
    if (st->fail == LV_FAIL_NONE && (hd->buf == NULL || !st->has_method))
        st->fail = LV_FAIL_BAD_REQUEST;
    if (st->fail != LV_FAIL_NONE) {
        st->rst_after_end = !end_stream;
        lv_exchange_fail(ex, st->fail);
        return;
    }
    lv_head_classify(hd, cfg->headers.remove_request.items, cfg->headers.remove_request.n);
    struct lv_req_framing f = {.keep_alive = true};
    const struct lv_hfield *cl = LV_HEAD_FIND(hd, "content-length");
    if (cl) { /* nghttp2 checked it is digits, and checks the DATA against it */
        f.framing = LV_FRAME_LENGTH;
        f.length = strtoull(lv_head_str(hd, cl->value), NULL, 10);
    } else if (!end_stream) {
        f.framing = LV_FRAME_CHUNKED; /* a body of unknown length */
    }
    if (lv_exchange_on_head(ex, &f) != 0) st->rst_after_end = !end_stream;
    if (end_stream) {
        st->req_end = true;
        lv_exchange_on_request_end(ex);
    }
    (void)h;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user)
{
    (void)session;
    struct lv_h2conn *h = user;
    uint64_t now = lv_clock_ms();
    bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    struct h2stream *st = frame->hd.stream_id ? stream_of(h, frame->hd.stream_id) : NULL;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (st == NULL) return 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            head_complete(st, end_stream);
        } else if (end_stream && !st->req_end) { /* trailers end the request */
            st->req_end = true;
            if (st->ex) lv_exchange_on_request_end(st->ex);
        }
        return 0;
    case NGHTTP2_DATA:
        if (frame->hd.length == 0 && !end_stream &&
            !lv_h2_rate_take(&h->control, now, h->control_rate, 2 * h->control_rate)) {
            abuse(h, "empty DATA frame flood");
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        if (st && end_stream && !st->req_end) {
            st->req_end = true;
            if (st->ex && st->head_done) lv_exchange_on_request_end(st->ex);
        }
        return 0;
    case NGHTTP2_RST_STREAM:
        if (!lv_h2_rate_take(&h->resets, now, h->reset_rate, 2 * h->reset_rate)) {
            abuse(h, "streams reset too fast (rapid reset)");
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
    case NGHTTP2_PING:
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PRIORITY:
        if ((frame->hd.flags & NGHTTP2_FLAG_ACK) && frame->hd.type != NGHTTP2_PRIORITY) return 0;
        if (!lv_h2_rate_take(&h->control, now, h->control_rate, 2 * h->control_rate)) {
            abuse(h, "control frame flood");
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
    default: return 0;
    }
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    struct lv_h2conn *h = user;
    struct h2stream *st = stream_of(h, id);
    /* The connection's window is always given back: a stream that waits
     * for its backend holds only its own window. */
    nghttp2_session_consume_connection(session, len);
    if (st == NULL || st->ex == NULL || lv_exchange_done(st->ex) || !st->head_done) {
        nghttp2_session_consume_stream(session, id, len);
        return 0;
    }
    const char *p = (const char *)data;
    struct lv_buf *b = h->cur;
    struct lv_buf *copy = NULL;
    if (b == NULL || p < b->data || p + len > b->data + b->len) {
        copy = lv_buf_get_exact(&h->w->env.bufs, len);
        if (copy == NULL || lv_buf_append(copy, p, len) != 0) {
            if (copy) lv_buf_unref(copy);
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        b = copy;
        p = copy->data;
    }
    /* Window given back only while the exchange takes more (end-to-end
     * backpressure: a slow backend slows the client's upload). */
    if (st->paused)
        st->unconsumed += len;
    else
        nghttp2_session_consume_stream(session, id, len);
    if (lv_exchange_on_body(st->ex, b, p, len) != 0) st->rst_after_end = true;
    if (copy) lv_buf_unref(copy);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user)
{
    (void)session, (void)error_code;
    struct lv_h2conn *h = user;
    struct h2stream *st = stream_of(h, id);
    if (st == NULL) return 0;
    st->closed = true;
    nghttp2_session_set_stream_user_data(session, id, NULL);
    stream_free(st);
    return 0;
}

/* --- the downstream: one stream's answer ------------------------------------------ */

/* Lower-cases a field name into out (HTTP/2 field names are lower case). */
static char *lower(char *out, const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        out[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
    }
    return out;
}

static bool skip_response_field(const char *name, size_t n)
{
    return lv_h2_connection_specific(name, n) || (n == 2 && strncasecmp(name, "te", 2) == 0) ||
           (n == 7 && strncasecmp(name, "trailer", 7) == 0);
}

/* Builds the answer's fields: :status, the relayed fields, levee's own
 * (the "Name: value\r\n" lines of extra), and content-length. Returns the
 * count; names are lower-cased into scratch. */
static size_t build_nv(nghttp2_nv *nv, size_t cap, char *scratch, char *status_buf, unsigned status,
                       const struct lv_head *hd, const char *extra, bool length_known,
                       uint64_t length, char *len_buf, bool drop_length)
{
    size_t n = 0;
    snprintf(status_buf, 4, "%03u", status);
    nv[n++] = (nghttp2_nv){(uint8_t *)":status", (uint8_t *)status_buf, 7, 3, NGHTTP2_NV_FLAG_NONE};
    size_t used = 0;
    for (uint32_t i = 0; hd && i < hd->nfields && n < cap; i++) {
        const struct lv_hfield *f = &hd->fields[i];
        const char *name = lv_head_str(hd, f->name);
        if (f->flags & (LV_HF_HOP | LV_HF_DROP)) continue;
        if (skip_response_field(name, f->name_len)) continue;
        if (drop_length && f->name_len == 14 && strncasecmp(name, "content-length", 14) == 0)
            continue;
        char *ln = lower(scratch + used, name, f->name_len);
        used += f->name_len;
        nv[n++] = (nghttp2_nv){(uint8_t *)ln, (uint8_t *)lv_head_str(hd, f->value), f->name_len,
                               f->value_len, NGHTTP2_NV_FLAG_NONE};
    }
    for (const char *p = extra; p && *p && n < cap;) {
        const char *eol = strstr(p, "\r\n");
        if (eol == NULL) break;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon) {
            const char *v = colon + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            size_t nl = (size_t)(colon - p);
            if (!skip_response_field(p, nl)) {
                char *ln = lower(scratch + used, p, nl);
                used += nl;
                nv[n++] = (nghttp2_nv){(uint8_t *)ln, (uint8_t *)v, nl, (size_t)(eol - v),
                                       NGHTTP2_NV_FLAG_NONE};
            }
        }
        p = eol + 2;
    }
    if (length_known && n < cap) {
        int k = snprintf(len_buf, 24, "%llu", (unsigned long long)length);
        nv[n++] = (nghttp2_nv){(uint8_t *)"content-length", (uint8_t *)len_buf, 14, (size_t)k,
                               NGHTTP2_NV_FLAG_NONE};
    }
    return n;
}

static int submit_head(struct h2stream *st, unsigned status, const struct lv_head *hd,
                       const char *extra, bool length_known, uint64_t length, bool drop_length,
                       const nghttp2_data_provider *prd, bool final)
{
    struct lv_h2conn *h = st->h;
    size_t cap = (hd ? hd->nfields : 0) + 32;
    size_t scratch_len = (hd && hd->buf ? hd->buf->len : 0) + (extra ? strlen(extra) : 0) + 1;
    nghttp2_nv *nv = malloc(cap * sizeof(*nv));
    char *scratch = malloc(scratch_len);
    int rc = -1;
    if (nv && scratch) {
        char status_buf[4], len_buf[24];
        size_t n = build_nv(nv, cap, scratch, status_buf, status, hd, extra, length_known, length,
                            len_buf, drop_length);
        if (final)
            rc = nghttp2_submit_response(h->session, st->id, nv, n, prd);
        else
            rc = nghttp2_submit_headers(h->session, NGHTTP2_FLAG_NONE, st->id, NULL, nv, n, NULL);
    }
    free(nv);
    free(scratch);
    pump_soon(h);
    return rc == 0 ? 0 : -1;
}

static int ds_head(void *d, const struct lv_answer *a)
{
    struct h2stream *st = d;
    if (st->closed || st->resp_submitted) return -1;
    if (a->status < 200) return -1; /* a 101: no upgrade over HTTP/2 (no RFC 8441) */
    st->resp_submitted = true;
    bool body =
        a->body != LV_BODY_NONE && !a->head_only && !(a->body == LV_BODY_LENGTH && a->length == 0);
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = read_body};
    if (!body) st->resp_end = true;
    return submit_head(st, a->status, a->head, a->extra, a->body == LV_BODY_LENGTH, a->length,
                       a->body != LV_BODY_NONE, body ? &prd : NULL, true);
}

static void ds_interim(void *d, const struct lv_head *hd)
{
    struct h2stream *st = d;
    if (st->closed || st->resp_submitted || hd->status == 101) return;
    submit_head(st, hd->status, hd, NULL, false, 0, false, NULL, false);
}

static void ds_send_continue(void *d)
{
    struct h2stream *st = d;
    if (st->closed || st->resp_submitted) return;
    submit_head(st, 100, NULL, NULL, false, 0, false, NULL, false);
}

static void wake_body(struct h2stream *st)
{
    if (st->deferred && !st->closed) {
        st->deferred = false;
        nghttp2_session_resume_data(st->h->session, st->id);
    }
    pump_soon(st->h);
}

static int ds_body(void *d, struct lv_buf *b, const char *p, size_t len)
{
    struct h2stream *st = d;
    if (st->closed) return -1;
    if (len == 0) return 0;
    if (queue_push(st, b, p, len) != 0) return -1;
    if (st->qbytes > LV_FLOW_LOW) st->large = st->h->any_large = true;
    wake_body(st);
    return 0;
}

static void ds_end(void *d)
{
    struct h2stream *st = d;
    st->resp_end = true;
    wake_body(st);
}

static size_t ds_backlog(void *d)
{
    struct h2stream *st = d;
    return st->qbytes;
}

static void ds_pause_body(void *d, bool pause)
{
    struct h2stream *st = d;
    st->paused = pause;
    if (!pause && st->unconsumed && !st->closed) {
        nghttp2_session_consume_stream(st->h->session, st->id, st->unconsumed);
        st->unconsumed = 0;
        pump_soon(st->h);
    }
}

static bool ds_gone(void *d)
{
    struct h2stream *st = d;
    return st->closed || st->h->state == H2_CLOSED;
}

static struct lv_sock *ds_take_stream(void *d, struct lv_buf **b, const char **p, size_t *n)
{
    (void)d, (void)b, (void)p, (void)n;
    assert(!"no tunnel over HTTP/2: ds_head refuses a 101");
    return NULL;
}

static void ds_done(void *d)
{
    struct h2stream *st = d;
    st->ex_done = true;
    st->h->any_done = true;
    pump_soon(st->h);
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

/* --- the pump ----------------------------------------------------------------------- */

/* Exchanges that are DONE go (their streams stay while their answer is
 * written): an answer cut short resets its stream. */
static void reap(struct lv_h2conn *h)
{
    if (!h->any_done) return;
    h->any_done = false;
    for (struct lv_list *n = h->streams.next; n != &h->streams; n = n->next) {
        struct h2stream *st = lv_container_of(n, struct h2stream, link);
        if (!st->ex_done || st->ex == NULL) continue;
        enum lv_ex_end end = lv_exchange_end(st->ex);
        bool complete = lv_exchange_request_complete(st->ex);
        stream_end_exchange(st);
        if (st->closed) continue;
        if (end == LV_EXE_ABORT || !st->resp_submitted) {
            queue_clear(st);
            nghttp2_submit_rst_stream(h->session, NGHTTP2_FLAG_NONE, st->id,
                                      NGHTTP2_INTERNAL_ERROR);
        } else if (!complete && !st->req_end) {
            st->rst_after_end = true;
        }
        if (st->unconsumed) { /* nobody reads the rest of the body */
            nghttp2_session_consume_stream(h->session, st->id, st->unconsumed);
            st->unconsumed = 0;
        }
    }
}

/* The answers that drained below the low mark may read their backends
 * again. */
static void drained(struct lv_h2conn *h)
{
    if (!h->any_large) return;
    h->any_large = false;
    for (struct lv_list *n = h->streams.next; n != &h->streams; n = n->next) {
        struct h2stream *st = lv_container_of(n, struct h2stream, link);
        if (!st->large || !st->ex || st->ex_done) continue;
        if (st->qbytes <= LV_FLOW_LOW) {
            st->large = false;
            lv_exchange_on_drain(st->ex);
        } else {
            h->any_large = true;
        }
    }
}

static bool output_waits(const struct lv_h2conn *h)
{
    if (h->s->write_pending > 0) return true;
    for (struct lv_list *n = h->streams.next; n != &h->streams; n = n->next) {
        const struct h2stream *st = lv_container_of(n, struct h2stream, link);
        if (st->qbytes > 0 || (st->resp_end && st->resp_submitted && !st->closed)) return true;
    }
    return false;
}

static void pump(struct lv_h2conn *h)
{
    if (h->in_pump || h->in_recv || h->state == H2_CLOSED) return;
    h->in_pump = true;
    reap(h);
    int rv = nghttp2_session_send(h->session);
    if (rv != 0) {
        lv_debug("client %s: HTTP/2 send: %s", h->peer_ip, nghttp2_strerror(rv));
        h->in_pump = false;
        finish(h, false);
        return;
    }
    reap(h); /* a stream's exchange may have ended while its stream closed */
    drained(h);
    lv_sock_flush(h->s);
    h->in_pump = false;
    if (h->owner_told) return; /* a failed write closed the connection */
    if (output_waits(h)) {
        if (h->stall_since_ms == 0) h->stall_since_ms = lv_clock_ms();
    } else {
        h->stall_since_ms = 0;
    }
    if (!nghttp2_session_want_read(h->session) && !nghttp2_session_want_write(h->session)) {
        finish(h, true);
        return;
    }
    if (h->state == H2_DRAINING && h->nstreams == 0 && !nghttp2_session_want_write(h->session))
        finish(h, true);
}

/* Feeds the bytes read before the start, if they still wait. True when
 * the connection goes on. */
static bool feed_first(struct lv_h2conn *h)
{
    if (h->first == NULL) return true;
    struct lv_buf *b = h->first;
    h->first = NULL;
    feed(h, b, h->first_p, h->first_n);
    lv_buf_unref(b);
    return h->state != H2_CLOSED;
}

static void on_prepare(uv_prepare_t *p)
{
    struct lv_h2conn *h = p->data;
    uv_prepare_stop(p);
    h->pump_queued = false;
    if (h->first) {
        feed_first(h);
        return;
    }
    pump(h);
}

static void pump_soon(struct lv_h2conn *h)
{
    if (h->pump_queued || h->state == H2_CLOSED) return;
    h->pump_queued = true;
    uv_prepare_start(&h->prepare, on_prepare);
}

/* --- socket ------------------------------------------------------------------------------ */

static void feed(struct lv_h2conn *h, struct lv_buf *b, const char *p, size_t n)
{
    h->cur = b;
    h->in_recv = true;
    ssize_t rv = nghttp2_session_mem_recv(h->session, (const uint8_t *)p, n);
    h->in_recv = false;
    h->cur = NULL;
    if (rv < 0) {
        lv_debug("client %s: HTTP/2: %s", h->peer_ip, nghttp2_strerror((int)rv));
        if (rv == NGHTTP2_ERR_FLOODED) {
            LV_STAT_INC(h->w->stats.h2_abuse);
            lv_log_ratelimited(LV_LOG_INFO, "client %s: HTTP/2 flood: connection closed",
                               h->peer_ip);
        }
        /* nghttp2 queued a GOAWAY for protocol errors; send what it can. */
        if (rv != NGHTTP2_ERR_CALLBACK_FAILURE)
            nghttp2_session_terminate_session(h->session, NGHTTP2_PROTOCOL_ERROR);
        nghttp2_session_send(h->session);
        finish(h, true);
        return;
    }
    pump(h);
}

static void on_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct lv_h2conn *h = s->data;
    if (h->state == H2_CLOSED) return;
    /* libuv reads again within one callback while reads fill the buffer:
     * the bytes the client's reader handed over (the preface) must go in
     * before these, not at the next pump. */
    if (!feed_first(h)) return;
    if (nread < 0) {
        finish(h, false);
        return;
    }
    feed(h, b, b->data, (size_t)nread);
}

static void on_written(struct lv_sock *s, int status)
{
    struct lv_h2conn *h = s->data;
    if (status < 0) {
        h->close_when_written = false;
        if (!h->owner_told) {
            h->state = H2_CLOSED;
            h->owner_told = true;
            h->ops->close(h->owner);
        }
        return;
    }
    h->stall_since_ms = s->write_pending > 0 ? lv_clock_ms() : 0; /* the client reads */
    if (h->close_when_written) {
        if (s->write_pending == 0 && !h->owner_told) {
            h->owner_told = true;
            h->ops->close(h->owner);
        }
        return;
    }
    pump(h); /* room in the socket: more DATA */
}

static void on_timer(uv_timer_t *t)
{
    struct lv_h2conn *h = t->data;
    uint64_t now = lv_clock_ms();
    if (h->owner_told) return;
    if (h->stall_since_ms && now - h->stall_since_ms >= h->send_ms) {
        /* A window held shut (or a socket not read) while an answer waits. */
        LV_STAT_INC(h->w->stats.h2_abuse);
        lv_log_ratelimited(LV_LOG_INFO, "client %s: HTTP/2 client does not read: closed",
                           h->peer_ip);
        h->owner_told = true;
        h->state = H2_CLOSED;
        h->ops->close(h->owner);
        return;
    }
    if (h->nstreams == 0 && h->state == H2_RUNNING && now - h->idle_since_ms >= h->idle_ms)
        lv_h2conn_drain(h);
}

/* --- lifecycle ------------------------------------------------------------------------------- */

struct lv_h2conn *lv_h2conn_start(struct lv_wctx *w, struct lv_sock *s, const char *peer_ip,
                                  bool tls, struct lv_buf *b, const char *p, size_t n,
                                  const struct lv_h2conn_ops *ops, void *owner)
{
    const struct lv_config *cfg = w->wgen->gen->cfg;
    const struct lv_http2_cfg *hc = &cfg->http2;
    struct lv_h2conn *h = calloc(1, sizeof(*h));
    if (h == NULL) return NULL;
    nghttp2_session_callbacks *cb;
    nghttp2_option *opt;
    if (nghttp2_session_callbacks_new(&cb) != 0) {
        free(h);
        return NULL;
    }
    if (nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        free(h);
        return NULL;
    }
    nghttp2_session_callbacks_set_send_callback(cb, on_send);
    nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_continuations(opt, MAX_CONTINUATIONS);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_stream_reset_rate_limit(opt, 2 * hc->max_resets, hc->max_resets);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    int rv = nghttp2_session_server_new2(&h->session, cb, h, opt);
    nghttp2_session_callbacks_del(cb);
    nghttp2_option_del(opt);
    if (rv != 0) {
        free(h);
        return NULL;
    }
    h->w = w;
    h->s = s;
    h->ops = ops;
    h->owner = owner;
    h->peer_ip = peer_ip;
    h->tls = tls;
    h->state = H2_RUNNING;
    lv_list_init(&h->streams);
    h->max_header_list =
        hc->max_header_list_size ? hc->max_header_list_size : cfg->limits.max_header_size;
    h->idle_ms = hc->idle_timeout;
    h->send_ms = cfg->timeouts.idle;
    h->reset_rate = (double)hc->max_resets;
    h->control_rate = (double)hc->max_control_frames;
    h->idle_since_ms = lv_clock_ms();
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)hc->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)hc->initial_window_size},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, (uint32_t)hc->max_frame_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)h->max_header_list},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    nghttp2_submit_settings(h->session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    /* The connection's window is given back as soon as DATA arrives, so
     * make it large: only streams' windows pace uploads. */
    nghttp2_session_set_local_window_size(h->session, NGHTTP2_FLAG_NONE, 0, 16 << 20);
    uv_timer_init(w->loop, &h->timer);
    uv_prepare_init(w->loop, &h->prepare);
    h->timer.data = h->prepare.data = h;
    h->handles_open = 2;
    uint64_t tick = h->idle_ms < h->send_ms ? h->idle_ms : h->send_ms;
    tick = tick / 4 < 100 ? 100 : tick / 4 > 1000 ? 1000 : tick / 4;
    uv_timer_start(&h->timer, on_timer, tick, tick);
    LV_STAT_INC(w->stats.h2_connections);
    s->data = h;
    s->on_read = on_read;
    s->on_written = on_written;
    lv_sock_read_start(s);
    if (n > 0) { /* fed from the pump or the next read, whichever comes first: the owner
                  * learns of h before any close */
        h->first = lv_buf_ref(b);
        h->first_p = p;
        h->first_n = n;
    }
    pump_soon(h);
    return h;
}

void lv_h2conn_drain(struct lv_h2conn *h)
{
    if (h->state != H2_RUNNING) return;
    h->state = H2_DRAINING;
    nghttp2_submit_goaway(h->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(h->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    pump_soon(h);
}

static void on_handle_closed(uv_handle_t *hd)
{
    struct lv_h2conn *h = hd->data;
    if (--h->handles_open > 0) return;
    const struct lv_h2conn_ops *ops = h->ops;
    void *owner = h->owner;
    free(h);
    ops->freed(owner);
}

void lv_h2conn_close(struct lv_h2conn *h)
{
    h->state = H2_CLOSED;
    h->owner_told = true;
    if (h->first) lv_buf_unref(h->first);
    h->first = NULL;
    while (!lv_list_empty(&h->streams)) {
        struct h2stream *st = lv_container_of(h->streams.next, struct h2stream, link);
        st->closed = true;
        nghttp2_session_set_stream_user_data(h->session, st->id, NULL);
        stream_free(st);
    }
    nghttp2_session_del(h->session);
    h->session = NULL;
    uv_timer_stop(&h->timer);
    uv_prepare_stop(&h->prepare);
    uv_close((uv_handle_t *)&h->timer, on_handle_closed);
    uv_close((uv_handle_t *)&h->prepare, on_handle_closed);
}
