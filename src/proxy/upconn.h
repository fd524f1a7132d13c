/*
 * Connections to backends. An upconn connects (TCP, then TLS for an https
 * backend), carries one attempt at a time — the request its user writes,
 * the response it parses and reports — and between attempts waits in its
 * backend's pool for this worker, still reading, so that a close by the
 * backend is noticed at once.
 *
 *                      ┌──────── TLS backend ────────┐
 *   CONNECTING ──TCP──►│                             ▼
 *        │             └──► (plain) ──────────► ACTIVE ◄──acquire── IDLE
 *        │                  HANDSHAKING ──ok──►   │  │                 ▲
 *        │                                        │  └─release(reuse)──┘
 *        │                           take_stream  ▼
 *        │                                     TUNNEL ──finish──► FINISHING
 *        ▼                                                             │
 *   any state ──close / failure / timeout──► CLOSING ◄── written/timeout┘
 *
 * While ACTIVE the response goes HEAD ─(1xx head)─► INTERIM ─(its end)─►
 * HEAD ─(final head)─► BODY ─(end)─► DONE. Reading may be paused (the
 * client is slow): a flow-control flag, not a state.
 *
 * The attempt that acquired the connection is told what happens through the
 * table of callbacks it passes (struct lv_upconn_ops); the upconn never
 * reaches into its user. Callbacks run from the upconn's own I/O and timer
 * callbacks, never from inside an lv_upconn_* call, except where a
 * function says so. A callback may release or close the upconn; the upconn
 * notices and touches nothing after.
 *
 * Memory: an upconn is freed in the close callback of its last handle (its
 * socket and its timer). The worker's registry (struct lv_upconns) lists
 * them all and is told when one is freed.
 */
#ifndef LV_PROXY_UPCONN_H
#define LV_PROXY_UPCONN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/fail.h"
#include "core/list.h"
#include "http/head.h"
#include "http/parser.h"
#include "http/rewrite.h"
#include "net/sock.h"
#include "proxy/wctx.h"
#include "upstream/pool.h"

struct lv_backend;
struct lv_backend_cfg;
struct lv_upconn;

enum lv_up_state {
    LV_UP_CONNECTING,  /* TCP connect in progress */
    LV_UP_HANDSHAKING, /* TLS handshake in progress */
    LV_UP_ACTIVE,      /* serving an attempt */
    LV_UP_IDLE,        /* in the pool */
    LV_UP_TUNNEL,      /* its socket belongs to a tunnel */
    LV_UP_FINISHING,   /* writing what is left before closing (after a tunnel) */
    LV_UP_CLOSING,     /* handles closing; freed when both are closed */
};

enum lv_up_resp {
    LV_UPR_HEAD,    /* waiting for a response head */
    LV_UPR_INTERIM, /* inside a 1xx response */
    LV_UPR_BODY,    /* the final head is in; its body streams */
    LV_UPR_DONE,    /* the response is complete */
};

/* A response head, as parsed. */
struct lv_upconn_head {
    const struct lv_head *head; /* status, version, fields (flags set) */
    unsigned status;
    enum lv_framing framing; /* as the backend frames it: LENGTH, CHUNKED, CLOSE or NONE */
    uint64_t content_length; /* with LV_FRAME_LENGTH */
};

/* What the upconn tells the attempt it serves. `user` is the pointer given
 * to lv_upconn_acquire. */
struct lv_upconn_ops {
    /* Connected (and the TLS handshake done): the request may be written. */
    void (*ready)(void *user, struct lv_upconn *up);
    /* A response head: interim (1xx) or final. Returns 0 to go on, 1 for
     * "no body follows" (the answer to a HEAD, a 304), or -1 to refuse it:
     * the upconn then fails with LV_FAIL_BAD_RESPONSE (or p->fail if set by
     * lv_upconn_refuse) — unless the callback released the upconn. */
    int (*head)(void *user, struct lv_upconn *up, const struct lv_upconn_head *h);
    /* Body bytes of the final response (decoded from chunked), inside b. 0
     * or -1 (stop: as for head). */
    int (*body)(void *user, struct lv_upconn *up, struct lv_buf *b, const char *p, size_t len);
    /* The response is complete; `reusable` when nothing followed it and the
     * backend keeps the connection (whether the request was sent in full is
     * the user's to know). The user releases the upconn. */
    void (*end)(void *user, struct lv_upconn *up, bool reusable);
    /* The backend switched protocols (a 101, after head returned 0): the
     * rest of b from `rest` (n bytes, maybe 0) is the first tunnel data. */
    void (*upgraded)(void *user, struct lv_upconn *up, struct lv_buf *b, const char *rest,
                     size_t n);
    /* The attempt failed: kind (connect failure or timeout, reset, response
     * timeout, bad response, TLS), sys_err a libuv code or 0. The upconn
     * is closed when this returns (the user must not release it). */
    void (*failed)(void *user, struct lv_upconn *up, enum lv_fail_kind kind, int sys_err);
    /* A write completed: there is room to write more of the body. */
    void (*drained)(void *user, struct lv_upconn *up);
};

struct lv_upconns; /* the worker's registry, below */

struct lv_upconn {
    struct lv_sock sock;
    struct lv_wheel_timer timer; /* on the worker's wheel (net/sock.h) */
    uv_connect_t creq;
    struct lv_http_parser parser;
    struct lv_head resp;
    struct lv_upconns *set;
    struct lv_backend *backend;
    const struct lv_backend_cfg *bcfg; /* where it connected (from a generation) */
    struct lv_pool_entry link;         /* in the backend's pool, while IDLE */
    struct lv_list link_all;           /* in the registry */
    enum lv_up_state state;
    enum lv_up_resp resp_state;
    int handles_open;
    /* The attempt it serves, while ACTIVE. */
    const struct lv_upconn_ops *ops;
    void *user;
    uint64_t head_deadline;    /* ms: the response head must be in by then */
    uint64_t connect_deadline; /* ms */
    uint64_t inactivity_ms;    /* while the body streams */
    unsigned status;           /* of the last response head */
    uint32_t nrequests;        /* attempts served on this connection */
    uint64_t idle_since_ms;    /* when it went back to the pool */
    uint64_t idle_ms;          /* how long it sat there before this attempt */
    uint64_t idle_timeout_ms;  /* in the pool: its pool's idle_timeout (set on entering) */
    bool reused;               /* this attempt got it from the pool */
    bool got_bytes;            /* a response byte came for this attempt */
    bool paused;               /* flow control: not reading, the client is slow */
};

/* How an attempt wants its connection timed. */
struct lv_upconn_times {
    uint64_t connect_deadline; /* ms, absolute: connected (and TLS done) by then */
    uint64_t head_deadline;    /* ms, absolute: the response head in by then; 0: not yet
                                * (the request still streams: inactivity_ms times it) */
    uint64_t inactivity_ms;    /* the longest silence while a body streams either way */
};

/*
 * A connection to b (configured as bcfg) for an attempt: an idle one from
 * the pool (ACTIVE at once: the caller writes its request right away;
 * lv_upconn_ready() is true), or a new one (CONNECTING: ops->ready or
 * ops->failed follows, never before this returns). Returns NULL with *err
 * set (a libuv code) when no connection can even be started.
 */
struct lv_upconn *lv_upconn_acquire(struct lv_upconns *set, struct lv_backend *b,
                                    const struct lv_backend_cfg *bcfg,
                                    const struct lv_upconn_times *t,
                                    const struct lv_upconn_ops *ops, void *user, int *err);

static inline bool lv_upconn_ready(const struct lv_upconn *up)
{
    return up->state == LV_UP_ACTIVE;
}

/* The socket to write the request to (lv_sock_add / lv_sock_flush). */
static inline struct lv_sock *lv_upconn_sock(struct lv_upconn *up)
{
    return &up->sock;
}

/* The request head is written: read the response, arm the head deadline. */
void lv_upconn_await(struct lv_upconn *up);

/* The request is complete: the response head is due by `deadline` (ms). */
void lv_upconn_set_head_deadline(struct lv_upconn *up, uint64_t deadline);

/* From inside ops->head or ops->body: why the response is refused (the
 * failure reported when the callback returns -1). */
void lv_upconn_refuse(struct lv_upconn *up, enum lv_fail_kind kind);

/* Flow control: stop / resume reading the response (the client is slow /
 * caught up). While paused, the inactivity timer is off. */
void lv_upconn_pause(struct lv_upconn *up);
void lv_upconn_resume(struct lv_upconn *up);

/* Detaches up from its attempt: back to the pool if `reusable` (the whole
 * request was sent, the response ended cleanly) and the backend still
 * takes requests, else closed (a tunnel's too: an abandoned tunnel). May be
 * called from inside any of its callbacks. */
void lv_upconn_release(struct lv_upconn *up, bool reusable);

/* The tunnel takes the socket over (state TUNNEL): the upconn reports
 * nothing more and its timer stops. Returns its socket. */
struct lv_sock *lv_upconn_take_stream(struct lv_upconn *up);

/* After a tunnel: writes out what it still holds, shuts the write side,
 * then closes (or after timeouts.idle, if the backend does not read). */
void lv_upconn_finish(struct lv_upconn *up, uint64_t idle_ms);

/* --- the worker's registry ----------------------------------------------------------- */

struct lv_upconns {
    struct lv_wctx *w;
    struct lv_list all; /* every upconn of the worker, in any state */
    size_t n;
    /* Told each time an upconn is freed (the worker may be done). */
    void (*on_freed)(struct lv_upconns *set);
};

void lv_upconns_init(struct lv_upconns *set, struct lv_wctx *w,
                     void (*on_freed)(struct lv_upconns *set));

/* After a generation switch: idle connections move to the current
 * generation's entry for their backend (same backend, same address), or
 * close — before the old generation, which their pointers lead into, can
 * be freed. Busy ones follow when released. */
void lv_upconns_adopt(struct lv_upconns *set);

/* Closes the idle connections: all (only == NULL) or those to one backend. */
void lv_upconns_close_idle(struct lv_upconns *set, const struct lv_backend *only);
/* Closes every connection (hard stop); their attempts are not told. */
void lv_upconns_close_all(struct lv_upconns *set);

#endif
