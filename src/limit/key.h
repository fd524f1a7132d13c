/*
 * Who a request is for rate limiting: the peer address, or — when the peer
 * is a proxy levee trusts — the client that proxy names in X-Forwarded-For
 * (the first address, reading from the right, that is not itself a trusted
 * proxy; the left part of the header is whatever the client claimed and
 * cannot be believed), or the value of a configured header.
 *
 * Keys are normalized so that one client has one bucket however its address
 * is spelled, and bounded (LV_LIMIT_KEY_LEN) without truncation: a header
 * value too long to be a key is replaced by its digest, never cut.
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

/* Room for an address's text and its NUL (INET6_ADDRSTRLEN). */
#define LV_IP_TEXT_SIZE 46

/*
 * The longest key lv_limit_key_header writes, and the longest "ip:" key,
 * without the NUL. Kept at 48 because the local table (limit/table.c)
 * compares longer keys by their 64-bit hash alone.
 */
#define LV_LIMIT_KEY_LEN 48

/* Parses "10.0.0.0/8", "192.168.1.7", "::1/128", "fd00::/8". 0 or UV_EINVAL. */
int lv_cidr_parse(const char *s, struct lv_cidr *out);

/* Is the textual IP address ip (len bytes) inside one of the networks? */
bool lv_cidr_contains(const struct lv_cidr *nets, size_t n, const char *ip, size_t len);

/*
 * Parses one X-Forwarded-For entry (len bytes at s, without surrounding
 * whitespace) and writes the address's normal text, NUL-terminated, into
 * out (cap >= LV_IP_TEXT_SIZE). The forms proxies write are accepted:
 *   203.0.113.9            dotted decimal, no leading zeros ("010.1.1.1" is
 *                          octal to some parsers and decimal to others)
 *   2001:db8::1            any RFC 4291 spelling, upper- or lower-case
 *   [2001:db8::1]          bracketed IPv6
 *   203.0.113.9:4711       IPv4 and a port (1-5 digits, at most 65535)
 *   [2001:db8::1]:4711     bracketed IPv6 and a port
 * A port is dropped. The normal text is inet_ntop's: lower-case, zeros
 * compressed, and an IPv4-mapped IPv6 address (::ffff:1.2.3.4) is its IPv4
 * address. Anything else ("unknown", RFC 7239's "_hidden" obfuscated
 * identifiers, zone ids, "[1.2.3.4]", garbage) is not an address.
 * Returns the length written, or UV_EINVAL (out is then "").
 */
int lv_ip_normalize(const char *s, size_t len, char *out, size_t cap);

/*
 * Yields a request's X-Forwarded-For field values, from the last field of
 * the head to the first: sets *value and *len (the bytes stay the
 * caller's; not NUL-terminated) and returns true, or returns false when no
 * field is left.
 */
typedef bool (*lv_xff_prev_cb)(void *arg, const char **value, size_t *len);

/*
 * The client address of a request from peer (NUL-terminated text):
 * - peer itself when it is not trusted (X-Forwarded-For is not read);
 * - else the walk from the right over every entry of every field that
 *   prev yields (several fields are one list, in order), skipping empty
 *   entries: the first address that is not trusted is the client; an entry
 *   that is not an address (see lv_ip_normalize) ends the walk, and the
 *   client is then the last trusted hop (the proxy that wrote that entry,
 *   which is all that can be believed); when every entry is trusted, the
 *   leftmost (or peer when there is none).
 * The walk reads the values in place, with no length limit, each byte a
 * bounded number of times. The result is written in normal form (as by
 * lv_ip_normalize) into out, NUL-terminated; a peer that is not an address
 * is copied as it is (cut to cap - 1 bytes). cap >= LV_IP_TEXT_SIZE.
 * Returns the length written.
 */
size_t lv_client_address(const char *peer, lv_xff_prev_cb prev, void *arg,
                         const struct lv_cidr *trusted, size_t ntrusted, char *out, size_t cap);

/* A field value, for callers that hold the values in an array. */
struct lv_xff_value {
    const char *p;
    size_t len;
};

/* An lv_xff_prev_cb over an array: arg is a struct lv_xff_array, whose n
 * counts down as the values v[n - 1] ... v[0] are yielded. */
struct lv_xff_array {
    const struct lv_xff_value *v;
    size_t n;
};
bool lv_xff_array_prev(void *arg, const char **value, size_t *len);

/*
 * The rate-limit key for a header value (len > 0 bytes, any octets):
 * "h:" and the value when it is at most LV_LIMIT_KEY_LEN - 2 bytes, else
 * "h#" and the hex of the first 128 bits of the value's SHA-256, so that
 * long values that differ anywhere get different keys (an unkeyed
 * cryptographic digest: several levees sharing a Redis store agree on it,
 * and nobody can aim a value at someone else's key). The two forms, and
 * the "ip:" keys, never collide. Writes NUL-terminated into out
 * (cap > LV_LIMIT_KEY_LEN); returns the length, or 0 if the digest failed
 * (out of memory: the caller keys the request by its address).
 */
size_t lv_limit_key_header(const char *value, size_t len, char *out, size_t cap);

#endif
