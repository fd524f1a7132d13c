/*
 * One worker's proxy: its listeners, its client and backend connections,
 * its pools and its views of configuration generations — the top of the
 * request path's chain (server ─► client ─► exchange ─► attempt ─► upconn).
 * Everything here runs on the worker's loop; the main thread reaches it
 * only through messages (lv_worker_post) carrying these callbacks.
 *
 *   RUNNING ──drain──► DRAINING ──last connection closed──► STOPPED
 *      └──────stop (close everything now)──────┘
 */
#ifndef LV_PROXY_SERVER_H
#define LV_PROXY_SERVER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/list.h"
#include "core/worker.h"
#include "proxy/upconn.h"
#include "proxy/wctx.h"

struct lv_proxy;
struct lv_listener;
struct lv_client;

enum lv_server_state { LV_SRV_RUNNING, LV_SRV_DRAINING, LV_SRV_STOPPED };

struct lv_server {
    struct lv_worker w;
    struct lv_proxy *proxy;
    enum lv_server_state state;
    struct lv_wctx ctx; /* what the objects below share */
    struct lv_upconns ups;
    struct lv_list listeners; /* struct lv_listener, by its link */
    size_t listeners_open;
    struct lv_list clients; /* struct lv_client, by its link */
    size_t nclients;
    bool started; /* its thread runs (set by the main thread) */
    /* Its listeners wait for a slot of limits.max_connections (net/maxconn.h). */
    atomic_bool accept_waiting;
};

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

#endif
