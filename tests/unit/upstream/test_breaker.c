/*
 * The circuit breaker (upstream/breaker.c), every transition driven by a
 * fake clock: `now` is a plain number the test advances.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/rand.h"
#include "upstream/breaker.h"
#include "unit/lv_test.h"

/* The breaker takes its configuration with every call (a reload may change
 * it without resetting the state); each breaker of these tests keeps its
 * own, and these wrappers pass it along. */
#define MAX_TEST_BREAKERS 64
static struct {
    const struct lv_breaker *b;
    struct lv_breaker_cfg c;
} test_cfgs[MAX_TEST_BREAKERS];
static pthread_mutex_t test_cfgs_lock = PTHREAD_MUTEX_INITIALIZER;

static struct lv_breaker_cfg *cfg_of(const struct lv_breaker *b)
{
    pthread_mutex_lock(&test_cfgs_lock);
    struct lv_breaker_cfg *c = NULL;
    for (int i = 0; i < MAX_TEST_BREAKERS && c == NULL; i++) {
        if (test_cfgs[i].b == b) c = &test_cfgs[i].c;
    }
    pthread_mutex_unlock(&test_cfgs_lock);
    cr_assert_not_null(c, "breaker without a test config");
    return c;
}

static int test_init(struct lv_breaker *b, const struct lv_breaker_cfg *c, unsigned nworkers)
{
    pthread_mutex_lock(&test_cfgs_lock);
    int slot = -1;
    for (int i = 0; i < MAX_TEST_BREAKERS && slot < 0; i++) {
        if (test_cfgs[i].b == b || test_cfgs[i].b == NULL) slot = i;
    }
    if (slot >= 0) {
        test_cfgs[slot].b = b;
        test_cfgs[slot].c = *c;
    }
    pthread_mutex_unlock(&test_cfgs_lock);
    cr_assert_geq(slot, 0, "too many test breakers");
    return (lv_breaker_init)(b, nworkers);
}

#define lv_breaker_init(b, c, n) test_init((b), (c), (n))
#define lv_breaker_allow(b, now, t) (lv_breaker_allow)((b), cfg_of(b), (now), (t))
#define lv_breaker_report(b, w, now, ok, j, t)                                                     \
    (lv_breaker_report)((b), cfg_of(b), (w), (now), (ok), (j), (t))
#define lv_breaker_window_counts(b, now, ok, fail)                                                 \
    (lv_breaker_window_counts)((b), cfg_of(b), (now), (ok), (fail))

/* No jitter: the open period is exactly the timeout (doubled). */
#define NOJ 0.5
/* The largest double below 1: what lv_rand_unit can return at most. */
#define U_MAX 0x1.fffffffffffffp-1

/* 3 consecutive failures open it for 1 s (up to 8 s), 2 probe successes
 * close it, one probe at a time; the rate rule is off. */
static struct lv_breaker_cfg base(void)
{
    return (struct lv_breaker_cfg){
        .enabled = true,
        .failure_threshold = 3,
        .success_threshold = 2,
        .timeout = 1000,
        .max_timeout = 8000,
        .failure_rate_threshold = 0,
        .minimum_requests = 10,
        .window = 10000, /* buckets of 1000 ms */
        .half_open_requests = 1,
    };
}

/* The rate rule alone: 50% of at least 10 outcomes in 10 s. */
static struct lv_breaker_cfg rate(void)
{
    struct lv_breaker_cfg c = base();
    c.failure_threshold = 1000000;
    c.failure_rate_threshold = 0.5;
    return c;
}

/* The count rule alone: 3 failures within 10 s, whatever else happened. */
static struct lv_breaker_cfg count(void)
{
    struct lv_breaker_cfg c = base();
    c.failure_threshold = 1000000;
    c.failures_in_window = 3;
    c.fail_window = 10000; /* buckets of 1000 ms */
    return c;
}

static void setup(struct lv_breaker *b, struct lv_breaker_cfg c, unsigned nworkers)
{
    cr_assert_eq(lv_breaker_init(b, &c, nworkers), 0);
}

static void teardown(struct lv_breaker *b)
{
    lv_breaker_dispose(b);
    cr_expect_null(b->windows);
    LV_EXPECT_NO_LEAKS();
}

/* One request admitted at `now` and reported at once from worker `w`;
 * returns what the report returns. The request must be admitted. */
static bool request(struct lv_breaker *b, unsigned w, uint64_t now, bool ok)
{
    struct lv_breaker_ticket t;
    cr_assert(lv_breaker_allow(b, now, &t), "not admitted at %llu (state %s)",
              (unsigned long long)now, lv_breaker_state_name(lv_breaker_state(b)));
    cr_assert(t.admitted);
    return lv_breaker_report(b, w, now, ok, NOJ, &t);
}

/* `n` requests with the same outcome; returns how many reports changed the state. */
static unsigned requests(struct lv_breaker *b, unsigned w, uint64_t now, bool ok, unsigned n)
{
    unsigned changes = 0;
    for (unsigned i = 0; i < n; i++)
        changes += request(b, w, now, ok);
    return changes;
}

/* Opens a closed breaker by consecutive failures at `now`, without jitter. */
static void trip(struct lv_breaker *b, uint64_t now)
{
    cr_assert_eq(lv_breaker_state(b), LV_BREAKER_CLOSED);
    requests(b, 0, now, false, cfg_of(b)->failure_threshold);
    cr_assert_eq(lv_breaker_state(b), LV_BREAKER_OPEN);
}

/* Waits out the open period: the first request after it is a probe. */
static uint64_t probe(struct lv_breaker *b, struct lv_breaker_ticket *t)
{
    cr_assert_eq(lv_breaker_state(b), LV_BREAKER_OPEN);
    uint64_t at = lv_breaker_open_until(b);
    cr_assert(lv_breaker_allow(b, at, t));
    cr_assert(t->admitted);
    cr_assert(t->probe);
    cr_assert_eq(lv_breaker_state(b), LV_BREAKER_HALF_OPEN);
    return at;
}

static void counts(struct lv_breaker *b, uint64_t now, uint64_t want_ok, uint64_t want_fail)
{
    uint64_t ok = 99, fail = 99;
    lv_breaker_window_counts(b, now, &ok, &fail);
    cr_expect_eq(ok, want_ok, "at %llu: ok %llu, want %llu", (unsigned long long)now,
                 (unsigned long long)ok, (unsigned long long)want_ok);
    cr_expect_eq(fail, want_fail, "at %llu: fail %llu, want %llu", (unsigned long long)now,
                 (unsigned long long)fail, (unsigned long long)want_fail);
}

/* --- setup -------------------------------------------------------------------------- */

Test(breaker, starts_closed)
{
    struct lv_breaker b;
    setup(&b, base(), 4);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect_eq(lv_breaker_open_until(&b), 0);
    cr_expect_eq(b.nwindows, 4);
    cr_expect_eq(b.transitions, 0);
    counts(&b, 0, 0, 0);
    counts(&b, 123456789, 0, 0);
    struct lv_breaker_ticket t = {.gen = 77, .probe = true, .admitted = false};
    cr_expect(lv_breaker_allow(&b, 0, &t));
    cr_expect(t.admitted);
    cr_expect_not(t.probe);
    cr_expect_eq(t.gen, 0);
    teardown(&b);
}

Test(breaker, zero_settings_are_raised_to_their_minimum)
{
    struct lv_breaker_cfg c = base();
    c.failure_threshold = 0;
    c.success_threshold = 0;
    c.half_open_requests = 0;
    c.timeout = 5000;
    c.max_timeout = 1000; /* below timeout */
    struct lv_breaker b;
    setup(&b, c, 0);
    cr_expect_eq(b.nwindows, 1, "0 workers still get one window");
    /* and they behave so: one failure opens, for 5 s, one probe closes */
    cr_expect(request(&b, 0, 0, false));
    cr_expect_eq(lv_breaker_open_until(&b), 5000);
    struct lv_breaker_ticket t;
    probe(&b, &t);
    struct lv_breaker_ticket t2;
    cr_expect_not(lv_breaker_allow(&b, 5000, &t2), "one probe at a time");
    cr_expect(lv_breaker_report(&b, 0, 5000, false, NOJ, &t));
    cr_expect_eq(lv_breaker_open_until(&b), 10000, "doubling capped at max_timeout = timeout");
    probe(&b, &t);
    cr_expect(lv_breaker_report(&b, 0, 10000, true, NOJ, &t), "one success closes");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    teardown(&b);
}

Test(breaker, a_new_config_applies_without_resetting_the_state)
{
    struct lv_breaker_cfg c = base(); /* failure_threshold 3 */
    struct lv_breaker b;
    cr_assert_eq(lv_breaker_init(&b, &c, 1), 0);
    cr_expect_not(request(&b, 0, 0, false));
    cr_expect_not(request(&b, 0, 1, false));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    /* A reload lowers the threshold: the two failures so far still count. */
    cfg_of(&b)->failure_threshold = 2;
    cfg_of(&b)->timeout = 3000;
    cfg_of(&b)->max_timeout = 3000;
    cr_expect(request(&b, 0, 2, false), "the third failure is over the new threshold");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    cr_expect_eq(lv_breaker_open_until(&b), 3002, "the new timeout");
    teardown(&b);
}

/* --- disabled ----------------------------------------------------------------------- */

Test(breaker, disabled_always_admits_and_never_changes)
{
    struct lv_breaker_cfg c = base();
    c.enabled = false;
    c.failure_threshold = 1;
    c.failure_rate_threshold = 0.01;
    c.minimum_requests = 1;
    c.failures_in_window = 1;
    c.fail_window = 10000;
    struct lv_breaker b;
    setup(&b, c, 2);
    cr_expect_not(lv_breaker_eject(&b, &c, 0, NOJ));
    for (uint64_t now = 0; now < 5000; now += 5) {
        struct lv_breaker_ticket t;
        cr_assert(lv_breaker_allow(&b, now, &t));
        cr_assert(t.admitted);
        cr_assert_not(t.probe);
        cr_assert_not(lv_breaker_report(&b, (unsigned)(now & 1), now, now % 7 == 0, 0.0, &t));
        cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
        cr_assert_eq(lv_breaker_open_until(&b), 0);
    }
    lv_breaker_health_passed(&b, 6000);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect_eq(b.transitions, 0);
    teardown(&b);
}

/* --- closed: consecutive failures --------------------------------------------------- */

Test(breaker, opens_after_exactly_failure_threshold_consecutive_failures)
{
    for (uint32_t n = 1; n <= 6; n++) {
        struct lv_breaker_cfg c = base();
        c.failure_threshold = n;
        struct lv_breaker b;
        setup(&b, c, 1);
        uint64_t now = 100;
        for (uint32_t i = 1; i < n; i++) {
            cr_expect_not(request(&b, 0, now, false), "threshold %u: failure %u", n, i);
            cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
            cr_expect_eq(lv_breaker_open_until(&b), 0);
            now += 10;
        }
        cr_expect(request(&b, 0, now, false), "threshold %u: the opening failure", n);
        cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
        cr_expect_eq(lv_breaker_open_until(&b), now + 1000);
        cr_expect_eq(b.transitions, 1);
        teardown(&b);
    }
}

Test(breaker, a_success_in_between_resets_the_count)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    for (int round = 0; round < 20; round++) {
        cr_expect_eq(requests(&b, 0, 10, false, 2), 0);
        cr_expect_not(request(&b, 0, 10, true));
    }
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect_eq(requests(&b, 0, 10, false, 2), 0);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect(request(&b, 0, 10, false));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    teardown(&b);
}

Test(breaker, successes_alone_never_open)
{
    struct lv_breaker_cfg c = rate();
    c.failure_threshold = 1;
    c.minimum_requests = 1;
    struct lv_breaker b;
    setup(&b, c, 1);
    cr_expect_eq(requests(&b, 0, 0, true, 1000), 0);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    counts(&b, 0, 1000, 0);
    teardown(&b);
}

Test(breaker, consecutive_failures_across_workers_add_up)
{
    struct lv_breaker b;
    setup(&b, base(), 3);
    cr_expect_not(request(&b, 0, 0, false));
    cr_expect_not(request(&b, 1, 0, false));
    cr_expect(request(&b, 2, 0, false));
    teardown(&b);
}

/* --- closed: the failure rate ------------------------------------------------------- */

Test(breaker, rate_opens_at_the_threshold_with_minimum_requests)
{
    struct lv_breaker b;
    setup(&b, rate(), 1);
    /* 5 ok + 4 failures: 9 < minimum_requests (and 44%) */
    requests(&b, 0, 0, true, 5);
    cr_expect_eq(requests(&b, 0, 0, false, 4), 0);
    counts(&b, 0, 5, 4);
    /* the 5th failure makes 5/10 = 50% of 10 */
    cr_expect(request(&b, 0, 0, false));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    teardown(&b);
}

Test(breaker, rate_below_the_threshold_stays_closed)
{
    struct lv_breaker b;
    setup(&b, rate(), 1);
    /* 6 ok, 4 failed: 40% */
    requests(&b, 0, 100, true, 6);
    cr_expect_eq(requests(&b, 0, 100, false, 4), 0);
    counts(&b, 100, 6, 4);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    /* 6 ok, 5 failed: 45.5% */
    cr_expect_not(request(&b, 0, 200, false));
    /* 6 ok, 6 failed: 50% */
    cr_expect(request(&b, 0, 300, false));
    teardown(&b);
}

Test(breaker, rate_not_before_minimum_requests)
{
    struct lv_breaker b;
    setup(&b, rate(), 1);
    /* 100% failures, but only 9 of the 10 required */
    for (int i = 1; i <= 9; i++) {
        cr_expect_not(request(&b, 0, 0, false), "failure %d", i);
        cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    }
    cr_expect(request(&b, 0, 0, false), "the 10th");
    teardown(&b);
}

Test(breaker, rate_with_minimum_requests_zero_needs_one_outcome)
{
    struct lv_breaker_cfg c = rate();
    c.minimum_requests = 0;
    struct lv_breaker b;
    setup(&b, c, 1);
    cr_expect(request(&b, 0, 0, false), "1 of 1 failed");
    teardown(&b);
}

Test(breaker, rate_of_one_needs_every_outcome_to_fail)
{
    struct lv_breaker_cfg c = rate();
    c.failure_rate_threshold = 1.0;
    struct lv_breaker b;
    setup(&b, c, 1);
    request(&b, 0, 0, true);
    cr_expect_eq(requests(&b, 0, 0, false, 100), 0, "one success in the window");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    /* once everything at 0 has left the window (see window_granularity),
     * 10 failures in a row are 100% */
    cr_expect_eq(requests(&b, 0, 11000, false, 9), 0);
    cr_expect(request(&b, 0, 11000, false));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    teardown(&b);
}

Test(breaker, rate_threshold_zero_disables_the_rule)
{
    struct lv_breaker_cfg c = rate();
    c.failure_rate_threshold = 0;
    c.minimum_requests = 1;
    struct lv_breaker b;
    setup(&b, c, 1);
    cr_expect_eq(requests(&b, 0, 0, false, 10000), 0);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    counts(&b, 0, 0, 10000);
    teardown(&b);
}

Test(breaker, rate_is_judged_only_on_a_failure)
{
    struct lv_breaker b;
    setup(&b, rate(), 1);
    /* 9 failures: under minimum_requests */
    cr_expect_eq(requests(&b, 0, 0, false, 9), 0);
    /* a success makes 9 of 10 failed, but a success does not judge */
    cr_expect_not(request(&b, 0, 0, true));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    /* the next failure does: 10 of 11 */
    cr_expect(request(&b, 0, 0, false));
    teardown(&b);
}

Test(breaker, outcomes_older_than_the_window_no_longer_count)
{
    struct lv_breaker b;
    setup(&b, rate(), 1);
    cr_expect_eq(requests(&b, 0, 0, false, 9), 0);
    counts(&b, 0, 0, 9);
    counts(&b, 5000, 0, 9);
    counts(&b, 9999, 0, 9);
    /* a window (and one bucket) later they are gone */
    counts(&b, 11000, 0, 0);
    counts(&b, 50000, 0, 0);
    cr_expect_not(request(&b, 0, 11000, false), "1 failure in the window, not 10");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    counts(&b, 11000, 0, 1);
    teardown(&b);
}

Test(breaker, the_window_slides)
{
    struct lv_breaker b;
    setup(&b, rate(), 1);
    /* one failure per second at 0, 1000, ..., 8000: 9 in the window each time */
    for (uint64_t t = 0; t <= 8000; t += 1000)
        cr_expect_not(request(&b, 0, t, false));
    counts(&b, 8000, 0, 9);
    counts(&b, 10999, 0, 9);
    /* from 11000 the one at 0 has left (bucket granularity, see below) */
    counts(&b, 11000, 0, 8);
    counts(&b, 15000, 0, 4);
    counts(&b, 18999, 0, 1);
    counts(&b, 19000, 0, 0);
    /* an outcome at 11000 takes the ring slot of [1000, 2000): the one at
     * 1000 leaves too. 7 old + 1 new = 8 < 10: still closed */
    cr_expect_not(request(&b, 0, 11000, false));
    counts(&b, 11000, 0, 8);
    cr_expect_not(request(&b, 0, 11500, false));
    counts(&b, 11500, 0, 9);
    cr_expect(request(&b, 0, 11999, false), "7 old + 3 new = 10");
    teardown(&b);
}

/* Documents the window's resolution: buckets of window/10, and an outcome
 * counts until the bucket after the one a window later begins. */
Test(breaker, window_granularity)
{
    struct lv_breaker b;
    setup(&b, rate(), 1);
    request(&b, 0, 500, false);
    counts(&b, 500, 0, 1);
    counts(&b, 10500, 0, 1); /* exactly a window old */
    counts(&b, 10999, 0, 1); /* the bucket [0, 1000) is still counted */
    counts(&b, 11000, 0, 0);
    teardown(&b);
}

Test(breaker, window_counts_sum_every_worker)
{
    struct lv_breaker b;
    setup(&b, rate(), 2);
    cr_expect_eq(requests(&b, 0, 0, false, 5), 0);
    cr_expect_eq(requests(&b, 1, 0, false, 4), 0);
    counts(&b, 0, 0, 9);
    requests(&b, 0, 10, true, 3);
    requests(&b, 1, 10, true, 2);
    counts(&b, 10, 5, 9);
    /* 5 ok + 10 failed of 15: 66% */
    cr_expect(request(&b, 1, 20, false), "judged over both workers' windows");
    teardown(&b);
}

Test(breaker, window_per_worker_each_counts_alone_before_the_sum)
{
    /* failures from worker 0, successes from worker 1: neither window alone
     * tells the truth */
    struct lv_breaker b;
    setup(&b, rate(), 2);
    requests(&b, 1, 0, true, 20);
    cr_expect_eq(requests(&b, 0, 0, false, 19), 0, "19 of 39 < 50%");
    cr_expect(request(&b, 0, 0, false), "20 of 40 = 50%");
    teardown(&b);
}

Test(breaker, a_worker_out_of_range_counts_in_the_first_window)
{
    struct lv_breaker b;
    setup(&b, rate(), 2);
    requests(&b, 7, 0, false, 3);
    requests(&b, UINT32_MAX, 0, true, 2);
    counts(&b, 0, 2, 3);
    teardown(&b);
}

Test(breaker, window_counts_of_a_tiny_window)
{
    /* a window under 10 ms: buckets of 1 ms */
    struct lv_breaker_cfg c = rate();
    c.window = 5;
    struct lv_breaker b;
    setup(&b, c, 1);
    for (uint64_t t = 0; t < 10; t++)
        requests(&b, 0, t, true, 1);
    counts(&b, 9, 6, 0); /* 4..9 */
    counts(&b, 100, 0, 0);
    teardown(&b);
}

/* --- closed: the failure count (failures_in_window within fail_window) ------------ */

Test(breaker, count_opens_at_exactly_failures_in_window_whatever_the_successes)
{
    for (uint32_t n = 1; n <= 6; n++) {
        struct lv_breaker_cfg c = count();
        c.failures_in_window = n;
        struct lv_breaker b;
        setup(&b, c, 1);
        uint64_t now = 100;
        for (uint32_t i = 1; i < n; i++) {
            /* a hundred successes between two failures: neither the
             * consecutive rule nor a rate would see a problem */
            cr_expect_eq(requests(&b, 0, now, true, 100), 0);
            cr_expect_not(request(&b, 0, now, false), "count %u: failure %u", n, i);
            cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
            cr_expect_eq(lv_breaker_recent_failures(&b, &c, now), i);
            now += 10;
        }
        cr_expect_eq(requests(&b, 0, now, true, 100), 0);
        cr_expect(request(&b, 0, now, false), "count %u: the opening failure", n);
        cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
        cr_expect_eq(lv_breaker_open_until(&b), now + 1000);
        cr_expect_eq(b.transitions, 1);
        teardown(&b);
    }
}

Test(breaker, count_only_within_fail_window)
{
    struct lv_breaker_cfg c = count();
    struct lv_breaker b;
    setup(&b, c, 1);
    cr_expect_not(request(&b, 0, 0, false));
    cr_expect_not(request(&b, 0, 6000, false));
    /* at 11000 the failure at 0 has left the window: 6000 and 11000 */
    cr_expect_not(request(&b, 0, 11000, false));
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, 11000), 2);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    /* 6000, 11000, 12000 */
    cr_expect(request(&b, 0, 12000, false));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    teardown(&b);
}

Test(breaker, count_granularity_is_a_tenth_of_fail_window)
{
    struct lv_breaker_cfg c = count();
    c.failures_in_window = 100;
    struct lv_breaker b;
    setup(&b, c, 1);
    request(&b, 0, 500, false);
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, 500), 1);
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, 10500), 1, "exactly a window old");
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, 10999), 1, "[0, 1000) still counted");
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, 11000), 0);
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, 400), 1, "a clock read a hair earlier");
    teardown(&b);
}

Test(breaker, count_has_its_own_window_beside_the_rate_rules)
{
    struct lv_breaker_cfg c = count();
    c.fail_window = 2000; /* buckets of 200 ms; the rate window stays 10 s */
    struct lv_breaker b;
    setup(&b, c, 1);
    cr_expect_not(request(&b, 0, 0, false));
    cr_expect_not(request(&b, 0, 1000, false));
    cr_expect_not(request(&b, 0, 2200, false), "the failure at 0 is out of 2 s");
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, 2200), 2);
    counts(&b, 2200, 0, 3); /* the rate rule's window still has all three */
    cr_expect(request(&b, 0, 2300, false), "1000, 2200, 2300");
    teardown(&b);
}

Test(breaker, count_zero_turns_the_rule_off)
{
    struct lv_breaker_cfg c = count();
    c.failures_in_window = 0;
    struct lv_breaker b;
    setup(&b, c, 1);
    for (int i = 0; i < 1000; i++) {
        cr_assert_not(request(&b, 0, (uint64_t)i, false));
        request(&b, 0, (uint64_t)i, true);
    }
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, 999), 0, "nothing is even counted");
    teardown(&b);
}

Test(breaker, count_across_workers_adds_up)
{
    struct lv_breaker b;
    setup(&b, count(), 3);
    cr_expect_not(request(&b, 0, 0, false));
    request(&b, 0, 0, true);
    cr_expect_not(request(&b, 1, 10, false));
    request(&b, 1, 10, true);
    cr_expect(request(&b, 2, 20, false));
    teardown(&b);
}

Test(breaker, count_starts_from_zero_after_a_close)
{
    struct lv_breaker_cfg c = count();
    c.timeout = 2000;
    struct lv_breaker b;
    setup(&b, c, 2);
    requests(&b, 0, 0, false, 2);
    cr_expect(request(&b, 1, 0, false));
    struct lv_breaker_ticket t;
    uint64_t now = probe(&b, &t);
    lv_breaker_report(&b, 0, now, true, NOJ, &t);
    cr_assert(lv_breaker_allow(&b, now, &t));
    cr_assert(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, now), 0, "the failures before the open");
    cr_expect_eq(requests(&b, 1, now, false, 2), 0, "2 < 3 since the close");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect(request(&b, 0, now, false));
    teardown(&b);
}

Test(breaker, count_is_one_rule_among_three_whichever_comes_first)
{
    struct lv_breaker_cfg c = rate(); /* 50% of >= 10 */
    c.failure_threshold = 4;
    c.failures_in_window = 3;
    c.fail_window = 10000;
    /* the count first: ok fail ok fail ok fail */
    struct lv_breaker b;
    setup(&b, c, 1);
    for (int i = 0; i < 2; i++) {
        request(&b, 0, 0, true);
        cr_expect_not(request(&b, 0, 0, false));
    }
    request(&b, 0, 0, true);
    cr_expect(request(&b, 0, 0, false));
    teardown(&b);
    /* the consecutive rule first, with the count higher */
    c.failures_in_window = 10;
    setup(&b, c, 1);
    cr_expect_eq(requests(&b, 0, 0, false, 3), 0);
    cr_expect(request(&b, 0, 0, false), "4 in a row");
    teardown(&b);
}

Test(breaker, a_stale_failure_does_not_count_toward_fail_window)
{
    struct lv_breaker_cfg c = count();
    struct lv_breaker b;
    setup(&b, c, 1);
    struct lv_breaker_ticket old;
    cr_assert(lv_breaker_allow(&b, 0, &old)); /* a slow request, admitted while closed */
    requests(&b, 0, 0, false, 3);
    cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    cr_expect_not(lv_breaker_report(&b, 0, 10, false, NOJ, &old));
    cr_expect_eq(lv_breaker_recent_failures(&b, &c, 10), 3, "not counted");
    teardown(&b);
}

/* --- open --------------------------------------------------------------------------- */

Test(breaker, open_rejects_until_open_until)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 5000);
    cr_expect_eq(lv_breaker_open_until(&b), 6000);
    for (uint64_t now = 5000; now < 6000; now += 37) {
        struct lv_breaker_ticket t = {.admitted = true, .probe = true};
        cr_expect_not(lv_breaker_allow(&b, now, &t), "at %llu", (unsigned long long)now);
        cr_expect_not(t.admitted);
        cr_expect_not(t.probe);
        cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    }
    struct lv_breaker_ticket t;
    cr_expect_not(lv_breaker_allow(&b, 5999, &t));
    cr_expect_eq(lv_breaker_open_until(&b), 6000, "rejecting does not move it");
    cr_expect(lv_breaker_allow(&b, 6000, &t));
    cr_expect(t.admitted);
    cr_expect(t.probe);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_expect_eq(lv_breaker_open_until(&b), 0, "not open any more");
    teardown(&b);
}

Test(breaker, a_rejected_ticket_reports_nothing)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    struct lv_breaker_ticket t;
    cr_assert_not(lv_breaker_allow(&b, 10, &t));
    cr_expect_not(lv_breaker_report(&b, 0, 10, true, NOJ, &t));
    cr_expect_not(lv_breaker_report(&b, 0, 10, false, NOJ, &t));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    cr_expect_eq(lv_breaker_open_until(&b), 1000);
    lv_breaker_cancel(&b, &t);
    cr_expect_eq(lv_breaker_probes(&b), 0);
    teardown(&b);
}

Test(breaker, open_late_still_admits_one_probe)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    struct lv_breaker_ticket t, t2;
    cr_expect(lv_breaker_allow(&b, 1000000, &t), "long after the open period");
    cr_expect(t.probe);
    cr_expect_not(lv_breaker_allow(&b, 1000000, &t2));
    teardown(&b);
}

static uint64_t period_with(double jitter, uint64_t timeout)
{
    struct lv_breaker_cfg c = base();
    c.failure_threshold = 1;
    c.timeout = timeout;
    c.max_timeout = timeout * 16;
    struct lv_breaker b;
    setup(&b, c, 1);
    struct lv_breaker_ticket t;
    cr_assert(lv_breaker_allow(&b, 1000, &t));
    cr_assert(lv_breaker_report(&b, 0, 1000, false, jitter, &t));
    uint64_t p = lv_breaker_open_until(&b) - 1000;
    lv_breaker_dispose(&b);
    return p;
}

Test(breaker, jitter_half_is_exactly_the_timeout)
{
    cr_expect_eq(period_with(0.5, 1000), 1000);
    cr_expect_eq(period_with(0.5, 30000), 30000);
    cr_expect_eq(period_with(0.5, 7), 7);
}

Test(breaker, jitter_spreads_by_twenty_percent)
{
    uint64_t lo = period_with(0.0, 1000), hi = period_with(U_MAX, 1000);
    cr_expect(lo >= 799 && lo <= 800, "jitter 0: %llu, want 0.8x", (unsigned long long)lo);
    cr_expect(hi >= 1199 && hi <= 1200, "jitter ~1: %llu, want ~1.2x", (unsigned long long)hi);
    cr_expect_eq(period_with(0.25, 1000), 900);
    cr_expect_eq(period_with(0.75, 1000), 1100);
    lo = period_with(0.0, 30000);
    hi = period_with(U_MAX, 30000);
    cr_expect(lo >= 23999 && lo <= 24000, "%llu", (unsigned long long)lo);
    cr_expect(hi >= 35999 && hi <= 36000, "%llu", (unsigned long long)hi);
}

Test(breaker, jitter_is_monotonic_and_bounded)
{
    struct lv_rand r;
    lv_rand_seed(&r, 7);
    uint64_t prev = 0;
    for (int i = 0; i <= 100; i++) {
        double j = i == 100 ? U_MAX : i / 100.0;
        uint64_t p = period_with(j, 10000);
        cr_expect_geq(p, 7999, "jitter %f", j);
        cr_expect_leq(p, 12000, "jitter %f", j);
        cr_expect_geq(p, prev, "jitter %f", j);
        prev = p;
    }
    for (int i = 0; i < 200; i++) {
        double j = lv_rand_unit(&r);
        uint64_t p = period_with(j, 10000);
        cr_expect(p >= 7999 && p <= 12000, "jitter %f: %llu", j, (unsigned long long)p);
    }
}

Test(breaker, the_open_period_is_never_zero)
{
    cr_expect_eq(period_with(0.0, 1), 1, "0.8 ms rounds down to 0: at least 1");
    cr_expect_eq(period_with(0.5, 0), 1);
}

/* --- half-open ---------------------------------------------------------------------- */

Test(breaker, open_to_half_open_the_first_allow_is_a_probe)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    cr_expect_eq(b.transitions, 1);
    struct lv_breaker_ticket t;
    cr_expect(lv_breaker_allow(&b, 1000, &t));
    cr_expect(t.probe);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_expect_eq(b.transitions, 2);
    cr_expect_eq(lv_breaker_probes(&b), 1);
    teardown(&b);
}

Test(breaker, at_most_half_open_requests_probes_at_once)
{
    for (uint32_t n = 1; n <= 5; n++) {
        struct lv_breaker_cfg c = base();
        c.half_open_requests = n;
        c.success_threshold = 100;
        struct lv_breaker b;
        setup(&b, c, 1);
        trip(&b, 0);
        struct lv_breaker_ticket t[8];
        for (uint32_t i = 0; i < n; i++) {
            cr_expect(lv_breaker_allow(&b, 1000 + i, &t[i]), "limit %u: probe %u", n, i + 1);
            cr_expect(t[i].probe);
            cr_expect_eq(t[i].gen, t[0].gen);
        }
        struct lv_breaker_ticket no;
        cr_expect_not(lv_breaker_allow(&b, 1000 + n, &no), "limit %u: one more", n);
        cr_expect_not(no.admitted);
        cr_expect_not(no.probe);
        cr_expect_eq(lv_breaker_probes(&b), n, "a refusal takes no slot");
        /* a finished probe frees its slot */
        cr_expect_not(lv_breaker_report(&b, 0, 2000, true, NOJ, &t[0]));
        cr_expect(lv_breaker_allow(&b, 2000, &t[0]));
        cr_expect(t[0].probe);
        cr_expect_not(lv_breaker_allow(&b, 2000, &no));
        cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
        teardown(&b);
    }
}

#define lv_breaker_peek(b, now) (lv_breaker_peek)((b), cfg_of(b), (now))

Test(breaker, peek_says_what_allow_would_and_admits_nothing)
{
    struct lv_breaker_cfg c = base();
    c.half_open_requests = 2;
    struct lv_breaker b;
    setup(&b, c, 1);
    cr_expect_eq(lv_breaker_peek(&b, 0), LV_PEEK_ADMITS);
    trip(&b, 0); /* open until 1000 */
    cr_expect_eq(lv_breaker_peek(&b, 999), LV_PEEK_OPEN);
    cr_expect_eq(lv_breaker_peek(&b, 1000), LV_PEEK_PROBES, "due: the next allow is a probe");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN, "a peek moves nothing");
    cr_expect_eq(b.transitions, 1);
    struct lv_breaker_ticket t1, t2, no;
    cr_assert(lv_breaker_allow(&b, 1000, &t1) && t1.probe);
    cr_expect_eq(lv_breaker_peek(&b, 1000), LV_PEEK_PROBES, "half-open, a slot free");
    cr_expect_eq(lv_breaker_probes(&b), 1, "a peek takes no slot");
    cr_assert(lv_breaker_allow(&b, 1000, &t2) && t2.probe);
    cr_expect_eq(lv_breaker_peek(&b, 1000), LV_PEEK_PROBES_OUT);
    cr_expect_not(lv_breaker_allow(&b, 1000, &no), "peek and allow agree");
    lv_breaker_cancel(&b, &t2);
    cr_expect_eq(lv_breaker_peek(&b, 1000), LV_PEEK_PROBES);
    /* a disabled breaker admits whatever its state */
    struct lv_breaker_cfg off = c;
    off.enabled = false;
    cr_expect_eq((lv_breaker_peek)(&b, &off, 1000), LV_PEEK_ADMITS);
    cr_expect(lv_breaker_report(&b, 0, 1001, false, NOJ, &t1), "the probe fails: open again");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    cr_expect_eq(lv_breaker_peek(&b, 1002), LV_PEEK_OPEN);
    cr_expect_eq((lv_breaker_peek)(&b, &off, 1002), LV_PEEK_ADMITS);
    teardown(&b);
}

Test(breaker, cancel_gives_a_probe_slot_back)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    struct lv_breaker_ticket t, t2;
    probe(&b, &t);
    cr_expect_not(lv_breaker_allow(&b, 1000, &t2));
    lv_breaker_cancel(&b, &t);
    cr_expect_eq(lv_breaker_probes(&b), 0);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN, "a cancel is not an outcome");
    cr_expect(lv_breaker_allow(&b, 1001, &t2));
    cr_expect(t2.probe);
    /* the cancelled probe's successes did not count: two more still needed */
    cr_expect_not(lv_breaker_report(&b, 0, 1001, true, NOJ, &t2));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    teardown(&b);
}

Test(breaker, cancel_of_anything_but_a_current_probe_is_a_no_op)
{
    struct lv_breaker_cfg c = base();
    c.half_open_requests = 2;
    struct lv_breaker b;
    setup(&b, c, 1);
    /* a closed admission */
    struct lv_breaker_ticket closed_t;
    cr_assert(lv_breaker_allow(&b, 0, &closed_t));
    lv_breaker_cancel(&b, &closed_t);
    cr_expect_eq(lv_breaker_probes(&b), 0);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    trip(&b, 0);
    /* a refusal */
    struct lv_breaker_ticket refused;
    cr_assert_not(lv_breaker_allow(&b, 10, &refused));
    /* the closed admission, now stale, and the refusal */
    struct lv_breaker_ticket p1;
    probe(&b, &p1);
    lv_breaker_cancel(&b, &closed_t);
    lv_breaker_cancel(&b, &refused);
    cr_expect_eq(lv_breaker_probes(&b), 1);
    /* a probe of an earlier half-open period */
    cr_expect(lv_breaker_report(&b, 0, 1000, false, NOJ, &p1));
    struct lv_breaker_ticket p2;
    probe(&b, &p2);
    lv_breaker_cancel(&b, &p1);
    cr_expect_eq(lv_breaker_probes(&b), 1, "a stale probe's cancel does not free a current slot");
    teardown(&b);
}

Test(breaker, half_open_closes_after_success_threshold_probe_successes)
{
    for (uint32_t n = 1; n <= 5; n++) {
        struct lv_breaker_cfg c = base();
        c.success_threshold = n;
        struct lv_breaker b;
        setup(&b, c, 1);
        trip(&b, 0);
        struct lv_breaker_ticket t;
        uint64_t now = probe(&b, &t);
        for (uint32_t i = 1; i < n; i++) {
            cr_expect_not(lv_breaker_report(&b, 0, now, true, NOJ, &t), "threshold %u: %u", n, i);
            cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
            cr_assert(lv_breaker_allow(&b, ++now, &t));
            cr_expect(t.probe);
        }
        cr_expect(lv_breaker_report(&b, 0, now, true, NOJ, &t), "threshold %u: closing", n);
        cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
        cr_expect_eq(lv_breaker_open_until(&b), 0);
        cr_expect_eq(b.transitions, 3);
        /* closed again: admits freely, tickets are not probes */
        struct lv_breaker_ticket t2;
        cr_expect(lv_breaker_allow(&b, now, &t2));
        cr_expect_not(t2.probe);
        teardown(&b);
    }
}

Test(breaker, close_starts_the_failure_count_from_zero)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    requests(&b, 0, 0, false, 2);
    request(&b, 0, 0, true);
    trip(&b, 0);
    struct lv_breaker_ticket t;
    probe(&b, &t);
    lv_breaker_report(&b, 0, 1000, true, NOJ, &t);
    cr_assert(lv_breaker_allow(&b, 1000, &t));
    cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_assert(lv_breaker_report(&b, 0, 1000, true, NOJ, &t));
    cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect_eq(requests(&b, 0, 2000, false, 2), 0);
    cr_expect(request(&b, 0, 2000, false));
    teardown(&b);
}

Test(breaker, the_window_is_reset_on_close)
{
    struct lv_breaker_cfg c = rate();
    c.timeout = 2000; /* the close falls in a later bucket than the failures */
    struct lv_breaker b;
    setup(&b, c, 2);
    requests(&b, 0, 0, true, 2);
    requests(&b, 1, 0, false, 7);
    cr_expect(request(&b, 0, 0, false), "8 of 10");
    struct lv_breaker_ticket t;
    uint64_t now = probe(&b, &t);
    cr_expect_not(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_assert(lv_breaker_allow(&b, now, &t));
    cr_expect(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    uint64_t ok, fail;
    lv_breaker_window_counts(&b, now, &ok, &fail);
    cr_expect_eq(fail, 0, "the failures before the open are forgotten");
    /* 7 failures after the close: with the 2 probes, 9 < 10 in the window */
    now += 10;
    for (int i = 0; i < 7; i++)
        cr_expect_not(request(&b, (unsigned)(i & 1), now, false), "failure %d after close", i + 1);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    teardown(&b);
}

/*
 * The same with the close in the bucket of the failures (timeout shorter
 * than window/10: here 200 ms, buckets of 1 s). The close starts a new epoch; the
 * close time, but lv_breaker_window_counts starts at the bucket holding it,
 * so outcomes from before the close in that bucket still count.
 */
Test(breaker, the_window_is_reset_on_close_within_one_bucket)
{
    struct lv_breaker_cfg c = rate();
    c.failure_threshold = 5;
    c.success_threshold = 1;
    c.timeout = 200;
    struct lv_breaker b;
    setup(&b, c, 1);
    trip(&b, 0); /* 5 consecutive failures at 0 */
    struct lv_breaker_ticket t;
    uint64_t now = probe(&b, &t); /* 200 */
    cr_assert(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    uint64_t ok, fail;
    lv_breaker_window_counts(&b, now, &ok, &fail);
    cr_expect_eq(fail, 0, "closed at %llu: the 5 failures at 0 still count (%llu)",
                 (unsigned long long)now, (unsigned long long)fail);
    /* so: 4 successes and a single failure after the close open it again
     * (6 failures of 11 >= 50%, 11 >= minimum_requests 10) */
    requests(&b, 0, 300, true, 4);
    cr_expect_not(request(&b, 0, 300, false), "one failure after a close reopened it");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    teardown(&b);
}

Test(breaker, half_open_to_open_on_a_probe_failure)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    struct lv_breaker_ticket t;
    uint64_t now = probe(&b, &t);
    cr_expect(lv_breaker_report(&b, 0, now, false, NOJ, &t));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    cr_expect_eq(b.transitions, 3);
    cr_expect_eq(lv_breaker_open_until(&b), now + 2000);
    struct lv_breaker_ticket no;
    cr_expect_not(lv_breaker_allow(&b, now + 1999, &no));
    teardown(&b);
}

Test(breaker, a_probe_failure_after_successes_opens)
{
    struct lv_breaker_cfg c = base();
    c.success_threshold = 3;
    struct lv_breaker b;
    setup(&b, c, 1);
    trip(&b, 0);
    struct lv_breaker_ticket t;
    uint64_t now = probe(&b, &t);
    lv_breaker_report(&b, 0, now, true, NOJ, &t);
    cr_assert(lv_breaker_allow(&b, now, &t));
    lv_breaker_report(&b, 0, now, true, NOJ, &t);
    cr_assert(lv_breaker_allow(&b, now, &t));
    cr_expect(lv_breaker_report(&b, 0, now, false, NOJ, &t));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    /* the next half-open period starts its count of successes from zero */
    now = probe(&b, &t);
    lv_breaker_report(&b, 0, now, true, NOJ, &t);
    cr_assert(lv_breaker_allow(&b, now, &t));
    cr_expect_not(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_assert(lv_breaker_allow(&b, now, &t));
    cr_expect(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    teardown(&b);
}

Test(breaker, the_open_period_doubles_up_to_max_timeout)
{
    struct lv_breaker b;
    setup(&b, base(), 1); /* 1000 .. 8000 */
    trip(&b, 0);
    cr_expect_eq(lv_breaker_open_until(&b), 1000);
    const uint64_t want[] = {2000, 4000, 8000, 8000, 8000, 8000};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        struct lv_breaker_ticket t;
        uint64_t now = probe(&b, &t);
        cr_expect(lv_breaker_report(&b, 0, now, false, NOJ, &t));
        cr_expect_eq(lv_breaker_open_until(&b) - now, want[i], "re-open %zu: %llu, want %llu",
                     i + 1, (unsigned long long)(lv_breaker_open_until(&b) - now),
                     (unsigned long long)want[i]);
    }
    teardown(&b);
}

Test(breaker, max_timeout_not_a_power_of_two_times_timeout)
{
    struct lv_breaker_cfg c = base();
    c.timeout = 1000;
    c.max_timeout = 3000;
    struct lv_breaker b;
    setup(&b, c, 1);
    trip(&b, 0);
    const uint64_t want[] = {2000, 3000, 3000};
    for (size_t i = 0; i < 3; i++) {
        struct lv_breaker_ticket t;
        uint64_t now = probe(&b, &t);
        lv_breaker_report(&b, 0, now, false, NOJ, &t);
        cr_expect_eq(lv_breaker_open_until(&b) - now, want[i]);
    }
    teardown(&b);
}

Test(breaker, the_doubled_period_is_jittered_too)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    struct lv_breaker_ticket t;
    uint64_t now = probe(&b, &t);
    lv_breaker_report(&b, 0, now, false, 0.25, &t); /* 2000 * 0.9 */
    cr_expect_eq(lv_breaker_open_until(&b) - now, 1800);
    now = probe(&b, &t);
    lv_breaker_report(&b, 0, now, false, 0.75, &t); /* 4000 * 1.1 */
    cr_expect_eq(lv_breaker_open_until(&b) - now, 4400);
    teardown(&b);
}

Test(breaker, the_open_period_is_back_to_timeout_after_a_close)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    uint64_t now = 0;
    for (int cycle = 0; cycle < 3; cycle++) {
        if (cycle) now += base().window; /* closed for a whole window: forgiven */
        trip(&b, now);
        cr_expect_eq(lv_breaker_open_until(&b) - now, 1000, "cycle %d", cycle);
        struct lv_breaker_ticket t;
        for (uint64_t want = 2000; want <= 8000; want *= 2) {
            now = probe(&b, &t);
            lv_breaker_report(&b, 0, now, false, NOJ, &t);
            cr_expect_eq(lv_breaker_open_until(&b) - now, want, "cycle %d", cycle);
        }
        now = probe(&b, &t);
        lv_breaker_report(&b, 0, now, true, NOJ, &t);
        cr_assert(lv_breaker_allow(&b, now, &t));
        cr_assert(lv_breaker_report(&b, 0, now, true, NOJ, &t));
        cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
        now += 100;
    }
    teardown(&b);
}

Test(breaker, failing_again_soon_after_closing_keeps_doubling)
{
    struct lv_breaker b;
    setup(&b, base(), 1); /* timeout 1 s, max 8 s, window 10 s */
    uint64_t now = 0;
    struct lv_breaker_ticket t;
    trip(&b, now);
    cr_expect_eq(lv_breaker_open_until(&b) - now, 1000);
    for (uint64_t want = 2000; want <= 8000; want *= 2) {
        /* two probes pass, it closes, and it fails again at once */
        now = probe(&b, &t);
        lv_breaker_report(&b, 0, now, true, NOJ, &t);
        cr_assert(lv_breaker_allow(&b, now, &t));
        cr_assert(lv_breaker_report(&b, 0, now, true, NOJ, &t));
        cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
        now += 100;
        trip(&b, now);
        cr_expect_eq(lv_breaker_open_until(&b) - now, want > 8000 ? 8000 : want);
    }
    teardown(&b);
}

Test(breaker, tickets_admitted_while_closed_cannot_close_a_half_open_breaker)
{
    /* tickets admitted while closed are stale once half-open: only probes
     * count, however many successes arrive */
    struct lv_breaker b;
    setup(&b, base(), 1);
    struct lv_breaker_ticket slow[10];
    for (int i = 0; i < 10; i++)
        cr_assert(lv_breaker_allow(&b, 0, &slow[i]));
    trip(&b, 0);
    struct lv_breaker_ticket t;
    probe(&b, &t);
    for (int i = 0; i < 10; i++)
        cr_expect_not(lv_breaker_report(&b, 0, 1000, true, NOJ, &slow[i]));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_expect_eq(lv_breaker_probes(&b), 1, "their reports do not free the probe's slot");
    teardown(&b);
}

/* --- stale reports ------------------------------------------------------------------ */

Test(breaker, a_stale_report_changes_nothing_while_open)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    struct lv_breaker_ticket slow;
    cr_assert(lv_breaker_allow(&b, 0, &slow)); /* admitted while closed */
    trip(&b, 100);
    uint64_t until = lv_breaker_open_until(&b);
    uint64_t tr = b.transitions;
    cr_expect_not(lv_breaker_report(&b, 0, 200, false, 0.0, &slow));
    cr_expect_not(lv_breaker_report(&b, 0, 200, true, 0.0, &slow));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    cr_expect_eq(lv_breaker_open_until(&b), until);
    cr_expect_eq(b.transitions, tr);
    teardown(&b);
}

Test(breaker, a_stale_report_changes_nothing_while_half_open)
{
    struct lv_breaker_cfg c = base();
    c.success_threshold = 1;
    struct lv_breaker b;
    setup(&b, c, 1);
    struct lv_breaker_ticket slow;
    cr_assert(lv_breaker_allow(&b, 0, &slow));
    trip(&b, 0);
    struct lv_breaker_ticket t;
    probe(&b, &t);
    cr_expect_not(lv_breaker_report(&b, 0, 1000, false, NOJ, &slow), "a stale failure");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_expect_not(lv_breaker_report(&b, 0, 1000, true, NOJ, &slow), "a stale success");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_expect_eq(lv_breaker_probes(&b), 1);
    cr_expect(lv_breaker_report(&b, 0, 1000, true, NOJ, &t));
    teardown(&b);
}

Test(breaker, a_stale_failure_after_a_close_does_not_count_toward_the_next_open)
{
    struct lv_breaker_cfg c = base();
    c.success_threshold = 1;
    struct lv_breaker b;
    setup(&b, c, 1);
    struct lv_breaker_ticket slow[3];
    for (int i = 0; i < 3; i++)
        cr_assert(lv_breaker_allow(&b, 0, &slow[i]));
    trip(&b, 0);
    struct lv_breaker_ticket t;
    uint64_t now = probe(&b, &t);
    cr_assert(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    /* the slow requests of generation 0 fail now: generation 3 is closed */
    for (int i = 0; i < 3; i++)
        cr_expect_not(lv_breaker_report(&b, 0, now + 10, false, NOJ, &slow[i]));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect_eq(b.consecutive_fail, 0);
    cr_expect_eq(requests(&b, 0, now + 20, false, 2), 0, "the fresh count starts at zero");
    teardown(&b);
}

Test(breaker, a_stale_probe_changes_nothing)
{
    struct lv_breaker_cfg c = base();
    c.half_open_requests = 2;
    c.success_threshold = 1;
    struct lv_breaker b;
    setup(&b, c, 1);
    trip(&b, 0);
    struct lv_breaker_ticket p1, p2;
    uint64_t now = probe(&b, &p1);
    cr_assert(lv_breaker_allow(&b, now, &p2));
    cr_assert(p2.probe);
    cr_expect(lv_breaker_report(&b, 0, now, false, NOJ, &p1), "p1 fails: open");
    cr_expect_not(lv_breaker_report(&b, 0, now, true, NOJ, &p2), "p2 succeeds, too late");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    uint64_t until = lv_breaker_open_until(&b);
    cr_expect_eq(until, now + 2000);
    /* in the next half-open period, the old probe is still stale */
    struct lv_breaker_ticket p3;
    now = probe(&b, &p3);
    cr_expect_not(lv_breaker_report(&b, 0, now, true, NOJ, &p2));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_expect_eq(lv_breaker_probes(&b), 1);
    cr_expect(lv_breaker_report(&b, 0, now, true, NOJ, &p3));
    teardown(&b);
}

/*
 * A slow request admitted while closed, failing after the breaker has been
 * through open and half-open and closed again, is stale: it does not move
 * the new state. It is still added to the rate window, where it counts
 * toward the next open as if it had just happened.
 */
Test(breaker, a_stale_failure_after_a_close_is_not_counted_in_the_window)
{
    struct lv_breaker_cfg c = rate();
    c.failure_threshold = 3;
    c.success_threshold = 1;
    c.timeout = 2000;
    struct lv_breaker b;
    setup(&b, c, 1);
    struct lv_breaker_ticket slow[10];
    for (int i = 0; i < 10; i++)
        cr_assert(lv_breaker_allow(&b, 0, &slow[i]));
    trip(&b, 0);
    struct lv_breaker_ticket t;
    uint64_t now = probe(&b, &t);
    cr_assert(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_assert_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    now += 1000;
    for (int i = 0; i < 10; i++)
        cr_expect_not(lv_breaker_report(&b, 0, now, false, NOJ, &slow[i]));
    uint64_t ok, fail;
    lv_breaker_window_counts(&b, now, &ok, &fail);
    cr_expect_eq(fail, 0, "%llu stale failures counted in the new window",
                 (unsigned long long)fail);
    cr_expect_not(request(&b, 0, now, false), "one fresh failure opened it again");
    teardown(&b);
}

/* --- health checks ------------------------------------------------------------------ */

Test(breaker, health_passed_on_an_open_breaker_lets_a_probe_through_now)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    struct lv_breaker_ticket t;
    cr_assert_not(lv_breaker_allow(&b, 10, &t));
    lv_breaker_health_passed(&b, 20);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN, "until someone is admitted");
    cr_expect_eq(lv_breaker_open_until(&b), 20);
    cr_expect(lv_breaker_allow(&b, 20, &t));
    cr_expect(t.probe);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    struct lv_breaker_ticket t2;
    cr_expect_not(lv_breaker_allow(&b, 20, &t2), "still one probe at a time");
    teardown(&b);
}

Test(breaker, health_passed_never_delays)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    lv_breaker_health_passed(&b, 5000); /* after open_until already */
    cr_expect_eq(lv_breaker_open_until(&b), 1000);
    lv_breaker_health_passed(&b, 1000);
    cr_expect_eq(lv_breaker_open_until(&b), 1000);
    teardown(&b);
}

Test(breaker, health_passed_on_a_closed_breaker_does_nothing)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    requests(&b, 0, 0, false, 2);
    lv_breaker_health_passed(&b, 10);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect_eq(lv_breaker_open_until(&b), 0);
    cr_expect_eq(b.transitions, 0);
    cr_expect(request(&b, 0, 20, false), "the failure count is kept");
    teardown(&b);
}

Test(breaker, health_passed_on_a_half_open_breaker_does_nothing)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    struct lv_breaker_ticket t, t2;
    probe(&b, &t);
    lv_breaker_health_passed(&b, 1500);
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_expect_not(lv_breaker_allow(&b, 1500, &t2));
    cr_expect_eq(lv_breaker_probes(&b), 1);
    teardown(&b);
}

/* --- names -------------------------------------------------------------------------- */

/* --- outlier ejection ------------------------------------------------------------- */

Test(breaker, eject_opens_a_closed_breaker_as_a_failure_would)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    cr_expect_eq(lv_breaker_opened_at(&b), 0, "never opened");
    cr_expect(lv_breaker_eject(&b, cfg_of(&b), 500, NOJ));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_OPEN);
    cr_expect_eq(lv_breaker_open_until(&b), 1500);
    cr_expect_eq(lv_breaker_opened_at(&b), 500);
    cr_expect_eq(b.transitions, 1);
    struct lv_breaker_ticket t;
    cr_expect_not(lv_breaker_allow(&b, 1499, &t));
    /* and it comes back the usual way: probes */
    uint64_t now = probe(&b, &t);
    cr_expect_eq(now, 1500);
    cr_expect_not(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_assert(lv_breaker_allow(&b, now, &t));
    cr_expect(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_CLOSED);
    cr_expect_eq(lv_breaker_opened_at(&b), 500, "when it last opened, still");
    teardown(&b);
}

Test(breaker, eject_is_jittered_like_a_trip)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    cr_expect(lv_breaker_eject(&b, cfg_of(&b), 0, 0.0));
    cr_expect_eq(lv_breaker_open_until(&b), 800, "-20%%");
    teardown(&b);
}

Test(breaker, eject_of_a_breaker_already_out_changes_nothing)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    trip(&b, 0);
    uint64_t until = lv_breaker_open_until(&b);
    cr_expect_not(lv_breaker_eject(&b, cfg_of(&b), 10, NOJ), "open");
    cr_expect_eq(lv_breaker_open_until(&b), until, "not extended");
    struct lv_breaker_ticket t;
    probe(&b, &t);
    cr_expect_not(lv_breaker_eject(&b, cfg_of(&b), until, NOJ), "half-open");
    cr_expect_eq(lv_breaker_state(&b), LV_BREAKER_HALF_OPEN);
    cr_expect_eq(b.transitions, 2);
    teardown(&b);
}

Test(breaker, ejected_again_soon_after_closing_stays_out_twice_as_long)
{
    struct lv_breaker b;
    setup(&b, base(), 1); /* timeout 1 s, max 8 s, window 10 s */
    struct lv_breaker_ticket t;
    uint64_t now = 0;
    cr_assert(lv_breaker_eject(&b, cfg_of(&b), now, NOJ));
    for (uint64_t want = 2000; want <= 16000; want *= 2) {
        now = probe(&b, &t);
        lv_breaker_report(&b, 0, now, true, NOJ, &t);
        cr_assert(lv_breaker_allow(&b, now, &t));
        cr_assert(lv_breaker_report(&b, 0, now, true, NOJ, &t));
        now += 100;
        cr_assert(lv_breaker_eject(&b, cfg_of(&b), now, NOJ));
        cr_expect_eq(lv_breaker_open_until(&b) - now, want > 8000 ? 8000 : want);
    }
    /* closed for longer than the window: from timeout again */
    now = probe(&b, &t);
    lv_breaker_report(&b, 0, now, true, NOJ, &t);
    cr_assert(lv_breaker_allow(&b, now, &t));
    cr_assert(lv_breaker_report(&b, 0, now, true, NOJ, &t));
    now += 10000;
    cr_assert(lv_breaker_eject(&b, cfg_of(&b), now, NOJ));
    cr_expect_eq(lv_breaker_open_until(&b) - now, 1000);
    teardown(&b);
}

Test(breaker, state_names)
{
    cr_expect_str_eq(lv_breaker_state_name(LV_BREAKER_CLOSED), "closed");
    cr_expect_str_eq(lv_breaker_state_name(LV_BREAKER_OPEN), "open");
    cr_expect_str_eq(lv_breaker_state_name(LV_BREAKER_HALF_OPEN), "half_open");
    cr_expect_str_eq(lv_breaker_state_name((enum lv_breaker_state)3), "unknown");
}

/* --- a full life ---------------------------------------------------------------------- */

Test(breaker, generations_grow_with_every_transition)
{
    struct lv_breaker b;
    setup(&b, base(), 1);
    struct lv_breaker_ticket t;
    cr_assert(lv_breaker_allow(&b, 0, &t));
    uint64_t g0 = t.gen;
    trip(&b, 0);
    cr_assert_not(lv_breaker_allow(&b, 10, &t));
    cr_expect_eq(t.gen, g0 + 1);
    probe(&b, &t);
    cr_expect_eq(t.gen, g0 + 2);
    lv_breaker_report(&b, 0, 1000, true, NOJ, &t);
    cr_assert(lv_breaker_allow(&b, 1000, &t));
    lv_breaker_report(&b, 0, 1000, true, NOJ, &t);
    cr_assert(lv_breaker_allow(&b, 1000, &t));
    cr_expect_eq(t.gen, g0 + 3);
    cr_expect_eq(b.transitions, 3);
    teardown(&b);
}

/* --- threads ------------------------------------------------------------------------ */

/*
 * Two workers report successes, a third fails in bursts, all on one breaker
 * and one clock. The open period is 1-2 ms, so the breaker goes round
 * closed -> open -> half-open -> ... thousands of times while the threads
 * race. The assertions hold for every interleaving of a correct breaker:
 * the probe counter never goes below zero (it is unsigned: never wraps to
 * ~4e9), every admission is accounted, and afterwards the breaker recovers.
 */

#define LOOPS 100000

struct shared {
    struct lv_breaker b;
    atomic_uint_fast64_t clock; /* 4 ticks per ms */
    atomic_uint_fast64_t admitted, refused, probe_tickets, wrapped;
    atomic_uint max_probes;
    pthread_barrier_t start;
};

struct worker {
    struct shared *s;
    unsigned w;
    bool fail; /* reports failures in bursts of 100 instead of successes */
    const char *error;
};

static void *run(void *arg)
{
    struct worker *wk = arg;
    struct shared *s = wk->s;
    struct lv_rand r;
    lv_rand_seed(&r, wk->w + 1);
    pthread_barrier_wait(&s->start);
    for (unsigned i = 0; i < LOOPS; i++) {
        uint64_t now = atomic_fetch_add(&s->clock, 1) / 4;
        struct lv_breaker_ticket t;
        bool in = lv_breaker_allow(&s->b, now, &t);
        if (in != t.admitted) wk->error = "allow and ticket.admitted disagree";
        if (!in && t.probe) wk->error = "a refusal marked as a probe";
        atomic_fetch_add(in ? &s->admitted : &s->refused, 1);
        unsigned p = lv_breaker_probes(&s->b);
        if (p > 1000000) atomic_fetch_add(&s->wrapped, 1);
        unsigned m = atomic_load(&s->max_probes);
        while (p > m && !atomic_compare_exchange_weak(&s->max_probes, &m, p)) {}
        enum lv_breaker_state st = lv_breaker_state(&s->b);
        if (st != LV_BREAKER_CLOSED && st != LV_BREAKER_OPEN && st != LV_BREAKER_HALF_OPEN)
            wk->error = "invalid state";
        if (!in) continue;
        if (t.probe) atomic_fetch_add(&s->probe_tickets, 1);
        if (i % 11 == 5) { /* the request went elsewhere */
            lv_breaker_cancel(&s->b, &t);
            continue;
        }
        bool ok = !wk->fail || (i / 100) % 2 == 0;
        lv_breaker_report(&s->b, wk->w, now, ok, lv_rand_unit(&r), &t);
    }
    return NULL;
}

/* One race of the three threads on a fresh breaker; false if an
 * invariant broke (reported through Criterion). */
static bool race(struct shared *s, const struct lv_breaker_cfg *c, int round)
{
    memset(s, 0, sizeof(*s));
    cr_assert_eq(lv_breaker_init(&s->b, c, 3), 0);
    struct worker wk[3] = {{s, 0, false, NULL}, {s, 1, false, NULL}, {s, 2, true, NULL}};
    pthread_t th[3];
    cr_assert_eq(pthread_barrier_init(&s->start, NULL, 3), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, run, &wk[i]), 0);
    bool ok = true;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(pthread_join(th[i], NULL), 0);
        if (wk[i].error) {
            cr_expect_fail("round %d, thread %d: %s", round, i, wk[i].error);
            ok = false;
        }
    }
    pthread_barrier_destroy(&s->start);
    cr_log_info("round %d: transitions %llu, probes admitted %llu, refused %llu, max probes %u",
                round, (unsigned long long)atomic_load(&s->b.transitions),
                (unsigned long long)atomic_load(&s->probe_tickets),
                (unsigned long long)atomic_load(&s->refused), atomic_load(&s->max_probes));
    if (atomic_load(&s->admitted) + atomic_load(&s->refused) != 3 * LOOPS) {
        cr_expect_fail("round %d: admissions and refusals do not add up", round);
        ok = false;
    }
    enum lv_breaker_state st = lv_breaker_state(&s->b);
    if (st != LV_BREAKER_CLOSED && st != LV_BREAKER_OPEN && st != LV_BREAKER_HALF_OPEN) {
        cr_expect_fail("round %d: invalid state %d", round, (int)st);
        ok = false;
    }
    if (atomic_load(&s->wrapped) != 0) {
        cr_expect_fail("round %d: the probe counter was seen below zero (wrapped to ~4e9) "
                       "%llu times; it ended at %u, state %s",
                       round, (unsigned long long)atomic_load(&s->wrapped),
                       lv_breaker_probes(&s->b), lv_breaker_state_name(st));
        ok = false;
    }
    unsigned probes = lv_breaker_probes(&s->b);
    if (probes > c->half_open_requests || (st == LV_BREAKER_HALF_OPEN && probes != 0)) {
        cr_expect_fail("round %d: %s with %u probes in flight after every probe was reported "
                       "or cancelled",
                       round, lv_breaker_state_name(st), probes);
        ok = false;
    }

    /* Whatever happened, the breaker recovers: far in the future a probe
     * gets through and success_threshold successes close it. */
    uint64_t now = atomic_load(&s->clock) + 1000000;
    for (unsigned i = 0; i <= c->success_threshold && lv_breaker_state(&s->b) != LV_BREAKER_CLOSED;
         i++) {
        struct lv_breaker_ticket t;
        if (!lv_breaker_allow(&s->b, now, &t)) {
            cr_expect_fail("round %d: stuck %s with %u probes in flight: it never admits again",
                           round, lv_breaker_state_name(lv_breaker_state(&s->b)),
                           lv_breaker_probes(&s->b));
            ok = false;
            break;
        }
        lv_breaker_report(&s->b, 0, now, true, NOJ, &t);
    }
    if (ok) cr_expect_eq(lv_breaker_state(&s->b), LV_BREAKER_CLOSED, "round %d", round);
    lv_breaker_dispose(&s->b);
    return ok;
}

/* A few rounds: on two cores a round races hard enough about half the time. */
Test(breaker, threads_keep_the_invariants, .timeout = 60)
{
    static struct shared s; /* large: not on the stack */
    struct lv_breaker_cfg c = base();
    c.failure_threshold = 5;
    c.success_threshold = 2;
    c.timeout = 1;
    c.max_timeout = 2;
    c.failure_rate_threshold = 0.25; /* a burst from one thread of three trips it */
    c.minimum_requests = 20;
    c.window = 100;
    c.half_open_requests = 1;
    for (int round = 1; round <= 8; round++) {
        if (!race(&s, &c, round)) break;
    }
    LV_EXPECT_NO_LEAKS();
}
