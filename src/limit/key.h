/*
 * Who a request is for rate limiting: the peer address, or — when the peer
 * is a proxy levee trusts — the client that proxy names in X-Forwarded-For
 * (the first address, reading from the right, that is not itself a trusted
 * proxy; the left part of the header is whatever the client claimed and
 * cannot be believed), or the value of a configured header.
 */
#ifndef LV_LIMIT_KEY_H
#define LV_LIMIT_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lv_cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned bits;
    uint8_t addr[16];
};

/* Parses "10.0.0.0/8", "192.168.1.7", "::1/128", "fd00::/8". 0 or -1. */
int lv_cidr_parse(const char *s, struct lv_cidr *out);

/* Is the textual IP address ip (len bytes) inside one of the networks? */
bool lv_cidr_contains(const struct lv_cidr *nets, size_t n, const char *ip, size_t len);

/*
 * The client address for peer: peer itself unless it is trusted; then the
 * rightmost untrusted address of xff (a comma-separated list, all the
 * request's X-Forwarded-For values joined), or the leftmost if all are
 * trusted. Writes it NUL-terminated into out (cap >= 48).
 */
void lv_client_address(const char *peer, const char *xff, size_t xff_len,
                       const struct lv_cidr *trusted, size_t ntrusted, char *out, size_t cap);

#endif
