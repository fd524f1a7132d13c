/*
 * A client connection: parses requests with llhttp, runs them one at a
 * time (pipelined requests wait their turn in the read buffer), enforces
 * the client-side timeouts (header, body, idle) and closes cleanly: after a
 * response that ends the connection, the write side is shut and the rest of
 * the input is read and dropped for a while (lingering close), so that the
 * client gets the response instead of a reset.
 */
#ifndef LV_PROXY_CLIENT_H
#define LV_PROXY_CLIENT_H

#include "proxy/proxy-t.h"

/* Takes over a connection the listener accepted, with its slot of
 * limits.max_connections (given back when the client is freed): starts TLS
 * on a TLS listener, then reads requests. On failure fd is closed and the
 * slot given back. */
void lv_client_accept(struct lv_server *srv, struct lv_listener *ls, int fd);

/* The client's current exchange is done (or aborted): log it, free it and
 * go on with the next request or close. May be called from inside the
 * client's own parser callbacks: the work is then done on the way out. */
void lv_client_exchange_done(struct lv_client *c);

/* Flow control from the exchange: stop / resume reading the request body. */
void lv_client_pause(struct lv_client *c);
void lv_client_resume(struct lv_client *c);

/* Shutdown: close at once if idle, else after the current response. */
void lv_client_drain(struct lv_client *c);
/* Close now, whatever is in flight. */
void lv_client_abort(struct lv_client *c);

/* Has the client closed its connection? Checked without reading (a peek),
 * before levee spends a retry on a request: a client that half-closed
 * after its request counts as gone too. */
bool lv_client_gone(struct lv_client *c);

/* (Re)arms the tunnel idle timeout (timeouts.tunnel). */
void lv_client_arm_tunnel(struct lv_client *c);

/* (Re)arms the client's timer: the client has `ms` to make progress. */
void lv_client_arm_send_timeout(struct lv_client *c);

#endif
