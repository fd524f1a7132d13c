/*
 * What happened in the last minutes, second by second: a timer on the main
 * thread sums the workers' counters once a second and keeps the
 * differences (requests/s, error rate, latency quantiles, per backend
 * requests/s and errors) for 10 minutes — the dashboard's charts — and each
 * backend's attempt latencies over the last minute, for /backends/health.
 */
#ifndef LV_ADMIN_HISTORY_H
#define LV_ADMIN_HISTORY_H

#include <uv.h>

struct lv_proxy;
struct lv_strbuf;
struct lv_backend;
struct lv_history;

#define LV_HISTORY_POINTS 600 /* seconds kept */

/* Starts sampling the proxy every second. NULL on ENOMEM. */
struct lv_history *lv_history_start(uv_loop_t *loop, struct lv_proxy *px);
/* Stops; frees itself once its timer is closed. NULL is fine. */
void lv_history_stop(struct lv_history *h);

/* The /api/history document. */
void lv_history_json(struct lv_history *h, struct lv_strbuf *sb);

/* A backend's attempt latency quantiles (ms) over the last minute; 0 when
 * it had no attempts. */
void lv_history_backend_latency(struct lv_history *h, const char *id, double *p50, double *p99);

#endif
