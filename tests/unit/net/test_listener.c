/*
 * The acceptor (net/listener.c) on a real loop and a real listening socket:
 * its states (RUNNING, PAUSED_FULL, BACKOFF, CLOSING), the accept batch, the
 * back-off when accept(2) fails for want of descriptors, and closing. Each
 * Criterion test runs in its own process, so lowering RLIMIT_NOFILE stays
 * in it. Nothing waits on time except the back-off timer, and the checks
 * are on states and counts, never on durations.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/clock.h"
#include "net/listener.h"
#include "unit/lv_test.h"

struct owner {
    unsigned room;     /* connections reserve may still grant */
    unsigned reserved; /* granted, not yet accepted or unreserved */
    unsigned accepted, unreserved, failed, closed;
    int last_err;
    uint64_t last_backoff;
    int fds[256];
};

static bool reserve(struct lv_acceptor *a)
{
    struct owner *o = a->data;
    if (o->room == 0) return false;
    o->room--;
    o->reserved++;
    return true;
}

static void unreserve(struct lv_acceptor *a)
{
    struct owner *o = a->data;
    o->reserved--;
    o->room++;
    o->unreserved++;
}

static void accepted(struct lv_acceptor *a, int fd)
{
    struct owner *o = a->data;
    o->reserved--;
    cr_assert_lt(o->accepted, 256);
    o->fds[o->accepted++] = fd;
}

static void failed(struct lv_acceptor *a, int err, uint64_t backoff_ms)
{
    struct owner *o = a->data;
    o->failed++;
    o->last_err = err;
    o->last_backoff = backoff_ms;
}

static void on_closed(struct lv_acceptor *a)
{
    ((struct owner *)a->data)->closed++;
}

static const struct lv_acceptor_ops ops = {reserve, unreserve, accepted, failed};

struct fixture {
    uv_loop_t loop;
    struct lv_acceptor a;
    struct owner o;
    struct sockaddr_in addr; /* where it listens */
    int clients[256];
    unsigned nclients;
};

static void open_acceptor(struct fixture *f, unsigned room)
{
    memset(f, 0, sizeof(*f));
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    f->o.room = room;
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(lv_acceptor_open(&f->a, &f->loop, (struct sockaddr *)&any, 128, &ops, &f->o), 0);
    socklen_t len = sizeof(f->addr);
    cr_assert_eq(getsockname(f->a.fd, (struct sockaddr *)&f->addr, &len), 0);
    cr_assert_eq(f->a.state, LV_ACCEPTOR_RUNNING);
}

/* A client connection: complete once it is in the listener's backlog. */
static void connect_clients(struct fixture *f, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        cr_assert_geq(fd, 0);
        cr_assert_eq(connect(fd, (struct sockaddr *)&f->addr, sizeof(f->addr)), 0, "%s",
                     strerror(errno));
        f->clients[f->nclients++] = fd;
    }
}

/* Runs the loop until cond holds (a generous deadline: a failure, not a hang). */
#define RUN_UNTIL(f, cond)                                                                         \
    do {                                                                                           \
        uint64_t deadline_ = lv_clock_ms() + 10000;                                                \
        while (!(cond) && lv_clock_ms() < deadline_)                                               \
            uv_run(&(f)->loop, UV_RUN_ONCE);                                                       \
        cr_assert(cond, "not reached: %s", #cond);                                                 \
    } while (0)

static void close_all(struct fixture *f)
{
    lv_acceptor_close(&f->a, on_closed);
    cr_expect_eq(f->a.state, LV_ACCEPTOR_CLOSING);
    lv_acceptor_close(&f->a, on_closed); /* again: nothing */
    cr_expect_eq(f->a.fd, -1, "the port is released at once");
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cr_expect_eq(f->o.closed, 1, "on_close runs once");
    cr_expect_eq(uv_loop_close(&f->loop), 0, "no handle left");
    for (unsigned i = 0; i < f->o.accepted; i++)
        close(f->o.fds[i]);
    for (unsigned i = 0; i < f->nclients; i++)
        close(f->clients[i]);
}

Test(acceptor, accepts_what_waits_then_polls_again)
{
    struct fixture f;
    open_acceptor(&f, 100);
    connect_clients(&f, 3);
    RUN_UNTIL(&f, f.o.accepted == 3);
    cr_expect_eq(f.a.state, LV_ACCEPTOR_RUNNING);
    cr_expect_eq(f.o.reserved, 0);
    cr_expect_geq(f.o.unreserved, 1, "the accept that found nothing gave its room back");
    connect_clients(&f, 2);
    RUN_UNTIL(&f, f.o.accepted == 5);
    cr_expect_eq(f.o.failed, 0);
    close_all(&f);
}

Test(acceptor, one_wakeup_accepts_a_batch_at_most)
{
    struct fixture f;
    open_acceptor(&f, 200);
    connect_clients(&f, LV_ACCEPT_BATCH + 6);
    RUN_UNTIL(&f, f.o.accepted > 0);
    cr_expect_eq(f.o.accepted, LV_ACCEPT_BATCH, "the rest waits for the next turn");
    RUN_UNTIL(&f, f.o.accepted == LV_ACCEPT_BATCH + 6);
    close_all(&f);
}

Test(acceptor, no_room_pauses_until_resumed)
{
    struct fixture f;
    open_acceptor(&f, 2);
    connect_clients(&f, 5);
    RUN_UNTIL(&f, f.a.state == LV_ACCEPTOR_PAUSED_FULL);
    cr_expect_eq(f.o.accepted, 2);
    /* Paused: the socket is not polled, the rest wait in the backlog. */
    for (int i = 0; i < 5; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    cr_expect_eq(f.o.accepted, 2);
    lv_acceptor_resume(&f.a); /* still no room: it pauses again at once */
    RUN_UNTIL(&f, f.a.state == LV_ACCEPTOR_PAUSED_FULL);
    cr_expect_eq(f.o.accepted, 2);
    f.o.room = 10;
    lv_acceptor_resume(&f.a);
    cr_expect_eq(f.a.state, LV_ACCEPTOR_RUNNING);
    RUN_UNTIL(&f, f.o.accepted == 5);
    lv_acceptor_resume(&f.a); /* running: a no-op */
    cr_expect_eq(f.a.state, LV_ACCEPTOR_RUNNING);
    close_all(&f);
}

Test(acceptor, out_of_descriptors_backs_off_and_recovers)
{
    struct fixture f;
    open_acceptor(&f, 100);
    connect_clients(&f, 2);
    /* Leave no descriptor for accept(2): the soft limit at the highest
     * open descriptor. */
    struct rlimit rl;
    cr_assert_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t was = rl.rlim_cur;
    int probe = dup(0);
    cr_assert_geq(probe, 0);
    close(probe);
    rl.rlim_cur = (rlim_t)probe;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);

    RUN_UNTIL(&f, f.o.failed == 1);
    cr_expect_eq(f.a.state, LV_ACCEPTOR_BACKOFF);
    cr_expect_eq(f.o.last_err, UV_EMFILE);
    cr_expect_eq(f.o.last_backoff, LV_ACCEPT_BACKOFF_MIN_MS);
    cr_expect_eq(f.o.accepted, 0);
    cr_expect_eq(f.o.reserved, 0, "the room of a failed accept is given back");
    /* Still failing after the back-off: twice as long. */
    RUN_UNTIL(&f, f.o.failed == 2);
    cr_expect_eq(f.o.last_backoff, 2 * LV_ACCEPT_BACKOFF_MIN_MS);
    cr_expect_eq(f.a.state, LV_ACCEPTOR_BACKOFF);

    rl.rlim_cur = was;
    cr_assert_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    RUN_UNTIL(&f, f.o.accepted == 2);
    cr_expect_eq(f.a.state, LV_ACCEPTOR_RUNNING);
    cr_expect_eq(f.a.backoff_ms, LV_ACCEPT_BACKOFF_MIN_MS, "a success resets the back-off");
    cr_expect_eq(f.o.failed, 2);
    close_all(&f);
}

Test(acceptor, closing_while_paused)
{
    struct fixture f;
    open_acceptor(&f, 0);
    connect_clients(&f, 1);
    RUN_UNTIL(&f, f.a.state == LV_ACCEPTOR_PAUSED_FULL);
    close_all(&f); /* paused: both handles still close, once */
    LV_EXPECT_NO_LEAKS();
}

Test(listener, probe_finds_a_port_in_use)
{
    struct fixture f;
    open_acceptor(&f, 0);
    /* Another socket listening there: probe (no SO_REUSEPORT) is refused. */
    cr_expect_eq(lv_listener_probe((struct sockaddr *)&f.addr), UV_EADDRINUSE);
    close_all(&f);
    cr_expect_eq(lv_listener_probe((struct sockaddr *)&f.addr), 0, "free once closed");
}
