/*
 * The path routes see (route/path.c): normalization case by case (escapes,
 * dot segments, slashes, encoded slashes and dots, invalid escapes), the
 * target split, and the host of a Host value.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "route/path.h"

/* The normalized form of in, or "<invalid>". */
static const char *norm(const char *in, char *out)
{
    ssize_t n = lv_path_normalize(in, strlen(in), out);
    if (n < 0) return "<invalid>";
    cr_assert_leq((size_t)n, strlen(in), "normalization made '%s' longer", in);
    out[n] = '\0';
    return out;
}

#define EXPECT_NORM(in, want)                                                                      \
    do {                                                                                           \
        char buf_[512];                                                                            \
        cr_expect_str_eq(norm(in, buf_), want, "normalize(%s)", in);                               \
    } while (0)

Test(path_normalize, plain_paths_are_unchanged)
{
    EXPECT_NORM("/", "/");
    EXPECT_NORM("/a", "/a");
    EXPECT_NORM("/a/b/c", "/a/b/c");
    EXPECT_NORM("/a/b/", "/a/b/");
    EXPECT_NORM("/A/B", "/A/B"); /* paths are case-sensitive */
    EXPECT_NORM("/a;b=c/d", "/a;b=c/d");
    EXPECT_NORM("/a\\b", "/a\\b"); /* a backslash is data, as nginx on Unix */
    EXPECT_NORM("/...", "/...");
    EXPECT_NORM("/.a/b.", "/.a/b.");
    EXPECT_NORM("*", "*");
}

Test(path_normalize, slashes_are_merged)
{
    EXPECT_NORM("//", "/");
    EXPECT_NORM("//a", "/a");
    EXPECT_NORM("/a//b", "/a/b");
    EXPECT_NORM("/a///b//", "/a/b/");
}

Test(path_normalize, dot_segments_are_resolved)
{
    EXPECT_NORM("/.", "/");
    EXPECT_NORM("/a/.", "/a/");
    EXPECT_NORM("/a/./b", "/a/b");
    EXPECT_NORM("/a/..", "/");
    EXPECT_NORM("/a/../", "/");
    EXPECT_NORM("/a/../b", "/b");
    EXPECT_NORM("/a/b/../../c", "/c");
    EXPECT_NORM("/a/b/../c/./d", "/a/c/d");
    EXPECT_NORM("/a/b/c/../../..", "/");
    EXPECT_NORM("/a//..//b", "/b");
}

Test(path_normalize, dot_dot_never_climbs_above_the_root)
{
    EXPECT_NORM("/..", "/");
    EXPECT_NORM("/../a", "/a");
    EXPECT_NORM("/../../../etc/passwd", "/etc/passwd");
    EXPECT_NORM("/a/../../b", "/b");
}

Test(path_normalize, unreserved_escapes_are_decoded)
{
    EXPECT_NORM("/%41%42c", "/ABc");
    EXPECT_NORM("/%7Euser", "/~user");
    EXPECT_NORM("/%7euser", "/~user");
    EXPECT_NORM("/a%2Db%5Fc%2e", "/a-b_c.");
    EXPECT_NORM("/%30%39", "/09");
}

Test(path_normalize, encoded_dots_are_dots)
{
    EXPECT_NORM("/a/%2e%2e/b", "/b");
    EXPECT_NORM("/a/%2E%2E/b", "/b");
    EXPECT_NORM("/a/.%2e/b", "/b");
    EXPECT_NORM("/a/%2e/b", "/a/b");
    EXPECT_NORM("/%2e%2e/%2e%2e/x", "/x");
}

Test(path_normalize, other_escapes_are_kept_in_upper_case)
{
    EXPECT_NORM("/a%2fb", "/a%2Fb");
    EXPECT_NORM("/a%2Fb", "/a%2Fb");
    EXPECT_NORM("/caf%c3%a9", "/caf%C3%A9");
    EXPECT_NORM("/a%20b", "/a%20b");
    EXPECT_NORM("/a%3Fb", "/a%3Fb");
    EXPECT_NORM("/%00", "/%00");
}

Test(path_normalize, an_encoded_slash_is_data_not_a_separator)
{
    /* "..%2F" is one segment, not ".." and a slash: nothing is climbed. */
    EXPECT_NORM("/a/..%2Fb", "/a/..%2Fb");
    EXPECT_NORM("/a/%2e%2e%2fadmin", "/a/..%2Fadmin");
    EXPECT_NORM("/x%2F..%2Fadmin", "/x%2F..%2Fadmin");
}

Test(path_normalize, no_double_decoding)
{
    EXPECT_NORM("/%252e%252e/x", "/%252e%252e/x");
    EXPECT_NORM("/%2541", "/%2541");
    EXPECT_NORM("/a/%25%32%65%25%32%65/b", "/a/%252e%252e/b");
}

Test(path_normalize, overlong_utf8_is_not_decoded)
{
    /* %C0%AE is an overlong '.', %C0%AF an overlong '/': bytes, kept. */
    EXPECT_NORM("/a/%c0%ae%c0%ae/b", "/a/%C0%AE%C0%AE/b");
    EXPECT_NORM("/a%c0%afb", "/a%C0%AFb");
    EXPECT_NORM("/%e0%80%ae", "/%E0%80%AE");
}

Test(path_normalize, invalid_escapes_are_refused)
{
    const char *bad[] = {"/%", "/%4", "/a%zz", "/%g1", "/%1g", "/a%", "/a%2", "/%%41", "/% 41"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[64];
        cr_expect_eq(lv_path_normalize(bad[i], strlen(bad[i]), out), -1, "%s", bad[i]);
    }
}

Test(path_normalize, a_path_must_be_origin_form)
{
    char out[64];
    cr_expect_eq(lv_path_normalize("", 0, out), -1);
    cr_expect_eq(lv_path_normalize("a/b", 3, out), -1);
    cr_expect_eq(lv_path_normalize("http://x/", 9, out), -1);
    cr_expect_eq(lv_path_normalize("**", 2, out), -1);
}

Test(path_normalize, never_longer_than_the_input_on_any_byte_mix)
{
    /* Every "/" + 4 bytes over an alphabet of the interesting ones. */
    const char alphabet[] = "/.%2eFfa";
    char in[5], out[5];
    size_t k = sizeof(alphabet) - 1;
    for (size_t a = 0; a < k; a++)
        for (size_t b = 0; b < k; b++)
            for (size_t c = 0; c < k; c++)
                for (size_t d = 0; d < k; d++) {
                    in[0] = '/';
                    in[1] = alphabet[a];
                    in[2] = alphabet[b];
                    in[3] = alphabet[c];
                    in[4] = alphabet[d];
                    ssize_t n = lv_path_normalize(in, 5, out);
                    if (n < 0) continue;
                    cr_assert_leq((size_t)n, 5u);
                    cr_assert_eq(out[0], '/');
                    /* Idempotent: a normalized path normalizes to itself. */
                    char again[5];
                    ssize_t m = lv_path_normalize(out, (size_t)n, again);
                    cr_assert_eq(m, n, "%.5s", in);
                    cr_assert_eq(memcmp(out, again, (size_t)n), 0, "%.5s", in);
                    /* No "//", no "." or ".." segment. */
                    for (ssize_t i = 0; i + 1 < n; i++)
                        cr_assert(!(out[i] == '/' && out[i + 1] == '/'), "%.5s", in);
                }
}

/* --- lv_target_split --------------------------------------------------------------- */

Test(target_split, path_and_query)
{
    size_t plen, qlen;
    const char *q;
    lv_target_split("/a/b?x=1&y", 10, &plen, &q, &qlen);
    cr_expect_eq(plen, 4);
    cr_expect_eq(qlen, 5);
    cr_expect_eq(memcmp(q, "x=1&y", 5), 0);

    lv_target_split("/a", 2, &plen, &q, &qlen);
    cr_expect_eq(plen, 2);
    cr_expect_null(q);
    cr_expect_eq(qlen, 0);

    lv_target_split("/a?", 3, &plen, &q, &qlen); /* an empty query is still one */
    cr_expect_eq(plen, 2);
    cr_expect_not_null(q);
    cr_expect_eq(qlen, 0);

    lv_target_split("/a?b?c", 6, &plen, &q, &qlen); /* the first '?' splits */
    cr_expect_eq(plen, 2);
    cr_expect_eq(qlen, 3);
}

/* --- lv_route_host ---------------------------------------------------------------- */

static const char *host(const char *in, char *out)
{
    ssize_t n = lv_route_host(in, in ? strlen(in) : 0, out);
    if (n < 0) return "<none>";
    out[n] = '\0';
    return out;
}

Test(route_host, port_case_and_trailing_dot)
{
    char out[LV_ROUTE_HOST_MAX + 1];
    cr_expect_str_eq(host("example.com", out), "example.com");
    cr_expect_str_eq(host("Example.COM", out), "example.com");
    cr_expect_str_eq(host("example.com:8080", out), "example.com");
    cr_expect_str_eq(host("example.com.", out), "example.com");
    cr_expect_str_eq(host("example.com.:443", out), "example.com");
    cr_expect_str_eq(host("127.0.0.1:80", out), "127.0.0.1");
    cr_expect_str_eq(host("[::1]:8080", out), "[::1]");
    cr_expect_str_eq(host("[2001:DB8::1]", out), "[2001:db8::1]");
    cr_expect_str_eq(host("%41pi.example", out), "%41pi.example"); /* not decoded */
}

Test(route_host, none)
{
    char out[LV_ROUTE_HOST_MAX + 1];
    cr_expect_str_eq(host(NULL, out), "<none>");
    cr_expect_str_eq(host("", out), "<none>");
    cr_expect_str_eq(host(":80", out), "<none>");
    cr_expect_str_eq(host(".", out), "<none>");
    cr_expect_str_eq(host("[::1", out), "<none>");
    char big[300];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    cr_expect_str_eq(host(big, out), "<none>");
    big[LV_ROUTE_HOST_MAX] = '\0';
    cr_expect_eq(strlen(host(big, out)), LV_ROUTE_HOST_MAX);
}
