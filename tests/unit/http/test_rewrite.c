/*
 * Heads on their way through (http/rewrite.c): the request as the backend
 * sees it, the response as the client sees it, and chunk-size lines.
 */
#include <criterion/criterion.h>
#include <uv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fail.h"
#include "http/rewrite.h"
#include "unit/http/head_fixture.h"

#define BIG 8192

static const struct lv_fwd_info plain_fwd = {
    .client_ip = "10.0.0.1",
    .proto = "http",
    .backend_authority = "127.0.0.1:8001",
    .framing = LV_FRAME_NONE,
};

static void parse(struct head_fixture *f, llhttp_type_t type, const char *text)
{
    fixture_init(f, type, BIG, 100);
    llhttp_errno_t err = fixture_feed_str(f, text);
    cr_assert(err == HPE_OK || err == HPE_PAUSED, "parse error %s", llhttp_errno_name(err));
    cr_assert_eq(f->heads, 1, "head not complete");
}

static void expect_buf(const struct lv_buf *b, const char *want)
{
    cr_expect(b->len == strlen(want) && memcmp(b->data, want, b->len) == 0,
              "got:\n%.*s\nexpected:\n%s", (int)b->len, b->data, want);
}

/* The request head levee sends for text, with fwd. */
static void expect_request(const char *text, const struct lv_fwd_info *fwd, char *const *drop,
                           size_t ndrop, const char *want)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    f.p.drop = drop;
    f.p.ndrop = ndrop;
    llhttp_errno_t err = fixture_feed_str(&f, text);
    cr_assert_eq(err, HPE_OK, "parse error %s", llhttp_errno_name(err));
    struct lv_buf *out = lv_buf_get(&f.pool);
    cr_expect_eq(lv_rewrite_request(&f.head, fwd, out), 0);
    cr_expect_leq(out->len, lv_rewrite_request_size(&f.head, fwd));
    expect_buf(out, want);
    lv_buf_unref(out);
    fixture_dispose(&f);
}

static void expect_response(const char *text, const struct lv_resp_info *info, const char *want)
{
    struct head_fixture f;
    parse(&f, HTTP_RESPONSE, text);
    struct lv_buf *out = lv_buf_get(&f.pool);
    cr_expect_eq(lv_rewrite_response(&f.head, info, out), 0);
    cr_expect_leq(out->len, lv_rewrite_response_size(&f.head, info));
    expect_buf(out, want);
    lv_buf_unref(out);
    fixture_dispose(&f);
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

/* --- requests -------------------------------------------------------------------- */

Test(rewrite_request, forwarded_fields_added)
{
    expect_request("GET /x?y=1 HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "User-Agent: t\r\n"
                   "\r\n",
                   &plain_fwd, NULL, 0,
                   "GET /x?y=1 HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "User-Agent: t\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.com\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

Test(rewrite_request, x_forwarded_for_appends_every_value_in_order)
{
    expect_request("GET / HTTP/1.1\r\n"
                   "X-Forwarded-For: 1.1.1.1, 2.2.2.2\r\n"
                   "Host: example.com\r\n"
                   "x-forwarded-for: 3.3.3.3\r\n"
                   "X-Forwarded-For:\r\n"
                   "\r\n",
                   &plain_fwd, NULL, 0,
                   "GET / HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "X-Forwarded-For: 1.1.1.1, 2.2.2.2, 3.3.3.3, 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.com\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

Test(rewrite_request, client_forwarded_fields_replaced)
{
    struct lv_fwd_info fwd = plain_fwd;
    fwd.proto = "https";
    fwd.client_ip = "2001:db8::1";
    expect_request("GET / HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "X-Forwarded-Proto: gopher\r\n"
                   "X-Forwarded-Host: evil.example\r\n"
                   "X-Real-IP: 6.6.6.6\r\n"
                   "\r\n",
                   &fwd, NULL, 0,
                   "GET / HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "X-Forwarded-For: 2001:db8::1\r\n"
                   "X-Forwarded-Proto: https\r\n"
                   "X-Forwarded-Host: example.com\r\n"
                   "X-Real-IP: 2001:db8::1\r\n"
                   "\r\n");
}

Test(rewrite_request, hop_by_hop_and_connection_named_fields_removed)
{
    expect_request("GET / HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "Connection: keep-alive, X-Secret\r\n"
                   "Keep-Alive: timeout=5\r\n"
                   "X-Secret: s\r\n"
                   "Proxy-Connection: keep-alive\r\n"
                   "TE: trailers\r\n"
                   "Trailer: X-Sum\r\n"
                   "Accept: */*\r\n"
                   "\r\n",
                   &plain_fwd, NULL, 0,
                   "GET / HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "Accept: */*\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.com\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

Test(rewrite_request, drop_list_removes_fields)
{
    char *const drop[] = {"x-debug"};
    expect_request("GET / HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "X-Debug: 1\r\n"
                   "X-Debugger: 2\r\n"
                   "\r\n",
                   &plain_fwd, drop, 1,
                   "GET / HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "X-Debugger: 2\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.com\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

Test(rewrite_request, expect_and_content_length_replaced_by_levee_framing)
{
    struct lv_fwd_info fwd = plain_fwd;
    fwd.framing = LV_FRAME_LENGTH;
    fwd.content_length = 5;
    expect_request("PUT /u HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "Expect: 100-continue\r\n"
                   "Content-Length: 5\r\n"
                   "Content-Type: text/plain\r\n"
                   "\r\n"
                   "hello",
                   &fwd, NULL, 0,
                   "PUT /u HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "Content-Type: text/plain\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.com\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "Content-Length: 5\r\n"
                   "\r\n");
}

Test(rewrite_request, chunked_framing_line)
{
    struct lv_fwd_info fwd = plain_fwd;
    fwd.framing = LV_FRAME_CHUNKED;
    expect_request("POST /c HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "Transfer-Encoding: chunked\r\n"
                   "\r\n"
                   "0\r\n\r\n",
                   &fwd, NULL, 0,
                   "POST /c HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.com\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "Transfer-Encoding: chunked\r\n"
                   "\r\n");
}

Test(rewrite_request, empty_body_framing_with_length_zero)
{
    struct lv_fwd_info fwd = plain_fwd;
    fwd.framing = LV_FRAME_LENGTH;
    fwd.content_length = 0;
    expect_request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n", &fwd, NULL, 0,
                   "POST / HTTP/1.1\r\n"
                   "Host: h\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: h\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "Content-Length: 0\r\n"
                   "\r\n");
}

Test(rewrite_request, absolute_form_becomes_origin_form)
{
    expect_request("GET http://Example.com:8080/p/q?r=1 HTTP/1.1\r\n"
                   "Host: other.example\r\n"
                   "Accept: */*\r\n"
                   "\r\n",
                   &plain_fwd, NULL, 0,
                   "GET /p/q?r=1 HTTP/1.1\r\n"
                   "Accept: */*\r\n"
                   "Host: Example.com:8080\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: Example.com:8080\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

Test(rewrite_request, a_routes_target_and_host_replace_the_clients)
{
    struct lv_fwd_info fwd = plain_fwd;
    fwd.target = "/users?id=1";
    fwd.target_len = strlen(fwd.target);
    fwd.host = "backend.internal";
    expect_request("GET /v1/users?id=1 HTTP/1.1\r\n"
                   "Host: api.example.com\r\n"
                   "Accept: */*\r\n"
                   "\r\n",
                   &fwd, NULL, 0,
                   "GET /users?id=1 HTTP/1.1\r\n"
                   "Accept: */*\r\n"
                   "Host: backend.internal\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: api.example.com\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
    /* An absolute-form target: its authority still names X-Forwarded-Host. */
    expect_request("GET http://a.example/v1/x HTTP/1.1\r\nHost: a.example\r\n\r\n", &fwd, NULL, 0,
                   "GET /users?id=1 HTTP/1.1\r\n"
                   "Host: backend.internal\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: a.example\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

Test(rewrite_request, absolute_form_without_path)
{
    expect_request("GET http://example.com HTTP/1.1\r\n\r\n", &plain_fwd, NULL, 0,
                   "GET / HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.com\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

Test(rewrite_request, http10_without_host_gets_backend_authority)
{
    expect_request("GET /old HTTP/1.0\r\nUser-Agent: old\r\n\r\n", &plain_fwd, NULL, 0,
                   "GET /old HTTP/1.1\r\n"
                   "User-Agent: old\r\n"
                   "Host: 127.0.0.1:8001\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

Test(rewrite_request, extra_lines_before_framing)
{
    struct lv_fwd_info fwd = plain_fwd;
    fwd.extra = "X-Request-Id: abc\r\n";
    fwd.framing = LV_FRAME_LENGTH;
    fwd.content_length = 1;
    expect_request("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx", &fwd, NULL, 0,
                   "POST / HTTP/1.1\r\n"
                   "Host: h\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: h\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "X-Request-Id: abc\r\n"
                   "Content-Length: 1\r\n"
                   "\r\n");
}

Test(rewrite_request, method_and_field_spelling_kept)
{
    expect_request("DELETE /r HTTP/1.1\r\nhOsT: h\r\nX-MiXeD: VaLuE\r\n\r\n", &plain_fwd, NULL, 0,
                   "DELETE /r HTTP/1.1\r\n"
                   "hOsT: h\r\n"
                   "X-MiXeD: VaLuE\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: h\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

/* A client X-Forwarded-For that levee was told to remove (headers.
 * remove_request), or that the client named in Connection, contributes no
 * values: an operator can stop trusting what clients claim. */
Test(rewrite_request, removed_x_forwarded_for_not_trusted)
{
    char *const drop[] = {"x-forwarded-for"};
    expect_request("GET / HTTP/1.1\r\n"
                   "Host: h\r\n"
                   "X-Forwarded-For: 6.6.6.6\r\n"
                   "\r\n",
                   &plain_fwd, drop, 1,
                   "GET / HTTP/1.1\r\n"
                   "Host: h\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: h\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
    expect_request("GET / HTTP/1.1\r\n"
                   "Host: h\r\n"
                   "Connection: X-Forwarded-For\r\n"
                   "X-Forwarded-For: 6.6.6.6\r\n"
                   "\r\n",
                   &plain_fwd, NULL, 0,
                   "GET / HTTP/1.1\r\n"
                   "Host: h\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: h\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

Test(rewrite_request, no_room_fails)
{
    struct head_fixture f;
    parse(&f, HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
    struct lv_buf *out = exact_buf(20);
    cr_expect_eq(lv_rewrite_request(&f.head, &plain_fwd, out), UV_ENOBUFS);
    cr_expect_leq(out->len, 20);
    lv_buf_unref(out);
    fixture_dispose(&f);
}

Test(rewrite_request, fits_in_its_size_bound)
{
    struct head_fixture f;
    parse(&f, HTTP_REQUEST, "GET /a HTTP/1.1\r\nHost: example.com\r\nA: 1\r\n\r\n");
    size_t need = lv_rewrite_request_size(&f.head, &plain_fwd);
    struct lv_buf *out = exact_buf(need);
    cr_expect_eq(lv_rewrite_request(&f.head, &plain_fwd, out), 0);
    lv_buf_unref(out);
    fixture_dispose(&f);
}

/* --- responses ------------------------------------------------------------------- */

/* A body of 2 bytes, framed by length, on a connection that stays open. */
static const struct lv_resp_info keep_alive_length = {
    .client_http10 = false, .framing = LV_FRAME_LENGTH, .content_length = 2, .keep_alive = true};

Test(rewrite_response, hop_by_hop_removed)
{
    expect_response("HTTP/1.1 200 OK\r\n"
                    "Content-Length: 2\r\n"
                    "Connection: keep-alive, X-Hop\r\n"
                    "X-Hop: 1\r\n"
                    "Keep-Alive: timeout=5\r\n"
                    "Upgrade: h2c\r\n"
                    "Server: s\r\n"
                    "\r\n",
                    &keep_alive_length,
                    "HTTP/1.1 200 OK\r\n"
                    "Server: s\r\n"
                    "Content-Length: 2\r\n"
                    "\r\n");
}

Test(rewrite_response, connection_close_when_not_keep_alive)
{
    struct lv_resp_info info = keep_alive_length;
    info.keep_alive = false;
    expect_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", &info,
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Length: 2\r\n"
                    "Connection: close\r\n"
                    "\r\n");
}

Test(rewrite_response, keep_alive_for_http10_client)
{
    struct lv_resp_info info = keep_alive_length;
    info.client_http10 = true;
    expect_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", &info,
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Length: 2\r\n"
                    "Connection: keep-alive\r\n"
                    "\r\n");
}

Test(rewrite_response, http10_client_closing)
{
    struct lv_resp_info info = {
        .client_http10 = true, .framing = LV_FRAME_CLOSE, .keep_alive = false};
    expect_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nETag: \"e\"\r\n\r\n", &info,
                    "HTTP/1.1 200 OK\r\n"
                    "ETag: \"e\"\r\n"
                    "Connection: close\r\n"
                    "\r\n");
}

Test(rewrite_response, chunked_stays_chunked)
{
    struct lv_resp_info info = {
        .client_http10 = false, .framing = LV_FRAME_CHUNKED, .keep_alive = true};
    expect_response("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\n\r\n", &info,
                    "HTTP/1.1 200 OK\r\n"
                    "X-A: 1\r\n"
                    "Transfer-Encoding: chunked\r\n"
                    "\r\n");
}

Test(rewrite_response, close_delimited_reframed_as_chunked)
{
    /* an HTTP/1.0-style response: no length, body until close */
    struct lv_resp_info info = {
        .client_http10 = false, .framing = LV_FRAME_CHUNKED, .keep_alive = true};
    expect_response("HTTP/1.0 200 OK\r\nX-A: 1\r\n\r\n", &info,
                    "HTTP/1.1 200 OK\r\n"
                    "X-A: 1\r\n"
                    "Transfer-Encoding: chunked\r\n"
                    "\r\n");
}

Test(rewrite_response, content_length_dropped_when_reframed)
{
    /* built by hand: llhttp refuses a response with both */
    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 2);
    struct lv_head h;
    lv_head_init(&h, 1024, 10);
    cr_assert_eq(lv_head_add_target(&h, &pool, "OK", 2), 0);
    cr_assert_eq(lv_head_add_name(&h, &pool, "Content-Length", 14), 0);
    cr_assert_eq(lv_head_add_value(&h, &pool, "10", 2), 0);
    cr_assert_eq(lv_head_add_name(&h, &pool, "X-A", 3), 0);
    cr_assert_eq(lv_head_add_value(&h, &pool, "1", 1), 0);
    h.status = 200;
    lv_head_classify(&h, NULL, 0);
    struct lv_resp_info info = {
        .client_http10 = false, .framing = LV_FRAME_CHUNKED, .keep_alive = true};
    struct lv_buf *out = lv_buf_get(&pool);
    cr_expect_eq(lv_rewrite_response(&h, &info, out), 0);
    expect_buf(out, "HTTP/1.1 200 OK\r\n"
                    "X-A: 1\r\n"
                    "Transfer-Encoding: chunked\r\n"
                    "\r\n");
    lv_buf_unref(out);
    lv_head_dispose(&h);
    lv_bufpool_dispose(&pool);
}

Test(rewrite_response, content_length_kept_for_304)
{
    struct lv_resp_info info = {
        .client_http10 = false, .framing = LV_FRAME_NONE, .keep_alive = true};
    expect_response("HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n", &info,
                    "HTTP/1.1 304 Not Modified\r\n"
                    "Content-Length: 10\r\n"
                    "ETag: \"x\"\r\n"
                    "\r\n");
}

Test(rewrite_response, content_length_kept_for_204)
{
    struct lv_resp_info info = {
        .client_http10 = false, .framing = LV_FRAME_NONE, .keep_alive = true};
    expect_response("HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n", &info,
                    "HTTP/1.1 204 No Content\r\n"
                    "Content-Length: 0\r\n"
                    "\r\n");
}

Test(rewrite_response, content_length_kept_for_head_response)
{
    /* the answer to HEAD: a length and no body, framed as LENGTH */
    struct lv_resp_info info = keep_alive_length;
    info.content_length = 1234;
    expect_response("HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", &info,
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Length: 1234\r\n"
                    "\r\n");
}

Test(rewrite_response, interim_has_no_connection_field)
{
    struct lv_resp_info info = {
        .client_http10 = false, .framing = LV_FRAME_NONE, .keep_alive = false};
    expect_response("HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", &info,
                    "HTTP/1.1 103 Early Hints\r\n"
                    "Link: </s.css>; rel=preload\r\n"
                    "\r\n");
}

Test(rewrite_response, missing_reason_filled_in)
{
    struct lv_resp_info info = keep_alive_length;
    info.content_length = 0;
    expect_response("HTTP/1.1 502\r\nContent-Length: 0\r\n\r\n", &info,
                    "HTTP/1.1 502 Bad Gateway\r\n"
                    "Content-Length: 0\r\n"
                    "\r\n");
}

Test(rewrite_response, extra_lines)
{
    struct lv_resp_info info = keep_alive_length;
    info.extra = "X-Cache: MISS\r\n";
    expect_response("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", &info,
                    "HTTP/1.1 200 OK\r\n"
                    "X-Cache: MISS\r\n"
                    "Content-Length: 2\r\n"
                    "\r\n");
}

Test(rewrite_response, no_room_fails)
{
    struct head_fixture f;
    parse(&f, HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    struct lv_buf *out = exact_buf(10);
    cr_expect_eq(lv_rewrite_response(&f.head, &keep_alive_length, out), UV_ENOBUFS);
    lv_buf_unref(out);
    fixture_dispose(&f);
}

/* --- levee frames what it sends (issue 11, finding 6) -------------------------- */

Test(rewrite_response, connection_naming_content_length_keeps_the_length)
{
    /* the response that went out with no framing at all on a keep-alive
     * connection: the next response was read as its body */
    struct lv_resp_info info = keep_alive_length;
    info.content_length = 5;
    expect_response("HTTP/1.1 200 OK\r\n"
                    "Content-Length: 5\r\n"
                    "Connection: Content-Length\r\n"
                    "\r\n",
                    &info,
                    "HTTP/1.1 200 OK\r\n"
                    "Content-Length: 5\r\n"
                    "\r\n");
}

Test(rewrite_response, connection_naming_transfer_encoding_keeps_chunked)
{
    struct lv_resp_info info = {
        .client_http10 = false, .framing = LV_FRAME_CHUNKED, .keep_alive = true};
    expect_response("HTTP/1.1 200 OK\r\n"
                    "Transfer-Encoding: chunked\r\n"
                    "Connection: Transfer-Encoding\r\n"
                    "\r\n",
                    &info,
                    "HTTP/1.1 200 OK\r\n"
                    "Transfer-Encoding: chunked\r\n"
                    "\r\n");
}

Test(rewrite_response, remove_response_cannot_take_the_length)
{
    /* headers.remove_response: [Content-Length] removes the backend's
     * field, not levee's framing */
    char *drop[] = {"content-length"};
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    f.p.drop = drop;
    f.p.ndrop = 1;
    cr_assert_eq(fixture_feed_str(&f, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n"), HPE_OK);
    struct lv_resp_info info = keep_alive_length;
    info.content_length = 7;
    struct lv_buf *out = lv_buf_get(&f.pool);
    cr_expect_eq(lv_rewrite_response(&f.head, &info, out), 0);
    expect_buf(out, "HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n");
    lv_buf_unref(out);
    fixture_dispose(&f);
}

Test(rewrite_request, connection_naming_content_length_keeps_the_length)
{
    struct lv_fwd_info fwd = plain_fwd;
    fwd.framing = LV_FRAME_LENGTH;
    fwd.content_length = 3;
    expect_request("POST /u HTTP/1.1\r\n"
                   "Host: h\r\n"
                   "Content-Length: 3\r\n"
                   "Connection: Content-Length\r\n"
                   "\r\nabc",
                   &fwd, NULL, 0,
                   "POST /u HTTP/1.1\r\n"
                   "Host: h\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: h\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "Content-Length: 3\r\n"
                   "\r\n");
}

/* What llhttp (strict) makes of a head levee wrote: the framing levee
 * meant, and the head ends where levee's ends. */
struct reparsed {
    uint64_t flags, content_length;
    bool keep_alive, needs_eof;
};

static int reparse_head_done(llhttp_t *ll)
{
    struct reparsed *r = ll->data;
    r->flags = ll->flags;
    r->content_length = ll->content_length;
    r->keep_alive = llhttp_should_keep_alive(ll);
    r->needs_eof = llhttp_message_needs_eof(ll);
    return HPE_PAUSED;
}

static void expect_frames_as(const struct lv_buf *out, const struct lv_resp_info *info,
                             const char *what)
{
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_headers_complete = reparse_head_done;
    llhttp_t ll;
    llhttp_init(&ll, HTTP_RESPONSE, &s);
    struct reparsed r = {0};
    ll.data = &r;
    llhttp_errno_t err = llhttp_execute(&ll, out->data, out->len);
    cr_assert_eq(err, HPE_PAUSED, "%s: %s in\n%.*s", what, llhttp_errno_name(err), (int)out->len,
                 out->data);
    cr_expect_eq(llhttp_get_error_pos(&ll), out->data + out->len, "%s: head ends early", what);
    switch (info->framing) {
    case LV_FRAME_LENGTH:
        cr_expect(r.flags & F_CONTENT_LENGTH, "%s: no length", what);
        cr_expect(!(r.flags & F_CHUNKED), "%s: chunked too", what);
        cr_expect_eq(r.content_length, info->content_length, "%s", what);
        break;
    case LV_FRAME_CHUNKED:
        cr_expect(r.flags & F_CHUNKED, "%s: not chunked", what);
        cr_expect(!(r.flags & F_CONTENT_LENGTH), "%s: a length too", what);
        break;
    case LV_FRAME_CLOSE:
        cr_expect(!(r.flags & (F_CHUNKED | F_CONTENT_LENGTH)), "%s", what);
        cr_expect(r.needs_eof, "%s: not close-delimited", what);
        cr_expect(!r.keep_alive, "%s: close-delimited on a kept connection", what);
        break;
    case LV_FRAME_NONE: break;
    }
    if (info->framing != LV_FRAME_CLOSE) cr_expect_eq(r.keep_alive, info->keep_alive, "%s", what);
}

Test(rewrite_response, every_framing_parses_back_as_meant)
{
    const char *backend[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: Content-Length\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: Transfer-Encoding\r\n\r\n",
        "HTTP/1.1 200 OK\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\n\r\n",
        "HTTP/1.0 200 OK\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close, Content-Length\r\n\r\n",
    };
    const enum lv_framing framings[] = {LV_FRAME_LENGTH, LV_FRAME_CHUNKED, LV_FRAME_CLOSE};
    for (size_t i = 0; i < sizeof(backend) / sizeof(backend[0]); i++) {
        for (size_t k = 0; k < 3; k++) {
            for (int ka = 0; ka < 2; ka++) {
                for (int h10 = 0; h10 < 2; h10++) {
                    if (framings[k] == LV_FRAME_CLOSE && ka) continue; /* never asked */
                    struct lv_resp_info info = {.client_http10 = h10,
                                                .framing = framings[k],
                                                .content_length = 5,
                                                .keep_alive = ka};
                    struct head_fixture f;
                    parse(&f, HTTP_RESPONSE, backend[i]);
                    struct lv_buf *out = lv_buf_get(&f.pool);
                    cr_assert_eq(lv_rewrite_response(&f.head, &info, out), 0);
                    char what[64];
                    snprintf(what, sizeof(what), "head %zu framing %d ka %d http10 %d", i,
                             (int)framings[k], ka, h10);
                    expect_frames_as(out, &info, what);
                    lv_buf_unref(out);
                    fixture_dispose(&f);
                }
            }
        }
    }
}

/* --- chunk-size lines ------------------------------------------------------------ */

Test(chunk_header, values)
{
    char line[20];
    cr_expect_eq(lv_chunk_header(line, 0), 3);
    cr_expect_str_eq(line, "0\r\n");
    cr_expect_eq(lv_chunk_header(line, 26), 4);
    cr_expect_str_eq(line, "1a\r\n");
    cr_expect_eq(lv_chunk_header(line, 0x1a2b), 6);
    cr_expect_str_eq(line, "1a2b\r\n");
    cr_expect_eq(lv_chunk_header(line, 32768), 6);
    cr_expect_str_eq(line, "8000\r\n");
    cr_expect_eq(lv_chunk_header(line, UINT64_MAX), 18);
    cr_expect_str_eq(line, "ffffffffffffffff\r\n");
}

/* --- bugs: these fail until src/http/rewrite.c is fixed -------------------------- */

/* RFC 9112 §3.2.1: an absolute-form target with an empty path is sent in
 * origin-form as "/" followed by the query. */
Test(rewrite_bugs, absolute_form_with_query_and_no_path)
{
    expect_request("GET http://example.com?a=1 HTTP/1.1\r\n\r\n", &plain_fwd, NULL, 0,
                   "GET /?a=1 HTTP/1.1\r\n"
                   "Host: example.com\r\n"
                   "X-Forwarded-For: 10.0.0.1\r\n"
                   "X-Forwarded-Proto: http\r\n"
                   "X-Forwarded-Host: example.com\r\n"
                   "X-Real-IP: 10.0.0.1\r\n"
                   "\r\n");
}

/* "Connection: Host" marks Host hop-by-hop: it is removed, and because the
 * request had one, none is generated: the backend gets an HTTP/1.1 request
 * without Host (RFC 9112 §3.2: it must have exactly one). */
Test(rewrite_bugs, connection_naming_host_keeps_a_host)
{
    struct head_fixture f;
    parse(&f, HTTP_REQUEST, "GET / HTTP/1.1\r\nHost: example.com\r\nConnection: Host\r\n\r\n");
    struct lv_buf *out = lv_buf_get(&f.pool);
    cr_assert_eq(lv_rewrite_request(&f.head, &plain_fwd, out), 0);
    int hosts = 0;
    for (const char *p = out->data;
         (p = memmem(p, (size_t)(out->data + out->len - p), "\r\nHost: ", 8)) != NULL; p += 8)
        hosts++;
    cr_expect_eq(hosts, 1, "the request sent has %d Host fields:\n%.*s", hosts, (int)out->len,
                 out->data);
    lv_buf_unref(out);
    fixture_dispose(&f);
}

/* rewrite.h: lv_rewrite_request_size is an upper bound. The Host value is
 * written twice (Host and X-Forwarded-Host) but counted once, so a long
 * Host overflows a buffer of that size and the request fails (500). */
static void expect_size_bound(const char *req)
{
    struct head_fixture f;
    parse(&f, HTTP_REQUEST, req);
    size_t bound = lv_rewrite_request_size(&f.head, &plain_fwd);
    struct lv_buf *big = exact_buf(2 * bound + 4096);
    cr_assert_eq(lv_rewrite_request(&f.head, &plain_fwd, big), 0);
    cr_expect_leq(big->len, bound, "the head takes %u bytes, its size bound is %zu", big->len,
                  bound);
    lv_buf_unref(big);
    struct lv_buf *out = exact_buf(bound);
    cr_expect_eq(lv_rewrite_request(&f.head, &plain_fwd, out), 0,
                 "does not fit in a buffer of the size bound (%zu)", bound);
    lv_buf_unref(out);
    fixture_dispose(&f);
}

Test(rewrite_bugs, size_bound_holds_for_a_long_host)
{
    static char req[4096];
    char host[1501];
    memset(host, 'a', 1500);
    host[1500] = '\0';
    snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host);
    expect_size_bound(req);
}

/* Same, for the authority of an absolute-form target (Host and
 * X-Forwarded-Host both repeat it). */
Test(rewrite_bugs, size_bound_holds_for_a_long_absolute_authority)
{
    static char req[4096];
    char host[1501];
    memset(host, 'b', 1500);
    host[1500] = '\0';
    snprintf(req, sizeof(req), "GET http://%s/ HTTP/1.1\r\nHost: x\r\n\r\n", host);
    expect_size_bound(req);
}
