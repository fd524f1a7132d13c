/*
 * Cache keys (cache/key.c): the primary key from the configured parts, the
 * same-origin rule for Location and Content-Location (RFC 9111 §4.4), and
 * Vary's secondary keys with their normalization (§4.1).
 */
#include <criterion/criterion.h>
#include <llhttp.h>

#include "cache/key.h"
#include "unit/cache/fields_fixture.h"

static struct lv_cache_req req(uint8_t method, bool tls, const char *host, const char *target,
                               const struct lv_fields *f)
{
    static const struct lv_fields none = {"", NULL, 0};
    struct lv_cache_req r = {
        method, tls, target, strlen(target), host, host ? strlen(host) : 0, f ? *f : none};
    return r;
}

/* The key as a string ("" when there is none). */
static const char *key(uint32_t parts, struct lv_cache_req r, char *out)
{
    struct lv_cache_key k;
    lv_cache_key_init(&k);
    out[0] = '\0';
    if (lv_cache_key_of_req(&k, parts, &r) == 0) {
        memcpy(out, k.p, k.len);
        out[k.len] = '\0';
    }
    lv_cache_key_dispose(&k);
    return out;
}

Test(key, default_parts)
{
    char b[512];
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "Example.COM", "/a/b?x=1", NULL), b),
                     "GET example.com /a/b?x=1");
    /* HEAD is answered from GET. */
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_HEAD, false, "example.com", "/a", NULL), b),
                     "GET example.com /a");
    /* An empty query is a query. */
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "example.com", "/a?", NULL), b),
                     "GET example.com /a?");
    /* Other methods have no key. */
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_POST, false, "example.com", "/a", NULL), b), "");
}

Test(key, default_ports_are_dropped)
{
    char b[512];
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "example.com:80", "/", NULL), b),
                     "GET example.com /");
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, true, "example.com:443", "/", NULL), b),
                     "GET example.com /");
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "example.com:443", "/", NULL), b),
                     "GET example.com:443 /");
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "[::1]:8080", "/", NULL), b),
                     "GET [::1]:8080 /");
}

Test(key, parts)
{
    char b[512];
    struct lv_cache_req r = req(HTTP_GET, true, "h", "/p?q", NULL);
    cr_expect_str_eq(key(LV_CKEY_PATH, r, b), "/p");
    cr_expect_str_eq(key(LV_CKEY_PATH | LV_CKEY_QUERY, r, b), "/p?q");
    cr_expect_str_eq(key(LV_CKEY_SCHEME | LV_CKEY_HOST | LV_CKEY_PATH, r, b), "https h /p");
    cr_expect_str_eq(
        key(LV_CKEY_METHOD | LV_CKEY_SCHEME | LV_CKEY_HOST | LV_CKEY_PATH | LV_CKEY_QUERY,
            req(HTTP_GET, false, "h", "/p?q", NULL), b),
        "GET http h /p?q");
    cr_expect_str_eq(key(LV_CKEY_QUERY, r, b), "?q");
}

Test(key, absolute_form_and_odd_targets)
{
    char b[512];
    cr_expect_str_eq(
        key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "ignored", "http://Other.example/x?y", NULL), b),
        "GET other.example /x?y");
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, NULL, "http://h", NULL), b),
                     "GET h /");
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, NULL, "/x", NULL), b), "");
    cr_expect_str_eq(key(LV_CKEY_PATH, req(HTTP_GET, false, NULL, "/x", NULL), b), "/x");
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "h", "*", NULL), b), "");
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "h", "/x#frag", NULL), b),
                     "GET h /x");
}

Test(key, long_keys)
{
    static char target[LV_CACHE_KEY_MAX + 10];
    memset(target, 'a', sizeof(target) - 1);
    target[0] = '/';
    target[sizeof(target) - 1] = '\0';
    char *b = malloc(LV_CACHE_KEY_MAX + 1);
    cr_expect_str_eq(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "h", target, NULL), b), "");
    target[LV_CACHE_KEY_MAX - 6] = '\0'; /* "GET h " + target: exactly the limit */
    cr_expect_eq(strlen(key(LV_CKEY_DEFAULT, req(HTTP_GET, false, "h", target, NULL), b)),
                 LV_CACHE_KEY_MAX);
    free(b);
}

static const char *ref_key(const struct lv_cache_req *r, const char *ref, char *out)
{
    struct lv_cache_key k;
    lv_cache_key_init(&k);
    out[0] = '\0';
    if (lv_cache_key_of_ref(&k, LV_CKEY_DEFAULT, r, ref, strlen(ref)) == 0) {
        memcpy(out, k.p, k.len);
        out[k.len] = '\0';
    } else {
        memcpy(out, "-", 2);
    }
    lv_cache_key_dispose(&k);
    return out;
}

Test(key, location_same_origin_only)
{
    char b[512];
    struct lv_cache_req r = req(HTTP_POST, false, "Example.com", "/items", NULL);
    cr_expect_str_eq(ref_key(&r, "/items/7", b), "GET example.com /items/7");
    cr_expect_str_eq(ref_key(&r, " http://example.com:80/items/7?x ", b),
                     "GET example.com /items/7?x");
    cr_expect_str_eq(ref_key(&r, "http://EXAMPLE.com/a", b), "GET example.com /a");
    cr_expect_str_eq(ref_key(&r, "https://example.com/a", b), "-"); /* another scheme */
    cr_expect_str_eq(ref_key(&r, "http://evil.example/a", b), "-");
    cr_expect_str_eq(ref_key(&r, "//example.com/a", b), "-");
    cr_expect_str_eq(ref_key(&r, "items/7", b), "-");
    cr_expect_str_eq(ref_key(&r, "", b), "-");
}

static const char *vkey(const char *names, const struct lv_fields *req_fields, char *out)
{
    size_t len;
    if (lv_cache_vary_key(names, strlen(names), req_fields, out, 512, &len) != 0) return "-";
    out[len] = '\0';
    return out;
}

Test(vary, names)
{
    struct tfields t;
    char out[64];
    size_t len;
    cr_assert_eq(lv_cache_vary_names(TF(&t, "Vary: Accept-Encoding, User-Agent", "Vary: x-A"), out,
                                     sizeof(out), &len),
                 0);
    out[len] = '\0';
    cr_expect_str_eq(out, "accept-encoding,user-agent,x-a");
    cr_assert_eq(lv_cache_vary_names(TF(&t, "Content-Type: x"), out, sizeof(out), &len), 0);
    cr_expect_eq(len, 0);
    cr_expect_eq(lv_cache_vary_names(TF(&t, "Vary: a, *"), out, sizeof(out), &len), -1);
    cr_expect_eq(lv_cache_vary_names(TF(&t, "Vary: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa, "
                                            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"),
                                     out, sizeof(out), &len),
                 -1);
}

Test(vary, normalized_values)
{
    struct tfields a, b;
    char x[512], y[512];
    /* Lines combined, whitespace around elements dropped, Accept-* case-folded. */
    cr_expect_str_eq(
        vkey("accept-encoding", TF(&a, "Accept-Encoding: GZIP,  br"), x),
        vkey("accept-encoding", TF(&b, "accept-encoding: gzip", "Accept-Encoding:br"), y));
    /* Other fields keep their case. */
    cr_expect_str_neq(vkey("x-token", TF(&a, "X-Token: A"), x),
                      vkey("x-token", TF(&b, "X-Token: a"), y));
    /* Absent is not empty. */
    cr_expect_str_neq(vkey("x-token", TF_EMPTY(&a), x), vkey("x-token", TF(&b, "X-Token: "), y));
    /* Order of elements matters (no reordering). */
    cr_expect_str_neq(vkey("accept-encoding", TF(&a, "Accept-Encoding: gzip, br"), x),
                      vkey("accept-encoding", TF(&b, "Accept-Encoding: br, gzip"), y));
    /* Several names, each its own. */
    cr_expect_str_eq(vkey("accept,x-a", TF(&a, "X-A: 1", "Accept: Text/HTML"), x),
                     "=text/html\n=1\n");
    cr_expect_str_eq(vkey("accept,x-a", TF(&a, "X-A: 1"), x), "-\n=1\n");
}

Test(vary, too_long)
{
    static char big[8000];
    memset(big, 'v', sizeof(big) - 1);
    memcpy(big, "X-A: ", 5);
    struct tfields a;
    char out[512];
    cr_expect_str_eq(vkey("x-a", tf_fill(&a, (const char *const[]){big, NULL}), out), "-");
}
