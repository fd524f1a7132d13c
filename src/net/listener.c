/* SO_REUSEPORT listeners (libuv 1.44 has no flag for it, so the socket is
 * made here and handed to uv_tcp_open). */
#include "net/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

static int make_socket(const struct sockaddr *addr, int reuseport)
{
    int fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0)) {
        int err = -errno;
        close(fd);
        return err;
    }
    if (addr->sa_family == AF_INET6) {
        /* "[::]:8080" means IPv6 only; write 0.0.0.0 as well for both. */
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    }
    socklen_t len =
        addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (bind(fd, addr, len) != 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    return fd;
}

int lv_listener_open(uv_tcp_t *handle, const struct sockaddr *addr, int backlog,
                     uv_connection_cb cb)
{
    int fd = make_socket(addr, 1);
    if (fd < 0) return fd;
    int rc = uv_tcp_open(handle, fd);
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return uv_listen((uv_stream_t *)handle, backlog, cb);
}

int lv_listener_probe(const struct sockaddr *addr)
{
    /* Without SO_REUSEPORT, so that another process already listening there
     * (even another levee) is found rather than silently shared with. */
    int fd = make_socket(addr, 0);
    if (fd < 0) return fd;
    close(fd);
    return 0;
}
