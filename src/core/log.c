/* The error log. The level is a global set at startup and on reload. */
#include "core/log.h"
#include "core/clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

static atomic_int log_level = LV_LOG_INFO;
static atomic_int log_fd = STDERR_FILENO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void lv_log_set_level(enum lv_log_level level)
{
    atomic_store(&log_level, (int)level);
}

bool lv_log_enabled(enum lv_log_level level)
{
    return (int)level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

int lv_log_level_parse(const char *s, enum lv_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum lv_log_level)i;
            return 0;
        }
    }
    return UV_EINVAL;
}

void lv_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

/* Advances *n past what snprintf wrote into a buffer of `room` bytes from
 * *n: m characters, or fewer if it truncated. */
static void advance(size_t *n, size_t room, int m)
{
    size_t avail = room - *n;
    if (m <= 0 || avail == 0) return;
    *n += (size_t)m < avail ? (size_t)m : avail - 1;
}

/* Formats and writes one line; `suppressed` > 0 adds the count. */
static void emit(enum lv_log_level level, uint64_t suppressed, const char *fmt, va_list ap)
{
    char line[2048];
    const size_t room = sizeof(line) - 1; /* the newline always fits */
    size_t n = lv_clock_fmt_iso(line, room, lv_clock_wall_ms());
    advance(&n, room,
            snprintf(line + n, room - n, " levee[%d] %s: ", (int)getpid(), level_names[level]));
    advance(&n, room, vsnprintf(line + n, room - n, fmt, ap));
    if (suppressed > 0) {
        advance(&n, room,
                snprintf(line + n, room - n, " (%llu similar line%s suppressed)",
                         (unsigned long long)suppressed, suppressed == 1 ? "" : "s"));
    }
    line[n++] = '\n';
    ssize_t w = write(atomic_load_explicit(&log_fd, memory_order_relaxed), line, n);
    (void)w;
}

void lv_log(enum lv_log_level level, const char *fmt, ...)
{
    if (!lv_log_enabled(level)) return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, 0, fmt, ap);
    va_end(ap);
}

bool lv_log_limit_take(struct lv_log_limit *lim, uint64_t now_ms, uint64_t *suppressed)
{
    /* GCRA: tat is when the bucket would be full again; a line costs one
     * interval and fits while tat stays within burst intervals of now. */
    uint64_t span = (uint64_t)(lim->burst ? lim->burst : 1) * LV_LOG_LIMIT_MS;
    uint_fast64_t tat = atomic_load(&lim->tat_ms);
    for (;;) {
        uint64_t next = (tat > now_ms ? tat : now_ms) + LV_LOG_LIMIT_MS;
        if (next - now_ms > span) {
            atomic_fetch_add(&lim->suppressed, 1);
            return false;
        }
        if (atomic_compare_exchange_weak(&lim->tat_ms, &tat, next)) break;
    }
    /* A count that lands just after this exchange is reported with the
     * next line, never lost. */
    *suppressed = atomic_exchange(&lim->suppressed, 0);
    return true;
}

void lv_log_limited_at(enum lv_log_level level, struct lv_log_limit *lim, uint64_t now_ms,
                       const char *fmt, ...)
{
    if (!lv_log_enabled(level)) return;
    uint64_t suppressed;
    if (!lv_log_limit_take(lim, now_ms, &suppressed)) return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, suppressed, fmt, ap);
    va_end(ap);
}
