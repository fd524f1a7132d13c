/*
 * Socket addresses compared and printed (net/addr.c): an inherited socket
 * is matched to a listen address by lv_addr_same.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>

#include "net/addr.h"

static struct sockaddr_in v4(const char *ip, unsigned port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

static struct sockaddr_in6 v6(const char *ip, unsigned port, uint32_t scope)
{
    struct sockaddr_in6 sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons((uint16_t)port);
    sa.sin6_scope_id = scope;
    inet_pton(AF_INET6, ip, &sa.sin6_addr);
    return sa;
}

#define SA(x) ((const struct sockaddr *)&(x))

Test(addr_same, ipv4_address_and_port)
{
    struct sockaddr_in a = v4("127.0.0.1", 8080), b = v4("127.0.0.1", 8080);
    struct sockaddr_in other_port = v4("127.0.0.1", 8081), other_ip = v4("0.0.0.0", 8080);
    b.sin_zero[0] = 1; /* padding is not part of the address */
    cr_expect(lv_addr_same(SA(a), SA(b)));
    cr_expect_not(lv_addr_same(SA(a), SA(other_port)));
    cr_expect_not(lv_addr_same(SA(a), SA(other_ip)));
}

Test(addr_same, ipv6_address_port_and_scope_not_flowinfo)
{
    struct sockaddr_in6 a = v6("::1", 443, 0), b = v6("::1", 443, 0);
    struct sockaddr_in6 scoped = v6("fe80::1", 443, 2), scoped_other = v6("fe80::1", 443, 3);
    b.sin6_flowinfo = 7;
    cr_expect(lv_addr_same(SA(a), SA(b)));
    cr_expect_not(lv_addr_same(SA(scoped), SA(scoped_other)));
    struct sockaddr_in four = v4("127.0.0.1", 443);
    struct sockaddr_in6 mapped = v6("::ffff:127.0.0.1", 443, 0);
    cr_expect_not(lv_addr_same(SA(four), SA(mapped)), "[::ffff:...] is a different socket");
}

Test(addr_text, ipv4_ipv6_and_mapped)
{
    char buf[LV_ADDR_TEXT_MAX];
    struct sockaddr_in a = v4("10.1.2.3", 8080);
    cr_expect_str_eq(lv_addr_text(SA(a), buf, sizeof(buf)), "10.1.2.3:8080");
    struct sockaddr_in6 b = v6("2001:db8::1", 443, 0);
    cr_expect_str_eq(lv_addr_text(SA(b), buf, sizeof(buf)), "[2001:db8::1]:443");
    struct sockaddr_in6 c = v6("::ffff:127.0.0.1", 80, 0);
    cr_expect_str_eq(lv_addr_text(SA(c), buf, sizeof(buf)), "127.0.0.1:80");
    struct sockaddr_in6 longest = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535, 0);
    cr_expect_str_eq(lv_addr_text(SA(longest), buf, sizeof(buf)),
                     "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
}
