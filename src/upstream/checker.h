/*
 * Active health checks of the backends that ask for them
 * (`health_check_enabled`), on one event loop (the main thread's).
 */
#ifndef LV_UPSTREAM_CHECKER_H
#define LV_UPSTREAM_CHECKER_H

#include <stddef.h>
#include <uv.h>

struct lv_backend;
struct lv_backend_cfg;
struct lv_breaker_cfg;
struct lv_health_check_cfg;
struct lv_checker;

/* A group of backends checked under the same settings (a pool):
 * backends[first .. first + n) of the set, with the health_check and
 * circuit_breaker settings they run under. "No backend of the group is
 * usable" (the last resort) is asked within the group. */
struct lv_checker_group {
    size_t first, n;
    const struct lv_health_check_cfg *health;
    const struct lv_breaker_cfg *breaker;
};

/* What to check: n backends and their configurations (parallel arrays),
 * split into groups that cover every backend once, in order. The checker
 * reads all of it until it calls on_stopped(arg): the caller keeps it
 * alive until then (main.c holds a reference on the generation). */
struct lv_checker_set {
    struct lv_backend *const *backends;
    const struct lv_backend_cfg *cfgs;
    size_t n;
    const struct lv_checker_group *groups;
    size_t ngroups;
    void (*on_stopped)(void *arg);
    void *arg;
};

/* Starts checking, on loop, every backend of the set whose configuration
 * enables it; backends without checks are marked healthy at once. Returns
 * NULL when nothing is checked (or on ENOMEM): nothing is held then, and
 * on_stopped never runs. */
struct lv_checker *lv_checker_start(uv_loop_t *loop, const struct lv_checker_set *set);

/* Stops every check; once its handles are closed (the loop must run) the
 * checker calls on_stopped and frees itself. NULL is fine. */
void lv_checker_stop(struct lv_checker *ck);

#endif
