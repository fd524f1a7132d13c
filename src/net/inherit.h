/*
 * Listening sockets this process was given rather than opened: by systemd
 * (socket activation: LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES, see
 * sd_listen_fds(3)) or by the levee that started it for a binary upgrade
 * (LEVEE_UPGRADE_PID, LEVEE_UPGRADE_FDS, LEVEE_UPGRADE_READY_FD; see
 * net/upgrade.h). A socket is matched to a listen address by the address it
 * is bound to (getsockname), never by its order or name.
 *
 * Listeners take the sockets bound to their address instead of opening
 * their own (lv_inherit_take); so the accept queues the previous process
 * filled are served, and no socket closes during a hand-over. When the k
 * sockets of an address are fewer than the n workers (systemd passes one
 * socket per address), workers share them: worker i accepts on socket
 * i mod k (each has its own descriptor of it, and the first to accept a
 * connection gets it). With k >= n, worker i accepts on sockets i, i+n,
 * i+2n...: every socket is served.
 *
 * Life: lv_inherit_collect once at start (main thread, before any other
 * thread), lv_inherit_take from the workers and the admin server while they
 * set up (any thread), lv_inherit_release once they have (main thread).
 */
#ifndef LV_NET_INHERIT_H
#define LV_NET_INHERIT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* Sockets held at most (more are closed, with a warning). */
#define LV_INHERIT_MAX 256

/* The environment a levee sets for the new process of an upgrade. */
#define LV_UPGRADE_ENV_PID "LEVEE_UPGRADE_PID"           /* the starting levee's pid */
#define LV_UPGRADE_ENV_FDS "LEVEE_UPGRADE_FDS"           /* "3,4,5": listening sockets */
#define LV_UPGRADE_ENV_READY_FD "LEVEE_UPGRADE_READY_FD" /* where to say READY */
/* What the new process writes on the ready descriptor once it serves. */
#define LV_UPGRADE_READY_MSG "READY\n"

/*
 * Collects the sockets: from an upgrade when LEVEE_UPGRADE_PID is this
 * process's parent (the variables are ignored, with a warning, otherwise),
 * and from systemd. Each must be a listening TCP socket (anything else is
 * logged and closed); it is made non-blocking and close-on-exec. The
 * variables are removed from the environment. In the new process of an
 * upgrade, every other descriptor above 2 is closed (what the old process
 * leaked into it). Returns the number of sockets held.
 */
int lv_inherit_collect(void);

/* Was this process started by an upgrade, and has it not reported yet? */
bool lv_inherit_upgrading(void);

/* Sockets held that are bound to addr. */
size_t lv_inherit_count(const struct sockaddr *addr);

/*
 * The sockets bound to addr that worker `index` of `n` accepts on (see
 * above): writes new descriptors (close-on-exec, non-blocking; the caller
 * owns them) to fds, at most max, and returns how many (0: none held for
 * addr), or a negative errno-style code (none written then).
 */
int lv_inherit_take(const struct sockaddr *addr, unsigned index, unsigned n, int *fds, size_t max);

/*
 * The rule above, alone: which of k sockets (0..k-1) worker `index` of `n`
 * accepts on. Writes their indexes to out, at most max, and returns how
 * many (0 when k is 0 or index >= n).
 */
size_t lv_inherit_share(size_t k, unsigned index, unsigned n, size_t *out, size_t max);

/*
 * Closes the descriptors held. Once the listeners have taken theirs, after
 * the start: a socket that none took (its address is not in the
 * configuration) is logged; if it came from an upgrade it is closed for
 * good (the connections in its queue are reset, as at any removal of a
 * listen address); systemd keeps its own. Safe to call more than once.
 */
void lv_inherit_release(void);

/*
 * Tells the levee that started this process that it serves now (writes
 * LV_UPGRADE_READY_MSG to the ready descriptor and closes it). Does
 * nothing when lv_inherit_upgrading() is false. Returns 0, or -1 if the old
 * process could not be told (it is gone: logged).
 */
int lv_inherit_report_ready(void);

#endif
