/* Rise/fall health thresholds of one backend (upstream/health.c). */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "upstream/health.h"

/* Feeds `n` results `ok`; returns how many of them reported a change. */
static unsigned feed(struct lv_health *h, bool ok, unsigned n, uint32_t rise, uint32_t fall)
{
    unsigned changes = 0;
    for (unsigned i = 0; i < n; i++)
        changes += lv_health_report(h, ok, rise, fall);
    return changes;
}

Test(health, starts_healthy)
{
    struct lv_health h;
    lv_health_init(&h);
    cr_expect(h.healthy);
    cr_expect_eq(h.ok_streak, 0);
    cr_expect_eq(h.fail_streak, 0);
}

Test(health, init_clears_a_used_state)
{
    struct lv_health h = {.healthy = false, .ok_streak = 7, .fail_streak = 9};
    lv_health_init(&h);
    cr_expect(h.healthy);
    cr_expect_eq(h.ok_streak, 0);
    cr_expect_eq(h.fail_streak, 0);
}

Test(health, passes_while_healthy_change_nothing)
{
    struct lv_health h;
    lv_health_init(&h);
    cr_expect_eq(feed(&h, true, 100, 2, 3), 0);
    cr_expect(h.healthy);
    cr_expect_eq(h.fail_streak, 0);
}

Test(health, fall_consecutive_failures_make_it_unhealthy_exactly_once)
{
    const uint32_t rise = 2, fall = 3;
    struct lv_health h;
    lv_health_init(&h);
    for (uint32_t i = 1; i < fall; i++) {
        cr_expect_not(lv_health_report(&h, false, rise, fall), "failure %u of %u", i, fall);
        cr_expect(h.healthy, "still healthy after %u failures", i);
    }
    cr_expect(lv_health_report(&h, false, rise, fall), "the fall-th failure is the change");
    cr_expect_not(h.healthy);
    /* more failures: no more changes */
    cr_expect_eq(feed(&h, false, 50, rise, fall), 0);
    cr_expect_not(h.healthy);
}

Test(health, a_pass_resets_the_failure_streak)
{
    const uint32_t rise = 2, fall = 3;
    struct lv_health h;
    lv_health_init(&h);
    cr_expect_eq(feed(&h, false, fall - 1, rise, fall), 0);
    cr_expect_not(lv_health_report(&h, true, rise, fall));
    cr_expect_eq(h.fail_streak, 0);
    cr_expect_eq(feed(&h, false, fall - 1, rise, fall), 0, "the count starts again");
    cr_expect(h.healthy);
    cr_expect(lv_health_report(&h, false, rise, fall));
    cr_expect_not(h.healthy);
}

Test(health, rise_consecutive_passes_make_it_healthy_again)
{
    const uint32_t rise = 4, fall = 2;
    struct lv_health h;
    lv_health_init(&h);
    cr_expect_eq(feed(&h, false, fall, rise, fall), 1);
    cr_expect_not(h.healthy);
    for (uint32_t i = 1; i < rise; i++) {
        cr_expect_not(lv_health_report(&h, true, rise, fall), "pass %u of %u", i, rise);
        cr_expect_not(h.healthy);
    }
    cr_expect(lv_health_report(&h, true, rise, fall), "the rise-th pass is the change");
    cr_expect(h.healthy);
    cr_expect_eq(feed(&h, true, 50, rise, fall), 0);
    cr_expect(h.healthy);
}

Test(health, a_failure_resets_the_pass_streak_while_unhealthy)
{
    const uint32_t rise = 3, fall = 1;
    struct lv_health h;
    lv_health_init(&h);
    cr_expect(lv_health_report(&h, false, rise, fall));
    cr_expect_eq(feed(&h, true, rise - 1, rise, fall), 0);
    cr_expect_eq(feed(&h, false, 1, rise, fall), 0, "already unhealthy: no change");
    cr_expect_eq(h.ok_streak, 0);
    cr_expect_eq(feed(&h, true, rise - 1, rise, fall), 0, "the count starts again");
    cr_expect_not(h.healthy);
    cr_expect(lv_health_report(&h, true, rise, fall));
    cr_expect(h.healthy);
}

Test(health, passes_before_the_fall_do_not_speed_up_the_rise)
{
    /* A pass streak built while healthy is reset by the failures that
     * follow: recovery needs `rise` fresh passes. */
    const uint32_t rise = 3, fall = 2;
    struct lv_health h;
    lv_health_init(&h);
    feed(&h, true, 10, rise, fall);
    cr_expect_eq(feed(&h, false, fall, rise, fall), 1);
    cr_expect_eq(feed(&h, true, rise - 1, rise, fall), 0);
    cr_expect_not(h.healthy);
    cr_expect_eq(feed(&h, true, 1, rise, fall), 1);
}

Test(health, rise_one_fall_one_flips_on_every_change_of_result)
{
    struct lv_health h;
    lv_health_init(&h);
    cr_expect_not(lv_health_report(&h, true, 1, 1));
    cr_expect(lv_health_report(&h, false, 1, 1));
    cr_expect_not(h.healthy);
    cr_expect_not(lv_health_report(&h, false, 1, 1));
    cr_expect(lv_health_report(&h, true, 1, 1));
    cr_expect(h.healthy);
    cr_expect_not(lv_health_report(&h, true, 1, 1));
    for (int i = 0; i < 10; i++) {
        cr_expect(lv_health_report(&h, false, 1, 1));
        cr_expect(lv_health_report(&h, true, 1, 1));
    }
    cr_expect(h.healthy);
}

Test(health, alternating_results_never_reach_larger_thresholds)
{
    struct lv_health h;
    lv_health_init(&h);
    for (int i = 0; i < 100; i++) {
        cr_expect_not(lv_health_report(&h, false, 2, 2));
        cr_expect_not(lv_health_report(&h, true, 2, 2));
    }
    cr_expect(h.healthy);
    /* and the same from unhealthy */
    cr_expect_eq(feed(&h, false, 2, 2, 2), 1);
    for (int i = 0; i < 100; i++) {
        cr_expect_not(lv_health_report(&h, true, 2, 2));
        cr_expect_not(lv_health_report(&h, false, 2, 2));
    }
    cr_expect_not(h.healthy);
}

Test(health, full_cycles_report_exactly_two_changes_each)
{
    const uint32_t rise = 2, fall = 3;
    struct lv_health h;
    lv_health_init(&h);
    unsigned changes = 0;
    for (int cycle = 0; cycle < 5; cycle++) {
        changes += feed(&h, false, fall + 2, rise, fall);
        cr_expect_not(h.healthy);
        changes += feed(&h, true, rise + 2, rise, fall);
        cr_expect(h.healthy);
    }
    cr_expect_eq(changes, 10);
}

Test(health, thresholds_may_change_between_reports)
{
    /* rise/fall are arguments (config reload): the streaks are kept. */
    struct lv_health h;
    lv_health_init(&h);
    cr_expect_eq(feed(&h, false, 2, 1, 5), 0);
    cr_expect(lv_health_report(&h, false, 1, 3), "3rd failure with fall lowered to 3");
    cr_expect_not(h.healthy);
}

Test(health, rising_from_the_first_pass_of_an_unhealthy_backend_until_rise)
{
    struct lv_health h;
    lv_health_init(&h);
    cr_expect_not(lv_health_rising(&h), "healthy");
    feed(&h, false, 3, 3, 2);
    cr_expect_not(lv_health_rising(&h), "unhealthy, failing");
    feed(&h, true, 1, 3, 2);
    cr_expect(lv_health_rising(&h), "one pass of three");
    feed(&h, true, 1, 3, 2);
    cr_expect(lv_health_rising(&h), "two passes of three");
    feed(&h, false, 1, 3, 2);
    cr_expect_not(lv_health_rising(&h), "a failure ends it");
    feed(&h, true, 3, 3, 2);
    cr_expect(h.healthy);
    cr_expect_not(lv_health_rising(&h), "healthy again");
}
