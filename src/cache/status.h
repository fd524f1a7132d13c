/*
 * The Cache-Status response field (RFC 9211): how levee's cache handled a
 * request, as one list member named "levee" with its parameters, e.g.
 * "levee; hit; ttl=42" or "levee; fwd=uri-miss; stored". A response that
 * already carries Cache-Status from caches nearer the origin gets this
 * member after theirs (a field line of its own appended last).
 */
#ifndef LV_CACHE_STATUS_H
#define LV_CACHE_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LV_CACHE_STATUS_MAX 160 /* bytes of a formatted member, NUL included */

/* Why the request went to the origin (the fwd parameter). */
enum lv_cache_fwd {
    LV_FWD_NONE,      /* it did not (a hit) */
    LV_FWD_BYPASS,    /* the cache was not used for it (Range, a long key, cache off) */
    LV_FWD_METHOD,    /* its method is not cacheable */
    LV_FWD_URI_MISS,  /* nothing stored under its key */
    LV_FWD_VARY_MISS, /* stored responses, none for its Vary values */
    LV_FWD_MISS,      /* a miss for another reason (a pass marker, a failed fill) */
    LV_FWD_REQUEST,   /* the request asked for validation (no-cache, max-age...) */
    LV_FWD_STALE,     /* the stored response was stale (revalidated or replaced) */
};

struct lv_cache_status {
    bool hit;
    enum lv_cache_fwd fwd;
    uint16_t fwd_status; /* the origin's status, 0: not sent */
    bool has_ttl;
    int64_t ttl; /* s: freshness left, negative when served stale */
    bool stored; /* the origin's response was stored (or its stored copy updated) */
    bool collapsed;
    const char *detail; /* a token, or NULL */
};

const char *lv_cache_fwd_name(enum lv_cache_fwd fwd);

/* Formats the member into out[0..cap) (cap >= LV_CACHE_STATUS_MAX always
 * fits). Returns its length. */
size_t lv_cache_status_format(char *out, size_t cap, const struct lv_cache_status *st);

#endif
