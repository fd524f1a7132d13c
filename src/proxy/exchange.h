/*
 * One request's way through levee, from its parsed head to the last byte
 * of its answer:
 *
 *   HEAD ─► checks (framing, target, Host, limits) ─► /health? answered
 *     │   ─► route (first match): a pool, or a redirect / direct answer
 *     │
 *     ├─► rate limits ─(Redis)─► LIMITING ─┐
 *     ▼                                   ▼
 *   FORWARDING: the attempt loop (proxy/attempt.h) ─► an answer's head ─►
 *   RESPONDING: its body relayed ─► DONE
 *     │                       └─(101)─► TUNNEL ─► DONE
 *     └─ levee answers itself (4xx, 429, 502..504) ─────────────────► DONE
 *
 * and on the request side HEAD ─► BODY ─► COMPLETE.
 *
 * The exchange does not know what carries the request: the connection it
 * came on (an HTTP/1.1 client connection, proxy/client.c) installs a table
 * of callbacks (struct lv_downstream_ops) through which the exchange sends
 * heads, bodies and ends, asks for flow control, and says when it is done.
 * The downstream serializes for its protocol; the exchange decides what
 * the answer is. A connection carrying several exchanges at once (HTTP/2)
 * gives each its own `d` pointer.
 *
 * Re-entrancy: the downstream's callbacks, `done` included, may run from
 * inside any lv_exchange_* call (a request refused at its head is answered
 * from lv_exchange_on_head). The downstream must not free the exchange
 * from inside them: `done` says it may do so once the call returns.
 */
#ifndef LV_PROXY_EXCHANGE_H
#define LV_PROXY_EXCHANGE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/fail.h"
#include "http/head.h"
#include "proxy/attempt.h"
#include "proxy/bodyq.h"
#include "proxy/cached.h"
#include "proxy/ratelimit.h"
#include "proxy/tunnel.h"
#include "proxy/wctx.h"

struct lv_wgen;
struct lv_wpool;
struct lv_config;
struct lv_route;
struct lv_route_cfg;

enum lv_ex_state {
    LV_EX_HEAD,       /* the request head is being read */
    LV_EX_LIMITING,   /* waiting for the rate-limit store */
    LV_EX_FORWARDING, /* the attempt loop runs; nothing answered yet */
    LV_EX_RESPONDING, /* the answer's head is out; its body streams */
    LV_EX_TUNNEL,     /* an upgrade tunnel runs */
    LV_EX_DONE,       /* answered, cut short, or abandoned */
};

enum lv_ex_req {
    LV_EXR_HEAD,     /* the head is not complete */
    LV_EXR_BODY,     /* the body streams in */
    LV_EXR_COMPLETE, /* the whole request is in */
};

/* How the connection goes on once the exchange is DONE. */
enum lv_ex_end {
    LV_EXE_KEEP,  /* the next request may come */
    LV_EXE_CLOSE, /* close gracefully after the answer is written */
    LV_EXE_ABORT, /* the answer was cut short: close at once */
};

/* How an answer's body is delimited. */
enum lv_body_kind {
    LV_BODY_NONE,   /* no body (HEAD, 204, 304, 101) */
    LV_BODY_LENGTH, /* exactly `length` bytes */
    LV_BODY_STREAM, /* until lv_downstream_ops.end */
};

/* An answer's head, for the downstream to serialize. */
struct lv_answer {
    unsigned status;
    const struct lv_head
        *head;         /* the backend's head (its fields, flags set), or NULL: levee's own */
    const char *extra; /* header lines levee adds ("Name: v\r\n"...) */
    enum lv_body_kind body;
    uint64_t length; /* with LENGTH */
    bool head_only;  /* the answer to a HEAD: `length` is stated, no body follows */
    bool must_close; /* the connection cannot carry another request after it */
};

/* The request's framing, as the client sent it. */
struct lv_req_framing {
    enum lv_framing framing; /* NONE, LENGTH or CHUNKED */
    uint64_t length;         /* with LENGTH */
    bool keep_alive;         /* the client wants the connection kept */
};

/* What the exchange asks of the connection its request came on. `d` is the
 * pointer given to lv_exchange_create. */
struct lv_downstream_ops {
    /* Sends the answer's head. 0, or -1 when it cannot be written. */
    int (*head)(void *d, const struct lv_answer *a);
    /* A 1xx from the backend (103 Early Hints), for clients that take them. */
    void (*interim)(void *d, const struct lv_head *h);
    /* "100 Continue": the client may send its body. */
    void (*send_continue)(void *d);
    /* Body bytes of the answer, inside b. 0 or -1. */
    int (*body)(void *d, struct lv_buf *b, const char *p, size_t len);
    /* The answer's body is complete. */
    void (*end)(void *d);
    /* Memory of the answer not yet written toward the client. */
    size_t (*backlog)(void *d);
    /* Stop / resume reading the request body (flow control). */
    void (*pause_body)(void *d, bool pause);
    /* Has the client gone away (checked before a retry)? */
    bool (*gone)(void *d);
    /* For a tunnel: the client's socket, and the bytes read after its
     * upgrade request (*b NULL: none; the reference passes to the caller). */
    struct lv_sock *(*take_stream)(void *d, struct lv_buf **b, const char **p, size_t *n);
    /* The exchange is DONE (lv_exchange_end tells how the connection goes
     * on). The downstream destroys it once the current call returns. */
    void (*done)(void *d);
};

struct lv_exchange {
    uv_timer_t timer;     /* first: its handle is the exchange's memory (attempt's timer) */
    uv_timer_t tun_timer; /* the tunnel's idle timer */
    struct lv_wctx *w;
    struct lv_list link_free; /* in the worker's free list, while unused */
    /* everything from here is reset for each request */
    enum lv_ex_state state;
    enum lv_ex_req req_state;
    enum lv_ex_end end;
    const struct lv_downstream_ops *ops;
    void *d;
    struct lv_wgen *wg;          /* the generation it runs on */
    const struct lv_config *cfg; /* wg->gen->cfg */
    /* Its route (config/routes.h), once the head is in: the route, its
     * settings, the pool it forwards to (with the route's policies; NULL
     * for a redirect or a direct answer), and the rewritten target or the
     * redirect's Location (heap; NULL: none). */
    const struct lv_route *route;
    const struct lv_route_cfg *rcfg;
    const struct lv_wpool *pool;
    char *rbuf;
    size_t rbuf_len;
    char *req_lines;     /* header lines levee adds to the forwarded request (heap), or NULL */
    char *resp_lines;    /* ... to the response (the route's response_headers), or NULL */
    const char *peer_ip; /* the client's address (the downstream's memory) */
    bool tls;            /* it came over TLS */
    struct lv_head req;
    struct lv_bodyq body;
    struct lv_attempt_req fwd; /* what the attempt loop forwards */
    struct lv_attempt at;
    struct lv_ratelimit rl;
    struct lv_tunnel tunnel;
    uint64_t start_ns;
    uint64_t start_wall_ms;
    uint64_t req_length; /* with a Content-Length */
    uint64_t resp_bytes; /* body bytes to the client (tunnel: bytes down) */
    unsigned status;     /* of the answer; 0: none */
    bool is_head;
    bool keep_alive;        /* the client wants the connection kept */
    bool upgrade;           /* an upgrade to an allowed protocol was asked */
    bool rid_generated;     /* levee made the request id */
    enum lv_fail_kind fail; /* why levee answered itself, or NONE */
    /* Text, last: reset by their first byte only (lv_exchange_create). */
    char request_id[130]; /* up to 128 characters */
    char extra[400];      /* lines levee adds to the forwarded request */
    char upgrade_to[64];  /* the Upgrade value the client sent */
    /* The cache between the exchange and its attempt loop: reset by
     * lv_cached_init. */
    struct lv_cached cd;
};

/* A fresh exchange (from the worker's free list) for a request from
 * peer_ip, reporting to ops/d. NULL on ENOMEM. */
struct lv_exchange *lv_exchange_create(struct lv_wctx *w, const struct lv_downstream_ops *ops,
                                       void *d, const char *peer_ip, bool tls);
/* Logs and counts a request that got as far as a head or an answer, then
 * frees the exchange (to the free list). Whatever is in flight is stopped. */
void lv_exchange_destroy(struct lv_exchange *ex);
/* Frees the free list (the worker is stopping). */
void lv_exchange_free_list(struct lv_wctx *w);

/* Where the request head goes while it is parsed. */
static inline struct lv_head *lv_exchange_head(struct lv_exchange *ex)
{
    return &ex->req;
}

/* The head is complete. Returns 0 to go on reading the body, or -1 when
 * levee has answered and the rest of the request must not be read. */
int lv_exchange_on_head(struct lv_exchange *ex, const struct lv_req_framing *f);
/* Body bytes (decoded from chunked), inside b. 0, or -1 to stop reading. */
int lv_exchange_on_body(struct lv_exchange *ex, struct lv_buf *b, const char *p, size_t len);
/* The whole request is in. */
void lv_exchange_on_request_end(struct lv_exchange *ex);
/* The downstream wrote some of the answer: flow control may lift. */
void lv_exchange_on_drain(struct lv_exchange *ex);

/* The client side failed (a timeout, a parse error): answer with kind if
 * nothing was sent yet, else cut the answer short. No-op once DONE. */
void lv_exchange_fail(struct lv_exchange *ex, enum lv_fail_kind kind);
/* The client went away: everything in flight stops (no callback follows);
 * the exchange is DONE, its status 499 unless an answer had begun. */
void lv_exchange_cancel(struct lv_exchange *ex);

static inline bool lv_exchange_done(const struct lv_exchange *ex)
{
    return ex->state == LV_EX_DONE;
}

static inline enum lv_ex_end lv_exchange_end(const struct lv_exchange *ex)
{
    return ex->end;
}

static inline bool lv_exchange_request_complete(const struct lv_exchange *ex)
{
    return ex->req_state == LV_EXR_COMPLETE;
}

#endif
