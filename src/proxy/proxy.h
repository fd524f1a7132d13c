/*
 * The running proxy: the current configuration generation, the workers,
 * and the operations the main thread performs on them (start, reload,
 * backend admin state, drain, stop). Workers only read what is published
 * to them.
 */
#ifndef LV_PROXY_PROXY_H
#define LV_PROXY_PROXY_H

#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "proxy/proxy-t.h"
#include "proxy/server.h"
#include "upstream/backend.h"

struct lv_strbuf;
struct lv_config;
struct lv_gen;

/* The workers' counters, added up: what the admin port reads (never a
 * worker's own struct). */
struct lv_proxy_stats {
    struct lv_stats w;     /* every worker's struct lv_stats (proxy/wstats.h), summed */
    uint64_t buffer_bytes; /* I/O buffer memory the workers hold (levee_buffer_bytes) */
};

/*
 * Builds the first generation from cfg (taken over) and starts every
 * worker. Returns 0, or a negative error after logging why.
 */
int lv_proxy_start(struct lv_proxy *p, struct lv_config *cfg, uv_loop_t *main_loop,
                   uv_async_t *on_worker_exit);

/*
 * Re-reads the configuration file. On any error, logs each one with its
 * line and keeps running on the current generation (returns UV_EINVAL, or
 * UV_ENOMEM). On
 * success publishes a new generation to every worker (returns 0). Settings
 * that need a restart (workers) keep their running value, with a warning.
 * `errs` receives the error lines too (for POST /reload), may be NULL.
 */
int lv_proxy_reload(struct lv_proxy *p, const char *path, struct lv_strbuf *errs);

/* Sets a backend's admin state by id. Returns 0, or UV_ENOENT if no such backend. */
int lv_proxy_set_admin(struct lv_proxy *p, const char *id, enum lv_admin_state state);

/* Sums every worker's counters into out (caller-owned). Each counter is
 * read once with a relaxed load while the workers go on counting: a
 * snapshot, consistent per counter, not across counters. Any thread. */
void lv_proxy_stats_sum(const struct lv_proxy *p, struct lv_proxy_stats *out);

/* Graceful shutdown: stop accepting, finish in-flight requests. */
void lv_proxy_drain(struct lv_proxy *p);
/* The first half of a drain, after a binary upgrade handed the listening
 * sockets over: stop accepting; answers close their connections; idle
 * keep-alive connections stay for a moment (lv_server_stop_accepting). */
void lv_proxy_stop_accepting(struct lv_proxy *p);
/* Hard stop: close every connection now. */
void lv_proxy_stop(struct lv_proxy *p);
/* Waits for the workers (after they exited) and frees everything. Also
 * undoes a failed lv_proxy_start. */
void lv_proxy_destroy(struct lv_proxy *p);

#endif
