/*
 * A worker's counters (see core/stats.h for how they are written and
 * read). Per-backend counters live with the backend (upstream/backend.h).
 */
#ifndef LV_PROXY_WSTATS_H
#define LV_PROXY_WSTATS_H

#include "core/fail.h"
#include "core/stats.h"
#include "upstream/retry.h"

/* Why a worker stopped accepting for a while (levee_accept_pauses_total). */
enum lv_accept_pause {
    LV_PAUSE_MAX_CONNECTIONS, /* limits.max_connections reached: until a connection closes */
    LV_PAUSE_FD_LIMIT,        /* accept failed with EMFILE/ENFILE: a back-off */
    LV_PAUSE_ERROR,           /* accept failed otherwise (ENOBUFS, ENOMEM...): a back-off */
    LV_PAUSE_COUNT
};

/* The cache's results (enum lv_cached_result, proxy/cached.h). */
#define LV_CACHE_RESULTS 8

struct lv_stats {
    atomic_uint_fast64_t requests;                            /* finished */
    atomic_uint_fast64_t status[LV_STATUS_CODES];             /* ... by status, no backend chosen */
    struct lv_lathist duration;                               /* whole requests */
    atomic_uint_fast64_t attempts[LV_RETRY_MAX_ATTEMPTS + 1]; /* requests by attempts made */
    atomic_uint_fast64_t generated[LV_FAIL_KIND_COUNT];       /* levee's own answers, by reason */
    atomic_uint_fast64_t attempt_failures[LV_FAIL_KIND_COUNT]; /* failed attempts, by kind */
    atomic_uint_fast64_t retries;                              /* retry attempts started */
    atomic_uint_fast64_t retry_skips[LV_SKIP_COUNT];           /* retries not made, by reason */
    atomic_uint_fast64_t hedges;                               /* hedged copies sent */
    atomic_uint_fast64_t hedge_wins;                           /* ... that answered first */
    atomic_uint_fast64_t connections_accepted;
    atomic_uint_fast64_t client_connections;  /* open now (gauge) */
    atomic_uint_fast64_t backend_connections; /* open now (gauge) */
    atomic_uint_fast64_t request_ids_generated;
    atomic_uint_fast64_t rate_limited[2];        /* refused: global, client */
    atomic_uint_fast64_t tunnels;                /* upgrade tunnels opened */
    atomic_uint_fast64_t tunnels_open;           /* open now (gauge) */
    atomic_uint_fast64_t tunnel_bytes_up;        /* client to backend */
    atomic_uint_fast64_t tunnel_bytes_down;      /* backend to client */
    atomic_uint_fast64_t tls_handshakes;         /* client handshakes completed */
    atomic_uint_fast64_t tls_handshake_failures; /* ... failed or timed out */
    atomic_uint_fast64_t h2_connections;         /* HTTP/2 client connections (issue 17) */
    atomic_uint_fast64_t h2_requests;            /* requests (streams) over HTTP/2 */
    atomic_uint_fast64_t h2_abuse;               /* HTTP/2 connections closed for abuse */
    atomic_uint_fast64_t store_fallbacks;        /* rate checks the store could not answer */

    /* The cache (proxy/cached.h): requests by result, responses stored,
     * body bytes answered from the store. */
    atomic_uint_fast64_t cache[LV_CACHE_RESULTS];
    atomic_uint_fast64_t cache_stores;
    atomic_uint_fast64_t cache_bytes_served;

    /* Listeners paused, by reason. */
    atomic_uint_fast64_t accept_pauses[LV_PAUSE_COUNT];
};

#endif
