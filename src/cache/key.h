/*
 * Cache keys. The primary key (RFC 9111 §2) is built from the parts of the
 * request that cfg->key names — method, scheme, host, path, query — as one
 * string, "GET example.com /a/b?x=1" with the default parts: readable in
 * listings, and a purge of a URL prefix is a prefix of keys. GET and HEAD
 * share the GET key (a HEAD is answered from a stored GET).
 *
 * The secondary key (§4.1) is made of the request's values of the fields a
 * stored response's Vary names, normalized so that requests that mean the
 * same thing match: field lines combined, list elements trimmed and joined
 * with ",", and for the Accept family (whose values are case-insensitive)
 * lowercased. A field that is absent is distinct from one that is empty.
 */
#ifndef LV_CACHE_KEY_H
#define LV_CACHE_KEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/fields.h"
#include "cache/policy.h"

#define LV_CACHE_KEY_MAX 16384 /* longer requests are not cached */
#define LV_CACHE_VARY_MAX 1024 /* bytes of Vary names */
#define LV_CACHE_VKEY_MAX 4096 /* bytes of a secondary key */
#define LV_CACHE_KEY_INLINE 240

/* A key being built. Points into itself: do not copy or move it after
 * lv_cache_key_init. */
struct lv_cache_key {
    char *p;
    size_t len, cap;
    char inl[LV_CACHE_KEY_INLINE];
};

void lv_cache_key_init(struct lv_cache_key *k);
void lv_cache_key_dispose(struct lv_cache_key *k);
/* Sets k to a copy of p[0..n). 0, or -1 (over LV_CACHE_KEY_MAX, ENOMEM). */
int lv_cache_key_set(struct lv_cache_key *k, const char *p, size_t n);

/*
 * Builds the primary key of a request into k (replacing what was there).
 * Returns 0, or -1 when the request has no key: a method other than GET or
 * HEAD, no host when the key needs one, or a key over LV_CACHE_KEY_MAX.
 * The host is lowercased and loses a default port (80 for http, 443 for
 * https); an absolute-form target supplies host and path.
 */
int lv_cache_key_of_req(struct lv_cache_key *k, uint32_t parts, const struct lv_cache_req *r);

/*
 * The key a GET of a URI reference found in a response to r would have
 * (Location, Content-Location): an absolute URI of the same scheme and
 * host, or an absolute path. Returns 0, or -1 when the reference is of
 * another origin or of a form levee does not resolve (§4.4: only same-origin
 * URIs are invalidated).
 */
int lv_cache_key_of_ref(struct lv_cache_key *k, uint32_t parts, const struct lv_cache_req *r,
                        const char *ref, size_t n);

/*
 * The Vary names of a response, normalized (lowercase, in order, joined with
 * ","), into out[0..cap); *len is set. Returns 0 (a response without Vary
 * has *len 0), or -1 when they do not fit or include "*".
 */
int lv_cache_vary_names(const struct lv_fields *resp, char *out, size_t cap, size_t *len);

/*
 * The secondary key of a request for those names (as lv_cache_vary_names
 * wrote them) into out[0..cap). Returns 0, or -1 when it does not fit.
 */
int lv_cache_vary_key(const char *names, size_t nlen, const struct lv_fields *req, char *out,
                      size_t cap, size_t *len);

#endif
