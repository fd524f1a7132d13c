/*
 * Storability, freshness, age and reuse: RFC 9111 §3 and §4 for a shared
 * cache, with RFC 5861's stale-while-revalidate and stale-if-error and
 * RFC 9213's targeted fields. See docs/cache.md for the choices.
 */
#include "cache/policy.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#include "http/date.h"

#define MIB (1024ull * 1024u)

void lv_cache_cfg_init(struct lv_cache_cfg *c)
{
    memset(c, 0, sizeof(*c));
    c->enabled = false;
    c->max_size = 256 * MIB;
    c->max_object_size = 8 * MIB;
    c->default_ttl = 0;
    c->serve_stale_on_error = 3600ull * 1000;
    c->collapse_timeout = 5000;
    c->key = LV_CKEY_DEFAULT;
    c->targets = calloc(1, sizeof(char *));
    if (c->targets) {
        c->targets[0] = strdup("CDN-Cache-Control");
        c->ntargets = c->targets[0] ? 1 : 0;
    }
    c->forward_targeted = false;
}

void lv_cache_cfg_dispose(struct lv_cache_cfg *c)
{
    for (size_t i = 0; i < c->ntargets; i++)
        free(c->targets[i]);
    free(c->targets);
    c->targets = NULL;
    c->ntargets = 0;
}

void lv_cache_req_from_head(struct lv_cache_req *r, const struct lv_head *h, bool tls)
{
    r->method = h->method;
    r->tls = tls;
    r->target = h->buf ? lv_head_str(h, h->target) : "";
    r->target_len = h->target_len;
    r->fields = lv_fields_of_head(h);
    struct lv_field f;
    uint32_t i = 0;
    if (LV_FIELDS_NEXT(&r->fields, "host", &i, &f)) {
        r->host = f.value;
        r->host_len = f.value_len;
    } else {
        r->host = NULL;
        r->host_len = 0;
    }
}

#define IS(f, lit) lv_name_eq((f).name, (f).name_len, lit, sizeof(lit) - 1)

static int64_t parse_date(const struct lv_field *f, int64_t now)
{
    int64_t t;
    return lv_http_date_parse(f->value, f->value_len, now / 1000, &t) == 0 ? t : LV_CACHE_NO_TIME;
}

void lv_cache_reqinfo_read(struct lv_cache_reqinfo *ri, const struct lv_fields *fs, int64_t now)
{
    memset(ri, 0, sizeof(*ri));
    lv_cc_init(&ri->cc);
    bool has_cc = false, pragma_no_cache = false;
    int nims = 0;
    for (uint32_t i = 0; i < fs->n; i++) {
        struct lv_field f = lv_fields_at(fs, i);
        if (IS(f, "cache-control")) {
            has_cc = true;
            lv_cc_parse(&ri->cc, f.value, f.value_len);
        } else if (IS(f, "pragma")) {
            pragma_no_cache |= lv_token_list_has(f.value, f.value_len, "no-cache", 8);
        } else if (IS(f, "authorization")) {
            ri->authorization = true;
        } else if (IS(f, "range") || IS(f, "if-range")) {
            ri->range = true;
        } else if (IS(f, "if-match") || IS(f, "if-unmodified-since")) {
            ri->preconditions = true;
        } else if (IS(f, "if-none-match")) {
            ri->inm = true;
        } else if (IS(f, "if-modified-since")) {
            nims++;
            ri->ims_time = parse_date(&f, now);
        }
    }
    /* Pragma is HTTP/1.0's no-cache; Cache-Control wins when both are sent
     * (RFC 7234 §5.4). Several If-Modified-Since lines: none is believed. */
    if (pragma_no_cache && !has_cc) ri->cc.flags |= LV_CC_NO_CACHE;
    ri->ims = nims == 1 && ri->ims_time != LV_CACHE_NO_TIME;
}

/* The first targeted field of cfg->targets that is present, valid and not
 * empty, read into *cc; -1 if none (RFC 9213 §2.1). */
static int read_targeted(struct lv_cc *cc, const struct lv_cache_cfg *cfg,
                         const struct lv_fields *fs)
{
    for (size_t t = 0; t < cfg->ntargets; t++) {
        const char *name = cfg->targets[t];
        size_t nlen = strlen(name);
        uint32_t i = 0;
        struct lv_field f;
        bool any = false, valid = true;
        lv_cc_init(cc);
        while (valid && lv_fields_next(fs, name, nlen, &i, &f)) {
            any = true;
            valid = lv_cc_parse_sf(cc, f.value, f.value_len) == 0;
        }
        if (any && valid) return (int)t;
    }
    return -1;
}

static int64_t parse_delta(const char *p, size_t n)
{
    if (n == 0) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        if (v < LV_CC_DELTA_MAX) v = v * 10 + (p[i] - '0');
    }
    return v < LV_CC_DELTA_MAX ? v : LV_CC_DELTA_MAX;
}

void lv_cache_respinfo_read(struct lv_cache_respinfo *ri, const struct lv_cache_cfg *cfg,
                            uint16_t status, const struct lv_fields *fs, int64_t now)
{
    memset(ri, 0, sizeof(*ri));
    ri->status = status;
    ri->date = ri->expires = ri->last_modified = LV_CACHE_NO_TIME;
    ri->content_length = -1;
    ri->target = read_targeted(&ri->cc, cfg, fs);
    if (ri->target < 0) lv_cc_init(&ri->cc);
    bool date_seen = false, expires_seen = false, lm_seen = false, age_seen = false;
    bool cl_seen = false;
    for (uint32_t i = 0; i < fs->n; i++) {
        struct lv_field f = lv_fields_at(fs, i);
        if (IS(f, "cache-control")) {
            if (ri->target < 0) lv_cc_parse(&ri->cc, f.value, f.value_len);
        } else if (IS(f, "date")) {
            if (!date_seen) ri->date = parse_date(&f, now);
            date_seen = true;
        } else if (IS(f, "expires")) {
            /* Invalid means already expired (§5.3); two different values
             * mean stale (§4.2.1). */
            int64_t t = parse_date(&f, now);
            if (t == LV_CACHE_NO_TIME) t = 0;
            ri->expires = !expires_seen || ri->expires == t ? t : 0;
            expires_seen = true;
        } else if (IS(f, "last-modified")) {
            if (!lm_seen) ri->last_modified = parse_date(&f, now);
            lm_seen = true;
        } else if (IS(f, "age")) {
            if (!age_seen) {
                int64_t a = parse_delta(f.value, f.value_len);
                ri->age = a < 0 ? 0 : a;
            }
            age_seen = true;
        } else if (IS(f, "etag")) {
            ri->etag = true;
        } else if (IS(f, "vary")) {
            ri->vary = true;
            size_t pos = 0;
            const char *item;
            size_t len;
            while (lv_list_next(f.value, f.value_len, &pos, &item, &len))
                ri->vary_star |= len == 1 && item[0] == '*';
        } else if (IS(f, "set-cookie") || IS(f, "set-cookie2")) {
            ri->set_cookie = true;
        } else if (IS(f, "content-length")) {
            if (!cl_seen) ri->content_length = parse_delta(f.value, f.value_len);
            cl_seen = true;
        }
    }
    /* A targeted field replaces Cache-Control and Expires (RFC 9213 §2.1). */
    if (ri->target >= 0) ri->expires = LV_CACHE_NO_TIME;
}

static const char *const nostore_names[LV_NOSTORE__COUNT] = {
    [LV_STORE_OK] = "stored",
    [LV_NOSTORE_METHOD] = "method",
    [LV_NOSTORE_REQUEST] = "request_no_store",
    [LV_NOSTORE_STATUS] = "status",
    [LV_NOSTORE_NO_STORE] = "no_store",
    [LV_NOSTORE_PRIVATE] = "private",
    [LV_NOSTORE_AUTHORIZATION] = "authorization",
    [LV_NOSTORE_SET_COOKIE] = "set_cookie",
    [LV_NOSTORE_VARY] = "vary_star",
    [LV_NOSTORE_NO_FRESHNESS] = "no_freshness",
    [LV_NOSTORE_TOO_LARGE] = "too_large",
};

const char *lv_cache_nostore_name(enum lv_cache_nostore why)
{
    return (unsigned)why < LV_NOSTORE__COUNT ? nostore_names[why] : "unknown";
}

bool lv_cache_status_heuristic(uint16_t s)
{
    switch (s) {
    case 200:
    case 203:
    case 204:
    case 206:
    case 300:
    case 301:
    case 308:
    case 404:
    case 405:
    case 410:
    case 414:
    case 501: return true;
    default: return false;
    }
}

/* Final statuses whose semantics levee knows (RFC 9110 §15 and the common
 * registered ones), for must-understand (§5.2.2.3). */
static bool status_understood(uint16_t s)
{
    if (s >= 200 && s <= 208) return true;
    if (s == 226 || (s >= 300 && s <= 308 && s != 306)) return true;
    if (s >= 400 && s <= 417) return true;
    if (s == 421 || s == 422 || s == 426 || s == 428 || s == 429 || s == 431 || s == 451)
        return true;
    return s >= 500 && s <= 505;
}

/* The response explicitly lets a shared cache keep it. */
static bool shareable(const struct lv_cc *cc)
{
    return (cc->flags & LV_CC_PUBLIC) || cc->s_maxage != LV_CC_ABSENT;
}

enum lv_cache_nostore lv_cache_storable(const struct lv_cache_cfg *cfg, uint8_t method,
                                        const struct lv_cache_reqinfo *rq,
                                        const struct lv_cache_respinfo *rs, int64_t now)
{
    const struct lv_cc *cc = &rs->cc;
    if (method != HTTP_GET) return LV_NOSTORE_METHOD;
    if (rq && (rq->cc.flags & LV_CC_NO_STORE)) return LV_NOSTORE_REQUEST;
    /* 206 and 304 need partial and update support a new response cannot
     * use; 1xx are not final. */
    if (rs->status < 200 || rs->status > 599 || rs->status == 206 || rs->status == 304)
        return LV_NOSTORE_STATUS;
    if (cc->flags & LV_CC_MUST_UNDERSTAND) {
        /* Understood: no-store is its fallback for older caches. */
        if (!status_understood(rs->status)) return LV_NOSTORE_STATUS;
    } else if (cc->flags & LV_CC_NO_STORE) {
        return LV_NOSTORE_NO_STORE;
    }
    if (cc->flags & LV_CC_PRIVATE) return LV_NOSTORE_PRIVATE;
    if (rq && rq->authorization && !shareable(cc) && !(cc->flags & LV_CC_MUST_REVALIDATE))
        return LV_NOSTORE_AUTHORIZATION;
    bool explicit_fresh = cc->max_age != LV_CC_ABSENT || cc->s_maxage != LV_CC_ABSENT ||
                          rs->expires != LV_CACHE_NO_TIME || (cc->flags & LV_CC_PUBLIC);
    if (!explicit_fresh && !lv_cache_status_heuristic(rs->status)) return LV_NOSTORE_STATUS;
    if (rs->set_cookie && !shareable(cc) &&
        !lv_cc_names_has(cc->no_cache, cc->n_no_cache, "set-cookie", 10) &&
        !lv_cc_names_has(cc->private_, cc->n_private, "set-cookie", 10))
        return LV_NOSTORE_SET_COOKIE;
    if (rs->vary_star) return LV_NOSTORE_VARY;
    if (rs->content_length >= 0 && (uint64_t)rs->content_length > cfg->max_object_size)
        return LV_NOSTORE_TOO_LARGE;
    bool heuristic;
    bool fresh = lv_cache_lifetime(cfg, rs, now, &heuristic) > 0 && !(cc->flags & LV_CC_NO_CACHE);
    bool validator = rs->etag || rs->last_modified != LV_CACHE_NO_TIME;
    if (!fresh && !validator && cc->swr <= 0 && cc->sie <= 0) return LV_NOSTORE_NO_FRESHNESS;
    return LV_STORE_OK;
}

int64_t lv_cache_lifetime(const struct lv_cache_cfg *cfg, const struct lv_cache_respinfo *rs,
                          int64_t response_time, bool *heuristic)
{
    const struct lv_cc *cc = &rs->cc;
    *heuristic = false;
    if (cc->s_maxage != LV_CC_ABSENT) return cc->s_maxage * 1000;
    if (cc->max_age != LV_CC_ABSENT) return cc->max_age * 1000;
    int64_t date = rs->date != LV_CACHE_NO_TIME ? rs->date * 1000 : response_time;
    if (rs->expires != LV_CACHE_NO_TIME) {
        int64_t v = rs->expires * 1000 - date;
        return v > 0 ? v : 0;
    }
    if (!lv_cache_status_heuristic(rs->status) && !(cc->flags & LV_CC_PUBLIC)) return 0;
    *heuristic = true;
    if (cfg->default_ttl > 0) return (int64_t)cfg->default_ttl;
    if (rs->last_modified == LV_CACHE_NO_TIME) return 0;
    int64_t since = date - rs->last_modified * 1000;
    if (since <= 0) return 0;
    int64_t v = since / 100 * LV_CACHE_HEURISTIC_PERCENT;
    return v < LV_CACHE_HEURISTIC_MAX ? v : LV_CACHE_HEURISTIC_MAX;
}

int64_t lv_cache_initial_age(int64_t age_value, int64_t date, int64_t request_time,
                             int64_t response_time)
{
    int64_t apparent = 0;
    if (date != LV_CACHE_NO_TIME && response_time > date * 1000)
        apparent = response_time - date * 1000;
    int64_t delay = response_time > request_time ? response_time - request_time : 0;
    int64_t corrected = age_value * 1000 + delay;
    return apparent > corrected ? apparent : corrected;
}

void lv_cache_meta_init(struct lv_cache_meta *m, const struct lv_cache_cfg *cfg,
                        const struct lv_cache_respinfo *rs, int64_t request_time,
                        int64_t response_time)
{
    const struct lv_cc *cc = &rs->cc;
    bool heuristic;
    memset(m, 0, sizeof(*m));
    m->request_time = request_time;
    m->response_time = response_time;
    m->initial_age = lv_cache_initial_age(rs->age, rs->date, request_time, response_time);
    m->lifetime = lv_cache_lifetime(cfg, rs, response_time, &heuristic);
    m->swr = cc->swr != LV_CC_ABSENT ? cc->swr * 1000 : -1;
    m->sie = cc->sie != LV_CC_ABSENT ? cc->sie * 1000 : -1;
    m->date = rs->date != LV_CACHE_NO_TIME ? rs->date : response_time / 1000;
    m->last_modified = rs->last_modified;
    m->status = rs->status;
    if (cc->flags & LV_CC_NO_CACHE) m->flags |= LV_META_NO_CACHE;
    /* s-maxage carries proxy-revalidate for a shared cache (§5.2.2.10). */
    if ((cc->flags & (LV_CC_MUST_REVALIDATE | LV_CC_PROXY_REVALIDATE)) ||
        cc->s_maxage != LV_CC_ABSENT)
        m->flags |= LV_META_MUST_REVALIDATE;
    if (heuristic) m->flags |= LV_META_HEURISTIC;
    if (rs->etag || rs->last_modified != LV_CACHE_NO_TIME) m->flags |= LV_META_VALIDATOR;
}

int64_t lv_cache_age(const struct lv_cache_meta *m, int64_t now)
{
    int64_t resident = now > m->response_time ? now - m->response_time : 0;
    return m->initial_age + resident;
}

int64_t lv_cache_ttl(const struct lv_cache_meta *m, int64_t now)
{
    return m->lifetime - lv_cache_age(m, now);
}

int64_t lv_cache_age_seconds(const struct lv_cache_meta *m, int64_t now)
{
    int64_t s = lv_cache_age(m, now) / 1000;
    return s < LV_CC_DELTA_MAX ? s : LV_CC_DELTA_MAX;
}

enum lv_cache_use lv_cache_usable(const struct lv_cache_meta *m, const struct lv_cache_reqinfo *rq,
                                  int64_t now, bool *by_request)
{
    int64_t age = lv_cache_age(m, now);
    *by_request = false;
    if (rq) {
        const struct lv_cc *cc = &rq->cc;
        if ((cc->flags & LV_CC_NO_CACHE) ||
            (cc->max_age != LV_CC_ABSENT && age > cc->max_age * 1000) ||
            (cc->min_fresh != LV_CC_ABSENT && m->lifetime - age < cc->min_fresh * 1000)) {
            *by_request = true;
            return LV_USE_REVALIDATE;
        }
    }
    if (m->flags & LV_META_NO_CACHE) return LV_USE_REVALIDATE;
    if (m->lifetime > age) return LV_USE_FRESH;
    int64_t staleness = age - m->lifetime;
    if (m->flags & LV_META_MUST_REVALIDATE) return LV_USE_REVALIDATE;
    if (rq && rq->cc.max_stale != LV_CC_ABSENT &&
        (rq->cc.max_stale == LV_CC_ANY || staleness <= rq->cc.max_stale * 1000))
        return LV_USE_STALE;
    if (m->swr >= 0 && staleness <= m->swr) return LV_USE_STALE_REFRESH;
    return LV_USE_REVALIDATE;
}

bool lv_cache_stale_on_error(const struct lv_cache_cfg *cfg, const struct lv_cache_meta *m,
                             const struct lv_cache_reqinfo *rq, int64_t now)
{
    int64_t staleness = -lv_cache_ttl(m, now);
    if (staleness < 0) staleness = 0;
    /* The origin opted in: RFC 5861 §4, "regardless of other freshness
     * information". */
    if (m->sie >= 0 && staleness <= m->sie) return true;
    /* no-cache: never used without a successful validation. */
    if (m->flags & LV_META_NO_CACHE) return false;
    /* Still fresh (the request asked for validation): not a stale answer. */
    if (lv_cache_ttl(m, now) > 0) return true;
    if (m->flags & LV_META_MUST_REVALIDATE) return false;
    if (rq && rq->cc.sie != LV_CC_ABSENT && staleness <= rq->cc.sie * 1000) return true;
    return cfg->serve_stale_on_error > 0 && staleness <= (int64_t)cfg->serve_stale_on_error;
}

static const struct {
    const char *name;
    size_t len;
} unstored[] = {
    {"connection", 10},
    {"keep-alive", 10},
    {"proxy-connection", 16},
    {"te", 2},
    {"trailer", 7},
    {"transfer-encoding", 17},
    {"upgrade", 7},
    {"content-length", 14},
    {"age", 3},
    {"set-cookie", 10},
    {"set-cookie2", 11},
    {"proxy-authenticate", 18},
    {"proxy-authorization", 19},
    {"proxy-authentication-info", 25},
};

bool lv_cache_field_stored(const struct lv_cache_respinfo *rs, const char *name, size_t len,
                           uint32_t flags)
{
    if (flags & (LV_HF_HOP | LV_HF_DROP)) return false;
    for (size_t i = 0; i < sizeof(unstored) / sizeof(unstored[0]); i++) {
        if (lv_name_eq(name, len, unstored[i].name, unstored[i].len)) return false;
    }
    const struct lv_cc *cc = &rs->cc;
    return !lv_cc_names_has(cc->no_cache, cc->n_no_cache, name, len) &&
           !lv_cc_names_has(cc->private_, cc->n_private, name, len);
}

bool lv_cache_field_hidden(const struct lv_cache_cfg *cfg, const char *name, size_t len)
{
    if (cfg->forward_targeted) return false;
    for (size_t i = 0; i < cfg->ntargets; i++) {
        if (lv_name_eq(name, len, cfg->targets[i], strlen(cfg->targets[i]))) return true;
    }
    return false;
}
