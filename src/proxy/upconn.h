/*
 * Connections to backends. An upconn is either serving one attempt of an
 * exchange, or idle in its backend's pool for this worker (still reading,
 * so that a close by the backend is noticed at once), or connecting.
 */
#ifndef LV_PROXY_UPCONN_H
#define LV_PROXY_UPCONN_H

#include "proxy/proxy-t.h"

struct lv_gen;

/*
 * A connection to b for ex: an idle one from the pool (state BUSY, ready to
 * send), or a new one (state CONNECTING: lv_exchange_on_connected or
 * lv_exchange_on_attempt_failed follows, never before this returns).
 * Returns NULL with *err set if no connection can even be started.
 */
struct lv_upconn *lv_upconn_acquire(struct lv_server *srv, struct lv_backend *b,
                                    const struct lv_backend_cfg *bcfg, struct lv_exchange *ex,
                                    int *err);

/* Starts reading the response and arms the per-try timer. */
void lv_upconn_await_response(struct lv_upconn *up);

/* Detaches up from its exchange: back to the pool if reusable, else closed. */
void lv_upconn_release(struct lv_upconn *up, bool reusable);

/* Points an idle connection at generation g's entry for its backend (same
 * backend, same address). Returns false when g has no such entry: the
 * connection must be closed. */
bool lv_upconn_adopt(struct lv_upconn *up, const struct lv_gen *g);

/* Closes it now (whatever it is doing; a busy one must be detached). */
void lv_upconn_close(struct lv_upconn *up);

/* Detaches it, writes out what it still holds, then closes it (a tunnel's
 * end). */
void lv_upconn_finish(struct lv_upconn *up);

/* Flow control: the client is slow / caught up. */
void lv_upconn_pause(struct lv_upconn *up);
void lv_upconn_resume(struct lv_upconn *up);

/* Closes the idle pooled connections of this worker: all of them
 * (only == NULL, shutdown) or those to one backend (drained, removed). */
void lv_upconn_close_idle(struct lv_server *srv, const struct lv_backend *only);
/* Closes every connection of this worker (hard stop). */
void lv_upconn_close_all(struct lv_server *srv);

#endif
