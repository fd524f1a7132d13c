/*
 * Listening sockets. Each worker opens its own socket on every listen
 * address with SO_REUSEPORT, so the kernel spreads connections across
 * workers and no accept lock is needed; or it adopts sockets this process
 * inherited (net/inherit.h: systemd's, or the previous levee's in an
 * upgrade). Every listening socket open in the process is on one list, so
 * that an upgrade can hand them all to the next process
 * (lv_listener_export).
 *
 * The acceptor owns the accept loop instead of uv_listen: libuv accepts in
 * a loop inside its own handler and, when accept(2) fails with EMFILE, it
 * calls back with the error and tries again at once, forever if its
 * reserved descriptor was taken by another thread (the "EMFILE trick" is
 * per loop, descriptors are per process): a worker then spins at 100% CPU
 * and never returns to its loop to close anything. When the trick works it
 * accepts and closes every waiting connection, and a listening uv_tcp_t
 * cannot be paused short of closing it. So the acceptor polls the socket
 * (uv_poll_t), accepts with accept4(2) itself and hands each descriptor to
 * its owner (who wraps it with uv_tcp_open); it asks its owner before each
 * accept whether there is room for one more connection, and:
 *
 *   RUNNING ──owner says no room──► PAUSED_FULL ──lv_acceptor_resume──► RUNNING
 *      │                                 (socket not polled: new connections
 *      │                                  wait in the kernel's backlog)
 *      └──accept fails (EMFILE...)──► BACKOFF ──timer (100 ms, doubling to
 *                                                1 s while it keeps failing)──► RUNNING
 *
 * It never spins: after a failure nothing is tried before the timer fires.
 */
#ifndef LV_NET_LISTENER_H
#define LV_NET_LISTENER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "net/tls.h"

/* A listen address of the configuration (`listen:`, `admin.listen`). */
struct lv_listen_cfg {
    char *address; /* as written, for messages */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool tls_enabled;
    bool http2; /* HTTP/2: ALPN h2 with TLS, the preface (prior knowledge) without */
    struct lv_tls_listen_cfg tls;
    SSL_CTX *tls_ctx; /* built when the file is loaded */
};

/* Frees what l holds (strings, certificates' names, the TLS context) and
 * zeroes it. */
void lv_listen_cfg_dispose(struct lv_listen_cfg *l);

/* Checks that addr can be bound (used before starting workers, so that a
 * busy port is reported once, clearly). An address this process inherited
 * a socket for (net/inherit.h) passes: it is ours already. */
int lv_listener_probe(const struct sockaddr *addr);

/*
 * Every listening socket open in the process (all workers', the admin
 * listener's), each once however many descriptors share it: writes a new
 * descriptor (close-on-exec; the caller closes it) of each to fds, at most
 * max. Returns how many, or a negative errno-style code (none written).
 * Any thread.
 */
int lv_listener_export(int *fds, size_t max);

/* --- the acceptor ----------------------------------------------------------------- */

#define LV_ACCEPT_BACKOFF_MIN_MS 100u
#define LV_ACCEPT_BACKOFF_MAX_MS 1000u
/* Connections accepted per wakeup at most, so that one busy listener does
 * not starve the connections its worker already has (the socket is polled
 * level-triggered: the rest come on the next turn of the loop). */
#define LV_ACCEPT_BATCH 64

struct lv_acceptor;

/* What the acceptor asks and tells its owner. Called on the loop's thread,
 * from the acceptor's poll or timer callback (never from inside an
 * lv_acceptor_* call). */
struct lv_acceptor_ops {
    /* Room for one more connection? true reserves it (the next call is
     * accepted or unreserve); false pauses the acceptor until
     * lv_acceptor_resume. NULL: always room. */
    bool (*reserve)(struct lv_acceptor *a);
    /* The reserved room was not used (no connection was waiting). */
    void (*unreserve)(struct lv_acceptor *a);
    /* A new connection: fd is non-blocking and close-on-exec, and it and
     * the reserved room now belong to the owner. */
    void (*accepted)(struct lv_acceptor *a, int fd);
    /* accept(2) failed with err (a libuv error code, e.g. UV_EMFILE); the
     * acceptor waits backoff_ms before it tries again. */
    void (*failed)(struct lv_acceptor *a, int err, uint64_t backoff_ms);
};

enum lv_acceptor_state {
    LV_ACCEPTOR_RUNNING,
    LV_ACCEPTOR_PAUSED_FULL,
    LV_ACCEPTOR_BACKOFF,
    LV_ACCEPTOR_CLOSING,
};

struct lv_acceptor {
    uv_poll_t poll;
    uv_timer_t timer;
    int fd;
    enum lv_acceptor_state state;
    uint64_t backoff_ms; /* the next back-off's length */
    int handles_open;
    const struct lv_acceptor_ops *ops;
    void (*on_close)(struct lv_acceptor *a);
    void *data; /* the owner's */
};

/*
 * Opens a socket on addr (SO_REUSEADDR + SO_REUSEPORT), listens with the
 * given backlog and starts accepting on loop. `a` is caller-owned memory and must stay valid until
 * its close callback. Returns 0, or a libuv error code (nothing to close
 * then).
 */
int lv_acceptor_open(struct lv_acceptor *a, uv_loop_t *loop, const struct sockaddr *addr,
                     int backlog, const struct lv_acceptor_ops *ops, void *data);

/*
 * The same with a listening socket that exists already (inherited): fd is
 * the acceptor's from now on, even on failure (closed then). Its backlog is
 * what its creator chose.
 */
int lv_acceptor_adopt(struct lv_acceptor *a, uv_loop_t *loop, int fd,
                      const struct lv_acceptor_ops *ops, void *data);

/* After reserve said no: accept again (no-op in any other state). */
void lv_acceptor_resume(struct lv_acceptor *a);

/* Closes the descriptor at once; when it was the socket's last one,
 * connections waiting in its backlog are reset by the kernel (while another
 * process or worker holds the socket, they wait for it). on_close(a) runs
 * when the memory may be freed. Calling it again does nothing. */
void lv_acceptor_close(struct lv_acceptor *a, void (*on_close)(struct lv_acceptor *a));

#endif
