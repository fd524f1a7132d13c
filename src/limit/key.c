/*
 * CIDR matching, the client address behind trusted proxies (X-Forwarded-For
 * read from the right, in place) and header-value keys.
 */
#include "limit/key.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/evp.h>
#include <uv.h>

#include "core/units.h"

static int parse_ip_mapped(const char *s, size_t len, int *family, uint8_t addr[16], bool *mapped)
{
    char tmp[64];
    /* A NUL would end the text inet_pton reads before len does. */
    if (len == 0 || len >= sizeof(tmp) || memchr(s, '\0', len) != NULL) return UV_EINVAL;
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
    return UV_EINVAL;
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
    if (parse_ip_mapped(s, alen, &out->family, out->addr, &mapped) != 0) return UV_EINVAL;
    /* "::ffff:10.0.0.0/104" is the IPv4 network 10.0.0.0/8. */
    unsigned max = out->family == AF_INET && !mapped ? 32 : 128;
    unsigned b = max;
    if (slash) {
        uint64_t v;
        if (lv_parse_u64(slash + 1, &v) != 0 || v > max) return UV_EINVAL;
        b = (unsigned)v;
    }
    if (mapped) {
        if (b < 96) return UV_EINVAL; /* wider than the mapped range */
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

/* ------------------------------------------------ X-Forwarded-For entries */

/* An address in the form the walk compares and prints. */
struct ip {
    int family;
    uint8_t addr[16];
};

static bool is_trusted(const struct lv_cidr *nets, size_t n, const struct ip *a)
{
    for (size_t i = 0; i < n; i++) {
        if (net_contains(&nets[i], a->family, a->addr)) return true;
    }
    return false;
}

/* ":4711" after an address: 1-5 digits, at most 65535. */
static bool is_port(const char *s, size_t len)
{
    if (len < 2 || len > 6 || s[0] != ':') return false;
    unsigned v = 0;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    return v <= 65535;
}

/* The forms of lv_ip_normalize. The address text itself goes through
 * inet_pton, which takes exactly the RFC 4291 spellings and, for IPv4, four
 * decimal parts without leading zeros. */
static int parse_entry(const char *s, size_t len, struct ip *out)
{
    /* The longest form, "[" 45-character IPv6 "]:65535", is 53 bytes. */
    if (len == 0 || len > 53) return UV_EINVAL;
    if (s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (close == NULL) return UV_EINVAL;
        size_t alen = (size_t)(close - s) - 1, rest = len - alen - 2;
        if (rest != 0 && !is_port(close + 1, rest)) return UV_EINVAL;
        bool mapped = false;
        if (alen == 0 || memchr(s + 1, ':', alen) == NULL) return UV_EINVAL; /* "[1.2.3.4]" */
        return parse_ip_mapped(s + 1, alen, &out->family, out->addr, &mapped);
    }
    const char *colon = memchr(s, ':', len);
    if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon - s) - 1) == NULL) {
        /* One colon: IPv4 and a port (a bare IPv6 address has two or more). */
        size_t alen = (size_t)(colon - s);
        if (!is_port(colon, len - alen)) return UV_EINVAL;
        char tmp[16];
        if (alen == 0 || alen >= sizeof(tmp)) return UV_EINVAL;
        memcpy(tmp, s, alen);
        tmp[alen] = '\0';
        if (strlen(tmp) != alen) return UV_EINVAL; /* a NUL inside */
        out->family = AF_INET;
        return inet_pton(AF_INET, tmp, out->addr) == 1 ? 0 : -1;
    }
    return parse_ip(s, len, &out->family, out->addr);
}

static size_t print_ip(const struct ip *a, char *out, size_t cap)
{
    if (inet_ntop(a->family, a->addr, out, (socklen_t)cap) == NULL) {
        /* Cannot happen with cap >= LV_IP_TEXT_SIZE. */
        assert(!"inet_ntop failed");
        out[0] = '\0';
        return 0;
    }
    return strlen(out);
}

int lv_ip_normalize(const char *s, size_t len, char *out, size_t cap)
{
    assert(cap >= LV_IP_TEXT_SIZE);
    struct ip a;
    if (parse_entry(s, len, &a) != 0) {
        out[0] = '\0';
        return UV_EINVAL;
    }
    return (int)print_ip(&a, out, cap);
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

size_t lv_client_address(const char *peer, lv_xff_prev_cb prev, void *arg,
                         const struct lv_cidr *trusted, size_t ntrusted, char *out, size_t cap)
{
    assert(cap >= LV_IP_TEXT_SIZE);
    size_t plen = strlen(peer);
    struct ip hop; /* the nearest address believed so far */
    if (parse_ip(peer, plen, &hop.family, hop.addr) != 0) {
        /* Not an IP peer (cannot happen on TCP): its text is its key. */
        if (plen >= cap) plen = cap - 1;
        memcpy(out, peer, plen);
        out[plen] = '\0';
        return plen;
    }
    if (!is_trusted(trusted, ntrusted, &hop)) return print_ip(&hop, out, cap);
    /* Walk from the right: each entry was appended by the proxy on its
     * right (the last one by the peer), so an entry is believed as long as
     * every hop right of it is a trusted proxy. */
    const char *v;
    size_t vlen;
    while (prev(arg, &v, &vlen)) {
        size_t end = vlen;
        for (;;) {
            size_t start = end;
            while (start > 0 && v[start - 1] != ',')
                start--;
            size_t a = start, b = end;
            while (a < b && is_ows(v[a]))
                a++;
            while (b > a && is_ows(v[b - 1]))
                b--;
            if (b > a) { /* empty list elements are allowed and mean nothing */
                struct ip e;
                if (parse_entry(v + a, b - a, &e) != 0) return print_ip(&hop, out, cap);
                if (!is_trusted(trusted, ntrusted, &e)) return print_ip(&e, out, cap);
                hop = e;
            }
            if (start == 0) break;
            end = start - 1;
        }
    }
    return print_ip(&hop, out, cap);
}

bool lv_xff_array_prev(void *arg, const char **value, size_t *len)
{
    struct lv_xff_array *a = arg;
    if (a->n == 0) return false;
    a->n--;
    *value = a->v[a->n].p;
    *len = a->v[a->n].len;
    return true;
}

/* ------------------------------------------------------------ header keys */

size_t lv_limit_key_header(const char *value, size_t len, char *out, size_t cap)
{
    assert(cap > LV_LIMIT_KEY_LEN && len > 0);
    if (len <= LV_LIMIT_KEY_LEN - 2) {
        memcpy(out, "h:", 2);
        memcpy(out + 2, value, len);
        out[len + 2] = '\0';
        return len + 2;
    }
    uint8_t md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(value, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 16) {
        out[0] = '\0';
        return 0;
    }
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "h#", 2);
    for (size_t i = 0; i < 16; i++) {
        out[2 + 2 * i] = hex[md[i] >> 4];
        out[3 + 2 * i] = hex[md[i] & 0xf];
    }
    out[34] = '\0';
    return 34;
}
