/*
 * Byte tunnels after an upgrade. Each read is handed to the other socket by
 * reference (no copy); flow control and the idle timeout are the same for
 * both directions.
 */
#include "proxy/tunnel.h"

#include <assert.h>

#include "core/log.h"
#include "proxy/flow.h"

static void on_idle(uv_timer_t *timer);

/* Puts the owners' handlers back. */
static void restore(struct lv_tunnel_side *side)
{
    struct lv_sock *s = side->s;
    s->on_read = side->on_read;
    s->on_written = side->on_written;
    s->data = side->data;
}

static void end(struct lv_tunnel *t, const char *why)
{
    if (t->state != LV_TUNNEL_OPEN) return;
    t->state = LV_TUNNEL_ENDED;
    uv_timer_stop(t->timer);
    restore(&t->client);
    restore(&t->backend);
    LV_STAT_ADD(t->stats->tunnels_open, (uint64_t)-1);
    lv_debug("tunnel closed (%s), %llu bytes up, %llu down", why, (unsigned long long)t->up,
             (unsigned long long)t->down);
    t->ops->ended(t->user, why);
}

static void arm(struct lv_tunnel *t)
{
    uv_timer_start(t->timer, on_idle, t->idle_ms, 0);
}

static void on_idle(uv_timer_t *timer)
{
    end(timer->data, "idle timeout");
}

/* Sends n bytes of b from one side to the other; pauses the source when the
 * destination is behind. */
static void relay(struct lv_tunnel_side *from, struct lv_tunnel_side *to, struct lv_buf *b,
                  const char *p, size_t n)
{
    if (n == 0) return;
    lv_sock_add(to->s, p, n, b);
    lv_sock_flush(to->s);
    if (lv_sock_queued(to->s) > LV_FLOW_HIGH && !from->paused) {
        from->paused = true;
        lv_sock_read_stop(from->s);
    }
}

static void resume(struct lv_tunnel_side *src, const struct lv_tunnel_side *dst)
{
    if (src->paused && lv_sock_queued(dst->s) <= LV_FLOW_LOW) {
        src->paused = false;
        lv_sock_read_start(src->s);
    }
}

static void on_client_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct lv_tunnel *t = s->data;
    if (nread < 0) {
        end(t, nread == UV_EOF ? "client closed" : uv_strerror((int)nread));
        return;
    }
    t->up += (uint64_t)nread;
    LV_STAT_ADD(t->stats->tunnel_bytes_up, (uint64_t)nread);
    relay(&t->client, &t->backend, b, b->data, (size_t)nread);
    arm(t);
}

static void on_backend_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct lv_tunnel *t = s->data;
    if (nread < 0) {
        end(t, nread == UV_EOF ? "backend closed" : uv_strerror((int)nread));
        return;
    }
    t->down += (uint64_t)nread;
    LV_STAT_ADD(t->stats->tunnel_bytes_down, (uint64_t)nread);
    relay(&t->backend, &t->client, b, b->data, (size_t)nread);
    arm(t);
}

static void on_client_written(struct lv_sock *s, int status)
{
    struct lv_tunnel *t = s->data;
    if (status < 0) {
        end(t, uv_strerror(status));
        return;
    }
    resume(&t->backend, &t->client);
}

static void on_backend_written(struct lv_sock *s, int status)
{
    struct lv_tunnel *t = s->data;
    if (status < 0) {
        end(t, uv_strerror(status));
        return;
    }
    resume(&t->client, &t->backend);
}

static void take(struct lv_tunnel *t, struct lv_tunnel_side *side, struct lv_sock *s,
                 lv_sock_read_cb on_read, lv_sock_written_cb on_written)
{
    side->s = s;
    side->on_read = s->on_read;
    side->on_written = s->on_written;
    side->data = s->data;
    side->paused = false;
    s->on_read = on_read;
    s->on_written = on_written;
    s->data = t;
}

void lv_tunnel_start(struct lv_tunnel *t, struct lv_sock *client, struct lv_sock *backend,
                     struct lv_buf *db, const char *down, size_t ndown, struct lv_buf *ub,
                     const char *up, size_t nup, uv_timer_t *timer, uint64_t idle_ms,
                     struct lv_stats *stats, const struct lv_tunnel_ops *ops, void *user)
{
    assert(t->state != LV_TUNNEL_OPEN);
    t->state = LV_TUNNEL_OPEN;
    t->timer = timer;
    t->timer->data = t;
    t->idle_ms = idle_ms;
    t->up = t->down = 0;
    t->stats = stats;
    t->ops = ops;
    t->user = user;
    take(t, &t->client, client, on_client_read, on_client_written);
    take(t, &t->backend, backend, on_backend_read, on_backend_written);
    LV_STAT_INC(stats->tunnels);
    LV_STAT_INC(stats->tunnels_open);
    if (ndown) {
        t->down += ndown;
        LV_STAT_ADD(stats->tunnel_bytes_down, ndown);
        relay(&t->backend, &t->client, db, down, ndown);
    } else {
        lv_sock_flush(client); /* the 101 itself */
    }
    if (nup) {
        t->up += nup;
        LV_STAT_ADD(stats->tunnel_bytes_up, nup);
        relay(&t->client, &t->backend, ub, up, nup);
    }
    if (!t->backend.paused) lv_sock_read_start(backend);
    if (!t->client.paused) lv_sock_read_start(client);
    arm(t);
}

void lv_tunnel_stop(struct lv_tunnel *t)
{
    if (t->state != LV_TUNNEL_OPEN) return;
    t->state = LV_TUNNEL_OFF;
    uv_timer_stop(t->timer);
    restore(&t->client);
    restore(&t->backend);
    LV_STAT_ADD(t->stats->tunnels_open, (uint64_t)-1);
}
