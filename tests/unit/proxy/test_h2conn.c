/* HTTP/2 policy pieces (proxy/h2conn.c): the abuse rate counter with a fake
 * clock, :method to llhttp methods, and the connection-specific fields
 * HTTP/2 forbids. */
#include <criterion/criterion.h>
#include <llhttp.h>
#include <string.h>

#include "proxy/h2conn.h"

Test(h2_rate, burst_then_rate)
{
    struct lv_h2_rate r = {0};
    uint64_t now = 1000;
    /* A burst of 20 passes at once, the 21st does not. */
    for (int i = 0; i < 20; i++)
        cr_assert(lv_h2_rate_take(&r, now, 10, 20), "token %d", i);
    cr_assert_not(lv_h2_rate_take(&r, now, 10, 20));
    /* 10 per second come back: 100 ms gives one. */
    cr_assert(lv_h2_rate_take(&r, now + 100, 10, 20));
    cr_assert_not(lv_h2_rate_take(&r, now + 100, 10, 20));
    /* A long pause refills to the burst, not beyond. */
    now += 100000;
    int n = 0;
    while (lv_h2_rate_take(&r, now, 10, 20))
        n++;
    cr_assert_eq(n, 20);
}

Test(h2_rate, steady_under_rate_never_refused)
{
    struct lv_h2_rate r = {0};
    for (uint64_t t = 1; t < 60000; t += 200) /* 5 per second against 10 */
        cr_assert(lv_h2_rate_take(&r, t, 10, 20), "refused at %llu", (unsigned long long)t);
}

Test(h2_rate, flood_refused_within_burst)
{
    struct lv_h2_rate r = {0};
    int ok = 0;
    for (int i = 0; i < 10000; i++) /* all in the same millisecond */
        ok += lv_h2_rate_take(&r, 5, 100, 200);
    cr_assert_eq(ok, 200);
}

Test(h2_method, known_and_unknown)
{
    cr_assert_eq(lv_h2_method("GET", 3), HTTP_GET);
    cr_assert_eq(lv_h2_method("POST", 4), HTTP_POST);
    cr_assert_eq(lv_h2_method("OPTIONS", 7), HTTP_OPTIONS);
    cr_assert_eq(lv_h2_method("CONNECT", 7), HTTP_CONNECT);
    cr_assert_eq(lv_h2_method("get", 3), -1, "methods are case-sensitive");
    cr_assert_eq(lv_h2_method("GE", 2), -1);
    cr_assert_eq(lv_h2_method("PRI", 3), -1, "the preface's method is not a method");
    cr_assert_eq(lv_h2_method("DESCRIBE", 8), -1, "RTSP methods are not HTTP's");
    cr_assert_eq(lv_h2_method("", 0), -1);
}

Test(h2_fields, connection_specific)
{
    cr_assert(lv_h2_connection_specific("connection", 10));
    cr_assert(lv_h2_connection_specific("Keep-Alive", 10));
    cr_assert(lv_h2_connection_specific("proxy-connection", 16));
    cr_assert(lv_h2_connection_specific("transfer-encoding", 17));
    cr_assert(lv_h2_connection_specific("upgrade", 7));
    cr_assert_not(lv_h2_connection_specific("te", 2), "te: trailers is allowed");
    cr_assert_not(lv_h2_connection_specific("content-length", 14));
    cr_assert_not(lv_h2_connection_specific("connectio", 9));
}
