/*
 * Recovery without waiting for a check (upstream/revive.c): which backend a
 * request probes when none is usable, and the bound — one probe in flight
 * per backend, one started per interval — on a fake clock and under
 * threads racing for the slots.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "upstream/revive.h"

#define IV 50 /* ms between two probes of one backend */

static struct lv_revive slot[8];
static struct lv_revive *slots[8];

static void fresh(void)
{
    for (int i = 0; i < 8; i++) {
        atomic_init(&slot[i].word, 0);
        slots[i] = &slot[i];
    }
}

static struct lv_revive_stat down(uint64_t out_since, uint64_t last_pass)
{
    return (struct lv_revive_stat){
        .candidate = true, .out_since = out_since, .last_pass = last_pass};
}

/* --- one slot ------------------------------------------------------------------------ */

Test(revive, a_fresh_slot_is_ready)
{
    struct lv_revive r = {0};
    cr_expect(lv_revive_ready(&r, 0, IV));
    cr_expect(lv_revive_ready(&r, 123456, IV));
}

Test(revive, one_probe_in_flight_and_one_per_interval)
{
    struct lv_revive r = {0};
    cr_expect(lv_revive_claim(&r, 1000, IV));
    cr_expect_not(lv_revive_claim(&r, 1000, IV), "in flight");
    cr_expect_not(lv_revive_claim(&r, 5000, IV), "still in flight, however late");
    lv_revive_done(&r);
    cr_expect_not(lv_revive_ready(&r, 1049, IV), "the interval counts from its start");
    cr_expect_not(lv_revive_claim(&r, 1049, IV));
    cr_expect(lv_revive_claim(&r, 1050, IV));
    lv_revive_done(&r);
    lv_revive_done(&r); /* twice: harmless */
    cr_expect(lv_revive_claim(&r, 2000, IV));
}

Test(revive, a_probe_that_outlasts_the_interval_frees_the_slot_at_once)
{
    struct lv_revive r = {0};
    cr_assert(lv_revive_claim(&r, 0, IV));
    lv_revive_done(&r); /* it took 400 ms: ended at 400 */
    cr_expect(lv_revive_claim(&r, 400, IV));
}

Test(revive, a_start_at_zero_still_counts)
{
    struct lv_revive r = {0};
    cr_assert(lv_revive_claim(&r, 0, IV));
    lv_revive_done(&r);
    cr_expect_not(lv_revive_ready(&r, 0, IV));
    cr_expect_not(lv_revive_ready(&r, 49, IV));
    cr_expect(lv_revive_ready(&r, 50, IV));
}

Test(revive, a_clock_behind_the_last_start_is_not_ready)
{
    struct lv_revive r = {0};
    cr_assert(lv_revive_claim(&r, 1000, IV));
    lv_revive_done(&r);
    cr_expect_not(lv_revive_ready(&r, 999, IV), "another worker's clock, a hair behind");
}

Test(revive, interval_zero_means_only_one_in_flight)
{
    struct lv_revive r = {0};
    cr_assert(lv_revive_claim(&r, 7, 0));
    cr_expect_not(lv_revive_claim(&r, 7, 0));
    lv_revive_done(&r);
    cr_expect(lv_revive_claim(&r, 7, 0));
}

/* --- the choice ---------------------------------------------------------------------- */

Test(revive, nothing_to_probe)
{
    fresh();
    cr_expect_eq(lv_revive_take(slots, NULL, 0, 0, IV), -1);
    struct lv_revive_stat st[2] = {{.candidate = false}, {.candidate = false}};
    cr_expect_eq(lv_revive_take(slots, st, 2, 0, IV), -1, "none is a candidate");
}

Test(revive, the_one_out_longest_goes_first)
{
    fresh();
    struct lv_revive_stat st[3] = {down(3000, 0), down(1000, 0), down(2000, 0)};
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), 1);
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), 2, "1 is in flight: the next");
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), 0);
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), -1, "every slot taken");
    lv_revive_done(slots[1]);
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), -1, "within the interval");
    cr_expect_eq(lv_revive_take(slots, st, 3, 5050, IV), 1);
}

Test(revive, one_that_passed_a_check_since_it_went_out_goes_first)
{
    fresh();
    /* b0 out longest, but b2 passed a check after going out */
    struct lv_revive_stat st[3] = {down(1000, 0), down(2000, 1500), down(3000, 3500)};
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), 2);
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), 0,
                 "b1's pass is older than its going out: it counts for nothing");
}

Test(revive, the_newest_pass_first)
{
    fresh();
    struct lv_revive_stat st[3] = {down(1000, 4000), down(1000, 4900), down(1000, 4500)};
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), 1);
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), 2);
    cr_expect_eq(lv_revive_take(slots, st, 3, 5000, IV), 0);
}

Test(revive, ties_go_to_the_lower_index_and_unknown_is_longest)
{
    fresh();
    struct lv_revive_stat st[4] = {down(2000, 0), down(2000, 0), down(0, 0), {.candidate = false}};
    cr_expect_eq(lv_revive_take(slots, st, 4, 5000, IV), 2, "out since unknown: the longest");
    cr_expect_eq(lv_revive_take(slots, st, 4, 5000, IV), 0);
    cr_expect_eq(lv_revive_take(slots, st, 4, 5000, IV), 1);
    cr_expect_eq(lv_revive_take(slots, st, 4, 5000, IV), -1, "3 is no candidate");
}

Test(revive, a_backend_probed_every_interval_at_most)
{
    fresh();
    struct lv_revive_stat st[1] = {down(0, 0)};
    unsigned probes = 0;
    /* a request every ms for 1 s, each probe lasting 3 ms (refused at once) */
    uint64_t ends = 0;
    bool busy = false;
    for (uint64_t now = 0; now < 1000; now++) {
        if (busy && now >= ends) {
            lv_revive_done(slots[0]);
            busy = false;
        }
        if (lv_revive_take(slots, st, 1, now, IV) == 0) {
            cr_assert_not(busy);
            probes++;
            busy = true;
            ends = now + 3;
        }
    }
    cr_expect_eq(probes, 20, "1000 ms / 50 ms");
}

/* --- threads -------------------------------------------------------------------------- */

static atomic_uint won[3];
static struct lv_revive_stat race_st[3];

static void *race(void *arg)
{
    (void)arg;
    for (int k = 0; k < 1000; k++) {
        int i = lv_revive_take(slots, race_st, 3, 1000, IV);
        if (i >= 0) atomic_fetch_add(&won[i], 1);
    }
    return NULL;
}

Test(revive, racing_workers_send_one_probe_per_backend)
{
    fresh();
    for (int i = 0; i < 3; i++) {
        race_st[i] = down((uint64_t)i, 0);
        atomic_init(&won[i], 0);
    }
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, race, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(atomic_load(&won[i]), 1, "backend %d probed %u times", i,
                     atomic_load(&won[i]));
}
