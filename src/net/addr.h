/*
 * Socket addresses as written in a config ("0.0.0.0:8080", "[::1]:9901",
 * ":8080", "localhost:8001") and as printed in logs.
 */
#ifndef LV_NET_ADDR_H
#define LV_NET_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * Splits "host:port" (host may be "[v6]", or empty for "any"). Writes the
 * host without brackets. Returns 0, or UV_EINVAL with *why set to a static
 * message.
 */
int lv_addr_split(const char *s, char *host, size_t hostcap, uint16_t *port, const char **why);

/*
 * Resolves host (empty: the wildcard address) and port, preferring IPv4
 * when a name has both. Blocking (getaddrinfo): call it only from the main
 * thread. Returns 0, or UV_EINVAL with *why set (static or gai_strerror
 * text).
 */
int lv_addr_resolve(const char *host, uint16_t port, bool passive, struct sockaddr_storage *out,
                    socklen_t *outlen, const char **why);

/* An address as written in the configuration, resolved when it is loaded
 * (rate_limit.redis.address). */
struct lv_addr_cfg {
    char *address; /* as written, for messages; owned */
    struct sockaddr_storage addr;
    socklen_t addrlen;
};

/* The IP address of sa as text (no port); returns buf. */
const char *lv_addr_ip(const struct sockaddr *sa, char *buf, size_t cap);

/* sa as "ip:port" or "[ip6]:port" (an IPv4-mapped address as IPv4);
 * returns buf. LV_ADDR_TEXT_MAX bytes always fit. */
#define LV_ADDR_TEXT_MAX 56
const char *lv_addr_text(const struct sockaddr *sa, char *buf, size_t cap);

/* Are a and b the same IPv4 or IPv6 socket address (family, address,
 * port; for IPv6 also the scope)? Other families are never the same. */
bool lv_addr_same(const struct sockaddr *a, const struct sockaddr *b);

#endif
