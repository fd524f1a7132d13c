/*
 * Durations and sizes as people write them in a config file.
 *
 * Durations: "250ms", "5s", "1.5s", "2m", "1h", "100us"; a bare number means
 * seconds (as in the spec's `timeout: 30`). Sizes: "512", "64KiB", "1MiB",
 * "2GiB", with K/KB/M/MB/G/GB also 1024-based (as in nginx).
 */
#ifndef LV_CORE_UNITS_H
#define LV_CORE_UNITS_H

#include <stdint.h>

/* Parses a duration into milliseconds (sub-millisecond values round up to 1
 * unless zero). Returns 0, or UV_EINVAL if s is not a duration. */
int lv_parse_duration_ms(const char *s, uint64_t *ms);
/* Parses a size into bytes. Returns 0, or UV_EINVAL if s is not a
 * size. */
int lv_parse_size(const char *s, uint64_t *bytes);
/* Parses a non-negative decimal integer that must fill the whole string. */
int lv_parse_u64(const char *s, uint64_t *out);

#endif
