/*
 * lv_proxy_stats_sum (proxy/proxy.c): the one way the admin port reads the
 * workers' counters. Every counter of every worker is summed, the first
 * and the last member of struct lv_stats included, and the workers' buffer
 * memory beside them.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/proxy.h"
#include "unit/lv_test.h"

Test(proxy_stats, sums_every_counter_of_every_worker)
{
    struct lv_proxy px;
    memset(&px, 0, sizeof(px));
    px.nservers = 3;
    px.servers = calloc(px.nservers, sizeof(*px.servers));
    cr_assert_not_null(px.servers);
    for (unsigned w = 0; w < px.nservers; w++) {
        struct lv_stats *st = &px.servers[w].ctx.stats;
        LV_STAT_ADD(st->requests, 10 * (w + 1)); /* the first member */
        LV_STAT_INC(st->status[503]);
        lv_lathist_add(&st->duration, 1500);
        LV_STAT_ADD(st->attempts[2], w);
        LV_STAT_ADD(st->store_fallbacks, 7);
        LV_STAT_ADD(st->accept_pauses[LV_PAUSE_COUNT - 1], 1); /* the last one */
        LV_STAT_ADD(px.servers[w].ctx.env.bufs.bytes, 4096);
    }
    struct lv_proxy_stats sum;
    memset(&sum, 0xa5, sizeof(sum)); /* whatever was there is overwritten */
    lv_proxy_stats_sum(&px, &sum);
    cr_expect_eq(lv_stat_read(&sum.w.requests), 60);
    cr_expect_eq(lv_stat_read(&sum.w.status[503]), 3);
    cr_expect_eq(lv_stat_read(&sum.w.status[200]), 0);
    cr_expect_eq(lv_stat_read(&sum.w.duration.b[lv_lat_bucket(1500)]), 3);
    cr_expect_eq(lv_stat_read(&sum.w.duration.sum_us), 4500);
    cr_expect_eq(lv_stat_read(&sum.w.attempts[2]), 3);
    cr_expect_eq(lv_stat_read(&sum.w.store_fallbacks), 21);
    cr_expect_eq(lv_stat_read(&sum.w.accept_pauses[LV_PAUSE_COUNT - 1]), 3);
    cr_expect_eq(sum.buffer_bytes, 3 * 4096);

    px.nservers = 0; /* no worker yet: all zero */
    lv_proxy_stats_sum(&px, &sum);
    cr_expect_eq(lv_stat_read(&sum.w.requests), 0);
    cr_expect_eq(sum.buffer_bytes, 0);
    free(px.servers);
    LV_EXPECT_NO_LEAKS();
}
