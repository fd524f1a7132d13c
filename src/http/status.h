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

/* The JSON body of levee's own response for a failure, NUL-terminated,
 * into out (cap >= LV_STATUS_BODY_MAX). Returns its length. */
#define LV_STATUS_BODY_MAX 256
size_t lv_status_body(char *out, size_t cap, enum lv_fail_kind kind);

#endif
