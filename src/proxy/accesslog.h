/*
 * The access log: one line per request, combined format (nginx/Apache
 * "combined" plus duration, backend, attempts and levee's reason) or one
 * JSON object per line. Each worker formats into its own buffer and writes
 * it out when it fills or within 100 ms, so logging costs no syscall per
 * request and lines from different workers never interleave mid-line.
 */
#ifndef LV_PROXY_ACCESSLOG_H
#define LV_PROXY_ACCESSLOG_H

#include <uv.h>

#include "config/config.h"
#include "proxy/proxy-t.h"

struct lv_accesslog;

/* A per-worker log writing to fd (not owned) in format fmt; NULL if fd < 0
 * (logging off). */
struct lv_accesslog *lv_accesslog_create(uv_loop_t *loop, int fd, enum lv_log_format fmt);
/* Appends the line for a finished exchange. */
void lv_accesslog_write(struct lv_accesslog *log, const struct lv_exchange *ex);
/* Writes out what is buffered. */
void lv_accesslog_flush(struct lv_accesslog *log);
/* Flushes, closes its timer, frees it (in the timer's close callback). */
void lv_accesslog_close(struct lv_accesslog *log);

#endif
