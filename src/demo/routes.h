/* The endpoints of the demo backend and the chaos applied to them. A connection hands each
 * complete request here twice: once to plan it (route argument, injected fault, how long to
 * wait) and, when the wait is over, to write the answer. Routes never touch a socket: they
 * append to a buffer and, for large bodies, tell the connection how much to stream. */
#ifndef LV_DEMO_ROUTES_H
#define LV_DEMO_ROUTES_H

#include <stddef.h>
#include <stdint.h>

#include "demo/demo_buf.h"

struct lv_demo_worker;

/* Generated bodies are cut from this buffer of 'x' bytes; it is also the streaming step. */
#define LV_DEMO_FILL (64 * 1024)
extern const char lv_demo_fill[LV_DEMO_FILL];

/* LV_DEMO_BAD: a known prefix with an unusable argument, answered 400. */
enum lv_demo_route {
    LV_DEMO_DEFAULT,
    LV_DEMO_HEALTH,
    LV_DEMO_ECHO,
    LV_DEMO_UPLOAD,
    LV_DEMO_STATS,
    LV_DEMO_STATUS,
    LV_DEMO_DELAY,
    LV_DEMO_BYTES,
    LV_DEMO_CHUNKED,
    LV_DEMO_CLOSE,
    LV_DEMO_BAD
};

enum lv_demo_action { LV_DEMO_ANSWER, LV_DEMO_ERROR, LV_DEMO_HANG, LV_DEMO_RESET };

/* One request as the routes see it, and what they decided. Owned by the connection; the
 * pointers stay valid until the connection parses its next request. */
struct lv_demo_req {
    /* Filled by the connection. The headers are items of a native uint32_t length then the
     * bytes: name, value, name, value... (trailers of a chunked body included). */
    const char *target;
    size_t target_len;
    const char *headers;
    size_t headers_len;
    int method; /* llhttp_method_t */
    int http_minor;
    int keep_alive;
    uint64_t body_len, body_hash; /* the hash only for /echo and /upload */
    uint64_t conn_requests;
    enum lv_demo_route route; /* lv_demo_route_find, as soon as the target is known */
    /* Set by lv_demo_route_plan. */
    enum lv_demo_action action;
    uint64_t delay_ms;
    uint64_t arg, chunk; /* status, delay or size from the path; chunk size */
    /* Set by lv_demo_route_respond. */
    uint64_t stream_left;  /* body bytes the connection must still write */
    uint64_t stream_chunk; /* chunk size if they go chunked, 0 for raw bytes */
    int close;             /* close the connection after this response */
};

#define LV_DEMO_FNV_BASIS UINT64_C(0xcbf29ce484222325)
#define LV_DEMO_FNV_PRIME UINT64_C(0x100000001b3)

/* Which endpoint a request target names; query and absolute-form authority are ignored. */
enum lv_demo_route lv_demo_route_find(const char *target, size_t n);
/* Parses the route argument and draws the chaos for a complete request: sets action,
 * delay_ms, arg, chunk. Uses the worker's random sequence. */
void lv_demo_route_plan(struct lv_demo_worker *w, struct lv_demo_req *r);
/* Appends the response head and any inline body to out and sets stream_left, stream_chunk and
 * close. Returns 0 or a negative code when out is full (the caller drops the connection). */
int lv_demo_route_respond(struct lv_demo_worker *w, struct lv_demo_req *r, struct lv_demo_buf *out);
/* Appends a short error response with Connection: close (400, 431) to out. */
int lv_demo_route_reject(struct lv_demo_worker *w, struct lv_demo_buf *out, int status);
/* Steps through r's headers from *pos (start at 0). Returns 1 and sets the four outputs, or
 * 0 after the last. */
int lv_demo_req_header(const struct lv_demo_req *r, size_t *pos, const char **name, size_t *nlen,
                       const char **value, size_t *vlen);
/* Whether r carries "Expect: 100-continue". */
int lv_demo_req_expects_continue(const struct lv_demo_req *r);

#endif
