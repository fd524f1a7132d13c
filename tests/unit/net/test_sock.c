/*
 * The stream layer (net/sock.c) on a real loop and a real loopback TCP
 * connection, its peer a plain blocking socket: writes batched into one
 * uv_write per flush, adjacent slices merged, a full batch written on its
 * own, small copies in the request's scratch space, the bytes and memory
 * that writes in flight hold (and give back), buffer references held until
 * written, reads into pooled buffers, and closing.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "core/clock.h"
#include "net/sock.h"
#include "unit/lv_test.h"

struct fixture {
    uv_loop_t loop;
    struct lv_sockenv env;
    struct lv_sock s;
    int peer; /* the other end, blocking */
    unsigned written, closed;
    int last_status;
    size_t nread;
    char in[256];
};

static struct fixture *of(struct lv_sock *s)
{
    return s->data;
}

static void on_written(struct lv_sock *s, int status)
{
    of(s)->written++;
    of(s)->last_status = status;
}

static void on_closed(struct lv_sock *s)
{
    of(s)->closed++;
}

static void on_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct fixture *f = of(s);
    if (nread <= 0) return;
    cr_assert_not_null(b);
    cr_assert_lt(f->nread + (size_t)nread, sizeof(f->in));
    memcpy(f->in + f->nread, b->data, (size_t)nread);
    f->nread += (size_t)nread;
}

static void setup(struct fixture *f)
{
    memset(f, 0, sizeof(*f));
    cr_assert_eq(uv_loop_init(&f->loop), 0);
    lv_sockenv_init(&f->env, &f->loop);
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(l, 1), 0);
    cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
    f->peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_eq(connect(f->peer, (struct sockaddr *)&a, sizeof(a)), 0, "%s", strerror(errno));
    int fd = accept(l, NULL, NULL);
    cr_assert_geq(fd, 0);
    close(l);
    cr_assert_eq(lv_sock_init(&f->env, &f->s), 0);
    f->s.data = f;
    f->s.on_written = on_written;
    f->s.on_read = on_read;
    f->s.on_close = on_closed;
    cr_assert_eq(uv_tcp_open(&f->s.tcp, fd), 0);
}

#define RUN_UNTIL(f, cond)                                                                         \
    do {                                                                                           \
        uint64_t deadline_ = lv_clock_ms() + 10000;                                                \
        while (!(cond) && lv_clock_ms() < deadline_)                                               \
            uv_run(&(f)->loop, UV_RUN_ONCE);                                                       \
        cr_assert(cond, "not reached: %s", #cond);                                                 \
    } while (0)

/* Reads exactly n bytes from the peer. */
static void peer_reads(struct fixture *f, const char *want, size_t n)
{
    char got[4096];
    cr_assert_leq(n, sizeof(got));
    size_t have = 0;
    while (have < n) {
        ssize_t r = read(f->peer, got + have, n - have);
        cr_assert_gt(r, 0, "peer read: %s", r < 0 ? strerror(errno) : "EOF");
        have += (size_t)r;
    }
    cr_expect_eq(memcmp(got, want, n), 0, "peer got '%.*s'", (int)n, got);
}

static void teardown(struct fixture *f)
{
    lv_sock_close(&f->s);
    lv_sock_close(&f->s); /* idempotent */
    lv_sockenv_close(&f->env, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    cr_expect_eq(f->closed, 1, "on_close runs once");
    lv_sockenv_dispose(&f->env);
    cr_expect_eq(uv_loop_close(&f->loop), 0, "no handle left");
    cr_expect_eq(lv_stat_read(&f->env.bufs.bytes), 0, "every buffer released");
    close(f->peer);
}

Test(sock, pieces_of_a_turn_go_out_in_one_write)
{
    struct fixture f;
    setup(&f);
    struct lv_buf *b = lv_buf_get(&f.env.bufs);
    cr_assert_not_null(b);
    lv_buf_append(b, "0123456789", 10);
    cr_assert_eq(lv_sock_add(&f.s, "head:", 5, NULL), 0);
    cr_assert_eq(lv_sock_add(&f.s, b->data, 4, b), 0);
    cr_assert_eq(lv_sock_add(&f.s, b->data + 4, 6, b), 0); /* adjacent: merged */
    cr_assert_eq(lv_sock_add(&f.s, ":tail", 5, NULL), 0);
    cr_assert_not_null(f.s.batch);
    cr_expect_eq(f.s.batch->nbufs, 3, "the two adjacent slices are one iovec");
    cr_expect_eq(f.s.batch->nrefs, 1);
    cr_expect_eq(b->refs, 2, "the batch holds the buffer");
    cr_expect_eq(f.s.writes_pending, 0, "nothing written before the flush");

    cr_assert_eq(lv_sock_flush(&f.s), 0);
    cr_expect_null(f.s.batch);
    cr_expect_eq(f.s.writes_pending, 1, "one uv_write");
    cr_expect_eq(f.s.write_pending, 20);
    /* What it holds: the request and the buffer's whole capacity. */
    cr_expect_eq(f.s.write_mem, sizeof(struct lv_wreq) + b->cap);
    cr_expect_eq(lv_sock_queued(&f.s), f.s.write_mem);
    lv_buf_unref(b);
    cr_expect_eq(b->refs, 1, "still held by the write in flight");

    RUN_UNTIL(&f, f.written == 1);
    cr_expect_eq(f.last_status, 0);
    cr_expect_eq(f.s.writes_pending, 0);
    cr_expect_eq(f.s.write_pending, 0);
    cr_expect_eq(f.s.write_mem, 0);
    peer_reads(&f, "head:0123456789:tail", 20);
    cr_expect_eq(lv_stat_read(&f.env.bufs.bytes), 0, "the buffer went back once written");
    teardown(&f);
    LV_EXPECT_NO_LEAKS();
}

Test(sock, a_full_batch_is_written_on_its_own)
{
    struct fixture f;
    setup(&f);
    static const char text[] = "abcdefghijklmnopqrstuvwxyz";
    /* Pieces that are not adjacent: one iovec each. */
    for (unsigned i = 0; i < LV_WREQ_IOV; i++)
        cr_assert_eq(lv_sock_add(&f.s, text + 2 * (i % 13), 1, NULL), 0);
    cr_expect_eq(f.s.writes_pending, 0);
    cr_assert_eq(lv_sock_add(&f.s, "!", 1, NULL), 0); /* one more: the full batch goes */
    cr_expect_eq(f.s.writes_pending, 1);
    cr_expect_eq(f.s.write_pending, LV_WREQ_IOV);
    cr_expect_eq(f.s.batch->nbufs, 1);
    cr_assert_eq(lv_sock_flush(&f.s), 0);
    cr_expect_eq(f.s.writes_pending, 2);
    RUN_UNTIL(&f, f.written == 2);
    char want[LV_WREQ_IOV + 1];
    for (unsigned i = 0; i < LV_WREQ_IOV; i++)
        want[i] = text[2 * (i % 13)];
    want[LV_WREQ_IOV] = '!';
    peer_reads(&f, want, sizeof(want));
    teardown(&f);
    LV_EXPECT_NO_LEAKS();
}

Test(sock, small_copies_use_the_scratch_and_big_ones_an_exact_buffer)
{
    struct fixture f;
    setup(&f);
    char small[100], big[LV_WREQ_SCRATCH + 50];
    memset(small, 's', sizeof(small));
    memset(big, 'b', sizeof(big));
    cr_assert_eq(lv_sock_add_copy(&f.s, small, sizeof(small)), 0);
    cr_expect_eq(f.s.batch->scratch_used, sizeof(small));
    cr_expect_eq(f.s.batch->nrefs, 0, "no buffer for a copy that fits the scratch");
    cr_assert_eq(lv_sock_add_copy(&f.s, big, sizeof(big)), 0);
    cr_expect_eq(f.s.batch->nrefs, 1, "a buffer of its own");
    cr_expect_eq(f.s.batch->refs[0]->cap, sizeof(big), "exactly its size");
    cr_expect_eq(lv_stat_read(&f.env.bufs.bytes), sizeof(big));
    small[0] = big[0] = 'X'; /* copies: the caller's memory is free at once */
    cr_assert_eq(lv_sock_flush(&f.s), 0);
    cr_expect_eq(f.s.write_mem, sizeof(struct lv_wreq) + sizeof(big));
    RUN_UNTIL(&f, f.written == 1);
    char want[sizeof(small) + sizeof(big)];
    memset(want, 's', sizeof(small));
    memset(want + sizeof(small), 'b', sizeof(big));
    peer_reads(&f, want, sizeof(want));
    teardown(&f);
    LV_EXPECT_NO_LEAKS();
}

Test(sock, reads_arrive_in_pooled_buffers_until_stopped)
{
    struct fixture f;
    setup(&f);
    cr_assert_eq(lv_sock_read_start(&f.s), 0);
    cr_assert_eq(write(f.peer, "hello", 5), 5);
    RUN_UNTIL(&f, f.nread == 5);
    cr_expect_eq(memcmp(f.in, "hello", 5), 0);
    cr_expect_eq(lv_stat_read(&f.env.bufs.bytes), 0, "the read buffer went back");
    lv_sock_read_stop(&f.s);
    cr_assert_eq(write(f.peer, "more", 4), 4);
    for (int i = 0; i < 5; i++)
        uv_run(&f.loop, UV_RUN_NOWAIT);
    cr_expect_eq(f.nread, 5, "nothing is read while stopped");
    cr_assert_eq(lv_sock_read_start(&f.s), 0);
    RUN_UNTIL(&f, f.nread == 9);
    cr_expect_eq(memcmp(f.in, "hellomore", 9), 0);
    teardown(&f);
    LV_EXPECT_NO_LEAKS();
}

Test(sock, closing_drops_an_unwritten_batch_and_its_references)
{
    struct fixture f;
    setup(&f);
    struct lv_buf *b = lv_buf_get(&f.env.bufs);
    lv_buf_append(b, "xyz", 3);
    cr_assert_eq(lv_sock_add(&f.s, b->data, 3, b), 0);
    lv_buf_unref(b);
    cr_expect_neq(lv_stat_read(&f.env.bufs.bytes), 0, "held by the batch");
    lv_sock_close(&f.s);
    cr_expect_null(f.s.batch);
    cr_expect_eq(lv_stat_read(&f.env.bufs.bytes), 0, "released with the batch");
    cr_expect_eq(lv_sock_flush(&f.s), 0, "nothing left to write");
    cr_expect_eq(lv_sock_read_start(&f.s), 0, "a closing socket does not read");
    cr_expect_not(f.s.reading);
    teardown(&f);
    cr_expect_eq(f.written, 0, "on_written never runs for a closing socket");
    LV_EXPECT_NO_LEAKS();
}

Test(sock, a_write_the_kernel_takes_at_once_needs_no_uv_write_and_is_reported_from_the_loop)
{
    struct fixture f;
    setup(&f);
    cr_assert_eq(lv_sock_add(&f.s, "at once", 7, NULL), 0);
    cr_assert_eq(lv_sock_flush(&f.s), 0);
    /* Written inside the call, without a uv_write request: libuv would
     * re-arm the fd (epoll_ctl) to drain its write queue. */
    cr_expect_eq(f.loop.active_reqs.count, 0, "no uv_write");
    peer_reads(&f, "at once", 7);
    cr_expect_eq(f.written, 0, "reported from the loop, not from inside lv_sock_flush");
    cr_expect_eq(f.s.writes_pending, 1, "in flight until reported");
    cr_expect_eq(f.s.write_pending, 7);
    uv_run(&f.loop, UV_RUN_NOWAIT);
    cr_expect_eq(f.written, 1);
    cr_expect_eq(f.last_status, 0);
    cr_expect_eq(f.s.writes_pending, 0);
    cr_expect_eq(f.s.write_pending, 0);
    cr_expect_eq(f.s.write_mem, 0);
    /* A socket closed before the report: its write is dropped, unreported. */
    cr_assert_eq(lv_sock_add(&f.s, "dropped", 7, NULL), 0);
    cr_assert_eq(lv_sock_flush(&f.s), 0);
    teardown(&f);
    cr_expect_eq(f.written, 1, "no report to a closing socket");
    LV_EXPECT_NO_LEAKS();
}

Test(sock, what_the_kernel_does_not_take_at_once_follows_in_order)
{
    struct fixture f;
    setup(&f);
    int small = 4096;
    cr_assert_eq(setsockopt(f.s.tcp.io_watcher.fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)),
                 0);
    enum { N = 1 << 20 };
    static char big[N];
    for (size_t i = 0; i < N; i++)
        big[i] = (char)('a' + i % 23);
    cr_assert_eq(lv_sock_add(&f.s, "<", 1, NULL), 0);
    cr_assert_eq(lv_sock_add(&f.s, big, N, NULL), 0);
    cr_assert_eq(lv_sock_add(&f.s, ">", 1, NULL), 0);
    cr_assert_eq(lv_sock_flush(&f.s), 0);
    cr_expect_eq(f.loop.active_reqs.count, 1, "the rest waits in a uv_write");
    static char got[N + 2];
    size_t have = 0;
    uint64_t deadline = lv_clock_ms() + 10000;
    while ((have < N + 2 || f.written == 0) && lv_clock_ms() < deadline) {
        ssize_t r = recv(f.peer, got + have, N + 2 - have, MSG_DONTWAIT);
        if (r > 0) have += (size_t)r;
        uv_run(&f.loop, UV_RUN_NOWAIT);
    }
    cr_assert_eq(have, N + 2);
    cr_expect_eq(got[0], '<');
    cr_expect_eq(memcmp(got + 1, big, N), 0, "the rest follows what went at once");
    cr_expect_eq(got[N + 1], '>');
    cr_expect_eq(f.written, 1, "one report");
    cr_expect_eq(f.s.write_pending, 0);
    teardown(&f);
    LV_EXPECT_NO_LEAKS();
}
