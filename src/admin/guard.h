/*
 * The admin port's request guard: which requests the admin listener answers
 * at all, and which may change state.
 *
 *   Host     must name this listener (the address the connection arrived
 *            at, with the listener's port; `localhost` too when that address
 *            is loopback; or a name in admin.allowed_hosts): a page that
 *            rebinds its own DNS name to 127.0.0.1 cannot read the admin
 *            port, because its requests carry its own name.
 *   POST     needs the bearer token when admin.token is set. Without a token
 *            (only allowed on a loopback listener) it must not come from
 *            another web page: no foreign Origin, no Sec-Fetch-Site
 *            cross-site/same-site, and an X-Levee-Admin header, which a
 *            plain HTML form cannot send and which a cross-origin fetch can
 *            send only after a CORS preflight that levee never approves.
 *
 * Pure functions: they take the request's fields and the connection's local
 * address, touch no socket and keep no state.
 */
#ifndef LV_ADMIN_GUARD_H
#define LV_ADMIN_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Where a connection arrived, and the names configured for the listener. */
struct lv_admin_site {
    struct sockaddr_storage local; /* the connection's local address (IPv4 or IPv6) */
    uint16_t port;                 /* the listener's port */
    char *const *hosts;            /* admin.allowed_hosts: "name" or "name:port" */
    size_t nhosts;
};

/* Fills s->local and s->port from a connection's local address; an
 * IPv4-mapped IPv6 address becomes IPv4. hosts are left untouched. */
void lv_admin_site_set_local(struct lv_admin_site *s, const struct sockaddr *sa);

/* Is the local address a loopback address (127.0.0.0/8, ::1)? */
bool lv_admin_site_loopback(const struct lv_admin_site *s);

/*
 * Does `authority` ("host" or "host:port"; an IPv6 host in brackets) name
 * this listener? A missing port means default_port (80 for Host and http
 * origins, 443 for https origins). Names compare case-insensitively. An
 * allowed_hosts entry without a port matches its name with any port.
 */
bool lv_admin_authority_ok(const struct lv_admin_site *s, const char *authority, size_t len,
                           uint16_t default_port);

/* Is an Origin value ("http://host[:port]" or "https://...") this listener?
 * "null" and anything with a path or userinfo is not. */
bool lv_admin_origin_ok(const struct lv_admin_site *s, const char *origin, size_t len);

/*
 * Does an Authorization value carry `Bearer <token>` (the scheme is
 * case-insensitive)? The token is compared through SHA-256 digests with
 * CRYPTO_memcmp: the time taken does not depend on how much of the token a
 * guess got right, nor on the token's length.
 */
bool lv_admin_token_ok(const char *token, const char *authz, size_t len);

/* NULL if `entry` is a valid admin.allowed_hosts entry ("name", "name:port",
 * "1.2.3.4", "[::1]:9901"), else a static message saying what is wrong. */
const char *lv_admin_host_entry_check(const char *entry);

/* What the guard looks at in a request. A field that is absent has p NULL. */
struct lv_admin_field {
    const char *p;
    size_t len;
    unsigned count; /* fields of that name */
};

struct lv_admin_req {
    bool host_required; /* HTTP/1.1 or later */
    bool post;          /* POST: may change state */
    struct lv_admin_field host, origin, fetch_site, authz, admin_header;
};

enum lv_admin_verdict {
    LV_ADMIN_PASS,
    LV_ADMIN_BAD_HOST,       /* 400: no Host on HTTP/1.1, several, or malformed */
    LV_ADMIN_OTHER_HOST,     /* 421: a Host that is not this listener */
    LV_ADMIN_NEED_TOKEN,     /* 401: admin.token set, the request lacks it */
    LV_ADMIN_FOREIGN_ORIGIN, /* 403: Origin names another site */
    LV_ADMIN_CROSS_SITE,     /* 403: Sec-Fetch-Site cross-site or same-site */
    LV_ADMIN_NEED_HEADER,    /* 403: no X-Levee-Admin */
};

/* The verdict on a request; token is admin.token (NULL: none). */
enum lv_admin_verdict lv_admin_guard(const struct lv_admin_site *s, const char *token,
                                     const struct lv_admin_req *r);

/* The status to answer a verdict with (200 for LV_ADMIN_PASS), and one
 * sentence saying what is missing (static). */
unsigned lv_admin_verdict_status(enum lv_admin_verdict v);
const char *lv_admin_verdict_message(enum lv_admin_verdict v);

#endif
