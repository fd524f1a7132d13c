/*
 * One worker's proxy: its listeners, its client and backend connections,
 * its pools and balancer state. Everything here runs on the worker's loop.
 */
#ifndef LV_PROXY_SERVER_H
#define LV_PROXY_SERVER_H

#include "proxy/proxy-t.h"

/* Runs on the worker thread: opens listeners and starts accepting. */
void lv_server_setup(struct lv_worker *w, void *arg);

/* Messages from the main thread (lv_worker_post callbacks). */
void lv_server_drain(struct lv_worker *w, void *arg);
void lv_server_stop(struct lv_worker *w, void *arg);

/* Called when a client or upconn is freed: the worker may be done. */
void lv_server_check_done(struct lv_server *srv);

#endif
