/*
 * limits.max_connections (net/maxconn.c): its default from the descriptor
 * limit, and the slot count the workers share.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>

#include "net/maxconn.h"

Test(maxconn_auto, half_of_what_levee_does_not_keep_for_itself)
{
    /* 1024 descriptors, 2 workers, 1 listen address, 1 backend: 32 + 2 x (4 + 1)
     * + 1 = 43 kept back, half of the other 981 (a backend connection each). */
    cr_expect_eq(lv_maxconn_auto(1024, 2, 1, 1), 490);
    cr_expect_eq(lv_maxconn_auto(256, 2, 1, 1), 106);
    /* 65536, 4 workers, 2 addresses, 3 backends: 32 + 24 + 3 = 59 kept. */
    cr_expect_eq(lv_maxconn_auto(65536, 4, 2, 3), (65536 - 59) / 2);
    /* More workers, listeners or backends leave less. */
    cr_expect_lt(lv_maxconn_auto(1024, 8, 1, 1), lv_maxconn_auto(1024, 2, 1, 1));
    cr_expect_lt(lv_maxconn_auto(1024, 2, 3, 1), lv_maxconn_auto(1024, 2, 1, 1));
    cr_expect_lt(lv_maxconn_auto(1024, 2, 1, 50), lv_maxconn_auto(1024, 2, 1, 1));
}

Test(maxconn_auto, every_client_and_its_backend_fit_beside_the_reserve)
{
    for (uint64_t nofile = 64; nofile <= 1 << 20; nofile = nofile * 3 / 2) {
        for (unsigned workers = 1; workers <= 64; workers *= 4) {
            uint64_t reserve = LV_FD_RESERVE_FIXED + workers * (LV_FD_RESERVE_WORKER + 2) + 10;
            uint64_t n = lv_maxconn_auto(nofile, workers, 2, 10);
            cr_expect_geq(n, 1);
            if (nofile > reserve + 2)
                cr_expect_leq(reserve + 2 * n, nofile, "nofile %llu, %u workers",
                              (unsigned long long)nofile, workers);
        }
    }
}

Test(maxconn_auto, tiny_and_huge_limits)
{
    cr_expect_eq(lv_maxconn_auto(0, 1, 1, 0), 1, "never 0: levee must take a connection");
    cr_expect_eq(lv_maxconn_auto(20, 4, 1, 0), 1);
    cr_expect_eq(lv_maxconn_auto(UINT64_MAX, 1, 1, 0), LV_MAXCONN_MAX);
    cr_expect_eq(lv_maxconn_auto(1ull << 40, 256, 100, 10000), LV_MAXCONN_MAX);
}

Test(maxconn, slots_are_taken_up_to_the_limit)
{
    struct lv_maxconn m = {0};
    atomic_store(&m.limit, 3);
    for (int i = 0; i < 3; i++)
        cr_expect(lv_maxconn_take(&m));
    cr_expect_not(lv_maxconn_take(&m));
    cr_expect_not(lv_maxconn_room(&m));
    cr_expect_eq(atomic_load(&m.open), 3);
    cr_expect_not(lv_maxconn_give(&m), "nobody waits");
    cr_expect(lv_maxconn_room(&m));
    cr_expect(lv_maxconn_take(&m));
    /* A lower limit (a reload) takes no slot away; it refuses new ones. */
    atomic_store(&m.limit, 1);
    cr_expect_not(lv_maxconn_take(&m));
    for (int i = 0; i < 2; i++)
        lv_maxconn_give(&m);
    cr_expect_not(lv_maxconn_take(&m));
    lv_maxconn_give(&m);
    cr_expect(lv_maxconn_take(&m));
}

Test(maxconn, a_waiting_worker_is_seen_by_the_one_who_frees_a_slot)
{
    struct lv_maxconn m = {0};
    atomic_bool w1 = false, w2 = false;
    atomic_store(&m.limit, 1);
    cr_expect(lv_maxconn_take(&m));
    cr_expect_not(lv_maxconn_take(&m));
    cr_expect_not(lv_maxconn_wait(&m, &w1), "no room: it waits");
    cr_expect_not(lv_maxconn_wait(&m, &w2));
    cr_expect_not(lv_maxconn_wait(&m, &w1), "marking twice counts once");
    cr_expect_eq(atomic_load(&m.waiting), 2);
    cr_expect(lv_maxconn_give(&m), "someone waits: wake them");
    cr_expect(lv_maxconn_unwait(&m, &w1), "the waker clears each flag once");
    cr_expect_not(lv_maxconn_unwait(&m, &w1));
    cr_expect(lv_maxconn_unwait(&m, &w2));
    cr_expect_eq(atomic_load(&m.waiting), 0);
    cr_expect_not(w1);
    cr_expect_not(w2);
}

Test(maxconn, room_appearing_while_marking_is_not_lost)
{
    struct lv_maxconn m = {0};
    atomic_bool w = false;
    atomic_store(&m.limit, 1);
    /* The slot is free by the time the worker looks again after marking
     * itself: wait says so, and leaves nothing marked. */
    cr_expect(lv_maxconn_wait(&m, &w));
    cr_expect_not(w);
    cr_expect_eq(atomic_load(&m.waiting), 0);
}

struct churn {
    struct lv_maxconn *m;
    uint64_t max_seen;
};

static void *churn(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < 50000; i++) {
        if (!lv_maxconn_take(c->m)) continue;
        uint64_t open = atomic_load(&c->m->open);
        if (open > c->max_seen) c->max_seen = open;
        lv_maxconn_give(c->m);
    }
    return NULL;
}

Test(maxconn, never_more_than_the_limit_across_threads)
{
    struct lv_maxconn m = {0};
    atomic_store(&m.limit, 2);
    struct churn cs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        cs[i] = (struct churn){.m = &m};
        pthread_create(&th[i], NULL, churn, &cs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect_leq(cs[i].max_seen, 2);
    }
    cr_expect_eq(atomic_load(&m.open), 0);
}
