/*
 * Head checks (http/check.c): the Host / authority validator byte by byte
 * and port by port, request targets, and the framing, target and Host
 * rules on whole heads parsed as the proxy parses them.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http/check.h"
#include "unit/http/head_fixture.h"

#define BIG 8192

static bool auth_ok(const char *s)
{
    return lv_check_authority(s, strlen(s));
}

/* --- lv_check_authority ------------------------------------------------------- */

Test(check_authority, ordinary_hosts)
{
    const char *good[] = {
        "example.com",
        "Example.COM",
        "example.com.",
        "a",
        "localhost:8080",
        "127.0.0.1",
        "127.0.0.1:1",
        "10.0.0.1:65535",
        "xn--bcher-kva.example",
        "under_score.example",
        "tilde~.example",
        "a-b.c-d.example:443",
        "%41%62c.example",
        "[::1]",
        "[::1]:8080",
        "[2001:db8::7]:443",
        "[::ffff:192.0.2.1]",
        "[2001:db8:0:0:0:0:2:1]",
        "sub!$&'()*+;=delims",
        "a:0",
        "a:00080",
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        cr_expect(auth_ok(good[i]), "refused: '%s'", good[i]);
}

Test(check_authority, refused_shapes)
{
    const char *bad[] = {
        "",                 /* empty */
        ":80",              /* no host */
        "u@evil.example",   /* userinfo */
        "u:p@evil.example", /* userinfo with password */
        "@evil.example",
        "good.example@evil.example",
        "a.example, b.example", /* several hosts */
        "a.example,b.example",
        "a.example/path", /* a path */
        "a.example/",
        "a.example?q",
        "a.example#f",
        "a.example:",       /* empty port */
        "a.example:80:81",  /* two ports */
        "a.example:65536",  /* port out of range */
        "a.example:123456", /* six digits */
        "a.example:99999",
        "a.example:8o",
        "a.example:+80",
        "a.example:-1",
        "a.example: 80",
        "a example",
        "a\texample",
        "a.example\r\nX: y",
        "%4",  /* truncated escape */
        "%zz", /* not hex */
        "a%",
        "[::1",               /* unclosed literal */
        "::1",                /* bare IPv6 */
        "[::1]x",             /* junk after the literal */
        "[::1]:",             /* empty port */
        "[::1]:65536",        /* port out of range */
        "[]",                 /* empty literal */
        "[not-ipv6]",         /* not an address */
        "[fe80::1%25eth0]",   /* zone id */
        "[v1.fe80::a+en1]",   /* IPvFuture */
        "[127.0.0.1]",        /* IPv4 in brackets */
        "[::1][::1]",         /* two literals */
        "a[::1]",             /* a bracket inside a reg-name */
        "\"quoted\".example", /* not a reg-name character */
        "a<b>.example",
        "a\\b.example",
        "a{b}.example",
        "a|b.example",
        "a^b.example",
        "a`b.example",
        "caf\xc3\xa9.example", /* raw UTF-8 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect(!auth_ok(bad[i]), "accepted: '%s'", bad[i]);
}

Test(check_authority, every_byte_in_a_reg_name)
{
    /* exactly the RFC 3986 reg-name set (without ","), nothing else */
    const char *allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                          "-._~!$&'()*+;=";
    for (int c = 0; c < 256; c++) {
        char host[3] = {'a', (char)c, 'b'};
        bool want = c != 0 && strchr(allowed, c) != NULL;
        /* ':' starts a port ("b" is not one) and '%' an escape ("%b" is
         * cut short): both refused in this position. */
        cr_expect_eq(lv_check_authority(host, 3), want, "byte 0x%02x", c);
    }
}

Test(check_authority, every_port)
{
    char buf[32];
    for (unsigned p = 0; p <= 70000; p++) {
        int n = snprintf(buf, sizeof(buf), "h:%u", p);
        cr_assert_eq(lv_check_authority(buf, (size_t)n), p <= 65535, "port %u", p);
    }
    cr_expect(auth_ok("h:08080"), "leading zeros within 5 digits are digits");
    cr_expect(!auth_ok("h:065535"), "more than 5 digits");
}

Test(check_authority, length_is_respected)
{
    /* the validator reads n bytes, not up to a NUL */
    cr_expect(lv_check_authority("example.com@evil", 11));
    cr_expect(!lv_check_authority("example.com@evil", 12));
    cr_expect(!lv_check_authority("example.com", 0));
}

/* --- lv_check_target ---------------------------------------------------------- */

static bool target_ok(uint8_t method, const char *t)
{
    return lv_check_target(method, t, strlen(t));
}

Test(check_target, forms)
{
    cr_expect(target_ok(HTTP_GET, "/"));
    cr_expect(target_ok(HTTP_GET, "/a/b?c=d&e=%20f"));
    cr_expect(target_ok(HTTP_GET, "//double"));
    cr_expect(target_ok(HTTP_GET, "http://example.com/p"));
    cr_expect(target_ok(HTTP_GET, "HTTPS://example.com:8443?q"));
    cr_expect(target_ok(HTTP_GET, "http://example.com"));
    cr_expect(target_ok(HTTP_GET, "http://[::1]:8080/p"));
    cr_expect(target_ok(HTTP_OPTIONS, "*"));

    cr_expect(!target_ok(HTTP_GET, ""));
    cr_expect(!target_ok(HTTP_GET, "*"), "asterisk with GET");
    cr_expect(!target_ok(HTTP_POST, "*"), "asterisk with POST");
    cr_expect(!target_ok(HTTP_OPTIONS, "**"));
    cr_expect(!target_ok(HTTP_GET, "relative/path"));
    cr_expect(!target_ok(HTTP_GET, "example.com:443"), "authority-form");
    cr_expect(!target_ok(HTTP_GET, "ftp://example.com/"), "another scheme");
    cr_expect(!target_ok(HTTP_GET, "http:/example.com/"));
    cr_expect(!target_ok(HTTP_GET, "http://u@evil.example/"), "userinfo");
    cr_expect(!target_ok(HTTP_GET, "http://u:p@evil.example/"));
    cr_expect(!target_ok(HTTP_GET, "http://good.example#@evil.example/"));
    cr_expect(!target_ok(HTTP_GET, "http:///p"), "empty authority");
    cr_expect(!target_ok(HTTP_GET, "http://a,b/p"));
}

Test(check_target, every_byte)
{
    for (int c = 0; c < 256; c++) {
        char t[3] = {'/', (char)c, 'x'};
        bool want = c > 0x20 && c < 0x7f;
        cr_expect_eq(lv_check_target(HTTP_GET, t, 3), want, "byte 0x%02x", c);
    }
}

Test(check_target, absolute_split)
{
    const char *auth = NULL;
    size_t alen = 99;
    const char *t = "http://h:1/p?q";
    cr_expect_eq(lv_target_absolute(t, strlen(t), &auth, &alen), 10);
    cr_expect_eq(auth, t + 7);
    cr_expect_eq(alen, 3);
    t = "https://h?q";
    cr_expect_eq(lv_target_absolute(t, strlen(t), &auth, &alen), 9);
    cr_expect_eq(alen, 1);
    auth = NULL;
    alen = 99;
    t = "/http://h/";
    cr_expect_eq(lv_target_absolute(t, strlen(t), &auth, &alen), 0);
    cr_expect_null(auth);
    cr_expect_eq(alen, 99);
}

/* --- whole heads ---------------------------------------------------------------- */

/* The check of the request head in text, parsed (and classified) as the
 * proxy parses it. */
static enum lv_fail_kind request_check(const char *text)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_REQUEST, BIG, 100);
    f.complete_rc = HPE_PAUSED;
    llhttp_errno_t err = fixture_feed_str(&f, text);
    cr_assert(err == HPE_OK || err == HPE_PAUSED, "parse error %s for\n%s", llhttp_errno_name(err),
              text);
    cr_assert_eq(f.heads, 1, "head not complete:\n%s", text);
    enum lv_fail_kind kind = lv_check_request(&f.head);
    fixture_dispose(&f);
    return kind;
}

static enum lv_fail_kind response_check(const char *text)
{
    struct head_fixture f;
    fixture_init(&f, HTTP_RESPONSE, BIG, 100);
    f.complete_rc = HPE_PAUSED;
    llhttp_errno_t err = fixture_feed_str(&f, text);
    cr_assert(err == HPE_OK || err == HPE_PAUSED, "parse error %s for\n%s", llhttp_errno_name(err),
              text);
    cr_assert_eq(f.heads, 1, "head not complete:\n%s", text);
    enum lv_fail_kind kind = lv_check_response(&f.head);
    fixture_dispose(&f);
    return kind;
}

Test(check_request, ordinary_requests_pass)
{
    const char *ok[] = {
        "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET / HTTP/1.0\r\n\r\n",
        "GET / HTTP/1.0\r\nHost: example.com\r\n\r\n",
        "POST /u HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc",
        "POST /u HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
        "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "PUT /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http://example.com/p HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET http://example.com/p HTTP/1.0\r\n\r\n",
        "GET /x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        cr_expect_eq(request_check(ok[i]), LV_FAIL_NONE, "refused:\n%s", ok[i]);
}

Test(check_request, framing)
{
    const char *bad[] = {
        /* RFC 9112 §6.1: an HTTP/1.0 message with Transfer-Encoding */
        "POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        /* an empty Transfer-Encoding beside Content-Length (llhttp goes by
         * the length) */
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\nContent-Length: 3\r\n\r\nabc",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: \r\n\r\nabc",
        /* an empty Transfer-Encoding alone */
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n",
        /* a coding levee would strip the label of */
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"
        "\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(request_check(bad[i]), LV_FAIL_BAD_FRAMING, "not bad_framing:\n%s", bad[i]);
}

Test(check_request, target_and_host)
{
    const char *bad[] = {
        "GET http://u@evil.example/ HTTP/1.1\r\nHost: good.example\r\n\r\n",
        "GET http://u@evil.example/ HTTP/1.0\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
        "DELETE * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET ftp://example.com/ HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\n\r\n",                               /* no Host in 1.1 */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",         /* two */
        "GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n",         /* two in 1.0 */
        "GET / HTTP/1.1\r\nHost:\r\n\r\n",                      /* empty */
        "GET / HTTP/1.0\r\nHost: \r\n\r\n",                     /* empty in 1.0 */
        "GET / HTTP/1.1\r\nHost: u@evil.example\r\n\r\n",       /* userinfo */
        "GET / HTTP/1.1\r\nHost: a.example, b.example\r\n\r\n", /* a list */
        "GET / HTTP/1.1\r\nHost: a.example/path\r\n\r\n",       /* a path */
        "GET / HTTP/1.1\r\nHost: a.example:port\r\n\r\n",       /* not a port */
        "GET http://a.example/ HTTP/1.1\r\nHost: u@b\r\n\r\n",  /* a bad Host beside a target */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(request_check(bad[i]), LV_FAIL_BAD_REQUEST, "not bad_request:\n%s", bad[i]);
}

Test(check_request, hand_built_head_with_raw_bytes_in_the_target)
{
    /* llhttp's strict mode already refuses these on the wire; the check
     * holds on its own */
    const char *targets[] = {"/caf\xc3\xa9", "/a b", "/a\tb", "/\x7f"};
    for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
        struct lv_bufpool pool;
        lv_bufpool_init(&pool, 2);
        struct lv_head h;
        lv_head_init(&h, 1024, 10);
        cr_assert_eq(lv_head_add_target(&h, &pool, targets[i], strlen(targets[i])), 0);
        cr_assert_eq(lv_head_add_name(&h, &pool, "Host", 4), 0);
        cr_assert_eq(lv_head_add_value(&h, &pool, "h", 1), 0);
        h.method = HTTP_GET;
        lv_head_classify(&h, NULL, 0);
        cr_expect_eq(lv_check_request(&h), LV_FAIL_BAD_REQUEST, "target %zu", i);
        lv_head_dispose(&h);
        lv_bufpool_dispose(&pool);
    }
}

Test(check_response, framing)
{
    cr_expect_eq(response_check("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), LV_FAIL_NONE);
    cr_expect_eq(response_check("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
                 LV_FAIL_NONE);
    cr_expect_eq(response_check("HTTP/1.0 200 OK\r\n\r\n"), LV_FAIL_NONE);
    cr_expect_eq(response_check("HTTP/1.1 204 No Content\r\n\r\n"), LV_FAIL_NONE);

    const char *bad[] = {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\nContent-Length: 2\r\n\r\nok",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        "0\r\n\r\n",
        "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/0.9 200 OK\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_expect_eq(response_check(bad[i]), LV_FAIL_BAD_RESPONSE, "not bad_response:\n%s", bad[i]);
}
