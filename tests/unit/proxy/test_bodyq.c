/* The request body queue: slices held by reference (proxy/bodyq.c). */
#include <criterion/criterion.h>
#include <string.h>

#include "core/buf.h"
#include "proxy/bodyq.h"

struct fx {
    struct lv_bufpool pool;
    struct lv_bodyq q;
    struct lv_buf *b[3];
};

/* Three buffers holding "aaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbb", "cccccccccccccccccccccccccccccc". */
static void fx_init(struct fx *f)
{
    lv_bufpool_init(&f->pool, 8);
    lv_bodyq_init(&f->q);
    for (int i = 0; i < 3; i++) {
        f->b[i] = lv_buf_get(&f->pool);
        char fill[30];
        memset(fill, 'a' + i, sizeof(fill));
        lv_buf_append(f->b[i], fill, (size_t)(10 * (i + 1)));
    }
}

static void fx_dispose(struct fx *f)
{
    lv_bodyq_dispose(&f->q);
    for (int i = 0; i < 3; i++)
        if (f->b[i]) lv_buf_unref(f->b[i]);
    cr_expect_eq(f->pool.out, 0, "a buffer reference was not released");
    lv_bufpool_dispose(&f->pool);
}

Test(bodyq, starts_empty)
{
    struct lv_bodyq q;
    lv_bodyq_init(&q);
    cr_expect_eq(lv_bodyq_end(&q), 0);
    cr_expect_null(lv_bodyq_at(&q, 0));
    cr_expect_eq(lv_bodyq_bytes_from(&q, 0), 0);
    cr_expect_not(q.dropped);
    lv_bodyq_dispose(&q);
}

Test(bodyq, push_and_at)
{
    struct fx f;
    fx_init(&f);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(lv_bodyq_push(&f.q, f.b[i], f.b[i]->data, f.b[i]->len), 0);
    cr_expect_eq(lv_bodyq_end(&f.q), 3);
    cr_expect_eq(f.q.bytes, 60);
    cr_expect_eq(f.q.held, 60);
    for (uint32_t i = 0; i < 3; i++) {
        const struct lv_slice *s = lv_bodyq_at(&f.q, i);
        cr_assert_not_null(s);
        cr_expect_eq(s->buf, f.b[i]);
        cr_expect_eq(s->p, f.b[i]->data);
        cr_expect_eq(s->len, 10 * (i + 1));
    }
    cr_expect_null(lv_bodyq_at(&f.q, 3), "not received yet");
    fx_dispose(&f);
}

Test(bodyq, push_takes_a_reference)
{
    struct fx f;
    fx_init(&f);
    lv_bodyq_push(&f.q, f.b[0], f.b[0]->data, 4);
    lv_bodyq_push(&f.q, f.b[0], f.b[0]->data + 4, 6);
    cr_expect_eq(f.b[0]->refs, 3);
    /* the reader drops its own reference: the queue keeps the buffer */
    lv_buf_unref(f.b[0]);
    f.b[0] = NULL;
    const struct lv_slice *s = lv_bodyq_at(&f.q, 1);
    cr_expect_eq(s->buf->refs, 2);
    cr_expect_eq(s->len, 6);
    cr_expect_eq(s->p[0], 'a');
    cr_expect_eq(f.pool.nfree, 0);
    fx_dispose(&f);
    cr_expect_eq(f.pool.nfree, 0);
}

Test(bodyq, empty_push_is_ignored)
{
    struct fx f;
    fx_init(&f);
    cr_expect_eq(lv_bodyq_push(&f.q, f.b[0], f.b[0]->data, 0), 0);
    cr_expect_eq(lv_bodyq_end(&f.q), 0);
    cr_expect_eq(f.b[0]->refs, 1);
    fx_dispose(&f);
}

Test(bodyq, grows_past_its_first_capacity)
{
    struct fx f;
    fx_init(&f);
    for (uint32_t i = 0; i < 100; i++)
        cr_assert_eq(lv_bodyq_push(&f.q, f.b[1], f.b[1]->data + (i % 20), 1), 0);
    cr_expect_eq(lv_bodyq_end(&f.q), 100);
    cr_expect_eq(f.b[1]->refs, 101);
    cr_expect_eq(lv_bodyq_at(&f.q, 57)->p, f.b[1]->data + 17);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 0), 100);
    fx_dispose(&f);
}

Test(bodyq, drop_before_releases_references)
{
    struct fx f;
    fx_init(&f);
    for (int i = 0; i < 3; i++)
        lv_bodyq_push(&f.q, f.b[i], f.b[i]->data, f.b[i]->len);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(f.b[i]->refs, 2);
    lv_bodyq_drop_before(&f.q, 2);
    cr_expect(f.q.dropped);
    cr_expect_eq(f.b[0]->refs, 1);
    cr_expect_eq(f.b[1]->refs, 1);
    cr_expect_eq(f.b[2]->refs, 2);
    cr_expect_eq(f.q.base, 2);
    cr_expect_eq(f.q.count, 1);
    cr_expect_eq(f.q.held, 30);
    cr_expect_eq(f.q.bytes, 60, "bytes counts everything received");
    cr_expect_null(lv_bodyq_at(&f.q, 0));
    cr_expect_null(lv_bodyq_at(&f.q, 1));
    cr_expect_eq(lv_bodyq_at(&f.q, 2)->buf, f.b[2]);
    cr_expect_eq(lv_bodyq_end(&f.q), 3, "indexes stay absolute");
    fx_dispose(&f);
}

Test(bodyq, drop_before_last_reference_returns_buffer_to_pool)
{
    struct fx f;
    fx_init(&f);
    lv_bodyq_push(&f.q, f.b[0], f.b[0]->data, 10);
    lv_buf_unref(f.b[0]);
    f.b[0] = NULL;
    cr_expect_eq(f.pool.nfree, 0);
    lv_bodyq_drop_before(&f.q, 1);
    cr_expect_eq(f.pool.nfree, 1);
    cr_expect_eq(f.pool.out, 2);
    fx_dispose(&f);
}

Test(bodyq, drop_before_base_is_a_no_op)
{
    struct fx f;
    fx_init(&f);
    for (int i = 0; i < 3; i++)
        lv_bodyq_push(&f.q, f.b[i], f.b[i]->data, f.b[i]->len);
    lv_bodyq_drop_before(&f.q, 0);
    cr_expect_not(f.q.dropped);
    cr_expect_eq(f.q.count, 3);
    lv_bodyq_drop_before(&f.q, 1);
    lv_bodyq_drop_before(&f.q, 1);
    cr_expect_eq(f.q.base, 1);
    cr_expect_eq(f.q.count, 2);
    cr_expect_eq(f.b[0]->refs, 1);
    cr_expect_eq(f.b[1]->refs, 2);
    fx_dispose(&f);
}

Test(bodyq, drop_everything_then_push)
{
    struct fx f;
    fx_init(&f);
    lv_bodyq_push(&f.q, f.b[0], f.b[0]->data, 10);
    lv_bodyq_push(&f.q, f.b[1], f.b[1]->data, 20);
    lv_bodyq_drop_before(&f.q, 2);
    cr_expect_eq(f.q.count, 0);
    cr_expect_eq(f.q.held, 0);
    cr_expect_eq(lv_bodyq_end(&f.q), 2);
    lv_bodyq_push(&f.q, f.b[2], f.b[2]->data, 30);
    cr_expect_eq(lv_bodyq_end(&f.q), 3);
    cr_expect_eq(lv_bodyq_at(&f.q, 2)->len, 30);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 2), 30);
    cr_expect_eq(f.q.bytes, 60);
    fx_dispose(&f);
}

Test(bodyq, drop_beyond_end_clamps)
{
    struct fx f;
    fx_init(&f);
    lv_bodyq_push(&f.q, f.b[0], f.b[0]->data, 10);
    lv_bodyq_drop_before(&f.q, 5);
    cr_expect_eq(f.q.count, 0);
    cr_expect_eq(f.q.base, 1);
    cr_expect_eq(f.b[0]->refs, 1);
    lv_bodyq_push(&f.q, f.b[1], f.b[1]->data, 20);
    cr_expect_eq(lv_bodyq_end(&f.q), 2);
    cr_expect_eq(lv_bodyq_at(&f.q, 1)->len, 20);
    fx_dispose(&f);
}

Test(bodyq, bytes_from)
{
    struct fx f;
    fx_init(&f);
    for (int i = 0; i < 3; i++)
        lv_bodyq_push(&f.q, f.b[i], f.b[i]->data, f.b[i]->len);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 0), 60);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 1), 50);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 2), 30);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 3), 0);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 99), 0);
    lv_bodyq_drop_before(&f.q, 1);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 0), 50, "dropped slices are not held");
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 1), 50);
    cr_expect_eq(lv_bodyq_bytes_from(&f.q, 2), 30);
    fx_dispose(&f);
}

Test(bodyq, dispose_releases_every_reference)
{
    struct fx f;
    fx_init(&f);
    for (int i = 0; i < 3; i++)
        lv_bodyq_push(&f.q, f.b[i], f.b[i]->data, f.b[i]->len);
    lv_bodyq_dispose(&f.q);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(f.b[i]->refs, 1);
    cr_expect_eq(lv_bodyq_end(&f.q), 0);
    cr_expect_null(f.q.s);
    fx_dispose(&f);
}
