/*
 * Building the running proxy from a configuration, and taking it down.
 */
#include "proxy/proxy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "core/clock.h"
#include "core/log.h"
#include "net/listener.h"
#include "proxy/server.h"
#include "upstream/backend.h"
#include "upstream/balancer.h"

static int open_access_log(struct lv_proxy *p, const struct lv_config *cfg)
{
    const char *path = cfg->access_log.path;
    p->alog_fd = -1;
    p->alog_owned = false;
    if (path == NULL) return 0;
    if (strcmp(path, "stdout") == 0) {
        p->alog_fd = STDOUT_FILENO;
    } else if (strcmp(path, "stderr") == 0) {
        p->alog_fd = STDERR_FILENO;
    } else {
        p->alog_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (p->alog_fd < 0) {
            lv_error("cannot open access log %s: %s", path, strerror(errno));
            return -1;
        }
        p->alog_owned = true;
    }
    return 0;
}

int lv_proxy_start(struct lv_proxy *p, struct lv_config *cfg, uv_loop_t *main_loop,
                   uv_async_t *on_worker_exit)
{
    memset(p, 0, sizeof(*p));
    p->cfg = cfg;
    p->main_loop = main_loop;
    p->on_worker_exit = on_worker_exit;
    p->start_ms = lv_clock_ms();
    p->alog_fd = -1;
    for (size_t i = 0; i < cfg->n_listeners; i++) {
        int rc = lv_listener_probe((const struct sockaddr *)&cfg->listeners[i].addr);
        if (rc != 0) {
            lv_error("cannot listen on %s: %s", cfg->listeners[i].address, uv_strerror(rc));
            return rc;
        }
    }
    if (open_access_log(p, cfg) != 0) return -1;
    p->backends = calloc(cfg->n_backends + 1, sizeof(*p->backends));
    for (size_t i = 0; i < cfg->n_backends; i++) {
        p->backends[i] = lv_backend_create(cfg, (unsigned)i, cfg->workers);
        if (p->backends[i] == NULL) return UV_ENOMEM;
        p->nbackends++;
    }
    p->nservers = cfg->workers;
    p->servers = calloc(p->nservers, sizeof(*p->servers));
    uv_sem_init(&p->ready, 0);
    atomic_init(&p->workers_running, 0);
    atomic_init(&p->setup_failed, 0);
    for (unsigned i = 0; i < p->nservers; i++) {
        struct lv_server *s = &p->servers[i];
        s->proxy = p;
        s->cfg = cfg;
        int rc = lv_worker_init(&s->w, i, s);
        if (rc == 0) rc = lv_worker_start(&s->w, lv_server_setup);
        if (rc != 0) {
            lv_error("cannot start worker %u: %s", i, uv_strerror(rc));
            return rc;
        }
        atomic_fetch_add(&p->workers_running, 1);
        s->started = true;
    }
    for (unsigned i = 0; i < p->nservers; i++)
        uv_sem_wait(&p->ready);
    if (atomic_load(&p->setup_failed)) return -1;
    return 0;
}

void lv_proxy_drain(struct lv_proxy *p)
{
    for (unsigned i = 0; i < p->nservers; i++) {
        if (p->servers[i].started) lv_worker_post(&p->servers[i].w, lv_server_drain, NULL);
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
    for (unsigned i = 0; i < p->nservers; i++) {
        struct lv_server *s = &p->servers[i];
        if (!s->started) continue;
        lv_worker_join(&s->w);
        if (s->lb_state) p->cfg->balancer->destroy(s->lb_state);
        lv_sockenv_dispose(&s->env);
        free(s->eligible);
        free(s->weights);
        free(s->listeners);
    }
    free(p->servers);
    if (p->servers) uv_sem_destroy(&p->ready);
    for (size_t i = 0; i < p->nbackends; i++)
        lv_backend_destroy(p->backends[i]);
    free(p->backends);
    if (p->alog_owned) close(p->alog_fd);
    lv_config_destroy(p->cfg);
    memset(p, 0, sizeof(*p));
}
