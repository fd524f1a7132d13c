/*
 * The local rate limiter (limit/limiter.c): the client limit before the
 * global one, the parameters each scope gives the algorithms, the
 * RateLimit-Policy / RateLimit fields (draft-ietf-httpapi-ratelimit-headers:
 * Structured Field Lists of Strings with Integer parameters), reuse across
 * reloads and reference counts. Fake clock throughout.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"
#include "limit/limiter.h"
#include "unit/lv_test.h"

#define SEC 1000000ull
#define T0 (1000 * SEC) /* a multiple of every window used here */

static struct lv_rate_cfg bucket_cfg(double rate, uint64_t burst, double client_rate,
                                     uint64_t client_burst)
{
    return (struct lv_rate_cfg){.rate = rate,
                                .burst = burst,
                                .client_rate = client_rate,
                                .client_burst = client_burst,
                                .max_clients = 1000,
                                .algorithm = LV_LIMIT_TOKEN_BUCKET,
                                .window = 1000};
}

static struct lv_rate_cfg window_cfg(double rate, double client_rate, uint64_t window_ms)
{
    return (struct lv_rate_cfg){.rate = rate,
                                .client_rate = client_rate,
                                .max_clients = 1000,
                                .algorithm = LV_LIMIT_SLIDING_WINDOW,
                                .window = window_ms};
}

static void check(struct lv_limiter *l, const struct lv_rate_cfg *c, const char *key, uint64_t now,
                  struct lv_limit_verdict *v)
{
    lv_limiter_check(l, c, key, key ? strlen(key) : 0, now, v);
}

/* ----------------------------------------------------------------- params */

Test(limiter_params, token_bucket)
{
    struct lv_rate_cfg c = bucket_cfg(100, 200, 5, 7);
    struct lv_limit_cfg p;
    lv_limiter_params(&c, LV_SCOPE_GLOBAL, &p);
    cr_expect_float_eq(p.rate, 100, 1e-9);
    cr_expect_eq(p.burst, 200);
    cr_expect_eq(p.window, SEC, "ms to µs");
    lv_limiter_params(&c, LV_SCOPE_CLIENT, &p);
    cr_expect_float_eq(p.rate, 5, 1e-9);
    cr_expect_eq(p.burst, 7);
    c.burst = (uint64_t)UINT32_MAX + 10;
    lv_limiter_params(&c, LV_SCOPE_GLOBAL, &p);
    cr_expect_eq(p.burst, UINT32_MAX, "clamped");
}

Test(limiter_params, sliding_window_allows_rate_times_window)
{
    struct lv_rate_cfg c = window_cfg(100, 5, 2000);
    struct lv_limit_cfg p;
    lv_limiter_params(&c, LV_SCOPE_CLIENT, &p);
    cr_expect_eq(p.burst, 10);
    cr_expect_eq(p.window, 2 * SEC);
    lv_limiter_params(&c, LV_SCOPE_GLOBAL, &p);
    cr_expect_eq(p.burst, 200);
    c.client_rate = 0.1; /* 0.2 per window: still one */
    lv_limiter_params(&c, LV_SCOPE_CLIENT, &p);
    cr_expect_eq(p.burst, 1);
    c.client_rate = 2.5;
    c.window = 1000;
    lv_limiter_params(&c, LV_SCOPE_CLIENT, &p);
    cr_expect_eq(p.burst, 2);
}

/* ------------------------------------------------------------------ check */

Test(limiter, client_limit_is_checked_first_and_spares_the_global)
{
    struct lv_rate_cfg c = bucket_cfg(1, 10, 1, 3);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    for (int i = 0; i < 3; i++) {
        check(l, &c, "ip:a", T0, &v);
        cr_expect(v.allowed, "a, take %d", i);
        cr_expect(v.has[LV_SCOPE_CLIENT]);
        cr_expect(v.has[LV_SCOPE_GLOBAL]);
        cr_expect_eq(v.r[LV_SCOPE_CLIENT].remaining, 2 - (unsigned)i);
        cr_expect_eq(v.r[LV_SCOPE_GLOBAL].remaining, 9 - (unsigned)i);
    }
    for (int i = 0; i < 100; i++) {
        check(l, &c, "ip:a", T0, &v);
        cr_expect_not(v.allowed);
        cr_expect_eq(v.denied_by, LV_SCOPE_CLIENT);
        cr_expect(v.has[LV_SCOPE_CLIENT]);
        cr_expect_not(v.has[LV_SCOPE_GLOBAL], "the global limit is not consulted");
        cr_expect_eq(v.r[LV_SCOPE_CLIENT].retry_us, SEC);
    }
    /* The 100 refusals cost the global bucket nothing: 7 are left. */
    const char *others[] = {"ip:b", "ip:c", "ip:d"};
    unsigned allowed = 0;
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 3; i++) {
            check(l, &c, others[k], T0, &v);
            if (v.allowed) allowed++;
        }
    }
    cr_expect_eq(allowed, 7);
    cr_expect_not(v.allowed);
    cr_expect_eq(v.denied_by, LV_SCOPE_GLOBAL);
    cr_expect(v.has[LV_SCOPE_CLIENT]);
    cr_expect(v.has[LV_SCOPE_GLOBAL]);
    cr_expect_eq(v.r[LV_SCOPE_GLOBAL].remaining, 0);
    cr_expect_eq(v.r[LV_SCOPE_GLOBAL].retry_us, SEC);
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter, global_limit_alone)
{
    struct lv_rate_cfg c = bucket_cfg(10, 4, 0, 0);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    for (int i = 0; i < 4; i++) {
        check(l, &c, i % 2 ? "ip:a" : "ip:b", T0, &v);
        cr_expect(v.allowed);
        cr_expect_not(v.has[LV_SCOPE_CLIENT], "no client limit configured");
        cr_expect(v.has[LV_SCOPE_GLOBAL]);
    }
    check(l, &c, "ip:c", T0, &v);
    cr_expect_not(v.allowed);
    cr_expect_eq(v.denied_by, LV_SCOPE_GLOBAL);
    cr_expect_eq(v.r[LV_SCOPE_GLOBAL].retry_us, 100000);
    check(l, &c, "ip:c", T0 + 100000, &v);
    cr_expect(v.allowed);
    cr_expect_eq(lv_ratetable_size(l->clients), 0, "no client state kept");
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter, client_limit_alone)
{
    struct lv_rate_cfg c = bucket_cfg(0, 0, 1, 2);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    char key[32];
    for (int k = 0; k < 50; k++) {
        snprintf(key, sizeof(key), "ip:10.0.0.%d", k);
        for (int i = 0; i < 2; i++) {
            check(l, &c, key, T0, &v);
            cr_expect(v.allowed, "%s take %d", key, i);
            cr_expect_not(v.has[LV_SCOPE_GLOBAL]);
        }
        check(l, &c, key, T0, &v);
        cr_expect_not(v.allowed);
        cr_expect_eq(v.denied_by, LV_SCOPE_CLIENT);
    }
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter, no_key_means_no_client_limit)
{
    struct lv_rate_cfg c = bucket_cfg(10, 5, 1, 1);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    for (int i = 0; i < 5; i++) {
        check(l, &c, NULL, T0, &v);
        cr_expect(v.allowed);
        cr_expect_not(v.has[LV_SCOPE_CLIENT]);
        cr_expect(v.has[LV_SCOPE_GLOBAL]);
    }
    check(l, &c, NULL, T0, &v);
    cr_expect_not(v.allowed);
    cr_expect_eq(v.denied_by, LV_SCOPE_GLOBAL);
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter, nothing_configured_allows_everything)
{
    struct lv_rate_cfg c = bucket_cfg(0, 0, 0, 0);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    for (int i = 0; i < 1000; i++) {
        check(l, &c, "ip:a", T0, &v);
        cr_expect(v.allowed);
        cr_expect_not(v.has[LV_SCOPE_CLIENT]);
        cr_expect_not(v.has[LV_SCOPE_GLOBAL]);
    }
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter, clients_refill_over_time)
{
    struct lv_rate_cfg c = bucket_cfg(100, 100, 2, 2); /* a client token every 500 ms */
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);
    check(l, &c, "ip:a", T0, &v);
    check(l, &c, "ip:a", T0, &v);
    cr_expect_not(v.allowed);
    cr_expect_eq(v.r[LV_SCOPE_CLIENT].retry_us, 500000);
    check(l, &c, "ip:a", T0 + 499999, &v);
    cr_expect_not(v.allowed);
    check(l, &c, "ip:a", T0 + 500000, &v);
    cr_expect(v.allowed);
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter, sliding_window_both_scopes)
{
    struct lv_rate_cfg c = window_cfg(8, 5, 1000); /* 8 in all, 5 each, per second */
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    for (int i = 0; i < 5; i++) {
        check(l, &c, "ip:a", T0, &v);
        cr_expect(v.allowed);
    }
    check(l, &c, "ip:a", T0, &v);
    cr_expect_not(v.allowed);
    cr_expect_eq(v.denied_by, LV_SCOPE_CLIENT);
    cr_expect_eq(v.r[LV_SCOPE_CLIENT].limit, 5);
    for (int i = 0; i < 3; i++) {
        check(l, &c, "ip:b", T0, &v);
        cr_expect(v.allowed, "b take %d", i);
        cr_expect_eq(v.r[LV_SCOPE_GLOBAL].limit, 8);
    }
    check(l, &c, "ip:b", T0, &v);
    cr_expect_not(v.allowed);
    cr_expect_eq(v.denied_by, LV_SCOPE_GLOBAL);
    /* Two windows later, all is forgotten. */
    for (int i = 0; i < 5; i++) {
        check(l, &c, "ip:a", T0 + 2 * SEC, &v);
        cr_expect(v.allowed);
    }
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

/* ---------------------------------------------------------------- headers */

/* A Structured Field List (RFC 8941 §3.1) as serialized (members joined by
 * ", "), each member a String with Integer parameters, among them `need`.
 * Collects the member names. Returns the member count, or -1. */
static int sf_list(const char *s, size_t n, char need, char names[][16], int max)
{
    size_t i = 0;
    int count = 0;
    if (n == 0) return -1; /* an empty List is not serialized at all */
    for (;;) {
        if (i >= n || s[i] != '"') return -1;
        i++;
        size_t start = i;
        while (i < n && s[i] != '"') {
            unsigned char ch = (unsigned char)s[i];
            if (ch < 0x20 || ch > 0x7e || ch == '\\') return -1;
            i++;
        }
        if (i >= n) return -1;
        if (count < max) {
            size_t len = i - start < 15 ? i - start : 15;
            memcpy(names[count], s + start, len);
            names[count][len] = '\0';
        }
        i++;
        bool seen = false;
        while (i < n && s[i] == ';') {
            i++;
            if (i >= n || !(islower((unsigned char)s[i]) || s[i] == '*')) return -1;
            char key = s[i];
            size_t klen = 0;
            while (i < n && (islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) ||
                             strchr("_-.*", s[i]))) {
                i++;
                klen++;
            }
            if (klen == 1 && key == need) seen = true;
            if (i >= n || s[i] != '=') return -1;
            i++;
            size_t digits = 0;
            while (i < n && isdigit((unsigned char)s[i])) {
                i++;
                digits++;
            }
            if (digits == 0 || digits > 15) return -1;
        }
        if (!seen) return -1;
        count++;
        if (i == n) return count;
        if (n - i < 3 || s[i] != ',' || s[i + 1] != ' ') return -1;
        i += 2;
    }
}

/* Every line of a lv_limiter_headers output is "Name: List\r\n" with a
 * valid List, and RateLimit names only policies RateLimit-Policy declared. */
static void expect_valid_fields(const char *out)
{
    char policies[4][16] = {{0}}, limits[4][16] = {{0}};
    int np = -1, nl = -1;
    const char *p = out;
    while (*p) {
        const char *eol = strstr(p, "\r\n");
        cr_assert_not_null(eol, "unterminated line in \"%s\"", out);
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        cr_assert_not_null(colon);
        cr_assert_eq(colon[1], ' ');
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 2;
        size_t vlen = (size_t)(eol - v);
        if (nlen == 16 && memcmp(p, "RateLimit-Policy", 16) == 0) {
            np = sf_list(v, vlen, 'q', policies, 4);
            cr_expect_gt(np, 0, "RateLimit-Policy value \"%.*s\"", (int)vlen, v);
        } else if (nlen == 9 && memcmp(p, "RateLimit", 9) == 0) {
            nl = sf_list(v, vlen, 'r', limits, 4);
            cr_expect_gt(nl, 0, "RateLimit value \"%.*s\"", (int)vlen, v);
        } else {
            cr_expect_fail("unexpected field \"%.*s\"", (int)nlen, p);
        }
        p = eol + 2;
    }
    if (np > 0 && nl > 0) {
        for (int i = 0; i < nl && i < 4; i++) {
            bool found = false;
            for (int j = 0; j < np && j < 4; j++)
                found |= strcmp(limits[i], policies[j]) == 0;
            cr_expect(found, "RateLimit names \"%s\", not a declared policy", limits[i]);
        }
    }
}

static void expect_headers(const struct lv_rate_cfg *c, const struct lv_limit_verdict *v,
                           bool policy, const char *want)
{
    char out[512];
    memset(out, '#', sizeof(out));
    size_t n = lv_limiter_headers(c, v, policy, out, sizeof(out));
    cr_expect_str_eq(out, want);
    cr_expect_eq(n, strlen(out), "returns the length written");
    expect_valid_fields(out);
}

Test(limiter_headers, allowed_with_both_limits)
{
    struct lv_rate_cfg c = bucket_cfg(100, 200, 5, 5);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);
    cr_assert(v.allowed);
    expect_headers(&c, &v, true,
                   "RateLimit-Policy: \"client\";q=5;w=1, \"global\";q=200;w=2\r\n"
                   "RateLimit: \"client\";r=4;t=1, \"global\";r=199;t=1\r\n");
    expect_headers(&c, &v, false, "RateLimit: \"client\";r=4;t=1, \"global\";r=199;t=1\r\n");
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter_headers, refused_by_the_client_limit)
{
    struct lv_rate_cfg c = bucket_cfg(100, 200, 5, 5);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    for (int i = 0; i < 6; i++)
        check(l, &c, "ip:a", T0, &v);
    cr_assert_not(v.allowed);
    cr_assert_eq(v.denied_by, LV_SCOPE_CLIENT);
    expect_headers(&c, &v, true,
                   "RateLimit-Policy: \"client\";q=5;w=1\r\n"
                   "RateLimit: \"client\";r=0;t=1\r\n");
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter_headers, refused_by_the_global_limit)
{
    struct lv_rate_cfg c = bucket_cfg(1, 2, 5, 5);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);
    check(l, &c, "ip:a", T0, &v);
    check(l, &c, "ip:b", T0 + 300000, &v);
    cr_assert_not(v.allowed);
    cr_assert_eq(v.denied_by, LV_SCOPE_GLOBAL);
    /* global: 2 tokens used, 0.3 s of refill: whole again in 1.7 s → 2. */
    expect_headers(&c, &v, true,
                   "RateLimit-Policy: \"client\";q=5;w=1, \"global\";q=2;w=2\r\n"
                   "RateLimit: \"client\";r=4;t=1, \"global\";r=0;t=2\r\n");
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter_headers, global_only)
{
    struct lv_rate_cfg c = bucket_cfg(50, 100, 0, 0);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);
    expect_headers(&c, &v, true,
                   "RateLimit-Policy: \"global\";q=100;w=2\r\n"
                   "RateLimit: \"global\";r=99;t=1\r\n");
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter_headers, window_rounds_up_to_whole_seconds)
{
    /* w is an Integer of seconds: 3 / 2 s = 1.5 → 2; 1 / 4 s → 1. */
    struct lv_rate_cfg c = bucket_cfg(2, 3, 4, 1);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);
    expect_headers(&c, &v, true,
                   "RateLimit-Policy: \"client\";q=1;w=1, \"global\";q=3;w=2\r\n"
                   "RateLimit: \"client\";r=0;t=1, \"global\";r=2;t=1\r\n");
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter_headers, sliding_window)
{
    struct lv_rate_cfg c = window_cfg(100, 5, 2000); /* 200 and 10 per 2 s */
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);
    check(l, &c, "ip:a", T0, &v);
    cr_assert(v.allowed);
    /* Two requests in this window count until the end of the next one. */
    expect_headers(&c, &v, true,
                   "RateLimit-Policy: \"client\";q=10;w=2, \"global\";q=200;w=2\r\n"
                   "RateLimit: \"client\";r=8;t=4, \"global\";r=198;t=4\r\n");
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

/* With no limit in the verdict (the store failed and on_store_error=deny
 * with only a client limit configured; or no client key), there is no
 * policy to describe: an empty List is not serialized (RFC 8941 §4.1), and
 * the draft makes both fields non-empty Lists. */
Test(limiter_headers, no_limit_no_fields)
{
    struct lv_rate_cfg c = bucket_cfg(0, 0, 5, 5);
    struct lv_limit_verdict v = {.allowed = false, .denied_by = LV_SCOPE_GLOBAL};
    char out[256];
    size_t n = lv_limiter_headers(&c, &v, true, out, sizeof(out));
    cr_expect_str_eq(out, "", "empty fields written: \"%s\"", out);
    cr_expect_eq(n, 0);
}

Test(limiter_headers, never_writes_past_cap)
{
    struct lv_rate_cfg c = bucket_cfg(100, 200, 5, 5);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);
    char full[512];
    size_t total = lv_limiter_headers(&c, &v, true, full, sizeof(full));
    cr_assert_gt(total, 0);
    for (size_t cap = 0; cap <= total + 1; cap++) {
        char out[600];
        memset(out, '#', sizeof(out));
        size_t n = lv_limiter_headers(&c, &v, true, out, cap);
        for (size_t i = cap; i < sizeof(out); i++) {
            if (out[i] != '#') {
                cr_expect_fail("cap %zu: byte %zu written", cap, i);
                break;
            }
        }
        if (cap == 0) {
            cr_expect_eq(n, 0);
            continue;
        }
        cr_expect_eq(n, strlen(out), "cap %zu: returned %zu, wrote %zu", cap, n, strlen(out));
        cr_expect_lt(n, cap, "cap %zu", cap);
        cr_expect_eq(strncmp(out, full, n), 0, "cap %zu: a prefix of the whole", cap);
    }
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter_headers, the_longest_fields_fit_the_request_buffer)
{
    /* proxy-t.h gives the fields 200 bytes. Burst 2^32 − 1 at 1/s: every
     * number has 10 digits. */
    struct lv_rate_cfg big = bucket_cfg(1, UINT32_MAX, 1, UINT32_MAX);
    struct lv_limit_verdict v = {.allowed = true};
    v.has[LV_SCOPE_CLIENT] = v.has[LV_SCOPE_GLOBAL] = true;
    v.r[LV_SCOPE_CLIENT] =
        (struct lv_limit_result){.remaining = UINT32_MAX, .reset_us = UINT32_MAX * SEC};
    v.r[LV_SCOPE_GLOBAL] = v.r[LV_SCOPE_CLIENT];
    char out[512];
    size_t n = lv_limiter_headers(&big, &v, true, out, sizeof(out));
    cr_expect_lt(n, 200, "%zu bytes: \"%s\"", n, out);
    cr_expect_str_eq(out, "RateLimit-Policy: \"client\";q=4294967295;w=4294967295, "
                          "\"global\";q=4294967295;w=4294967295\r\n"
                          "RateLimit: \"client\";r=4294967295;t=4294967295, "
                          "\"global\";r=4294967295;t=4294967295\r\n");
    expect_valid_fields(out);
}

/* w and t are Integers (up to 15 digits): a slow rate with a big burst
 * gives a window past 2^32 s, which must not wrap (the double-to-unsigned
 * conversion is undefined behaviour past UINT_MAX). */
Test(limiter_headers, long_windows_are_not_truncated)
{
    struct lv_rate_cfg c = bucket_cfg(0.001, 10000000, 0, 0); /* w = 10^10 s */
    struct lv_limit_verdict v = {.allowed = false, .denied_by = LV_SCOPE_GLOBAL};
    v.has[LV_SCOPE_GLOBAL] = true;
    v.r[LV_SCOPE_GLOBAL] =
        (struct lv_limit_result){.limit = 10000000, .reset_us = 10000000000 * SEC};
    char out[256];
    lv_limiter_headers(&c, &v, true, out, sizeof(out));
    cr_expect_str_eq(out, "RateLimit-Policy: \"global\";q=10000000;w=10000000000\r\n"
                          "RateLimit: \"global\";r=0;t=10000000000\r\n");
}

/* ---------------------------------------------------------- reuse and refs */

Test(limiter_reuse, same_shape_keeps_the_state)
{
    struct lv_rate_cfg c = bucket_cfg(10, 3, 1, 1);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    cr_expect_eq(atomic_load(&l->refs), 1);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);
    check(l, &c, "ip:b", T0, &v);
    /* A reload that changes rates but not the algorithm or table size. */
    struct lv_rate_cfg c2 = bucket_cfg(20, 3, 2, 1);
    struct lv_limiter *l2 = lv_limiter_reuse(l, &c2);
    cr_expect_eq(l2, l);
    cr_expect_eq(atomic_load(&l->refs), 2);
    check(l2, &c2, "ip:a", T0, &v);
    cr_expect_not(v.allowed, "a's client state survived the reload");
    cr_expect_eq(v.denied_by, LV_SCOPE_CLIENT);
    check(l2, &c2, "ip:c", T0, &v);
    cr_expect_not(v.allowed, "the global state survived the reload: only 1 of 3 left");
    lv_limiter_unref(l); /* the old generation goes */
    cr_expect_eq(atomic_load(&l2->refs), 1);
    lv_limiter_unref(l2);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter_reuse, new_shape_makes_a_new_limiter)
{
    struct lv_rate_cfg c = bucket_cfg(10, 3, 1, 1);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);

    struct lv_rate_cfg other_algo = c;
    other_algo.algorithm = LV_LIMIT_SLIDING_WINDOW;
    struct lv_limiter *l2 = lv_limiter_reuse(l, &other_algo);
    cr_assert_not_null(l2);
    cr_expect_neq(l2, l);
    cr_expect_eq(atomic_load(&l->refs), 1, "prev is not referenced again");
    cr_expect_eq(atomic_load(&l2->refs), 1);
    cr_expect_eq(l2->algorithm, LV_LIMIT_SLIDING_WINDOW);
    check(l2, &other_algo, "ip:a", T0, &v);
    cr_expect(v.allowed, "a new limiter starts afresh");

    struct lv_rate_cfg other_size = c;
    other_size.max_clients = 5000;
    struct lv_limiter *l3 = lv_limiter_reuse(l, &other_size);
    cr_assert_not_null(l3);
    cr_expect_neq(l3, l);
    cr_expect_eq(l3->max_clients, 5000);

    struct lv_limiter *l4 = lv_limiter_reuse(NULL, &c);
    cr_assert_not_null(l4);
    cr_expect_eq(atomic_load(&l4->refs), 1);

    lv_limiter_unref(l);
    lv_limiter_unref(l2);
    lv_limiter_unref(l3);
    lv_limiter_unref(l4);
    lv_limiter_unref(NULL);
    LV_EXPECT_NO_LEAKS();
}

Test(limiter_reuse, references)
{
    struct lv_rate_cfg c = bucket_cfg(10, 3, 1, 1);
    struct lv_limiter *l = lv_limiter_create(&c);
    cr_assert_not_null(l);
    for (int i = 0; i < 10; i++)
        lv_limiter_ref(l);
    cr_expect_eq(atomic_load(&l->refs), 11);
    struct lv_limit_verdict v;
    check(l, &c, "ip:a", T0, &v);
    for (int i = 0; i < 10; i++)
        lv_limiter_unref(l);
    cr_expect_eq(atomic_load(&l->refs), 1);
    check(l, &c, "ip:a", T0, &v); /* still usable */
    lv_limiter_unref(l);
    LV_EXPECT_NO_LEAKS();
}
