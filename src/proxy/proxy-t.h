/*
 * The proxy's types, in one place so that the client side, the exchange
 * and the backend side can point at each other without include cycles
 * (HAProxy's -t.h convention). Functions live in client.h, exchange.h,
 * upconn.h and server.h.
 *
 *   lv_server    one per worker: loop, listeners, connections, pools
 *   lv_client    one client connection; runs its requests one at a time
 *   lv_exchange  one request: head, body queue, attempts, response relay
 *   lv_upconn    one backend connection, idle in a pool or serving an attempt
 *
 * Ownership: the server owns clients and upconns (freed in their close
 * callbacks); a client owns its current exchange; an exchange borrows the
 * upconn of its current attempt. libuv requests never point at an exchange,
 * only at connections, so an exchange can be freed at any point.
 */
#ifndef LV_PROXY_PROXY_T_H
#define LV_PROXY_PROXY_T_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "core/fail.h"
#include "core/worker.h"
#include "http/head.h"
#include "http/parser.h"
#include "http/rewrite.h"
#include "net/listener.h"
#include "net/sock.h"
#include "proxy/stats.h"
#include "upstream/breaker.h"
#include "upstream/pool.h"
#include "upstream/retry.h"

struct lv_config;
struct lv_backend;
struct lv_backend_cfg;
struct lv_proxy;
struct lv_accesslog;
struct lv_gen;
struct lv_redis_call;
struct lv_redis;

/* A worker's view of a configuration generation (see gen.h). */
struct lv_wgen {
    struct lv_gen *gen;
    unsigned inflight; /* exchanges that started on it and are not done */
    void *lb_state;    /* the balancer's per-worker state */
    bool *eligible;    /* scratch for picks, [nbackends] */
    uint32_t *weights;
    struct lv_accesslog *alog;
    struct lv_wgen *next; /* in the worker's list of retired views */
};

/* A run of request body bytes in one buffer (see proxy/bodyq.h). */
struct lv_slice {
    struct lv_buf *buf; /* a reference is held */
    const char *p;
    uint64_t off; /* absolute offset of p[0] in the body */
    uint32_t len;
    uint32_t pinned; /* kept by reference: buf's capacity; 0: copied into a tail */
};

struct lv_bodyq {
    struct lv_slice *s;
    uint32_t count; /* slices held: s[0..count) */
    uint32_t cap;
    uint64_t base;       /* absolute offset of the first byte held (bytes before it were dropped) */
    uint64_t bytes;      /* all body bytes received: the end offset */
    uint64_t mem;        /* buffer memory held (see bodyq.h) */
    struct lv_buf *tail; /* where small pieces are copied; the queue holds a reference */
    struct lv_bufpool *pool; /* tails come from it */
    bool dropped;            /* some bytes were released: the body cannot be replayed */
};

enum lv_up_state { LV_UP_CONNECTING, LV_UP_IDLE, LV_UP_BUSY, LV_UP_CLOSING };

struct lv_upconn {
    struct lv_sock sock;
    uv_timer_t timer;
    uv_connect_t creq;
    struct lv_http_parser parser;
    struct lv_head resp;
    struct lv_server *srv;
    struct lv_backend *backend;
    const struct lv_backend_cfg *bcfg; /* where it connected (from a generation) */
    struct lv_pool_entry link;
    struct lv_upconn *prev, *next; /* every upconn of the server */
    struct lv_exchange *ex;        /* the attempt it serves, or NULL */
    enum lv_up_state state;
    int handles_open;
    uint32_t nrequests;     /* requests sent on this connection */
    uint64_t cursor;        /* absolute offset of the next body byte to send */
    uint32_t interim_count; /* 1xx responses received for this attempt */
    uint64_t interim_bytes; /* ... and their size as relayed */
    uint64_t attempt_start_ms;
    uint64_t attempt_start_ns;
    uint64_t idle_since_ms;          /* when it went back to the pool */
    uint64_t idle_ms;                /* how long it sat there before this attempt */
    struct lv_breaker_ticket ticket; /* the breaker's admission of this attempt */
    bool reused;                     /* the current attempt got it from the pool */
    bool head_sent;                  /* request head handed to the socket */
    bool req_done;                   /* request head and whole body handed to the socket */
    bool resp_head;                  /* final response head received */
    bool resp_done;                  /* response complete */
    bool got_bytes;                  /* any response byte received for this attempt */
    bool paused;                     /* reading stopped: the client is slow */
    bool interim;                    /* the head being parsed is a 1xx */
    bool active_counted;             /* counted in backend->active */
    bool tunnel;                     /* bytes relayed after a 101 */
    bool tun_paused;                 /* not read: the client is behind */
};

struct lv_exchange {
    uv_timer_t timer; /* first: freed through its close callback; kept while pooled */
    struct lv_client *client;
    struct lv_server *srv;
    struct lv_wgen *wg;          /* the generation it runs on */
    const struct lv_config *cfg; /* wg->gen->cfg */
    struct lv_exchange *next_free;
    /* everything from here is reset for each request */
    struct lv_head req;

    uint64_t start_ns;
    uint64_t start_wall_ms;
    uint64_t deadline_ms;
    char request_id[130];          /* up to 128 characters */
    char rl_headers[200];          /* RateLimit-Policy / RateLimit lines, or "" */
    unsigned retry_after_s;        /* for levee's own 429/503 */
    struct lv_redis_call *rl_call; /* a pending check in Redis */
    bool rid_generated;            /* levee made the id (the client sent none, or a bad one) */

    /* request */
    enum lv_framing req_framing; /* toward the backend */
    uint64_t req_length;
    bool idempotent;
    bool is_head;
    bool client_http10;
    bool client_keep_alive;
    bool head_done;    /* the request head was parsed completely */
    bool has_body;     /* the request has a body (to read, and to forward) */
    bool req_complete; /* the client's whole request was read */
    struct lv_bodyq body;

    /* attempts (upstream side; see attempt.c) */
    struct lv_upconn *up;    /* the attempt in flight, or the one that won */
    struct lv_upconn *hedge; /* a second copy in flight (hedging) */
    unsigned attempts;
    unsigned ntried;
    struct lv_backend *tried[LV_RETRY_MAX_ATTEMPTS];
    struct lv_backend *backend; /* of the current or last attempt */
    uint8_t timer_mode;         /* what ex->timer waits for: backoff or hedge */
    bool counted;               /* counted in the worker's retry budget */
    bool retrying;              /* holds a retry slot of the budget */
    bool hedged;                /* a hedge was sent */
    bool stale_retried;         /* a dead pooled connection was replaced once */
    bool nothing_left;          /* no backend could take a retry */
    enum lv_retry_skip skip;    /* why the last failure was not retried */
    enum lv_fail_kind last_fail;
    uint64_t retry_after_ms; /* the backend's Retry-After, for the next wait */

    /* response */
    enum lv_framing resp_framing; /* toward the client */
    unsigned status;
    bool resp_started;      /* head written to the client */
    bool done;              /* response completely handed to the client socket */
    bool close_after;       /* close the client connection after this response */
    bool aborted;           /* the response was cut short: close at once */
    uint64_t resp_bytes;    /* body bytes to the client (tunnel: bytes down) */
    bool upgrade;           /* an upgrade to an allowed protocol was asked */
    bool tunnel_open;       /* a tunnel runs on this exchange */
    uint64_t tunnel_up;     /* tunnel bytes from the client */
    char upgrade_to[64];    /* the Upgrade value the client sent */
    enum lv_fail_kind fail; /* why levee answered itself, or NONE */
};

struct lv_client {
    struct lv_sock sock;
    uv_timer_t timer;
    struct lv_http_parser parser;
    struct lv_server *srv;
    struct lv_client *prev, *next;
    struct lv_exchange *ex;
    struct lv_buf *pending; /* read but not yet parsed (pipelining) */
    uint32_t pending_off, pending_len;
    int handles_open;
    uint32_t nrequests;
    uint8_t timer_mode;
    bool in_process;
    bool upgrade_paused; /* llhttp stopped after an upgrade request */
    bool tunnel;         /* bytes relayed after a 101 */
    bool tun_paused;     /* not read: the backend is behind */
    bool paused;         /* not reading: backpressure toward a backend */
    bool write_blocked;  /* not reading: earlier responses are still being written */
    bool closing;        /* close started */
    bool shutting_down;  /* final response written; shutting the write side */
    bool lingering;      /* after shutdown, read and drop input for a while */
    bool parse_dead;     /* the parser failed: no more requests on this connection */
    char ip[48];
};

struct lv_listener {
    struct lv_acceptor acc;
    struct lv_server *srv;
    char *address;
    SSL_CTX *tls;          /* TLS listener: the current certificates; NULL: plain */
    uint64_t handshake_ms; /* its handshake timeout */
    struct lv_listener *next;
};

struct lv_server {
    struct lv_worker w;
    struct lv_proxy *proxy;
    struct lv_wgen *wgen;        /* current generation */
    struct lv_wgen *retired;     /* older ones with requests still in flight */
    const struct lv_config *cfg; /* wgen->gen->cfg */
    struct lv_sockenv env;
    struct lv_listener *listeners;
    size_t listeners_open;
    struct lv_client *clients;
    size_t nclients;
    struct lv_upconn *upconns;
    size_t nupconns;
    struct lv_exchange *free_exchanges;
    size_t nfree_exchanges;
    struct lv_retry_budget budget;
    struct lv_redis *redis; /* the rate-limit store connection, when used */
    struct lv_stats stats;
    bool started; /* its thread runs */
    bool draining;
    bool stopped;

    /* Its listeners wait for a slot of limits.max_connections (net/maxconn.h). */
    atomic_bool accept_waiting;
};

#endif
