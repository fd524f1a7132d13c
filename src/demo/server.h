/* The demo backend's listeners and workers: one thread, loop and listening socket per worker
 * (SO_REUSEPORT when there are several), each owning its connections. The connections
 * themselves (parsing, ordering, streaming, closing) are private to server.c. */
#ifndef LV_DEMO_SERVER_H
#define LV_DEMO_SERVER_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "demo/buf.h"
#include "demo/options.h"

struct lv_demo_server;

struct lv_demo_worker {
    struct lv_demo_server *server;
    int index;
    int loop_ready, started;
    int close_err; /* uv_loop_close's answer when the worker ended */
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    uv_thread_t thread;
    uint64_t rng;               /* splitmix64 state; only this worker's thread touches it */
    struct lv_demo_buf scratch; /* JSON bodies are built here to learn their length */
    /* Written by this worker only, read by any worker's /stats. */
    _Atomic uint64_t accepted, open, requests;
    char rbuf[64 * 1024]; /* every read lands here; leftovers are copied out */
};

struct lv_demo_server {
    const struct lv_demo_options *opts;
    int port; /* the bound port, also when opts->port was 0 */
    int nworkers;
    struct lv_demo_worker *workers;
};

/* Creates the workers' loops and binds and listens on opts->host:opts->port for each. No
 * thread runs yet. Returns 0 or a negative libuv code, having released everything. opts must
 * outlive the server; opts->id must be set before lv_demo_server_start. */
int lv_demo_server_init(struct lv_demo_server *s, const struct lv_demo_options *opts);
/* Starts one thread per worker. Returns 0 or a negative code (call stop and dispose). */
int lv_demo_server_start(struct lv_demo_server *s);
/* Asks every worker to close all its handles and end. Safe from any thread or callback. */
void lv_demo_server_stop(struct lv_demo_server *s);
/* Waits for the workers, closes their loops and frees them. Returns 0, or the first non-zero
 * uv_loop_close result (a handle leaked). */
int lv_demo_server_dispose(struct lv_demo_server *s);

#endif
