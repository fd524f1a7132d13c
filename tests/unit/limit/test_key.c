/*
 * Who a request is for rate limiting (limit/key.c): CIDR parsing and
 * matching, X-Forwarded-For entries and their normal form, the client
 * address behind trusted proxies (read from the right, in place, with no
 * length limit), and header-value keys.
 */
#include <criterion/criterion.h>
#include <uv.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "limit/key.h"

static struct lv_cidr net(const char *s)
{
    struct lv_cidr c;
    cr_assert_eq(lv_cidr_parse(s, &c), 0, "%s should parse", s);
    return c;
}

static bool in(const struct lv_cidr *c, const char *ip)
{
    return lv_cidr_contains(c, 1, ip, strlen(ip));
}

/* ------------------------------------------------------------------ parse */

Test(cidr, parses_ipv4)
{
    struct lv_cidr c;
    cr_assert_eq(lv_cidr_parse("10.0.0.0/8", &c), 0);
    cr_expect_eq(c.family, AF_INET);
    cr_expect_eq(c.bits, 8);
    cr_expect_eq(c.addr[0], 10);
    cr_assert_eq(lv_cidr_parse("192.168.1.7", &c), 0);
    cr_expect_eq(c.family, AF_INET);
    cr_expect_eq(c.bits, 32, "an address alone is a /32");
    const uint8_t a[4] = {192, 168, 1, 7};
    cr_expect_arr_eq(c.addr, a, 4);
    cr_assert_eq(lv_cidr_parse("0.0.0.0/0", &c), 0);
    cr_expect_eq(c.bits, 0);
    cr_assert_eq(lv_cidr_parse("1.2.3.4/32", &c), 0);
    cr_expect_eq(c.bits, 32);
}

Test(cidr, parses_ipv6)
{
    struct lv_cidr c;
    cr_assert_eq(lv_cidr_parse("::1/128", &c), 0);
    cr_expect_eq(c.family, AF_INET6);
    cr_expect_eq(c.bits, 128);
    cr_expect_eq(c.addr[15], 1);
    cr_assert_eq(lv_cidr_parse("fd00::/8", &c), 0);
    cr_expect_eq(c.family, AF_INET6);
    cr_expect_eq(c.bits, 8);
    cr_expect_eq(c.addr[0], 0xfd);
    cr_assert_eq(lv_cidr_parse("2001:db8::1", &c), 0);
    cr_expect_eq(c.bits, 128);
    cr_assert_eq(lv_cidr_parse("::/0", &c), 0);
    cr_expect_eq(c.family, AF_INET6);
    cr_expect_eq(c.bits, 0);
}

Test(cidr, rejects_invalid_input)
{
    static const char *const bad[] = {
        "10.0.0.0/33",
        "abc",
        "1.2.3.4/x",
        "::1/129",
        "",
        "/8",
        "1.2.3.4/",
        "1.2.3.4/-1",
        "1.2.3.4/ 8",
        "1.2.3.4/+8",
        "1.2.3.4/8/8",
        "1.2.3.256",
        "1.2.3",
        "1.2.3.4 ",
        " 1.2.3.4",
        "2001:db8::g",
        "2001:db8:::1",
        "fe80::1%eth0",
        "1.2.3.4/8x",
        "1.2.3.4/99999999999999999999",
        "10.0.0.0/1e1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lv_cidr c;
        cr_expect_eq(lv_cidr_parse(bad[i], &c), UV_EINVAL, "\"%s\" should be refused", bad[i]);
    }
}

Test(cidr, ipv4_mapped_address_is_the_ipv4_address)
{
    struct lv_cidr c = net("::ffff:10.1.2.3");
    cr_expect_eq(c.family, AF_INET);
    cr_expect_eq(c.bits, 32);
    const uint8_t a[4] = {10, 1, 2, 3};
    cr_expect_arr_eq(c.addr, a, 4);
    cr_expect(in(&c, "10.1.2.3"));
}

/* "::ffff:10.0.0.0/104" is the IPv6 spelling of 10.0.0.0/8: the address is
 * turned into IPv4, so should the prefix be (104 − 96). */
Test(cidr, ipv4_mapped_network_with_a_prefix)
{
    struct lv_cidr c;
    cr_assert_eq(lv_cidr_parse("::ffff:10.0.0.0/104", &c), 0,
                 "a valid IPv6 network (IPv4-mapped, /104) is refused");
    cr_expect_eq(c.bits, 8);
    cr_expect(in(&c, "10.200.0.1"));
    cr_expect(in(&c, "::ffff:10.200.0.1"));
    cr_expect_not(in(&c, "11.0.0.1"));
}

/* --------------------------------------------------------------- contains */

Test(cidr, slash_zero_contains_every_address_of_its_family)
{
    struct lv_cidr c = net("0.0.0.0/0");
    cr_expect(in(&c, "0.0.0.0"));
    cr_expect(in(&c, "1.2.3.4"));
    cr_expect(in(&c, "255.255.255.255"));
    cr_expect_not(in(&c, "::1"), "an IPv4 network holds no IPv6 address");
    struct lv_cidr c6 = net("::/0");
    cr_expect(in(&c6, "::1"));
    cr_expect(in(&c6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_expect_not(in(&c6, "1.2.3.4"));
}

Test(cidr, slash_eight)
{
    struct lv_cidr c = net("10.0.0.0/8");
    cr_expect(in(&c, "10.0.0.0"));
    cr_expect(in(&c, "10.255.255.255"));
    cr_expect(in(&c, "10.1.2.3"));
    cr_expect_not(in(&c, "9.255.255.255"));
    cr_expect_not(in(&c, "11.0.0.0"));
    cr_expect_not(in(&c, "110.0.0.1"));
}

Test(cidr, prefixes_off_byte_boundaries)
{
    struct lv_cidr c = net("172.16.0.0/12");
    cr_expect(in(&c, "172.16.0.0"));
    cr_expect(in(&c, "172.31.255.255"));
    cr_expect_not(in(&c, "172.32.0.0"));
    cr_expect_not(in(&c, "172.15.255.255"));
    struct lv_cidr one = net("128.0.0.0/1");
    cr_expect(in(&one, "200.1.1.1"));
    cr_expect_not(in(&one, "127.255.255.255"));
}

Test(cidr, slash_31_and_32)
{
    struct lv_cidr c31 = net("192.168.1.6/31");
    cr_expect(in(&c31, "192.168.1.6"));
    cr_expect(in(&c31, "192.168.1.7"));
    cr_expect_not(in(&c31, "192.168.1.5"));
    cr_expect_not(in(&c31, "192.168.1.8"));
    struct lv_cidr c32 = net("192.168.1.7/32");
    cr_expect(in(&c32, "192.168.1.7"));
    cr_expect_not(in(&c32, "192.168.1.6"));
    cr_expect_not(in(&c32, "192.168.1.70"));
    struct lv_cidr bare = net("192.168.1.7");
    cr_expect(in(&bare, "192.168.1.7"));
    cr_expect_not(in(&bare, "192.168.1.8"));
}

Test(cidr, host_bits_in_the_network_are_ignored)
{
    struct lv_cidr c = net("10.1.2.3/8");
    cr_expect(in(&c, "10.9.9.9"));
    cr_expect_not(in(&c, "11.1.2.3"));
}

Test(cidr, ipv6_prefixes)
{
    struct lv_cidr c = net("2001:db8:1:2::/64");
    cr_expect(in(&c, "2001:db8:1:2::"));
    cr_expect(in(&c, "2001:db8:1:2::1"));
    cr_expect(in(&c, "2001:db8:1:2:ffff:ffff:ffff:ffff"));
    cr_expect(in(&c, "2001:0DB8:0001:0002:0:0:0:9"), "any spelling of the address");
    cr_expect_not(in(&c, "2001:db8:1:3::"));
    cr_expect_not(in(&c, "2001:db8:1:1:ffff:ffff:ffff:ffff"));
    cr_expect_not(in(&c, "10.0.0.1"));
    struct lv_cidr lo = net("::1/128");
    cr_expect(in(&lo, "::1"));
    cr_expect(in(&lo, "0:0:0:0:0:0:0:1"));
    cr_expect_not(in(&lo, "::2"));
    struct lv_cidr ula = net("fd00::/8");
    cr_expect(in(&ula, "fdff::1"));
    cr_expect_not(in(&ula, "fe00::1"));
    cr_expect_not(in(&ula, "fc00::1"));
    struct lv_cidr c127 = net("2001:db8::/127");
    cr_expect(in(&c127, "2001:db8::1"));
    cr_expect_not(in(&c127, "2001:db8::2"));
}

Test(cidr, ipv4_mapped_ipv6_address_matches_an_ipv4_network)
{
    struct lv_cidr c = net("10.0.0.0/8");
    cr_expect(in(&c, "::ffff:10.1.2.3"));
    cr_expect(in(&c, "::FFFF:10.1.2.3"));
    cr_expect(in(&c, "::ffff:a01:203"), "hex spelling");
    cr_expect_not(in(&c, "::ffff:11.1.2.3"));
    cr_expect_not(in(&c, "::10.1.2.3"), "IPv4-compatible (deprecated) is not mapped");
    cr_expect_not(in(&c, "64:ff9b::10.1.2.3"), "NAT64 is not mapped");
}

Test(cidr, several_networks_and_bad_addresses)
{
    struct lv_cidr nets[3] = {net("10.0.0.0/8"), net("fd00::/8"), net("192.168.0.0/16")};
    cr_expect(lv_cidr_contains(nets, 3, "192.168.4.4", 11));
    cr_expect(lv_cidr_contains(nets, 3, "fd12::1", 7));
    cr_expect_not(lv_cidr_contains(nets, 3, "8.8.8.8", 7));
    cr_expect_not(lv_cidr_contains(nets, 0, "10.0.0.1", 8), "no networks");
    cr_expect_not(lv_cidr_contains(nets, 3, "", 0));
    cr_expect_not(lv_cidr_contains(nets, 3, "10.0.0.x", 8));
    cr_expect_not(lv_cidr_contains(nets, 3, "unknown", 7));
    /* The length is the address: what follows it is not read. */
    cr_expect(lv_cidr_contains(nets, 3, "10.0.0.1, 8.8.8.8", 8));
    cr_expect_not(lv_cidr_contains(nets, 3, "10.0.0.1", 7), "10.0.0. is not an address");
    char big[100];
    memset(big, '1', sizeof(big));
    cr_expect_not(lv_cidr_contains(nets, 3, big, sizeof(big)));
}

/* ------------------------------------------------------- normal form */

static const char *norm(const char *s)
{
    static char out[LV_IP_TEXT_SIZE];
    int n = lv_ip_normalize(s, strlen(s), out, sizeof(out));
    if (n < 0) {
        cr_expect_str_eq(out, "", "a refused entry leaves out empty");
        return NULL;
    }
    cr_expect_eq((size_t)n, strlen(out));
    return out;
}

Test(ip_normalize, accepted_forms_and_their_normal_text)
{
    static const char *const cases[][2] = {
        {"203.0.113.9", "203.0.113.9"},
        {"0.0.0.0", "0.0.0.0"},
        {"255.255.255.255", "255.255.255.255"},
        {"203.0.113.9:4711", "203.0.113.9"},
        {"203.0.113.9:0", "203.0.113.9"},
        {"203.0.113.9:65535", "203.0.113.9"},
        {"2001:db8::1", "2001:db8::1"},
        {"2001:DB8::1", "2001:db8::1"},
        {"2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"},
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
        {"::1", "::1"},
        {"::", "::"},
        {"[2001:db8::1]", "2001:db8::1"},
        {"[2001:DB8::0001]:4711", "2001:db8::1"},
        {"[::1]:80", "::1"},
        /* IPv4-mapped IPv6 is the IPv4 address, in every spelling */
        {"::ffff:1.2.3.4", "1.2.3.4"},
        {"::FFFF:1.2.3.4", "1.2.3.4"},
        {"::ffff:102:304", "1.2.3.4"},
        {"0:0:0:0:0:ffff:1.2.3.4", "1.2.3.4"},
        {"[::ffff:1.2.3.4]:443", "1.2.3.4"},
        /* not mapped: stays IPv6 */
        {"::1.2.3.4", "::1.2.3.4"}, /* IPv4-compatible (deprecated), inet_ntop's way */
        {"::102:304", "::1.2.3.4"},
        {"64:ff9b::1.2.3.4", "64:ff9b::102:304"},
        {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
        {"[1111:2222:3333:4444:5555:6666:255.255.255.255]:65535",
         "1111:2222:3333:4444:5555:6666:ffff:ffff"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = norm(cases[i][0]);
        cr_expect_not_null(got, "\"%s\" should be an address", cases[i][0]);
        if (got) cr_expect_str_eq(got, cases[i][1], "\"%s\"", cases[i][0]);
    }
}

/* What is not an address in an X-Forwarded-For entry: these end the walk. */
static const char *const not_ips[] = {
    "unknown",
    "UNKNOWN",
    "_hidden",
    "_SEVKISEK",
    "garbage",
    "1.2.3",
    "1.2.3.4.5",
    "1.2.3.256",
    "01.2.3.4",
    "1.2.3.04",
    "0x7f.0.0.1",
    "2130706433",
    "1.2.3.4:",
    "1.2.3.4:65536",
    "1.2.3.4:123456",
    "1.2.3.4:+80",
    "1.2.3.4:-1",
    "1.2.3.4:8a",
    ":80",
    "1.2.3.4 5.6.7.8",
    "1.2.3.4;5.6.7.8",
    "\"1.2.3.4\"",
    "for=1.2.3.4",
    "[1.2.3.4]",
    "[1.2.3.4]:80",
    "[]",
    "[]:80",
    "[::1",
    "::1]",
    "[::1]:",
    "[::1]80",
    "[::1]:80:80",
    "[::1]]",
    "[[::1]]",
    "fe80::1%eth0",
    "[fe80::1%25eth0]",
    "2001:db8:::1",
    "2001:db8::g",
    "1:2:3:4:5:6:7:8:9",
    "12345::1",
    "::ffff:1.2.3",
    "1.2.3.4/32",
    "10.0.0.0/8",
    "localhost",
    "-",
    ".",
    ":",
    "::::",
    "1.2.3.4\r",
};

Test(ip_normalize, everything_else_is_not_an_address)
{
    for (size_t i = 0; i < sizeof(not_ips) / sizeof(not_ips[0]); i++)
        cr_expect_null(norm(not_ips[i]), "\"%s\" is not an address", not_ips[i]);
    char out[LV_IP_TEXT_SIZE];
    cr_expect_eq(lv_ip_normalize("1.2.3.4", 0, out, sizeof(out)), UV_EINVAL, "empty");
    cr_expect_eq(lv_ip_normalize("1.2.3.4\0", 8, out, sizeof(out)), UV_EINVAL, "a NUL inside");
    cr_expect_eq(lv_ip_normalize("1.2.3.4\0:80", 11, out, sizeof(out)), UV_EINVAL, "a NUL inside");
    cr_expect_eq(lv_ip_normalize("[::1\0]:80", 9, out, sizeof(out)), UV_EINVAL, "a NUL inside");
    cr_expect_eq(lv_ip_normalize("::1\0", 4, out, sizeof(out)), UV_EINVAL, "a NUL inside");
    /* only len bytes are read */
    cr_expect_eq(lv_ip_normalize("1.2.3.45", 7, out, sizeof(out)), 7);
    cr_expect_str_eq(out, "1.2.3.4");
    char big[200];
    memset(big, '1', sizeof(big));
    cr_expect_eq(lv_ip_normalize(big, sizeof(big), out, sizeof(out)), UV_EINVAL);
    memcpy(big, "[::1]:", 6);
    cr_expect_eq(lv_ip_normalize(big, sizeof(big), out, sizeof(out)), UV_EINVAL,
                 "a 194-digit port");
}

/* ---------------------------------------------------------- client address */

#define MAX_FIELDS 8

/*
 * The client for peer and the X-Forwarded-For fields (NUL-terminated
 * strings, in head order). Each value is copied into a buffer of its exact
 * length, without a NUL, so that ASan catches a read past any field.
 */
static const char *client_fields(const char *peer, const struct lv_cidr *t, size_t n,
                                 const char *const *fields, size_t nfields)
{
    static char out[64];
    struct lv_xff_value v[MAX_FIELDS];
    cr_assert_leq(nfields, MAX_FIELDS);
    for (size_t i = 0; i < nfields; i++) {
        v[i].len = strlen(fields[i]);
        char *p = malloc(v[i].len ? v[i].len : 1);
        cr_assert_not_null(p);
        memcpy(p, fields[i], v[i].len);
        v[i].p = p;
    }
    memset(out, '#', sizeof(out));
    struct lv_xff_array arr = {v, nfields};
    size_t len = lv_client_address(peer, lv_xff_array_prev, &arr, t, n, out, LV_IP_TEXT_SIZE);
    cr_expect_eq(out[len], '\0');
    cr_expect_eq(strlen(out), len);
    cr_expect_eq(out[LV_IP_TEXT_SIZE], '#', "nothing written past cap");
    for (size_t i = 0; i < nfields; i++)
        free((void *)v[i].p);
    return out;
}

static const char *client(const char *peer, const char *xff, const struct lv_cidr *t, size_t n)
{
    return client_fields(peer, t, n, &xff, xff ? 1 : 0);
}

static bool must_not_be_called(void *arg, const char **value, size_t *len)
{
    (void)arg, (void)value, (void)len;
    cr_expect_fail("X-Forwarded-For was read");
    return false;
}

Test(client_address, untrusted_peer_is_the_client_whatever_xff_says)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    cr_expect_str_eq(client("203.0.113.9", "1.2.3.4", t, 1), "203.0.113.9");
    cr_expect_str_eq(client("203.0.113.9", "10.0.0.1, 1.2.3.4", t, 1), "203.0.113.9");
    cr_expect_str_eq(client("203.0.113.9", NULL, t, 1), "203.0.113.9");
    cr_expect_str_eq(client("10.0.0.1", "1.2.3.4", t, 0), "10.0.0.1", "nothing trusted");
    char out[LV_IP_TEXT_SIZE];
    lv_client_address("203.0.113.9", must_not_be_called, NULL, t, 1, out, sizeof(out));
    cr_expect_str_eq(out, "203.0.113.9");
    lv_client_address("10.0.0.1", must_not_be_called, NULL, t, 0, out, sizeof(out));
    cr_expect_str_eq(out, "10.0.0.1");
}

Test(client_address, rightmost_untrusted_entry)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    cr_expect_str_eq(client("10.0.0.1", "198.51.100.1, 203.0.113.7, 10.0.0.2", t, 1),
                     "203.0.113.7");
    cr_expect_str_eq(client("10.0.0.1", "203.0.113.7", t, 1), "203.0.113.7");
    /* What the client put on the left is not believed. */
    cr_expect_str_eq(client("10.0.0.1", "6.6.6.6, 10.9.9.9, 203.0.113.7", t, 1), "203.0.113.7");
    cr_expect_str_eq(client("10.0.0.1", "10.0.0.5, 203.0.113.7, 10.0.0.3, 10.0.0.2", t, 1),
                     "203.0.113.7");
}

Test(client_address, all_trusted_gives_the_leftmost)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    cr_expect_str_eq(client("10.0.0.1", "10.0.0.3, 10.0.0.2", t, 1), "10.0.0.3");
    cr_expect_str_eq(client("10.0.0.1", "10.0.0.3", t, 1), "10.0.0.3");
    cr_expect_str_eq(client("10.0.0.1", " , 10.0.0.4 ,, 10.0.0.2, ", t, 1), "10.0.0.4");
    cr_expect_str_eq(client("10.0.0.1", "010.0.0.4, 10.0.0.2", t, 1), "10.0.0.2",
                     "... up to an entry that is not an address");
    const char *f[] = {"10.0.0.9, 10.0.0.8", "10.0.0.7", "10.0.0.6"};
    cr_expect_str_eq(client_fields("10.0.0.1", t, 1, f, 3), "10.0.0.9");
}

Test(client_address, empty_xff_gives_the_peer)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    cr_expect_str_eq(client("10.0.0.1", "", t, 1), "10.0.0.1");
    cr_expect_str_eq(client("10.0.0.1", NULL, t, 1), "10.0.0.1");
    cr_expect_str_eq(client("10.0.0.1", " , ,\t, ", t, 1), "10.0.0.1", "only empty items");
    const char *f[] = {"", " ", ",", ""};
    cr_expect_str_eq(client_fields("10.0.0.1", t, 1, f, 4), "10.0.0.1");
}

Test(client_address, spaces_and_empty_items)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    cr_expect_str_eq(client("10.0.0.1", " 198.51.100.1 ,, 10.0.0.2 ,\t", t, 1), "198.51.100.1");
    cr_expect_str_eq(client("10.0.0.1", "198.51.100.1,10.0.0.2", t, 1), "198.51.100.1");
    cr_expect_str_eq(client("10.0.0.1", "\t198.51.100.1\t,\t\t10.0.0.2", t, 1), "198.51.100.1");
    cr_expect_str_eq(client("10.0.0.1", ",,198.51.100.1,,", t, 1), "198.51.100.1");
    cr_expect_str_eq(client("10.0.0.1", "  10.0.0.2  ", t, 1), "10.0.0.2");
    /* OWS is SP and HTAB only; a space inside an entry makes it garbage */
    cr_expect_str_eq(client("10.0.0.1", "198.51.100.1 198.51.100.2", t, 1), "10.0.0.1");
    cr_expect_str_eq(client("10.0.0.1", "198.51.100.1\v", t, 1), "10.0.0.1");
}

Test(client_address, ipv6_entries)
{
    struct lv_cidr t[2] = {net("fd00::/8"), net("10.0.0.0/8")};
    cr_expect_str_eq(client("fd00::1", "2001:db8::1, fd00::2", t, 2), "2001:db8::1");
    cr_expect_str_eq(client("fd00::1", "2001:db8::1, 2001:db8::2", t, 2), "2001:db8::2");
    cr_expect_str_eq(client("10.0.0.1", "2001:db8::1, fd00::2, 10.0.0.7", t, 2), "2001:db8::1");
    cr_expect_str_eq(client("fd00::1", "fd00::3,fd00::2", t, 2), "fd00::3");
    cr_expect_str_eq(client("2001:db8::9", "1.2.3.4", t, 2), "2001:db8::9");
    /* A dual-stack listener sees IPv4 peers as mapped addresses. */
    cr_expect_str_eq(client("::ffff:10.0.0.1", "203.0.113.7", t, 2), "203.0.113.7");
    cr_expect_str_eq(client("fd00::1", "203.0.113.7, ::ffff:10.0.0.9", t, 2), "203.0.113.7");
    /* the bracketed and port forms of other proxies, trusted or not */
    cr_expect_str_eq(client("10.0.0.1", "[2001:DB8::1]:4711, [fd00::2]:80, 10.0.0.3:8080", t, 2),
                     "2001:db8::1");
    cr_expect_str_eq(client("10.0.0.1", "203.0.113.7:55555, [fd00::2]", t, 2), "203.0.113.7");
}

/* One client, one bucket: every spelling of its address gives the same key. */
Test(client_address, the_key_is_normalized)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    static const char *const v4[] = {
        "203.0.113.7",   "::ffff:203.0.113.7",         "::FFFF:cb00:7107",   "[::ffff:203.0.113.7]",
        "203.0.113.7:1", "[::ffff:203.0.113.7]:65535", "0::ffff:203.0.113.7"};
    for (size_t i = 0; i < sizeof(v4) / sizeof(v4[0]); i++)
        cr_expect_str_eq(client("10.0.0.1", v4[i], t, 1), "203.0.113.7", "%s", v4[i]);
    static const char *const v6[] = {"2001:db8::1", "2001:DB8::1", "2001:0db8:0:0:0:0:0:0001",
                                     "[2001:db8::1]", "[2001:db8:0::1]:443"};
    for (size_t i = 0; i < sizeof(v6) / sizeof(v6[0]); i++)
        cr_expect_str_eq(client("10.0.0.1", v6[i], t, 1), "2001:db8::1", "%s", v6[i]);
    /* the peer too, and a trusted peer without X-Forwarded-For */
    cr_expect_str_eq(client("::ffff:203.0.113.7", NULL, t, 1), "203.0.113.7");
    cr_expect_str_eq(client("2001:0DB8::0001", NULL, t, 1), "2001:db8::1");
    cr_expect_str_eq(client("::ffff:10.0.0.1", NULL, t, 1), "10.0.0.1");
}

/*
 * A chain "198.51.100.1, 10.0.0.4, 10.0.0.3, 10.0.0.2" from peer 10.0.0.1:
 * the client is 198.51.100.1. With a token that is not an address at
 * position p, the proxy that wrote it (position p + 1, or the peer) is.
 */
Test(client_address, an_entry_that_is_not_an_address_ends_the_walk_in_every_position)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    const char *chain[4] = {"198.51.100.1", "10.0.0.4", "10.0.0.3", "10.0.0.2"};
    const char *writer[4] = {"10.0.0.4", "10.0.0.3", "10.0.0.2", "10.0.0.1"};
    char xff[512];
    snprintf(xff, sizeof(xff), "%s, %s, %s, %s", chain[0], chain[1], chain[2], chain[3]);
    cr_expect_str_eq(client("10.0.0.1", xff, t, 1), "198.51.100.1");
    for (size_t k = 0; k < sizeof(not_ips) / sizeof(not_ips[0]); k++) {
        const char *bad = not_ips[k];
        if (strchr(bad, ',') || strchr(bad, ' ') || strchr(bad, '\r') || *bad == '\0') continue;
        for (int p = 0; p < 4; p++) {
            const char *e[4] = {chain[0], chain[1], chain[2], chain[3]};
            e[p] = bad;
            snprintf(xff, sizeof(xff), "%s, %s, %s, %s", e[0], e[1], e[2], e[3]);
            cr_expect_str_eq(client("10.0.0.1", xff, t, 1), writer[p], "%s", xff);
            /* the same with each entry in a field of its own */
            cr_expect_str_eq(client_fields("10.0.0.1", t, 1, e, 4), writer[p], "fields: %s", xff);
        }
        /* left of the client, it is never reached */
        snprintf(xff, sizeof(xff), "%s, 198.51.100.1, 10.0.0.2", bad);
        cr_expect_str_eq(client("10.0.0.1", xff, t, 1), "198.51.100.1", "%s", xff);
    }
    /* alone, on the right: the peer */
    cr_expect_str_eq(client("10.0.0.1", "203.0.113.7, unknown", t, 1), "10.0.0.1");
    cr_expect_str_eq(client("10.0.0.1", "unknown", t, 1), "10.0.0.1");
    cr_expect_str_eq(client("fd00::1", "_hidden", (struct lv_cidr[]){net("fd00::/8")}, 1),
                     "fd00::1");
}

Test(client_address, several_fields_are_one_list_in_order)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    const char *a[] = {"203.0.113.7", "10.0.0.2"};
    cr_expect_str_eq(client_fields("10.0.0.1", t, 1, a, 2), "203.0.113.7");
    const char *b[] = {"198.51.100.1, 203.0.113.7", "10.0.0.3, 10.0.0.2"};
    cr_expect_str_eq(client_fields("10.0.0.1", t, 1, b, 2), "203.0.113.7");
    const char *c[] = {"198.51.100.1", "203.0.113.7"};
    cr_expect_str_eq(client_fields("10.0.0.1", t, 1, c, 2), "203.0.113.7",
                     "the last field's last entry is the nearest hop");
    const char *d[] = {"203.0.113.7", "", " , ", "10.0.0.2,"};
    cr_expect_str_eq(client_fields("10.0.0.1", t, 1, d, 4), "203.0.113.7");
    /* an entry never spans two fields */
    const char *e[] = {"203.0.113.7, 198.51.1", "00.1"};
    cr_expect_str_eq(client_fields("10.0.0.1", t, 1, e, 2), "10.0.0.1");
    const char *f[] = {"6.6.6.6, unknown", "10.0.0.2", "10.0.0.3"};
    cr_expect_str_eq(client_fields("10.0.0.1", t, 1, f, 3), "10.0.0.2");
}

/* Fills buf with "6.6.N.M, " entries (the client's made-up hops) and a last
 * fake address that ends exactly at byte `end`; returns the length. */
static size_t padded(char *buf, size_t end)
{
    size_t len = 0;
    unsigned i = 0;
    while (len + 20 < end) {
        int n = snprintf(buf + len, 32, "6.6.%u.%u, ", (i / 250) % 250, i % 250);
        len += (size_t)n;
        i++;
    }
    /* the last one: "7.7.7.7" padded with leading spaces (OWS) to end at `end` */
    while (len + 7 < end)
        buf[len++] = ' ';
    memcpy(buf + len, "7.7.7.7", 7);
    len += 7;
    cr_assert_eq(len, end);
    buf[len] = '\0';
    return len;
}

/*
 * The attack of finding 4: padding so that a fake address ends exactly at
 * byte 1,024 (and at every byte around it), then the entries that the
 * trusted proxies appended. The old code kept only 1,024 bytes and took the
 * fake address for the client.
 */
Test(client_address, long_values_keep_the_rightmost_entries)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    static char buf[40000];
    for (size_t end = 1000; end <= 1100; end++) {
        size_t len = padded(buf, end);
        snprintf(buf + len, sizeof(buf) - len, ", 203.0.113.7, 10.0.0.2");
        cr_expect_str_eq(client("10.0.0.1", buf, t, 1), "203.0.113.7", "fake ends at %zu", end);
        /* the same with the proxy's entry in a field of its own */
        buf[len] = '\0';
        const char *f[] = {buf, "203.0.113.7"};
        cr_expect_str_eq(client_fields("10.0.0.1", t, 1, f, 2), "203.0.113.7", "%zu", end);
        /* a proxy that wrote something other than an address: the proxy */
        snprintf(buf + len, sizeof(buf) - len, ", unknown, 10.0.0.2");
        cr_expect_str_eq(client("10.0.0.1", buf, t, 1), "10.0.0.2", "%zu", end);
    }
    for (size_t end = 10000; end <= 30000; end += 1111) {
        size_t len = padded(buf, end);
        snprintf(buf + len, sizeof(buf) - len, ",203.0.113.8 ,\t10.0.0.3,10.0.0.2");
        cr_expect_str_eq(client("10.0.0.1", buf, t, 1), "203.0.113.8", "%zu bytes", end);
    }
    /* a whole MiB of padding: no limit but the head's own */
    size_t big = 1 << 20;
    char *m = malloc(big + 64);
    cr_assert_not_null(m);
    for (size_t i = 0; i < big; i += 9)
        memcpy(m + i, "6.6.6.6, ", 9);
    snprintf(m + big - big % 9, 64, "2001:db8::7, 10.0.0.2");
    cr_expect_str_eq(client("10.0.0.1", m, t, 1), "2001:db8::7");
    free(m);
}

Test(client_address, a_peer_that_is_not_an_address_is_its_own_key)
{
    struct lv_cidr t[1] = {net("0.0.0.0/0")};
    cr_expect_str_eq(client("unix", "203.0.113.7", t, 1), "unix");
    cr_expect_str_eq(client("", "203.0.113.7", t, 1), "");
    char out[LV_IP_TEXT_SIZE];
    char peer[100];
    memset(peer, 'p', sizeof(peer) - 1);
    peer[sizeof(peer) - 1] = '\0';
    size_t n = lv_client_address(peer, must_not_be_called, NULL, t, 1, out, sizeof(out));
    cr_expect_eq(n, sizeof(out) - 1, "cut to the buffer");
    cr_expect_eq(out[n], '\0');
}

Test(client_address, ipv6_trusted_networks_and_mapped_entries)
{
    struct lv_cidr t[2] = {net("::1"), net("::ffff:127.0.0.0/104")};
    cr_expect_str_eq(client("::1", "203.0.113.7, 127.0.0.5", t, 2), "203.0.113.7");
    cr_expect_str_eq(client("127.0.0.1", "203.0.113.7, ::ffff:127.0.0.5, [::1]:9", t, 2),
                     "203.0.113.7");
    cr_expect_str_eq(client("127.0.0.1", "unknown, [::1]:9", t, 2), "::1");
}

/* ------------------------------------------------------------ header keys */

static const char *hkey(const char *v, size_t len)
{
    static char out[LV_LIMIT_KEY_LEN + 8];
    memset(out, '#', sizeof(out));
    size_t n = lv_limit_key_header(v, len, out, LV_LIMIT_KEY_LEN + 1);
    cr_expect_gt(n, 0);
    cr_expect_leq(n, LV_LIMIT_KEY_LEN);
    cr_expect_eq(out[n], '\0');
    cr_expect_eq(out[LV_LIMIT_KEY_LEN + 1], '#', "nothing written past cap");
    return out;
}

Test(header_key, short_values_are_the_key)
{
    cr_expect_str_eq(hkey("alpha", 5), "h:alpha");
    cr_expect_str_eq(hkey("127.0.0.1", 9), "h:127.0.0.1");
    char v[LV_LIMIT_KEY_LEN];
    memset(v, 'a', sizeof(v));
    const char *k = hkey(v, LV_LIMIT_KEY_LEN - 2);
    cr_expect_eq(strlen(k), LV_LIMIT_KEY_LEN);
    cr_expect_eq(strncmp(k, "h:aaaa", 6), 0);
}

Test(header_key, long_values_are_their_digest)
{
    char v[LV_LIMIT_KEY_LEN];
    memset(v, 'a', sizeof(v));
    /* SHA-256("a" x 47), first 128 bits (python3 -c "import hashlib; ...") */
    cr_expect_str_eq(hkey(v, LV_LIMIT_KEY_LEN - 1), "h#11eaed932c6c6fddfc2efc394e609fac");
    char *big = malloc(301);
    cr_assert_not_null(big);
    memset(big, 'k', 300);
    big[300] = '1';
    cr_expect_str_eq(hkey(big, 301), "h#6a5f8e90aaa8169a6e409e89a0b56fa2");
    free(big);
}

/* The old code cut values at 253 bytes: values sharing that prefix shared a
 * bucket. Any difference, anywhere, makes another key. */
Test(header_key, values_differing_anywhere_get_different_keys)
{
    size_t lens[] = {47, 48, 253, 254, 1024, 20000};
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        size_t len = lens[i];
        char *v = malloc(len);
        cr_assert_not_null(v);
        memset(v, 'x', len);
        char base[LV_LIMIT_KEY_LEN + 1];
        memcpy(base, hkey(v, len), sizeof(base));
        cr_expect_eq(strncmp(base, "h#", 2), 0);
        cr_expect_str_eq(hkey(v, len), base, "the same value, the same key");
        size_t at[] = {0, len / 2, len - 1};
        for (size_t j = 0; j < 3; j++) {
            v[at[j]] = 'y';
            cr_expect_str_neq(hkey(v, len), base, "len %zu, byte %zu differs", len, at[j]);
            v[at[j]] = 'x';
        }
        cr_expect_str_neq(hkey(v, len - 1), base, "a prefix is another key");
        free(v);
    }
}

Test(header_key, the_two_forms_never_collide)
{
    /* a short value spelled like a digest key stays "h:" */
    cr_expect_str_eq(hkey("#11eaed932c6c6fddfc2efc394e609fac", 33),
                     "h:#11eaed932c6c6fddfc2efc394e609fac");
    cr_expect_str_eq(hkey("ip:1.2.3.4", 10), "h:ip:1.2.3.4");
    /* any octets */
    cr_expect_eq(memcmp(hkey("a\0b", 3), "h:a\0b", 6), 0);
}
