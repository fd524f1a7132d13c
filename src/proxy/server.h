/*
 * One worker's proxy: its listeners, its client and backend connections,
 * its pools and its views of configuration generations. Everything here
 * runs on the worker's loop; the main thread reaches it only through
 * messages (lv_worker_post) carrying these callbacks.
 */
#ifndef LV_PROXY_SERVER_H
#define LV_PROXY_SERVER_H

#include "proxy/proxy-t.h"

/* Setup, on the worker thread: arg is the first generation (its reference
 * passes to the worker). Opens the listeners, posts proxy->ready. */
void lv_server_setup(struct lv_worker *w, void *arg);

/* Messages from the main thread. */
void lv_server_switch(struct lv_worker *w, void *gen);      /* a new generation (ref passed) */
void lv_server_backend_state(struct lv_worker *w, void *b); /* admin state changed (ref passed) */
void lv_server_drain(struct lv_worker *w, void *arg);
/* The first half of a drain, for a binary upgrade: the listeners close (the
 * new process serves their sockets), and every response from now on closes
 * its connection, but an idle keep-alive connection stays open for the
 * request its client may be sending right now (closing it would race with
 * that request). lv_server_drain, later, closes the ones still idle. */
void lv_server_stop_accepting(struct lv_worker *w, void *arg);
void lv_server_stop(struct lv_worker *w, void *arg);

/* A retired generation view's last request is done: free it. */
void lv_server_retire_done(struct lv_server *srv, struct lv_wgen *wg);

/* A client connection's slot of limits.max_connections is free again (the
 * connection was freed, or never made): wakes the workers waiting for one. */
void lv_server_conn_freed(struct lv_server *srv);

/* Called when a client or upconn is freed: the worker may be done. */
void lv_server_check_done(struct lv_server *srv);

#endif
