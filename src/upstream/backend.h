/*
 * A backend as all workers share it, identified by its id: the state that
 * must be the same everywhere lives here, changed with C11 atomics —
 * requests in flight (for least_connections), the circuit breaker, the
 * active health verdict, when it last came back (slow start), and the
 * operator's state (enabled, draining, disabled). Whether that adds up to
 * "can serve now" is decided in one place, upstream/eligible.h. The object outlives
 * reloads that keep its id (configuration generations reference-count it);
 * where it is and how it is weighted come from the generation
 * (struct lv_backend_cfg), not from here.
 *
 * Per-worker parts (the keep-alive pool, counters) are indexed by worker id
 * and written only by that worker.
 */
#ifndef LV_UPSTREAM_BACKEND_H
#define LV_UPSTREAM_BACKEND_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "core/log.h"
#include "core/stats.h"
#include "net/tls.h"
#include "upstream/breaker.h"
#include "upstream/ewma.h"
#include "upstream/health.h"
#include "upstream/latwin.h"
#include "upstream/pool.h"
#include "upstream/revive.h"

/* Where a backend is and how it is reached and weighted: one entry of
 * `backends:` in a configuration generation. */
struct lv_backend_cfg {
    char *id;
    char *url;
    char *host;      /* host part of the URL, without brackets */
    char *authority; /* host[:port] as it appears in the URL */
    uint16_t port;
    struct sockaddr_storage addr; /* resolved when the file is loaded */
    socklen_t addrlen;
    uint32_t weight;
    bool health_check_enabled;
    struct lv_tls_backend_cfg tls; /* tls.enabled: an https:// url */
    SSL_CTX *tls_ctx;              /* built when the file is loaded */
};

/* Frees what bc holds (strings, TLS settings and context) and zeroes it. */
void lv_backend_cfg_dispose(struct lv_backend_cfg *bc);

enum lv_admin_state { LV_ADMIN_ENABLED, LV_ADMIN_DRAINING, LV_ADMIN_DISABLED };

/* One worker's counters for one backend. */
struct lv_backend_wstats {
    atomic_uint_fast64_t status[LV_STATUS_CODES]; /* responses relayed, by status */
    atomic_uint_fast64_t attempts;                /* attempts started */
    atomic_uint_fast64_t errors;                  /* attempts that failed (breaker failures) */
    atomic_uint_fast64_t connects;                /* connections opened */
    atomic_uint_fast64_t reuses;                  /* attempts on a pooled connection */
    struct lv_lathist latency;                    /* attempt start → response head */
};

struct lv_backend {
    char *id;
    atomic_int refs;                   /* generations holding it */
    atomic_int active;                 /* attempts in flight, all workers */
    atomic_int admin_state;            /* enum lv_admin_state */
    atomic_bool retired;               /* not in the current configuration */
    atomic_bool healthy;               /* active checks' verdict (true without checks) */
    atomic_bool rising;                /* unhealthy, last check passed (lv_health_rising) */
    atomic_uint_fast64_t recovered_at; /* ms: last return to service, for slow start */
    struct lv_breaker breaker;
    struct lv_ewma rtt;             /* peak EWMA of attempt start → response head (peak_ewma) */
    struct lv_latwin lat;           /* its answers' recent latencies (hedge auto, outliers) */
    struct lv_revive revive;        /* its probe slot while nothing is usable */
    atomic_uint_fast64_t down_at;   /* ms: its checks last turned it unhealthy; 0: never */
    atomic_uint_fast64_t last_pass; /* ms: its last passing check; 0: none */
    atomic_bool unreachable;        /* its last try could not connect, or its last check got
                                       no answer (revive.h: it may come back before the
                                       next check; one that answers waits for its breaker
                                       and checks) */
    unsigned nworkers;
    struct lv_pool *pools;            /* [nworkers] */
    struct lv_backend_wstats *wstats; /* [nworkers] */
    SSL_SESSION **tls_sessions;       /* [nworkers]: the last TLS session, to resume */
    /* Its error lines: a burst, then one a second (core/log.h), so that a
     * backend that fails every connection, or flaps, cannot flood the log. */
    struct lv_log_limit log_conn;  /* cannot connect, TLS failures */
    struct lv_log_limit log_state; /* breaker and health transitions */
    /* Active checks: touched by the main thread only. */
    struct lv_health health;
    uint64_t last_check_ms; /* wall clock; 0: never checked */
    char last_check[128];   /* "ok (200)", "timeout", "connection refused" */
};

/* Creates the shared state for a backend, with one empty pool per worker
 * and one reference. Returns NULL on ENOMEM. */
struct lv_backend *lv_backend_create(const char *id, unsigned nworkers);
void lv_backend_ref(struct lv_backend *b);
/* The last reference frees it; its pools must be empty by then. */
void lv_backend_unref(struct lv_backend *b);

static inline int lv_backend_active(const struct lv_backend *b)
{
    return atomic_load_explicit(&((struct lv_backend *)b)->active, memory_order_relaxed);
}

static inline enum lv_admin_state lv_backend_admin(const struct lv_backend *b)
{
    return (enum lv_admin_state)atomic_load_explicit(&((struct lv_backend *)b)->admin_state,
                                                     memory_order_relaxed);
}

/* Marks the backend back in service (slow start begins: see
 * lv_eligible_ramp). Whether it can serve is upstream/eligible.h's. */
void lv_backend_recovered(struct lv_backend *b, uint64_t now);

const char *lv_admin_state_name(enum lv_admin_state s);

#endif
