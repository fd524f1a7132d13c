/* CIDR matching and the client address behind trusted proxies. */
#include "limit/key.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "core/units.h"

static int parse_ip_mapped(const char *s, size_t len, int *family, uint8_t addr[16], bool *mapped)
{
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp)) return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (inet_pton(AF_INET, tmp, addr) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, tmp, addr) == 1) {
        /* An IPv4-mapped address is the IPv4 address. */
        static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(addr, prefix, 12) == 0) {
            memmove(addr, addr + 12, 4);
            *family = AF_INET;
            *mapped = true;
        } else {
            *family = AF_INET6;
        }
        return 0;
    }
    return -1;
}

static int parse_ip(const char *s, size_t len, int *family, uint8_t addr[16])
{
    bool mapped = false;
    return parse_ip_mapped(s, len, family, addr, &mapped);
}

int lv_cidr_parse(const char *s, struct lv_cidr *out)
{
    memset(out, 0, sizeof(*out));
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    bool mapped = false;
    if (parse_ip_mapped(s, alen, &out->family, out->addr, &mapped) != 0) return -1;
    /* "::ffff:10.0.0.0/104" is the IPv4 network 10.0.0.0/8. */
    unsigned max = out->family == AF_INET && !mapped ? 32 : 128;
    unsigned b = max;
    if (slash) {
        uint64_t v;
        if (lv_parse_u64(slash + 1, &v) != 0 || v > max) return -1;
        b = (unsigned)v;
    }
    if (mapped) {
        if (b < 96) return -1; /* wider than the mapped range */
        b -= 96;
    }
    out->bits = b;
    return 0;
}

static bool net_contains(const struct lv_cidr *c, int family, const uint8_t *a)
{
    if (c->family != family) return false;
    unsigned full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, a, full) != 0) return false;
    if (rest == 0) return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (a[full] & mask);
}

bool lv_cidr_contains(const struct lv_cidr *nets, size_t n, const char *ip, size_t len)
{
    int family;
    uint8_t a[16];
    if (parse_ip(ip, len, &family, a) != 0) return false;
    for (size_t i = 0; i < n; i++) {
        if (net_contains(&nets[i], family, a)) return true;
    }
    return false;
}

static void copy_out(char *out, size_t cap, const char *s, size_t len)
{
    if (len >= cap) len = cap - 1;
    memcpy(out, s, len);
    out[len] = '\0';
}

void lv_client_address(const char *peer, const char *xff, size_t xff_len,
                       const struct lv_cidr *trusted, size_t ntrusted, char *out, size_t cap)
{
    copy_out(out, cap, peer, strlen(peer));
    if (ntrusted == 0 || xff_len == 0 || !lv_cidr_contains(trusted, ntrusted, peer, strlen(peer)))
        return;
    /* Walk from the right: each hop was appended by the proxy before it. */
    size_t end = xff_len;
    const char *last = NULL;
    size_t last_len = 0;
    while (end > 0) {
        size_t start = end;
        while (start > 0 && xff[start - 1] != ',')
            start--;
        size_t a = start, b = end;
        while (a < b && (xff[a] == ' ' || xff[a] == '\t'))
            a++;
        while (b > a && (xff[b - 1] == ' ' || xff[b - 1] == '\t'))
            b--;
        if (b > a) {
            last = xff + a;
            last_len = b - a;
            if (!lv_cidr_contains(trusted, ntrusted, last, last_len)) {
                copy_out(out, cap, last, last_len);
                return;
            }
        }
        end = start > 0 ? start - 1 : 0;
    }
    if (last) copy_out(out, cap, last, last_len);
}
