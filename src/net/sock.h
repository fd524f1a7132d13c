/*
 * A TCP stream with levee's buffer discipline: reads land in pooled,
 * reference-counted buffers that are returned as soon as nobody holds a
 * slice; writes are batched into one uv_write per event-loop turn and hold
 * references to the buffers they send from, so a body fragment goes from
 * one socket to the other without being copied.
 *
 * The owner embeds struct lv_sock, sets the callbacks and `data`, and frees
 * its memory only in the close callback (libuv's rule: pending writes are
 * completed with an error before the close callback runs).
 *
 * A socket may carry TLS (lv_sock_tls_start): reads then deliver plaintext
 * and writes take plaintext, exactly as for plain TCP; the handshake is
 * reported once through on_handshake.
 */
#ifndef LV_NET_SOCK_H
#define LV_NET_SOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

#include <openssl/ssl.h>

#include "core/buf.h"
#include "core/wheel.h"

struct lv_sock;
struct lv_sockenv;

/* nread > 0: data in b->data[0..nread) (b valid for the call; take a ref to
 * keep it). nread < 0: a libuv error or UV_EOF; b is NULL. */
typedef void (*lv_sock_read_cb)(struct lv_sock *s, struct lv_buf *b, ssize_t nread);
/* A write batch completed (status 0) or failed. write_pending already
 * reflects it. */
typedef void (*lv_sock_written_cb)(struct lv_sock *s, int status);
typedef void (*lv_sock_close_cb)(struct lv_sock *s);
/* The TLS handshake finished (status 0) or failed (a libuv error code;
 * lv_sock_tls_why says why). */
typedef void (*lv_sock_handshake_cb)(struct lv_sock *s, int status);

#define LV_WREQ_IOV 16
#define LV_WREQ_SCRATCH 256

struct lv_wreq {
    uv_write_t req;
    struct lv_sock *sock;
    struct lv_wreq *next;
    unsigned nbufs;
    unsigned nrefs;
    size_t bytes;
    size_t mem; /* what it holds while in flight: itself and its buffers */
    size_t scratch_used;
    uv_buf_t bufs[LV_WREQ_IOV];
    struct lv_buf *refs[LV_WREQ_IOV];
    char scratch[LV_WREQ_SCRATCH];
};

/* Per-worker resources every socket draws from. */
struct lv_sockenv {
    uv_loop_t *loop;
    struct lv_bufpool bufs;
    struct lv_wreq *free_wreqs;
    size_t n_free_wreqs;
    /* TLS sockets whose reading resumed with plaintext already decrypted:
     * delivered from an idle callback, never from inside the caller. */
    uv_idle_t idle;
    bool idle_open;
    struct lv_sock *resumed;
    /* Sockets whose batch is written before the loop next waits for events
     * (lv_sock_flush_soon), from a prepare callback: one write each for
     * everything queued by the callbacks of a loop turn, I/O and timers
     * alike (a check callback would leave a timer's writes waiting until
     * the next event wakes the loop). */
    uv_prepare_t flush;
    struct lv_sock *flush_list;
    /* Writes that went out at once (uv_try_write): their completion is
     * reported from the same prepare callback, never from inside the call
     * that wrote them. No uv_write, so libuv does not re-arm the fd
     * (epoll_ctl) to drain it. First in, first reported. */
    struct lv_wreq *done_head, *done_tail;
    /* The connections' coarse timers (lv_sockenv_timer_start): one wheel,
     * one libuv timer armed for its earliest slot. */
    struct lv_wheel wheel;
    uv_timer_t wheel_timer;
    uint64_t wheel_armed; /* when wheel_timer fires; UINT64_MAX: not armed */
    int handles_open;
    uv_close_cb closed_cb;
};

struct lv_sock {
    uv_tcp_t tcp;
    struct lv_sockenv *env;
    void *data;
    lv_sock_read_cb on_read;
    lv_sock_written_cb on_written;
    lv_sock_close_cb on_close;
    struct lv_wreq *batch;   /* being filled, not yet written */
    size_t write_pending;    /* bytes handed to uv_write, not yet completed */
    size_t write_mem;        /* memory those writes hold: requests and buffers (capacity) */
    unsigned writes_pending; /* write requests in flight (each holds its buffers) */
    bool reading;
    bool closing;
    bool write_error;
    /* TLS */
    SSL *ssl;         /* NULL: plain TCP */
    bool tls_ready;   /* handshake done */
    bool tls_resumed; /* in env->resumed */
    struct lv_sock *next_resumed;
    bool flush_queued; /* in env->flush_list */
    struct lv_sock *next_flush;
    lv_sock_handshake_cb on_handshake;
    char *tls_why; /* why TLS failed: NULL, or LV_SOCK_WHY bytes of the heap (freed with the
                    * socket): an idle connection does not carry the room for it */
};

void lv_sockenv_init(struct lv_sockenv *env, uv_loop_t *loop);
/* Closes the env's own handles: call before the loop's last run; cb (may
 * be NULL) runs when they are closed, with &env->idle. */
void lv_sockenv_close(struct lv_sockenv *env, uv_close_cb cb);
/* Frees the pools (after the loop has ended). */
void lv_sockenv_dispose(struct lv_sockenv *env);

/*
 * A connection's timeout on the worker's timer wheel (core/wheel.h): t->cb
 * runs from the loop ms milliseconds from the loop's time (uv_now), or up to
 * LV_WHEEL_TICK later; never from inside these calls. Starting a pending
 * timer moves it. Both are a few pointer writes: no libuv timer operation
 * unless the wheel's earliest slot becomes earlier. The timer needs no
 * closing: stop it before its memory goes.
 */
void lv_sockenv_timer_start(struct lv_sockenv *env, struct lv_wheel_timer *t, uint64_t ms);
void lv_sockenv_timer_stop(struct lv_sockenv *env, struct lv_wheel_timer *t);

#define LV_SOCK_WHY 128

/* Why the TLS handshake or a record failed ("" when nothing was said); valid
 * until the socket's close callback has run. */
static inline const char *lv_sock_tls_why(const struct lv_sock *s)
{
    return s->tls_why ? s->tls_why : "";
}

/* Initializes the handle (uv_tcp_init). Returns 0 or a libuv error. */
int lv_sock_init(struct lv_sockenv *env, struct lv_sock *s);

int lv_sock_read_start(struct lv_sock *s);
void lv_sock_read_stop(struct lv_sock *s);

/* Queues len bytes at p into the current batch. ref: the buffer p points
 * into (a reference is taken), or NULL for static memory. Returns 0 or
 * UV_ENOMEM. */
int lv_sock_add(struct lv_sock *s, const char *p, size_t len, struct lv_buf *ref);
/* Queues a copy of len bytes (small: framing, short heads, small pieces of
 * a body): into the batch's scratch space when it fits, else into a buffer
 * of exactly len bytes. */
int lv_sock_add_copy(struct lv_sock *s, const char *p, size_t len);
/* How much this socket has waiting to be written, for flow control: the
 * bytes, or the memory they hold, whichever is larger (a stream of small
 * writes holds far more than its bytes: a request each, and buffers). */
static inline size_t lv_sock_queued(const struct lv_sock *s)
{
    return s->write_mem > s->write_pending ? s->write_mem : s->write_pending;
}

/* Backpressure of a connection that answers requests one after another
 * (the proxy's clients, the admin port): the next request is read only
 * while fewer answers than LV_SOCK_BACKLOG_WRITES and no more than
 * LV_SOCK_BACKLOG_BYTES (bytes, or the memory they hold: lv_sock_queued)
 * wait to be written, so that a client that
 * pipelines requests and reads nothing holds a bounded amount of memory. */
#define LV_SOCK_BACKLOG_WRITES 8
#define LV_SOCK_BACKLOG_BYTES (64 * 1024)

/* Past either bound: stop reading until on_written says it drained. */
static inline bool lv_sock_backlogged(const struct lv_sock *s)
{
    return s->writes_pending >= LV_SOCK_BACKLOG_WRITES || lv_sock_queued(s) > LV_SOCK_BACKLOG_BYTES;
}

/* Writes the current batch, if any. Returns 0 or a libuv error. What the
 * kernel takes at once is written before this returns (only the rest waits
 * for the socket to be writable); on_written follows from the loop, never
 * from inside this call, and write_pending and its kin count the batch as
 * in flight until then. */
int lv_sock_flush(struct lv_sock *s);
/* Writes the current batch before the loop next waits for events (after
 * every callback of the turn has run), so that pieces queued by several
 * callbacks go out in one write. */
void lv_sock_flush_soon(struct lv_sock *s);

/* Flushes, then shuts the write side down once everything is written; cb
 * runs after that (status 0 or an error). */
int lv_sock_shutdown(struct lv_sock *s, void (*cb)(struct lv_sock *s, int status));

/* Closes; on_close runs when the handle is released. Idempotent. */
void lv_sock_close(struct lv_sock *s);

/*
 * Starts TLS on a connected socket: as a server (client == false) or as a
 * client sending SNI `sni` (NULL: none) and verifying the certificate for
 * `verify_name` (a host name or an IP address; NULL: no name check). Reading
 * must be started; on_handshake follows (never before this returns).
 * `app` is stored with SSL_set_app_data; a client offers `resume` (a
 * session of an earlier connection; may be NULL). Returns 0 or UV_ENOMEM.
 */
int lv_sock_tls_start(struct lv_sock *s, SSL_CTX *ctx, bool client, const char *sni,
                      const char *verify_name, void *app, SSL_SESSION *resume);

#endif
