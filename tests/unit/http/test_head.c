/*
 * Message heads (http/head.c), filled through the llhttp glue as the proxy
 * fills them: fields in order, storage, lookup, token lists and the
 * hop-by-hop classification. The glue itself is in test_parser.c.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http/head.h"
#include "http/parser.h"
#include "unit/http/head_fixture.h"
#include "unit/lv_test.h"

#define BIG 8192

static const char simple_get[] = "GET /path?q=1 HTTP/1.1\r\n"
                                 "Host: example.com\r\n"
                                 "X-A: 1\r\n"
                                 "x-b:  two words  \r\n"
                                 "\r\n";

Test(head, request_fields)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, simple_get), HPE_OK);
    cr_expect_eq(f.heads, 1);
    cr_expect_eq(f.completes, 1);
    cr_expect_eq(f.head.method, HTTP_GET);
    cr_expect_eq(f.head.http_major, 1);
    cr_expect_eq(f.head.http_minor, 1);
    char t[64];
    cr_expect_str_eq(fixture_target(&f, t, sizeof(t)), "/path?q=1");
    cr_assert_eq(f.head.nfields, 3);
    fixture_expect_field(&f, 0, "Host", "example.com");
    fixture_expect_field(&f, 1, "X-A", "1");
    fixture_expect_field(&f, 2, "x-b", "two words");
    for (uint32_t i = 0; i < 3; i++)
        cr_expect_eq(f.head.fields[i].flags, 0, "field %u", i);
    fixture_dispose(&f);
}

Test(head, http10_request_and_method)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "POST /x HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc"), HPE_OK);
    cr_expect_eq(f.head.method, HTTP_POST);
    cr_expect_eq(f.head.http_major, 1);
    cr_expect_eq(f.head.http_minor, 0);
    cr_expect_eq(f.completes, 1);
    cr_expect_eq(f.body_len, 3);
    cr_expect_arr_eq(f.body, "abc", 3);
    fixture_dispose(&f);
}

Test(head, response_status_and_reason)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
                 HPE_OK);
    cr_expect_eq(f.head.status, 404);
    char t[64];
    cr_expect_str_eq(fixture_target(&f, t, sizeof(t)), "Not Found");
    cr_assert_eq(f.head.nfields, 1);
    fixture_expect_field(&f, 0, "Content-Length", "0");
    cr_expect_eq(f.completes, 1);
    fixture_dispose(&f);
}

Test(head, response_without_reason_or_fields)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "HTTP/1.1 204\r\n\r\n"), HPE_OK);
    cr_expect_eq(f.head.status, 204);
    cr_expect_eq(f.head.target_len, 0);
    cr_expect_eq(f.head.nfields, 0);
    cr_expect_not_null(f.head.buf, "a complete head always has storage");
    cr_expect_eq(f.heads, 1);
    fixture_dispose(&f);
}

Test(head, empty_value_then_next_field)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-Next: v\r\n\r\n"),
                 HPE_OK);
    cr_assert_eq(f.head.nfields, 3);
    fixture_expect_field(&f, 0, "Host", "h");
    fixture_expect_field(&f, 1, "X-Empty", "");
    fixture_expect_field(&f, 2, "X-Next", "v");
    fixture_dispose(&f);
}

Test(head, empty_value_with_spaces)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "GET / HTTP/1.1\r\nX-Empty:   \r\nX-Next: v\r\n\r\n"),
                 HPE_OK);
    cr_assert_eq(f.head.nfields, 2);
    fixture_expect_field(&f, 0, "X-Empty", "");
    fixture_expect_field(&f, 1, "X-Next", "v");
    fixture_dispose(&f);
}

Test(head, many_fields_grow_past_inline_storage)
{
    char req[4096];
    size_t n = (size_t)snprintf(req, sizeof(req), "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(req + n, sizeof(req) - n, "X-F%d: v%d\r\n", i, i);
    n += (size_t)snprintf(req + n, sizeof(req) - n, "\r\n");
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed(&f, req, n), HPE_OK);
    cr_assert_eq(f.head.nfields, 60);
    cr_expect_neq(f.head.fields, f.head.inline_fields);
    for (uint32_t i = 0; i < 60; i++) {
        char name[16], value[16];
        snprintf(name, sizeof(name), "X-F%u", i);
        snprintf(value, sizeof(value), "v%u", i);
        fixture_expect_field(&f, i, name, value);
    }
    fixture_dispose(&f); /* frees the grown array: ASan reports it otherwise */
    cr_expect_eq(f.head.fields, f.head.inline_fields);
    LV_EXPECT_NO_LEAKS();
}

Test(head, dispose_returns_the_buffer)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, simple_get), HPE_OK);
    cr_expect_eq(f.pool.out, 1, "the head holds one buffer");
    lv_head_dispose(&f.head);
    cr_expect_null(f.head.buf);
    cr_expect_eq(f.head.nfields, 0);
    cr_expect_eq(f.pool.out, 0);
    fixture_dispose(&f);
}

/* --- lookup ------------------------------------------------------------------ */

Test(head, find_is_case_insensitive_and_returns_the_first)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "GET / HTTP/1.1\r\nHost: h\r\nX-Dup: one\r\n"
                                      "x-dup: two\r\n\r\n"),
                 HPE_OK);
    const struct lv_hfield *h = LV_HEAD_FIND(&f.head, "HOST");
    cr_assert_not_null(h);
    cr_expect_eq(h, &f.head.fields[0]);
    const struct lv_hfield *d = LV_HEAD_FIND(&f.head, "x-DUP");
    cr_expect_eq(d, &f.head.fields[1]);
    cr_expect_null(LV_HEAD_FIND(&f.head, "X-Du"));
    cr_expect_null(LV_HEAD_FIND(&f.head, "X-Dupe"));
    cr_expect_null(LV_HEAD_FIND(&f.head, "Cookie"));
    cr_expect(LV_HFIELD_IS(&f.head, &f.head.fields[2], "X-DUP"));
    cr_expect_not(LV_HFIELD_IS(&f.head, &f.head.fields[2], "X-DU"));
    fixture_dispose(&f);
}

/* --- token lists ------------------------------------------------------------- */

static bool has(const char *list, const char *token)
{
    return lv_token_list_has(list, strlen(list), token, strlen(token));
}

Test(head, token_list_members)
{
    cr_expect(has("close", "close"));
    cr_expect(has("keep-alive, Close", "close"));
    cr_expect(has("Upgrade", "upgrade"));
    cr_expect(has(" , upgrade ,", "upgrade"));
    cr_expect(has("a,b,c", "b"));
    cr_expect(has("a ,\tb\t, c", "b"));
    cr_expect(has("a,,c", "c"));
}

Test(head, token_list_non_members)
{
    cr_expect_not(has("closed", "close"));
    cr_expect_not(has("close", "closed"));
    cr_expect_not(has("clo", "close"));
    cr_expect_not(has("keep-alive", "alive"));
    cr_expect_not(has("", "close"));
    cr_expect_not(has(" , ,", "close"));
    cr_expect_not(has("x-foo", "x-foobar"));
    cr_expect_not(has("x-foobar", "x-foo"));
}

Test(head, token_list_respects_length)
{
    /* only the first 5 bytes are the list */
    cr_expect(lv_token_list_has("close, upgrade", 5, "close", 5));
    cr_expect_not(lv_token_list_has("close, upgrade", 5, "upgrade", 7));
}

/* --- classification -------------------------------------------------------------- */

static uint32_t flags_of(const struct head_fixture *f, const char *name)
{
    const struct lv_hfield *h = lv_head_find(&f->head, name, strlen(name));
    cr_assert_not_null(h, "no field %s", name);
    return h->flags;
}

Test(head, classify_fixed_hop_by_hop_list)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "GET / HTTP/1.1\r\n"
                                      "Host: h\r\n"
                                      "Connection: keep-alive\r\n"
                                      "Keep-Alive: timeout=5\r\n"
                                      "Proxy-Connection: keep-alive\r\n"
                                      "TE: trailers\r\n"
                                      "Trailer: X-Sum\r\n"
                                      "Upgrade: websocket\r\n"
                                      "Accept: */*\r\n"
                                      "\r\n"),
                 HPE_OK);
    cr_expect_eq(flags_of(&f, "connection"), LV_HF_HOP);
    cr_expect_eq(flags_of(&f, "keep-alive"), LV_HF_HOP);
    cr_expect_eq(flags_of(&f, "proxy-connection"), LV_HF_HOP);
    cr_expect_eq(flags_of(&f, "te"), LV_HF_HOP);
    cr_expect_eq(flags_of(&f, "trailer"), LV_HF_HOP);
    cr_expect_eq(flags_of(&f, "upgrade"), LV_HF_HOP);
    cr_expect_eq(flags_of(&f, "host"), 0);
    cr_expect_eq(flags_of(&f, "accept"), 0);
    fixture_dispose(&f);
}

Test(head, classify_transfer_encoding_is_hop_by_hop)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "POST / HTTP/1.1\r\nHost: h\r\n"
                                      "Transfer-Encoding: chunked\r\n\r\n"
                                      "3\r\nabc\r\n0\r\n\r\n"),
                 HPE_OK);
    cr_expect_eq(flags_of(&f, "transfer-encoding"), LV_HF_HOP);
    cr_expect_eq(f.body_len, 3);
    cr_expect_eq(f.completes, 1);
    fixture_dispose(&f);
}

Test(head, classify_names_listed_in_connection)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "GET / HTTP/1.1\r\n"
                                      "X-Before: 1\r\n"
                                      "Connection: close, X-Before, x-after\r\n"
                                      "Connection: X-Second\r\n"
                                      "X-After: 2\r\n"
                                      "X-Second: 3\r\n"
                                      "X-After-Not: 4\r\n"
                                      "\r\n"),
                 HPE_OK);
    cr_expect_eq(flags_of(&f, "x-before"), LV_HF_HOP, "named before Connection");
    cr_expect_eq(flags_of(&f, "x-after"), LV_HF_HOP, "named after, in another case");
    cr_expect_eq(flags_of(&f, "x-second"), LV_HF_HOP, "named in a second Connection field");
    cr_expect_eq(flags_of(&f, "x-after-not"), 0, "a longer name is another field");
    fixture_dispose(&f);
}

/* Issue 11, finding 6: Connection may not take away what frames the message
 * (or says which host it is for). */
Test(head, classify_connection_cannot_name_framing_or_host)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "HTTP/1.1 200 OK\r\n"
                                      "Content-Length: 2\r\n"
                                      "Host: h\r\n"
                                      "X-A: 1\r\n"
                                      "Connection: Content-Length, Host, X-A\r\n"
                                      "\r\nok"),
                 HPE_OK);
    cr_expect_eq(flags_of(&f, "content-length"), 0);
    cr_expect_eq(flags_of(&f, "host"), 0);
    cr_expect_eq(flags_of(&f, "x-a"), LV_HF_HOP);
    fixture_dispose(&f);
}

Test(head, classify_drop_list)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    char *const drop[] = {"x-debug", "Cookie2"};
    f.p.drop = drop;
    f.p.ndrop = 2;
    cr_assert_eq(fixture_feed_str(&f, "GET / HTTP/1.1\r\n"
                                      "X-Debug: 1\r\n"
                                      "cookie2: a\r\n"
                                      "Connection: x-debug\r\n"
                                      "X-Debugger: 2\r\n"
                                      "\r\n"),
                 HPE_OK);
    cr_expect_eq(flags_of(&f, "x-debug"), LV_HF_DROP | LV_HF_HOP);
    cr_expect_eq(flags_of(&f, "cookie2"), LV_HF_DROP);
    cr_expect_eq(flags_of(&f, "x-debugger"), 0);
    fixture_dispose(&f);
}

Test(head, classify_trims_trailing_whitespace)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    cr_assert_eq(fixture_feed_str(&f, "GET / HTTP/1.1\r\n"
                                      "X-Sp: a b   \r\n"
                                      "X-Tab: c\t \t\r\n"
                                      "Connection: x-sp \t\r\n"
                                      "\r\n"),
                 HPE_OK);
    fixture_expect_field(&f, 0, "X-Sp", "a b");
    fixture_expect_field(&f, 1, "X-Tab", "c");
    fixture_expect_field(&f, 2, "Connection", "x-sp");
    cr_expect_eq(flags_of(&f, "x-sp"), LV_HF_HOP);
    fixture_dispose(&f);
}

Test(head, classify_direct_call)
{
    /* lv_head_classify on a head built with the add functions */
    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 2);
    struct lv_head h;
    lv_head_init(&h, 1024, 10);
    cr_assert_eq(lv_head_add_target(&h, &pool, "/", 1), 0);
    cr_assert_eq(lv_head_add_name(&h, &pool, "Conn", 4), 0);
    cr_assert_eq(lv_head_add_name(&h, &pool, "ection", 6), 0);
    cr_assert_eq(lv_head_add_value(&h, &pool, "x-a  ", 5), 0);
    cr_assert_eq(lv_head_add_name(&h, &pool, "X-A", 3), 0);
    cr_assert_eq(lv_head_add_value(&h, &pool, "1", 1), 0);
    cr_assert_eq(lv_head_add_value(&h, &pool, "2 ", 2), 0);
    cr_assert_eq(h.nfields, 2);
    char *const drop[] = {"x-a"};
    lv_head_classify(&h, drop, 1);
    cr_expect_eq(h.fields[0].flags, LV_HF_HOP);
    cr_expect_eq(h.fields[0].value_len, 3);
    cr_expect_eq(h.fields[1].flags, LV_HF_HOP | LV_HF_DROP);
    cr_expect_eq(h.fields[1].value_len, 2);
    cr_expect_arr_eq(lv_head_str(&h, h.fields[1].value), "12", 2);
    lv_head_dispose(&h);
    lv_bufpool_dispose(&pool);
}
