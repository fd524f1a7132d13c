/*
 * The admin listener: a small HTTP/1.1 server on the main thread's loop,
 * separate from traffic, serving levee's status (/health,
 * /backends/health, /metrics, /api/history, the dashboard at /) and its
 * controls (POST /backends/{id}/drain|disable|enable, POST /reload,
 * POST /upgrade).
 * docs/admin-api.md is the contract.
 */
#ifndef LV_ADMIN_ADMIN_H
#define LV_ADMIN_ADMIN_H

#include <uv.h>

struct lv_proxy;
struct lv_history;
struct lv_strbuf;
struct lv_admin;

/* What the control endpoints ask of the process (main.c): called on the
 * admin loop's thread, with the arg given to lv_admin_start. */
struct lv_admin_ops {
    /* Reloads the configuration (the same as SIGHUP); returns 0, or -1
     * with the error lines in errs. */
    int (*reload)(void *arg, struct lv_strbuf *errs);
    /* Starts a binary upgrade (the same as SIGUSR2): returns the new
     * process's pid; LV_ADMIN_UPGRADE_REFUSED with the reason in why when
     * this process cannot upgrade now (one is in progress, it is stopping);
     * another negative value with the reason when the start failed. */
    int (*upgrade)(void *arg, struct lv_strbuf *why);
};
#define LV_ADMIN_UPGRADE_REFUSED (-1)

/* Starts the admin server with the proxy's current configuration: a
 * listener unless admin.listen is off (a reload may turn it on). Sets
 * *err < 0 when the address cannot be bound. NULL only on ENOMEM. ops
 * must outlive it. */
struct lv_admin *lv_admin_start(uv_loop_t *loop, struct lv_proxy *px, struct lv_history *hist,
                                const struct lv_admin_ops *ops, void *ops_arg, int *err);

/* After a reload: follows a change of admin.listen. */
void lv_admin_apply(struct lv_admin *adm);

/* Closes the listener and every connection; frees itself once closed. */
void lv_admin_stop(struct lv_admin *adm);

#endif
