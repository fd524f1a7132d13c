/* SO_REUSEPORT listeners (libuv 1.44 has no flag for it, so the socket is
 * made here), the acceptor that owns their accept loop (see listener.h for
 * why libuv's is not used), and the list of every listening socket open. */
#include "net/listener.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void lv_listen_cfg_dispose(struct lv_listen_cfg *l)
{
    free(l->address);
    for (size_t i = 0; i < l->tls.ncerts; i++) {
        free(l->tls.certs[i].cert);
        free(l->tls.certs[i].key);
    }
    free(l->tls.certs);
    free(l->tls.ciphers);
    free(l->tls.ciphersuites);
    if (l->tls_ctx) SSL_CTX_free(l->tls_ctx);
    memset(l, 0, sizeof(*l));
}

#include "net/inherit.h"

/* --- every listening socket of the process -------------------------------------- */

/* Workers open and close their listeners on their own threads (at start,
 * on reload, on drain) while the main thread may export them: a descriptor
 * leaves the list before it is closed, under the lock, so an export never
 * duplicates a number that was closed or reused. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static int *open_fds;
static size_t nopen, open_cap;

static int register_fd(int fd)
{
    pthread_mutex_lock(&open_lock);
    int rc = 0;
    if (nopen == open_cap) {
        size_t cap = open_cap ? open_cap * 2 : 16;
        int *p = realloc(open_fds, cap * sizeof(*p));
        if (p == NULL) {
            rc = UV_ENOMEM;
        } else {
            open_fds = p;
            open_cap = cap;
        }
    }
    if (rc == 0) open_fds[nopen++] = fd;
    pthread_mutex_unlock(&open_lock);
    return rc;
}

static void unregister_fd(int fd)
{
    pthread_mutex_lock(&open_lock);
    for (size_t i = 0; i < nopen; i++) {
        if (open_fds[i] == fd) {
            open_fds[i] = open_fds[--nopen];
            break;
        }
    }
    if (nopen == 0) {
        /* The last one closed (at exit): nothing left for a leak check. */
        free(open_fds);
        open_fds = NULL;
        open_cap = 0;
    }
    pthread_mutex_unlock(&open_lock);
}

int lv_listener_export(int *fds, size_t max)
{
    /* Workers sharing an inherited socket hold descriptors of the same
     * socket: told apart by the socket's inode. */
    ino_t seen[256];
    size_t nseen = 0;
    int out = 0, err = 0;
    pthread_mutex_lock(&open_lock);
    for (size_t i = 0; i < nopen && (size_t)out < max; i++) {
        struct stat st;
        if (fstat(open_fds[i], &st) != 0) continue;
        bool dup = false;
        for (size_t j = 0; j < nseen; j++)
            dup |= seen[j] == st.st_ino;
        if (dup) continue;
        if (nseen < sizeof(seen) / sizeof(seen[0])) seen[nseen++] = st.st_ino;
        int fd = fcntl(open_fds[i], F_DUPFD_CLOEXEC, 3);
        if (fd < 0) {
            err = -errno;
            break;
        }
        fds[out++] = fd;
    }
    pthread_mutex_unlock(&open_lock);
    if (err) {
        while (out > 0)
            close(fds[--out]);
        return err;
    }
    return out;
}

/* --- making sockets ----------------------------------------------------------------- */

static int make_socket(const struct sockaddr *addr, int reuseport)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (addr->sa_family == AF_INET6) {
        /* "[::]:8080" means IPv6 only; write 0.0.0.0 as well for both. */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    socklen_t len =
        addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, addr, len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int lv_listener_probe(const struct sockaddr *addr)
{
    if (lv_inherit_count(addr) > 0) return 0;
    /* Without SO_REUSEPORT, so that another process already listening there
     * (even another levee) is found rather than silently shared with. */
    int fd = make_socket(addr, 0);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}

/* --- the acceptor ----------------------------------------------------------------- */

static void on_poll(uv_poll_t *p, int status, int events);

/* Errors that belong to the one connection being accepted (Linux reports
 * a new connection's pending network error from accept(2), and says to
 * treat them like EAGAIN): skip it and take the next. */
static bool transient(int e)
{
    switch (e) {
    case EINTR:
    case ECONNABORTED:
    case EPROTO:
    case EPERM: /* a firewall rule refused it */
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
    case ENONET:
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH: return true;
    default: return false;
    }
}

static void start_polling(struct lv_acceptor *a);

static void on_backoff(uv_timer_t *t)
{
    struct lv_acceptor *a = t->data;
    if (a->state != LV_ACCEPTOR_BACKOFF) return;
    start_polling(a);
}

/* Stops accepting for a while: the next try is the timer's, so a failure
 * that persists (no descriptor left) costs one accept(2) per back-off. */
static void back_off(struct lv_acceptor *a, int err)
{
    uv_poll_stop(&a->poll);
    a->state = LV_ACCEPTOR_BACKOFF;
    uint64_t ms = a->backoff_ms;
    a->backoff_ms = ms * 2 < LV_ACCEPT_BACKOFF_MAX_MS ? ms * 2 : LV_ACCEPT_BACKOFF_MAX_MS;
    uv_timer_start(&a->timer, on_backoff, ms, 0);
    if (a->ops->failed) a->ops->failed(a, err, ms);
}

static void start_polling(struct lv_acceptor *a)
{
    a->state = LV_ACCEPTOR_RUNNING;
    if (uv_poll_start(&a->poll, UV_READABLE, on_poll) != 0) {
        /* Not an accept failure (libuv 1.44 cannot fail here): try again
         * later, quietly, and never call back from inside resume/open. */
        a->state = LV_ACCEPTOR_BACKOFF;
        uv_timer_start(&a->timer, on_backoff, a->backoff_ms, 0);
    }
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    (void)events;
    struct lv_acceptor *a = p->data;
    if (a->state != LV_ACCEPTOR_RUNNING) return;
    if (status < 0) {
        back_off(a, status);
        return;
    }
    const struct lv_acceptor_ops *ops = a->ops;
    for (int i = 0; i < LV_ACCEPT_BATCH; i++) {
        if (ops->reserve && !ops->reserve(a)) {
            /* Full: the socket is no longer polled, so new connections
             * wait in the kernel's backlog until the owner has room. */
            if (a->state == LV_ACCEPTOR_RUNNING) {
                uv_poll_stop(&a->poll);
                a->state = LV_ACCEPTOR_PAUSED_FULL;
            }
            return;
        }
        int fd = accept4(a->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            a->backoff_ms = LV_ACCEPT_BACKOFF_MIN_MS;
            ops->accepted(a, fd);
            if (a->state != LV_ACCEPTOR_RUNNING) return; /* closed meanwhile */
            continue;
        }
        int e = errno;
        if (ops->unreserve) ops->unreserve(a);
        if (a->state != LV_ACCEPTOR_RUNNING) return;
        if (e == EAGAIN || e == EWOULDBLOCK) return;
        if (transient(e)) continue;
        back_off(a, -e); /* EMFILE, ENFILE, ENOBUFS, ENOMEM... */
        return;
    }
}

/* Starts accepting on fd, a listening socket that is now the acceptor's. */
static int start(struct lv_acceptor *a, uv_loop_t *loop, int fd)
{
    int rc = register_fd(fd);
    if (rc == 0) {
        rc = uv_poll_init(loop, &a->poll, fd);
        if (rc != 0) unregister_fd(fd);
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    uv_timer_init(loop, &a->timer);
    a->poll.data = a;
    a->timer.data = a;
    a->fd = fd;
    a->handles_open = 2;
    start_polling(a);
    return 0;
}

int lv_acceptor_open(struct lv_acceptor *a, uv_loop_t *loop, const struct sockaddr *addr,
                     int backlog, const struct lv_acceptor_ops *ops, void *data)
{
    memset(a, 0, sizeof(*a));
    a->ops = ops;
    a->data = data;
    a->backoff_ms = LV_ACCEPT_BACKOFF_MIN_MS;
    int fd = make_socket(addr, 1);
    if (fd < 0) return fd;
    if (listen(fd, backlog) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return start(a, loop, fd);
}

int lv_acceptor_adopt(struct lv_acceptor *a, uv_loop_t *loop, int fd,
                      const struct lv_acceptor_ops *ops, void *data)
{
    memset(a, 0, sizeof(*a));
    a->ops = ops;
    a->data = data;
    a->backoff_ms = LV_ACCEPT_BACKOFF_MIN_MS;
    return start(a, loop, fd);
}

void lv_acceptor_resume(struct lv_acceptor *a)
{
    if (a->state == LV_ACCEPTOR_PAUSED_FULL) start_polling(a);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct lv_acceptor *a = h->data;
    if (--a->handles_open > 0) return;
    if (a->on_close) a->on_close(a);
}

void lv_acceptor_close(struct lv_acceptor *a, void (*on_close)(struct lv_acceptor *a))
{
    if (a->state == LV_ACCEPTOR_CLOSING) return;
    a->state = LV_ACCEPTOR_CLOSING;
    a->on_close = on_close;
    uv_close((uv_handle_t *)&a->poll, on_handle_closed);
    uv_close((uv_handle_t *)&a->timer, on_handle_closed);
    /* uv_close stopped the polling: the descriptor can go now, so that the
     * port is free (and its backlog reset) at once, as with a TCP handle. */
    unregister_fd(a->fd);
    close(a->fd);
    a->fd = -1;
}
