/*
 * idleconns — opens N client connections to HOST:PORT and holds them idle, so that
 * bench/run.sh can read how much resident memory a proxy spends per idle connection.
 *
 * Two modes:
 *   request  each connection sends one keep-alive GET, reads the whole response and then
 *            sits idle: the realistic idle client of a reverse proxy (default);
 *   silent   each connection only completes the TCP handshake and never sends a byte.
 *
 * At most -c connections are in flight (connecting or waiting for their response) at a
 * time, so that the proxy needs only a few backend connections and its accept queue never
 * overflows. Once every connection is open (or the -t deadline has passed) it prints one
 * line to stdout:
 *
 *   ready open=N failed=F
 *
 * then holds the connections until SIGTERM/SIGINT or -H seconds, and prints
 *
 *   done alive=A closed_by_peer=C failed=F
 *
 * A connection the proxy closes while held counts in closed_by_peer: it means a proxy
 * timeout is shorter than the measurement, which would make the memory figure wrong.
 *
 * Build: cc -O2 -o idleconns bench/idleconns.c  (bench/run.sh does it).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { ST_NEW, ST_CONNECTING, ST_READING, ST_IDLE, ST_DONE };

struct conn {
    int fd;
    enum state state;
    char *head; /* response head being collected; freed once the head is parsed */
    size_t head_len;
    long body_left; /* -1: head not parsed yet */
};

#define HEAD_MAX 8192

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
    fprintf(stderr, "usage: idleconns [-m request|silent] [-c inflight] [-t open_deadline_s]\n"
                    "                 [-H hold_s] [-p path] HOST PORT N\n");
    exit(2);
}

/* Every connection needs a descriptor: raise the soft limit to the hard one. */
static int raise_nofile(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    if ((long)rl.rlim_cur < need) {
        fprintf(stderr, "idleconns: RLIMIT_NOFILE hard limit %ld < %ld needed\n", (long)rl.rlim_cur,
                need);
        return -1;
    }
    return 0;
}

static int start_connect(struct conn *c, int ep, long idx, const struct sockaddr_in *addr)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (const struct sockaddr *)addr, sizeof *addr) != 0 && errno != EINPROGRESS)
        return -1;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = (uint64_t)idx};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) return -1;
    c->state = ST_CONNECTING;
    return 0;
}

/* Watch an idle connection only for the peer closing it. */
static void make_idle(struct conn *c, int ep, long idx)
{
    free(c->head);
    c->head = NULL;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.u64 = (uint64_t)idx};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->state = ST_IDLE;
}

static void finish(struct conn *c)
{
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    free(c->head);
    c->head = NULL;
    c->state = ST_DONE;
}

/* Parses the collected head: returns the body length, or -1 if it cannot be delimited. */
static long body_length(const char *head, size_t len)
{
    if (len < 12 || strncmp(head, "HTTP/1.", 7) != 0 || head[9] != '2') return -1;
    const char *p = head;
    const char *end = head + len;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) break;
        static const char cl[] = "content-length:";
        if ((size_t)(eol - p) > sizeof cl - 1 && strncasecmp(p, cl, sizeof cl - 1) == 0)
            return strtol(p + sizeof cl - 1, NULL, 10);
        p = eol + 2;
    }
    return -1; /* chunked or close-delimited: not a response a keep-alive idle test expects */
}

/* Reads what has arrived; returns 1 when the response is complete, 0 for more, -1 on error. */
static int read_response(struct conn *c)
{
    char buf[65536];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n == 0) return -1;
        if (n < 0) return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        size_t used = 0;
        if (c->body_left < 0) {
            size_t take = (size_t)n;
            if (c->head_len + take > HEAD_MAX) take = HEAD_MAX - c->head_len;
            memcpy(c->head + c->head_len, buf, take);
            c->head_len += take;
            char *eoh = memmem(c->head, c->head_len, "\r\n\r\n", 4);
            if (!eoh) {
                if (c->head_len == HEAD_MAX) return -1;
                continue;
            }
            size_t head_size = (size_t)(eoh + 4 - c->head);
            c->body_left = body_length(c->head, head_size);
            if (c->body_left < 0) return -1;
            /* Body bytes that came with the head. */
            size_t extra = c->head_len - head_size;
            used = take;
            c->body_left -= (long)extra;
        }
        c->body_left -= (long)((size_t)n - used);
        if (c->body_left == 0) return 1;
        if (c->body_left < 0) return -1; /* more bytes than announced */
    }
}

int main(int argc, char **argv)
{
    const char *mode = "request";
    const char *path = "/";
    long inflight_max = 64;
    double open_deadline = 60, hold = 300;
    int opt;
    while ((opt = getopt(argc, argv, "m:c:t:H:p:")) != -1) {
        switch (opt) {
        case 'm': mode = optarg; break;
        case 'c': inflight_max = strtol(optarg, NULL, 10); break;
        case 't': open_deadline = strtod(optarg, NULL); break;
        case 'H': hold = strtod(optarg, NULL); break;
        case 'p': path = optarg; break;
        default: usage();
        }
    }
    if (argc - optind != 3) usage();
    int silent = strcmp(mode, "silent") == 0;
    if (!silent && strcmp(mode, "request") != 0) usage();
    const char *host = argv[optind];
    long port = strtol(argv[optind + 1], NULL, 10);
    long total = strtol(argv[optind + 2], NULL, 10);
    if (port <= 0 || port > 65535 || total <= 0 || inflight_max <= 0) usage();

    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) usage();
    if (raise_nofile(total + 16) != 0) return 1;

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    char request[512];
    int request_len = snprintf(request, sizeof request,
                               "GET %s HTTP/1.1\r\nHost: %s:%ld\r\nUser-Agent: idleconns\r\n\r\n",
                               path, host, port);

    struct conn *conns = calloc((size_t)total, sizeof *conns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (!conns || ep < 0) {
        perror("idleconns");
        return 1;
    }
    for (long i = 0; i < total; i++)
        conns[i].fd = -1;

    long next = 0, inflight = 0, open_count = 0, failed = 0, closed_by_peer = 0;
    int ready = 0;
    double t0 = now_s(), ready_at = 0;
    struct epoll_event events[256];

    while (!stop_requested) {
        /* Keep the number of connections in flight at inflight_max. */
        while (!ready && inflight < inflight_max && next < total) {
            struct conn *c = &conns[next];
            if (start_connect(c, ep, next, &addr) != 0) {
                finish(c);
                failed++;
            } else {
                inflight++;
            }
            next++;
        }
        double now = now_s();
        if (!ready && ((next == total && inflight == 0) || now - t0 > open_deadline)) {
            ready = 1;
            ready_at = now;
            /* Not open by the deadline counts as failed. */
            printf("ready open=%ld failed=%ld\n", open_count, total - open_count);
            fflush(stdout);
        }
        if (ready && now - ready_at > hold) break;

        int n = epoll_wait(ep, events, 256, 100);
        if (n < 0 && errno != EINTR) {
            perror("epoll_wait");
            return 1;
        }
        for (int k = 0; k < n; k++) {
            long idx = (long)events[k].data.u64;
            struct conn *c = &conns[idx];
            switch (c->state) {
            case ST_CONNECTING: {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err != 0 || (events[k].events & (EPOLLERR | EPOLLHUP))) {
                    finish(c);
                    failed++;
                    inflight--;
                } else if (silent) {
                    make_idle(c, ep, idx);
                    open_count++;
                    inflight--;
                } else if (write(c->fd, request, (size_t)request_len) != request_len) {
                    finish(c);
                    failed++;
                    inflight--;
                } else {
                    c->head = malloc(HEAD_MAX);
                    c->head_len = 0;
                    c->body_left = -1;
                    c->state = ST_READING;
                    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)idx};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
                break;
            }
            case ST_READING: {
                int r = read_response(c);
                if (r < 0) {
                    finish(c);
                    failed++;
                    inflight--;
                } else if (r > 0) {
                    make_idle(c, ep, idx);
                    open_count++;
                    inflight--;
                }
                break;
            }
            case ST_IDLE:
                /* An idle connection only wakes up when the proxy closes it. */
                finish(c);
                open_count--;
                closed_by_peer++;
                break;
            default: break;
            }
        }
    }
    if (!ready) printf("ready open=%ld failed=%ld\n", open_count, total - open_count);
    printf("done alive=%ld closed_by_peer=%ld failed=%ld\n", open_count, closed_by_peer, failed);
    fflush(stdout);
    return 0;
}
