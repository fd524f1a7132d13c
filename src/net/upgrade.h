/*
 * A binary upgrade, the running (old) process's side: it starts the new
 * binary (the path levee was started as, resolved when it started, with the
 * same arguments, environment and working directory) and hands it every
 * listening socket of the process as inherited descriptors
 * (lv_listener_export; the new process takes them with net/inherit.h).
 * The sockets never close, so nothing queued in them is lost, and both
 * processes accept from them until the old one stops. The new process says
 * when it serves by writing on a pipe; until then, and if it never does,
 * the old one serves as before.
 *
 *   STARTING ──"READY" on the pipe──► DONE: cb(ready); the new process runs on
 *      │
 *      ├──the new process exits──► DONE: cb(failed, its exit status)
 *      │
 *      └──timeout──► cb(failed) and SIGTERM ──► KILLING ──exits──► DONE
 *                                                 └──timeout again──► SIGKILL
 *
 * lv_upgrade_cancel in STARTING sends SIGTERM too (KILLING, no callback).
 * The object frees itself once DONE (after the new process exited, in the
 * failed cases: it is reaped, never left a zombie while the old one runs).
 */
#ifndef LV_NET_UPGRADE_H
#define LV_NET_UPGRADE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct lv_upgrade;

/* Called once, on the loop's thread: ready, or failed with why (a static
 * or short-lived text: copy it to keep it). After it returns the object is
 * no longer the caller's. */
typedef void (*lv_upgrade_cb)(struct lv_upgrade *u, bool ready, const char *why, void *arg);

/*
 * Remembers how this process was started, for a later upgrade: argv is
 * copied (call it before getopt permutes it) and argv[0] is made an
 * absolute path now, against the working directory, or PATH when it has no
 * slash. Symbolic links are not resolved, so that a link moved to a new
 * version is followed; /proc/self/exe is not used, since after a package
 * upgrade it names the deleted old file. Returns 0, or -1 (logged).
 */
int lv_upgrade_init(int argc, char **argv);

/* The path lv_upgrade_init found, or NULL. */
const char *lv_upgrade_binary(void);

/*
 * Starts the new process and waits for it at most timeout_ms. Returns the
 * upgrade, or NULL with *err set (a libuv error code; the reason is
 * logged) when nothing could be started. cb is never called from inside
 * this call.
 */
struct lv_upgrade *lv_upgrade_start(uv_loop_t *loop, uint64_t timeout_ms, lv_upgrade_cb cb,
                                    void *arg, int *err);

/* The new process's pid. */
int lv_upgrade_pid(const struct lv_upgrade *u);

/* Gives up before the callback: the new process gets SIGTERM, and cb is
 * not called. */
void lv_upgrade_cancel(struct lv_upgrade *u);

#endif
