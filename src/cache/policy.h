/*
 * The HTTP caching rules of a shared cache (RFC 9111, RFC 5861, RFC 9213)
 * as pure functions: what may be stored (§3), for how long it is fresh
 * (§4.2.1, §4.2.2), how old it is (§4.2.3), and whether a stored response
 * may answer a given request, now, or must be validated first (§4, §5.2.1,
 * RFC 5861). No clock and no I/O: every function takes `now`, a wall-clock
 * time in milliseconds since the Unix epoch (HTTP dates are wall-clock
 * times, so the monotonic clock cannot be compared with them). A clock that
 * steps back makes ages shorter, never negative.
 *
 * A request and a response are first read into a small summary (reqinfo,
 * respinfo); the rules work on those and on a stored response's meta,
 * computed once when it is stored.
 *
 * Times: HTTP dates and header values are in seconds; everything levee
 * computes is in milliseconds.
 */
#ifndef LV_CACHE_POLICY_H
#define LV_CACHE_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/cc.h"
#include "cache/fields.h"
#include "http/head.h"

/* The parts of the request the primary cache key is built from. */
enum {
    LV_CKEY_METHOD = 1u << 0,
    LV_CKEY_SCHEME = 1u << 1,
    LV_CKEY_HOST = 1u << 2,
    LV_CKEY_PATH = 1u << 3,
    LV_CKEY_QUERY = 1u << 4,
};
#define LV_CKEY_DEFAULT (LV_CKEY_METHOD | LV_CKEY_HOST | LV_CKEY_PATH | LV_CKEY_QUERY)

/* The `cache:` section. Durations in ms, sizes in bytes. */
struct lv_cache_cfg {
    bool enabled;
    uint64_t max_size;             /* memory for stored responses, all workers together */
    uint64_t max_object_size;      /* a larger response streams through unstored */
    uint64_t default_ttl;          /* freshness of responses without any; 0: heuristic only */
    uint64_t serve_stale_on_error; /* how stale a copy may answer when no backend can */
    uint64_t collapse_timeout;     /* longest wait for another request's fetch; 0: no collapsing */
    uint32_t key;                  /* LV_CKEY_* */
    char **targets;                /* targeted fields, first has precedence (RFC 9213) */
    size_t ntargets;
    bool forward_targeted; /* send a targeted field levee obeyed on to clients */
};

/* Fills c with the defaults (cache off, 256 MiB, 8 MiB objects, ...). */
void lv_cache_cfg_init(struct lv_cache_cfg *c);
void lv_cache_cfg_dispose(struct lv_cache_cfg *c);

#define LV_CACHE_NO_TIME INT64_MIN
/* Heuristic freshness: this share of the time since Last-Modified, capped
 * (Traffic Server's and Squid's defaults; RFC 9111 §4.2.2 suggests 10%). */
#define LV_CACHE_HEURISTIC_PERCENT 10
#define LV_CACHE_HEURISTIC_MAX (86400ll * 1000)
/* How long a background refresh (stale-while-revalidate) owns an entry
 * before another request may start one (a refresh that never reports). */
#define LV_CACHE_REFRESH_LEASE (30ll * 1000)

/*
 * A request as the cache sees it, whatever protocol it came in: method,
 * scheme, target (origin-form "/p?q" or absolute-form "http://h/p?q"),
 * authority and fields. Borrowed: valid while the request is.
 */
struct lv_cache_req {
    uint8_t method; /* llhttp_method_t */
    bool tls;       /* https */
    const char *target;
    size_t target_len;
    const char *host; /* Host (or :authority); NULL if none */
    size_t host_len;
    struct lv_fields fields;
};

/* The view of a parsed HTTP/1 request head. */
void lv_cache_req_from_head(struct lv_cache_req *r, const struct lv_head *h, bool tls);

/* What the rules read from a request. */
struct lv_cache_reqinfo {
    struct lv_cc cc;    /* Cache-Control; Pragma: no-cache counts as no-cache without it */
    bool authorization; /* Authorization present (§3.5) */
    bool range;         /* Range or If-Range: the cache does not answer it (see docs/cache.md) */
    bool preconditions; /* If-Match or If-Unmodified-Since: forwarded, not evaluated here */
    bool inm;           /* If-None-Match present */
    bool ims;           /* If-Modified-Since present and a valid date */
    int64_t ims_time;   /* s */
};

void lv_cache_reqinfo_read(struct lv_cache_reqinfo *ri, const struct lv_fields *f, int64_t now);

/* What the rules read from a response. */
struct lv_cache_respinfo {
    uint16_t status;
    struct lv_cc cc; /* from the first valid targeted field, else Cache-Control */
    int target;      /* index in cfg->targets of that field; -1: Cache-Control */
    int64_t date;    /* s, or LV_CACHE_NO_TIME */
    int64_t expires; /* s; an invalid Expires is 0 (in the past, §5.3); NO_TIME: none or ignored */
    int64_t last_modified; /* s, or LV_CACHE_NO_TIME */
    int64_t age;           /* s: the Age field; 0 when absent or invalid */
    bool etag;             /* a validator: ETag ... */
    bool vary_star;        /* Vary: * */
    bool vary;             /* any Vary */
    bool set_cookie;
    int64_t content_length; /* -1: unknown */
};

void lv_cache_respinfo_read(struct lv_cache_respinfo *ri, const struct lv_cache_cfg *cfg,
                            uint16_t status, const struct lv_fields *f, int64_t now);

/* Why a response is not stored: the `uncacheable` reasons. */
enum lv_cache_nostore {
    LV_STORE_OK = 0,
    LV_NOSTORE_METHOD,        /* the request was not a GET */
    LV_NOSTORE_REQUEST,       /* the request said no-store */
    LV_NOSTORE_STATUS,        /* not final, 206, 304, not understood, or not cacheable
                                 by default and without explicit freshness */
    LV_NOSTORE_NO_STORE,      /* the response said no-store */
    LV_NOSTORE_PRIVATE,       /* private: for the user's own cache only */
    LV_NOSTORE_AUTHORIZATION, /* answer to an authorized request, not marked shareable */
    LV_NOSTORE_SET_COOKIE,    /* Set-Cookie, not marked shareable */
    LV_NOSTORE_VARY,          /* Vary: * (never matches a request) */
    LV_NOSTORE_NO_FRESHNESS,  /* never fresh and nothing to validate it with */
    LV_NOSTORE_TOO_LARGE,     /* Content-Length above max_object_size */
    LV_NOSTORE__COUNT
};

const char *lv_cache_nostore_name(enum lv_cache_nostore why);

/*
 * May a shared cache store this response to a request with this method
 * (§3, §3.5), received at `now`? LV_STORE_OK or the first reason it may
 * not. Set-Cookie:
 * stored only when the response says a shared cache may keep it (public,
 * s-maxage, or no-cache/private naming Set-Cookie); the stored copy never
 * has it (lv_cache_field_stored).
 */
enum lv_cache_nostore lv_cache_storable(const struct lv_cache_cfg *cfg, uint8_t method,
                                        const struct lv_cache_reqinfo *rq,
                                        const struct lv_cache_respinfo *rs, int64_t now);

/* Statuses cacheable without explicit freshness (RFC 9110 §15.1). */
bool lv_cache_status_heuristic(uint16_t status);

/*
 * Freshness lifetime in ms (§4.2.1): s-maxage, else max-age, else
 * Expires - Date (Date: the response time when absent), else, for a status
 * cacheable by default or a public response, default_ttl when set, else
 * the heuristic (10% of Date - Last-Modified, at most a day; 0 without
 * Last-Modified). *heuristic tells whether the value was a guess.
 */
int64_t lv_cache_lifetime(const struct lv_cache_cfg *cfg, const struct lv_cache_respinfo *rs,
                          int64_t response_time, bool *heuristic);

/* corrected_initial_age of §4.2.3, in ms, from the Age value (s), the Date
 * (s, or NO_TIME) and the request and response times (ms). */
int64_t lv_cache_initial_age(int64_t age_value, int64_t date, int64_t request_time,
                             int64_t response_time);

enum {
    LV_META_NO_CACHE = 1u << 0,        /* no-cache: validate every use */
    LV_META_MUST_REVALIDATE = 1u << 1, /* must-/proxy-revalidate or s-maxage: never stale */
    LV_META_HEURISTIC = 1u << 2,       /* lifetime is a guess */
    LV_META_VALIDATOR = 1u << 3,       /* ETag or Last-Modified: can be validated */
};

/* What is kept about a stored response besides its fields. */
struct lv_cache_meta {
    int64_t request_time, response_time; /* ms */
    int64_t initial_age;                 /* ms: corrected_initial_age */
    int64_t lifetime;                    /* ms */
    int64_t swr, sie;                    /* ms: stale-while-revalidate, stale-if-error; -1 none */
    int64_t date;                        /* s: Date (the response time when absent) */
    int64_t last_modified;               /* s, or NO_TIME */
    uint32_t flags;                      /* LV_META_* */
    uint16_t status;
};

void lv_cache_meta_init(struct lv_cache_meta *m, const struct lv_cache_cfg *cfg,
                        const struct lv_cache_respinfo *rs, int64_t request_time,
                        int64_t response_time);

/* current_age (§4.2.3), ms. */
int64_t lv_cache_age(const struct lv_cache_meta *m, int64_t now);

/* Freshness left in ms (negative: stale for that long). */
int64_t lv_cache_ttl(const struct lv_cache_meta *m, int64_t now);

/* The Age field's value: whole seconds, at most 2^31 (§5.1). */
int64_t lv_cache_age_seconds(const struct lv_cache_meta *m, int64_t now);

/* How a stored response may answer a request. */
enum lv_cache_use {
    LV_USE_FRESH,         /* as it is */
    LV_USE_STALE,         /* stale, and the request accepts that (max-stale) */
    LV_USE_STALE_REFRESH, /* stale within stale-while-revalidate: answer, refresh behind */
    LV_USE_REVALIDATE,    /* only after the origin validated it (§4.3) */
};

/*
 * The §4 decision for a stored response. *by_request is set when the
 * request alone forced validation (no-cache, max-age, min-fresh: Cache-Status
 * fwd=request) rather than the response's age (fwd=stale).
 */
enum lv_cache_use lv_cache_usable(const struct lv_cache_meta *m, const struct lv_cache_reqinfo *rq,
                                  int64_t now, bool *by_request);

/*
 * When the origin cannot be reached, or answers 5xx, may this stale (or
 * to-be-validated) response answer instead? Yes within the response's
 * stale-if-error (RFC 5861 §4: whatever else it says), or the request's
 * stale-if-error, or cfg->serve_stale_on_error — the last two only when no
 * directive forbids serving it stale (no-cache, must-revalidate,
 * proxy-revalidate, s-maxage: §4.2.4). Measured in staleness (age beyond
 * the lifetime).
 */
bool lv_cache_stale_on_error(const struct lv_cache_cfg *cfg, const struct lv_cache_meta *m,
                             const struct lv_cache_reqinfo *rq, int64_t now);

/*
 * Is this response field kept in the stored copy (§3.1)? Not hop-by-hop or
 * proxy fields, not framing (Content-Length, Transfer-Encoding: levee
 * frames what it sends), not Age (recomputed), never Set-Cookie, and not
 * the fields named by a qualified no-cache or private (§5.2.2.4, §5.2.2.7).
 * `flags` are the field's LV_HF_* flags (0 for a stored field).
 */
bool lv_cache_field_stored(const struct lv_cache_respinfo *rs, const char *name, size_t len,
                           uint32_t flags);

/* Is a response field hidden from clients: a targeted field levee obeyed
 * (any of cfg->targets) unless forward_targeted. For live and stored
 * responses alike. */
bool lv_cache_field_hidden(const struct lv_cache_cfg *cfg, const char *name, size_t len);

#endif
