/*
 * libFuzzer target: request heads and bodies through levee's llhttp glue
 * (http/parser.c, http/head.c), split at a fuzzer-chosen point so that
 * fragment handling is exercised, then rewritten as levee would send them
 * (http/rewrite.c). Any crash, leak or sanitizer report is a bug.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "http/parser.h"
#include "http/rewrite.h"

static int on_head(struct lv_http_parser *p)
{
    struct lv_head *h = p->head;
    struct lv_fwd_info fwd = {.client_ip = "192.0.2.1",
                              .proto = "http",
                              .backend_authority = "127.0.0.1:8080",
                              .framing = LV_FRAME_CHUNKED};
    struct lv_buf *out = lv_buf_get_size(p->pool, lv_rewrite_request_size(h, &fwd));
    if (out) {
        lv_rewrite_request(h, &fwd, out);
        lv_buf_unref(out);
    }
    return 0;
}

static int on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    (void)p, (void)at, (void)len;
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
        if (err != HPE_OK) break;
    }
    lv_head_dispose(&head);
    lv_bufpool_dispose(&pool);
    return 0;
}
