/* The demo backend's listeners and workers: one thread, loop and listening socket per worker
 * (SO_REUSEPORT when there are several), each owning its connections. The connections
 * themselves (parsing, ordering, streaming, closing) are private to demo_server.c. */
#ifndef LV_DEMO_DEMO_SERVER_H
#define LV_DEMO_DEMO_SERVER_H

#include "demo/demo_server-t.h"

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
