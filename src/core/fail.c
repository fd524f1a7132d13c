/* The table every failure is read from. */
#include "core/fail.h"

static const struct lv_fail_info table[LV_FAIL_KIND_COUNT] = {
    [LV_FAIL_NONE] = {"-", 200, LV_SIDE_NONE, LV_FAILC_NONE, "ok"},
    [LV_FAIL_BAD_REQUEST] = {"bad_request", 400, LV_SIDE_CLIENT, LV_FAILC_NONE,
                             "malformed request"},
    [LV_FAIL_BAD_FRAMING] = {"bad_framing", 400, LV_SIDE_CLIENT, LV_FAILC_NONE,
                             "ambiguous or unsupported request body framing"},
    [LV_FAIL_METHOD] = {"method_not_allowed", 405, LV_SIDE_CLIENT, LV_FAILC_NONE,
                        "method not allowed"},
    [LV_FAIL_HEADER_TIMEOUT] = {"client_header_timeout", 408, LV_SIDE_CLIENT, LV_FAILC_NONE,
                                "request head not received in time"},
    [LV_FAIL_BODY_TIMEOUT] = {"client_body_timeout", 408, LV_SIDE_CLIENT, LV_FAILC_NONE,
                              "request body not received in time"},
    [LV_FAIL_BODY_TOO_LARGE] = {"body_too_large", 413, LV_SIDE_CLIENT, LV_FAILC_NONE,
                                "request body too large"},
    [LV_FAIL_URI_TOO_LONG] = {"uri_too_long", 414, LV_SIDE_CLIENT, LV_FAILC_NONE,
                              "request target too long"},
    [LV_FAIL_HEADERS_TOO_LARGE] = {"headers_too_large", 431, LV_SIDE_CLIENT, LV_FAILC_NONE,
                                   "request header fields too large"},
    [LV_FAIL_CLIENT_CLOSED] = {"client_closed", 499, LV_SIDE_CLIENT, LV_FAILC_NONE,
                               "client closed the connection"},
    [LV_FAIL_RATE_LIMITED] = {"rate_limited", 429, LV_SIDE_CLIENT, LV_FAILC_NONE,
                              "too many requests"},
    [LV_FAIL_VERSION] = {"version_not_supported", 505, LV_SIDE_CLIENT, LV_FAILC_NONE,
                         "levee speaks HTTP/1.0 and HTTP/1.1 only"},
    [LV_FAIL_CONNECT_FAILED] = {"connect_failed", 502, LV_SIDE_BACKEND, LV_FAILC_CONNECT,
                                "could not connect to a backend"},
    [LV_FAIL_CONNECT_TIMEOUT] = {"connect_timeout", 504, LV_SIDE_BACKEND, LV_FAILC_CONNECT,
                                 "timed out connecting to a backend"},
    [LV_FAIL_RESET] = {"backend_reset", 502, LV_SIDE_BACKEND, LV_FAILC_RESET,
                       "backend closed the connection before answering"},
    [LV_FAIL_RESPONSE_TIMEOUT] = {"response_timeout", 504, LV_SIDE_BACKEND, LV_FAILC_TIMEOUT,
                                  "backend did not answer in time"},
    [LV_FAIL_BAD_RESPONSE] = {"bad_response", 502, LV_SIDE_BACKEND, LV_FAILC_RESET,
                              "backend sent a malformed response"},
    [LV_FAIL_BAD_STATUS] = {"backend_error", 502, LV_SIDE_BACKEND, LV_FAILC_STATUS,
                            "backend answered with an error"},
    [LV_FAIL_TLS] = {"tls_failed", 502, LV_SIDE_BACKEND, LV_FAILC_CONNECT,
                     "TLS handshake with a backend failed"},
    [LV_FAIL_NO_BACKEND] = {"no_backend", 503, LV_SIDE_LEVEE, LV_FAILC_NONE,
                            "no backend available"},
    [LV_FAIL_INTERNAL] = {"internal_error", 500, LV_SIDE_LEVEE, LV_FAILC_NONE, "internal error"},
    [LV_FAIL_NOT_CACHED] = {"not_cached", 504, LV_SIDE_LEVEE, LV_FAILC_NONE,
                            "no stored response may answer and no backend did"},
};

const struct lv_fail_info *lv_fail_info(enum lv_fail_kind kind)
{
    if ((unsigned)kind >= LV_FAIL_KIND_COUNT) kind = LV_FAIL_INTERNAL;
    return &table[kind];
}
