/* Time sources and the two timestamp formats levee writes. */
#include "core/clock.h"

#include <stdio.h>
#include <time.h>

uint64_t lv_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t lv_clock_ms(void)
{
    return lv_clock_ns() / 1000000u;
}

uint64_t lv_clock_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

size_t lv_clock_fmt_clf(char *out, size_t cap, uint64_t wall_ms)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    return strftime(out, cap, "%d/%b/%Y:%H:%M:%S +0000", &tm);
}

size_t lv_clock_fmt_iso(char *out, size_t cap, uint64_t wall_ms)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0) return 0;
    int m = snprintf(out + n, cap - n, ".%03uZ", (unsigned)(wall_ms % 1000));
    if (m < 0 || (size_t)m >= cap - n) return 0;
    return n + (size_t)m;
}
