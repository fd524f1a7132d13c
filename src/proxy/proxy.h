/*
 * The running proxy: the configuration in use, the backends shared by all
 * workers, and the workers themselves. Built and torn down by main.c on the
 * main thread; workers only read it.
 */
#ifndef LV_PROXY_PROXY_H
#define LV_PROXY_PROXY_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/proxy-t.h"

struct lv_proxy {
    struct lv_config *cfg;
    struct lv_backend **backends;
    size_t nbackends;
    struct lv_server *servers;
    unsigned nservers;
    int alog_fd; /* -1: access log off */
    bool alog_owned;
    uint64_t start_ms;
    uv_loop_t *main_loop;
    uv_async_t *on_worker_exit; /* signalled by each worker as it ends */
    atomic_uint workers_running;
    atomic_int setup_failed; /* a worker could not open its listeners */
    uv_sem_t ready;          /* posted by each worker once set up */
};

/*
 * Builds backends and workers for cfg (the proxy takes ownership of cfg),
 * opens the access log and starts every worker. Returns 0, or a negative
 * error after logging why (nothing is left running).
 */
int lv_proxy_start(struct lv_proxy *p, struct lv_config *cfg, uv_loop_t *main_loop,
                   uv_async_t *on_worker_exit);

/* Graceful shutdown: stop accepting, finish in-flight requests. */
void lv_proxy_drain(struct lv_proxy *p);
/* Hard stop: close every connection now. */
void lv_proxy_stop(struct lv_proxy *p);
/* Waits for the workers (after they exited) and frees everything, the
 * configuration included. Also undoes a failed lv_proxy_start. */
void lv_proxy_destroy(struct lv_proxy *p);

#endif
