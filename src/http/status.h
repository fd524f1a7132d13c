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

/* Writes a complete response for a failure into out. Returns the body
 * length, or UV_ENOBUFS if it does not fit. */
int lv_status_write(struct lv_buf *out, enum lv_fail_kind kind, const struct lv_status_opts *o);

#endif
