/*
 * Hedging (upstream/hedge.c): the delay, fixed or from the backend's
 * latency quantile within [min, max], and the decision table when the
 * timer fires, row by row and as a whole. With latwin, the p95 of a real
 * window drives the delay end to end on a fake clock.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "unit/lv_test.h"
#include "upstream/hedge.h"
#include "upstream/latwin.h"

static struct lv_hedge_cfg auto_cfg(void)
{
    return (struct lv_hedge_cfg){
        .after = LV_HEDGE_AUTO,
        .quantile = 0.95,
        .min = 10,
        .max = 500,
        .min_samples = 20,
        .window = 10000,
    };
}

/* A request that may be hedged now. */
static struct lv_hedge_ask go(void)
{
    return (struct lv_hedge_ask){
        .idempotent = true,
        .body_complete = true,
        .replayable = true,
        .upgrade = false,
        .answered = false,
        .hedged = false,
        .attempts = 1,
        .max_attempts = 3,
        .other_backend = true,
        .budget = true,
        .now = 1000,
        .deadline = 4000,
    };
}

/* --- the delay ------------------------------------------------------------------------ */

Test(hedge, fixed_delay_ignores_the_estimate)
{
    struct lv_hedge_cfg c = auto_cfg();
    c.after = 50;
    cr_expect_eq(lv_hedge_delay(&c, 0, 0), 50);
    cr_expect_eq(lv_hedge_delay(&c, 900000, 1000), 50);
    cr_expect_eq(lv_hedge_delay(&c, 1, 1000), 50, "min and max are for auto");
}

Test(hedge, off_is_zero)
{
    struct lv_hedge_cfg c = auto_cfg();
    c.after = 0;
    cr_expect_eq(lv_hedge_delay(&c, 30000, 1000), 0);
    cr_expect_not(lv_hedge_on(&c));
    c.after = LV_HEDGE_AUTO;
    cr_expect(lv_hedge_on(&c));
}

Test(hedge, auto_follows_the_estimate_within_min_and_max)
{
    struct lv_hedge_cfg c = auto_cfg();
    cr_expect_eq(lv_hedge_delay(&c, 37000, 100), 37);
    cr_expect_eq(lv_hedge_delay(&c, 37001, 100), 38, "rounded up");
    cr_expect_eq(lv_hedge_delay(&c, 36999, 100), 37);
    cr_expect_eq(lv_hedge_delay(&c, 2000, 100), 10, "never below min");
    cr_expect_eq(lv_hedge_delay(&c, 0, 100), 10);
    cr_expect_eq(lv_hedge_delay(&c, 10000, 100), 10);
    cr_expect_eq(lv_hedge_delay(&c, 10001, 100), 11);
    cr_expect_eq(lv_hedge_delay(&c, 500000, 100), 500);
    cr_expect_eq(lv_hedge_delay(&c, 900000000, 100), 500, "never above max");
}

Test(hedge, auto_without_enough_samples_waits_max)
{
    struct lv_hedge_cfg c = auto_cfg();
    cr_expect_eq(lv_hedge_delay(&c, 3000, 19), 500);
    cr_expect_eq(lv_hedge_delay(&c, 3000, 0), 500);
    cr_expect_eq(lv_hedge_delay(&c, 30000, 20), 30, "20 answers are enough");
    c.min_samples = 0;
    cr_expect_eq(lv_hedge_delay(&c, 0, 0), 500, "no sample at all is no estimate");
    cr_expect_eq(lv_hedge_delay(&c, 30000, 1), 30);
}

Test(hedge, min_above_max_counts_as_max)
{
    struct lv_hedge_cfg c = auto_cfg();
    c.min = 800;
    cr_expect_eq(lv_hedge_delay(&c, 0, 100), 500);
    cr_expect_eq(lv_hedge_delay(&c, 900000, 100), 500);
    c.max = 0;
    c.min = 0;
    cr_expect_eq(lv_hedge_delay(&c, 900000, 100), 1, "auto never means 0 (off)");
}

Test(hedge, the_p95_of_the_answers_sets_the_delay)
{
    struct lv_latwin l;
    cr_assert_eq(lv_latwin_init(&l, 2), 0);
    struct lv_hedge_cfg c = auto_cfg();
    uint64_t now = 0;
    /* A backend answering in 20 ms, a twentieth of them in 80 ms. */
    for (unsigned i = 0; i < 400; i++, now += 5)
        lv_latwin_add(&l, i & 1, c.window, now, i % 20 == 0 ? 80000 : 20000);
    struct lv_latwin_est e = lv_latwin_estimate(&l, c.window, now, c.quantile);
    uint64_t d = lv_hedge_delay(&c, e.us, e.n);
    cr_expect(d >= 20 && d <= 24, "the p95 is the body, not the tail: %llu ms",
              (unsigned long long)d);
    /* It slows down: 40% of the answers take 200 ms. The slices with the
     * fast answers leave the window; the delay follows. */
    for (unsigned i = 0; i < 400; i++, now += 25)
        lv_latwin_add(&l, 0, c.window, now, i % 5 < 2 ? 200000 : 20000);
    e = lv_latwin_estimate(&l, c.window, now, c.quantile);
    d = lv_hedge_delay(&c, e.us, e.n);
    cr_expect(d >= 196 && d <= 230, "%llu ms", (unsigned long long)d);
    /* Quiet for a whole window: no estimate, max. */
    now += c.window;
    e = lv_latwin_estimate(&l, c.window, now, c.quantile);
    cr_expect_eq(e.n, 0);
    cr_expect_eq(lv_hedge_delay(&c, e.us, e.n), 500);
    lv_latwin_dispose(&l);
    LV_EXPECT_NO_LEAKS();
}

/* --- the decision ----------------------------------------------------------------------- */

Test(hedge, a_request_that_may_is_hedged)
{
    struct lv_hedge_cfg c = auto_cfg();
    struct lv_hedge_ask a = go();
    cr_expect_eq(lv_hedge_decide(&c, &a), LV_HEDGE_GO);
    c.after = 50;
    cr_expect_eq(lv_hedge_decide(&c, &a), LV_HEDGE_GO, "fixed too");
}

Test(hedge, each_row_of_the_table)
{
    struct lv_hedge_cfg c = auto_cfg();
    struct lv_hedge_ask a;
#define EXPECT(change, why)                                                                        \
    do {                                                                                           \
        a = go();                                                                                  \
        change;                                                                                    \
        cr_expect_eq(lv_hedge_decide(&c, &a), why, "%s: %s", #change,                              \
                     lv_hedge_why_name(lv_hedge_decide(&c, &a)));                                  \
    } while (0)
    EXPECT(a.idempotent = false, LV_HEDGE_UNSAFE);
    EXPECT(a.body_complete = false, LV_HEDGE_UNSAFE);
    EXPECT(a.replayable = false, LV_HEDGE_UNSAFE);
    EXPECT(a.upgrade = true, LV_HEDGE_UNSAFE);
    EXPECT(a.answered = true, LV_HEDGE_SETTLED);
    EXPECT(a.hedged = true, LV_HEDGE_SETTLED);
    EXPECT(a.attempts = 3, LV_HEDGE_ATTEMPTS);
    EXPECT(a.attempts = 9, LV_HEDGE_ATTEMPTS);
    EXPECT(a.attempts = 2, LV_HEDGE_GO);
    EXPECT(a.other_backend = false, LV_HEDGE_NOWHERE);
    EXPECT(a.now = 4000, LV_HEDGE_DEADLINE);
    EXPECT(a.now = 5000, LV_HEDGE_DEADLINE);
    EXPECT(a.now = 3991, LV_HEDGE_DEADLINE);
    EXPECT(a.now = 3990, LV_HEDGE_GO);
    EXPECT(a.budget = false, LV_HEDGE_BUDGET);
#undef EXPECT
}

Test(hedge, off_comes_first)
{
    struct lv_hedge_cfg c = auto_cfg();
    c.after = 0;
    struct lv_hedge_ask a = go();
    cr_expect_eq(lv_hedge_decide(&c, &a), LV_HEDGE_OFF);
    a.idempotent = false;
    a.budget = false;
    cr_expect_eq(lv_hedge_decide(&c, &a), LV_HEDGE_OFF);
}

Test(hedge, the_first_reason_that_applies_wins_over_every_combination)
{
    struct lv_hedge_cfg c = auto_cfg();
    /* 9 ways a request can fail to be hedged, each as a bit: the answer is
     * the earliest row of the table that applies. */
    for (unsigned bits = 0; bits < 512; bits++) {
        struct lv_hedge_ask a = go();
        a.idempotent = !(bits & 1);
        a.body_complete = !(bits & 2);
        a.replayable = !(bits & 4);
        a.upgrade = bits & 8;
        a.answered = bits & 16;
        a.hedged = bits & 32;
        if (bits & 64) a.attempts = 3;
        a.other_backend = !(bits & 128);
        a.budget = !(bits & 256);
        enum lv_hedge_why want = bits & 15    ? LV_HEDGE_UNSAFE
                                 : bits & 48  ? LV_HEDGE_SETTLED
                                 : bits & 64  ? LV_HEDGE_ATTEMPTS
                                 : bits & 128 ? LV_HEDGE_NOWHERE
                                 : bits & 256 ? LV_HEDGE_BUDGET
                                              : LV_HEDGE_GO;
        cr_assert_eq(lv_hedge_decide(&c, &a), want, "bits %u: %s", bits,
                     lv_hedge_why_name(lv_hedge_decide(&c, &a)));
        /* the deadline goes between "nowhere" and "budget" */
        a.now = a.deadline;
        if (want == LV_HEDGE_BUDGET || want == LV_HEDGE_GO)
            cr_assert_eq(lv_hedge_decide(&c, &a), LV_HEDGE_DEADLINE, "bits %u", bits);
        else
            cr_assert_eq(lv_hedge_decide(&c, &a), want, "bits %u", bits);
    }
}

Test(hedge, with_min_zero_only_a_passed_deadline_stops_it)
{
    struct lv_hedge_cfg c = auto_cfg();
    c.after = 50;
    c.min = 0;
    struct lv_hedge_ask a = go();
    a.now = a.deadline - 1;
    cr_expect_eq(lv_hedge_decide(&c, &a), LV_HEDGE_GO);
    a.now = a.deadline;
    cr_expect_eq(lv_hedge_decide(&c, &a), LV_HEDGE_DEADLINE);
}

Test(hedge, names)
{
    cr_expect_str_eq(lv_hedge_why_name(LV_HEDGE_GO), "go");
    cr_expect_str_eq(lv_hedge_why_name(LV_HEDGE_BUDGET), "budget");
    cr_expect_str_eq(lv_hedge_why_name(LV_HEDGE_ATTEMPTS), "attempts_exhausted");
    cr_expect_str_eq(lv_hedge_why_name(LV_HEDGE_WHY_COUNT), "unknown");
    for (int w = 0; w < LV_HEDGE_WHY_COUNT; w++)
        cr_expect_str_neq(lv_hedge_why_name((enum lv_hedge_why)w), "unknown");
}
