/*
 * llhttp glue shared by both sides: the head-collecting callbacks (target,
 * header names and values go into a struct lv_head, with its limits turned
 * into a failure kind), and a small table of callbacks for the owner's part
 * of the message: head complete, body data, message complete.
 *
 * llhttp is built in its strict mode (the Makefile): a CR must be followed
 * by LF everywhere, chunk data by CRLF. Requests speak HTTP/1.0 or 1.1 only:
 * any other version (0.9, 1.2, 2.0, the HTTP/2 preface...) stops the parser
 * with LV_FAIL_VERSION (505) before the owner sees a head.
 *
 * A trailer section (the fields after the last chunk) never enters the
 * head: the head was checked, classified and handed to the owner before the
 * body, and may be serialized again later (a retry). Trailer fields are read
 * and dropped, counted against the head's own limits (bytes and fields).
 * On a request they have no effect on the connection either: llhttp reads a
 * trailer "Connection: close" as if it were in the head (and would refuse
 * the next pipelined request although levee promised keep-alive), so its
 * flags are put back as the head left them. On a response llhttp's reading
 * stands: a backend that says close in its trailers does not get its
 * connection reused.
 */
#ifndef LV_HTTP_PARSER_H
#define LV_HTTP_PARSER_H

#include <llhttp.h>
#include <stdbool.h>

#include "core/buf.h"
#include "core/fail.h"
#include "http/head.h"

struct lv_http_parser;

struct lv_http_handler {
    /* First byte of a message. Returns 0 or -1 (stop: set p->fail). */
    int (*on_begin)(struct lv_http_parser *p);
    /* The head is complete (p->head has status/method/version set and is
     * classified). Returns 0, 1 for "no body" or -1 to stop (set p->fail). */
    int (*on_head)(struct lv_http_parser *p);
    /* Body bytes (decoded from chunked), inside p->cur_buf. 0 or -1. */
    int (*on_body)(struct lv_http_parser *p, const char *at, size_t len);
    /* End of message. 0, or HPE_PAUSED to stop before the next message. */
    int (*on_complete)(struct lv_http_parser *p);
};

struct lv_http_parser {
    llhttp_t ll;
    const struct lv_http_handler *h;
    void *owner;
    struct lv_head *head;        /* where the head goes; set by the owner */
    struct lv_bufpool *pool;     /* for head storage */
    struct lv_buf *cur_buf;      /* the buffer being parsed, during execute */
    uint32_t max_target;         /* longer targets fail with LV_FAIL_URI_TOO_LONG */
    enum lv_fail_kind fail;      /* why parsing stopped, when a limit did it */
    enum lv_fail_kind size_fail; /* kind for "head too large" (431 or bad_response) */
    char *const *drop;           /* extra names to mark LV_HF_DROP */
    size_t ndrop;
    uint32_t chunk_ext; /* bytes of chunk extensions in the current chunk header */
    /* The trailer section of the message being parsed (dropped, counted). */
    bool in_trailers;  /* the head is complete: header callbacks are trailers */
    bool trailer_name; /* the last trailer callback was a name */
    uint32_t trailer_fields, trailer_bytes;
    uint32_t trailer_max_fields, trailer_limit; /* the head's limits */
    uint16_t head_conn_flags; /* llhttp's Connection flags as the head left them */
};

/* Chunk extensions (names and values) allowed per chunk header, as other
 * servers allow; beyond it bad_request (400) or bad_response (502). */
#define LV_CHUNK_EXT_MAX 4096

void lv_http_parser_init(struct lv_http_parser *p, llhttp_type_t type,
                         const struct lv_http_handler *h, void *owner);

/*
 * Feeds len bytes from buffer b at p. Returns the llhttp error code; on
 * HPE_PAUSED *consumed tells how many bytes were used (resume from there).
 */
llhttp_errno_t lv_http_parser_execute(struct lv_http_parser *p, struct lv_buf *b, const char *at,
                                      size_t len, size_t *consumed);

/* The failure for a parse error: the limit hit, or bad_request/bad_framing
 * (requests) and bad_response (responses) by llhttp's error code; the
 * HTTP/2 connection preface on a request connection is version_not_supported. */
enum lv_fail_kind lv_http_parser_failure(const struct lv_http_parser *p, llhttp_errno_t err);

#endif
