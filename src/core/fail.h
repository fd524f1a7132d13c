/*
 * Why a request did not get a backend's answer, classified once, where it
 * happens. Everything else is derived from the kind, in one table: the status
 * code levee answers with, the reason token written in the body, the access
 * log and the metrics, whether a backend is to blame (breaker and passive
 * health accounting) and which `retry_on` class it belongs to.
 */
#ifndef LV_CORE_FAIL_H
#define LV_CORE_FAIL_H

#include <stdbool.h>

enum lv_fail_kind {
    LV_FAIL_NONE = 0,
    /* the client's fault */
    LV_FAIL_BAD_REQUEST,
    LV_FAIL_BAD_FRAMING,
    LV_FAIL_METHOD,
    LV_FAIL_HEADER_TIMEOUT,
    LV_FAIL_BODY_TIMEOUT,
    LV_FAIL_BODY_TOO_LARGE,
    LV_FAIL_URI_TOO_LONG,
    LV_FAIL_HEADERS_TOO_LARGE,
    LV_FAIL_CLIENT_CLOSED,
    LV_FAIL_RATE_LIMITED,
    LV_FAIL_VERSION, /* a request line with a version other than HTTP/1.0 or 1.1 */
    /* the backend's */
    LV_FAIL_CONNECT_FAILED,
    LV_FAIL_CONNECT_TIMEOUT,
    LV_FAIL_RESET,
    LV_FAIL_RESPONSE_TIMEOUT,
    LV_FAIL_BAD_RESPONSE,
    LV_FAIL_BAD_STATUS, /* a complete response whose status is in retry_on */
    LV_FAIL_TLS,        /* the TLS handshake with a backend failed */
    /* nobody can serve */
    LV_FAIL_NO_BACKEND,
    LV_FAIL_INTERNAL,
    LV_FAIL_NOT_CACHED, /* only-if-cached, or must-revalidate and no backend: 504 */
    LV_FAIL_KIND_COUNT
};

/* The retry_on class a failure belongs to (bit flags). */
enum lv_fail_class {
    LV_FAILC_NONE = 0,
    LV_FAILC_CONNECT = 1 << 0, /* nothing was sent: always safe to retry */
    LV_FAILC_RESET = 1 << 1,
    LV_FAILC_TIMEOUT = 1 << 2,
    LV_FAILC_STATUS = 1 << 3,
};

enum lv_fail_side { LV_SIDE_NONE, LV_SIDE_CLIENT, LV_SIDE_BACKEND, LV_SIDE_LEVEE };

struct lv_fail {
    enum lv_fail_kind kind;
    int sys_err; /* libuv error code, 0 if none */
};

struct lv_fail_info {
    const char *reason; /* token in bodies, logs and metric labels */
    int status;         /* status levee answers with; 499 = client gone, nothing sent */
    enum lv_fail_side side;
    enum lv_fail_class cls;
    const char *message; /* one human sentence for the response body */
};

/* The row of the table for a kind; never NULL. */
const struct lv_fail_info *lv_fail_info(enum lv_fail_kind kind);

static inline bool lv_fail_is_backend(enum lv_fail_kind kind)
{
    return lv_fail_info(kind)->side == LV_SIDE_BACKEND;
}

#endif
