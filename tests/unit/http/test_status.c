/*
 * levee's own responses (http/status.c): reason phrases, and for every
 * failure kind a valid response with a JSON body naming the reason.
 */
#include <criterion/criterion.h>
#include <uv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "http/rewrite.h"
#include "http/status.h"
#include "unit/http/head_fixture.h"

#define BIG 8192

static void expect_buf(const struct lv_buf *b, const char *want)
{
    cr_expect(b->len == strlen(want) && memcmp(b->data, want, b->len) == 0,
              "got:\n%.*s\nexpected:\n%s", (int)b->len, b->data, want);
}

/* A buffer of exactly cap bytes, outside any pool. */
static struct lv_buf *exact_buf(size_t cap)
{
    struct lv_buf *b = malloc(sizeof(*b) + cap);
    cr_assert_not_null(b);
    b->refs = 1;
    b->cap = (uint32_t)cap;
    b->len = 0;
    b->pool = NULL;
    b->next = NULL;
    return b;
}

Test(status, reason_phrases)
{
    cr_expect_str_eq(lv_status_reason(200), "OK");
    cr_expect_str_eq(lv_status_reason(413), "Content Too Large");
    cr_expect_str_eq(lv_status_reason(431), "Request Header Fields Too Large");
    cr_expect_str_eq(lv_status_reason(502), "Bad Gateway");
    cr_expect_str_eq(lv_status_reason(503), "Service Unavailable");
    cr_expect_str_eq(lv_status_reason(504), "Gateway Timeout");
    cr_expect_str_eq(lv_status_reason(299), "Unknown");
}

/* levee's own response as the proxy writes it: the JSON body
 * (lv_status_body) after a head levee writes with no backend head
 * (lv_rewrite_response with resp NULL), framed by Content-Length. */
struct own_opts {
    bool keep_alive, http10, head_only;
    unsigned retry_after;
    const char *extra;
};

static int own_response(struct lv_buf *out, enum lv_fail_kind kind, const struct own_opts *o)
{
    char body[LV_STATUS_BODY_MAX];
    size_t blen = lv_status_body(body, sizeof(body), kind);
    char extra[512];
    int n = snprintf(extra, sizeof(extra),
                     "Content-Type: application/json\r\nCache-Control: no-store\r\n");
    if (o->retry_after)
        n += snprintf(extra + n, sizeof(extra) - (size_t)n, "Retry-After: %u\r\n", o->retry_after);
    snprintf(extra + n, sizeof(extra) - (size_t)n, "%s", o->extra ? o->extra : "");
    struct lv_resp_info info = {
        .status = (unsigned)lv_fail_info(kind)->status,
        .client_http10 = o->http10,
        .framing = LV_FRAME_LENGTH,
        .content_length = blen,
        .keep_alive = o->keep_alive,
        .extra = extra,
    };
    cr_assert_leq(lv_rewrite_response_size(NULL, &info), out->cap - out->len);
    if (lv_rewrite_response(NULL, &info, out) != 0) return -1;
    if (o->head_only) return 0;
    if (lv_buf_append(out, body, blen) != 0) return -1;
    return (int)blen;
}

Test(status, exact_no_backend_response)
{
    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 1);
    struct lv_buf *b = lv_buf_get(&pool);
    struct own_opts o = {.keep_alive = true, .retry_after = 1};
    const char body[] =
        "{\"status\":503,\"error\":\"no_backend\",\"message\":\"no backend available\"}\n";
    cr_expect_eq(own_response(b, LV_FAIL_NO_BACKEND, &o), (int)strlen(body));
    char want[512];
    snprintf(want, sizeof(want),
             "HTTP/1.1 503 Service Unavailable\r\n"
             "Content-Type: application/json\r\n"
             "Cache-Control: no-store\r\n"
             "Retry-After: 1\r\n"
             "Content-Length: %zu\r\n"
             "\r\n"
             "%s",
             strlen(body), body);
    expect_buf(b, want);
    lv_buf_unref(b);
    lv_bufpool_dispose(&pool);
}

/* Writes the response for kind and parses it back. */
static void write_and_parse(enum lv_fail_kind kind, const struct own_opts *o,
                            struct head_fixture *f)
{
    fixture_init(f, HTTP_RESPONSE, BIG, 100);
    struct lv_buf *b = lv_buf_get(&f->pool);
    int blen = own_response(b, kind, o);
    cr_assert_geq(blen, 0);
    llhttp_errno_t err = fixture_feed(f, b->data, b->len);
    lv_buf_unref(b);
    cr_assert_eq(err, HPE_OK, "kind %d: %s", kind, llhttp_errno_name(err));
    cr_assert_eq(f->heads, 1);
    cr_expect_eq(f->body_len, (size_t)blen, "kind %d", kind);
}

Test(status, every_kind_is_a_valid_response)
{
    for (int k = LV_FAIL_BAD_REQUEST; k < LV_FAIL_KIND_COUNT; k++) {
        const struct lv_fail_info *fi = lv_fail_info((enum lv_fail_kind)k);
        struct own_opts o = {.keep_alive = true};
        struct head_fixture f;
        write_and_parse((enum lv_fail_kind)k, &o, &f);
        cr_expect_eq(f.head.status, fi->status, "kind %d", k);
        cr_expect_eq(f.completes, 1, "kind %d: message not complete", k);
        char want[96];
        snprintf(want, sizeof(want), "\"error\":\"%s\"", fi->reason);
        f.body[f.body_len < sizeof(f.body) ? f.body_len : sizeof(f.body) - 1] = '\0';
        cr_expect_not_null(strstr(f.body, want), "kind %d: body %s", k, f.body);
        cr_expect_eq(f.body[0], '{');
        const struct lv_hfield *ct = LV_HEAD_FIND(&f.head, "content-type");
        cr_assert_not_null(ct);
        cr_expect_arr_eq(lv_head_str(&f.head, ct->value), "application/json", 16);
        cr_expect_null(LV_HEAD_FIND(&f.head, "retry-after"));
        cr_expect_null(LV_HEAD_FIND(&f.head, "connection"));
        fixture_dispose(&f);
    }
}

Test(status, body_always_fits)
{
    for (int k = LV_FAIL_NONE; k < LV_FAIL_KIND_COUNT; k++) {
        char body[LV_STATUS_BODY_MAX];
        size_t n = lv_status_body(body, sizeof(body), (enum lv_fail_kind)k);
        cr_expect_lt(n, sizeof(body) - 1, "kind %d: the body was cut", k);
        cr_expect_eq(body[n], '\0');
        cr_expect_eq(body[n - 1], '\n');
    }
}

Test(status, retry_after_when_asked)
{
    struct own_opts o = {.keep_alive = true, .retry_after = 30};
    struct head_fixture f;
    write_and_parse(LV_FAIL_RATE_LIMITED, &o, &f);
    cr_expect_eq(f.head.status, 429);
    const struct lv_hfield *ra = LV_HEAD_FIND(&f.head, "retry-after");
    cr_assert_not_null(ra);
    cr_expect_eq(ra->value_len, 2);
    cr_expect_arr_eq(lv_head_str(&f.head, ra->value), "30", 2);
    fixture_dispose(&f);
}

Test(status, connection_close_and_http10_keep_alive)
{
    struct own_opts o = {.keep_alive = false};
    struct head_fixture f;
    write_and_parse(LV_FAIL_BAD_REQUEST, &o, &f);
    const struct lv_hfield *c = LV_HEAD_FIND(&f.head, "connection");
    cr_assert_not_null(c);
    cr_expect_arr_eq(lv_head_str(&f.head, c->value), "close", 5);
    fixture_dispose(&f);

    struct own_opts o10 = {.keep_alive = true, .http10 = true};
    write_and_parse(LV_FAIL_BAD_REQUEST, &o10, &f);
    c = LV_HEAD_FIND(&f.head, "connection");
    cr_assert_not_null(c);
    cr_expect_arr_eq(lv_head_str(&f.head, c->value), "keep-alive", 10);
    fixture_dispose(&f);
}

Test(status, head_has_length_but_no_body)
{
    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 1);
    struct lv_buf *full = lv_buf_get(&pool);
    struct lv_buf *head = lv_buf_get(&pool);
    struct own_opts o = {.keep_alive = true};
    int blen = own_response(full, LV_FAIL_NO_BACKEND, &o);
    o.head_only = true;
    cr_expect_eq(own_response(head, LV_FAIL_NO_BACKEND, &o), 0);
    cr_assert_gt(blen, 0);
    /* the same head, without the body */
    cr_expect_eq(head->len + (uint32_t)blen, full->len);
    cr_expect_arr_eq(head->data, full->data, head->len);
    cr_expect_eq(memcmp(head->data + head->len - 4, "\r\n\r\n", 4), 0);
    char cl[48];
    snprintf(cl, sizeof(cl), "Content-Length: %d\r\n", blen);
    cr_expect(memmem(head->data, head->len, cl, strlen(cl)) != NULL);
    lv_buf_unref(full);
    lv_buf_unref(head);
    lv_bufpool_dispose(&pool);
}

Test(status, extra_lines)
{
    struct own_opts o = {.keep_alive = true, .extra = "X-Levee: 1\r\n"};
    struct head_fixture f;
    write_and_parse(LV_FAIL_INTERNAL, &o, &f);
    cr_expect_eq(f.head.status, 500);
    cr_expect_not_null(LV_HEAD_FIND(&f.head, "x-levee"));
    fixture_dispose(&f);
}

Test(status, appends_after_existing_bytes)
{
    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 1);
    struct lv_buf *b = lv_buf_get(&pool);
    cr_assert_eq(lv_buf_append(b, "prefix", 6), 0);
    struct own_opts o = {.keep_alive = true};
    cr_expect_gt(own_response(b, LV_FAIL_BAD_REQUEST, &o), 0);
    cr_expect_arr_eq(b->data, "prefixHTTP/1.1 400 Bad Request\r\n", 32);
    lv_buf_unref(b);
    lv_bufpool_dispose(&pool);
}

Test(status, no_room_fails)
{
    struct lv_buf *b = exact_buf(64);
    struct lv_resp_info info = {.status = 503,
                                .framing = LV_FRAME_LENGTH,
                                .content_length = 70,
                                .keep_alive = true,
                                .extra = "Content-Type: application/json\r\n"};
    cr_expect_eq(lv_rewrite_response(NULL, &info, b), UV_ENOBUFS);
    lv_buf_unref(b);
}
