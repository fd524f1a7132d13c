/*
 * The admin port's Host, Origin and token checks (see guard.h for the
 * rules and why each one exists).
 */
#include "admin/guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>
#include <strings.h>

/* "host[:port]" split, host without brackets. port -1: none given. */
struct authority {
    const char *host;
    size_t hlen;
    bool bracketed;
    long port;
};

static bool reg_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '.' || ch == '_' || ch == '~';
}

static bool ip6_char(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') ||
           ch == ':' || ch == '.';
}

/* Parses an authority without userinfo. Only the characters of a DNS name
 * or an IP literal are accepted in the host: no percent-encoding, no zone. */
static bool split_authority(const char *s, size_t len, struct authority *a)
{
    const char *rest;
    if (len == 0) return false;
    if (s[0] == '[') {
        const char *end = memchr(s, ']', len);
        if (end == NULL || end == s + 1) return false;
        a->host = s + 1;
        a->hlen = (size_t)(end - s - 1);
        a->bracketed = true;
        for (size_t i = 0; i < a->hlen; i++)
            if (!ip6_char(a->host[i])) return false;
        rest = end + 1;
    } else {
        const char *colon = memchr(s, ':', len);
        a->host = s;
        a->hlen = colon ? (size_t)(colon - s) : len;
        a->bracketed = false;
        if (a->hlen == 0) return false;
        for (size_t i = 0; i < a->hlen; i++)
            if (!reg_name_char(a->host[i])) return false;
        rest = s + a->hlen;
    }
    size_t rlen = len - (size_t)(rest - s);
    a->port = -1;
    if (rlen == 0) return true;
    /* ":" then 1 to 5 digits, 1..65535 (an empty port is refused: no
     * client sends one, and it would only blur the rule). */
    if (rest[0] != ':' || rlen < 2 || rlen > 6) return false;
    long port = 0;
    for (size_t i = 1; i < rlen; i++) {
        if (rest[i] < '0' || rest[i] > '9') return false;
        port = port * 10 + (rest[i] - '0');
    }
    if (port < 1 || port > 65535) return false;
    a->port = port;
    return true;
}

void lv_admin_site_set_local(struct lv_admin_site *s, const struct sockaddr *sa)
{
    memset(&s->local, 0, sizeof(s->local));
    s->port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        memcpy(&s->local, in, sizeof(*in));
        s->port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        s->port = ntohs(in6->sin6_port);
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            /* A dual-stack listener: an IPv4 client's Host carries IPv4. */
            struct sockaddr_in *in = (struct sockaddr_in *)(void *)&s->local;
            in->sin_family = AF_INET;
            in->sin_port = in6->sin6_port;
            memcpy(&in->sin_addr, &in6->sin6_addr.s6_addr[12], 4);
        } else {
            memcpy(&s->local, in6, sizeof(*in6));
        }
    }
}

bool lv_admin_site_loopback(const struct lv_admin_site *s)
{
    if (s->local.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&s->local;
        return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
    }
    if (s->local.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&s->local;
        return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
    }
    return false;
}

/* Is the host an IP literal equal to the local address? */
static bool is_local_ip(const struct lv_admin_site *s, const struct authority *a)
{
    char text[INET6_ADDRSTRLEN];
    if (a->hlen >= sizeof(text)) return false;
    memcpy(text, a->host, a->hlen);
    text[a->hlen] = '\0';
    if (a->bracketed) {
        struct in6_addr v6;
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)&s->local;
        return s->local.ss_family == AF_INET6 && inet_pton(AF_INET6, text, &v6) == 1 &&
               memcmp(&v6, &in6->sin6_addr, sizeof(v6)) == 0;
    }
    struct in_addr v4;
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)&s->local;
    return s->local.ss_family == AF_INET && inet_pton(AF_INET, text, &v4) == 1 &&
           v4.s_addr == in->sin_addr.s_addr;
}

static bool same_host(const struct authority *a, const struct authority *b)
{
    return a->bracketed == b->bracketed && a->hlen == b->hlen &&
           strncasecmp(a->host, b->host, a->hlen) == 0;
}

static bool authority_matches(const struct lv_admin_site *s, const struct authority *a,
                              uint16_t default_port)
{
    long port = a->port >= 0 ? a->port : default_port;
    if (port == s->port) {
        if (is_local_ip(s, a)) return true;
        if (!a->bracketed && a->hlen == 9 && strncasecmp(a->host, "localhost", 9) == 0 &&
            lv_admin_site_loopback(s))
            return true;
    }
    for (size_t i = 0; i < s->nhosts; i++) {
        struct authority e;
        const char *entry = s->hosts[i];
        if (!split_authority(entry, strlen(entry), &e)) continue; /* checked at load */
        if (same_host(&e, a) && (e.port < 0 || e.port == port)) return true;
    }
    return false;
}

bool lv_admin_authority_ok(const struct lv_admin_site *s, const char *authority, size_t len,
                           uint16_t default_port)
{
    struct authority a;
    return split_authority(authority, len, &a) && authority_matches(s, &a, default_port);
}

bool lv_admin_origin_ok(const struct lv_admin_site *s, const char *origin, size_t len)
{
    static const char http[] = "http://", https[] = "https://";
    if (len > sizeof(http) - 1 && strncasecmp(origin, http, sizeof(http) - 1) == 0)
        return lv_admin_authority_ok(s, origin + sizeof(http) - 1, len - (sizeof(http) - 1), 80);
    if (len > sizeof(https) - 1 && strncasecmp(origin, https, sizeof(https) - 1) == 0)
        return lv_admin_authority_ok(s, origin + sizeof(https) - 1, len - (sizeof(https) - 1), 443);
    return false; /* "null", another scheme, or garbage */
}

static void digest(const char *p, size_t len, unsigned char out[32])
{
    unsigned int n = 0;
    if (EVP_Digest(p, len, out, &n, EVP_sha256(), NULL) != 1 || n != 32)
        memset(out, 0xff, 32); /* cannot happen with a working libcrypto */
}

bool lv_admin_token_ok(const char *token, const char *authz, size_t len)
{
    /* The scheme is not secret: an early exit on it leaks nothing. */
    if (len < 7 || strncasecmp(authz, "Bearer ", 7) != 0) return false;
    size_t i = 7;
    while (i < len && authz[i] == ' ')
        i++;
    unsigned char want[32], got[32];
    digest(token, strlen(token), want);
    digest(authz + i, len - i, got);
    /* Equal digests of different strings would need a SHA-256 collision. */
    return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}

const char *lv_admin_host_entry_check(const char *entry)
{
    struct authority a;
    if (entry[0] == '\0') return "must not be empty";
    if (strchr(entry, '/') || strchr(entry, '@'))
        return "a host name or address, optionally with :port (no scheme, path or user)";
    if (!split_authority(entry, strlen(entry), &a))
        return "not a host[:port] (letters, digits, '-', '.', '_', '~'; [IPv6]; port 1-65535)";
    return NULL;
}

static bool value_is(const struct lv_admin_field *f, const char *lit)
{
    size_t n = strlen(lit);
    return f->len == n && strncasecmp(f->p, lit, n) == 0;
}

enum lv_admin_verdict lv_admin_guard(const struct lv_admin_site *s, const char *token,
                                     const struct lv_admin_req *r)
{
    if (r->host.count > 1) return LV_ADMIN_BAD_HOST;
    if (r->host.p == NULL) {
        if (r->host_required) return LV_ADMIN_BAD_HOST;
    } else {
        struct authority a;
        if (!split_authority(r->host.p, r->host.len, &a)) return LV_ADMIN_BAD_HOST;
        if (!authority_matches(s, &a, 80)) return LV_ADMIN_OTHER_HOST;
    }
    if (!r->post) return LV_ADMIN_PASS;
    if (token != NULL) {
        bool ok =
            r->authz.p && r->authz.count == 1 && lv_admin_token_ok(token, r->authz.p, r->authz.len);
        return ok ? LV_ADMIN_PASS : LV_ADMIN_NEED_TOKEN;
    }
    /* No token (a loopback listener): the request must come from a tool or
     * from the dashboard itself, never from another site's page. */
    if (r->origin.p && (r->origin.count > 1 || !lv_admin_origin_ok(s, r->origin.p, r->origin.len)))
        return LV_ADMIN_FOREIGN_ORIGIN;
    if (r->fetch_site.p && (value_is(&r->fetch_site, "cross-site") ||
                            value_is(&r->fetch_site, "same-site") || r->fetch_site.count > 1))
        return LV_ADMIN_CROSS_SITE;
    if (r->admin_header.p == NULL) return LV_ADMIN_NEED_HEADER;
    return LV_ADMIN_PASS;
}

unsigned lv_admin_verdict_status(enum lv_admin_verdict v)
{
    switch (v) {
    case LV_ADMIN_PASS: return 200;
    case LV_ADMIN_BAD_HOST: return 400;
    case LV_ADMIN_OTHER_HOST: return 421;
    case LV_ADMIN_NEED_TOKEN: return 401;
    case LV_ADMIN_FOREIGN_ORIGIN:
    case LV_ADMIN_CROSS_SITE:
    case LV_ADMIN_NEED_HEADER: return 403;
    }
    return 403;
}

const char *lv_admin_verdict_message(enum lv_admin_verdict v)
{
    switch (v) {
    case LV_ADMIN_PASS: return "ok";
    case LV_ADMIN_BAD_HOST:
        return "bad or missing Host: one Host field, host[:port], is required (HTTP/1.1)";
    case LV_ADMIN_OTHER_HOST:
        return "Host does not name this admin listener (its address and port, localhost on "
               "loopback, or a name in admin.allowed_hosts)";
    case LV_ADMIN_NEED_TOKEN:
        return "missing or wrong bearer token (Authorization: Bearer <admin.token>)";
    case LV_ADMIN_FOREIGN_ORIGIN:
        return "cross-origin request refused: Origin is not this admin listener";
    case LV_ADMIN_CROSS_SITE: return "cross-site request refused (Sec-Fetch-Site)";
    case LV_ADMIN_NEED_HEADER:
        return "missing X-Levee-Admin header: a POST needs it when admin.token is not set "
               "(send X-Levee-Admin: 1)";
    }
    return "refused";
}
