/* Address parsing and printing, shared by listeners, backends and logs. */
#include "net/addr.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "core/units.h"

int lv_addr_split(const char *s, char *host, size_t hostcap, uint16_t *port, const char **why)
{
    const char *colon;
    size_t hlen;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || end[1] != ':') {
            *why = "expected [ipv6]:port";
            return UV_EINVAL;
        }
        hlen = (size_t)(end - s - 1);
        if (hlen >= hostcap) goto too_long;
        memcpy(host, s + 1, hlen);
        colon = end + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL) {
            *why = "expected host:port";
            return UV_EINVAL;
        }
        hlen = (size_t)(colon - s);
        if (hlen >= hostcap) goto too_long;
        memcpy(host, s, hlen);
        if (memchr(host, ':', hlen)) {
            *why = "an IPv6 address must be written in brackets: [::1]:8080";
            return UV_EINVAL;
        }
    }
    host[hlen] = '\0';
    uint64_t p;
    if (lv_parse_u64(colon + 1, &p) != 0 || p == 0 || p > 65535) {
        *why = "port must be a number from 1 to 65535";
        return UV_EINVAL;
    }
    *port = (uint16_t)p;
    return 0;
too_long:
    *why = "host name too long";
    return UV_EINVAL;
}

int lv_addr_resolve(const char *host, uint16_t port, bool passive, struct sockaddr_storage *out,
                    socklen_t *outlen, const char **why)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%u", (unsigned)port);
    const char *node = host;
    if (host[0] == '\0' || strcmp(host, "*") == 0) node = passive ? NULL : "127.0.0.1";
    int rc = getaddrinfo(node, portstr, &hints, &res);
    if (rc != 0) {
        *why = gai_strerror(rc);
        return UV_EINVAL;
    }
    struct addrinfo *pick = res;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    }
    memcpy(out, pick->ai_addr, pick->ai_addrlen);
    *outlen = pick->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

const char *lv_addr_ip(const struct sockaddr *sa, char *buf, size_t cap)
{
    buf[0] = '\0';
    if (sa->sa_family == AF_INET) {
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf, (socklen_t)cap);
    } else if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            inet_ntop(AF_INET, &a->s6_addr[12], buf, (socklen_t)cap);
        } else {
            inet_ntop(AF_INET6, a, buf, (socklen_t)cap);
        }
    }
    return buf;
}

const char *lv_addr_text(const struct sockaddr *sa, char *buf, size_t cap)
{
    char ip[INET6_ADDRSTRLEN];
    lv_addr_ip(sa, ip, sizeof(ip));
    unsigned port = 0;
    bool v6 = false;
    if (sa->sa_family == AF_INET) {
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        port = ntohs(s6->sin6_port);
        v6 = !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr);
    } else {
        snprintf(buf, cap, "(address family %d)", (int)sa->sa_family);
        return buf;
    }
    snprintf(buf, cap, v6 ? "[%s]:%u" : "%s:%u", ip, port);
    return buf;
}

bool lv_addr_same(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family) return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const struct sockaddr_in *)a;
        const struct sockaddr_in *y = (const struct sockaddr_in *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
        const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
        return x->sin6_port == y->sin6_port && x->sin6_scope_id == y->sin6_scope_id &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    return false;
}
