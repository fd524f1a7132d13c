/*
 * An HTTP/1.x client connection: it parses requests with llhttp, runs them
 * one at a time as exchanges (pipelined requests wait their turn in the
 * read buffer), serializes their answers for HTTP/1.1 or 1.0 (framing,
 * Connection, chunked coding), enforces the client-side timeouts (TLS
 * handshake, header, body, idle, unread answers), and closes cleanly: after
 * an answer that ends the connection, the write side is shut and the rest
 * of the input is read and dropped for a while (lingering close), so that
 * the client reads the answer instead of a reset.
 *
 *   HANDSHAKE ──TLS done──► IDLE ◄──────────────────┐
 *                            │ first byte           │ answer out,
 *                            ▼                      │ kept alive
 *                         REQUEST ──────────────────┘
 *                            │ └──101──► TUNNEL ──tunnel ends──┐
 *                            │ answer out, connection ends     │
 *                            ▼                                 ▼
 *                         SHUTDOWN ──written──► LINGER ──► CLOSING
 *   any state ──error, timeout, hard stop──► CLOSING (freed when closed)
 *   HANDSHAKE (ALPN h2) or IDLE (the HTTP/2 preface, `http2: true`) ──► H2:
 *   the socket's handlers belong to an HTTP/2 connection until CLOSING.
 *
 * Flow control flags (not states): `paused` (the request body waits for a
 * backend), `write_blocked` (answers are unwritten past a bound: no new
 * request starts), `peer_closed` (the client shut its side after a
 * complete request: its answer is still written).
 */
#ifndef LV_PROXY_CLIENT_H
#define LV_PROXY_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/list.h"
#include "http/parser.h"
#include "http/rewrite.h"
#include "net/sock.h"
#include "proxy/wctx.h"

struct lv_exchange;
struct lv_h2conn;

enum lv_client_state {
    LV_CL_HANDSHAKE, /* TLS handshake */
    LV_CL_IDLE,      /* no request under way */
    LV_CL_REQUEST,   /* a request is read or answered */
    LV_CL_TUNNEL,    /* the socket belongs to a tunnel */
    LV_CL_H2,        /* issue 17: the connection speaks HTTP/2 (proxy/h2conn.h) */
    LV_CL_SHUTDOWN,  /* the last answer is handed over; the write side shuts after it */
    LV_CL_LINGER,    /* shut: what the client still sends is read and dropped */
    LV_CL_CLOSING,   /* handles closing */
};

/* What the client's timer waits for, in the states where it could be
 * several things. */
enum lv_client_timer {
    LV_CT_NONE,
    LV_CT_IDLE,      /* keep-alive between requests (timeouts.idle): close quietly */
    LV_CT_HEADER,    /* from a head's first byte (timeouts.client_header, total): 408 */
    LV_CT_BODY,      /* between two reads of a body (timeouts.client_body): 408 */
    LV_CT_SEND,      /* the client does not read what levee writes (timeouts.idle) */
    LV_CT_LINGER,    /* lingering before the close */
    LV_CT_HANDSHAKE, /* the TLS handshake (tls.handshake_timeout) */
};

/* What a connection needs only while a request is read: the parser (about
 * 200 bytes). An idle keep-alive connection holds none; it is taken from
 * the worker's free list (wctx.free_creqs) when a request's first bytes
 * arrive and given back when the connection is idle again. */
struct lv_client_req {
    struct lv_http_parser parser;
    struct lv_client_req *next_free; /* in the worker's free list */
};

struct lv_client {
    struct lv_sock sock;
    struct lv_wheel_timer timer; /* on the worker's wheel (net/sock.h) */
    struct lv_client_req *rq;    /* while a request is parsed or answered, else NULL */
    struct lv_wctx *w;
    struct lv_list link; /* in the worker's list: the worker's to touch */
    void (*on_freed)(struct lv_client *c);
    struct lv_exchange *ex; /* the request under way */
    struct lv_h2conn *h2;   /* in H2: the HTTP/2 connection (issue 17) */
    struct lv_buf *pending; /* read, not yet parsed (the next pipelined request) */
    uint32_t pending_off, pending_len;
    /* A byte each (issue 14: the struct is what an idle connection costs). */
    enum lv_client_state state : 8;
    enum lv_client_timer timer_mode : 8;
    enum lv_framing resp_framing : 8; /* of the answer being written */
    int handles_open;
    uint32_t nrequests;
    bool http10;         /* the request under way is HTTP/1.0 */
    bool close_after;    /* the connection ends after the answer being written */
    bool in_process;     /* process() is on the stack: work is picked up on the way out */
    bool upgrade_paused; /* llhttp stopped after an upgrade request */
    bool parse_failed;   /* no more requests on this connection */
    bool paused;         /* flow: not reading, the request body waits for a backend */
    bool write_blocked;  /* flow: answers unwritten past the bound */
    bool peer_closed;    /* flow: the client shut its side; its answer is still written */
    bool h2_prior;       /* cleartext HTTP/2 with prior knowledge is accepted */
    char ip[48];
};

/* Takes over fd, a connection accepted from a listener (starting TLS with
 * ctx when not NULL; ALPN "h2" makes it HTTP/2). h2_prior: a cleartext
 * connection that opens with the HTTP/2 preface speaks HTTP/2. on_freed is called when the client's
 * memory is freed (after its socket closed). NULL when it could not be set up: fd is then closed.
 */
struct lv_client *lv_client_accept(struct lv_wctx *w, int fd, SSL_CTX *tls, uint64_t handshake_ms,
                                   bool h2_prior, void (*on_freed)(struct lv_client *c));

/* Frees the worker's spare request parts (at the worker's end). */
void lv_client_free_list(struct lv_wctx *w);

/* Shutdown: close at once if idle, else after the current answer. */
void lv_client_drain(struct lv_client *c);
/* Close now, whatever is in flight. */
void lv_client_abort(struct lv_client *c);

#endif
