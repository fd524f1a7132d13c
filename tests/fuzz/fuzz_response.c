/*
 * libFuzzer target: what a backend sends. The bytes go to levee's response
 * parser (http/parser.c on HTTP_RESPONSE, split at a fuzzer-chosen point,
 * several responses in a row as on a kept connection); each complete head
 * that passes lv_check_response is rewritten for the client
 * (http/rewrite.c) with every framing levee may choose, and each rewritten
 * head is parsed back by llhttp, which must frame it exactly as levee
 * meant: one Content-Length of the right value, or chunked, or a close,
 * keep-alive as decided, and no field but those levee meant to write.
 *
 * Input: byte 0 picks the split, byte 1 the owner's choices (bit 0: the
 * answer to a HEAD, no body; bit 1: headers.remove_response lists
 * Content-Length), the rest is the backend's bytes. A crash, a leak, a
 * sanitizer report or an abort() below is a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "http/check.h"
#include "http/parser.h"
#include "http/rewrite.h"

#define HEAD_LIMIT 8192
#define MAX_FIELDS 64

struct owner {
    bool head_response;
};

/* What llhttp makes of a head levee wrote. */
struct reparsed {
    bool bodyless; /* levee sent no body: the client asked HEAD (or 204/304) */
    bool done;
    uint16_t flags;
    uint64_t content_length;
    bool keep_alive;
    uint32_t fields;
};

static int re_field_done(llhttp_t *ll)
{
    ((struct reparsed *)ll->data)->fields++;
    return 0;
}

static int re_head_done(llhttp_t *ll)
{
    struct reparsed *r = ll->data;
    r->done = true;
    if (r->bodyless) ll->flags |= F_SKIPBODY; /* what a client that sent HEAD knows */
    r->flags = ll->flags;
    r->content_length = ll->content_length;
    r->keep_alive = llhttp_should_keep_alive(ll);
    return HPE_PAUSED;
}

static bool is_final(unsigned status)
{
    return status >= 200;
}

/* The fields levee copies from the backend's head for this framing. */
static uint32_t copied_fields(const struct lv_head *h, enum lv_framing framing)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct lv_hfield *f = &h->fields[i];
        if (f->flags & (LV_HF_HOP | LV_HF_DROP)) continue;
        if (framing != LV_FRAME_NONE && LV_HFIELD_IS(h, f, "content-length")) continue;
        n++;
    }
    return n;
}

static void check_rewrite(struct lv_http_parser *p, const struct lv_resp_info *info)
{
    const struct lv_head *h = p->head;
    size_t bound = lv_rewrite_response_size(h, info);
    struct lv_buf *out = lv_buf_get_size(p->pool, bound);
    if (out == NULL) return;
    if (lv_rewrite_response(h, info, out) != 0) abort(); /* the size bound is a bound */
    if (out->len > bound) abort();

    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_header_field_complete = re_field_done;
    s.on_headers_complete = re_head_done;
    llhttp_t ll;
    llhttp_init(&ll, HTTP_RESPONSE, &s);
    struct reparsed r = {.bodyless = info->framing == LV_FRAME_NONE};
    ll.data = &r;
    llhttp_errno_t err = llhttp_execute(&ll, out->data, out->len);
    /* what levee writes is one well-formed head, ending where it ends */
    if (err != HPE_PAUSED || !r.done) abort();
    if (llhttp_get_error_pos(&ll) != out->data + out->len) abort();

    uint32_t own = info->extra ? 1 : 0; /* one line, below */
    switch (info->framing) {
    case LV_FRAME_LENGTH:
        if (!(r.flags & F_CONTENT_LENGTH) || (r.flags & F_CHUNKED)) abort();
        if (r.content_length != info->content_length) abort();
        own++;
        break;
    case LV_FRAME_CHUNKED:
        if (!(r.flags & F_CHUNKED) || (r.flags & F_CONTENT_LENGTH)) abort();
        own++;
        break;
    case LV_FRAME_CLOSE:
        if (r.flags & (F_CHUNKED | F_CONTENT_LENGTH)) abort();
        if (r.keep_alive) abort();
        break;
    case LV_FRAME_NONE:
        if (r.flags & F_CHUNKED) abort(); /* a backend's coding never passes */
        break;
    }
    if (is_final(h->status)) {
        if (r.keep_alive != info->keep_alive) abort();
        if (!info->keep_alive || info->client_http10) own++; /* Connection */
    }
    /* no field split in two, none smuggled in a value */
    if (r.fields != copied_fields(h, info->framing) + own) abort();
    lv_buf_unref(out);
}

static int on_begin(struct lv_http_parser *p)
{
    lv_head_dispose(p->head);
    lv_head_init(p->head, HEAD_LIMIT, MAX_FIELDS);
    return 0;
}

static int on_head(struct lv_http_parser *p)
{
    struct owner *o = p->owner;
    struct lv_head *h = p->head;
    if (lv_check_response(h) != LV_FAIL_NONE) {
        p->fail = LV_FAIL_BAD_RESPONSE;
        return -1;
    }
    /* a checked head frames by one of length, chunked or close */
    if ((p->ll.flags & F_CHUNKED) && (p->ll.flags & F_CONTENT_LENGTH)) abort();

    if (!is_final(h->status)) {
        struct lv_resp_info info = {.framing = LV_FRAME_NONE, .keep_alive = true};
        check_rewrite(p, &info);
    } else {
        const enum lv_framing framings[] = {LV_FRAME_NONE, LV_FRAME_LENGTH, LV_FRAME_CHUNKED,
                                            LV_FRAME_CLOSE};
        for (size_t k = 0; k < 4; k++) {
            for (int ka = 0; ka < 2; ka++) {
                for (int h10 = 0; h10 < 2; h10++) {
                    if (framings[k] == LV_FRAME_CLOSE && ka) continue; /* never asked */
                    struct lv_resp_info info = {
                        .client_http10 = h10,
                        .framing = framings[k],
                        .content_length = p->ll.content_length,
                        .keep_alive = ka,
                        .extra = "X-Request-Id: fuzz\r\n",
                    };
                    check_rewrite(p, &info);
                }
            }
        }
    }
    bool skip_body = o->head_response && is_final(h->status);
    /* as the proxy does once a head is forwarded: what follows (body,
     * trailers) must not need it */
    lv_head_dispose(h);
    lv_head_init(h, HEAD_LIMIT, MAX_FIELDS);
    return skip_body ? 1 : 0;
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
    (void)p;
    return 0;
}

static const struct lv_http_handler handler = {on_begin, on_head, on_body, on_complete};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    size_t split = data[0];
    uint8_t choices = data[1];
    struct owner o = {.head_response = choices & 1};
    static char *drop[] = {"x-drop", "content-length"};
    data += 2, size -= 2;
    split = size ? split % (size + 1) : 0;

    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 4);
    struct lv_head head;
    lv_head_init(&head, HEAD_LIMIT, MAX_FIELDS);
    struct lv_http_parser p;
    lv_http_parser_init(&p, HTTP_RESPONSE, &handler, &o);
    p.head = &head;
    p.pool = &pool;
    p.drop = drop;
    p.ndrop = (choices & 2) ? 2 : 1;

    size_t parts[2] = {split, size - split};
    const char *at = (const char *)data;
    for (int i = 0; i < 2; i++) {
        struct lv_buf *b = lv_buf_get_size(&pool, parts[i] ? parts[i] : 1);
        if (b == NULL) break;
        memcpy(b->data, at, parts[i]);
        b->len = (uint32_t)parts[i];
        size_t used = 0;
        llhttp_errno_t err = lv_http_parser_execute(&p, b, b->data, parts[i], &used);
        lv_buf_unref(b);
        at += parts[i];
        if (used > parts[i]) abort();
        if (err != HPE_OK) {
            enum lv_fail_kind kind = lv_http_parser_failure(&p, err);
            if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE && kind != LV_FAIL_BAD_RESPONSE &&
                kind != LV_FAIL_INTERNAL)
                abort(); /* every response failure is the backend's */
            break;
        }
    }
    if (p.ll.error == HPE_OK && llhttp_message_needs_eof(&p.ll)) llhttp_finish(&p.ll);
    lv_head_dispose(&head);
    lv_bufpool_dispose(&pool);
    return 0;
}
