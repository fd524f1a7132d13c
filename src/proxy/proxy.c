/*
 * Building the running proxy from a configuration, reloading it, and taking
 * it down. All of this runs on the main thread; workers learn of changes
 * through messages.
 */
#include "proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cache/store.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "net/listener.h"
#include "config/gen.h"
#include "proxy/server.h"

static int probe_listeners(const struct lv_config *cfg, const struct lv_config *running)
{
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        bool have = false;
        for (size_t j = 0; running && j < running->n_listeners; j++)
            have |= strcmp(running->listeners[j].address, cfg->listeners[i].address) == 0;
        if (have) continue; /* ours already */
        int rc = lv_listener_probe((const struct sockaddr *)&cfg->listeners[i].addr);
        if (rc != 0) {
            lv_error("cannot listen on %s: %s", cfg->listeners[i].address, uv_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* Puts cfg's limits.max_connections in force: the configured value, or
 * the default the descriptor limit allows. Logged at start and whenever it
 * changes. A configured value above that default is kept, with a warning
 * (HAProxy does the same with maxconn): the operator may know better, the
 * limit may be raised under a running levee, and running out of
 * descriptors costs a pause in accepting, not a wedge. */
static void apply_max_connections(struct lv_proxy *p, const struct lv_config *cfg, bool start)
{
    uint64_t fit = lv_maxconn_auto(p->nofile, cfg->workers, cfg->n_listeners, cfg->n_backends);
    uint64_t want = cfg->limits.max_connections ? cfg->limits.max_connections : fit;
    uint64_t old = atomic_exchange(&p->conns.limit, want);
    if (!start && old == want) return;
    if (cfg->limits.max_connections > fit) {
        lv_warn("limits.max_connections %llu is more than the file descriptor limit (%llu) "
                "allows: about %llu, one descriptor for the client and one for its backend "
                "connection, after levee's own; when descriptors run out levee stops accepting "
                "for a moment (raise the limit: ulimit -n, systemd LimitNOFILE=)",
                (unsigned long long)want, (unsigned long long)p->nofile, (unsigned long long)fit);
    } else {
        lv_info("limits.max_connections: %llu (%s)", (unsigned long long)want,
                cfg->limits.max_connections ? "configured"
                                            : "auto, from the file descriptor limit");
    }
}

int lv_proxy_start(struct lv_proxy *p, struct lv_config *cfg, uv_loop_t *main_loop,
                   uv_async_t *on_worker_exit)
{
    memset(p, 0, sizeof(*p));
    p->main_loop = main_loop;
    p->on_worker_exit = on_worker_exit;
    p->start_ms = lv_clock_ms();
    p->start_wall_ms = lv_clock_wall_ms();
    uv_sem_init(&p->ready, 0);
    atomic_init(&p->workers_running, 0);
    atomic_init(&p->setup_failed, 0);
    atomic_init(&p->redis_shared.up, -1);
    struct rlimit rl;
    p->nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (uint64_t)rl.rlim_cur : 1024;
    int rc = probe_listeners(cfg, NULL);
    if (rc != 0) {
        lv_config_destroy(cfg);
        return rc;
    }
    unsigned nworkers = cfg->workers;
    apply_max_connections(p, cfg, true);
    p->cache = lv_cache_store_create(cfg->cache.max_size, cfg->cache.max_object_size);
    if (p->cache == NULL) {
        lv_config_destroy(cfg);
        return UV_ENOMEM;
    }
    p->gen = lv_gen_create(cfg, NULL, nworkers, ++p->next_gen_id);
    if (p->gen == NULL) return UV_ENOMEM;
    p->nservers = nworkers;
    p->servers = calloc(p->nservers, sizeof(*p->servers));
    if (p->servers == NULL) return UV_ENOMEM;
    unsigned started = 0;
    for (unsigned i = 0; i < p->nservers; i++) {
        struct lv_server *s = &p->servers[i];
        s->proxy = p;
        lv_gen_ref(p->gen); /* passed to the worker's setup */
        rc = lv_worker_init(&s->w, i, p->gen);
        if (rc == 0) rc = lv_worker_start(&s->w, lv_server_setup);
        if (rc != 0) {
            lv_gen_unref(p->gen);
            lv_error("cannot start worker %u: %s", i, uv_strerror(rc));
            break;
        }
        atomic_fetch_add(&p->workers_running, 1);
        s->started = true;
        started++;
    }
    for (unsigned i = 0; i < started; i++)
        uv_sem_wait(&p->ready);
    if (rc != 0 || atomic_load(&p->setup_failed)) return rc ? rc : -1;
    return 0;
}

int lv_proxy_reload(struct lv_proxy *p, const char *path, struct lv_strbuf *errs)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    int nerr = 0;
    struct lv_config *cfg = mem ? lv_config_load(path, mem, &nerr) : NULL;
    if (mem) fclose(mem);
    const struct lv_config *running = p->gen->cfg;
    if (cfg && probe_listeners(cfg, running) != 0) {
        lv_config_destroy(cfg);
        cfg = NULL;
        nerr = 1;
        if (errs) lv_strbuf_puts(errs, "cannot listen on a new address (see the error log)\n");
    }
    if (cfg == NULL) {
        /* Every error, with its line, in the log; the old config stays. */
        for (char *line = text, *nl; line && *line; line = nl + 1) {
            nl = strchr(line, '\n');
            if (nl) *nl = '\0';
            lv_error("reload: %s", line);
            if (errs) {
                lv_strbuf_puts(errs, line);
                lv_strbuf_puts(errs, "\n");
            }
            if (nl == NULL) break;
        }
        free(text);
        lv_error("reload: %s: %d error%s; still running the previous configuration", path, nerr,
                 nerr == 1 ? "" : "s");
        atomic_fetch_add(&p->reloads_failed, 1);
        return UV_EINVAL;
    }
    free(text);
    if (cfg->workers != p->nservers) {
        lv_warn("reload: changing workers (%u -> %u) needs a restart; keeping %u", p->nservers,
                cfg->workers, p->nservers);
        cfg->workers = p->nservers;
    }
    struct lv_gen *g = lv_gen_create(cfg, p->gen, p->nservers, ++p->next_gen_id);
    if (g == NULL) {
        atomic_fetch_add(&p->reloads_failed, 1);
        return UV_ENOMEM;
    }
    /* The cache is kept; a smaller max_size evicts down to it now. */
    lv_cache_store_set_limits(p->cache, g->cfg->cache.max_size, g->cfg->cache.max_object_size);
    /* Before the workers switch: a worker waiting for a slot looks again then. */
    apply_max_connections(p, g->cfg, false);
    /* Backends of the old generation that the new one lacks are retired:
     * their in-flight requests finish, their connections are not pooled. */
    for (size_t i = 0; i < p->gen->nbackends; i++) {
        struct lv_backend *b = p->gen->backends[i];
        bool kept = false;
        for (size_t j = 0; j < g->nbackends; j++)
            kept |= g->backends[j] == b;
        if (!kept) atomic_store(&b->retired, true);
    }
    for (unsigned i = 0; i < p->nservers; i++) {
        lv_gen_ref(g);
        if (lv_worker_post(&p->servers[i].w, lv_server_switch, g) != 0) lv_gen_unref(g);
    }
    struct lv_gen *old = p->gen;
    p->gen = g;
    lv_gen_unref(old);
    lv_log_set_level(g->cfg->log_level);
    atomic_fetch_add(&p->reloads_ok, 1);
    p->last_reload_ms = lv_clock_wall_ms();
    lv_info("reload: configuration %s loaded (generation %llu, %zu backend%s)", path,
            (unsigned long long)g->id, g->nbackends, g->nbackends == 1 ? "" : "s");
    return 0;
}

int lv_proxy_set_admin(struct lv_proxy *p, const char *id, enum lv_admin_state state)
{
    for (size_t i = 0; i < p->gen->nbackends; i++) {
        struct lv_backend *b = p->gen->backends[i];
        if (strcmp(b->id, id) != 0) continue;
        int old = atomic_exchange(&b->admin_state, (int)state);
        if (old != (int)state)
            lv_info("backend %s: %s (was %s)", id, lv_admin_state_name(state),
                    lv_admin_state_name((enum lv_admin_state)old));
        if (state == LV_ADMIN_ENABLED && old != LV_ADMIN_ENABLED)
            lv_backend_recovered(b, lv_clock_ms());
        /* Workers close idle pooled connections to a backend taken out. */
        for (unsigned w = 0; w < p->nservers; w++) {
            lv_backend_ref(b);
            if (lv_worker_post(&p->servers[w].w, lv_server_backend_state, b) != 0)
                lv_backend_unref(b);
        }
        return 0;
    }
    return UV_ENOENT;
}

/* Every member of struct lv_stats is an atomic_uint_fast64_t, alone, in an
 * array or in a struct lv_lathist: the struct is summed as one array of
 * them, so a counter added to it is summed without a change here. */
#define STATS_N (sizeof(struct lv_stats) / sizeof(atomic_uint_fast64_t))
_Static_assert(sizeof(struct lv_stats) % sizeof(atomic_uint_fast64_t) == 0,
               "struct lv_stats holds only atomic_uint_fast64_t counters");

void lv_proxy_stats_sum(const struct lv_proxy *p, struct lv_proxy_stats *out)
{
    memset(out, 0, sizeof(*out));
    atomic_uint_fast64_t *sum = (atomic_uint_fast64_t *)(void *)&out->w;
    for (unsigned w = 0; w < p->nservers; w++) {
        const atomic_uint_fast64_t *c =
            (const atomic_uint_fast64_t *)(const void *)&p->servers[w].ctx.stats;
        for (size_t i = 0; i < STATS_N; i++)
            LV_STAT_ADD(sum[i], lv_stat_read(&c[i]));
        out->buffer_bytes += lv_stat_read(&p->servers[w].ctx.env.bufs.bytes);
    }
}

void lv_proxy_drain(struct lv_proxy *p)
{
    for (unsigned i = 0; i < p->nservers; i++) {
        if (p->servers[i].started) lv_worker_post(&p->servers[i].w, lv_server_drain, NULL);
    }
}

void lv_proxy_stop_accepting(struct lv_proxy *p)
{
    for (unsigned i = 0; i < p->nservers; i++) {
        if (p->servers[i].started) lv_worker_post(&p->servers[i].w, lv_server_stop_accepting, NULL);
    }
}

void lv_proxy_stop(struct lv_proxy *p)
{
    for (unsigned i = 0; i < p->nservers; i++) {
        if (p->servers[i].started) lv_worker_post(&p->servers[i].w, lv_server_stop, NULL);
    }
}

void lv_proxy_destroy(struct lv_proxy *p)
{
    for (unsigned i = 0; p->servers && i < p->nservers; i++) {
        struct lv_server *s = &p->servers[i];
        if (!s->started) continue;
        lv_worker_join(&s->w);
        lv_sockenv_dispose(&s->ctx.env);
    }
    free(p->servers);
    uv_sem_destroy(&p->ready);
    lv_gen_unref(p->gen);
    if (p->cache) lv_cache_store_destroy(p->cache);
    memset(p, 0, sizeof(*p));
}
