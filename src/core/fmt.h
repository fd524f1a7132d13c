/*
 * Numbers into text without the printf family: what the request path
 * writes for every request (Content-Length, chunk sizes, status lines,
 * request ids, access log fields) costs a few instructions a digit here,
 * against hundreds for a vsnprintf call.
 *
 * Each function writes into `out` (which must hold the stated maximum; no
 * NUL is written) and returns the number of bytes written.
 */
#ifndef LV_CORE_FMT_H
#define LV_CORE_FMT_H

#include <stddef.h>
#include <stdint.h>

#define LV_FMT_U64_MAX 20 /* 18446744073709551615 */

/* v in decimal, no leading zeros ("0" for 0): at most LV_FMT_U64_MAX. */
size_t lv_fmt_u64(char *out, uint64_t v);

/* v in lowercase hex, no leading zeros ("0" for 0): at most 16. */
size_t lv_fmt_hex(char *out, uint64_t v);

/* v in lowercase hex, exactly `width` digits (1 to 16), zero-padded; the
 * high digits of a v too wide are dropped. */
size_t lv_fmt_hex_fixed(char *out, uint64_t v, unsigned width);

/* n thousandths as a decimal with three places: 1234567 → "1234.567",
 * 5 → "0.005" (the caller rounds to thousandths). At most LV_FMT_U64_MAX + 1. */
size_t lv_fmt_milli(char *out, uint64_t n);

#endif
