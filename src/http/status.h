/*
 * The short responses levee writes itself (400..431, 429, 502..504), each
 * with a JSON body naming the reason.
 */
#ifndef LV_HTTP_STATUS_H
#define LV_HTTP_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/buf.h"
#include "core/fail.h"
#include "http/reason.h"

struct lv_status_opts {
    bool keep_alive;
    bool client_http10;
    bool head;            /* HEAD request: headers only */
    unsigned retry_after; /* seconds; 0: no Retry-After */
    const char *extra;    /* more header lines, or NULL */
};

/* The JSON body of levee's own response for a failure, NUL-terminated,
 * into out (cap >= LV_STATUS_BODY_MAX). Returns its length. */
#define LV_STATUS_BODY_MAX 256
size_t lv_status_body(char *out, size_t cap, enum lv_fail_kind kind);

/* Writes a complete response for a failure into out. Returns the body
 * length, or -1 if it does not fit. */
int lv_status_write(struct lv_buf *out, enum lv_fail_kind kind, const struct lv_status_opts *o);

#endif
