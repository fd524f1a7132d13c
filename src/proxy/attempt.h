/*
 * The attempt loop of one request: which backend gets the next try, whether
 * a failed try is tried again (and after how long), hedging, the outcome
 * each try reports to its backend's circuit breaker, and the request body's
 * way to each try. The decisions are pure functions of upstream/ (eligible,
 * outcome, retry, breaker, hedge, outlier, revive, latwin); this file wires
 * them to connections and a timer.
 *
 *            start
 *   IDLE ───────────► TRYING ──a try fails, retry due──► BACKOFF
 *                      │  ▲ └─hedge_after: a 2nd copy       │
 *                      │  └──────────────timer──────────────┘
 *                      │ a final head that is the answer
 *                      ▼
 *                   ANSWERED ──101──► TUNNEL
 *                      │                 │
 *   response end, a failure that is the last word, stop
 *                      ▼                 ▼
 *                    DONE ◄──────────────┘ (tunnel end, stop)
 *
 * At most two tries are in flight: the first copy and, with hedging, a
 * second one on another backend. Each try's request side goes CONNECTING ─►
 * SENDING (head written, body streaming) ─► SENT.
 *
 * The exchange that owns the attempt hears the outcome through the table of
 * callbacks it passes (struct lv_attempt_ops); the attempt never reaches
 * into the exchange. Callbacks run from the attempt's timer and its
 * connections' callbacks, and from lv_attempt_start and the body calls
 * (a try on a pooled connection is written at once, and may fail at once):
 * the exchange must expect them there.
 */
#ifndef LV_PROXY_ATTEMPT_H
#define LV_PROXY_ATTEMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fail.h"
#include "http/rewrite.h"
#include "proxy/bodyq.h"
#include "proxy/upconn.h"
#include "proxy/wctx.h"
#include "upstream/breaker.h"
#include "upstream/retry.h"

struct lv_wpool;
struct lv_backend;

enum lv_attempt_state {
    LV_AT_IDLE,
    LV_AT_TRYING,   /* one or two tries in flight, no answer yet (timer: the hedge) */
    LV_AT_BACKOFF,  /* waiting to try again (timer: the backoff) */
    LV_AT_ANSWERED, /* a try's final head is the answer; its body streams */
    LV_AT_TUNNEL,   /* that try's connection became a tunnel */
    LV_AT_DONE,
};

enum lv_try_req {
    LV_TRY_FREE,       /* no try in this slot */
    LV_TRY_CONNECTING, /* nothing written yet */
    LV_TRY_SENDING,    /* the head is written, the body streams */
    LV_TRY_SENT,       /* the whole request is handed to the socket */
};

struct lv_try {
    enum lv_try_req req;
    struct lv_upconn *up;
    struct lv_backend *backend;
    struct lv_breaker_ticket ticket; /* the breaker's admission */
    uint64_t cursor;                 /* the next body byte to send */
    uint32_t interim_count;          /* 1xx responses received */
    uint64_t interim_bytes;          /* ... and their size */
    uint64_t start_ns;
    size_t idx;  /* its backend's index in the pool */
    bool hedge;  /* it was sent as the second copy */
    bool revive; /* it probes a backend while none is usable (upstream/revive.h) */
};

/* What the exchange hears. `user` is the pointer given to lv_attempt_start. */
struct lv_attempt_ops {
    /* The answer's head (a final response, or the 101 of an upgrade asked
     * for). Returns 0, 1 for "no body follows", or -1 when it cannot be
     * relayed (taken as a bad response from the backend). */
    int (*head)(void *user, const struct lv_upconn_head *h);
    /* A 1xx (other than 100, and not 101) of the only try in flight. */
    void (*interim)(void *user, const struct lv_upconn_head *h);
    /* Body bytes of the answer, inside b. 0, or -1 to stop. */
    int (*body)(void *user, struct lv_buf *b, const char *p, size_t len);
    /* The answer is complete. */
    void (*end)(void *user);
    /* The 101 is in and the backend's socket is the tunnel's now; `rest`
     * (n bytes in b) came right behind the 101. */
    void (*upgraded)(void *user, struct lv_sock *backend, struct lv_buf *b, const char *rest,
                     size_t n);
    /* The last word is a failure: levee answers with kind if nothing of the
     * answer went out yet, else the response is cut short. */
    void (*failed)(void *user, enum lv_fail_kind kind);
    /* Request body was written: what waits for the tries may have shrunk. */
    void (*body_sent)(void *user);
    /* Before a retry: has the client gone away (nobody waits any more)? */
    bool (*client_gone)(void *user);
};

/* The request to forward, owned by the exchange, fixed while the attempt
 * runs (the body queue grows). */
struct lv_attempt_req {
    const struct lv_head *head;
    struct lv_fwd_info fwd; /* backend_authority is filled per try */
    struct lv_bodyq *body;
    bool body_complete; /* the whole body is in the queue */
    bool idempotent;
    bool upgrade;         /* an upgrade to an allowed protocol was asked */
    uint64_t deadline_ms; /* timeouts.backend from the request's end (0: not yet):
                           * no try starts that cannot end by then */
};

struct lv_attempt {
    enum lv_attempt_state state;
    const struct lv_attempt_ops *ops;
    void *user;
    struct lv_wctx *w;
    const struct lv_wpool *pool; /* the backends it picks from, and their policies */
    struct lv_attempt_req *req;
    uv_timer_t *timer;      /* the exchange's: the hedge or the backoff */
    struct lv_try tries[2]; /* [0] the first copy in flight, [1] its hedge */
    unsigned winner;        /* with ANSWERED / TUNNEL: the slot of the answer */
    /* Outputs, for the access log and the metrics (read-only outside). */
    unsigned attempts;
    unsigned ntried;
    struct lv_backend *tried[LV_RETRY_MAX_ATTEMPTS];
    struct lv_backend *backend; /* of the answer, or of the last try */
    unsigned hedges;            /* copies sent as hedges */
    enum lv_retry_skip skip;    /* why the last failure was not retried */
    enum lv_fail_kind last_fail;
    /* Bookkeeping. */
    bool holds_retry_slot;   /* one of the worker's retry budget slots */
    bool stale_retried;      /* a dead pooled connection was replaced once */
    uint64_t retry_after_ms; /* the backend's Retry-After, for the next wait */
};

/* Prepares an attempt (once per exchange memory): IDLE. */
void lv_attempt_init(struct lv_attempt *at, struct lv_wctx *w, uv_timer_t *timer);

/*
 * Starts the loop for req on a pool of the exchange's generation: TRYING,
 * or DONE at once (ops->failed was called) when no backend can be tried.
 * Counts the request in the worker's retry budget.
 */
void lv_attempt_start(struct lv_attempt *at, struct lv_attempt_req *req,
                      const struct lv_wpool *pool, const struct lv_attempt_ops *ops, void *user);

/* Body bytes were added to req->body / the body is complete: hands them to
 * the tries' sockets while they have room. */
void lv_attempt_body_added(struct lv_attempt *at);
void lv_attempt_body_complete(struct lv_attempt *at);

/* Buffer memory of body bytes received but not yet handed to every try's
 * socket (the exchange stops reading the client above its high water). */
uint64_t lv_attempt_body_backlog(const struct lv_attempt *at);

/* Is the whole body still held, so that it can be sent again? */
bool lv_attempt_replayable(const struct lv_attempt *at);

/* Flow control of the answer's body: the client is slow / caught up. */
void lv_attempt_pause(struct lv_attempt *at);
void lv_attempt_resume(struct lv_attempt *at);

/* The tunnel ended: the backend's connection writes what it has, then
 * closes (after idle_ms at most). DONE. */
void lv_attempt_tunnel_end(struct lv_attempt *at, uint64_t idle_ms);

/* Cancels everything in flight (the exchange is done, or abandoned): tries
 * released, breaker admissions given back, the timer stopped, the budget
 * given back. DONE. No callback follows. */
void lv_attempt_stop(struct lv_attempt *at);

/* Seconds a client should wait before trying again when no backend can
 * serve (the soonest a breaker probes, else a health-check interval). */
unsigned lv_attempt_retry_after(const struct lv_attempt *at);

#endif
