/*
 * A worker's context: what every object of the proxy on one worker shares
 * — its loop, its buffers and sockets' resources, its counters, its retry
 * budget, the rate-limit store connection, and its views of configuration
 * generations. The worker (proxy/server.c) owns it and hands a pointer down
 * the chain (client, exchange, attempt, upconn); the objects below read and
 * update it, and never reach up into the worker itself.
 *
 * Everything here belongs to one worker thread: no field is touched from
 * another thread (the counters are atomics only so that the main thread
 * can read them for /metrics).
 */
#ifndef LV_PROXY_WCTX_H
#define LV_PROXY_WCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "core/list.h"
#include "core/rand.h"
#include "net/sock.h"
#include "proxy/wstats.h"
#include "upstream/retry.h"

struct lv_wgen;
struct lv_redis;
struct lv_exchange;
struct lv_upconns;
struct lv_cache_store;
struct lv_cached_worker;
struct lv_client_req;

struct lv_wctx {
    uv_loop_t *loop;
    unsigned id; /* the worker's index: per-worker slots of shared objects */
    struct lv_rand *rand;
    struct lv_sockenv env; /* read buffers, write requests */
    struct lv_stats stats;
    struct lv_retry_budget budget;
    struct lv_redis *redis; /* the rate-limit store connection, or NULL */
    struct lv_upconns *ups; /* the worker's backend connections */
    struct lv_wgen *wgen;   /* the current generation's view */
    struct lv_list retired; /* older views (struct lv_wgen), until their last request is done */
    uint64_t start_ms;      /* when the process started (monotonic), for /health */
    bool draining;          /* no new requests on kept-alive connections */
    struct lv_cache_store *cache_store; /* the shared HTTP cache (all workers), or NULL */
    struct lv_cached_worker *cached;    /* its wakeups on this worker (proxy/cached.c) */
    /* Exchanges kept for reuse (proxy/exchange.c), by their link. */
    struct lv_list free_exchanges;
    size_t nfree_exchanges;
    /* Clients' request parts kept for reuse (proxy/client.c). */
    struct lv_client_req *free_creqs;
    size_t nfree_creqs;
};

#endif
