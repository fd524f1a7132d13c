/* A worker's idle keep-alive list for one backend (upstream/pool.c). */
#include <criterion/criterion.h>

#include "upstream/pool.h"

Test(pool, starts_empty)
{
    struct lv_pool p;
    lv_pool_init(&p);
    cr_expect_eq(p.n, 0);
    cr_expect_eq(p.reused, 0);
    cr_expect_eq(p.created, 0);
    cr_expect_null(lv_pool_get(&p));
    cr_expect_null(lv_pool_oldest(&p));
    cr_expect_eq(p.reused, 0, "an empty get is not a reuse");
}

Test(pool, lifo_order)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry e[3] = {0};
    for (int i = 0; i < 3; i++) {
        cr_expect_null(lv_pool_put(&p, &e[i], 8));
        cr_expect(e[i].pooled);
    }
    cr_expect_eq(p.n, 3);
    cr_expect_eq(lv_pool_get(&p), &e[2]);
    cr_expect_eq(lv_pool_get(&p), &e[1]);
    cr_expect_eq(lv_pool_get(&p), &e[0]);
    cr_expect_null(lv_pool_get(&p));
    cr_expect_eq(p.n, 0);
    cr_expect_eq(p.reused, 3);
    for (int i = 0; i < 3; i++)
        cr_expect_not(e[i].pooled);
}

Test(pool, put_after_get_is_most_recent)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry a = {0}, b = {0};
    lv_pool_put(&p, &a, 8);
    lv_pool_put(&p, &b, 8);
    cr_expect_eq(lv_pool_get(&p), &b);
    lv_pool_put(&p, &b, 8);
    cr_expect_eq(lv_pool_oldest(&p), &a);
    cr_expect_eq(lv_pool_get(&p), &b);
}

Test(pool, max_idle_evicts_the_oldest)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry e[4] = {0};
    cr_expect_null(lv_pool_put(&p, &e[0], 2));
    cr_expect_null(lv_pool_put(&p, &e[1], 2));
    struct lv_pool_entry *out = lv_pool_put(&p, &e[2], 2);
    cr_expect_eq(out, &e[0]);
    cr_expect_not(e[0].pooled, "the evicted entry is already removed");
    cr_expect_eq(p.n, 2);
    out = lv_pool_put(&p, &e[3], 2);
    cr_expect_eq(out, &e[1]);
    cr_expect_eq(p.n, 2);
    cr_expect_eq(lv_pool_get(&p), &e[3]);
    cr_expect_eq(lv_pool_get(&p), &e[2]);
    cr_expect_null(lv_pool_get(&p));
}

Test(pool, max_idle_zero_returns_the_entry_itself)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry e = {0};
    cr_expect_eq(lv_pool_put(&p, &e, 0), &e);
    cr_expect_not(e.pooled);
    cr_expect_eq(p.n, 0);
    cr_expect_null(lv_pool_get(&p));
    cr_expect_null(lv_pool_oldest(&p));
}

Test(pool, remove_from_the_middle)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry e[3] = {0};
    for (int i = 0; i < 3; i++)
        lv_pool_put(&p, &e[i], 8);
    lv_pool_remove(&p, &e[1]);
    cr_expect_not(e[1].pooled);
    cr_expect_eq(p.n, 2);
    cr_expect_eq(lv_pool_get(&p), &e[2]);
    cr_expect_eq(lv_pool_get(&p), &e[0]);
    cr_expect_null(lv_pool_get(&p));
    cr_expect_eq(p.reused, 2, "a removal is not a reuse");
}

Test(pool, remove_oldest_and_newest)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry e[3] = {0};
    for (int i = 0; i < 3; i++)
        lv_pool_put(&p, &e[i], 8);
    lv_pool_remove(&p, &e[0]);
    cr_expect_eq(lv_pool_oldest(&p), &e[1]);
    lv_pool_remove(&p, &e[2]);
    cr_expect_eq(lv_pool_oldest(&p), &e[1]);
    cr_expect_eq(p.n, 1);
    cr_expect_eq(lv_pool_get(&p), &e[1]);
}

Test(pool, remove_of_an_entry_not_pooled_is_a_no_op)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry a = {0}, b = {0};
    lv_pool_put(&p, &a, 8);
    lv_pool_remove(&p, &b);
    cr_expect_eq(p.n, 1);
    cr_expect_eq(lv_pool_get(&p), &a);
    lv_pool_remove(&p, &a); /* already taken */
    cr_expect_eq(p.n, 0);
    cr_expect_null(lv_pool_oldest(&p));
}

Test(pool, oldest_drains_in_age_order)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry e[4] = {0};
    for (int i = 0; i < 4; i++)
        lv_pool_put(&p, &e[i], 8);
    for (int i = 0; i < 4; i++) {
        struct lv_pool_entry *o = lv_pool_oldest(&p);
        cr_expect_eq(o, &e[i]);
        cr_expect(o->pooled, "oldest does not remove");
        lv_pool_remove(&p, o);
    }
    cr_expect_null(lv_pool_oldest(&p));
    cr_expect_eq(p.n, 0);
}

Test(pool, zeroed_pool_works_without_init_of_the_list)
{
    /* a pool from calloc (ensure_init) */
    struct lv_pool p = {0};
    struct lv_pool_entry a = {0};
    cr_expect_null(lv_pool_oldest(&p));
    cr_expect_null(lv_pool_trim(&p, 0));
    cr_expect_null(lv_pool_put(&p, &a, 2));
    cr_expect_eq(lv_pool_get(&p), &a);
}

Test(pool, counters)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry a = {0}, b = {0};
    lv_pool_put(&p, &a, 1);
    cr_expect_eq(lv_pool_put(&p, &b, 1), &a);
    cr_expect_eq(p.n, 1);
    cr_expect_eq(lv_pool_get(&p), &b);
    cr_expect_eq(p.reused, 1);
    lv_pool_put(&p, &b, 1);
    lv_pool_get(&p);
    cr_expect_eq(p.reused, 2);
    cr_expect_eq(p.created, 0, "created is counted by the proxy, not the list");
}

Test(pool, a_raised_max_idle_keeps_more_from_the_next_put)
{
    /* A reload raised max_idle from 1 to 3: the caller passes the new bound
     * with its next put, and the pool keeps that many. */
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry e[4] = {0};
    cr_expect_null(lv_pool_put(&p, &e[0], 1));
    cr_expect_eq(lv_pool_put(&p, &e[1], 1), &e[0]);
    cr_expect_null(lv_pool_put(&p, &e[2], 3));
    cr_expect_null(lv_pool_put(&p, &e[3], 3));
    cr_expect_eq(p.n, 3);
    cr_expect_eq(lv_pool_oldest(&p), &e[1]);
}

Test(pool, a_lowered_max_idle_trims_the_excess_oldest_first)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry e[6] = {0};
    for (int i = 0; i < 5; i++)
        cr_expect_null(lv_pool_put(&p, &e[i], 8));
    /* lowered to 2: the put returns the oldest, trim the rest, oldest first */
    cr_expect_eq(lv_pool_put(&p, &e[5], 2), &e[0]);
    cr_expect_eq(lv_pool_trim(&p, 2), &e[1]);
    cr_expect_eq(lv_pool_trim(&p, 2), &e[2]);
    cr_expect_eq(lv_pool_trim(&p, 2), &e[3]);
    cr_expect_null(lv_pool_trim(&p, 2));
    cr_expect_eq(p.n, 2);
    for (int i = 0; i < 4; i++)
        cr_expect_not(e[i].pooled, "a trimmed entry is already removed");
    cr_expect_eq(lv_pool_get(&p), &e[5]);
    cr_expect_eq(lv_pool_get(&p), &e[4]);
}

Test(pool, lowered_to_zero_everything_goes_the_new_entry_last)
{
    struct lv_pool p;
    lv_pool_init(&p);
    struct lv_pool_entry e[3] = {0};
    cr_expect_null(lv_pool_put(&p, &e[0], 4));
    cr_expect_null(lv_pool_put(&p, &e[1], 4));
    cr_expect_eq(lv_pool_put(&p, &e[2], 0), &e[0]);
    cr_expect_eq(lv_pool_trim(&p, 0), &e[1]);
    cr_expect_eq(lv_pool_trim(&p, 0), &e[2]);
    cr_expect_null(lv_pool_trim(&p, 0));
    cr_expect_eq(p.n, 0);
    cr_expect_null(lv_pool_oldest(&p));
}
