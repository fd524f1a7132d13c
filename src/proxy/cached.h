/*
 * The HTTP cache on the request path: between the exchange and the attempt
 * loop. The exchange hands a request to lv_cached_start instead of starting
 * the attempt loop itself; the cache answers from the shared store
 * (cache/cache.h), forwards (a miss, a revalidation, a pass) through the
 * attempt loop, stores what may be stored while it streams to the client,
 * and reports the answer back through struct lv_cached_ops. With the cache
 * off it is a pass-through: lookups cost nothing, the attempt's callbacks
 * go up as they are.
 *
 *   IDLE ──lookup──► SERVING (a hit: the stored response streams) ──► DONE
 *     │   ├────────► WAITING (another request fetches the key) ─┐
 *     │   │             ▲  └──woken or timed out: lookup again──┘
 *     │   └────────► FORWARDING (attempt loop) ──head──► RELAYING ──► DONE
 *     │                 │  304 merged, stale on error ──► SERVING
 *     └──only-if-cached, failure────────────────────────────────► DONE
 *
 * Wakeups (collapsed forwarding, a body still filling) come from any
 * worker thread: the store's waiter sets a flag and signals the worker's
 * async handle (struct lv_cached_worker), which runs the woken lookups on
 * this worker's loop. A per-worker timer bounds collapsed waits
 * (cache.collapse_timeout).
 *
 * Callbacks may run from inside lv_cached_start and lv_cached_resume (a
 * hit is answered at once); the exchange must expect them there.
 */
#ifndef LV_PROXY_CACHED_H
#define LV_PROXY_CACHED_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/cache.h"
#include "core/fail.h"
#include "core/list.h"
#include "proxy/attempt.h"
#include "proxy/wctx.h"

enum lv_cached_state {
    LV_CD_IDLE,
    LV_CD_WAITING,    /* collapsed: another request fetches the key */
    LV_CD_FORWARDING, /* the attempt loop runs */
    LV_CD_RELAYING,   /* the backend's answer streams (and maybe into the store) */
    LV_CD_SERVING,    /* a stored response streams */
    LV_CD_DONE,
};

/* How the cache answered, for the metrics (levee_cache_requests_total). */
enum lv_cached_result {
    LV_CDR_NONE, /* the cache is off: not counted */
    LV_CDR_HIT,
    LV_CDR_MISS,
    LV_CDR_STALE, /* a stale copy answered (stale-if-error, max-stale, swr) */
    LV_CDR_REVALIDATED,
    LV_CDR_UNCACHEABLE, /* forwarded; the response could not be stored */
    LV_CDR_BYPASS,      /* not for the cache (method, Range, conditions...) */
    LV_CDR_COLLAPSED,   /* answered from another request's fetch */
    LV_CDR_COUNT
};

const char *lv_cached_result_name(enum lv_cached_result r);

/* An answer's head, for the exchange to complete (its own fields) and send. */
struct lv_cached_answer {
    unsigned status;
    const struct lv_head *head; /* the backend's head to relay, or NULL: a stored response,
                                   all of its fields in `lines` */
    const char *lines;          /* header lines the cache adds ("Name: v\r\n"...), never NULL */
    bool body;                  /* a body follows (never for a HEAD, 204, 304) */
    bool length_known;          /* the body's length is `length`, else it streams */
    uint64_t length;
    bool head_only; /* a stored response to a HEAD: `length` is stated, no body follows */
};

/* What the exchange hears. `user` is the pointer given to lv_cached_start. */
struct lv_cached_ops {
    /* The answer's head. 0, 1 for "no body follows", or -1 when it cannot
     * be sent. */
    int (*head)(void *user, const struct lv_cached_answer *a);
    void (*interim)(void *user, const struct lv_upconn_head *h);
    /* Body bytes inside b. 0 or -1. */
    int (*body)(void *user, struct lv_buf *b, const char *p, size_t len);
    void (*end)(void *user);
    void (*upgraded)(void *user, struct lv_sock *backend, struct lv_buf *b, const char *rest,
                     size_t n);
    /* The last word is a failure (as lv_attempt_ops.failed). */
    void (*failed)(void *user, enum lv_fail_kind kind);
    void (*body_sent)(void *user);
    bool (*client_gone)(void *user);
    /* Memory of the answer not yet written to the client (flow control of
     * a stored response). */
    size_t (*backlog)(void *user);
};

/* A worker's wakeup machinery (created with the worker). */
struct lv_cached_worker;

/* Creates w->cached (an async handle and a timer on w->loop). 0 or ENOMEM. */
int lv_cached_worker_start(struct lv_wctx *w);
/* Stops the background refreshes (stale-while-revalidate) in flight: their
 * connections go back before the worker closes its backend connections.
 * The stale entries stay; the next request may refresh them. */
void lv_cached_worker_stop_refreshes(struct lv_wctx *w);
/* Closes its handles (memory freed in their close callbacks). No lookup
 * may be waiting, no refresh running. */
void lv_cached_worker_close(struct lv_wctx *w);

struct lv_cached {
    enum lv_cached_state state;
    enum lv_cached_result result;
    const struct lv_cached_ops *ops;
    void *user;
    struct lv_wctx *w;
    struct lv_attempt *at; /* the exchange's */
    struct lv_attempt_req *req;
    const struct lv_wpool *pool;
    const struct lv_cache_cfg *cfg;
    struct lv_cache_store *store;
    bool active;     /* the cache takes part (cfg on, store present) */
    bool looked_up;  /* l holds something to dispose */
    bool paused;     /* the client is behind: a stored body waits for resume */
    bool swallow;    /* the backend's answer is not relayed (304 merged, stale served) */
    bool up_done;    /* the attempt loop is done */
    bool refreshing; /* this request refreshes a stale-while-revalidate entry */
    bool in_pump;    /* re-entrancy guard */
    bool counted;
    bool head_get;        /* a HEAD miss fetched as a GET (stored, the body not relayed) */
    int64_t request_time; /* wall ms when the request went to the origin */
    uint64_t wait_until;  /* monotonic ms: the end of a collapsed wait */
    struct lv_cache_req creq;
    struct lv_cache_writer wr;
    struct lv_cache_entry *serving; /* a reference while SERVING */
    struct lv_cache_cursor cur;
    struct lv_cache_waiter waiter;
    atomic_bool woken;
    struct lv_list link; /* in the worker's list of waiting lookups */
    const char *orig_extra;
    char fwd_extra[1024]; /* the exchange's lines + validators */
    char lines[LV_CACHE_STATUS_MAX + 48];
    struct lv_cache_lookup l; /* last: large */
};

/* Once per exchange memory (lv_cached_init) and for each request: IDLE. */
void lv_cached_init(struct lv_cached *c, struct lv_wctx *w, struct lv_attempt *at);

/*
 * Answers req (tls: it came over TLS) with cfg (the effective cache
 * configuration, a route's or the global one; NULL: no cache) from the
 * store, or through the attempt loop on pool. Callbacks may fire before it
 * returns. req->head's client conditionals may get LV_HF_DROP (the cache
 * answers them) and req->fwd.extra may be replaced while the request runs.
 */
void lv_cached_start(struct lv_cached *c, struct lv_attempt_req *req, bool tls,
                     const struct lv_wpool *pool, const struct lv_cache_cfg *cfg,
                     const struct lv_cached_ops *ops, void *user);

/* The request body, as lv_attempt_body_added / _complete / _backlog: for
 * the attempt loop once it runs, kept for it while the cache waits. */
void lv_cached_body_added(struct lv_cached *c);
void lv_cached_body_complete(struct lv_cached *c);
uint64_t lv_cached_body_backlog(const struct lv_cached *c);

/* Flow control of the answer's body. */
void lv_cached_pause(struct lv_cached *c);
void lv_cached_resume(struct lv_cached *c);

/* Stops everything (the attempt loop, waits, a fill in progress is
 * aborted) and gives back what the request held; counts its result. No
 * callback follows. Idempotent. */
void lv_cached_stop(struct lv_cached *c);

#endif
