/*
 * libFuzzer target (with fuzz_request.c, which feeds bytes in many ways):
 * request heads and bodies through levee's llhttp glue
 * (http/parser.c, http/head.c), split at a fuzzer-chosen point so that
 * fragment handling is exercised; each complete head goes through the
 * proxy's checks (http/check.c) and, when it passes, is rewritten as levee
 * would send it (http/rewrite.c) and parsed back by llhttp: one well-formed
 * head in origin form (or "*"), exactly one Host that is a valid authority,
 * and the framing levee chose. Any crash, leak, sanitizer report or abort()
 * below is a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "http/check.h"
#include "http/parser.h"
#include "http/rewrite.h"

/* What llhttp makes of the head levee wrote. */
struct reparsed {
    bool done;
    uint16_t flags;
    uint64_t content_length;
    char first; /* of the target */
    size_t target_len;
    char name[32];
    size_t name_len;
    bool in_host;
    int hosts;
    char host[8192];
    size_t host_len;
};

static int re_url(llhttp_t *ll, const char *at, size_t len)
{
    struct reparsed *r = ll->data;
    if (r->target_len == 0 && len > 0) r->first = at[0];
    r->target_len += len;
    return 0;
}

static int re_field(llhttp_t *ll, const char *at, size_t len)
{
    struct reparsed *r = ll->data;
    size_t n = len < sizeof(r->name) - r->name_len ? len : sizeof(r->name) - r->name_len;
    memcpy(r->name + r->name_len, at, n);
    r->name_len += n;
    return 0;
}

static int re_field_done(llhttp_t *ll)
{
    struct reparsed *r = ll->data;
    r->in_host = r->name_len == 4 && strncasecmp(r->name, "host", 4) == 0;
    if (r->in_host) r->hosts++;
    r->name_len = 0;
    return 0;
}

static int re_value(llhttp_t *ll, const char *at, size_t len)
{
    struct reparsed *r = ll->data;
    if (!r->in_host) return 0;
    if (len > sizeof(r->host) - r->host_len) abort(); /* longer than any head levee takes */
    memcpy(r->host + r->host_len, at, len);
    r->host_len += len;
    return 0;
}

static int re_head_done(llhttp_t *ll)
{
    struct reparsed *r = ll->data;
    r->done = true;
    r->flags = ll->flags;
    r->content_length = ll->content_length;
    return HPE_PAUSED;
}

static void check_forwarded(struct lv_http_parser *p, const struct lv_fwd_info *fwd)
{
    const struct lv_head *h = p->head;
    size_t bound = lv_rewrite_request_size(h, fwd);
    struct lv_buf *out = lv_buf_get_size(p->pool, bound);
    if (out == NULL) return;
    if (lv_rewrite_request(h, fwd, out) != 0) abort(); /* the size bound is a bound */
    if (out->len > bound) abort();

    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_url = re_url;
    s.on_header_field = re_field;
    s.on_header_field_complete = re_field_done;
    s.on_header_value = re_value;
    s.on_headers_complete = re_head_done;
    llhttp_t ll;
    llhttp_init(&ll, HTTP_REQUEST, &s);
    static struct reparsed r;
    memset(&r, 0, sizeof(r));
    ll.data = &r;
    llhttp_errno_t err = llhttp_execute(&ll, out->data, out->len);
    if (err != HPE_PAUSED || !r.done) abort();
    if (llhttp_get_error_pos(&ll) != out->data + out->len) abort();
    if (ll.http_major != 1 || ll.http_minor != 1) abort();
    /* origin form, or the asterisk */
    if (r.first != '/' && !(r.first == '*' && r.target_len == 1)) abort();
    /* one Host, one authority: what the backend and X-Forwarded-Host get */
    if (r.hosts != 1 || !lv_check_authority(r.host, r.host_len)) abort();
    switch (fwd->framing) {
    case LV_FRAME_LENGTH:
        if (!(r.flags & F_CONTENT_LENGTH) || (r.flags & F_CHUNKED)) abort();
        if (r.content_length != fwd->content_length) abort();
        break;
    case LV_FRAME_CHUNKED:
        if (!(r.flags & F_CHUNKED) || (r.flags & F_CONTENT_LENGTH)) abort();
        break;
    default:
        if (r.flags & (F_CHUNKED | F_CONTENT_LENGTH)) abort();
        break;
    }
    lv_buf_unref(out);
}

static int on_head(struct lv_http_parser *p)
{
    struct lv_head *h = p->head;
    /* the parser lets HTTP/1.0 and 1.1 through, nothing else */
    if (h->http_major != 1 || h->http_minor > 1) abort();
    if (h->method == HTTP_CONNECT) return -1; /* refused before the checks */
    enum lv_fail_kind kind = lv_check_request(h);
    if (kind != LV_FAIL_NONE) {
        if (kind != LV_FAIL_BAD_REQUEST && kind != LV_FAIL_BAD_FRAMING) abort();
        p->fail = kind;
        return -1;
    }
    /* a checked request is framed by chunked or a length, never both */
    uint16_t fl = p->ll.flags;
    if ((fl & F_CHUNKED) && (fl & F_CONTENT_LENGTH)) abort();
    struct lv_fwd_info fwd = {
        .client_ip = "192.0.2.1",
        .proto = "http",
        .backend_authority = "127.0.0.1:8080",
        .framing = (fl & F_CHUNKED)          ? LV_FRAME_CHUNKED
                   : (fl & F_CONTENT_LENGTH) ? LV_FRAME_LENGTH
                                             : LV_FRAME_NONE,
        .content_length = p->ll.content_length,
        .extra = "X-Request-Id: fuzz\r\n",
    };
    check_forwarded(p, &fwd);
    return 0;
}

static int on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    if (p->cur_buf == NULL || at < p->cur_buf->data ||
        at + len > p->cur_buf->data + p->cur_buf->len)
        abort();
    return 0;
}

static int on_complete(struct lv_http_parser *p)
{
    lv_head_dispose(p->head);
    lv_head_init(p->head, 8192, 64);
    return 0;
}

static const struct lv_http_handler handler = {NULL, on_head, on_body, on_complete};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    size_t split = data[0] % (size);
    data++, size--;
    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 4);
    struct lv_head head;
    lv_head_init(&head, 8192, 64);
    struct lv_http_parser p;
    lv_http_parser_init(&p, HTTP_REQUEST, &handler, NULL);
    p.head = &head;
    p.pool = &pool;
    p.max_target = 4096;
    size_t parts[2] = {split < size ? split : size, size - (split < size ? split : size)};
    const char *at = (const char *)data;
    for (int i = 0; i < 2; i++) {
        struct lv_buf *b = lv_buf_get_size(&pool, parts[i] ? parts[i] : 1);
        if (b == NULL) break;
        memcpy(b->data, at, parts[i]);
        b->len = (uint32_t)parts[i];
        size_t used;
        llhttp_errno_t err = lv_http_parser_execute(&p, b, b->data, parts[i], &used);
        lv_buf_unref(b);
        at += parts[i];
        if (err != HPE_OK) {
            if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
                /* every parse failure is the client's, answered 4xx/505 */
                int status = lv_fail_info(lv_http_parser_failure(&p, err))->status;
                if (status != 400 && status != 414 && status != 431 && status != 505) abort();
            }
            break;
        }
    }
    lv_head_dispose(&head);
    lv_bufpool_dispose(&pool);
    return 0;
}
