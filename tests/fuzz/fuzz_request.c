/*
 * libFuzzer target: what a client sends, through levee's llhttp glue (http/parser.c,
 * http/head.c) and out again as levee forwards it to a backend (http/rewrite.c).
 *
 * The first input byte (the mode) says how the rest is used:
 *   bit 7 clear  the rest is the raw bytes of one connection: pipelined requests,
 *                bodies, chunk extensions, trailers, garbage;
 *   bit 7 set    the rest builds a request from parts, so that mutations stay among the
 *                shapes issue 11 is about: a method, a target form (origin, absolute
 *                http or https, absolute with userinfo, absolute without a path,
 *                asterisk, authority), a version, a Host value of any bytes (the target's
 *                authority too) and raw bytes after them (more fields, a body, the next
 *                request); see build();
 *   bits 0-1     how the bytes are fed: at once, split at one point, one byte at a time,
 *                or in pieces of 1..16 bytes (the second byte picks the point or size);
 *   bits 2-3     the framing of the forwarded head: none, length, chunked, or the
 *                request's own (as levee does);
 *   bit 4        X-Forwarded-Proto https; bit 5: an X-Request-Id line added;
 *   bit 6        headers.remove_request lists x-internal-auth and host.
 * Each piece is copied into a buffer of exactly its size: a read past it is an ASan report.
 *
 * Checks, besides "no crash, no leak, no sanitizer report":
 *   - splitting changes nothing: the heads as forwarded, the bodies and whether the
 *     parse ended in an error are the same as when the bytes are fed at once;
 *   - lv_rewrite_request_size is an upper bound: the rewrite never runs out of room;
 *   - a head levee would forward parses back, with the same parser, as one request that
 *     ends where the head (and the body levee frames) ends, with the same method, one
 *     Host, no framing field but levee's own, and a target made only of the client's
 *     bytes: nothing the client sent is turned into a second request or another framing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/parser.h"
#include "http/rewrite.h"

/* levee's defaults: limits.max_header_size, limits.max_headers, limits.max_uri. */
#define HEAD_LIMIT (32 * 1024)
#define HEAD_FIELDS 100
#define MAX_TARGET (8 * 1024)

/* A fuzz finding that is not a crash by itself: abort, so that libFuzzer keeps the input. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_request: check failed: %s (line %d)\n", #cond, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* --- a growable byte string: what one way of feeding the input produced --------------- */

struct bytes {
    char *p;
    size_t len, cap;
};

static void bytes_add(struct bytes *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n)
            cap *= 2;
        char *q = realloc(b->p, cap);
        CHECK(q != NULL);
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* --- one run of the parser over the input ------------------------------------------- */

struct run {
    uint8_t mode;
    struct bytes log; /* "H" and the rewritten head, the body bytes, "C" complete, "E" the end */
    char *const *drop;
    size_t ndrop;
};

static char *const drop_names[] = {"x-internal-auth", "cookie"};

/* A buffer holding exactly these bytes (allocated to their size, unpooled). */
static struct lv_buf *exact_buf(const char *p, size_t n)
{
    struct lv_buf *b = malloc(sizeof(*b) + (n ? n : 1));
    CHECK(b != NULL);
    b->refs = 1;
    b->cap = (uint32_t)(n ? n : 1);
    b->len = (uint32_t)n;
    b->pool = NULL;
    b->next = NULL;
    memcpy(b->data, p, n);
    return b;
}

static int count(const struct lv_head *h, const char *name, size_t len)
{
    int n = 0;
    for (uint32_t i = 0; i < h->nfields; i++)
        n += lv_hfield_is(h, &h->fields[i], name, len);
    return n;
}
#define COUNT(h, lit) count((h), lit, sizeof(lit) - 1)

/* The checks lv_exchange_on_head makes before a head is forwarded: no CONNECT, exactly
 * one Host in HTTP/1.1 and at most one before. levee may refuse more than this (the
 * re-parse check below then covers more heads than levee forwards: only stricter).
 * PRI is left out: llhttp takes "PRI /" without a version as HTTP/0.9, and levee
 * forwards it as "PRI / HTTP/1.1", which llhttp then refuses (it expects the HTTP/2
 * preface); issue 11 (finding 8) is where versions other than 1.0 and 1.1 get refused. */
static bool forwarded(const struct lv_head *h)
{
    int hosts = COUNT(h, "host");
    bool http10 = h->http_major == 1 && h->http_minor == 0;
    return h->method != HTTP_CONNECT && h->method != HTTP_PRI && hosts <= 1 &&
           (hosts == 1 || http10);
}

/* The backend's view: parses what levee forwards. */
struct reparse {
    struct lv_head head;
    int heads, completes;
    size_t body;
};

static int re_on_head(struct lv_http_parser *p)
{
    ((struct reparse *)p->owner)->heads++;
    return 0;
}

static int re_on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    (void)at;
    ((struct reparse *)p->owner)->body += len;
    return 0;
}

static int re_on_complete(struct lv_http_parser *p)
{
    ((struct reparse *)p->owner)->completes++;
    return HPE_PAUSED; /* one message: whatever follows would be a second request */
}

/* Designated: the handler table may grow (a trailer callback...) without breaking this. */
static const struct lv_http_handler re_handler = {
    .on_head = re_on_head, .on_body = re_on_body, .on_complete = re_on_complete};

/* True if the n bytes at t are the end of the client's target, or "/" and its end. */
static bool from_target(const struct lv_head *req, const char *t, size_t n)
{
    const char *orig = lv_head_str(req, req->target);
    size_t on = req->target_len;
    if (n > 0 && t[0] == '/' && n - 1 <= on && memcmp(orig + on - (n - 1), t + 1, n - 1) == 0)
        return true;
    return n <= on && memcmp(orig + on - n, t, n) == 0;
}

/* Parses head (levee's rewrite of req, with the given framing) followed by the body
 * levee would send, and checks that the backend sees exactly one request like it. */
static void check_reparse(const struct lv_head *req, const struct lv_buf *head,
                          const struct lv_fwd_info *fwd)
{
    struct bytes msg = {0};
    bytes_add(&msg, head->data, head->len);
    size_t body = 0;
    if (fwd->framing == LV_FRAME_LENGTH) {
        for (uint64_t i = 0; i < fwd->content_length; i++)
            bytes_add(&msg, "x", 1);
        body = fwd->content_length;
    } else if (fwd->framing == LV_FRAME_CHUNKED) {
        bytes_add(&msg, "3\r\nabc\r\n0\r\n\r\n", 13);
        body = 3;
    }

    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 2);
    struct reparse r = {.heads = 0};
    lv_head_init(&r.head, 2 * HEAD_LIMIT, 4 * HEAD_FIELDS);
    struct lv_http_parser p;
    lv_http_parser_init(&p, HTTP_REQUEST, &re_handler, &r);
    p.head = &r.head;
    p.pool = &pool;
    struct lv_buf *b = exact_buf(msg.p, msg.len);
    size_t used = 0;
    llhttp_errno_t err = lv_http_parser_execute(&p, b, b->data, b->len, &used);
    if (err != HPE_PAUSED)
        fprintf(stderr, "fuzz_request: the forwarded head does not parse: %s (%s)\n%.*s\n",
                llhttp_errno_name(err), llhttp_get_error_reason(&p.ll), (int)msg.len, msg.p);
    CHECK(err == HPE_PAUSED);
    CHECK(used == msg.len);
    CHECK(r.heads == 1 && r.completes == 1 && r.body == body);
    const struct lv_head *h = &r.head;
    CHECK(h->method == req->method);
    CHECK(h->http_major == 1 && h->http_minor == 1);
    CHECK(COUNT(h, "host") == 1);
    CHECK(COUNT(h, "transfer-encoding") == (fwd->framing == LV_FRAME_CHUNKED));
    CHECK(COUNT(h, "content-length") == (fwd->framing == LV_FRAME_LENGTH));
    CHECK(from_target(req, lv_head_str(h, h->target), h->target_len));
    lv_buf_unref(b);
    lv_head_dispose(&r.head);
    lv_bufpool_dispose(&pool);
    free(msg.p);
}

static int on_head(struct lv_http_parser *p)
{
    struct run *run = p->owner;
    const struct lv_head *h = p->head;
    enum lv_framing framing;
    switch ((run->mode >> 2) & 3) {
    case 0: framing = LV_FRAME_NONE; break;
    case 1: framing = LV_FRAME_LENGTH; break;
    case 2: framing = LV_FRAME_CHUNKED; break;
    default: /* the request's own, as the exchange picks it */
        framing = p->ll.flags & F_CHUNKED          ? LV_FRAME_CHUNKED
                  : p->ll.flags & F_CONTENT_LENGTH ? LV_FRAME_LENGTH
                                                   : LV_FRAME_NONE;
    }
    struct lv_fwd_info fwd = {
        .client_ip = "192.0.2.1",
        .proto = run->mode & 0x10 ? "https" : "http",
        .backend_authority = "127.0.0.1:8080",
        .framing = framing,
        .content_length = framing == LV_FRAME_LENGTH ? 5 : 0, /* levee's own figure */
        .extra = run->mode & 0x20 ? "X-Request-Id: 0123456789abcdef0123456789abcdef\r\n" : NULL,
    };
    struct lv_buf *out = lv_buf_get_size(p->pool, lv_rewrite_request_size(h, &fwd));
    CHECK(out != NULL);
    CHECK(lv_rewrite_request(h, &fwd, out) == 0);
    bytes_add(&run->log, "H", 1);
    bytes_add(&run->log, out->data, out->len);
    if (forwarded(h)) check_reparse(h, out, &fwd);
    lv_buf_unref(out);
    return 0;
}

static int on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    struct run *run = p->owner;
    /* Bytes only: how the body is cut into callbacks depends on the pieces. */
    bytes_add(&run->log, at, len);
    return 0;
}

static int on_complete(struct lv_http_parser *p)
{
    struct run *run = p->owner;
    bytes_add(&run->log, "C", 1);
    lv_head_dispose(p->head);
    lv_head_init(p->head, HEAD_LIMIT, HEAD_FIELDS);
    return 0;
}

static const struct lv_http_handler handler = {
    .on_head = on_head, .on_body = on_body, .on_complete = on_complete};

/* Feeds the n bytes at data in pieces of the given sizes (the last one takes the rest);
 * records what came out in run->log. */
static void feed(struct run *run, const char *data, size_t n, size_t first, size_t step)
{
    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 4);
    struct lv_head head;
    lv_head_init(&head, HEAD_LIMIT, HEAD_FIELDS);
    struct lv_http_parser p;
    lv_http_parser_init(&p, HTTP_REQUEST, &handler, run);
    p.head = &head;
    p.pool = &pool;
    p.max_target = MAX_TARGET;
    p.drop = run->drop;
    p.ndrop = run->ndrop;
    llhttp_errno_t err = HPE_OK;
    size_t off = 0, piece = first;
    while (off < n && err == HPE_OK) {
        size_t len = piece < n - off ? piece : n - off;
        struct lv_buf *b = exact_buf(data + off, len);
        size_t used;
        err = lv_http_parser_execute(&p, b, b->data, len, &used);
        lv_buf_unref(b);
        off += len;
        piece = step;
    }
    /* How the parse ended, not which error: a limit levee checks in a callback (431 for
     * the 101st field) can fire before or after llhttp's own check of the same bytes
     * (400 for a bad character in that field's name), depending on where a piece ends,
     * because llhttp reports a name at its end or at the end of the piece. Either way
     * the request is refused. */
    char end[2] = {'E', err == HPE_OK ? 'o' : err == HPE_PAUSED_UPGRADE ? 'u' : 'x'};
    bytes_add(&run->log, end, sizeof(end));
    lv_head_dispose(&head);
    lv_bufpool_dispose(&pool);
}

/* --- requests from parts (mode bit 7) ------------------------------------------------ */

/* Takes bytes from in up to a NUL (or the end); returns how many it took. */
static size_t take_part(const uint8_t *in, size_t n, size_t *len)
{
    const uint8_t *z = memchr(in, 0, n);
    *len = z ? (size_t)(z - in) : n;
    return z ? *len + 1 : n;
}

/* in: [method][form][version] HOST \0 REST. The target's path is fixed ("/p?q"): what
 * varies is the form around it and the authority in it, which is the Host value. */
static void build(struct bytes *out, const uint8_t *in, size_t n)
{
    static const char *const methods[] = {"GET",    "POST",  "PUT",     "HEAD",  "OPTIONS",
                                          "DELETE", "PATCH", "CONNECT", "TRACE", "PRI"};
    static const char *const versions[] = {"HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.2"};
    if (n < 3) return;
    uint8_t m = in[0], form = in[1], v = in[2];
    in += 3, n -= 3;
    size_t hlen, used = take_part(in, n, &hlen);
    const char *host = (const char *)in;
    in += used, n -= used;

    const char *method = methods[m % (sizeof(methods) / sizeof(methods[0]))];
    bytes_add(out, method, strlen(method));
    bytes_add(out, " ", 1);
    switch (form % 7) {
    case 0: bytes_add(out, "/p?q", 4); break;
    case 1: /* absolute-form: its authority replaces Host (RFC 9112 §3.2.2) */
    case 2:
        bytes_add(out, form % 7 == 1 ? "http://" : "https://", form % 7 == 1 ? 7 : 8);
        bytes_add(out, host, hlen);
        bytes_add(out, "/p?q", 4);
        break;
    case 3: /* userinfo, which RFC 9112 §3.2 forbids in a request target */
        bytes_add(out, "http://user:pw@", 15);
        bytes_add(out, host, hlen);
        bytes_add(out, "/p", 2);
        break;
    case 4: /* absolute-form without a path */
        bytes_add(out, "http://", 7);
        bytes_add(out, host, hlen);
        if (form & 0x80) bytes_add(out, "?q", 2);
        break;
    case 5: bytes_add(out, "*", 1); break; /* asterisk-form: OPTIONS only */
    case 6:                                /* authority-form: CONNECT only */
        bytes_add(out, host, hlen);
        bytes_add(out, ":443", 4);
        break;
    }
    bytes_add(out, " ", 1);
    const char *version = versions[v % 4];
    bytes_add(out, version, strlen(version));
    bytes_add(out, "\r\n", 2);
    /* v bit 2: no Host field; bit 3: Host before another field rather than last. */
    if (!(v & 4)) {
        if (v & 8) bytes_add(out, "X-A: 1\r\n", 8);
        bytes_add(out, "Host: ", 6);
        bytes_add(out, host, hlen);
        bytes_add(out, "\r\n", 2);
    }
    bytes_add(out, in, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    uint8_t mode = data[0], arg = data[1];
    data += 2, size -= 2;

    struct bytes req = {0};
    if (mode & 0x80)
        build(&req, data, size);
    else
        bytes_add(&req, data, size);

    size_t first, step;
    switch (mode & 3) {
    case 0: first = step = req.len; break;
    case 1: first = req.len ? arg % req.len : 0, step = req.len; break;
    case 2: first = step = 1; break;
    default: first = step = (size_t)(arg % 16) + 1; break;
    }
    if (first == 0) first = 1;

    struct run whole = {.mode = mode}, pieces = {.mode = mode};
    if (mode & 0x40) {
        whole.drop = pieces.drop = drop_names;
        whole.ndrop = pieces.ndrop = sizeof(drop_names) / sizeof(drop_names[0]);
    }
    feed(&whole, req.p, req.len, req.len ? req.len : 1, req.len ? req.len : 1);
    if ((mode & 3) != 0) {
        feed(&pieces, req.p, req.len, first, step);
        if (whole.log.len != pieces.log.len || memcmp(whole.log.p, pieces.log.p, whole.log.len))
            fprintf(stderr, "fuzz_request: fed at once:\n%.*s\nfed in pieces:\n%.*s\n",
                    (int)whole.log.len, whole.log.p, (int)pieces.log.len, pieces.log.p);
        CHECK(whole.log.len == pieces.log.len &&
              memcmp(whole.log.p, pieces.log.p, whole.log.len) == 0);
    }
    free(whole.log.p);
    free(pieces.log.p);
    free(req.p);
    return 0;
}
