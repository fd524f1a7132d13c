/*
 * Primary and secondary cache keys.
 */
#include "cache/key.h"

#include <llhttp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http/check.h"

void lv_cache_key_init(struct lv_cache_key *k)
{
    k->p = k->inl;
    k->len = 0;
    k->cap = sizeof(k->inl);
}

void lv_cache_key_dispose(struct lv_cache_key *k)
{
    if (k->p != k->inl) free(k->p);
    lv_cache_key_init(k);
}

static int add(struct lv_cache_key *k, const char *s, size_t n)
{
    if (n > LV_CACHE_KEY_MAX - k->len) return -1;
    if (k->len + n > k->cap) {
        size_t cap = k->cap * 2;
        while (cap < k->len + n)
            cap *= 2;
        if (cap > LV_CACHE_KEY_MAX) cap = LV_CACHE_KEY_MAX;
        char *p = malloc(cap);
        if (p == NULL) return -1;
        memcpy(p, k->p, k->len);
        if (k->p != k->inl) free(k->p);
        k->p = p;
        k->cap = cap;
    }
    memcpy(k->p + k->len, s, n);
    k->len += n;
    return 0;
}

int lv_cache_key_set(struct lv_cache_key *k, const char *p, size_t n)
{
    k->len = 0;
    return add(k, p, n);
}

static int add_sep(struct lv_cache_key *k)
{
    return k->len ? add(k, " ", 1) : 0;
}

/* Host, lowercased, without the scheme's default port. */
static int add_host(struct lv_cache_key *k, bool tls, const char *h, size_t n)
{
    const char *dflt = tls ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (n > dl && memcmp(h + n - dl, dflt, dl) == 0) n -= dl;
    if (add(k, h, n) != 0) return -1;
    for (size_t i = k->len - n; i < k->len; i++) {
        if (k->p[i] >= 'A' && k->p[i] <= 'Z') k->p[i] = (char)(k->p[i] | 0x20);
    }
    return 0;
}

/* The key from its parts; path and query are one word, "path?query". */
static int build(struct lv_cache_key *k, uint32_t parts, bool tls, const char *host, size_t hlen,
                 const char *path, size_t plen, const char *query, size_t qlen, bool has_query)
{
    k->len = 0;
    if (parts & LV_CKEY_METHOD) {
        if (add(k, "GET", 3) != 0) return -1;
    }
    if (parts & LV_CKEY_SCHEME) {
        if (add_sep(k) != 0 || add(k, tls ? "https" : "http", tls ? 5 : 4) != 0) return -1;
    }
    if (parts & LV_CKEY_HOST) {
        if (host == NULL || hlen == 0) return -1;
        if (add_sep(k) != 0 || add_host(k, tls, host, hlen) != 0) return -1;
    }
    bool word = false;
    if (parts & LV_CKEY_PATH) {
        if (add_sep(k) != 0 || add(k, path, plen) != 0) return -1;
        word = true;
    }
    if ((parts & LV_CKEY_QUERY) && has_query) {
        if (!word && add_sep(k) != 0) return -1;
        if (add(k, "?", 1) != 0 || add(k, query, qlen) != 0) return -1;
    }
    return 0;
}

/* Splits an origin-form remainder ("/p?q", "?q", "") into path and query. */
static void split(const char *t, size_t n, const char **path, size_t *plen, const char **query,
                  size_t *qlen, bool *has_query)
{
    const char *q = memchr(t, '?', n);
    *has_query = q != NULL;
    *path = t;
    *plen = q ? (size_t)(q - t) : n;
    *query = q ? q + 1 : NULL;
    *qlen = q ? n - (size_t)(q - t) - 1 : 0;
    /* A fragment is never sent, but would not belong in a key. */
    const char *hash = memchr(t, '#', n);
    if (hash && (!q || hash > q)) {
        if (q)
            *qlen = (size_t)(hash - *query);
        else
            *plen = (size_t)(hash - t);
    }
    if (*plen == 0) { /* "?q" or "": the path is "/" */
        *path = "/";
        *plen = 1;
    }
}

int lv_cache_key_of_req(struct lv_cache_key *k, uint32_t parts, const struct lv_cache_req *r)
{
    if (r->method != HTTP_GET && r->method != HTTP_HEAD) return -1;
    const char *host = r->host, *rest = r->target;
    size_t hlen = r->host_len, rlen = r->target_len;
    size_t off = lv_target_absolute(r->target, r->target_len, &host, &hlen);
    if (off > 0) {
        rest = r->target + off;
        rlen = r->target_len - off;
    } else if (rlen == 0 || rest[0] != '/') {
        return -1; /* "*" or an authority: no resource to key */
    }
    const char *path, *query;
    size_t plen, qlen;
    bool has_query;
    split(rest, rlen, &path, &plen, &query, &qlen, &has_query);
    return build(k, parts, r->tls, host, hlen, path, plen, query, qlen, has_query);
}

/* The host of r (from an absolute-form target or Host), lowercased and
 * without its default port, compared with h[0..n) treated the same way. */
static bool same_host(const struct lv_cache_req *r, const char *h, size_t n)
{
    const char *rh = r->host;
    size_t rl = r->host_len;
    lv_target_absolute(r->target, r->target_len, &rh, &rl);
    if (rh == NULL) return false;
    const char *dflt = r->tls ? ":443" : ":80";
    size_t dl = strlen(dflt);
    if (rl > dl && memcmp(rh + rl - dl, dflt, dl) == 0) rl -= dl;
    if (n > dl && memcmp(h + n - dl, dflt, dl) == 0) n -= dl;
    return rl == n && strncasecmp(rh, h, n) == 0;
}

int lv_cache_key_of_ref(struct lv_cache_key *k, uint32_t parts, const struct lv_cache_req *r,
                        const char *ref, size_t n)
{
    while (n > 0 && (ref[0] == ' ' || ref[0] == '\t')) {
        ref++;
        n--;
    }
    while (n > 0 && (ref[n - 1] == ' ' || ref[n - 1] == '\t'))
        n--;
    const char *host = NULL, *rest = ref;
    size_t hlen = 0, rlen = n;
    size_t off = lv_target_absolute(ref, n, &host, &hlen);
    if (off > 0) {
        bool https = n >= 6 && strncasecmp(ref, "https:", 6) == 0;
        if (https != r->tls || !same_host(r, host, hlen)) return -1;
        rest = ref + off;
        rlen = n - off;
    } else if (n == 0 || ref[0] != '/' || (n > 1 && ref[1] == '/')) {
        return -1; /* relative paths and network-path references are not resolved */
    } else {
        host = r->host;
        hlen = r->host_len;
        lv_target_absolute(r->target, r->target_len, &host, &hlen);
    }
    const char *path, *query;
    size_t plen, qlen;
    bool has_query;
    split(rest, rlen, &path, &plen, &query, &qlen, &has_query);
    return build(k, parts, r->tls, host, hlen, path, plen, query, qlen, has_query);
}

int lv_cache_vary_names(const struct lv_fields *resp, char *out, size_t cap, size_t *len)
{
    size_t n = 0;
    uint32_t i = 0;
    struct lv_field f;
    while (LV_FIELDS_NEXT(resp, "vary", &i, &f)) {
        size_t pos = 0;
        const char *item;
        size_t ilen;
        while (lv_list_next(f.value, f.value_len, &pos, &item, &ilen)) {
            if (ilen == 1 && item[0] == '*') return -1;
            if (n + ilen + 1 > cap) return -1;
            if (n) out[n++] = ',';
            for (size_t j = 0; j < ilen; j++) {
                char c = item[j];
                out[n++] = c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
            }
        }
    }
    *len = n;
    return 0;
}

static bool case_insensitive(const char *name, size_t n)
{
    return lv_name_eq(name, n, "accept", 6) || lv_name_eq(name, n, "accept-encoding", 15) ||
           lv_name_eq(name, n, "accept-language", 15) || lv_name_eq(name, n, "accept-charset", 14);
}

int lv_cache_vary_key(const char *names, size_t nlen, const struct lv_fields *req, char *out,
                      size_t cap, size_t *len)
{
    size_t n = 0, npos = 0;
    const char *name;
    size_t namelen;
    while (lv_list_next(names, nlen, &npos, &name, &namelen)) {
        bool lower = case_insensitive(name, namelen);
        bool present = false;
        if (n + 2 > cap) return -1;
        size_t tag = n++;
        bool first = true;
        uint32_t i = 0;
        struct lv_field f;
        while (lv_fields_next(req, name, namelen, &i, &f)) {
            present = true;
            size_t pos = 0;
            const char *item;
            size_t ilen;
            while (lv_list_next(f.value, f.value_len, &pos, &item, &ilen)) {
                if (n + ilen + 2 > cap) return -1;
                if (!first) out[n++] = ',';
                first = false;
                for (size_t j = 0; j < ilen; j++) {
                    char c = item[j];
                    out[n++] = lower && c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
                }
            }
        }
        out[tag] = present ? '=' : '-';
        out[n++] = '\n';
    }
    *len = n;
    return 0;
}
