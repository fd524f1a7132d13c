/*
 * Listening sockets. Each worker opens its own socket on every listen
 * address with SO_REUSEPORT, so the kernel spreads connections across
 * workers and no accept lock is needed.
 */
#ifndef LV_NET_LISTENER_H
#define LV_NET_LISTENER_H

#include <sys/socket.h>
#include <uv.h>

/*
 * Opens, binds (SO_REUSEADDR + SO_REUSEPORT) and listens on addr with the
 * given backlog; the handle must be uv_tcp_init'ed by the caller. Returns 0
 * or a libuv error code.
 */
int lv_listener_open(uv_tcp_t *handle, const struct sockaddr *addr, int backlog,
                     uv_connection_cb cb);

/* Checks that addr can be bound (used by `levee -t` and before starting
 * workers, so that a busy port is reported once, clearly). */
int lv_listener_probe(const struct sockaddr *addr);

#endif
