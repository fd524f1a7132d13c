/*
 * Entity-tags, conditional requests and invalidation.
 */
#include "cache/validate.h"

#include <llhttp.h>
#include <string.h>

#include "http/date.h"

/* Splits an entity-tag into weakness and opaque-tag (quotes included).
 * false if it is not one: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE. */
static bool etag_split(const char *p, size_t n, bool *weak, const char **opaque, size_t *olen)
{
    *weak = n >= 2 && p[0] == 'W' && p[1] == '/';
    if (*weak) {
        p += 2;
        n -= 2;
    }
    if (n < 2 || p[0] != '"' || p[n - 1] != '"') return false;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c == '"' || c < 0x21 || c == 0x7f) return false;
    }
    *opaque = p;
    *olen = n;
    return true;
}

bool lv_etag_eq(const char *a, size_t an, const char *b, size_t bn, bool strong)
{
    bool aw, bw;
    const char *ao, *bo;
    size_t al, bl;
    if (!etag_split(a, an, &aw, &ao, &al) || !etag_split(b, bn, &bw, &bo, &bl)) return false;
    if (strong && (aw || bw)) return false;
    return al == bl && memcmp(ao, bo, al) == 0;
}

bool lv_etag_list_match(const char *list, size_t n, const char *etag, size_t en, bool strong)
{
    size_t pos = 0;
    const char *item;
    size_t len;
    while (lv_list_next(list, n, &pos, &item, &len)) {
        if (len == 1 && item[0] == '*') return true;
        if (lv_etag_eq(item, len, etag, en, strong)) return true;
    }
    return false;
}

bool lv_cache_not_modified(const struct lv_fields *req, const struct lv_cache_reqinfo *rq,
                           const struct lv_fields *stored, const struct lv_cache_meta *m,
                           int64_t now)
{
    struct lv_field f, etag;
    uint32_t i = 0;
    if (rq->inm) {
        uint32_t j = 0;
        if (!LV_FIELDS_NEXT(stored, "etag", &j, &etag)) {
            /* "*" matches any current representation; a stored one is. */
            while (LV_FIELDS_NEXT(req, "if-none-match", &i, &f)) {
                size_t pos = 0;
                const char *item;
                size_t len;
                while (lv_list_next(f.value, f.value_len, &pos, &item, &len)) {
                    if (len == 1 && item[0] == '*') return true;
                }
            }
            return false;
        }
        while (LV_FIELDS_NEXT(req, "if-none-match", &i, &f)) {
            if (lv_etag_list_match(f.value, f.value_len, etag.value, etag.value_len, false))
                return true;
        }
        return false;
    }
    if (!rq->ims) return false;
    int64_t lm = m->last_modified != LV_CACHE_NO_TIME ? m->last_modified : m->date;
    /* A date in the future says nothing (RFC 9110 §13.1.3). */
    if (rq->ims_time > now / 1000) return false;
    return lm <= rq->ims_time;
}

bool lv_cache_field_in_304(const char *name, size_t len)
{
    static const struct {
        const char *name;
        size_t len;
    } keep[] = {
        {"cache-control", 13}, {"content-location", 16}, {"date", 4}, {"etag", 4}, {"expires", 7},
        {"vary", 4},           {"last-modified", 13},
    };
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++) {
        if (lv_name_eq(name, len, keep[i].name, keep[i].len)) return true;
    }
    return false;
}

void lv_cache_validators(const struct lv_fields *stored, struct lv_cache_validators *v)
{
    struct lv_field f;
    uint32_t i = 0;
    memset(v, 0, sizeof(*v));
    if (LV_FIELDS_NEXT(stored, "etag", &i, &f)) {
        v->etag = f.value;
        v->etag_len = f.value_len;
    }
    i = 0;
    if (LV_FIELDS_NEXT(stored, "last-modified", &i, &f)) {
        v->last_modified = f.value;
        v->last_modified_len = f.value_len;
    }
}

bool lv_cache_304_selects(const struct lv_fields *stored, const struct lv_fields *resp304)
{
    struct lv_field n, s;
    uint32_t i = 0, j = 0;
    if (LV_FIELDS_NEXT(resp304, "etag", &i, &n)) {
        if (!LV_FIELDS_NEXT(stored, "etag", &j, &s)) return false;
        bool weak = n.value_len >= 2 && n.value[0] == 'W' && n.value[1] == '/';
        return lv_etag_eq(n.value, n.value_len, s.value, s.value_len, !weak);
    }
    i = j = 0;
    if (LV_FIELDS_NEXT(resp304, "last-modified", &i, &n)) {
        if (!LV_FIELDS_NEXT(stored, "last-modified", &j, &s)) return false;
        int64_t a, b;
        if (lv_http_date_parse(n.value, n.value_len, 0, &a) != 0 ||
            lv_http_date_parse(s.value, s.value_len, 0, &b) != 0)
            return n.value_len == s.value_len && memcmp(n.value, s.value, n.value_len) == 0;
        return a == b;
    }
    return true;
}

bool lv_cache_invalidates(uint8_t method, uint16_t status)
{
    switch (method) {
    case HTTP_GET:
    case HTTP_HEAD:
    case HTTP_OPTIONS:
    case HTTP_TRACE:
    case HTTP_PROPFIND:
    case HTTP_REPORT:
    case HTTP_SEARCH: return false;
    default: return status >= 200 && status < 400;
    }
}
