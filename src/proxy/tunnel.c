/*
 * Byte tunnels after an upgrade. Each read is handed to the other socket
 * by reference (no copy); flow control and the idle timeout are the same
 * for both directions.
 */
#include "proxy/tunnel.h"

#include "config/config.h"
#include "core/log.h"
#include "proxy/client.h"
#include "proxy/exchange.h"
#include "proxy/upconn.h"

/* Compared with lv_sock_queued: bytes, or the memory the pending writes
 * hold, whichever is larger (one-byte reads each hold a read buffer). */
#define HIGH_WATER (256 * 1024)
#define LOW_WATER (64 * 1024)

/* Sends n bytes of b from one side to the other; pauses the source when
 * the destination is behind. */
static void relay(struct lv_sock *from, bool *from_paused, struct lv_sock *to, struct lv_buf *b,
                  const char *p, size_t n)
{
    if (n == 0) return;
    lv_sock_add(to, p, n, b);
    lv_sock_flush(to);
    if (lv_sock_queued(to) > HIGH_WATER && !*from_paused) {
        *from_paused = true;
        lv_sock_read_stop(from);
    }
}

static void resume(struct lv_sock *src, bool *paused, const struct lv_sock *dst)
{
    if (*paused && lv_sock_queued(dst) <= LOW_WATER) {
        *paused = false;
        lv_sock_read_start(src);
    }
}

static void tunnel_end(struct lv_exchange *ex, const char *why)
{
    if (!ex->tunnel_open) return;
    ex->tunnel_open = false;
    struct lv_client *c = ex->client;
    struct lv_upconn *up = ex->up;
    LV_STAT_ADD(ex->srv->stats.tunnels_open, (uint64_t)-1);
    lv_debug("tunnel %s: closed (%s), %llu bytes up, %llu down", ex->request_id, why,
             (unsigned long long)ex->tunnel_up, (unsigned long long)ex->resp_bytes);
    c->tunnel = false;
    ex->up = NULL;
    if (up) {
        up->tunnel = false;
        lv_upconn_finish(up); /* what it still has to send is sent, then closed */
    }
    lv_exchange_tunnel_done(ex);
}

void lv_tunnel_start(struct lv_exchange *ex, struct lv_buf *b, const char *rest, size_t rest_len)
{
    struct lv_client *c = ex->client;
    struct lv_upconn *up = ex->up;
    ex->tunnel_open = true;
    c->tunnel = true;
    up->tunnel = true;
    LV_STAT_INC(ex->srv->stats.tunnels);
    LV_STAT_INC(ex->srv->stats.tunnels_open);
    uv_timer_stop(&up->timer);
    /* Frames the backend sent right behind its 101. */
    if (rest_len) {
        ex->resp_bytes += rest_len;
        LV_STAT_ADD(ex->srv->stats.tunnel_bytes_down, rest_len);
        relay(&up->sock, &up->tun_paused, &c->sock, b, rest, rest_len);
    } else {
        lv_sock_flush(&c->sock); /* the 101 itself */
    }
    /* Bytes the client sent right behind its request. */
    if (c->pending) {
        struct lv_buf *pb = c->pending;
        c->pending = NULL;
        ex->tunnel_up += c->pending_len;
        LV_STAT_ADD(ex->srv->stats.tunnel_bytes_up, c->pending_len);
        relay(&c->sock, &c->tun_paused, &up->sock, pb, pb->data + c->pending_off, c->pending_len);
        lv_buf_unref(pb);
    }
    lv_sock_read_start(&up->sock);
    if (!c->tun_paused) lv_sock_read_start(&c->sock);
    lv_client_arm_tunnel(c);
}

void lv_tunnel_client_read(struct lv_client *c, struct lv_buf *b, ssize_t nread)
{
    struct lv_exchange *ex = c->ex;
    if (nread < 0) {
        tunnel_end(ex, nread == UV_EOF ? "client closed" : uv_strerror((int)nread));
        return;
    }
    ex->tunnel_up += (uint64_t)nread;
    LV_STAT_ADD(ex->srv->stats.tunnel_bytes_up, (uint64_t)nread);
    relay(&c->sock, &c->tun_paused, &ex->up->sock, b, b->data, (size_t)nread);
    lv_client_arm_tunnel(c);
}

void lv_tunnel_backend_read(struct lv_upconn *up, struct lv_buf *b, ssize_t nread)
{
    struct lv_exchange *ex = up->ex;
    if (nread < 0) {
        tunnel_end(ex, nread == UV_EOF ? "backend closed" : uv_strerror((int)nread));
        return;
    }
    ex->resp_bytes += (uint64_t)nread;
    LV_STAT_ADD(ex->srv->stats.tunnel_bytes_down, (uint64_t)nread);
    relay(&up->sock, &up->tun_paused, &ex->client->sock, b, b->data, (size_t)nread);
    lv_client_arm_tunnel(ex->client);
}

void lv_tunnel_client_written(struct lv_client *c)
{
    struct lv_exchange *ex = c->ex;
    if (ex && ex->up) resume(&ex->up->sock, &ex->up->tun_paused, &c->sock);
}

void lv_tunnel_backend_written(struct lv_upconn *up)
{
    struct lv_exchange *ex = up->ex;
    if (ex) resume(&ex->client->sock, &ex->client->tun_paused, &up->sock);
}

void lv_tunnel_abort(struct lv_exchange *ex)
{
    if (!ex->tunnel_open) return;
    ex->tunnel_open = false;
    LV_STAT_ADD(ex->srv->stats.tunnels_open, (uint64_t)-1);
    ex->client->tunnel = false;
    if (ex->up) ex->up->tunnel = false;
}

void lv_tunnel_idle(struct lv_client *c)
{
    if (c->ex) tunnel_end(c->ex, "idle timeout");
}
