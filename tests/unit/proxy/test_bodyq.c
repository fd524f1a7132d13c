/* The request body queue: large pieces by reference, small ones compacted
 * into tails, byte offsets for cursors (proxy/bodyq.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "core/buf.h"
#include "proxy/bodyq.h"

struct fx {
    struct lv_bufpool pool;
    struct lv_bodyq q;
};

static void fx_init(struct fx *f)
{
    lv_bufpool_init(&f->pool, 8);
    lv_bodyq_init(&f->q, &f->pool);
}

/* Every buffer is back once the queue is gone and the test let go of its own. */
static void fx_dispose(struct fx *f)
{
    lv_bodyq_dispose(&f->q);
    cr_expect_eq(f->pool.out, 0, "a pooled buffer reference was not released");
    cr_expect_eq(lv_stat_read(&f->pool.bytes), 0, "buffer memory still counted as in use");
    lv_bufpool_dispose(&f->pool);
}

/* The byte at absolute offset i of the test bodies. */
static char body_byte(uint64_t i)
{
    return (char)('a' + (i * 7 + i / 26) % 26);
}

/* A read buffer holding n body bytes that start at body offset from. */
static struct lv_buf *read_buf(struct fx *f, uint64_t from, uint32_t n)
{
    struct lv_buf *b = lv_buf_get(&f->pool);
    cr_assert_not_null(b);
    for (uint32_t i = 0; i < n; i++)
        b->data[i] = body_byte(from + i);
    b->len = n;
    return b;
}

/* Pushes n body bytes as one read; the reader drops its buffer after. */
static void push_read(struct fx *f, uint32_t n)
{
    struct lv_buf *b = read_buf(f, lv_bodyq_end(&f->q), n);
    cr_assert_eq(lv_bodyq_push(&f->q, b, b->data, n), 0);
    lv_buf_unref(b);
}

/* Reads the body from offset from to the end through peek, checking every
 * byte; returns the number of runs it came in. */
static unsigned check_from(const struct lv_bodyq *q, uint64_t from)
{
    unsigned runs = 0;
    uint64_t off = from;
    while (off < lv_bodyq_end(q)) {
        struct lv_slice s;
        uint32_t n = lv_bodyq_peek(q, off, &s);
        cr_assert_gt(n, 0, "offset %llu is held", (unsigned long long)off);
        cr_assert_eq(s.off, off);
        for (uint32_t i = 0; i < n; i++)
            cr_assert_eq(s.p[i], body_byte(off + i), "byte %llu", (unsigned long long)(off + i));
        off += n;
        runs++;
    }
    return runs;
}

Test(bodyq, starts_empty)
{
    struct fx f;
    fx_init(&f);
    struct lv_slice s;
    cr_expect_eq(lv_bodyq_end(&f.q), 0);
    cr_expect_eq(lv_bodyq_peek(&f.q, 0, &s), 0);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 0), 0);
    cr_expect_eq(lv_bodyq_mem_from(&f.q, 0), 0);
    cr_expect_eq(f.q.mem, 0);
    cr_expect_null(f.q.tail, "no tail until a small piece comes");
    cr_expect_not(f.q.dropped);
    fx_dispose(&f);
}

Test(bodyq, a_full_read_is_kept_by_reference)
{
    struct fx f;
    fx_init(&f);
    struct lv_buf *b = read_buf(&f, 0, LV_BUF_SIZE);
    cr_assert_eq(lv_bodyq_push(&f.q, b, b->data, LV_BUF_SIZE), 0);
    cr_expect_eq(b->refs, 2, "the queue holds the read buffer itself");
    struct lv_slice s;
    cr_expect_eq(lv_bodyq_peek(&f.q, 0, &s), LV_BUF_SIZE);
    cr_expect_eq(s.buf, b);
    cr_expect_eq(s.p, b->data, "zero copy");
    cr_expect_eq(f.q.mem, LV_BUF_SIZE);
    cr_expect_null(f.q.tail);
    lv_buf_unref(b);
    fx_dispose(&f);
}

Test(bodyq, half_a_buffer_is_the_line_between_reference_and_copy)
{
    struct fx f;
    fx_init(&f);
    struct lv_buf *b = read_buf(&f, 0, LV_BUF_SIZE / 2);
    lv_bodyq_push(&f.q, b, b->data, LV_BUF_SIZE / 2);
    cr_expect_eq(b->refs, 2, "half a buffer: by reference");
    lv_buf_unref(b);
    uint64_t at = lv_bodyq_end(&f.q);
    struct lv_buf *c = read_buf(&f, at, LV_BUF_SIZE / 2 - 1);
    lv_bodyq_push(&f.q, c, c->data, LV_BUF_SIZE / 2 - 1);
    cr_expect_eq(c->refs, 1, "less than half: copied, the read buffer is not kept");
    struct lv_slice s;
    lv_bodyq_peek(&f.q, at, &s);
    cr_expect_neq(s.buf, c);
    lv_buf_unref(c);
    cr_expect_eq(check_from(&f.q, 0), 2);
    fx_dispose(&f);
}

Test(bodyq, a_small_piece_is_copied_and_outlives_its_read_buffer)
{
    struct fx f;
    fx_init(&f);
    struct lv_buf *b = read_buf(&f, 0, 10);
    cr_assert_eq(lv_bodyq_push(&f.q, b, b->data, 10), 0);
    cr_expect_eq(b->refs, 1);
    memset(b->data, 'X', 10); /* the read buffer is reused for something else */
    lv_buf_unref(b);
    cr_expect_eq(f.pool.out, 0, "no LV_BUF_SIZE buffer is held for 10 bytes");
    cr_expect_eq(check_from(&f.q, 0), 1);
    cr_expect_eq(f.q.tail->cap, LV_BODYQ_TAIL_MIN, "the first tail is small");
    cr_expect_eq(f.q.mem, LV_BODYQ_TAIL_MIN);
    cr_expect_eq(lv_stat_read(&f.pool.bytes), LV_BODYQ_TAIL_MIN);
    fx_dispose(&f);
}

/* The attack of issue 11: one byte per read. Each read lands in a fresh
 * LV_BUF_SIZE buffer; none of them may stay alive. */
Test(bodyq, a_trickle_of_one_byte_reads_holds_a_few_buffers)
{
    struct fx f;
    fx_init(&f);
    for (int i = 0; i < 3000; i++)
        push_read(&f, 1);
    cr_expect_eq(lv_bodyq_end(&f.q), 3000);
    cr_expect_eq(f.pool.out, 0, "no read buffer is kept");
    cr_expect_eq(f.q.mem, 1024 + 2048, "two tails: 1 KiB then 2 KiB");
    cr_expect_eq(lv_stat_read(&f.pool.bytes), f.q.mem, "mem is what the buffers hold");
    cr_expect_eq(f.q.count, 2, "consecutive bytes extend one slice per tail");
    cr_expect_eq(check_from(&f.q, 0), 2);
    fx_dispose(&f);
}

Test(bodyq, a_long_trickle_holds_about_its_size)
{
    struct fx f;
    fx_init(&f);
    for (int i = 0; i < 200000; i++)
        push_read(&f, 1);
    /* tails of 1, 2, 4, 8, 16 KiB, then 32 KiB ones */
    cr_expect_leq(f.q.mem, 200000 + LV_BUF_SIZE);
    cr_expect_geq(f.q.mem, 200000);
    cr_expect_eq(lv_stat_read(&f.pool.bytes), f.q.mem);
    cr_expect_eq(f.q.tail->cap, LV_BUF_SIZE, "tails stop growing at LV_BUF_SIZE");
    cr_expect_leq(f.q.count, 5 + 200000 / LV_BUF_SIZE + 1, "one slice per tail");
    check_from(&f.q, 0);
    fx_dispose(&f);
}

Test(bodyq, a_piece_that_does_not_fit_the_tail_is_split_across_two)
{
    struct fx f;
    fx_init(&f);
    push_read(&f, 1000);
    push_read(&f, 1000); /* 24 bytes fit the first tail, 976 go to a new one */
    cr_expect_eq(f.q.count, 2);
    cr_expect_eq(f.q.s[0].len, LV_BODYQ_TAIL_MIN);
    cr_expect_eq(f.q.s[1].len, 2000 - LV_BODYQ_TAIL_MIN);
    cr_expect_eq(f.q.tail->cap, 2 * LV_BODYQ_TAIL_MIN);
    cr_expect_eq(f.q.mem, 3 * LV_BODYQ_TAIL_MIN);
    check_from(&f.q, 0);
    fx_dispose(&f);
}

/* What the socket write path relies on: bytes a reader was given never
 * change, and more bytes come after them, at the next offset. */
Test(bodyq, bytes_handed_out_never_change_as_the_slice_grows)
{
    struct fx f;
    fx_init(&f);
    push_read(&f, 3);
    struct lv_slice first;
    cr_assert_eq(lv_bodyq_peek(&f.q, 0, &first), 3);
    struct lv_buf *held = lv_buf_ref(first.buf); /* as lv_sock_add does */
    const char *was = first.p;
    char copy[3];
    memcpy(copy, first.p, 3);

    push_read(&f, 3);
    struct lv_slice again;
    cr_expect_eq(lv_bodyq_peek(&f.q, 0, &again), 6, "the last slice grew at its end");
    cr_expect_eq(again.p, was, "in place");
    cr_expect_arr_eq(was, copy, 3, "the bytes handed out are untouched");
    struct lv_slice next;
    cr_expect_eq(lv_bodyq_peek(&f.q, 3, &next), 3, "a reader at offset 3 gets the new bytes");
    cr_expect_eq(next.p, was + 3);
    lv_buf_unref(held);
    check_from(&f.q, 0);
    fx_dispose(&f);
}

Test(bodyq, a_reference_between_small_pieces_starts_a_new_tail_slice)
{
    struct fx f;
    fx_init(&f);
    push_read(&f, 10);          /* tail slice */
    push_read(&f, LV_BUF_SIZE); /* by reference */
    push_read(&f, 10);          /* same tail, new slice: the first one is not last */
    push_read(&f, 10);          /* extends that one */
    cr_expect_eq(f.q.count, 3);
    cr_expect_eq(f.q.s[0].buf, f.q.s[2].buf, "one tail for both");
    cr_expect_eq(f.q.s[2].len, 20);
    cr_expect_eq(f.q.mem, LV_BODYQ_TAIL_MIN + LV_BUF_SIZE);
    cr_expect_eq(f.pool.out, 1, "the full read is the only pooled buffer held");
    cr_expect_eq(check_from(&f.q, 0), 3);
    fx_dispose(&f);
}

/* A retry or a hedge reads the same body with its own cursor, from 0, while
 * the first attempt is somewhere else and more bytes keep coming. */
Test(bodyq, two_cursors_read_the_same_body)
{
    struct fx f;
    fx_init(&f);
    uint64_t a = 0, b = 0;
    char got_a[4000], got_b[4000];
    unsigned sizes[] = {1, 1, 700, LV_BUF_SIZE / 2, 1, 3, 1500, 1, LV_BUF_SIZE};
    uint64_t total = 0;
    for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        push_read(&f, sizes[k]);
        total += sizes[k];
        /* a reads everything there is, every time */
        struct lv_slice s;
        uint32_t n;
        while ((n = lv_bodyq_peek(&f.q, a, &s)) > 0) {
            for (uint32_t i = 0; i < n; i++)
                if (a + i < sizeof(got_a)) got_a[a + i] = s.p[i];
            a += n;
        }
        /* b starts late and reads one run per step */
        if (k >= 3 && (n = lv_bodyq_peek(&f.q, b, &s)) > 0) {
            for (uint32_t i = 0; i < n; i++)
                if (b + i < sizeof(got_b)) got_b[b + i] = s.p[i];
            b += n;
        }
    }
    struct lv_slice s;
    uint32_t n;
    while ((n = lv_bodyq_peek(&f.q, b, &s)) > 0) {
        for (uint32_t i = 0; i < n; i++)
            if (b + i < sizeof(got_b)) got_b[b + i] = s.p[i];
        b += n;
    }
    cr_expect_eq(a, total);
    cr_expect_eq(b, total);
    for (uint64_t i = 0; i < sizeof(got_a); i++) {
        cr_assert_eq(got_a[i], body_byte(i), "a: byte %llu", (unsigned long long)i);
        cr_assert_eq(got_b[i], body_byte(i), "b: byte %llu", (unsigned long long)i);
    }
    check_from(&f.q, 0);
    fx_dispose(&f);
}

Test(bodyq, drop_before_releases_and_trims)
{
    struct fx f;
    fx_init(&f);
    struct lv_buf *big = read_buf(&f, 0, 20000);
    lv_bodyq_push(&f.q, big, big->data, 20000);
    push_read(&f, 100);
    cr_expect_eq(f.q.mem, LV_BUF_SIZE + LV_BODYQ_TAIL_MIN);

    lv_bodyq_drop_before(&f.q, 5000);
    cr_expect(f.q.dropped);
    cr_expect_eq(f.q.base, 5000);
    struct lv_slice s;
    cr_expect_eq(lv_bodyq_peek(&f.q, 4999, &s), 0, "released");
    cr_expect_eq(lv_bodyq_peek(&f.q, 5000, &s), 15000);
    cr_expect_eq(s.p, big->data + 5000);
    cr_expect_eq(f.q.mem, LV_BUF_SIZE + LV_BODYQ_TAIL_MIN,
                 "a trimmed reference still holds it all");
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 0), 15100);
    cr_expect_eq(lv_bodyq_end(&f.q), 20100, "offsets stay absolute");

    lv_bodyq_drop_before(&f.q, 20050);
    cr_expect_eq(big->refs, 1, "the read buffer is released");
    cr_expect_eq(f.q.count, 1);
    cr_expect_eq(lv_bodyq_peek(&f.q, 20050, &s), 50);
    cr_expect_eq(s.p[0], body_byte(20050));
    cr_expect_eq(f.q.mem, LV_BODYQ_TAIL_MIN - 50, "a trimmed copy holds only what is left");
    check_from(&f.q, 20050);
    lv_buf_unref(big);
    fx_dispose(&f);
}

Test(bodyq, drop_before_base_is_a_no_op)
{
    struct fx f;
    fx_init(&f);
    push_read(&f, LV_BUF_SIZE);
    lv_bodyq_drop_before(&f.q, 0);
    cr_expect_not(f.q.dropped);
    cr_expect_eq(f.q.count, 1);
    lv_bodyq_drop_before(&f.q, 10);
    lv_bodyq_drop_before(&f.q, 5);
    cr_expect_eq(f.q.base, 10);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 0), LV_BUF_SIZE - 10);
    check_from(&f.q, 10);
    fx_dispose(&f);
}

Test(bodyq, drop_everything_then_push)
{
    struct fx f;
    fx_init(&f);
    push_read(&f, 30);
    push_read(&f, LV_BUF_SIZE);
    lv_bodyq_drop_before(&f.q, LV_BUF_SIZE + 30);
    cr_expect_eq(f.q.count, 0);
    cr_expect_eq(f.pool.out, 0);
    cr_expect_eq(f.q.mem, LV_BODYQ_TAIL_MIN - 30, "only the tail's room is left");
    push_read(&f, 30);
    cr_expect_eq(lv_bodyq_end(&f.q), LV_BUF_SIZE + 60);
    cr_expect_eq(f.q.count, 1);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 0), 30);
    cr_expect_eq(check_from(&f.q, LV_BUF_SIZE + 30), 1);
    fx_dispose(&f);
}

Test(bodyq, drop_beyond_end_clamps)
{
    struct fx f;
    fx_init(&f);
    push_read(&f, 10);
    lv_bodyq_drop_before(&f.q, 500);
    cr_expect_eq(f.q.count, 0);
    cr_expect_eq(f.q.base, 10);
    push_read(&f, 20);
    cr_expect_eq(lv_bodyq_end(&f.q), 30);
    check_from(&f.q, 10);
    fx_dispose(&f);
}

/* A released body's trickle holds one tail, whatever its length. */
Test(bodyq, sent_and_dropped_as_it_comes_holds_one_tail)
{
    struct fx f;
    fx_init(&f);
    for (int i = 0; i < 100000; i++) {
        push_read(&f, 1);
        lv_bodyq_drop_before(&f.q, lv_bodyq_end(&f.q));
    }
    cr_expect_eq(f.q.count, 0);
    cr_expect_leq(lv_stat_read(&f.pool.bytes), LV_BUF_SIZE);
    fx_dispose(&f);
}

Test(bodyq, mem_from_counts_what_is_still_to_send)
{
    struct fx f;
    fx_init(&f);
    push_read(&f, 100);         /* [0, 100) copied */
    push_read(&f, LV_BUF_SIZE); /* [100, 100 + 32 KiB) by reference */
    push_read(&f, 200);         /* copied */
    uint64_t end = lv_bodyq_end(&f.q);
    cr_expect_eq(lv_bodyq_mem_from(&f.q, 0), 100 + LV_BUF_SIZE + 200);
    cr_expect_eq(lv_bodyq_mem_from(&f.q, 50), 100 + LV_BUF_SIZE + 200,
                 "a run in part counts whole");
    cr_expect_eq(lv_bodyq_mem_from(&f.q, 100), LV_BUF_SIZE + 200);
    cr_expect_eq(lv_bodyq_mem_from(&f.q, end - 1), 200);
    cr_expect_eq(lv_bodyq_mem_from(&f.q, end), 0);
    cr_expect_eq(f.q.mem, LV_BODYQ_TAIL_MIN + LV_BUF_SIZE, "plus the tail's room");
    fx_dispose(&f);
}

Test(bodyq, a_buffer_larger_than_a_read_counts_its_capacity)
{
    struct fx f;
    fx_init(&f);
    struct lv_buf *b = lv_buf_get_size(&f.pool, 3 * LV_BUF_SIZE);
    memset(b->data, 'z', 2 * LV_BUF_SIZE);
    b->len = 2 * LV_BUF_SIZE;
    lv_bodyq_push(&f.q, b, b->data, 2 * LV_BUF_SIZE);
    cr_expect_eq(f.q.mem, 3 * LV_BUF_SIZE);
    lv_buf_unref(b);
    fx_dispose(&f);
}

Test(bodyq, dispose_releases_every_reference)
{
    struct fx f;
    fx_init(&f);
    struct lv_buf *b = read_buf(&f, 0, LV_BUF_SIZE);
    lv_bodyq_push(&f.q, b, b->data, LV_BUF_SIZE);
    push_read(&f, 5);
    lv_bodyq_dispose(&f.q);
    cr_expect_eq(b->refs, 1);
    cr_expect_eq(lv_bodyq_end(&f.q), 0);
    cr_expect_null(f.q.s);
    cr_expect_null(f.q.tail);
    cr_expect_eq(f.q.pool, &f.pool, "the queue can be used again");
    lv_buf_unref(b);
    fx_dispose(&f);
}
