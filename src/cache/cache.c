/*
 * The request path's view of the cache: lookup decisions, storing a
 * response as it streams, 304 updates, stale answers on errors,
 * invalidation and replies. See cache.h for the sequence of calls.
 */
#include "cache/cache.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>

#include "http/date.h"

void lv_cache_lookup_init(struct lv_cache_lookup *l)
{
    memset(l, 0, sizeof(*l));
    l->action = LV_CACHE_PASS;
    lv_cache_key_init(&l->key);
}

/* Gives back what a lookup holds. A claim given up here leaves no pass
 * marker: nothing was learnt about the response. */
static void release(struct lv_cache_store *s, struct lv_cache_lookup *l, int64_t now)
{
    if (l->entry) lv_cache_entry_release(l->entry);
    l->entry = NULL;
    if (l->claim) lv_cache_store_unclaim(s, l->claim, now, 0);
    l->claim = NULL;
}

void lv_cache_lookup_dispose(struct lv_cache_store *s, struct lv_cache_lookup *l, int64_t now)
{
    release(s, l, now);
    lv_cache_key_dispose(&l->key);
}

/* Vary matching: the request's secondary key for an entry's Vary names,
 * computed once per set of names (all variants of a key share them). */
struct vary_match {
    const struct lv_fields *req;
    const char *names;
    size_t nlen;
    bool have, ok;
    size_t len;
    char buf[LV_CACHE_VKEY_MAX];
};

static bool match_vary(const struct lv_cache_entry *e, void *arg)
{
    struct vary_match *m = arg;
    const char *vary, *vkey;
    size_t vlen, vklen;
    lv_cache_entry_vary(e, &vary, &vlen, &vkey, &vklen);
    if (vlen == 0) return true;
    if (!m->have || m->nlen != vlen || memcmp(m->names, vary, vlen) != 0) {
        m->ok = lv_cache_vary_key(vary, vlen, m->req, m->buf, sizeof(m->buf), &m->len) == 0;
        m->names = vary;
        m->nlen = vlen;
        m->have = true;
    }
    return m->ok && m->len == vklen && memcmp(m->buf, vkey, vklen) == 0;
}

/* Sets l's action from what the store found; true if the request goes to
 * the origin in a way that other requests for the key could wait for. */
static bool decide(struct lv_cache_store *s, struct lv_cache_lookup *l,
                   const struct lv_cache_found *found, int64_t now)
{
    bool only_if_cached = l->rq.cc.flags & LV_CC_ONLY_IF_CACHED;
    l->entry = found->entry;
    if (found->entry == NULL) {
        l->status.fwd = found->key_known ? LV_FWD_VARY_MISS : LV_FWD_URI_MISS;
        if (only_if_cached) {
            l->action = LV_CACHE_REJECT;
            l->status.detail = "only-if-cached";
            return false;
        }
        l->action = LV_CACHE_FETCH;
        l->strip_conditionals = l->store;
        return l->store;
    }
    bool by_request;
    switch (lv_cache_usable(lv_cache_entry_meta(found->entry), &l->rq, now, &by_request)) {
    case LV_USE_STALE_REFRESH:
        l->refresh = lv_cache_entry_refresh_begin(found->entry, now);
        /* fall through */
    case LV_USE_FRESH:
    case LV_USE_STALE:
        l->action = LV_CACHE_SERVE;
        l->status.fwd = LV_FWD_NONE;
        l->status.hit = true;
        l->status.collapsed = l->waited; /* it reads what another request fetched */
        return false;
    case LV_USE_REVALIDATE: break;
    }
    l->status.fwd = by_request ? LV_FWD_REQUEST : LV_FWD_STALE;
    if (only_if_cached) {
        release(s, l, now);
        l->action = LV_CACHE_REJECT;
        l->status.detail = "only-if-cached";
        return false;
    }
    if (!l->store) { /* nothing will be updated: an ordinary request */
        l->action = LV_CACHE_FETCH;
        return false;
    }
    l->action = LV_CACHE_REVALIDATE;
    l->strip_conditionals = true;
    return true;
}

void lv_cache_lookup(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                     const struct lv_cache_req *r, int64_t now, struct lv_cache_waiter *w,
                     struct lv_cache_lookup *l)
{
    release(s, l, now);
    l->action = LV_CACHE_PASS;
    l->refresh = l->store = l->strip_conditionals = false;
    memset(&l->status, 0, sizeof(l->status));
    if (!cfg->enabled) {
        l->status.fwd = LV_FWD_BYPASS;
        return;
    }
    if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        l->status.fwd = LV_FWD_METHOD;
        return;
    }
    lv_cache_reqinfo_read(&l->rq, &r->fields, now);
    l->status.fwd = LV_FWD_BYPASS;
    if (l->rq.range || l->rq.preconditions) return;
    if (lv_cache_key_of_req(&l->key, cfg->key, r) != 0) return;
    l->store = !(l->rq.cc.flags & LV_CC_NO_STORE);

    struct vary_match vm;
    vm.req = &r->fields;
    vm.have = false;
    for (int tries = 0;; tries++) {
        struct lv_cache_found found;
        lv_cache_store_find(s, l->key.p, l->key.len, match_vary, &vm, now, &found);
        if (!decide(s, l, &found, now) || cfg->collapse_timeout == 0) return;
        switch (lv_cache_store_claim(s, l->key.p, l->key.len, match_vary, &vm, found.entry, now, w,
                                     &l->claim)) {
        case LV_CLAIM_LEAD:
        case LV_CLAIM_NONE: return;
        case LV_CLAIM_WAIT:
            release(s, l, now);
            l->action = LV_CACHE_WAIT;
            l->waited = true;
            return;
        case LV_CLAIM_CHANGED: /* stored meanwhile: look again (a few times at most) */
            if (tries == 2) return;
            release(s, l, now);
            l->refresh = l->strip_conditionals = false;
            memset(&l->status, 0, sizeof(l->status));
            break;
        }
    }
}

int lv_cache_refresh_prepare(const struct lv_cache_lookup *l, struct lv_cache_lookup *bg)
{
    lv_cache_lookup_init(bg);
    if (l->entry == NULL || lv_cache_key_set(&bg->key, l->key.p, l->key.len) != 0) return -1;
    bg->rq = l->rq;
    /* The client's own directives do not apply to levee's refresh. */
    lv_cc_init(&bg->rq.cc);
    bg->rq.inm = bg->rq.ims = false;
    bg->entry = lv_cache_entry_ref(l->entry);
    bg->action = LV_CACHE_REVALIDATE;
    bg->store = true;
    bg->strip_conditionals = true;
    bg->status.fwd = LV_FWD_STALE;
    return 0;
}

/* --- storing ---------------------------------------------------------------- */

/* The reasons that belong to the response (a pass marker is worth it), not
 * to the request. */
static bool response_reason(enum lv_cache_nostore why)
{
    return why != LV_NOSTORE_METHOD && why != LV_NOSTORE_REQUEST && why != LV_NOSTORE_AUTHORIZATION;
}

/* A field list being assembled for an entry. */
struct flist {
    struct lv_field *f;
    uint32_t n, cap;
    struct lv_field inl[48];
    char date[LV_HTTP_DATE_LEN + 1];
};

static void flist_init(struct flist *fl)
{
    fl->f = fl->inl;
    fl->n = 0;
    fl->cap = sizeof(fl->inl) / sizeof(fl->inl[0]);
}

static void flist_dispose(struct flist *fl)
{
    if (fl->f != fl->inl) free(fl->f);
    flist_init(fl);
}

static int flist_add(struct flist *fl, struct lv_field f)
{
    if (fl->n == fl->cap) {
        if (fl->cap >= LV_CACHE_MAX_FIELDS) return -1;
        uint32_t cap = fl->cap * 2;
        struct lv_field *p = malloc(cap * sizeof(*p));
        if (p == NULL) return -1;
        memcpy(p, fl->f, fl->n * sizeof(*p));
        if (fl->f != fl->inl) free(fl->f);
        fl->f = p;
        fl->cap = cap;
    }
    fl->f[fl->n++] = f;
    return 0;
}

/* A recipient with a clock adds the Date it received a response at when
 * the response has none (RFC 9110 §6.6.1). */
static int flist_add_date(struct flist *fl, int64_t response_time)
{
    lv_http_date_format(fl->date, response_time / 1000);
    struct lv_field d = {"Date", fl->date, 4, LV_HTTP_DATE_LEN};
    return flist_add(fl, d);
}

int lv_cache_begin(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                   struct lv_cache_lookup *l, const struct lv_cache_req *r, uint16_t status,
                   const struct lv_fields *resp, int64_t request_time, int64_t response_time,
                   struct lv_cache_writer *w, enum lv_cache_nostore *why)
{
    w->store = s;
    w->entry = NULL;
    struct lv_cache_respinfo rs;
    lv_cache_respinfo_read(&rs, cfg, status, resp, response_time);
    *why = l->store ? lv_cache_storable(cfg, r->method, &l->rq, &rs, response_time)
                    : LV_NOSTORE_REQUEST;
    char vary[LV_CACHE_VARY_MAX], vkey[LV_CACHE_VKEY_MAX];
    size_t vlen = 0, vklen = 0;
    if (*why == LV_STORE_OK &&
        (lv_cache_vary_names(resp, vary, sizeof(vary), &vlen) != 0 ||
         (vlen && lv_cache_vary_key(vary, vlen, &r->fields, vkey, sizeof(vkey), &vklen) != 0)))
        *why = LV_NOSTORE_VARY;
    struct lv_cache_entry *e = NULL;
    if (*why == LV_STORE_OK) {
        struct flist fl;
        flist_init(&fl);
        int rc = 0;
        /* No valid Date: the time it arrived replaces it (an invalid one is
         * not kept beside ours). */
        bool new_date = rs.date == LV_CACHE_NO_TIME;
        for (uint32_t i = 0; i < resp->n && rc == 0; i++) {
            struct lv_field f = lv_fields_at(resp, i);
            if (new_date && lv_name_eq(f.name, f.name_len, "date", 4)) continue;
            if (lv_cache_field_stored(&rs, f.name, f.name_len, resp->f[i].flags))
                rc = flist_add(&fl, f);
        }
        if (rc == 0 && new_date) rc = flist_add_date(&fl, response_time);
        struct lv_cache_entry_spec spec = {
            .key = l->key.p,
            .key_len = l->key.len,
            .vary = vary,
            .vary_len = vlen,
            .vkey = vkey,
            .vkey_len = vklen,
            .status = status,
            .fields = fl.f,
            .nfields = fl.n,
            .content_length = rs.content_length,
        };
        lv_cache_meta_init(&spec.meta, cfg, &rs, request_time, response_time);
        if (rc == 0) e = lv_cache_entry_create(s, &spec);
        flist_dispose(&fl);
        if (e == NULL) *why = LV_NOSTORE_TOO_LARGE;
    }
    if (e == NULL) {
        if (l->claim)
            lv_cache_store_unclaim(s, l->claim, response_time,
                                   response_reason(*why) ? response_time + LV_CACHE_PASS_TTL : 0);
        l->claim = NULL;
        return -1;
    }
    lv_cache_store_insert(s, l->claim, e, response_time);
    l->claim = NULL;
    l->status.stored = true;
    w->entry = e;
    return 0;
}

int lv_cache_writer_append(struct lv_cache_writer *w, const void *p, size_t n)
{
    if (w->entry == NULL) return -1;
    if (lv_cache_entry_append(w->store, w->entry, p, n) == 0) return 0;
    lv_cache_entry_release(w->entry);
    w->entry = NULL;
    return -1;
}

int lv_cache_writer_finish(struct lv_cache_writer *w)
{
    if (w->entry == NULL) return -1;
    int rc = lv_cache_entry_finish(w->store, w->entry);
    lv_cache_entry_release(w->entry);
    w->entry = NULL;
    return rc;
}

void lv_cache_writer_abort(struct lv_cache_writer *w)
{
    if (w->entry == NULL) return;
    lv_cache_entry_abort(w->store, w->entry);
    lv_cache_entry_release(w->entry);
    w->entry = NULL;
}

/* --- revalidation ------------------------------------------------------------- */

/* A field list as a field view (one copy of the names and values). */
struct flat {
    char *text;
    struct lv_hfield *h;
    struct lv_fields view;
};

static int flatten(struct flat *fl, const struct lv_field *f, uint32_t n)
{
    size_t bytes = 0;
    for (uint32_t i = 0; i < n; i++)
        bytes += (size_t)f[i].name_len + f[i].value_len;
    fl->text = malloc(bytes ? bytes : 1);
    fl->h = malloc((n ? n : 1) * sizeof(*fl->h));
    if (fl->text == NULL || fl->h == NULL) {
        free(fl->text);
        free(fl->h);
        return -1;
    }
    uint32_t off = 0;
    for (uint32_t i = 0; i < n; i++) {
        memcpy(fl->text + off, f[i].name, f[i].name_len);
        fl->h[i].name = off;
        fl->h[i].name_len = f[i].name_len;
        off += f[i].name_len;
        memcpy(fl->text + off, f[i].value, f[i].value_len);
        fl->h[i].value = off;
        fl->h[i].value_len = f[i].value_len;
        off += f[i].value_len;
        fl->h[i].flags = 0;
    }
    fl->view.base = fl->text;
    fl->view.f = fl->h;
    fl->view.n = n;
    return 0;
}

static void flat_dispose(struct flat *fl)
{
    free(fl->text);
    free(fl->h);
}

int lv_cache_revalidated(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                         struct lv_cache_lookup *l, const struct lv_fields *resp304,
                         int64_t request_time, int64_t response_time, struct lv_cache_entry **out)
{
    struct lv_cache_entry *old = l->entry;
    *out = NULL;
    struct lv_fields stored = lv_cache_entry_fields(old);
    if (lv_cache_entry_state(old) == LV_BODY_ABORTED || !lv_cache_304_selects(&stored, resp304)) {
        if (l->claim) lv_cache_store_unclaim(s, l->claim, response_time, 0);
        l->claim = NULL;
        return -1;
    }
    /* §3.2: the 304's fields replace the stored fields of the same name;
     * what may not be stored (§3.1) is not taken from it. */
    struct lv_cache_respinfo rs304;
    lv_cache_respinfo_read(&rs304, cfg, lv_cache_entry_status(old), resp304, response_time);
    struct flist fl;
    flist_init(&fl);
    int rc = 0;
    /* A 304 without a valid Date gets the time it arrived, as any response
     * (the stored Date is the first response's: it would age the update). */
    bool new_date = rs304.date == LV_CACHE_NO_TIME;
    for (uint32_t i = 0; i < stored.n && rc == 0; i++) {
        struct lv_field f = lv_fields_at(&stored, i);
        if (lv_fields_has(resp304, f.name, f.name_len)) continue;
        if (new_date && lv_name_eq(f.name, f.name_len, "date", 4)) continue;
        rc = flist_add(&fl, f);
    }
    for (uint32_t i = 0; i < resp304->n && rc == 0; i++) {
        struct lv_field f = lv_fields_at(resp304, i);
        if (new_date && lv_name_eq(f.name, f.name_len, "date", 4)) continue;
        if (lv_cache_field_stored(&rs304, f.name, f.name_len, resp304->f[i].flags))
            rc = flist_add(&fl, f);
    }
    if (rc == 0 && new_date) rc = flist_add_date(&fl, response_time);
    struct flat merged;
    if (rc != 0 || flatten(&merged, fl.f, fl.n) != 0) {
        flist_dispose(&fl);
        if (l->claim) lv_cache_store_unclaim(s, l->claim, response_time, 0);
        l->claim = NULL;
        return -1;
    }
    struct lv_cache_respinfo rs;
    lv_cache_respinfo_read(&rs, cfg, lv_cache_entry_status(old), &merged.view, response_time);
    rs.age = rs304.age; /* the Age of this exchange, not of the first one */
    rs.content_length = -1;
    enum lv_cache_nostore why = l->store
                                    ? lv_cache_storable(cfg, HTTP_GET, &l->rq, &rs, response_time)
                                    : LV_NOSTORE_REQUEST;
    const char *vary, *vkey;
    size_t vlen, vklen;
    lv_cache_entry_vary(old, &vary, &vlen, &vkey, &vklen);
    struct lv_cache_entry_spec spec = {
        .key = l->key.p,
        .key_len = l->key.len,
        .vary = vary,
        .vary_len = vlen,
        .vkey = vkey,
        .vkey_len = vklen,
        .status = lv_cache_entry_status(old),
        .fields = fl.f,
        .nfields = fl.n,
        .content_length = -1,
        .share_of = old,
    };
    lv_cache_meta_init(&spec.meta, cfg, &rs, request_time, response_time);
    struct lv_cache_entry *e = lv_cache_entry_create(s, &spec);
    flat_dispose(&merged);
    flist_dispose(&fl);
    if (e == NULL) {
        if (l->claim) lv_cache_store_unclaim(s, l->claim, response_time, 0);
        l->claim = NULL;
        return -1;
    }
    if (why == LV_STORE_OK) {
        lv_cache_store_insert(s, l->claim, e, response_time);
        l->status.stored = true;
    } else { /* it may answer this request, and is no longer to be kept */
        lv_cache_store_unlink(s, old);
        if (l->claim) lv_cache_store_unclaim(s, l->claim, response_time, 0);
    }
    l->claim = NULL;
    l->status.fwd_status = 304;
    *out = e;
    return 0;
}

bool lv_cache_serve_stale(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                          struct lv_cache_lookup *l, uint16_t fwd_status, int64_t now)
{
    if (l->claim) lv_cache_store_unclaim(s, l->claim, now, 0);
    l->claim = NULL;
    if (l->entry == NULL ||
        !lv_cache_stale_on_error(cfg, lv_cache_entry_meta(l->entry), &l->rq, now))
        return false;
    l->status.hit = false;
    if (l->status.fwd == LV_FWD_NONE || l->status.fwd == LV_FWD_BYPASS)
        l->status.fwd = LV_FWD_STALE;
    l->status.fwd_status = fwd_status;
    l->status.stored = false;
    l->status.detail = fwd_status ? "origin-error" : "origin-unreachable";
    return true;
}

size_t lv_cache_invalidate(struct lv_cache_store *s, const struct lv_cache_cfg *cfg,
                           const struct lv_cache_req *r, uint16_t status,
                           const struct lv_fields *resp)
{
    if (!cfg->enabled || !lv_cache_invalidates(r->method, status)) return 0;
    struct lv_cache_req get = *r;
    get.method = HTTP_GET;
    struct lv_cache_key k;
    lv_cache_key_init(&k);
    size_t n = 0;
    if (lv_cache_key_of_req(&k, cfg->key, &get) == 0) n += lv_cache_store_remove(s, k.p, k.len);
    for (uint32_t i = 0; resp && i < resp->n; i++) {
        struct lv_field f = lv_fields_at(resp, i);
        if (!lv_name_eq(f.name, f.name_len, "location", 8) &&
            !lv_name_eq(f.name, f.name_len, "content-location", 16))
            continue;
        if (lv_cache_key_of_ref(&k, cfg->key, &get, f.value, f.value_len) == 0)
            n += lv_cache_store_remove(s, k.p, k.len);
    }
    lv_cache_key_dispose(&k);
    return n;
}

/* --- replies ------------------------------------------------------------------- */

/* Floor division: a response stale by 0.5 s has ttl -1, not 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    return a >= 0 ? a / b : -((-a + b - 1) / b);
}

void lv_cache_reply_init(struct lv_cache_reply *rp, const struct lv_cache_cfg *cfg,
                         const struct lv_cache_lookup *l, const struct lv_cache_req *r,
                         const struct lv_cache_entry *e, int64_t now)
{
    const struct lv_cache_meta *m = lv_cache_entry_meta(e);
    memset(rp, 0, sizeof(*rp));
    rp->cfg = cfg;
    rp->fields = lv_cache_entry_fields(e);
    rp->status = lv_cache_entry_status(e);
    if (rp->status >= 200 && rp->status < 300 && (l->rq.inm || l->rq.ims) &&
        lv_cache_not_modified(&r->fields, &l->rq, &rp->fields, m, now)) {
        rp->status = 304;
        rp->not_modified = true;
    }
    rp->body = r->method != HTTP_HEAD && rp->status != 304 && rp->status != 204;
    rp->length = rp->status == 304 || rp->status == 204 ? 0 : lv_cache_entry_length(e);
    rp->age = lv_cache_age_seconds(m, now);
    struct lv_cache_status st = l->status;
    st.has_ttl = true;
    st.ttl = floor_div(lv_cache_ttl(m, now), 1000);
    lv_cache_status_format(rp->cache_status, sizeof(rp->cache_status), &st);
}

bool lv_cache_reply_field(struct lv_cache_reply *rp, struct lv_field *f)
{
    while (rp->next < rp->fields.n) {
        *f = lv_fields_at(&rp->fields, rp->next++);
        if (lv_cache_field_hidden(rp->cfg, f->name, f->name_len)) continue;
        if (rp->not_modified && !lv_cache_field_in_304(f->name, f->name_len)) continue;
        return true;
    }
    return false;
}
