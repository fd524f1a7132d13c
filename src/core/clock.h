/*
 * Time. Policy code never reads a clock: it takes `now` (milliseconds on the
 * monotonic clock) as an argument. Only the I/O layers call these.
 */
#ifndef LV_CORE_CLOCK_H
#define LV_CORE_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Monotonic milliseconds and nanoseconds (arbitrary origin). */
uint64_t lv_clock_ms(void);
uint64_t lv_clock_ns(void);

/* Wall clock, milliseconds since the Unix epoch. */
uint64_t lv_clock_wall_ms(void);

/* Formats a wall time as "26/Nov/2026:12:00:00 +0000" (combined log format). */
size_t lv_clock_fmt_clf(char *out, size_t cap, uint64_t wall_ms);
/* Formats a wall time as "2026-11-26T12:00:00.123Z" (RFC 3339, UTC). */
size_t lv_clock_fmt_iso(char *out, size_t cap, uint64_t wall_ms);

#endif
