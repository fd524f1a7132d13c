/*
 * A worker's proxy: listeners, the list of its connections, and the way it
 * ends: on drain it stops accepting, closes idle connections and lets the
 * others finish; when the last one is gone it stops its loop.
 */
#include "proxy/server.h"

#include <stdlib.h>

#include "config/config.h"
#include "core/log.h"
#include "net/listener.h"
#include "proxy/accesslog.h"
#include "proxy/client.h"
#include "proxy/exchange.h"
#include "proxy/proxy.h"
#include "proxy/upconn.h"
#include "upstream/balancer.h"

#define LISTEN_BACKLOG 4096

static struct lv_server *of_worker(struct lv_worker *w)
{
    return (struct lv_server *)(void *)((char *)w - offsetof(struct lv_server, w));
}

static void on_connection(uv_stream_t *l, int status)
{
    struct lv_server *srv = l->data;
    if (status < 0) {
        /* EMFILE and friends: the connection stays in the backlog. */
        lv_warn("worker %u: accept failed: %s", srv->w.id, uv_strerror(status));
        return;
    }
    if (srv->draining) return;
    lv_client_accept(srv, l);
}

void lv_server_setup(struct lv_worker *w, void *arg)
{
    (void)arg;
    struct lv_server *srv = of_worker(w);
    struct lv_proxy *px = srv->proxy;
    const struct lv_config *cfg = srv->cfg;
    lv_sockenv_init(&srv->env, &w->loop);
    srv->alog = lv_accesslog_create(&w->loop, px->alog_fd, cfg->access_log.format);
    srv->lb_state = cfg->balancer->create(px->nbackends);
    srv->eligible = calloc(px->nbackends + 1, sizeof(*srv->eligible));
    srv->weights = calloc(px->nbackends + 1, sizeof(*srv->weights));
    srv->listeners = calloc(cfg->n_listeners, sizeof(*srv->listeners));
    srv->nlisteners = cfg->n_listeners;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        uv_tcp_t *l = &srv->listeners[i];
        uv_tcp_init(&w->loop, l);
        l->data = srv;
        srv->listeners_open++;
        int rc = lv_listener_open(l, (const struct sockaddr *)&cfg->listeners[i].addr,
                                  LISTEN_BACKLOG, on_connection);
        if (rc != 0) {
            lv_error("worker %u: cannot listen on %s: %s", w->id, cfg->listeners[i].address,
                     uv_strerror(rc));
            atomic_store(&px->setup_failed, 1);
        }
    }
    uv_sem_post(&px->ready);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct lv_server *srv = h->data;
    srv->listeners_open--;
    lv_server_check_done(srv);
}

static void close_listeners(struct lv_server *srv)
{
    for (size_t i = 0; i < srv->nlisteners; i++) {
        uv_handle_t *h = (uv_handle_t *)&srv->listeners[i];
        if (!uv_is_closing(h)) uv_close(h, on_listener_closed);
    }
}

void lv_server_drain(struct lv_worker *w, void *arg)
{
    (void)arg;
    struct lv_server *srv = of_worker(w);
    srv->draining = true;
    close_listeners(srv);
    for (struct lv_client *c = srv->clients; c; c = c->next)
        lv_client_drain(c);
    lv_upconn_close_idle(srv);
    lv_server_check_done(srv);
}

void lv_server_stop(struct lv_worker *w, void *arg)
{
    (void)arg;
    struct lv_server *srv = of_worker(w);
    srv->draining = true;
    close_listeners(srv);
    for (struct lv_client *c = srv->clients; c; c = c->next)
        lv_client_abort(c);
    lv_upconn_close_all(srv);
    lv_server_check_done(srv);
}

void lv_server_check_done(struct lv_server *srv)
{
    if (!srv->draining || srv->stopped) return;
    if (srv->nclients || srv->nupconns || srv->listeners_open) return;
    srv->stopped = true;
    lv_exchange_free_list(srv);
    lv_accesslog_close(srv->alog);
    srv->alog = NULL;
    srv->env.bufs.max_free = 0;
    lv_worker_close_mailbox(&srv->w);
    struct lv_proxy *px = srv->proxy;
    atomic_fetch_sub(&px->workers_running, 1);
    uv_async_send(px->on_worker_exit);
}
