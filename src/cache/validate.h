/*
 * Validation (RFC 9111 §4.3, RFC 9110 §8.8 and §13): entity-tag
 * comparison, the conditional requests levee answers itself from a stored
 * response, the validators it sends when it revalidates one, which stored
 * response a 304 updates, and which requests invalidate stored responses
 * (§4.4). Pure functions over field views.
 */
#ifndef LV_CACHE_VALIDATE_H
#define LV_CACHE_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/fields.h"
#include "cache/policy.h"

/*
 * Compares two entity-tags (RFC 9110 §8.8.3.2): strong comparison needs
 * both strong and the same opaque-tag; weak comparison only the same
 * opaque-tag. A value that is not an entity-tag matches nothing.
 */
bool lv_etag_eq(const char *a, size_t an, const char *b, size_t bn, bool strong);

/* True if the If-None-Match / If-Match style list (or "*") matches etag. */
bool lv_etag_list_match(const char *list, size_t n, const char *etag, size_t en, bool strong);

/*
 * Should a GET or HEAD be answered 304 from this stored response (RFC 9111
 * §4.3.2, RFC 9110 §13.2.2)? If-None-Match, when present, decides alone
 * (weak comparison with the stored ETag); otherwise If-Modified-Since is
 * compared with the stored Last-Modified, or failing that its Date.
 */
bool lv_cache_not_modified(const struct lv_fields *req, const struct lv_cache_reqinfo *rq,
                           const struct lv_fields *stored, const struct lv_cache_meta *m,
                           int64_t now);

/* Fields a 304 carries from the stored response (RFC 9110 §15.4.5). */
bool lv_cache_field_in_304(const char *name, size_t len);

/* What levee sends to revalidate a stored response (§4.3.1): its ETag as
 * If-None-Match and its Last-Modified as If-Modified-Since; NULL when the
 * stored response has none. Borrowed from `stored`. */
struct lv_cache_validators {
    const char *etag, *last_modified;
    size_t etag_len, last_modified_len;
};
void lv_cache_validators(const struct lv_fields *stored, struct lv_cache_validators *v);

/*
 * Does a 304 answer to levee's conditional request update this stored
 * response (§4.3.4)? Its ETag must match the stored one (strongly when it
 * is strong), else its Last-Modified must equal the stored one; a 304 with
 * neither is taken to be about the response levee asked about (the
 * conditional request was built from it alone).
 */
bool lv_cache_304_selects(const struct lv_fields *stored, const struct lv_fields *resp304);

/* Does a response with this status to a request with this method
 * (llhttp_method_t) invalidate the target URI (§4.4)? An unsafe method (or
 * one whose safety levee does not know) and a 2xx or 3xx status. */
bool lv_cache_invalidates(uint8_t method, uint16_t status);

#endif
