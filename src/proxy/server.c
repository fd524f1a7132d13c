/*
 * A worker's proxy: listeners, the list of its connections, its views of
 * configuration generations, and the way it ends: on drain it stops
 * accepting, closes idle connections and lets the others finish; when the
 * last one is gone it stops its loop.
 *
 * A reload reaches a worker as a message carrying the new generation: the
 * worker makes it current (new requests use it), keeps the old view until
 * its last request is done, opens listeners that appeared and closes those
 * that went, and closes idle connections to backends that left.
 */
#include "proxy/server.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <assert.h>

#include "config/config.h"
#include "core/log.h"
#include "limit/redis.h"
#include "net/inherit.h"
#include "net/listener.h"
#include "proxy/cached.h"
#include "proxy/client.h"
#include "proxy/exchange.h"
#include "proxy/proxy-t.h"
#include "config/gen.h"
#include "proxy/wgen.h"
#include "upstream/backend.h"

#define LISTEN_BACKLOG 4096

struct lv_listener {
    struct lv_acceptor acc;
    struct lv_server *srv;
    char *address;
    SSL_CTX *tls;          /* TLS listener: the current certificates; NULL: plain */
    uint64_t handshake_ms; /* its handshake timeout */
    bool h2_prior;         /* issue 17: cleartext HTTP/2 with prior knowledge (`http2: true`) */
    struct lv_list link;   /* in the worker's listeners */
};

static void check_done(struct lv_server *srv);
static void conn_freed(struct lv_server *srv);

static struct lv_server *of_worker(struct lv_worker *w)
{
    return lv_container_of(w, struct lv_server, w);
}

/* --- listeners ------------------------------------------------------------------- */

static struct lv_maxconn *conns_of(struct lv_server *srv)
{
    return &srv->proxy->conns;
}

/* Room for one more client connection (limits.max_connections, shared by
 * every worker)? If not, this worker's listeners pause until a connection
 * closes somewhere (conn_freed wakes it). */
static bool acc_reserve(struct lv_acceptor *a)
{
    struct lv_listener *ls = a->data;
    struct lv_server *srv = ls->srv;
    struct lv_maxconn *m = conns_of(srv);
    if (srv->state != LV_SRV_RUNNING) return false;
    while (!lv_maxconn_take(m)) {
        if (!lv_maxconn_wait(m, &srv->accept_waiting)) {
            LV_STAT_INC(srv->ctx.stats.accept_pauses[LV_PAUSE_MAX_CONNECTIONS]);
            lv_log_ratelimited(LV_LOG_WARN,
                               "limits.max_connections reached (%llu client connections): "
                               "worker %u not accepting until one closes",
                               (unsigned long long)atomic_load(&m->limit), srv->w.id);
            return false;
        }
        /* A slot was freed while we looked: try again. */
    }
    return true;
}

static void acc_unreserve(struct lv_acceptor *a)
{
    struct lv_listener *ls = a->data;
    conn_freed(ls->srv);
}

/* A client connection's memory is gone: its slot is free. */
static void on_client_freed(struct lv_client *c)
{
    struct lv_server *srv = lv_container_of(c->w, struct lv_server, ctx);
    lv_list_remove(&c->link);
    srv->nclients--;
    LV_STAT_ADD(srv->ctx.stats.client_connections, (uint64_t)-1);
    conn_freed(srv);
    check_done(srv);
}

static void acc_accepted(struct lv_acceptor *a, int fd)
{
    struct lv_listener *ls = a->data;
    struct lv_server *srv = ls->srv;
    struct lv_client *c =
        lv_client_accept(&srv->ctx, fd, ls->tls, ls->handshake_ms, ls->h2_prior, on_client_freed);
    if (c == NULL) {
        conn_freed(srv);
        return;
    }
    lv_list_push_front(&srv->clients, &c->link);
    srv->nclients++;
    LV_STAT_INC(srv->ctx.stats.connections_accepted);
    LV_STAT_INC(srv->ctx.stats.client_connections);
}

static void acc_failed(struct lv_acceptor *a, int err, uint64_t backoff_ms)
{
    struct lv_listener *ls = a->data;
    struct lv_server *srv = ls->srv;
    bool fds = err == UV_EMFILE || err == UV_ENFILE;
    LV_STAT_INC(srv->ctx.stats.accept_pauses[fds ? LV_PAUSE_FD_LIMIT : LV_PAUSE_ERROR]);
    /* One line a second at most, whatever the number of workers and
     * listeners: an exhausted descriptor table fails every accept. */
    lv_log_ratelimited(
        LV_LOG_WARN, "worker %u: accept on %s failed: %s; not accepting for %llums%s", srv->w.id,
        ls->address, uv_strerror(err), (unsigned long long)backoff_ms,
        fds ? " (out of file descriptors: raise the limit, or lower limits.max_connections)" : "");
}

static const struct lv_acceptor_ops acceptor_ops = {
    .reserve = acc_reserve,
    .unreserve = acc_unreserve,
    .accepted = acc_accepted,
    .failed = acc_failed,
};

/* Resumes this worker's listeners that paused for want of a slot. */
static void resume_listeners(struct lv_server *srv)
{
    if (srv->state != LV_SRV_RUNNING) return;
    struct lv_list *n;
    for (n = srv->listeners.next; n != &srv->listeners; n = n->next)
        lv_acceptor_resume(&lv_container_of(n, struct lv_listener, link)->acc);
}

static void on_wake(struct lv_worker *w, void *arg)
{
    (void)arg;
    resume_listeners(of_worker(w));
}

/* A client connection's slot of limits.max_connections is free again (the
 * connection was freed, or never made): wakes the workers waiting for one. */
static void conn_freed(struct lv_server *srv)
{
    struct lv_proxy *px = srv->proxy;
    if (!lv_maxconn_give(&px->conns)) return;
    /* Wake every waiting worker, not just one: a worker with an empty
     * backlog would not take the slot, while another's queue waits. */
    for (unsigned i = 0; i < px->nservers; i++) {
        struct lv_server *s = &px->servers[i];
        if (!lv_maxconn_unwait(&px->conns, &s->accept_waiting)) continue;
        if (s == srv)
            resume_listeners(srv);
        else
            lv_worker_post(&s->w, on_wake, NULL); /* -1: it stopped, nothing to wake */
    }
}

/* Points a listener at the TLS settings of lc (on start and on reload, so
 * that new certificates apply to new connections at once). */
static void listener_tls(struct lv_listener *ls, const struct lv_listen_cfg *lc)
{
    SSL_CTX *old = ls->tls;
    ls->tls = lc->tls_enabled ? lc->tls_ctx : NULL;
    if (ls->tls) SSL_CTX_up_ref(ls->tls);
    if (old) SSL_CTX_free(old);
    ls->handshake_ms = lc->tls.handshake_timeout;
    ls->h2_prior = lc->http2 && !lc->tls_enabled;
}

static void on_listener_closed(struct lv_acceptor *a)
{
    struct lv_listener *ls = a->data;
    struct lv_server *srv = ls->srv;
    if (ls->tls) SSL_CTX_free(ls->tls);
    free(ls->address);
    free(ls);
    srv->listeners_open--;
    check_done(srv);
}

static void listener_close(struct lv_listener *ls)
{
    lv_acceptor_close(&ls->acc, on_listener_closed);
}

/* One listener on lc's address: on fd, a socket this process inherited (the
 * listener's from now on), or on a socket of its own when fd is -1. */
static int listener_add(struct lv_server *srv, const struct lv_listen_cfg *lc, int fd)
{
    struct lv_listener *ls = calloc(1, sizeof(*ls));
    if (ls == NULL) {
        if (fd >= 0) close(fd);
        return UV_ENOMEM;
    }
    ls->srv = srv;
    int rc = fd >= 0 ? lv_acceptor_adopt(&ls->acc, &srv->w.loop, fd, &acceptor_ops, ls)
                     : lv_acceptor_open(&ls->acc, &srv->w.loop, (const struct sockaddr *)&lc->addr,
                                        LISTEN_BACKLOG, &acceptor_ops, ls);
    if (rc != 0) {
        lv_error("worker %u: cannot listen on %s: %s", srv->w.id, lc->address, uv_strerror(rc));
        free(ls);
        return rc;
    }
    ls->address = strdup(lc->address);
    listener_tls(ls, lc);
    srv->listeners_open++;
    lv_list_push_front(&srv->listeners, &ls->link);
    return 0;
}

/* The worker's listeners on lc's address: the inherited sockets that are
 * this worker's share (net/inherit.h), else a socket of its own. */
static int listener_open(struct lv_server *srv, const struct lv_listen_cfg *lc)
{
    int fds[LV_INHERIT_MAX];
    int n = lv_inherit_take((const struct sockaddr *)&lc->addr, srv->w.id, srv->proxy->nservers,
                            fds, LV_INHERIT_MAX);
    if (n < 0) {
        lv_error("worker %u: cannot take the inherited socket on %s: %s", srv->w.id, lc->address,
                 uv_strerror(n));
        return n;
    }
    if (n == 0) return listener_add(srv, lc, -1);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            rc = listener_add(srv, lc, fds[i]);
        else
            close(fds[i]);
    }
    return rc;
}

static const struct lv_listen_cfg *cfg_listens(const struct lv_config *cfg, const char *address)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        if (strcmp(cfg->listeners[i].address, address) == 0) return &cfg->listeners[i];
    }
    return NULL;
}

/* Makes the listeners match cfg: closes the ones it lost, opens new ones. */
static int sync_listeners(struct lv_server *srv, const struct lv_config *cfg)
{
    struct lv_list *n, *next;
    for (n = srv->listeners.next; n != &srv->listeners; n = next) {
        next = n->next;
        struct lv_listener *ls = lv_container_of(n, struct lv_listener, link);
        const struct lv_listen_cfg *lc = cfg_listens(cfg, ls->address);
        if (lc) {
            listener_tls(ls, lc);
            continue;
        }
        lv_list_remove(&ls->link);
        listener_close(ls);
    }
    int rc = 0;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        bool have = false;
        for (n = srv->listeners.next; n != &srv->listeners; n = n->next)
            have |= strcmp(lv_container_of(n, struct lv_listener, link)->address,
                           cfg->listeners[i].address) == 0;
        if (!have && listener_open(srv, &cfg->listeners[i]) != 0) rc = -1;
    }
    return rc;
}

static void close_listeners(struct lv_server *srv)
{
    while (!lv_list_empty(&srv->listeners)) {
        struct lv_listener *ls = lv_container_of(srv->listeners.next, struct lv_listener, link);
        lv_list_remove(&ls->link);
        listener_close(ls);
    }
}

/* --- the rate-limit store ---------------------------------------------------------------- */

/* Connects to (or away from) the store the current configuration names. */
static void sync_store(struct lv_server *srv)
{
    const struct lv_config *cfg = srv->ctx.wgen->gen->cfg;
    const struct lv_rate_cfg *rc = &cfg->rate_limit;
    bool want = rc->store == LV_STORE_REDIS && lv_config_rate_limiting(cfg);
    struct lv_wctx *w = &srv->ctx;
    if (w->redis && (!want || !lv_redis_same(w->redis, rc))) {
        lv_redis_close(w->redis);
        w->redis = NULL;
    }
    if (want && w->redis == NULL)
        w->redis = lv_redis_create(w->loop, rc, &srv->proxy->redis_shared);
}

/* --- generations --------------------------------------------------------------------- */

static void on_upconn_freed(struct lv_upconns *set)
{
    struct lv_server *srv = lv_container_of(set, struct lv_server, ups);
    check_done(srv);
}

void lv_server_setup(struct lv_worker *w, void *arg)
{
    struct lv_server *srv = of_worker(w);
    struct lv_proxy *px = srv->proxy;
    struct lv_gen *g = arg;
    struct lv_wctx *ctx = &srv->ctx;
    ctx->loop = &w->loop;
    ctx->id = w->id;
    ctx->rand = &w->rand;
    ctx->start_ms = px->start_ms;
    ctx->ups = &srv->ups;
    lv_list_init(&srv->clients);
    lv_list_init(&srv->listeners);
    lv_list_init(&ctx->retired);
    lv_list_init(&ctx->free_exchanges);
    lv_sockenv_init(&ctx->env, &w->loop);
    lv_upconns_init(&srv->ups, ctx, on_upconn_freed);
    ctx->cache_store = px->cache;
    if (lv_cached_worker_start(ctx) != 0) atomic_store(&px->setup_failed, 1);
    srv->state = LV_SRV_RUNNING;
    struct lv_wgen *none = NULL;
    int rc = lv_wgen_install(ctx, g, &none);
    lv_gen_unref(g); /* the reference the message carried */
    if (rc != 0) {
        atomic_store(&px->setup_failed, 1);
    } else {
        if (sync_listeners(srv, g->cfg) != 0) atomic_store(&px->setup_failed, 1);
        sync_store(srv);
    }
    uv_sem_post(&px->ready);
}

void lv_server_switch(struct lv_worker *w, void *arg)
{
    struct lv_server *srv = of_worker(w);
    struct lv_gen *g = arg;
    if (srv->state != LV_SRV_RUNNING) {
        lv_gen_unref(g);
        return;
    }
    struct lv_wgen *old = NULL;
    int rc = lv_wgen_install(&srv->ctx, g, &old);
    lv_gen_unref(g);
    if (rc != 0) {
        lv_error("worker %u: out of memory switching configuration; keeping the old one",
                 srv->w.id);
        return;
    }
    /* Idle connections move to the new generation's entry for their backend,
     * or close — before the old generation, which their pointers lead into,
     * can be freed. Busy ones follow when released (lv_upconn_release). */
    lv_upconns_adopt(&srv->ups);
    lv_wgen_retire(&srv->ctx, old);
    const struct lv_config *cfg = srv->ctx.wgen->gen->cfg;
    sync_listeners(srv, cfg);
    sync_store(srv);
    /* limits.max_connections may have grown. */
    if (lv_maxconn_unwait(conns_of(srv), &srv->accept_waiting)) resume_listeners(srv);
}

void lv_server_backend_state(struct lv_worker *w, void *arg)
{
    struct lv_server *srv = of_worker(w);
    struct lv_backend *b = arg;
    if (lv_backend_admin(b) != LV_ADMIN_ENABLED) lv_upconns_close_idle(&srv->ups, b);
    lv_backend_unref(b);
}

/* --- stopping ------------------------------------------------------------------------ */

/* No new connections, no more store checks (those waiting fall back). */
static void stop_taking(struct lv_server *srv)
{
    srv->state = LV_SRV_DRAINING;
    srv->ctx.draining = true;
    lv_maxconn_unwait(conns_of(srv), &srv->accept_waiting);
    close_listeners(srv);
    lv_redis_close(srv->ctx.redis);
    srv->ctx.redis = NULL;
}

void lv_server_drain(struct lv_worker *w, void *arg)
{
    (void)arg;
    struct lv_server *srv = of_worker(w);
    if (srv->state == LV_SRV_RUNNING) stop_taking(srv);
    struct lv_list *n, *next;
    for (n = srv->clients.next; n != &srv->clients; n = next) {
        next = n->next; /* a client closed at once stays listed until it is freed */
        lv_client_drain(lv_container_of(n, struct lv_client, link));
    }
    lv_cached_worker_stop_refreshes(&srv->ctx);
    lv_upconns_close_idle(&srv->ups, NULL);
    check_done(srv);
}

void lv_server_stop_accepting(struct lv_worker *w, void *arg)
{
    (void)arg;
    struct lv_server *srv = of_worker(w);
    if (srv->state == LV_SRV_RUNNING) stop_taking(srv);
    lv_upconns_close_idle(&srv->ups, NULL);
    check_done(srv);
}

void lv_server_stop(struct lv_worker *w, void *arg)
{
    (void)arg;
    struct lv_server *srv = of_worker(w);
    if (srv->state == LV_SRV_RUNNING) stop_taking(srv);
    struct lv_list *n, *next;
    for (n = srv->clients.next; n != &srv->clients; n = next) {
        next = n->next;
        lv_client_abort(lv_container_of(n, struct lv_client, link));
    }
    lv_cached_worker_stop_refreshes(&srv->ctx);
    lv_upconns_close_all(&srv->ups);
    check_done(srv);
}

/* Draining, and the last connection and listener are gone: the worker
 * frees what it holds and lets its loop end. */
static void check_done(struct lv_server *srv)
{
    if (srv->state != LV_SRV_DRAINING) return;
    if (srv->nclients || srv->ups.n || srv->listeners_open) return;
    srv->state = LV_SRV_STOPPED;
    struct lv_wctx *ctx = &srv->ctx;
    lv_exchange_free_list(ctx);
    lv_client_free_list(ctx);
    lv_cached_worker_close(ctx);
    lv_wgen_dispose_all(ctx);
    ctx->env.bufs.max_free = 0;
    lv_sockenv_close(&ctx->env, NULL);
    lv_worker_close_mailbox(&srv->w);
    struct lv_proxy *px = srv->proxy;
    atomic_fetch_sub(&px->workers_running, 1);
    uv_async_send(px->on_worker_exit);
}
