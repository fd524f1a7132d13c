/*
 * Cache-Status formatting.
 */
#include "cache/status.h"

#include <string.h>

static const char *const fwd_names[] = {
    [LV_FWD_NONE] = NULL,           [LV_FWD_BYPASS] = "bypass",       [LV_FWD_METHOD] = "method",
    [LV_FWD_URI_MISS] = "uri-miss", [LV_FWD_VARY_MISS] = "vary-miss", [LV_FWD_MISS] = "miss",
    [LV_FWD_REQUEST] = "request",   [LV_FWD_STALE] = "stale",
};

const char *lv_cache_fwd_name(enum lv_cache_fwd fwd)
{
    return (unsigned)fwd < sizeof(fwd_names) / sizeof(fwd_names[0]) ? fwd_names[fwd] : NULL;
}

/* Appends to out[0..cap) without overflowing; the caller's n stays below
 * cap so the string is always terminated. */
static void put(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    if (*n + 1 >= cap) return;
    size_t room = cap - 1 - *n;
    if (len > room) len = room;
    memcpy(out + *n, s, len);
    *n += len;
    out[*n] = '\0';
}

static void put_str(char *out, size_t cap, size_t *n, const char *s)
{
    put(out, cap, n, s, strlen(s));
}

static void put_int(char *out, size_t cap, size_t *n, int64_t v)
{
    char buf[24], *p = buf + sizeof(buf);
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--p = '-';
    put(out, cap, n, p, (size_t)(buf + sizeof(buf) - p));
}

/* By hand rather than snprintf: it runs on every hit. */
size_t lv_cache_status_format(char *out, size_t cap, const struct lv_cache_status *st)
{
    size_t n = 0;
    if (cap == 0) return 0;
    out[0] = '\0';
    put_str(out, cap, &n, "levee");
    if (st->hit) put_str(out, cap, &n, "; hit");
    const char *fwd = lv_cache_fwd_name(st->fwd);
    if (!st->hit && fwd) {
        put_str(out, cap, &n, "; fwd=");
        put_str(out, cap, &n, fwd);
    }
    if (!st->hit && st->fwd_status) {
        put_str(out, cap, &n, "; fwd-status=");
        put_int(out, cap, &n, st->fwd_status);
    }
    if (st->has_ttl) {
        put_str(out, cap, &n, "; ttl=");
        put_int(out, cap, &n, st->ttl);
    }
    if (st->stored) put_str(out, cap, &n, "; stored");
    if (st->collapsed) put_str(out, cap, &n, "; collapsed");
    if (st->detail) {
        put_str(out, cap, &n, "; detail=");
        put_str(out, cap, &n, st->detail);
    }
    return n;
}
