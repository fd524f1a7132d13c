/*
 * HTTP-date (RFC 9110 §5.6.7): the three formats a recipient must accept —
 * IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete RFC 850 form
 * ("Sunday, 06-Nov-94 08:49:37 GMT") and ANSI C's asctime() form
 * ("Sun Nov  6 08:49:37 1994") — and the one a sender generates
 * (IMF-fixdate). Times are seconds since the Unix epoch, UTC; pure
 * arithmetic (no timegm, no locale, no time zone).
 */
#ifndef LV_HTTP_DATE_H
#define LV_HTTP_DATE_H

#include <stddef.h>
#include <stdint.h>

/* Length of an IMF-fixdate, without a terminating NUL. */
#define LV_HTTP_DATE_LEN 29

/*
 * Parses s[0..n) (surrounding whitespace allowed). Returns 0 and sets *secs,
 * or -1 when the value is not an HTTP-date (then *secs is untouched). The
 * day name is not checked against the date (a recipient cannot do better
 * with a wrong one). An RFC 850 two-digit year that would be more than 50
 * years after `now_secs` is taken as the most recent past year with those
 * digits (§5.6.7).
 */
int lv_http_date_parse(const char *s, size_t n, int64_t now_secs, int64_t *secs);

/* Writes secs as an IMF-fixdate into out (LV_HTTP_DATE_LEN + 1 bytes, NUL
 * included); years outside 0..9999 are clamped. Returns LV_HTTP_DATE_LEN. */
size_t lv_http_date_format(char *out, int64_t secs);

#endif
