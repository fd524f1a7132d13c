/*
 * Serializing heads on their way through: the request as the backend must
 * see it (X-Forwarded-*, hop-by-hop fields removed, levee's own framing) and
 * the response as the client must see it (hop-by-hop removed, framing and
 * Connection for the client's side of the hop).
 */
#ifndef LV_HTTP_REWRITE_H
#define LV_HTTP_REWRITE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "http/head.h"

/* How a body is delimited on one hop. */
enum lv_framing {
    LV_FRAME_NONE,    /* no body */
    LV_FRAME_LENGTH,  /* Content-Length */
    LV_FRAME_CHUNKED, /* Transfer-Encoding: chunked */
    LV_FRAME_CLOSE,   /* until the connection closes (responses only) */
};

struct lv_fwd_info {
    const char *client_ip;
    const char *proto;             /* "http" or "https" */
    const char *backend_authority; /* Host when the request has none */
    enum lv_framing framing;       /* of the body levee sends */
    uint64_t content_length;       /* with LV_FRAME_LENGTH */
    const char *extra;             /* more header lines ("Name: v\r\n"...), or NULL */
    const char *target;            /* origin-form target to send instead of the
                                    * client's (a route's rewrite), or NULL */
    size_t target_len;
    const char *host; /* Host to send instead of the client's (a route's
                       * host_rewrite), or NULL; X-Forwarded-Host keeps the client's */
};

/* Upper bound of the rewritten request head's size. */
size_t lv_rewrite_request_size(const struct lv_head *req, const struct lv_fwd_info *fwd);

/* Writes the request head for the backend into out. Returns 0, or UV_ENOBUFS if
 * it does not fit (out is then partially written). The framing is levee's own,
 * from fwd (never LV_FRAME_CLOSE); the client's Content-Length and
 * Transfer-Encoding are never copied. */
int lv_rewrite_request(const struct lv_head *req, const struct lv_fwd_info *fwd,
                       struct lv_buf *out);

struct lv_resp_info {
    unsigned status; /* with resp == NULL (levee's own response): its status */
    bool client_http10;
    enum lv_framing framing; /* toward the client */
    uint64_t content_length; /* with LV_FRAME_LENGTH: the length levee writes */
    bool keep_alive;         /* the client connection stays open; false with LV_FRAME_CLOSE */
    const char *extra;       /* more header lines, or NULL */
};

/* Upper bound of the rewritten response head's size. */
size_t lv_rewrite_response_size(const struct lv_head *resp, const struct lv_resp_info *info);

/*
 * Writes the response head for the client into out. 0 or UV_ENOBUFS (no room).
 * resp is the backend's head whose fields are relayed, or NULL for a
 * response of levee's own (info->status, its fields all in info->extra).
 * The framing is levee's own, from info alone: LV_FRAME_LENGTH writes
 * Content-Length: info->content_length, LV_FRAME_CHUNKED writes
 * Transfer-Encoding: chunked, LV_FRAME_CLOSE (which requires !keep_alive)
 * writes Connection: close; the backend's Content-Length passes only with
 * LV_FRAME_NONE (no body follows: HEAD, 204, 304, 1xx).
 */
int lv_rewrite_response(const struct lv_head *resp, const struct lv_resp_info *info,
                        struct lv_buf *out);

/* Appends the chunk-size line for a chunk of len bytes ("1a2b\r\n") into
 * out (at least 20 bytes); returns its length. */
size_t lv_chunk_header(char *out, uint64_t len);

#endif
