/*
 * The admin port's request guard (admin/guard.c): which Host values name the
 * listener (DNS rebinding), which Origins are its own, the bearer token
 * compare, allowed_hosts entries, and the verdict for a whole request.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "admin/guard.h"

static struct lv_admin_site site_at(const char *ip, uint16_t port)
{
    struct lv_admin_site s;
    memset(&s, 0, sizeof(s));
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(port);
        cr_assert_eq(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1, "%s", ip);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_port = htons(port);
        cr_assert_eq(inet_pton(AF_INET, ip, &in->sin_addr), 1, "%s", ip);
    }
    lv_admin_site_set_local(&s, (struct sockaddr *)&ss);
    return s;
}

static bool host_ok(const struct lv_admin_site *s, const char *v)
{
    return lv_admin_authority_ok(s, v, strlen(v), 80);
}

static bool origin_ok(const struct lv_admin_site *s, const char *v)
{
    return lv_admin_origin_ok(s, v, strlen(v));
}

Test(guard, host_on_an_ipv4_loopback_listener)
{
    struct lv_admin_site s = site_at("127.0.0.1", 9901);
    cr_expect(lv_admin_site_loopback(&s));
    const char *ok[] = {"127.0.0.1:9901", "localhost:9901", "LocalHost:9901", "127.0.0.1:09901"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        cr_expect(host_ok(&s, ok[i]), "%s should pass", ok[i]);
    const char *no[] = {
        "evil.example:9901", /* a rebinding page's own name */
        "evil.example",
        "127.0.0.1", /* port 80 */
        "127.0.0.1:9902",
        "127.0.0.2:9901", /* another loopback address: not where it arrived */
        "[::1]:9901",
        "localhost",
        "localhost.:9901",
        "sub.localhost:9901",
        "127.1:9901",
        "0x7f.0.0.1:9901",
        "2130706433:9901",
        "127.0.0.1:99999",
        "127.0.0.1:0",
        "127.0.0.1:",
        ":9901",
        "",
        "u@127.0.0.1:9901",
        "127.0.0.1:9901/x",
        "127.0.0.1:9901 ",
        "127.0.0.1 :9901",
        "127.0.0.1:9901,evil.example",
        "[127.0.0.1]:9901",
        "127.0.0.1:+9901",
    };
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        cr_expect(!host_ok(&s, no[i]), "'%s' should be refused", no[i]);
}

Test(guard, host_with_the_default_port)
{
    struct lv_admin_site s = site_at("127.0.0.1", 80);
    cr_expect(host_ok(&s, "127.0.0.1"));
    cr_expect(host_ok(&s, "127.0.0.1:80"));
    cr_expect(host_ok(&s, "localhost"));
    cr_expect(!host_ok(&s, "127.0.0.1:8080"));
}

Test(guard, host_on_an_ipv6_loopback_listener)
{
    struct lv_admin_site s = site_at("::1", 9901);
    cr_expect(lv_admin_site_loopback(&s));
    cr_expect(host_ok(&s, "[::1]:9901"));
    cr_expect(host_ok(&s, "[0:0:0:0:0:0:0:1]:9901"));
    cr_expect(host_ok(&s, "localhost:9901"));
    cr_expect(!host_ok(&s, "127.0.0.1:9901"));
    cr_expect(!host_ok(&s, "::1:9901"));
    cr_expect(!host_ok(&s, "[::1"));
    cr_expect(!host_ok(&s, "[::1]9901"));
    cr_expect(!host_ok(&s, "[::1%lo]:9901"));
    cr_expect(!host_ok(&s, "[]:9901"));
    cr_expect(!host_ok(&s, "[::2]:9901"));
}

Test(guard, a_v4_mapped_local_address_is_taken_as_ipv4)
{
    struct lv_admin_site s = site_at("::ffff:127.0.0.1", 9901);
    cr_expect_eq(s.local.ss_family, AF_INET);
    cr_expect_eq(s.port, 9901);
    cr_expect(lv_admin_site_loopback(&s));
    cr_expect(host_ok(&s, "127.0.0.1:9901"));
    cr_expect(host_ok(&s, "localhost:9901"));
    cr_expect(!host_ok(&s, "[::ffff:127.0.0.1]:9901"));
}

Test(guard, localhost_only_on_loopback)
{
    struct lv_admin_site s = site_at("10.1.2.3", 9901);
    cr_expect(!lv_admin_site_loopback(&s));
    cr_expect(host_ok(&s, "10.1.2.3:9901"));
    cr_expect(!host_ok(&s, "localhost:9901"));
    cr_expect(!host_ok(&s, "127.0.0.1:9901"));
}

Test(guard, allowed_hosts_with_and_without_port)
{
    char *hosts[] = {"levee.internal", "admin.example:8443", "[fd00::5]"};
    struct lv_admin_site s = site_at("127.0.0.1", 9901);
    s.hosts = hosts;
    s.nhosts = 3;
    const char *ok[] = {"levee.internal",      "levee.internal:9901", "levee.internal:1234",
                        "LEVEE.Internal:9901", "admin.example:8443",  "[fd00::5]",
                        "[FD00::5]:9901",      "127.0.0.1:9901"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        cr_expect(host_ok(&s, ok[i]), "%s should pass", ok[i]);
    const char *no[] = {"admin.example:9901",
                        "admin.example",
                        "levee.internal.evil.example",
                        "evil.levee.internal",
                        "levee.interna",
                        "fd00::5",
                        "[fd00::6]"};
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        cr_expect(!host_ok(&s, no[i]), "'%s' should be refused", no[i]);
}

Test(guard, origins)
{
    char *hosts[] = {"levee.internal"};
    struct lv_admin_site s = site_at("127.0.0.1", 9901);
    s.hosts = hosts;
    s.nhosts = 1;
    const char *ok[] = {"http://127.0.0.1:9901", "http://localhost:9901", "HTTP://LOCALHOST:9901",
                        "https://levee.internal", "http://levee.internal:8080"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        cr_expect(origin_ok(&s, ok[i]), "%s should pass", ok[i]);
    const char *no[] = {"null",
                        "",
                        "http://evil.example",
                        "http://evil.example:9901",
                        "http://127.0.0.1",
                        "http://127.0.0.1:9902",
                        "https://127.0.0.1",
                        "http://127.0.0.1:9901/",
                        "http://u@127.0.0.1:9901",
                        "ftp://127.0.0.1:9901",
                        "//127.0.0.1:9901",
                        "127.0.0.1:9901",
                        "http://",
                        "http:/127.0.0.1:9901"};
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        cr_expect(!origin_ok(&s, no[i]), "'%s' should be refused", no[i]);
}

static bool token_ok(const char *token, const char *authz)
{
    return lv_admin_token_ok(token, authz, strlen(authz));
}

Test(guard, bearer_token)
{
    cr_expect(token_ok("s3cret", "Bearer s3cret"));
    cr_expect(token_ok("s3cret", "bearer s3cret"));
    cr_expect(token_ok("s3cret", "BEARER  s3cret"));
    cr_expect(!token_ok("s3cret", "Bearer s3cre"));
    cr_expect(!token_ok("s3cret", "Bearer s3cret2"));
    cr_expect(!token_ok("s3cret", "Bearer S3CRET"));
    cr_expect(!token_ok("s3cret", "Basic s3cret"));
    cr_expect(!token_ok("s3cret", "s3cret"));
    cr_expect(!token_ok("s3cret", "Bearer"));
    cr_expect(!token_ok("s3cret", "Bearer "));
    cr_expect(!token_ok("s3cret", ""));
    cr_expect(!token_ok("s3cret", "Bearers3cret"));
    /* The length is not all that is compared, nor only a prefix of it. */
    cr_expect(!token_ok("s3cret", "Bearer s3creX"));
    cr_expect(!token_ok("s3cret", "Bearer X3cret"));
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char authz[620];
    snprintf(authz, sizeof(authz), "Bearer %s", big);
    cr_expect(token_ok(big, authz));
    authz[strlen(authz) - 1] = 'b';
    cr_expect(!token_ok(big, authz));
    /* A value cut short after a NUL must not pass either. */
    cr_expect(!lv_admin_token_ok("s3cret", "Bearer s3cret\0junk", 18));
}

Test(guard, allowed_hosts_entries)
{
    const char *ok[] = {"levee.internal", "levee.internal:9901", "10.0.0.5", "10.0.0.5:80",
                        "[::1]",          "[fd00::5]:9901",      "a_b~c"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(*ok); i++)
        cr_expect_null(lv_admin_host_entry_check(ok[i]), "%s should be valid", ok[i]);
    const char *no[] = {
        "",      "http://levee.internal", "levee.internal/",      "u@levee.internal",
        "a:b:c", "levee.internal:0",      "levee.internal:70000", "::1",
        "[::1",  "levee internal",        "*.example.com",        "levee.internal:"};
    for (size_t i = 0; i < sizeof(no) / sizeof(*no); i++)
        cr_expect_not_null(lv_admin_host_entry_check(no[i]), "'%s' should be refused", no[i]);
}

static void set(struct lv_admin_field *f, const char *v)
{
    f->p = v;
    f->len = strlen(v);
    f->count = 1;
}

static struct lv_admin_req post_req(const char *host)
{
    struct lv_admin_req r;
    memset(&r, 0, sizeof(r));
    r.host_required = true;
    r.post = true;
    if (host) set(&r.host, host);
    return r;
}

Test(guard, host_verdicts)
{
    struct lv_admin_site s = site_at("127.0.0.1", 9901);
    struct lv_admin_req r = post_req(NULL);
    r.post = false;
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_BAD_HOST, "HTTP/1.1 without Host");
    r.host_required = false;
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_PASS, "HTTP/1.0 without Host");
    set(&r.host, "evil.example:9901");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_OTHER_HOST, "HTTP/1.0, foreign Host");
    r.host_required = true;
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_OTHER_HOST);
    cr_expect_eq(lv_admin_guard(&s, "tok", &r), LV_ADMIN_OTHER_HOST, "a token does not help");
    set(&r.host, "a b");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_BAD_HOST);
    set(&r.host, "127.0.0.1:9901");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_PASS, "a GET needs nothing more");
    r.host.count = 2;
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_BAD_HOST, "two Host fields");
    cr_expect_eq(lv_admin_verdict_status(LV_ADMIN_BAD_HOST), 400);
    cr_expect_eq(lv_admin_verdict_status(LV_ADMIN_OTHER_HOST), 421);
}

Test(guard, post_without_a_token_needs_proof_it_is_not_from_a_page)
{
    struct lv_admin_site s = site_at("127.0.0.1", 9901);
    struct lv_admin_req r = post_req("127.0.0.1:9901");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_NEED_HEADER, "a plain form post");
    set(&r.admin_header, "1");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_PASS, "curl with X-Levee-Admin");

    set(&r.origin, "http://evil.example");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_FOREIGN_ORIGIN);
    set(&r.origin, "null");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_FOREIGN_ORIGIN);
    set(&r.origin, "http://127.0.0.1:9901");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_PASS, "the dashboard itself");
    r.origin.count = 2;
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_FOREIGN_ORIGIN, "two Origin fields");
    r.origin.count = 1;

    set(&r.fetch_site, "cross-site");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_CROSS_SITE);
    set(&r.fetch_site, "Same-Site");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_CROSS_SITE);
    set(&r.fetch_site, "same-origin");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_PASS);
    set(&r.fetch_site, "none");
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_PASS);

    r.admin_header.p = NULL;
    r.admin_header.count = 0;
    cr_expect_eq(lv_admin_guard(&s, NULL, &r), LV_ADMIN_NEED_HEADER, "same-origin, but no header");
    for (int v = LV_ADMIN_FOREIGN_ORIGIN; v <= LV_ADMIN_NEED_HEADER; v++)
        cr_expect_eq(lv_admin_verdict_status((enum lv_admin_verdict)v), 403);
    cr_expect(strstr(lv_admin_verdict_message(LV_ADMIN_NEED_HEADER), "X-Levee-Admin") != NULL);
    cr_expect(strstr(lv_admin_verdict_message(LV_ADMIN_FOREIGN_ORIGIN), "Origin") != NULL);
    cr_expect(strstr(lv_admin_verdict_message(LV_ADMIN_CROSS_SITE), "Sec-Fetch-Site") != NULL);
}

Test(guard, post_with_a_token_needs_the_token)
{
    struct lv_admin_site s = site_at("127.0.0.1", 9901);
    struct lv_admin_req r = post_req("127.0.0.1:9901");
    set(&r.admin_header, "1");
    cr_expect_eq(lv_admin_guard(&s, "s3cret", &r), LV_ADMIN_NEED_TOKEN,
                 "the header is not a token");
    set(&r.authz, "Bearer wrong");
    cr_expect_eq(lv_admin_guard(&s, "s3cret", &r), LV_ADMIN_NEED_TOKEN);
    set(&r.authz, "Bearer s3cret");
    r.admin_header.p = NULL;
    r.admin_header.count = 0;
    cr_expect_eq(lv_admin_guard(&s, "s3cret", &r), LV_ADMIN_PASS);
    r.authz.count = 2;
    cr_expect_eq(lv_admin_guard(&s, "s3cret", &r), LV_ADMIN_NEED_TOKEN, "two Authorization fields");
    cr_expect_eq(lv_admin_verdict_status(LV_ADMIN_NEED_TOKEN), 401);
    r.post = false;
    r.authz.p = NULL;
    r.authz.count = 0;
    cr_expect_eq(lv_admin_guard(&s, "s3cret", &r), LV_ADMIN_PASS, "GET needs no token");
}
