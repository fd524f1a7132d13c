/*
 * Cache-Status formatting.
 */
#include "cache/status.h"

#include <inttypes.h>
#include <stdio.h>

static const char *const fwd_names[] = {
    [LV_FWD_NONE] = NULL,           [LV_FWD_BYPASS] = "bypass",       [LV_FWD_METHOD] = "method",
    [LV_FWD_URI_MISS] = "uri-miss", [LV_FWD_VARY_MISS] = "vary-miss", [LV_FWD_MISS] = "miss",
    [LV_FWD_REQUEST] = "request",   [LV_FWD_STALE] = "stale",
};

const char *lv_cache_fwd_name(enum lv_cache_fwd fwd)
{
    return (unsigned)fwd < sizeof(fwd_names) / sizeof(fwd_names[0]) ? fwd_names[fwd] : NULL;
}

size_t lv_cache_status_format(char *out, size_t cap, const struct lv_cache_status *st)
{
    size_t n = 0;
    int w;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        w = snprintf(out + n, cap > n ? cap - n : 0, __VA_ARGS__);                                 \
        if (w > 0) n = n + (size_t)w < cap ? n + (size_t)w : (cap ? cap - 1 : 0);                  \
    } while (0)
    PUT("levee");
    if (st->hit) PUT("; hit");
    const char *fwd = lv_cache_fwd_name(st->fwd);
    if (!st->hit && fwd) PUT("; fwd=%s", fwd);
    if (!st->hit && st->fwd_status) PUT("; fwd-status=%u", (unsigned)st->fwd_status);
    if (st->has_ttl) PUT("; ttl=%" PRId64, st->ttl);
    if (st->stored) PUT("; stored");
    if (st->collapsed) PUT("; collapsed");
    if (st->detail) PUT("; detail=%s", st->detail);
#undef PUT
    return n;
}
