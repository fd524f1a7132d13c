/*
 * The error log: one line per event on stderr (or a file), with a UTC
 * timestamp and a level. Safe to call from any thread: each line is written
 * with a single write(2).
 */
#ifndef LV_CORE_LOG_H
#define LV_CORE_LOG_H

enum lv_log_level { LV_LOG_DEBUG, LV_LOG_INFO, LV_LOG_WARN, LV_LOG_ERROR };

void lv_log_set_level(enum lv_log_level level);
int lv_log_enabled(enum lv_log_level level);
/* Parses "debug", "info", "warn", "error"; returns 0 or -1. */
int lv_log_level_parse(const char *s, enum lv_log_level *out);

void lv_log(enum lv_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define lv_debug(...)                                                                              \
    do {                                                                                           \
        if (lv_log_enabled(LV_LOG_DEBUG)) lv_log(LV_LOG_DEBUG, __VA_ARGS__);                       \
    } while (0)
#define lv_info(...) lv_log(LV_LOG_INFO, __VA_ARGS__)
#define lv_warn(...) lv_log(LV_LOG_WARN, __VA_ARGS__)
#define lv_error(...) lv_log(LV_LOG_ERROR, __VA_ARGS__)

#endif
