/*
 * Byte tunnels: after a 101 Switching Protocols (WebSocket and the other
 * protocols `upgrade.allow` lists) two sockets stop speaking HTTP. The
 * tunnel takes both over by swapping their read and write handlers (the
 * owners' handlers are put back when it ends): each read is written to the
 * other socket by reference, a side more than LV_FLOW_HIGH behind stops the
 * other side's reads until it is down to LV_FLOW_LOW (proxy/flow.h), and
 * an idle timeout closes a tunnel with no byte either way.
 *
 *   OFF ──start──► OPEN ──EOF / error on either side, idle timeout──► ENDED
 *                    └──────────────stop (the owner abandons it)──────► OFF
 *
 * The first close or error on either side ends the tunnel: the owner is
 * told (ops->ended) and closes both sockets (what was read is written
 * first), so that no socket is left half-open.
 */
#ifndef LV_PROXY_TUNNEL_H
#define LV_PROXY_TUNNEL_H

#include <stdint.h>
#include <sys/types.h>

#include "net/sock.h"
#include "proxy/wstats.h"

enum lv_tunnel_state { LV_TUNNEL_OFF, LV_TUNNEL_OPEN, LV_TUNNEL_ENDED };

struct lv_tunnel_ops {
    /* The tunnel ended (why: "client closed", "idle timeout", ...). Both
     * sockets have their owners' handlers back. */
    void (*ended)(void *user, const char *why);
};

/* One side: its socket and the handlers the tunnel replaced. */
struct lv_tunnel_side {
    struct lv_sock *s;
    lv_sock_read_cb on_read;
    lv_sock_written_cb on_written;
    void *data;
    bool paused; /* not read: the other side is behind */
};

struct lv_tunnel {
    enum lv_tunnel_state state;
    struct lv_tunnel_side client, backend;
    uv_timer_t *timer; /* the owner's; the tunnel's idle timer while OPEN */
    uint64_t idle_ms;
    uint64_t up, down; /* bytes client → backend, backend → client */
    struct lv_stats *stats;
    const struct lv_tunnel_ops *ops;
    void *user;
};

/*
 * Opens a tunnel between the client and backend sockets (both connected,
 * not closing). `down` (ndown bytes in buffer db, may be 0) were read from
 * the backend after its 101 and go to the client first; `up` (nup bytes in
 * ub) were read from the client after its upgrade request and go to the
 * backend. timer: an initialized handle of the owner's, idle while the
 * tunnel is not OPEN. ops->ended is never called before this returns.
 */
void lv_tunnel_start(struct lv_tunnel *t, struct lv_sock *client, struct lv_sock *backend,
                     struct lv_buf *db, const char *down, size_t ndown, struct lv_buf *ub,
                     const char *up, size_t nup, uv_timer_t *timer, uint64_t idle_ms,
                     struct lv_stats *stats, const struct lv_tunnel_ops *ops, void *user);

/* The owner abandons an OPEN tunnel (its client is going away): the
 * handlers go back, ops->ended is not called. No-op otherwise. */
void lv_tunnel_stop(struct lv_tunnel *t);

#endif
