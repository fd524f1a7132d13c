/*
 * The exchange: one request, from its parsed head to the last byte of its
 * response. It owns the attempt loop (pick a backend, get a connection,
 * send, wait, classify the outcome) and the relay of bodies in both
 * directions, with backpressure: a side that cannot keep up stops the
 * other side's reads instead of making levee buffer.
 */
#include "proxy/exchange.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "http/check.h"
#include "http/status.h"
#include "proxy/attempt.h"
#include "proxy/bodyq.h"
#include "proxy/client.h"
#include "proxy/ratelimit.h"
#include "proxy/tunnel.h"
#include "config/gen.h"
#include "proxy/wgen.h"
#include "proxy/server.h"
#include "core/strbuf.h"
#include "proxy/proxy.h"
#include "proxy/upconn.h"
#include "upstream/backend.h"
#include "upstream/balancer.h"

/* Flow control thresholds, per direction and exchange. They bound memory,
 * not only bytes: a socket's queue is measured by lv_sock_queued (bytes or
 * the buffer memory its writes hold, whichever is larger) and the body
 * queue by the buffer memory its unsent slices hold. */
#define BODY_HIGH_WATER (256 * 1024)
#define RESP_HIGH_WATER (256 * 1024)
#define RESP_LOW_WATER (64 * 1024)
/* Interim (1xx) responses one attempt may send before its final response.
 * A client needs one 100 and perhaps a few 103 or 102; Go's HTTP client
 * gives up after 5. 16 leaves room for any honest use, and 64 KiB (two
 * response heads at their size limit) bounds what they can make levee
 * write; more is a backend misbehaving: bad_response, 502. */
#define INTERIM_MAX_COUNT 16
#define INTERIM_MAX_BYTES (64 * 1024)
#define MAX_FREE_EXCHANGES 1024

static void finish(struct lv_exchange *ex);

/* --- lifecycle ------------------------------------------------------------- */

struct lv_exchange *lv_exchange_create(struct lv_client *c)
{
    struct lv_server *srv = c->srv;
    struct lv_exchange *ex = srv->free_exchanges;
    if (ex) {
        srv->free_exchanges = ex->next_free;
        srv->nfree_exchanges--;
    } else {
        ex = calloc(1, sizeof(*ex));
        if (ex == NULL) return NULL;
        uv_timer_init(&srv->w.loop, &ex->timer);
        ex->timer.data = ex;
    }
    memset(&ex->req, 0, sizeof(*ex) - offsetof(struct lv_exchange, req));
    ex->client = c;
    ex->srv = srv;
    ex->wg = srv->wgen;
    ex->wg->inflight++;
    ex->cfg = ex->wg->gen->cfg;
    ex->next_free = NULL;
    lv_head_init(&ex->req, (uint32_t)ex->cfg->limits.max_header_size,
                 (uint32_t)ex->cfg->limits.max_headers);
    lv_bodyq_init(&ex->body, &srv->env.bufs);
    ex->start_ns = lv_clock_ns();
    ex->start_wall_ms = lv_clock_wall_ms();
    return ex;
}

/* The timer is the exchange's first member: its handle is the exchange. */
static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

void lv_exchange_destroy(struct lv_exchange *ex)
{
    struct lv_server *srv = ex->srv;
    if (ex->rl_call) lv_ratelimit_cancel(ex);
    lv_attempt_stop(ex);
    lv_head_dispose(&ex->req);
    lv_bodyq_dispose(&ex->body);
    ex->client = NULL;
    struct lv_wgen *wg = ex->wg;
    ex->wg = NULL;
    if (--wg->inflight == 0 && wg != srv->wgen) lv_server_retire_done(srv, wg);
    if (srv->nfree_exchanges >= MAX_FREE_EXCHANGES || srv->stopped) {
        uv_close((uv_handle_t *)&ex->timer, on_timer_closed);
        return;
    }
    ex->next_free = srv->free_exchanges;
    srv->free_exchanges = ex;
    srv->nfree_exchanges++;
}

void lv_exchange_free_list(struct lv_server *srv)
{
    while (srv->free_exchanges) {
        struct lv_exchange *ex = srv->free_exchanges;
        srv->free_exchanges = ex->next_free;
        uv_close((uv_handle_t *)&ex->timer, on_timer_closed);
    }
    srv->nfree_exchanges = 0;
}

/* The exchange has handed its whole response to the client socket. */
static void finish(struct lv_exchange *ex)
{
    ex->done = true;
    lv_attempt_stop(ex);
    lv_client_exchange_done(ex->client);
}

/* --- the request side ---------------------------------------------------------- */

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
    struct lv_rand *r = &ex->srv->w.rand;
    snprintf(ex->request_id, sizeof(ex->request_id), "%016llx%016llx",
             (unsigned long long)lv_rand_next(r), (unsigned long long)lv_rand_next(r));
    ex->rid_generated = true;
    LV_STAT_INC(ex->srv->stats.request_ids_generated);
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

int lv_exchange_on_head(struct lv_exchange *ex)
{
    struct lv_head *h = &ex->req;
    struct lv_client *c = ex->client;
    const llhttp_t *ll = &c->parser.ll;
    const struct lv_config *cfg = ex->cfg;

    ex->client_http10 = h->http_major == 1 && h->http_minor == 0;
    ex->client_keep_alive = llhttp_should_keep_alive(ll) && !ex->srv->draining;
    ex->is_head = h->method == HTTP_HEAD;
    ex->idempotent = method_idempotent(h->method) ||
                     (cfg->retry.idempotency_key && LV_HEAD_FIND(h, "idempotency-key"));
    if (!ex->client_keep_alive) ex->close_after = true;
    take_request_id(ex);
    if (h->method == HTTP_CONNECT) {
        lv_exchange_respond(ex, LV_FAIL_METHOD);
        return -1;
    }
    /* Framing, target and Host (http/check.h), before anything reads them:
     * the health probe, the upgrade, the rate-limit key, the backend. */
    enum lv_fail_kind bad = lv_check_request(h);
    if (bad != LV_FAIL_NONE) {
        lv_exchange_respond(ex, bad);
        return -1;
    }
    detect_upgrade(ex);
    if (is_health_probe(h)) {
        lv_exchange_respond_health(ex);
        return 0;
    }
    if (ll->flags & F_CHUNKED) {
        ex->req_framing = LV_FRAME_CHUNKED;
    } else if (ll->flags & F_CONTENT_LENGTH) {
        ex->req_framing = LV_FRAME_LENGTH;
        ex->req_length = ll->content_length;
        if (cfg->limits.max_body && ex->req_length > cfg->limits.max_body) {
            /* Answered before a byte of the body is read. */
            lv_exchange_respond(ex, LV_FAIL_BODY_TOO_LARGE);
            return -1;
        }
    } else {
        ex->req_framing = LV_FRAME_NONE;
    }
    ex->has_body = ex->req_framing == LV_FRAME_CHUNKED ||
                   (ex->req_framing == LV_FRAME_LENGTH && ex->req_length > 0);
    /* Rate limits before anything is asked of the client or the backends. */
    if (lv_ratelimit_check(ex) == 0) lv_exchange_proceed(ex);
    /* Answered already (429, 503...) with a body still to come: stop reading. */
    return ex->done && ex->close_after && ex->has_body ? -1 : 0;
}

void lv_exchange_proceed(struct lv_exchange *ex)
{
    struct lv_head *h = &ex->req;
    struct lv_client *c = ex->client;
    const struct lv_hfield *expect = LV_HEAD_FIND(h, "expect");
    if (expect && ex->has_body && !ex->client_http10 && !ex->req_complete &&
        lv_token_list_has(lv_head_str(h, expect->value), expect->value_len, "100-continue", 12)) {
        /* levee asks for the body itself: the backend never sees Expect. */
        static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
        lv_sock_add(&c->sock, cont, sizeof(cont) - 1, NULL);
        lv_sock_flush(&c->sock);
    }
    ex->deadline_ms = lv_clock_ms() + ex->cfg->timeouts.backend;
    lv_attempt_first(ex);
}

bool lv_exchange_replayable(const struct lv_exchange *ex)
{
    /* The memory held counts too, with room for one partly filled buffer:
     * a body read in full buffers holds about its size, a trickled one is
     * compacted (bodyq.h), and anything that still holds more is released
     * as it is sent. */
    uint64_t max = ex->cfg->retry.max_replay_body;
    return !ex->body.dropped && ex->body.bytes <= max && ex->body.mem <= max + LV_BUF_SIZE;
}

/* The first body offset some try in flight has not sent yet. */
static uint64_t sent_by_all(const struct lv_exchange *ex)
{
    uint64_t from = lv_bodyq_end(&ex->body);
    const struct lv_upconn *tries[2] = {ex->up, ex->hedge};
    for (int i = 0; i < 2; i++) {
        const struct lv_upconn *u = tries[i];
        if (u == NULL) continue;
        uint64_t c = u->head_sent ? u->cursor : ex->body.base;
        if (c < from) from = c;
    }
    if (ex->up == NULL && ex->hedge == NULL) from = ex->body.base;
    return from;
}

/* Hands body bytes to the attempt's socket while it has room. */
static void pump_body(struct lv_exchange *ex, struct lv_upconn *up)
{
    if (!up->head_sent || up->req_done) return;
    struct lv_sock *s = &up->sock;
    bool chunked = ex->req_framing == LV_FRAME_CHUNKED;
    while (up->cursor < lv_bodyq_end(&ex->body) && lv_sock_queued(s) < BODY_HIGH_WATER) {
        struct lv_slice sl;
        uint32_t n = lv_bodyq_peek(&ex->body, up->cursor, &sl);
        if (n == 0) break;
        if (chunked) {
            char line[20];
            size_t hn = lv_chunk_header(line, n);
            lv_sock_add_copy(s, line, hn);
        }
        lv_sock_add(s, sl.p, n, sl.buf);
        if (chunked) lv_sock_add(s, "\r\n", 2, NULL);
        up->cursor += n;
        lv_sock_flush(s);
    }
    if (ex->req_complete && up->cursor == lv_bodyq_end(&ex->body)) {
        if (chunked) lv_sock_add(s, "0\r\n\r\n", 5, NULL);
        up->req_done = true;
        lv_sock_flush(s);
    }
    /* A body too large to replay is released as soon as it is sent. */
    if (!lv_exchange_replayable(ex)) lv_bodyq_drop_before(&ex->body, sent_by_all(ex));
}

/* Stops reading the client while too much body waits for the backend:
 * measured in buffer memory, so that many small pieces count for what they
 * hold, not for their bytes. */
static void body_flow(struct lv_exchange *ex)
{
    uint64_t from = sent_by_all(ex);
    if (!lv_exchange_replayable(ex) && ex->body.base < from) lv_bodyq_drop_before(&ex->body, from);
    if (lv_bodyq_mem_from(&ex->body, from) > BODY_HIGH_WATER)
        lv_client_pause(ex->client);
    else
        lv_client_resume(ex->client);
}

int lv_exchange_on_body(struct lv_exchange *ex, struct lv_buf *b, const char *p, size_t len)
{
    if (ex->done) return ex->close_after ? -1 : 0; /* answered already: drop it */
    uint64_t max = ex->cfg->limits.max_body;
    if (max && ex->body.bytes + len > max) {
        lv_exchange_fail(ex, LV_FAIL_BODY_TOO_LARGE);
        return -1;
    }
    if (lv_bodyq_push(&ex->body, b, p, (uint32_t)len) != 0) {
        lv_exchange_fail(ex, LV_FAIL_INTERNAL);
        return -1;
    }
    if (ex->up) pump_body(ex, ex->up);
    if (ex->hedge) pump_body(ex, ex->hedge);
    body_flow(ex);
    return 0;
}

void lv_exchange_on_request_end(struct lv_exchange *ex)
{
    ex->req_complete = true;
    if (ex->done) return;
    if (ex->up) pump_body(ex, ex->up);
    if (ex->hedge) pump_body(ex, ex->hedge);
    lv_attempt_request_complete(ex);
}

void lv_exchange_on_upconn_drain(struct lv_exchange *ex, struct lv_upconn *up)
{
    if (up != ex->up && up != ex->hedge) return;
    pump_body(ex, up);
    if (!ex->req_complete) body_flow(ex);
}

/* --- attempts ---------------------------------------------------------------- */

void lv_exchange_on_connected(struct lv_exchange *ex, struct lv_upconn *up)
{
    struct lv_client *c = ex->client;
    char extra[400] = "";
    int n = ex->rid_generated
                ? snprintf(extra, sizeof(extra), "X-Request-Id: %s\r\n", ex->request_id)
                : 0;
    if (ex->upgrade && n >= 0 && (size_t)n < sizeof(extra))
        snprintf(extra + n, sizeof(extra) - (size_t)n, "Connection: upgrade\r\nUpgrade: %s\r\n",
                 ex->upgrade_to);
    struct lv_fwd_info fwd = {
        .client_ip = c->ip,
        .proto = c->sock.ssl ? "https" : "http",
        .backend_authority = up->bcfg->authority,
        .framing = ex->req_framing,
        .content_length = ex->req_length,
        .extra = extra,
    };
    size_t need = lv_rewrite_request_size(&ex->req, &fwd);
    struct lv_buf *head = lv_buf_get_size(&ex->srv->env.bufs, need);
    if (head == NULL || lv_rewrite_request(&ex->req, &fwd, head) != 0) {
        if (head) lv_buf_unref(head);
        lv_exchange_respond(ex, LV_FAIL_INTERNAL);
        return;
    }
    lv_sock_add(&up->sock, head->data, head->len, head);
    lv_buf_unref(head);
    up->head_sent = true;
    up->cursor = ex->body.base;
    if (ex->req_framing == LV_FRAME_NONE) up->req_done = true;
    lv_sock_flush(&up->sock);
    pump_body(ex, up);
    lv_upconn_await_response(up);
    if (!ex->req_complete) body_flow(ex);
}

/* --- the response side ------------------------------------------------------------ */

/* Counts an interim response against the attempt's caps and relays it if
 * `forward`. Returns 0, or -1 when the backend sent too many. Each head is
 * copied into a buffer of its own size: a stream of them must not each
 * keep a LV_BUF_SIZE buffer alive while the client is slow. */
static int interim(struct lv_exchange *ex, struct lv_upconn *up, bool forward)
{
    struct lv_resp_info info = {
        .client_http10 = false, .framing = LV_FRAME_NONE, .keep_alive = true};
    size_t need = lv_rewrite_response_size(&up->resp, &info);
    up->interim_count++;
    up->interim_bytes += need;
    if (up->interim_count > INTERIM_MAX_COUNT || up->interim_bytes > INTERIM_MAX_BYTES) {
        lv_debug("backend %s: more than %d interim responses or %d bytes of them", up->backend->id,
                 INTERIM_MAX_COUNT, INTERIM_MAX_BYTES);
        up->parser.fail = LV_FAIL_BAD_RESPONSE;
        return -1;
    }
    if (!forward) return 0;
    struct lv_buf *b = lv_buf_get_exact(&ex->srv->env.bufs, need);
    if (b == NULL) return 0; /* an interim response is advice: the final one matters */
    if (lv_rewrite_response(&up->resp, &info, b) == 0)
        lv_sock_add(&ex->client->sock, b->data, b->len, b);
    lv_buf_unref(b);
    return 0;
}

/* The backend agreed to an upgrade: relay its 101 (with the upgrade
 * fields, hop-by-hop but meant for this hop's other side too); the tunnel
 * starts once llhttp has stopped after the head. */
static int switch_protocols(struct lv_exchange *ex, struct lv_upconn *up)
{
    if (lv_attempt_on_response(ex, up) != 0) return -1;
    struct lv_head *r = &up->resp;
    const struct lv_hfield *u = LV_HEAD_FIND(r, "upgrade");
    char extra[520];
    snprintf(extra, sizeof(extra), "X-Request-Id: %s\r\nConnection: upgrade\r\nUpgrade: %.*s\r\n",
             ex->request_id, u ? (int)(u->value_len < 64 ? u->value_len : 64) : 0,
             u ? lv_head_str(r, u->value) : "");
    struct lv_resp_info info = {.framing = LV_FRAME_NONE, .keep_alive = true, .extra = extra};
    size_t need = lv_rewrite_response_size(r, &info);
    struct lv_buf *b = lv_buf_get_size(&ex->srv->env.bufs, need);
    if (b == NULL || lv_rewrite_response(r, &info, b) != 0) {
        if (b) lv_buf_unref(b);
        return -1;
    }
    lv_sock_add(&ex->client->sock, b->data, b->len, b);
    lv_buf_unref(b);
    up->resp_head = true;
    ex->status = 101;
    ex->resp_started = true;
    ex->resp_framing = LV_FRAME_NONE;
    return 0;
}

void lv_exchange_tunnel_done(struct lv_exchange *ex)
{
    ex->close_after = true;
    finish(ex);
}

int lv_exchange_on_response_head(struct lv_exchange *ex, struct lv_upconn *up)
{
    struct lv_head *r = &up->resp;
    const llhttp_t *ll = &up->parser.ll;
    unsigned status = r->status;
    /* A framing levee and the backend could read differently (or a coding
     * levee would strip the label of): bad_response, before any of it
     * reaches the client. */
    if (lv_check_response(r) != LV_FAIL_NONE) {
        up->parser.fail = LV_FAIL_BAD_RESPONSE;
        return -1;
    }
    if (status == 101 && ex->upgrade) return switch_protocols(ex, up);
    if (status < 200) {
        if (status == 101) return -1; /* no upgrade was asked for */
        up->interim = true;
        /* 100 answered a question levee did not forward; other 1xx (103
         * Early Hints) go to clients that understand them. */
        return interim(ex, up, status != 100 && !ex->client_http10 && !ex->hedge && up == ex->up);
    }
    if (lv_attempt_on_response(ex, up) != 0) return -1; /* discarded: a retry follows */
    up->resp_head = true;
    ex->status = status;

    bool bodyless = ex->is_head || status == 204 || status == 304;
    enum lv_framing framing;
    if (ll->flags & F_CHUNKED) {
        framing = ex->client_http10 ? LV_FRAME_CLOSE : LV_FRAME_CHUNKED;
    } else if (ll->flags & F_CONTENT_LENGTH) {
        framing = LV_FRAME_LENGTH;
    } else if (bodyless) {
        framing = LV_FRAME_NONE;
    } else {
        /* Delimited by close: re-framed as chunked so the client connection
         * survives, unless the client speaks HTTP/1.0. */
        framing = ex->client_http10 ? LV_FRAME_CLOSE : LV_FRAME_CHUNKED;
    }
    if (bodyless && framing == LV_FRAME_CLOSE) framing = LV_FRAME_NONE;
    ex->resp_framing = bodyless ? LV_FRAME_NONE : framing;

    bool keep_alive = ex->client_keep_alive && !ex->close_after && ex->req_complete &&
                      framing != LV_FRAME_CLOSE && !ex->srv->draining;
    if (!keep_alive) ex->close_after = true;
    char extra[420];
    snprintf(extra, sizeof(extra), "X-Request-Id: %s\r\n%s", ex->request_id, ex->rl_headers);
    for (uint32_t i = 0; i < r->nfields; i++) {
        if (LV_HFIELD_IS(r, &r->fields[i], "x-request-id")) r->fields[i].flags |= LV_HF_DROP;
    }
    struct lv_resp_info info = {
        .client_http10 = ex->client_http10,
        .framing = framing,
        .content_length = ll->content_length, /* the whole length: no body byte is in yet */
        .keep_alive = keep_alive,
        .extra = extra,
    };
    size_t need = lv_rewrite_response_size(r, &info);
    struct lv_buf *b = lv_buf_get_exact(&ex->srv->env.bufs, need);
    if (b == NULL || lv_rewrite_response(r, &info, b) != 0) {
        if (b) lv_buf_unref(b);
        up->parser.fail = LV_FAIL_BAD_RESPONSE;
        return -1;
    }
    lv_sock_add(&ex->client->sock, b->data, b->len, b);
    lv_buf_unref(b);
    ex->resp_started = true;
    /* llhttp knows 1xx and 204 have no body, but not 304 or a HEAD's answer. */
    return bodyless ? 1 : 0;
}

int lv_exchange_on_response_body(struct lv_exchange *ex, struct lv_upconn *up, struct lv_buf *b,
                                 const char *p, size_t len)
{
    (void)up;
    struct lv_sock *s = &ex->client->sock;
    ex->resp_bytes += len;
    /* A piece small relative to its buffer (a backend trickling small
     * chunks) is copied: held by reference while a slow client reads, each
     * would keep a whole read buffer alive. */
    bool copy = (uint64_t)len * 2 < b->cap;
    if (ex->resp_framing == LV_FRAME_CHUNKED) {
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
    return 0;
}

void lv_exchange_on_response_end(struct lv_exchange *ex, struct lv_upconn *up, bool clean)
{
    struct lv_sock *s = &ex->client->sock;
    if (ex->resp_framing == LV_FRAME_CHUNKED) lv_sock_add(s, "0\r\n\r\n", 5, NULL);
    lv_sock_flush(s);
    bool reusable = clean && up->req_done && llhttp_should_keep_alive(&up->parser.ll);
    if (ex->up == up) {
        ex->up = NULL;
        lv_upconn_release(up, reusable);
    }
    finish(ex);
}

void lv_exchange_on_client_drain(struct lv_exchange *ex)
{
    if (ex->up && ex->up->paused && lv_sock_queued(&ex->client->sock) <= RESP_LOW_WATER)
        lv_upconn_resume(ex->up);
}

bool lv_exchange_client_full(const struct lv_exchange *ex)
{
    return lv_sock_queued(&ex->client->sock) > RESP_HIGH_WATER;
}

/* --- levee's own answers ----------------------------------------------------------- */

void lv_exchange_respond(struct lv_exchange *ex, enum lv_fail_kind kind)
{
    const struct lv_fail_info *fi = lv_fail_info(kind);
    struct lv_client *c = ex->client;
    lv_attempt_stop(ex);
    ex->fail = kind;
    ex->status = (unsigned)fi->status;
    /* After a client error, or with an unread body, the connection ends. */
    bool client_fault = fi->side == LV_SIDE_CLIENT && kind != LV_FAIL_RATE_LIMITED;
    if (client_fault || (ex->has_body && !ex->req_complete)) ex->close_after = true;
    bool keep_alive = ex->client_keep_alive && !ex->close_after && !ex->srv->draining;
    if (!keep_alive) ex->close_after = true;
    char extra[420] = "";
    if (ex->request_id[0] == '\0') new_request_id(ex); /* the head never completed */
    if (ex->request_id[0])
        snprintf(extra, sizeof(extra), "X-Request-Id: %s\r\n%s", ex->request_id, ex->rl_headers);
    unsigned retry_after = kind == LV_FAIL_NO_BACKEND     ? lv_attempt_retry_after(ex)
                           : kind == LV_FAIL_RATE_LIMITED ? ex->retry_after_s
                                                          : 0;
    struct lv_status_opts o = {
        .keep_alive = keep_alive,
        .client_http10 = ex->client_http10,
        .head = ex->is_head,
        .retry_after = retry_after,
        .extra = extra,
    };
    struct lv_buf *b = lv_buf_get(&ex->srv->env.bufs);
    int blen = b ? lv_status_write(b, kind, &o) : -1;
    if (blen >= 0) {
        lv_sock_add(&c->sock, b->data, b->len, b);
        lv_sock_flush(&c->sock);
        ex->resp_bytes = (uint64_t)blen;
    } else {
        ex->aborted = true;
    }
    if (b) lv_buf_unref(b);
    ex->resp_started = true;
    LV_STAT_INC(ex->srv->stats.generated[kind]);
    finish(ex);
}

void lv_exchange_account(const struct lv_exchange *ex)
{
    struct lv_stats *st = &ex->srv->stats;
    unsigned status = ex->status ? ex->status : 499;
    if (status >= LV_STATUS_CODES) status = LV_STATUS_CODES - 1;
    LV_STAT_INC(st->requests);
    if (ex->backend)
        LV_STAT_INC(ex->backend->wstats[ex->srv->w.id].status[status]);
    else
        LV_STAT_INC(st->status[status]);
    lv_lathist_add(&st->duration, (lv_clock_ns() - ex->start_ns) / 1000);
    unsigned a = ex->attempts > LV_RETRY_MAX_ATTEMPTS ? LV_RETRY_MAX_ATTEMPTS : ex->attempts;
    LV_STAT_INC(st->attempts[a]);
}

void lv_exchange_respond_health(struct lv_exchange *ex)
{
    struct lv_client *c = ex->client;
    struct lv_strbuf body;
    lv_strbuf_init(&body, 64 * 1024);
    unsigned status =
        (unsigned)lv_gen_health_json(&body, ex->wg->gen, ex->srv->proxy->start_ms, lv_clock_ms());
    bool keep_alive = ex->client_keep_alive && !ex->close_after && !ex->srv->draining;
    if (!keep_alive) ex->close_after = true;
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Request-Id: %s\r\n%s\r\n",
                     status, lv_status_reason(status), body.len, ex->request_id,
                     !keep_alive         ? "Connection: close\r\n"
                     : ex->client_http10 ? "Connection: keep-alive\r\n"
                                         : "");
    lv_sock_add_copy(&c->sock, head, (size_t)n);
    if (!ex->is_head) lv_sock_add_copy(&c->sock, body.p ? body.p : "", body.len);
    lv_sock_flush(&c->sock);
    ex->status = status;
    ex->resp_bytes = ex->is_head ? 0 : body.len;
    ex->resp_started = true;
    lv_strbuf_dispose(&body);
    finish(ex);
}

void lv_exchange_abort(struct lv_exchange *ex, enum lv_fail_kind kind)
{
    /* Part of the response is out: the only honest thing left is to cut
     * the connection, so that the client sees the response is short. */
    ex->fail = kind;
    ex->aborted = true;
    ex->close_after = true;
    finish(ex);
}

void lv_exchange_fail(struct lv_exchange *ex, enum lv_fail_kind kind)
{
    if (ex->done) return;
    if (ex->resp_started)
        lv_exchange_abort(ex, kind);
    else
        lv_exchange_respond(ex, kind);
}

void lv_exchange_cancel(struct lv_exchange *ex)
{
    lv_tunnel_abort(ex);
    if (!ex->done) {
        if (ex->fail == LV_FAIL_NONE) ex->fail = LV_FAIL_CLIENT_CLOSED;
        if (!ex->resp_started) ex->status = 499;
        ex->aborted = true;
    }
    lv_attempt_stop(ex);
    ex->done = true;
}
