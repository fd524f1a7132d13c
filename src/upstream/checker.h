/*
 * Active health checks of the backends that ask for them
 * (`health_check_enabled`), on one event loop (the main thread's).
 */
#ifndef LV_UPSTREAM_CHECKER_H
#define LV_UPSTREAM_CHECKER_H

#include <stddef.h>
#include <uv.h>

struct lv_gen;
struct lv_checker;

/* Starts checking every backend of generation g whose configuration
 * enables it, on loop (holding a reference on g until stopped); backends
 * without checks are marked healthy. Returns NULL when nothing is checked. */
struct lv_checker *lv_checker_start(uv_loop_t *loop, struct lv_gen *g);

/* Stops every check; the checker frees itself once its handles are closed
 * (the loop must run). NULL is fine. */
void lv_checker_stop(struct lv_checker *ck);

#endif
