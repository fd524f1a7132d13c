/*
 * Upgrade tunnels (WebSocket and the protocols `upgrade.allow` lists).
 * After the backend's 101 Switching Protocols the client and backend
 * sockets stop speaking HTTP: bytes read on one side are written to the
 * other, with backpressure both ways (a side with more than 256 KiB
 * unwritten stops the other side's reads), an idle timeout
 * (timeouts.tunnel), and one rule for the end: when either side closes or
 * fails, both are closed — what was already read is still delivered — so
 * no socket is left half-open.
 */
#ifndef LV_PROXY_TUNNEL_H
#define LV_PROXY_TUNNEL_H

#include "proxy/proxy-t.h"

/* The 101 is out: turn ex's client and its winning upconn into a tunnel.
 * `rest` (rest_len bytes, inside buffer b) are bytes the backend sent after
 * its 101 head, for the client. */
void lv_tunnel_start(struct lv_exchange *ex, struct lv_buf *b, const char *rest, size_t rest_len);

/* Reads and write completions of either side while tunnelling. */
void lv_tunnel_client_read(struct lv_client *c, struct lv_buf *b, ssize_t nread);
void lv_tunnel_client_written(struct lv_client *c);
void lv_tunnel_backend_read(struct lv_upconn *up, struct lv_buf *b, ssize_t nread);
void lv_tunnel_backend_written(struct lv_upconn *up);

/* The client connection is going away under a tunnel (abort): the
 * tunnel's accounting ends; the backend side is closed with the exchange. */
void lv_tunnel_abort(struct lv_exchange *ex);

/* The tunnel's idle timeout fired (the client's timer). */
void lv_tunnel_idle(struct lv_client *c);

#endif
