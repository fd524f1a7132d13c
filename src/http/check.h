/*
 * What a message head must satisfy before levee acts on it, beyond what
 * llhttp already refuses: one framing that levee and the other hop read the
 * same way, a request target and Host that mean one thing, and nothing that
 * levee would forward in a form the backend could read differently.
 *
 * All functions here are pure: they look at a complete head and answer with
 * a failure kind, LV_FAIL_NONE when the head is fine.
 */
#ifndef LV_HTTP_CHECK_H
#define LV_HTTP_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/fail.h"
#include "http/head.h"

/*
 * True if v[0..n) is a valid Host value or target authority (RFC 9112 §3.2,
 * RFC 3986 §3.2.2/§3.2.3 without userinfo): host [ ":" port ], where host is
 * a non-empty reg-name (unreserved, pct-encoded, sub-delims other than ","),
 * which covers IPv4 addresses, or "[" IPv6address "]"; port is 1 to 5
 * digits, at most 65535. An empty value, userinfo ("u@h"), a path, a
 * comma-separated list, a zone id or IPvFuture literal are all refused.
 */
bool lv_check_authority(const char *v, size_t n);

/*
 * For an absolute-form target ("http://a/p", "HTTPS://a?q"): sets *auth and
 * *auth_len to the authority and returns the offset where the rest of the
 * target begins (the authority ends at the first '/' or '?'). Returns 0 for
 * any other form, leaving *auth and *auth_len alone.
 */
size_t lv_target_absolute(const char *t, size_t n, const char **auth, size_t *auth_len);

/*
 * True if t[0..n) is a request target levee forwards for method (an
 * llhttp_method_t): visible ASCII only (no control, space, DEL or byte
 * above 0x7f), and origin-form ("/..."), absolute-form with an http or
 * https scheme and a valid authority (lv_check_authority), or "*" for
 * OPTIONS alone. Authority-form is CONNECT's, which levee refuses first.
 */
bool lv_check_target(uint8_t method, const char *t, size_t n);

/*
 * A complete request head (its version already known to be 1.0 or 1.1).
 * In order:
 *   bad_framing  Transfer-Encoding on HTTP/1.0, Transfer-Encoding with
 *                Content-Length (even an empty Transfer-Encoding), or a
 *                Transfer-Encoding other than exactly "chunked"
 *                (RFC 9112 §6.1, §6.3);
 *   bad_request  a target lv_check_target refuses; more than one Host, none
 *                in HTTP/1.1, or one lv_check_authority refuses.
 * Returns LV_FAIL_NONE when the head passes.
 */
enum lv_fail_kind lv_check_request(const struct lv_head *h);

/*
 * A complete response head: bad_response for a version other than 1.x, for
 * Transfer-Encoding with Content-Length or on HTTP/1.0, and for a
 * Transfer-Encoding other than exactly "chunked" (levee decodes chunked and
 * frames the body itself; a "gzip, chunked" body would reach the client
 * without its coding label). LV_FAIL_NONE otherwise.
 */
enum lv_fail_kind lv_check_response(const struct lv_head *h);

#endif
