/*
 * The running proxy's state (HAProxy's -t.h convention: types here,
 * functions in proxy.h). The main thread owns it (proxy/proxy.c); the
 * workers (proxy/server.c) read and update the parts they share: the
 * connection limit, the Redis store's state, the start-up handshake and
 * each other, to wake a worker waiting for a connection slot.
 */
#ifndef LV_PROXY_PROXY_T_H
#define LV_PROXY_PROXY_T_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "limit/redis.h"
#include "net/maxconn.h"

struct lv_gen;
struct lv_server;
struct lv_cache_store;

struct lv_proxy {
    struct lv_gen *gen; /* current generation (main thread's reference) */
    uint64_t next_gen_id;
    struct lv_server *servers;
    unsigned nservers;
    uint64_t start_ms; /* monotonic */
    uint64_t start_wall_ms;
    uv_loop_t *main_loop;
    uv_async_t *on_worker_exit; /* signalled by each worker as it ends */
    atomic_uint workers_running;
    atomic_int setup_failed; /* a worker could not open its listeners */
    uv_sem_t ready;          /* posted by each worker once set up */
    atomic_uint_fast64_t reloads_ok, reloads_failed;
    struct lv_redis_shared redis_shared; /* the rate-limit store's state */
    uint64_t last_reload_ms;             /* wall clock; 0: never */
    struct lv_maxconn conns;             /* client connections, all workers */
    uint64_t nofile;                     /* RLIMIT_NOFILE (soft) when started */
    struct lv_cache_store *cache;        /* the HTTP cache, shared by the workers and kept
                                            across reloads (cache/store.h) */
};

#endif
