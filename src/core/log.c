/* The error log. The level is a global set at startup and on reload. */
#include "core/log.h"
#include "core/clock.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_level = LV_LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void lv_log_set_level(enum lv_log_level level)
{
    atomic_store(&log_level, (int)level);
}

int lv_log_enabled(enum lv_log_level level)
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
    return -1;
}

void lv_log(enum lv_log_level level, const char *fmt, ...)
{
    if (!lv_log_enabled(level)) return;
    char line[2048];
    size_t n = lv_clock_fmt_iso(line, sizeof(line), lv_clock_wall_ms());
    int m =
        snprintf(line + n, sizeof(line) - n, " levee[%d] %s: ", (int)getpid(), level_names[level]);
    if (m > 0) n += (size_t)m;
    va_list ap;
    va_start(ap, fmt);
    m = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (m > 0) n += (size_t)m < sizeof(line) - n - 1 ? (size_t)m : sizeof(line) - n - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}
