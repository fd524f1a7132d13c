/* The demo backend's server and worker types, apart from its functions (demo_server.h), so
 * that the routes, which read a worker's options, random state and counters, need not include
 * the server that calls them. */
#ifndef LV_DEMO_DEMO_SERVER_T_H
#define LV_DEMO_DEMO_SERVER_T_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "demo/demo_buf.h"
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

#endif
