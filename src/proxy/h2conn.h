/*
 * An HTTP/2 client connection (RFC 9113) on a socket the HTTP/1.x client
 * connection hands over (after ALPN "h2", or the prior-knowledge preface on
 * a listener with `http2: true`). nghttp2 does the framing, HPACK and the
 * protocol's own checks; this file is the glue to levee's loop and buffers:
 *
 *   - each stream is one exchange (proxy/exchange.h), driven through the
 *     same struct lv_downstream_ops as an HTTP/1.1 request: pseudo-headers
 *     become the request line and Host, the answer's head becomes HPACK
 *     fields (connection-specific fields dropped), its body DATA frames
 *     sent from the backend's read buffers by reference (no copy);
 *   - flow control is end to end: a stream's request DATA is acknowledged
 *     (WINDOW_UPDATE) only while its exchange takes more body, and an
 *     answer's body is pulled by nghttp2 only as the client's window and
 *     the socket allow;
 *   - abuse is counted and ends the connection (GOAWAY ENHANCE_YOUR_CALM):
 *     streams reset by the client (rapid reset), PING / SETTINGS / empty
 *     frames past a rate, header blocks past the header limit or spread
 *     over too many CONTINUATION frames; a client that holds its window
 *     shut while an answer waits is closed after timeouts.idle.
 *
 *   RUNNING ──drain (GOAWAY)──► DRAINING ──last stream gone──► CLOSED
 *   any ──protocol error, abuse, timeout, socket error──► CLOSED
 *
 * The connection never frees the socket: it tells its owner (ops->close)
 * that the connection is over, and the owner closes the socket. Its own
 * handles (a timer, a prepare handle) are closed by lv_h2conn_close; the
 * memory goes in their close callback, then ops->freed runs.
 */
#ifndef LV_PROXY_H2CONN_H
#define LV_PROXY_H2CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "net/sock.h"
#include "proxy/wctx.h"

struct lv_h2conn;

/* What the connection asks of its owner (the client connection). */
struct lv_h2conn_ops {
    /* The connection is over: close the socket (then lv_h2conn_close). */
    void (*close)(void *owner);
    /* lv_h2conn_close finished: the connection's memory is gone. */
    void (*freed)(void *owner);
};

/* Takes over s (its read/write handlers and data) and starts the session:
 * the server's SETTINGS go out at once; p[0..n) (inside b, may be NULL)
 * are bytes already read. peer_ip must live as long as the connection.
 * NULL on ENOMEM (the caller closes). */
struct lv_h2conn *lv_h2conn_start(struct lv_wctx *w, struct lv_sock *s, const char *peer_ip,
                                  bool tls, struct lv_buf *b, const char *p, size_t n,
                                  const struct lv_h2conn_ops *ops, void *owner);

/* Graceful shutdown: GOAWAY, streams under way finish, then ops->close. */
void lv_h2conn_drain(struct lv_h2conn *h);

/* Ends every stream (their exchanges are cancelled) and closes the
 * connection's handles; ops->freed follows from a close callback. The
 * socket is the owner's and must already be closing. */
void lv_h2conn_close(struct lv_h2conn *h);

/* --- policy, pure (unit tested) ------------------------------------------------ */

/* A rate counter: events averaged over time, a token bucket of `burst`
 * tokens refilled at `rate` per second. */
struct lv_h2_rate {
    double tokens;
    uint64_t last_ms;
};

/* Takes one token at now_ms; false when the bucket is empty (over the rate). */
bool lv_h2_rate_take(struct lv_h2_rate *r, uint64_t now_ms, double rate, double burst);

/* The llhttp method number for an HTTP/2 :method value, or -1 if llhttp
 * has no such method. */
int lv_h2_method(const char *m, size_t n);

/* True for the fields HTTP/2 forbids (RFC 9113 §8.2.2): Connection,
 * Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade (any case). */
bool lv_h2_connection_specific(const char *name, size_t n);

#endif
