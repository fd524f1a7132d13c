/*
 * Who a request is for rate limiting (limit/key.c): CIDR parsing and
 * matching, and the client address behind trusted proxies.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
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
        cr_expect_eq(lv_cidr_parse(bad[i], &c), -1, "\"%s\" should be refused", bad[i]);
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

/* ---------------------------------------------------------- client address */

static const char *client(const char *peer, const char *xff, const struct lv_cidr *t, size_t n)
{
    static char out[64];
    memset(out, '#', sizeof(out));
    lv_client_address(peer, xff, xff ? strlen(xff) : 0, t, n, out, sizeof(out));
    return out;
}

Test(client_address, untrusted_peer_is_the_client_whatever_xff_says)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    cr_expect_str_eq(client("203.0.113.9", "1.2.3.4", t, 1), "203.0.113.9");
    cr_expect_str_eq(client("203.0.113.9", "10.0.0.1, 1.2.3.4", t, 1), "203.0.113.9");
    cr_expect_str_eq(client("203.0.113.9", NULL, t, 1), "203.0.113.9");
    cr_expect_str_eq(client("10.0.0.1", "1.2.3.4", t, 0), "10.0.0.1", "nothing trusted");
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
}

Test(client_address, empty_xff_gives_the_peer)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    cr_expect_str_eq(client("10.0.0.1", "", t, 1), "10.0.0.1");
    cr_expect_str_eq(client("10.0.0.1", NULL, t, 1), "10.0.0.1");
    cr_expect_str_eq(client("10.0.0.1", " , ,\t, ", t, 1), "10.0.0.1", "only empty items");
}

Test(client_address, spaces_and_empty_items)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    cr_expect_str_eq(client("10.0.0.1", " 198.51.100.1 ,, 10.0.0.2 ,\t", t, 1), "198.51.100.1");
    cr_expect_str_eq(client("10.0.0.1", "198.51.100.1,10.0.0.2", t, 1), "198.51.100.1");
    cr_expect_str_eq(client("10.0.0.1", "\t198.51.100.1\t,\t\t10.0.0.2", t, 1), "198.51.100.1");
    cr_expect_str_eq(client("10.0.0.1", ",,198.51.100.1,,", t, 1), "198.51.100.1");
    cr_expect_str_eq(client("10.0.0.1", "  10.0.0.2  ", t, 1), "10.0.0.2");
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
}

Test(client_address, xff_is_bounded_by_its_length)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    const char *xff = "203.0.113.7, 198.51.100.1";
    char out[64];
    lv_client_address("10.0.0.1", xff, 11, t, 1, out, sizeof(out));
    cr_expect_str_eq(out, "203.0.113.7");
}

Test(client_address, output_is_capped_and_terminated)
{
    struct lv_cidr t[1] = {net("10.0.0.0/8")};
    char out[64];
    memset(out, '#', sizeof(out));
    lv_client_address("10.0.0.1", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff", 38, t, 1, out, 10);
    cr_expect_str_eq(out, "2001:db8:");
    cr_expect_eq(out[10], '#', "nothing written past cap");
}
