/*
 * One request's way through levee:
 *
 *   head parsed ─► checks (limits, framing) ─► attempt: pick a backend,
 *   get a connection (pool or connect), send the rewritten head and stream
 *   the body ─► response head ─► relay the body to the client ─► done
 *
 * A failed attempt is classified (struct lv_fail) and either retried or
 * answered with levee's own response. Once the response head has reached
 * the client, a failure can only cut the response short.
 */
#ifndef LV_PROXY_EXCHANGE_H
#define LV_PROXY_EXCHANGE_H

#include "proxy/proxy-t.h"

/* A fresh exchange for client c (from the worker's free list). */
struct lv_exchange *lv_exchange_create(struct lv_client *c);
/* Returns it to the free list; any attempt is released first. */
void lv_exchange_destroy(struct lv_exchange *ex);
/* Frees the free list (worker shutdown); cb runs when all are freed. */
void lv_exchange_free_list(struct lv_server *srv);

/* From the client side. on_head returns 0 to go on reading the body, or -1
 * when levee has answered and the rest of the request must not be read. */
int lv_exchange_on_head(struct lv_exchange *ex);
int lv_exchange_on_body(struct lv_exchange *ex, struct lv_buf *b, const char *p, size_t len);
void lv_exchange_on_request_end(struct lv_exchange *ex);
/* The client connection failed or timed out: answer with kind if nothing
 * was sent yet, else cut the response short. */
void lv_exchange_fail(struct lv_exchange *ex, enum lv_fail_kind kind);
/* The client went away: release everything; the exchange is then done. */
void lv_exchange_cancel(struct lv_exchange *ex);
/* The client socket drained its writes. */
void lv_exchange_on_client_drain(struct lv_exchange *ex);

/* The request passed the rate limits: go on (100 Continue if asked, then
 * the first attempt). */
void lv_exchange_proceed(struct lv_exchange *ex);
/* levee answers itself with the failure's status (levee's JSON body), and
 * the exchange is done. */
void lv_exchange_respond(struct lv_exchange *ex, enum lv_fail_kind kind);
/* Counts a finished request in the worker's and its backend's metrics. */
void lv_exchange_account(const struct lv_exchange *ex);
/* The upgrade tunnel on this exchange ended: log it, close the client. */
void lv_exchange_tunnel_done(struct lv_exchange *ex);
/* Answers GET /health on the proxy port (levee's own status). */
void lv_exchange_respond_health(struct lv_exchange *ex);
/* The response is partly out and cannot be finished: cut the connection. */
void lv_exchange_abort(struct lv_exchange *ex, enum lv_fail_kind kind);
/* Is the whole request body still held, so that it can be sent again? */
bool lv_exchange_replayable(const struct lv_exchange *ex);

/* From the backend side. */
void lv_exchange_on_connected(struct lv_exchange *ex, struct lv_upconn *up);
void lv_exchange_on_upconn_drain(struct lv_exchange *ex, struct lv_upconn *up);
int lv_exchange_on_response_head(struct lv_exchange *ex, struct lv_upconn *up);
int lv_exchange_on_response_body(struct lv_exchange *ex, struct lv_upconn *up, struct lv_buf *b,
                                 const char *p, size_t len);
/* True when the client has so much response unwritten that the backend
 * must stop being read. */
bool lv_exchange_client_full(const struct lv_exchange *ex);
/* The response is complete; `clean` is false if the connection cannot be
 * reused (bytes after the response, or it ended by close). */
void lv_exchange_on_response_end(struct lv_exchange *ex, struct lv_upconn *up, bool clean);

#endif
