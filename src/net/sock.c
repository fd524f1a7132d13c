/*
 * The stream layer: pooled read buffers, batched zero-copy writes.
 */
#include "net/sock.h"

#include <arpa/inet.h>
#include <assert.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/tls.h"

#define MAX_FREE_WREQS 256

static void tls_input(struct lv_sock *s, const char *data, size_t len);

/* Says why TLS failed (lv_sock_tls_why); room for it only then. */
__attribute__((format(printf, 2, 3))) static void set_why(struct lv_sock *s, const char *fmt, ...)
{
    if (s->tls_why == NULL && (s->tls_why = malloc(LV_SOCK_WHY)) == NULL) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->tls_why, LV_SOCK_WHY, fmt, ap);
    va_end(ap);
}

/* Delivers plaintext a TLS socket decrypted before its reader paused. */
static void on_idle(uv_idle_t *h)
{
    struct lv_sockenv *env = h->data;
    struct lv_sock *list = env->resumed;
    env->resumed = NULL;
    uv_idle_stop(&env->idle);
    while (list) {
        struct lv_sock *s = list;
        list = s->next_resumed;
        s->tls_resumed = false;
        s->next_resumed = NULL;
        if (!s->closing && s->reading) tls_input(s, NULL, 0);
    }
}

static void on_uv_write(uv_write_t *req, int status);

/* Writes the batches queued with lv_sock_flush_soon and reports the writes
 * that went out at once; until both lists are empty, since a completion
 * may queue another batch (the loop would not come back here before it
 * waits for events). */
static void on_prepare(uv_prepare_t *h)
{
    struct lv_sockenv *env = h->data;
    uv_prepare_stop(&env->flush);
    while (env->flush_list || env->done_head) {
        struct lv_sock *list = env->flush_list;
        env->flush_list = NULL;
        while (list) {
            struct lv_sock *s = list;
            list = s->next_flush;
            s->flush_queued = false;
            s->next_flush = NULL;
            if (!s->closing) lv_sock_flush(s);
        }
        struct lv_wreq *done = env->done_head;
        env->done_head = env->done_tail = NULL;
        while (done) {
            struct lv_wreq *w = done;
            done = w->next;
            w->next = NULL;
            on_uv_write(&w->req, 0);
        }
    }
}

/* --- timers ---------------------------------------------------------------------------- */

static void on_wheel(uv_timer_t *h);

/* Arms the libuv timer for `when` if that is earlier than it is armed for. */
static void wheel_arm(struct lv_sockenv *env, uint64_t when)
{
    if (when >= env->wheel_armed || !env->idle_open) return;
    uint64_t now = uv_now(env->loop);
    env->wheel_armed = when;
    uv_timer_start(&env->wheel_timer, on_wheel, when > now ? when - now : 0, 0);
}

static void on_wheel(uv_timer_t *h)
{
    struct lv_sockenv *env = h->data;
    env->wheel_armed = UINT64_MAX;
    uint64_t now = uv_now(env->loop);
    for (struct lv_wheel_timer *t; (t = lv_wheel_expire(&env->wheel, now));)
        t->cb(t);
    uint64_t next = lv_wheel_next(&env->wheel);
    if (next != UINT64_MAX) wheel_arm(env, next);
}

void lv_sockenv_timer_start(struct lv_sockenv *env, struct lv_wheel_timer *t, uint64_t ms)
{
    uint64_t deadline = uv_now(env->loop) + ms;
    lv_wheel_start(&env->wheel, t, deadline);
    /* The end of its slot: what lv_wheel_next would say if it were the
     * earliest (a deadline already due sits in the current slot). */
    uint64_t tick = deadline / LV_WHEEL_TICK;
    if (tick < env->wheel.cur) tick = env->wheel.cur;
    wheel_arm(env, (tick + 1) * LV_WHEEL_TICK);
}

void lv_sockenv_timer_stop(struct lv_sockenv *env, struct lv_wheel_timer *t)
{
    lv_wheel_stop(&env->wheel, t); /* the libuv timer may then wake for nothing: once */
}

/* --- the env ----------------------------------------------------------------------------- */

void lv_sockenv_init(struct lv_sockenv *env, uv_loop_t *loop)
{
    memset(env, 0, sizeof(*env));
    env->loop = loop;
    lv_bufpool_init(&env->bufs, 512);
    uv_idle_init(loop, &env->idle);
    env->idle.data = env;
    uv_prepare_init(loop, &env->flush);
    env->flush.data = env;
    lv_wheel_init(&env->wheel, uv_now(loop));
    uv_timer_init(loop, &env->wheel_timer);
    env->wheel_timer.data = env;
    env->wheel_armed = UINT64_MAX;
    env->idle_open = true;
    env->handles_open = 3;
}

static void on_env_handle_closed(uv_handle_t *h)
{
    struct lv_sockenv *env = h->data;
    if (--env->handles_open > 0) return;
    if (env->closed_cb) env->closed_cb((uv_handle_t *)&env->idle);
}

void lv_sockenv_close(struct lv_sockenv *env, uv_close_cb cb)
{
    if (!env->idle_open) return;
    env->idle_open = false;
    env->closed_cb = cb;
    uv_close((uv_handle_t *)&env->idle, on_env_handle_closed);
    uv_close((uv_handle_t *)&env->flush, on_env_handle_closed);
    uv_close((uv_handle_t *)&env->wheel_timer, on_env_handle_closed);
}

void lv_sock_flush_soon(struct lv_sock *s)
{
    struct lv_sockenv *env = s->env;
    if (s->flush_queued || s->closing || s->batch == NULL) return;
    if (!env->idle_open) { /* the env is closing: no turn to wait for */
        lv_sock_flush(s);
        return;
    }
    s->flush_queued = true;
    s->next_flush = env->flush_list;
    env->flush_list = s;
    if (!uv_is_active((uv_handle_t *)&env->flush)) uv_prepare_start(&env->flush, on_prepare);
}

void lv_sockenv_dispose(struct lv_sockenv *env)
{
    assert(env->done_head == NULL); /* taken off by lv_sock_close */
    while (env->free_wreqs) {
        struct lv_wreq *w = env->free_wreqs;
        env->free_wreqs = w->next;
        free(w);
    }
    lv_bufpool_dispose(&env->bufs);
}

static struct lv_wreq *wreq_get(struct lv_sock *s)
{
    struct lv_sockenv *env = s->env;
    struct lv_wreq *w = env->free_wreqs;
    if (w) {
        env->free_wreqs = w->next;
        env->n_free_wreqs--;
    } else {
        w = malloc(sizeof(*w));
        if (w == NULL) return NULL;
    }
    w->sock = s;
    w->next = NULL;
    w->nbufs = 0;
    w->nrefs = 0;
    w->bytes = 0;
    w->scratch_used = 0;
    return w;
}

static void wreq_put(struct lv_sockenv *env, struct lv_wreq *w)
{
    for (unsigned i = 0; i < w->nrefs; i++)
        lv_buf_unref(w->refs[i]);
    w->nrefs = 0;
    if (env->n_free_wreqs >= MAX_FREE_WREQS) {
        free(w);
        return;
    }
    w->next = env->free_wreqs;
    env->free_wreqs = w;
    env->n_free_wreqs++;
}

int lv_sock_init(struct lv_sockenv *env, struct lv_sock *s)
{
    memset(s, 0, sizeof(*s));
    s->env = env;
    s->tcp.data = s;
    return uv_tcp_init(env->loop, &s->tcp);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *out)
{
    (void)hint;
    struct lv_sock *s = h->data;
    struct lv_buf *b = lv_buf_get(&s->env->bufs);
    if (b == NULL) {
        *out = uv_buf_init(NULL, 0);
        return;
    }
    *out = uv_buf_init(b->data, b->cap);
}

static void on_uv_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *ub)
{
    struct lv_sock *s = st->data;
    struct lv_buf *b = ub->base ? lv_buf_of(ub->base) : NULL;
    if (nread == 0) { /* EAGAIN: nothing read */
        if (b) lv_buf_unref(b);
        return;
    }
    if (s->ssl) {
        if (nread > 0) tls_input(s, b->data, (size_t)nread);
        if (b) lv_buf_unref(b);
        if (nread < 0) {
            if (!s->tls_ready && s->on_handshake) {
                set_why(s, "connection closed during the handshake");
                s->on_handshake(s, (int)nread);
            } else {
                s->on_read(s, NULL, nread);
            }
        }
        return;
    }
    if (nread < 0) {
        if (b) lv_buf_unref(b);
        if (nread == UV_ENOBUFS) nread = UV_ENOMEM;
        s->on_read(s, NULL, nread);
        return;
    }
    b->len = (uint32_t)nread;
    s->on_read(s, b, nread);
    lv_buf_unref(b);
}

int lv_sock_read_start(struct lv_sock *s)
{
    if (s->reading || s->closing) return 0;
    int rc = uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_uv_read);
    if (rc == 0) s->reading = true;
    /* Plaintext decrypted before the pause waits inside OpenSSL, and the
     * socket may never become readable again for it. */
    if (rc == 0 && s->ssl && s->tls_ready && !s->tls_resumed &&
        (SSL_pending(s->ssl) > 0 || BIO_ctrl_pending(SSL_get_rbio(s->ssl)) > 0)) {
        struct lv_sockenv *env = s->env;
        s->tls_resumed = true;
        s->next_resumed = env->resumed;
        env->resumed = s;
        if (env->idle_open) uv_idle_start(&env->idle, on_idle);
    }
    return rc;
}

void lv_sock_read_stop(struct lv_sock *s)
{
    if (!s->reading) return;
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = false;
}

/* The memory a write request holds until it completes: itself and each
 * buffer it references (counted once, in full: the buffer stays alive for
 * the sake of a few bytes). */
static size_t wreq_mem(const struct lv_wreq *w)
{
    size_t mem = sizeof(*w);
    for (unsigned i = 0; i < w->nrefs; i++) {
        unsigned k = 0;
        while (k < i && w->refs[k] != w->refs[i])
            k++;
        if (k == i) mem += w->refs[i]->cap;
    }
    return mem;
}

/* Hands w to libuv; the socket's counters follow it until on_uv_write. */
static int wreq_write(struct lv_sock *s, struct lv_wreq *w);

static void on_uv_write(uv_write_t *req, int status)
{
    struct lv_wreq *w = (struct lv_wreq *)req;
    struct lv_sock *s = w->sock;
    s->write_pending -= w->bytes;
    s->write_mem -= w->mem;
    s->writes_pending--;
    if (status < 0) s->write_error = true;
    wreq_put(s->env, w);
    if (s->on_written && !s->closing) s->on_written(s, status);
}

static int tls_flush(struct lv_sock *s);

int lv_sock_flush(struct lv_sock *s)
{
    if (s->ssl) return tls_flush(s);
    struct lv_wreq *w = s->batch;
    if (w == NULL) return 0;
    s->batch = NULL;
    if (w->nbufs == 0 || s->closing) {
        wreq_put(s->env, w);
        return s->closing ? UV_ECANCELED : 0;
    }
    return wreq_write(s, w);
}

/* Writes what the kernel takes now (libuv's uv_write would too, but then
 * re-arm the fd to drain its queue: an epoll_ctl per write). Returns true
 * when all of w went: it waits on the env's done list for its report. Else
 * w's buffers are advanced past what went, for uv_write to send the rest. */
static bool try_write(struct lv_sock *s, struct lv_wreq *w)
{
    struct lv_sockenv *env = s->env;
    if (!env->idle_open) return false; /* no turn left to report it from */
    int n = uv_try_write((uv_stream_t *)&s->tcp, w->bufs, w->nbufs);
    if (n <= 0) return false; /* EAGAIN, or an error uv_write reports */
    size_t left = (size_t)n;
    if (left == w->bytes) {
        w->next = NULL;
        if (env->done_tail)
            env->done_tail->next = w;
        else
            env->done_head = w;
        env->done_tail = w;
        if (!uv_is_active((uv_handle_t *)&env->flush)) uv_prepare_start(&env->flush, on_prepare);
        return true;
    }
    unsigned i = 0;
    while (left >= w->bufs[i].len) {
        left -= w->bufs[i].len;
        i++;
    }
    w->bufs[i].base += left;
    w->bufs[i].len -= left;
    memmove(w->bufs, w->bufs + i, (w->nbufs - i) * sizeof(w->bufs[0]));
    w->nbufs -= i;
    return false;
}

static int wreq_write(struct lv_sock *s, struct lv_wreq *w)
{
    w->mem = wreq_mem(w);
    s->write_pending += w->bytes;
    s->write_mem += w->mem;
    s->writes_pending++;
    if (try_write(s, w)) return 0;
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, w->bufs, w->nbufs, on_uv_write);
    if (rc < 0) {
        s->write_pending -= w->bytes;
        s->write_mem -= w->mem;
        s->writes_pending--;
        s->write_error = true;
        wreq_put(s->env, w);
    }
    return rc;
}

static struct lv_wreq *batch_with_room(struct lv_sock *s, bool need_ref)
{
    struct lv_wreq *w = s->batch;
    if (w && (w->nbufs == LV_WREQ_IOV || (need_ref && w->nrefs == LV_WREQ_IOV))) {
        if (lv_sock_flush(s) < 0) return NULL;
        w = NULL;
    }
    if (w == NULL) {
        w = wreq_get(s);
        s->batch = w;
    }
    return w;
}

int lv_sock_add(struct lv_sock *s, const char *p, size_t len, struct lv_buf *ref)
{
    if (len == 0) return 0;
    struct lv_wreq *w = batch_with_room(s, ref != NULL);
    if (w == NULL) return UV_ENOMEM;
    /* Adjacent slices of the same buffer merge into one iovec. */
    if (w->nbufs > 0) {
        uv_buf_t *last = &w->bufs[w->nbufs - 1];
        if (last->base + last->len == p &&
            (ref == NULL || (w->nrefs > 0 && w->refs[w->nrefs - 1] == ref))) {
            last->len += len;
            w->bytes += len;
            return 0;
        }
    }
    w->bufs[w->nbufs++] = uv_buf_init((char *)p, (unsigned)len);
    w->bytes += len;
    if (ref) w->refs[w->nrefs++] = lv_buf_ref(ref);
    return 0;
}

int lv_sock_add_copy(struct lv_sock *s, const char *p, size_t len)
{
    if (len == 0) return 0;
    struct lv_wreq *w = batch_with_room(s, false);
    if (w == NULL) return UV_ENOMEM;
    if (len <= LV_WREQ_SCRATCH - w->scratch_used) {
        char *dst = w->scratch + w->scratch_used;
        memcpy(dst, p, len);
        w->scratch_used += len;
        return lv_sock_add(s, dst, len, NULL);
    }
    struct lv_buf *b = lv_buf_get_exact(&s->env->bufs, len);
    if (b == NULL) return UV_ENOMEM;
    lv_buf_append(b, p, len);
    int rc = lv_sock_add(s, b->data, len, b);
    lv_buf_unref(b);
    return rc;
}

struct shutdown_req {
    uv_shutdown_t req;
    void (*cb)(struct lv_sock *s, int status);
};

static void on_uv_shutdown(uv_shutdown_t *req, int status)
{
    struct shutdown_req *sr = (struct shutdown_req *)req;
    struct lv_sock *s = req->handle->data;
    void (*cb)(struct lv_sock *, int) = sr->cb;
    free(sr);
    if (cb) cb(s, status);
}

static void tls_output(struct lv_sock *s);

int lv_sock_shutdown(struct lv_sock *s, void (*cb)(struct lv_sock *s, int status))
{
    lv_sock_flush(s);
    if (s->ssl && s->tls_ready) {
        SSL_shutdown(s->ssl); /* close_notify: the peer can tell a cut from an end */
        tls_output(s);
    }
    struct shutdown_req *sr = malloc(sizeof(*sr));
    if (sr == NULL) return UV_ENOMEM;
    sr->cb = cb;
    int rc = uv_shutdown(&sr->req, (uv_stream_t *)&s->tcp, on_uv_shutdown);
    if (rc < 0) free(sr);
    return rc;
}

static void on_uv_close(uv_handle_t *h)
{
    struct lv_sock *s = h->data;
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    free(s->tls_why);
    s->tls_why = NULL;
    if (s->on_close) s->on_close(s);
}

void lv_sock_close(struct lv_sock *s)
{
    if (s->closing) return;
    s->closing = true;
    s->reading = false;
    if (s->flush_queued) { /* take it off the env's flush list */
        struct lv_sock **pp = &s->env->flush_list;
        while (*pp && *pp != s)
            pp = &(*pp)->next_flush;
        if (*pp) *pp = s->next_flush;
        s->flush_queued = false;
    }
    if (s->tls_resumed) { /* take it off the env's list */
        struct lv_sock **pp = &s->env->resumed;
        while (*pp && *pp != s)
            pp = &(*pp)->next_resumed;
        if (*pp) *pp = s->next_resumed;
        s->tls_resumed = false;
    }
    if (s->batch) {
        wreq_put(s->env, s->batch);
        s->batch = NULL;
    }
    /* Writes that went out at once and wait for their report: the report
     * never comes to a closing socket (as libuv's ECANCELED does not). */
    struct lv_wreq **pp = &s->env->done_head, *last = NULL;
    while (*pp) {
        struct lv_wreq *w = *pp;
        if (w->sock != s) {
            last = w;
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        s->write_pending -= w->bytes;
        s->write_mem -= w->mem;
        s->writes_pending--;
        wreq_put(s->env, w);
    }
    s->env->done_tail = last;
    uv_close((uv_handle_t *)&s->tcp, on_uv_close);
}

/* --- TLS ------------------------------------------------------------------------------- */

/* Hands whatever OpenSSL wrote (ciphertext) to the socket. */
static void tls_output(struct lv_sock *s)
{
    BIO *wbio = SSL_get_wbio(s->ssl);
    size_t pending;
    while ((pending = BIO_ctrl_pending(wbio)) > 0) {
        /* Sized to the ciphertext: a small record waiting for a slow peer
         * must not keep a whole LV_BUF_SIZE buffer. */
        size_t size = pending < LV_BUF_SIZE ? pending : LV_BUF_SIZE;
        struct lv_buf *b = lv_buf_get_exact(&s->env->bufs, size);
        if (b == NULL) {
            s->write_error = true;
            return;
        }
        int n = BIO_read(wbio, b->data, (int)b->cap);
        if (n <= 0) {
            lv_buf_unref(b);
            return;
        }
        b->len = (uint32_t)n;
        struct lv_wreq *w = wreq_get(s);
        if (w == NULL) {
            lv_buf_unref(b);
            s->write_error = true;
            return;
        }
        w->bufs[0] = uv_buf_init(b->data, (unsigned)n);
        w->nbufs = 1;
        w->refs[0] = b; /* the reference moves to the request */
        w->nrefs = 1;
        w->bytes = (size_t)n;
        if (wreq_write(s, w) < 0) return;
    }
}

/* Encrypts the pending batch (plaintext is copied in: its buffers go back
 * at once) and writes the ciphertext. */
static int tls_flush(struct lv_sock *s)
{
    struct lv_wreq *w = s->batch;
    if (w == NULL || !s->tls_ready) return 0; /* held until the handshake is done */
    s->batch = NULL;
    int rc = 0;
    for (unsigned i = 0; i < w->nbufs && !s->closing; i++) {
        if (w->bufs[i].len == 0) continue;
        if (SSL_write(s->ssl, w->bufs[i].base, (int)w->bufs[i].len) <= 0) {
            ERR_clear_error();
            s->write_error = true;
            rc = UV_EPROTO;
            break;
        }
    }
    wreq_put(s->env, w);
    if (!s->closing) tls_output(s);
    return rc;
}

static void handshake_failed(struct lv_sock *s, int ssl_err)
{
    if (lv_sock_tls_why(s)[0] == '\0') {
        long vr = SSL_get_verify_result(s->ssl);
        if (vr != X509_V_OK) {
            set_why(s, "certificate verify failed: %s", X509_verify_cert_error_string(vr));
        } else {
            char e[120];
            set_why(s, "%s",
                    ssl_err == SSL_ERROR_SYSCALL ? "connection lost" : lv_tls_error(e, sizeof(e)));
        }
    }
    ERR_clear_error();
    tls_output(s); /* the alert, if any */
    if (s->on_handshake) s->on_handshake(s, UV_EPROTO);
}

/* Ciphertext in (data may be NULL: only drain what OpenSSL holds). */
static void tls_input(struct lv_sock *s, const char *data, size_t len)
{
    if (len > 0 && BIO_write(SSL_get_rbio(s->ssl), data, (int)len) != (int)len) {
        s->on_read(s, NULL, UV_ENOMEM);
        return;
    }
    if (!s->tls_ready) {
        int rc = SSL_do_handshake(s->ssl);
        if (rc != 1) {
            int err = SSL_get_error(s->ssl, rc);
            tls_output(s);
            if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE) handshake_failed(s, err);
            return;
        }
        s->tls_ready = true;
        tls_output(s);
        if (s->on_handshake) s->on_handshake(s, 0);
        if (s->closing) return;
        lv_sock_flush(s); /* whatever was queued while shaking hands */
    }
    while (s->reading && !s->closing) {
        struct lv_buf *b = lv_buf_get(&s->env->bufs);
        if (b == NULL) {
            s->on_read(s, NULL, UV_ENOMEM);
            return;
        }
        int n = SSL_read(s->ssl, b->data, (int)b->cap);
        if (n > 0) {
            b->len = (uint32_t)n;
            s->on_read(s, b, n);
            lv_buf_unref(b);
            continue;
        }
        lv_buf_unref(b);
        int err = SSL_get_error(s->ssl, n);
        if (err == SSL_ERROR_SSL) { /* an alert from the peer, a bad record: say which */
            char e[120];
            set_why(s, "%s", lv_tls_error(e, sizeof(e)));
        }
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) break;
        s->on_read(s, NULL, err == SSL_ERROR_ZERO_RETURN ? UV_EOF : UV_EPROTO);
        return;
    }
    if (!s->closing) tls_output(s); /* tickets, key updates, alerts */
}

static bool is_ip(const char *name)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, name, tmp) == 1 || inet_pton(AF_INET6, name, tmp) == 1;
}

int lv_sock_tls_start(struct lv_sock *s, SSL_CTX *ctx, bool client, const char *sni,
                      const char *verify_name, void *app, SSL_SESSION *resume)
{
    SSL *ssl = SSL_new(ctx);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    if (ssl == NULL || rbio == NULL || wbio == NULL) {
        SSL_free(ssl);
        BIO_free(rbio);
        BIO_free(wbio);
        return UV_ENOMEM;
    }
    BIO_set_mem_eof_return(rbio, -1);
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_app_data(ssl, app);
    s->ssl = ssl;
    s->tls_ready = false;
    if (s->tls_why) s->tls_why[0] = '\0';
    if (!client) {
        SSL_set_accept_state(ssl);
        return 0;
    }
    SSL_set_connect_state(ssl);
    if (resume) SSL_set_session(ssl, resume);
    if (sni && !is_ip(sni)) SSL_set_tlsext_host_name(ssl, sni);
    if (verify_name) {
        if (is_ip(verify_name))
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), verify_name);
        else
            SSL_set1_host(ssl, verify_name);
    }
    tls_input(s, NULL, 0); /* the ClientHello */
    return 0;
}
