/*
 * Active health checks of the backends that ask for them
 * (`health_check_enabled`), on one event loop (the main thread's).
 */
#ifndef LV_UPSTREAM_CHECKER_H
#define LV_UPSTREAM_CHECKER_H

#include <stddef.h>
#include <uv.h>

struct lv_config;
struct lv_backend;
struct lv_checker;

/* Starts checking every backend of `backends` whose configuration enables
 * it, on loop. Returns NULL when there is nothing to check. cfg and the
 * backends must outlive the checker. */
struct lv_checker *lv_checker_start(uv_loop_t *loop, const struct lv_config *cfg,
                                    struct lv_backend **backends, size_t n);

/* Stops every check; the checker frees itself once its handles are closed
 * (the loop must run). NULL is fine. */
void lv_checker_stop(struct lv_checker *ck);

#endif
