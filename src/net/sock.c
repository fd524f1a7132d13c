/*
 * The stream layer: pooled read buffers, batched zero-copy writes.
 */
#include "net/sock.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define MAX_FREE_WREQS 256

void lv_sockenv_init(struct lv_sockenv *env, uv_loop_t *loop)
{
    memset(env, 0, sizeof(*env));
    env->loop = loop;
    lv_bufpool_init(&env->bufs, 512);
}

void lv_sockenv_dispose(struct lv_sockenv *env)
{
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
    return rc;
}

void lv_sock_read_stop(struct lv_sock *s)
{
    if (!s->reading) return;
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->reading = false;
}

static void on_uv_write(uv_write_t *req, int status)
{
    struct lv_wreq *w = (struct lv_wreq *)req;
    struct lv_sock *s = w->sock;
    s->write_pending -= w->bytes;
    if (status < 0) s->write_error = true;
    wreq_put(s->env, w);
    if (s->on_written && !s->closing) s->on_written(s, status);
}

int lv_sock_flush(struct lv_sock *s)
{
    struct lv_wreq *w = s->batch;
    if (w == NULL) return 0;
    s->batch = NULL;
    if (w->nbufs == 0 || s->closing) {
        wreq_put(s->env, w);
        return s->closing ? UV_ECANCELED : 0;
    }
    s->write_pending += w->bytes;
    int rc = uv_write(&w->req, (uv_stream_t *)&s->tcp, w->bufs, w->nbufs, on_uv_write);
    if (rc < 0) {
        s->write_pending -= w->bytes;
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
    struct lv_buf *b = lv_buf_get_size(&s->env->bufs, len);
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

int lv_sock_shutdown(struct lv_sock *s, void (*cb)(struct lv_sock *s, int status))
{
    lv_sock_flush(s);
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
    if (s->on_close) s->on_close(s);
}

void lv_sock_close(struct lv_sock *s)
{
    if (s->closing) return;
    s->closing = true;
    s->reading = false;
    if (s->batch) {
        wreq_put(s->env, s->batch);
        s->batch = NULL;
    }
    uv_close((uv_handle_t *)&s->tcp, on_uv_close);
}

void lv_sock_set_abortive(struct lv_sock *s)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&s->tcp, &fd) != 0) return;
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
}
