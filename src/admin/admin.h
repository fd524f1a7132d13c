/*
 * The admin listener: a small HTTP/1.1 server on the main thread's loop,
 * separate from traffic, serving levee's status (/health,
 * /backends/health, /metrics, /api/history, the dashboard at /) and its
 * controls (POST /backends/{id}/drain|disable|enable, POST /reload).
 * docs/admin-api.md is the contract.
 */
#ifndef LV_ADMIN_ADMIN_H
#define LV_ADMIN_ADMIN_H

#include <uv.h>

struct lv_proxy;
struct lv_history;
struct lv_strbuf;
struct lv_admin;

/* Reloads the configuration (the same as SIGHUP); returns 0, or a negative
 * code with the error lines in errs. */
typedef int (*lv_admin_reload_cb)(void *arg, struct lv_strbuf *errs);

/* Starts the admin server with the proxy's current configuration: a
 * listener unless admin.listen is off (a reload may turn it on). Sets
 * *err < 0 when the address cannot be bound. NULL only on ENOMEM. */
struct lv_admin *lv_admin_start(uv_loop_t *loop, struct lv_proxy *px, struct lv_history *hist,
                                lv_admin_reload_cb reload, void *reload_arg, int *err);

/* After a reload: follows a change of admin.listen. */
void lv_admin_apply(struct lv_admin *adm);

/* Closes the listener and every connection; frees itself once closed. */
void lv_admin_stop(struct lv_admin *adm);

#endif
