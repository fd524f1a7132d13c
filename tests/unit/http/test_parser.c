/*
 * The llhttp glue (http/parser.c): the owner's callbacks, the head limits
 * turned into failure kinds, reads split anywhere, pausing between messages,
 * and the failure kind of every parse error.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http/parser.h"
#include "unit/http/head_fixture.h"
#include "unit/lv_test.h"

#define BIG 8192

/* --- the owner's callbacks ------------------------------------------------------- */

Test(parser, on_head_no_body_skips_the_body)
{
    /* the answer to a HEAD request: a length, and no body follows */
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    f.head_rc = 1;
    cr_assert_eq(fixture_feed_str(&f, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"), HPE_OK);
    cr_expect_eq(f.completes, 1);
    cr_expect_eq(f.body_len, 0);
    fixture_dispose(&f);
}

Test(parser, on_head_stop_keeps_the_owners_failure)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    f.head_rc = -1;
    f.head_fail = LV_FAIL_METHOD;
    llhttp_errno_t err = fixture_feed_str(&f, "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n");
    cr_expect_neq(err, HPE_OK);
    cr_expect_neq(err, HPE_PAUSED);
    cr_expect_eq(f.heads, 1);
    cr_expect_eq(f.completes, 0);
    cr_expect_eq(lv_http_parser_failure(&f.p, err), LV_FAIL_METHOD);
    fixture_dispose(&f);
}

Test(parser, paused_after_a_message_tells_where_the_next_begins)
{
    static const char two[] = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n"
                              "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
    const size_t first = (sizeof(two) - 1) / 2;
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    f.complete_rc = HPE_PAUSED;
    struct lv_buf *b = lv_buf_get(&f.pool);
    lv_buf_append(b, two, sizeof(two) - 1);
    size_t consumed = 0;
    cr_expect_eq(lv_http_parser_execute(&f.p, b, b->data, b->len, &consumed), HPE_PAUSED);
    cr_expect_eq(consumed, first);
    cr_expect_eq(f.completes, 1);
    char t[16];
    cr_expect_str_eq(fixture_target(&f, t, sizeof(t)), "/1");
    /* the owner starts a new head and resumes where the first message ended */
    lv_head_dispose(&f.head);
    lv_head_init(&f.head, BIG, 100);
    llhttp_resume(&f.p.ll);
    cr_expect_eq(lv_http_parser_execute(&f.p, b, b->data + consumed, b->len - consumed, &consumed),
                 HPE_PAUSED);
    cr_expect_eq(consumed, first);
    cr_expect_eq(f.completes, 2);
    cr_expect_str_eq(fixture_target(&f, t, sizeof(t)), "/2");
    lv_buf_unref(b);
    fixture_dispose(&f);
}

/* --- limits ---------------------------------------------------------------------- */

static enum lv_fail_kind parse_failure(struct head_fixture *f, const char *req)
{
    llhttp_errno_t err = fixture_feed_str(f, req);
    cr_assert_neq(err, HPE_OK, "expected a parse error");
    return lv_http_parser_failure(&f->p, err);
}

Test(parser_limits, target_at_limit_passes)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    f.p.max_target = 10;
    cr_expect_eq(fixture_feed_str(&f, "GET /123456789 HTTP/1.1\r\n\r\n"), HPE_OK);
    cr_expect_eq(f.head.target_len, 10);
    fixture_dispose(&f);
}

Test(parser_limits, target_too_long)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    f.p.max_target = 10;
    cr_expect_eq(parse_failure(&f, "GET /1234567890 HTTP/1.1\r\n\r\n"), LV_FAIL_URI_TOO_LONG);
    cr_expect_eq(f.heads, 0);
    fixture_dispose(&f);
}

Test(parser_limits, target_too_long_across_reads)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    f.p.max_target = 10;
    cr_assert_eq(fixture_feed_str(&f, "GET /12345"), HPE_OK);
    llhttp_errno_t err = fixture_feed_str(&f, "67890 HTTP/1.1\r\n\r\n");
    cr_assert_neq(err, HPE_OK);
    cr_expect_eq(lv_http_parser_failure(&f.p, err), LV_FAIL_URI_TOO_LONG);
    fixture_dispose(&f);
}

Test(parser_limits, head_at_limit_passes)
{
    /* limit counts target + names + values: "/" + "Host" + "h" + "X-A" + "12" = 11 */
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, 11, 100);
    cr_expect_eq(fixture_feed_str(&f, "GET / HTTP/1.1\r\nHost: h\r\nX-A: 12\r\n\r\n"), HPE_OK);
    cr_expect_eq(f.heads, 1);
    fixture_dispose(&f);
}

Test(parser_limits, head_over_limit)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, 11, 100);
    cr_expect_eq(parse_failure(&f, "GET / HTTP/1.1\r\nHost: h\r\nX-A: 123\r\n\r\n"),
                 LV_FAIL_HEADERS_TOO_LARGE);
    cr_expect_eq(f.heads, 0);
    fixture_dispose(&f);
}

Test(parser_limits, head_over_limit_in_a_name)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, 11, 100);
    cr_expect_eq(parse_failure(&f, "GET / HTTP/1.1\r\nHost: h\r\nX-Long-Name: 1\r\n\r\n"),
                 LV_FAIL_HEADERS_TOO_LARGE);
    fixture_dispose(&f);
}

Test(parser_limits, head_over_limit_large_buffer)
{
    /* a limit above LV_BUF_SIZE: the head's storage is malloc'd */
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, LV_BUF_SIZE + 100, 1000);
    static char req[LV_BUF_SIZE + 400];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: ");
    memset(req + n, 'a', LV_BUF_SIZE + 100);
    n += LV_BUF_SIZE + 100;
    n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n\r\n");
    llhttp_errno_t err = fixture_feed(&f, req, n);
    cr_assert_neq(err, HPE_OK);
    cr_expect_eq(lv_http_parser_failure(&f.p, err), LV_FAIL_HEADERS_TOO_LARGE);
    fixture_dispose(&f);
    LV_EXPECT_NO_LEAKS();
}

Test(parser_limits, fields_at_limit_pass)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 3);
    cr_expect_eq(fixture_feed_str(&f, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), HPE_OK);
    cr_expect_eq(f.head.nfields, 3);
    fixture_dispose(&f);
}

Test(parser_limits, too_many_fields)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 3);
    cr_expect_eq(parse_failure(&f, "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"),
                 LV_FAIL_HEADERS_TOO_LARGE);
    fixture_dispose(&f);
}

Test(parser_limits, response_limits_are_bad_response)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 2);
    cr_expect_eq(parse_failure(&f, "HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"),
                 LV_FAIL_BAD_RESPONSE);
    fixture_dispose(&f);
    fixture_init(&f, HTTP_RESPONSE, 8, 100);
    cr_expect_eq(parse_failure(&f, "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"), LV_FAIL_BAD_RESPONSE);
    fixture_dispose(&f);
}

/* --- split reads ----------------------------------------------------------------- */

static const char split_req[] = "POST /a/b?c=d HTTP/1.1\r\n"
                                "Host: example.com:8080\r\n"
                                "User-Agent: test/1.0\r\n"
                                "X-Empty:\r\n"
                                "Accept:  text/html, */*  \r\n"
                                "Content-Length: 5\r\n"
                                "\r\n"
                                "hello";

static void expect_split_req(const struct head_fixture *f)
{
    char t[64];
    cr_expect_str_eq(fixture_target(f, t, sizeof(t)), "/a/b?c=d");
    cr_expect_eq(f->head.method, HTTP_POST);
    cr_assert_eq(f->head.nfields, 5);
    fixture_expect_field(f, 0, "Host", "example.com:8080");
    fixture_expect_field(f, 1, "User-Agent", "test/1.0");
    fixture_expect_field(f, 2, "X-Empty", "");
    fixture_expect_field(f, 3, "Accept", "text/html, */*");
    fixture_expect_field(f, 4, "Content-Length", "5");
    cr_expect_eq(f->heads, 1);
    cr_expect_eq(f->completes, 1);
    cr_expect_eq(f->body_len, 5);
    cr_expect_arr_eq(f->body, "hello", 5);
}

Test(parser_split, whole)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed(&f, split_req, sizeof(split_req) - 1), HPE_OK);
    expect_split_req(&f);
    fixture_dispose(&f);
}

Test(parser_split, at_every_offset)
{
    size_t n = sizeof(split_req) - 1;
    for (size_t k = 1; k < n; k++) {
        struct head_fixture f;
        fixture_init(&f, HTTP_REQUEST, BIG, 100);
        cr_assert_eq(fixture_feed(&f, split_req, k), HPE_OK, "first part, split at %zu", k);
        cr_assert_eq(fixture_feed(&f, split_req + k, n - k), HPE_OK, "second part, split at %zu",
                     k);
        expect_split_req(&f);
        fixture_dispose(&f);
    }
}

Test(parser_split, byte_by_byte)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    for (size_t k = 0; k < sizeof(split_req) - 1; k++)
        cr_assert_eq(fixture_feed(&f, split_req + k, 1), HPE_OK, "byte %zu", k);
    expect_split_req(&f);
    fixture_dispose(&f);
}

/* --- failure kinds --------------------------------------------------------------- */

Test(parser_failure, content_length_and_transfer_encoding)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                 LV_FAIL_BAD_FRAMING);
    fixture_dispose(&f);
}

Test(parser_failure, transfer_encoding_then_content_length)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
                                   "Content-Length: 5\r\n\r\n0\r\n\r\n"),
                 LV_FAIL_BAD_FRAMING);
    fixture_dispose(&f);
}

Test(parser_failure, two_different_content_lengths)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
                                   "Content-Length: 6\r\n\r\nhello!"),
                 LV_FAIL_BAD_FRAMING);
    fixture_dispose(&f);
}

Test(parser_failure, content_length_list)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n"),
                 LV_FAIL_BAD_FRAMING);
    fixture_dispose(&f);
}

Test(parser_failure, content_length_not_a_number)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: abc\r\n\r\n"),
                 LV_FAIL_BAD_FRAMING);
    fixture_dispose(&f);
}

Test(parser_failure, transfer_encoding_not_chunked)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"
                                   "abc"),
                 LV_FAIL_BAD_FRAMING);
    fixture_dispose(&f);
}

Test(parser_failure, transfer_encoding_chunked_not_last)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "POST / HTTP/1.1\r\nHost: h\r\n"
                                   "Transfer-Encoding: chunked, gzip\r\n\r\nabc"),
                 LV_FAIL_BAD_FRAMING);
    fixture_dispose(&f);
}

Test(parser_failure, bad_chunk_size)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "POST / HTTP/1.1\r\nHost: h\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
                 LV_FAIL_BAD_FRAMING);
    fixture_dispose(&f);
}

Test(parser_failure, garbage_is_bad_request)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "\x01\x02garbage\r\n\r\n"), LV_FAIL_BAD_REQUEST);
    fixture_dispose(&f);
}

Test(parser_failure, bad_version_is_bad_request)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "GET / HTTX/1.1\r\n\r\n"), LV_FAIL_BAD_REQUEST);
    fixture_dispose(&f);
}

Test(parser_failure, space_before_colon_in_framing_field)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    enum lv_fail_kind kind = parse_failure(&f, "POST / HTTP/1.1\r\nHost: h\r\n"
                                               "Transfer-Encoding : chunked\r\n"
                                               "Content-Length: 3\r\n\r\nabc");
    cr_expect_eq(lv_fail_info(kind)->status, 400, "kind %d", kind);
    fixture_dispose(&f);
}

Test(parser_failure, limit_failure_wins_over_llhttp_code)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    f.p.fail = LV_FAIL_URI_TOO_LONG;
    cr_expect_eq(lv_http_parser_failure(&f.p, HPE_USER), LV_FAIL_URI_TOO_LONG);
    fixture_dispose(&f);
}

Test(parser_failure, response_errors_are_bad_response)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    cr_expect_eq(parse_failure(&f, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
                                   "Content-Length: 2\r\n\r\n"),
                 LV_FAIL_BAD_RESPONSE);
    fixture_dispose(&f);
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    cr_expect_eq(parse_failure(&f, "garbage\r\n\r\n"), LV_FAIL_BAD_RESPONSE);
    fixture_dispose(&f);
}

/* --- bugs: these fail until src/http/parser.c is fixed --------------------------- */

/* RFC 9112 §5.1: a server MUST reject a request with whitespace between a
 * field name and the colon (400). llhttp 8.1 rejects it only for the framing
 * fields; for any other name it reports "Host " (with the space), which
 * levee then neither recognizes (Host, Connection, X-Forwarded-For...) nor
 * refuses, and forwards as "Host : h", to be read by the backend its own way
 * (a second Host, an X-Forwarded-For levee did not merge, a Keep-Alive it
 * did not strip). */
Test(parser_bugs, whitespace_before_colon_rejected)
{
    const char *reqs[] = {
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nHost : b\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For : 1.2.3.4\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\nKeep-Alive : 1\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        struct head_fixture f;
        fixture_init(&f, HTTP_REQUEST, BIG, 100);
        llhttp_errno_t err = fixture_feed_str(&f, reqs[i]);
        cr_expect_neq(err, HPE_OK, "request %zu accepted", i);
        if (err != HPE_OK)
            cr_expect_eq(lv_http_parser_failure(&f.p, err), LV_FAIL_BAD_REQUEST, "request %zu", i);
        cr_expect_eq(f.heads, 0, "request %zu reached on_head", i);
        fixture_dispose(&f);
    }
}

/* --- chunk extensions: parsed, dropped, capped per chunk ------------------------- */

/* A message whose chunks say "hello" and " world"; the first chunk header
 * carries an extension `e="..."` with a value of n1 bytes (name + quoted value
 * = n1 + 3 bytes), the second `f=...` with n2 (n2 + 1 bytes; none when 0). */
static size_t chunked_with_ext(char *out, size_t cap, llhttp_type_t type, size_t n1, size_t n2)
{
    size_t n = (size_t)snprintf(
        out, cap, "%s",
        type == HTTP_REQUEST ? "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                             : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    n += (size_t)snprintf(out + n, cap - n, "5;e=\"");
    memset(out + n, 'v', n1);
    n += n1;
    n += (size_t)snprintf(out + n, cap - n, "\"\r\nhello\r\n6");
    if (n2) {
        n += (size_t)snprintf(out + n, cap - n, ";f=");
        memset(out + n, 'w', n2);
        n += n2;
    }
    n += (size_t)snprintf(out + n, cap - n, "\r\n world\r\n0\r\n\r\n");
    cr_assert_lt(n, cap);
    return n;
}

static char ext_msg[3 * LV_CHUNK_EXT_MAX];

Test(parser_chunk_ext, up_to_the_cap_per_chunk_passes)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    /* each chunk header at the cap exactly: the count starts again per chunk */
    size_t n = chunked_with_ext(ext_msg, sizeof(ext_msg), HTTP_REQUEST, LV_CHUNK_EXT_MAX - 3,
                                LV_CHUNK_EXT_MAX - 1);
    cr_expect_eq(fixture_feed(&f, ext_msg, n), HPE_OK);
    cr_expect_eq(f.completes, 1);
    cr_expect_eq(f.body_len, 11);
    cr_expect_arr_eq(f.body, "hello world", 11);
    fixture_dispose(&f);
}

Test(parser_chunk_ext, over_the_cap_is_a_bad_request)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    size_t n = chunked_with_ext(ext_msg, sizeof(ext_msg), HTTP_REQUEST, 10, LV_CHUNK_EXT_MAX);
    llhttp_errno_t err = fixture_feed(&f, ext_msg, n);
    cr_assert_neq(err, HPE_OK);
    cr_expect_eq(lv_http_parser_failure(&f.p, err), LV_FAIL_BAD_REQUEST);
    cr_expect_eq(f.body_len, 5, "the first chunk went through");
    fixture_dispose(&f);
}

Test(parser_chunk_ext, over_the_cap_byte_by_byte)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    size_t n = chunked_with_ext(ext_msg, sizeof(ext_msg), HTTP_REQUEST, LV_CHUNK_EXT_MAX - 2, 0);
    llhttp_errno_t err = HPE_OK;
    for (size_t k = 0; k < n && err == HPE_OK; k++)
        err = fixture_feed(&f, ext_msg + k, 1);
    cr_assert_neq(err, HPE_OK, "pieces of one extension add up");
    cr_expect_eq(lv_http_parser_failure(&f.p, err), LV_FAIL_BAD_REQUEST);
    cr_expect_eq(f.body_len, 0);
    fixture_dispose(&f);
}

Test(parser_chunk_ext, over_the_cap_in_a_response_is_a_bad_response)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    size_t n = chunked_with_ext(ext_msg, sizeof(ext_msg), HTTP_RESPONSE, LV_CHUNK_EXT_MAX, 0);
    llhttp_errno_t err = fixture_feed(&f, ext_msg, n);
    cr_assert_neq(err, HPE_OK);
    cr_expect_eq(lv_http_parser_failure(&f.p, err), LV_FAIL_BAD_RESPONSE);
    fixture_dispose(&f);
}

Test(parser_chunk_ext, the_count_starts_again_with_each_message)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    size_t n = chunked_with_ext(ext_msg, sizeof(ext_msg), HTTP_REQUEST, 0, LV_CHUNK_EXT_MAX - 1);
    for (int i = 0; i < 3; i++) {
        lv_head_dispose(&f.head);
        lv_head_init(&f.head, BIG, 100);
        cr_expect_eq(fixture_feed(&f, ext_msg, n), HPE_OK, "message %d", i);
    }
    cr_expect_eq(f.completes, 3);
    fixture_dispose(&f);
}

/* --- trailers -------------------------------------------------------------------- */

/* The attack of issue 11 (finding 3): trailer fields that, added to the head
 * after it was checked, reached a backend as headers when the head was
 * serialized later (a fresh connection, a retry). */
static const char trailer_attack[] = "PUT /t HTTP/1.1\r\n"
                                     "Host: good.example\r\n"
                                     "Transfer-Encoding: chunked\r\n"
                                     "\r\n"
                                     "5\r\nhello\r\n"
                                     "0\r\n"
                                     "X-Internal-Auth: admin\r\n"
                                     "Host: evil.example\r\n"
                                     "Connection: close\r\n"
                                     "\r\n";

static void expect_trailer_attack_head(const struct head_fixture *f)
{
    cr_expect_eq(f->heads, 1);
    cr_expect_eq(f->completes, 1);
    cr_expect_eq(f->body_len, 5);
    cr_assert_eq(f->head.nfields, 2, "trailer fields entered the head (%u fields)",
                 f->head.nfields);
    fixture_expect_field(f, 0, "Host", "good.example");
    fixture_expect_field(f, 1, "Transfer-Encoding", "chunked");
    cr_expect_null(LV_HEAD_FIND(&f->head, "x-internal-auth"));
    cr_expect_null(LV_HEAD_FIND(&f->head, "connection"));
}

Test(parser_trailers, never_enter_the_head)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, trailer_attack), HPE_OK);
    expect_trailer_attack_head(&f);
    fixture_dispose(&f);
}

Test(parser_trailers, never_enter_the_head_at_any_split)
{
    size_t n = sizeof(trailer_attack) - 1;
    for (size_t k = 1; k < n; k++) {
        struct head_fixture f;
        fixture_init(&f, HTTP_REQUEST, BIG, 100);
        cr_assert_eq(fixture_feed(&f, trailer_attack, k), HPE_OK, "split at %zu", k);
        cr_assert_eq(fixture_feed(&f, trailer_attack + k, n - k), HPE_OK, "split at %zu", k);
        expect_trailer_attack_head(&f);
        fixture_dispose(&f);
    }
}

Test(parser_trailers, decide_nothing_about_the_connection)
{
    /* llhttp reads a trailer "Connection: close" as the head's: the next
     * request on the connection would be refused (strict mode) */
    static const char two[] = "PUT /t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "0\r\nConnection: close\r\n\r\n"
                              "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n";
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(fixture_feed_str(&f, two), HPE_OK);
    cr_expect_eq(f.completes, 2);
    fixture_dispose(&f);

    /* a head's own Connection: close still counts */
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    f.complete_rc = HPE_PAUSED;
    cr_expect_eq(fixture_feed_str(&f, "PUT /t HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n"
                                      "0\r\nConnection: keep-alive\r\n\r\n"),
                 HPE_PAUSED);
    cr_expect(!llhttp_should_keep_alive(&f.p.ll));
    fixture_dispose(&f);

    /* a backend saying close in its trailers does not get its connection
     * reused: the safe reading */
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    f.complete_rc = HPE_PAUSED;
    cr_expect_eq(fixture_feed_str(&f, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      "0\r\nConnection: close\r\n\r\n"),
                 HPE_PAUSED);
    cr_expect(!llhttp_should_keep_alive(&f.p.ll));
    fixture_dispose(&f);
}

Test(parser_trailers, a_response_trailer_is_dropped_too)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f,
                                  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "2\r\nok\r\n0\r\nX-Checksum: 1\r\nContent-Length: 99\r\n\r\n"),
                 HPE_OK);
    cr_expect_eq(f.completes, 1);
    cr_expect_eq(f.head.nfields, 1);
    cr_expect_null(LV_HEAD_FIND(&f.head, "content-length"));
    fixture_dispose(&f);
}

Test(parser_trailers, count_against_the_head_limits)
{
    /* bytes: a trailer section has the room a head has (40 bytes of names
     * and values here), on its own */
    static const char body[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "0\r\n";
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, 40, 100);
    cr_assert_eq(fixture_feed_str(&f, body), HPE_OK);
    cr_expect_eq(fixture_feed_str(&f, "X-A: 0123456789012345678901234567890123456\r\n"), HPE_OK);
    cr_expect_eq(fixture_feed_str(&f, "X: 12\r\n"), HPE_USER, "41 bytes");
    cr_expect_eq(f.p.fail, LV_FAIL_HEADERS_TOO_LARGE);
    cr_expect_eq(f.completes, 0);
    fixture_dispose(&f);

    /* fields: 3 allowed, as in the head */
    fixture_init(&f, HTTP_REQUEST, BIG, 3);
    cr_assert_eq(fixture_feed_str(&f, body), HPE_OK);
    cr_assert_eq(fixture_feed_str(&f, "A: 1\r\nB: 2\r\nC: 3\r\n"), HPE_OK);
    cr_expect_eq(lv_http_parser_failure(&f.p, fixture_feed_str(&f, "D: 4\r\n")),
                 LV_FAIL_HEADERS_TOO_LARGE);
    fixture_dispose(&f);

    /* a trailer name fed byte by byte is one field (of 2 allowed) */
    fixture_init(&f, HTTP_REQUEST, BIG, 2);
    cr_assert_eq(fixture_feed_str(&f, body), HPE_OK);
    static const char one[] = "X-Long-Name: v\r\nX-Other-Name: w\r\n\r\n";
    for (size_t k = 0; k < sizeof(one) - 1; k++)
        cr_assert_eq(fixture_feed(&f, one + k, 1), HPE_OK, "byte %zu", k);
    cr_expect_eq(f.completes, 1);
    fixture_dispose(&f);
}

Test(parser_trailers, limits_start_again_with_each_message)
{
    static const char one[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                              "0\r\nA: 1\r\nB: 2\r\n\r\n";
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 2);
    for (int i = 0; i < 3; i++) {
        cr_expect_eq(fixture_feed_str(&f, one), HPE_OK, "message %d", i);
        cr_expect_eq(f.completes, i + 1);
        lv_head_dispose(&f.head); /* the owner's next head */
        lv_head_init(&f.head, BIG, 2);
    }
    fixture_dispose(&f);
}

/* --- versions -------------------------------------------------------------------- */

Test(parser_version, only_http_1_0_and_1_1)
{
    const char *versions[] = {"HTTP/0.9", "HTTP/1.2", "HTTP/1.9", "HTTP/2.0",
                              "HTTP/3.0", "HTTP/0.0", "HTTP/9.9"};
    for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
        char req[128];
        snprintf(req, sizeof(req), "GET / %s\r\nHost: h\r\n\r\n", versions[i]);
        struct head_fixture f;
        fixture_init(&f, HTTP_REQUEST, BIG, 100);
        llhttp_errno_t err = fixture_feed_str(&f, req);
        cr_expect_neq(err, HPE_OK, "%s accepted", versions[i]);
        cr_expect_eq(lv_http_parser_failure(&f.p, err), LV_FAIL_VERSION, "%s", versions[i]);
        cr_expect_eq(f.heads, 0, "%s reached on_head", versions[i]);
        fixture_dispose(&f);
    }
    const char *ok[] = {"GET / HTTP/1.0\r\n\r\n", "GET / HTTP/1.1\r\nHost: h\r\n\r\n"};
    for (size_t i = 0; i < 2; i++) {
        struct head_fixture f;
        fixture_init(&f, HTTP_REQUEST, BIG, 100);
        cr_expect_eq(fixture_feed_str(&f, ok[i]), HPE_OK);
        cr_expect_eq(f.heads, 1);
        fixture_dispose(&f);
    }
}

Test(parser_version, simple_request_and_h2_preface_are_505)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "GET /\r\n\r\n"), LV_FAIL_VERSION);
    fixture_dispose(&f);
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), LV_FAIL_VERSION);
    fixture_dispose(&f);
}

Test(parser_version, malformed_version_is_bad_request)
{
    const char *reqs[] = {"GET / HTTP/1.\r\n\r\n", "GET / HTTP/11\r\n\r\n",
                          "GET / HTTP/a.1\r\n\r\n", "GET / HTTP/1.1x\r\n\r\n"};
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        struct head_fixture f;
        fixture_init(&f, HTTP_REQUEST, BIG, 100);
        cr_expect_eq(parse_failure(&f, reqs[i]), LV_FAIL_BAD_REQUEST, "%s", reqs[i]);
        fixture_dispose(&f);
    }
}

Test(parser_version, responses_keep_llhttps_rules)
{
    /* a response version is the backend's business: checked later
     * (lv_check_response), not refused by the parser */
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    cr_expect_eq(fixture_feed_str(&f, "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"), HPE_OK);
    cr_expect_eq(f.heads, 1);
    fixture_dispose(&f);
}

/* --- strict mode ----------------------------------------------------------------- */

Test(parser_strict, bare_cr_is_no_line_end)
{
    const char *reqs[] = {
        /* a CR alone after a header line: the loose parser took it as the
         * end of the head, and "Some-Header: y" as the next request */
        "GET / HTTP/1.1\r\nHost: x\r\n\rSome-Header: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\rSome-Header: y\r\n\r\n",
        "GET / HTTP/1.1\rHost: x\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
        struct head_fixture f;
        fixture_init(&f, HTTP_REQUEST, BIG, 100);
        cr_expect_eq(parse_failure(&f, reqs[i]), LV_FAIL_BAD_REQUEST, "request %zu", i);
        cr_expect_eq(f.heads, 0, "request %zu reached on_head", i);
        fixture_dispose(&f);
    }
}

Test(parser_strict, chunk_data_needs_its_crlf)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    llhttp_errno_t err = fixture_feed_str(&f, "POST / HTTP/1.1\r\nHost: h\r\n"
                                              "Transfer-Encoding: chunked\r\n\r\n"
                                              "3\r\nabcX0\r\n\r\n");
    cr_expect_neq(err, HPE_OK);
    cr_expect_eq(f.completes, 0);
    fixture_dispose(&f);
}

Test(parser_strict, raw_non_ascii_target)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_expect_eq(parse_failure(&f, "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n"),
                 LV_FAIL_BAD_REQUEST);
    cr_expect_eq(f.heads, 0);
    fixture_dispose(&f);
}
