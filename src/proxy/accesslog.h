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

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "core/fail.h"
#include "http/head.h"
#include "upstream/retry.h"

struct lv_accesslog;

/* What the log says of one finished request. */
struct lv_access_rec {
    const char *client_ip;
    uint64_t start_wall_ms;    /* when its first byte came */
    uint64_t start_ns;         /* monotonic, for the duration */
    const struct lv_head *req; /* NULL when the head never completed */
    unsigned status;           /* 0: nothing was answered (logged 499) */
    uint64_t bytes;            /* body bytes to the client */
    const char *backend;       /* id, or NULL */
    unsigned attempts;
    enum lv_fail_kind fail;  /* levee's reason, or NONE */
    enum lv_retry_skip skip; /* why a failure was not retried */
    bool hedged;
    const char *request_id; /* "" when none */
    const char *route;      /* the route's name, or NULL (no routes configured) */
    const char *cache;      /* the cache's result (lv_cached_result_name), NULL: it took no part */
};

/* A per-worker log writing to fd (not owned) in format fmt; NULL if fd < 0
 * (logging off). */
struct lv_accesslog *lv_accesslog_create(uv_loop_t *loop, int fd, enum lv_log_format fmt);
/* Appends the line for a finished request (NULL log: off). */
void lv_accesslog_write(struct lv_accesslog *log, const struct lv_access_rec *r);
/* Writes out what is buffered. */
void lv_accesslog_flush(struct lv_accesslog *log);
/* Flushes, closes its timer, frees it (in the timer's close callback). */
void lv_accesslog_close(struct lv_accesslog *log);

#endif
