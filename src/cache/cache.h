/*
 * The cache as the request path uses it: the rules (policy.h, validate.h),
 * the keys (key.h) and the shared store (store.h) put together into the
 * few calls a request makes. Protocol-agnostic: a request is a struct
 * lv_cache_req, a response head a status and a struct lv_fields, and a
 * stored response is handed back as a status, fields to send and body
 * bytes, for an HTTP/1.1 or HTTP/2 writer alike.
 *
 * One request:
 *
 *   lv_cache_lookup ──► PASS        forward; nothing stored. After the
 *        │                          response: lv_cache_invalidate (unsafe
 *        │                          methods, §4.4)
 *        ├─────────► REJECT      only-if-cached and nothing usable: 504
 *        ├─────────► WAIT        another request fetches the key: when the
 *        │                       waiter fires (any thread: signal only),
 *        │                       lv_cache_lookup again; after
 *        │                       cfg->collapse_timeout, cancel the waiter
 *        │                       and look up again with w = NULL
 *        ├─────────► SERVE       lv_cache_reply_init on l->entry; if
 *        │                       l->refresh, revalidate it in the
 *        │                       background (lv_cache_refresh_prepare)
 *        ├─────────► FETCH       forward (with l->strip_conditionals, drop
 *        │                       the client's If-None-Match and
 *        │                       If-Modified-Since). Response head →
 *        │                       lv_cache_begin: a writer (append the
 *        │                       de-chunked body, then finish or abort)
 *        │                       or "not storable" (relay only)
 *        └─────────► REVALIDATE  forward with lv_cache_validators(entry)
 *                                instead of the client's conditionals;
 *                                304 → lv_cache_revalidated and serve what
 *                                it returns; 200 etc. → as FETCH; no
 *                                answer, or 5xx → lv_cache_serve_stale
 *   lv_cache_lookup_dispose when the request ends (gives back the entry
 *   and a claim not used).
 *
 * A HEAD is looked up under the GET key. On a miss, forward it as GET and
 * pass a GET request to lv_cache_begin to store the response (as Varnish
 * and nginx do), or as HEAD (its response is not stored).
 *
 * Times are wall-clock ms (policy.h). Nothing here blocks or does I/O;
 * every call may be made from any worker thread.
 */
#ifndef LV_CACHE_CACHE_H
#define LV_CACHE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/key.h"
#include "cache/policy.h"
#include "cache/status.h"
#include "cache/store.h"
#include "cache/validate.h"

/* How long misses on a key whose response was not storable go to the
 * origin without waiting for each other (Varnish's hit-for-miss). */
#define LV_CACHE_PASS_TTL (60ll * 1000)

enum lv_cache_action {
    LV_CACHE_PASS,       /* not for the cache */
    LV_CACHE_REJECT,     /* answer 504 (only-if-cached) */
    LV_CACHE_WAIT,       /* the waiter is armed */
    LV_CACHE_SERVE,      /* answer from l->entry */
    LV_CACHE_FETCH,      /* forward; offer the response to lv_cache_begin if l->store */
    LV_CACHE_REVALIDATE, /* forward a conditional request for l->entry */
};

/* One request's dealings with the cache. Contains its own key buffer: do
 * not copy or move it once initialized. */
struct lv_cache_lookup {
    enum lv_cache_action action;
    struct lv_cache_entry *entry;  /* SERVE, REVALIDATE (and FETCH when a stale entry
                                      exists but cannot be validated): a reference */
    struct lv_cache_claim *claim;  /* this request leads the fetch of its key */
    bool refresh;                  /* SERVE: stale; start the one background refresh */
    bool store;                    /* the response may be stored (no request no-store) */
    bool strip_conditionals;       /* FETCH/REVALIDATE: do not forward the client's */
    bool waited;                   /* it waited for another request's fetch */
    struct lv_cache_status status; /* Cache-Status so far */
    struct lv_cache_reqinfo rq;
    struct lv_cache_key key;
};

void lv_cache_lookup_init(struct lv_cache_lookup *l);

/*
 * Looks r up at now. w (may be NULL: never wait) is armed when the answer
 * is LV_CACHE_WAIT. Sets l->action (and the rest). May be called again on
 * the same l (after a WAIT): what the previous call held is given back.
 */
void lv_cache_lookup(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                     const struct lv_cache_req *r, int64_t now, struct lv_cache_waiter *w,
                     struct lv_cache_lookup *l);

/* The request is done with the cache: releases the entry, and gives up a
 * claim still held (waiters go to the origin). */
void lv_cache_lookup_dispose(struct lv_cache_store *s, struct lv_cache_lookup *l, int64_t now);

/*
 * For a SERVE with l->refresh: fills bg (initialized) as the lookup of the
 * background revalidation of l->entry (REVALIDATE, no claim), to be used
 * with lv_cache_revalidated / lv_cache_begin and disposed like any other.
 * If the refresh fails, lv_cache_entry_refresh_end(bg->entry) lets the next
 * request try at once. Returns 0, or -1 (ENOMEM: no refresh).
 */
int lv_cache_refresh_prepare(const struct lv_cache_lookup *l, struct lv_cache_lookup *bg);

/* Stores one response as it arrives. */
struct lv_cache_writer {
    struct lv_cache_store *store;
    struct lv_cache_entry *entry; /* a reference while writing; NULL once done */
};

/*
 * The response head to a FETCH or REVALIDATE. r is the client's request, as
 * given to lv_cache_lookup (its fields make the Vary key), with the method
 * that was forwarded (GET for a HEAD fetched as GET); request_time and
 * response_time bracket the exchange (§4.2.3). If it may
 * be stored: returns 0 with a writer whose entry is already published
 * (requests waiting on l's claim wake and read it as it fills); its
 * Cache-Status gets `stored`. If not: returns -1 with *why, gives the claim
 * up (leaving a pass marker when the response, not the request, was the
 * reason).
 */
int lv_cache_begin(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                   struct lv_cache_lookup *l, const struct lv_cache_req *r, uint16_t status,
                   const struct lv_fields *resp, int64_t request_time, int64_t response_time,
                   struct lv_cache_writer *w, enum lv_cache_nostore *why);

/* Body bytes, de-chunked. 0, or -1: the response is not stored after all
 * (too large, no room); the writer is done, keep relaying. */
int lv_cache_writer_append(struct lv_cache_writer *w, const void *p, size_t n);
/* The body is complete (0), or was shorter than announced (-1, dropped). */
int lv_cache_writer_finish(struct lv_cache_writer *w);
/* The response broke off: the entry is dropped; its readers see ABORTED. */
void lv_cache_writer_abort(struct lv_cache_writer *w);

/*
 * A 304 answered the conditional request for l->entry. If it selects the
 * stored response (§4.3.4), its fields update it (§3.2): a new entry with
 * the merged fields and the same body replaces it (or, when the merged
 * response may no longer be stored, answers this request only and the old
 * one is removed). Returns 0 and *out (a reference: serve it, release it),
 * or -1: the 304 is about another response — fetch without conditions.
 */
int lv_cache_revalidated(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                         struct lv_cache_lookup *l, const struct lv_fields *resp304,
                         int64_t request_time, int64_t response_time, struct lv_cache_entry **out);

/*
 * The fetch for l failed: no backend, a timeout, a reset (fwd_status 0), or
 * a 5xx response (its status). True if l->entry may answer instead (RFC
 * 5861 stale-if-error, serve_stale_on_error): serve it, Cache-Status says
 * fwd=stale with the origin's status. False: answer the error (504 when
 * must-revalidate forbade a stale answer, §5.2.2.2). Gives up l's claim
 * either way.
 */
bool lv_cache_serve_stale(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                          struct lv_cache_lookup *l, uint16_t fwd_status, int64_t now);

/* A response to an unsafe request (§4.4): removes what is stored for its
 * target URI and same-origin Location / Content-Location. Returns how many
 * stored responses went. */
size_t lv_cache_invalidate(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                           const struct lv_cache_req *r, uint16_t status,
                           const struct lv_fields *resp);

/* What to send for a stored response. */
struct lv_cache_reply {
    uint16_t status; /* the stored status, or 304 */
    bool body;       /* a body follows (not for HEAD, 304, 204) */
    int64_t length;  /* the body's length: Content-Length; -1 while filling without one */
    int64_t age;     /* s: the Age field */
    char cache_status[LV_CACHE_STATUS_MAX]; /* the Cache-Status member (a field line of its own) */
    /* the field iterator */
    struct lv_fields fields;
    const struct lv_cache_cfg *cfg;
    uint32_t next;
    bool not_modified;
};

/*
 * Prepares the answer to l's request from e (l->entry, or what
 * lv_cache_revalidated returned, or the entry of a writer) at now: 304
 * when the client's conditional matches a 2xx (§4.3.2), else the stored
 * status. Fields come from lv_cache_reply_field; Age, Cache-Status and the
 * framing (Content-Length from `length`) are the writer's to add; body
 * bytes come from lv_cache_entry_read on e.
 */
void lv_cache_reply_init(struct lv_cache_reply *rp, const struct lv_cache_cfg *cfg,
                         const struct lv_cache_lookup *l, const struct lv_cache_req *r,
                         const struct lv_cache_entry *e, int64_t now);

/* The next stored field to send (targeted fields hidden, a 304's subset):
 * true and *f (valid while e is referenced), or false at the end. */
bool lv_cache_reply_field(struct lv_cache_reply *rp, struct lv_field *f);

#endif
