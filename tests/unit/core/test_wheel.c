/* The timer wheel (core/wheel.c) on a fake clock, and against a model: a
 * plain list of deadlines, for random starts, restarts, stops and jumps of
 * the clock. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/wheel.h"

static struct lv_wheel wheel;

/* Fires everything due at `now`; returns how many fired. */
static unsigned expire(uint64_t now)
{
    unsigned n = 0;
    for (struct lv_wheel_timer *t; (t = lv_wheel_expire(&wheel, now));) {
        cr_assert_leq(t->deadline, now, "fired before its deadline");
        cr_assert(!lv_wheel_timer_pending(t));
        n++;
    }
    return n;
}

Test(wheel, fires_at_its_deadline_never_before_and_within_a_tick)
{
    lv_wheel_init(&wheel, 1000);
    struct lv_wheel_timer t;
    memset(&t, 0, sizeof(t));
    cr_expect(!lv_wheel_timer_pending(&t), "zeroed: stopped");
    lv_wheel_start(&wheel, &t, 1250);
    cr_expect(lv_wheel_timer_pending(&t));
    uint64_t next = lv_wheel_next(&wheel);
    cr_expect_geq(next, 1250);
    cr_expect_lt(next, 1250 + LV_WHEEL_TICK + 1);
    cr_expect_eq(expire(1249), 0);
    cr_expect_eq(expire(1250), 1);
    cr_expect_eq(lv_wheel_next(&wheel), UINT64_MAX, "empty");
}

Test(wheel, restart_moves_and_stop_removes)
{
    lv_wheel_init(&wheel, 0);
    struct lv_wheel_timer a = {0}, b = {0};
    lv_wheel_start(&wheel, &a, 100);
    lv_wheel_start(&wheel, &b, 100);
    lv_wheel_start(&wheel, &a, 60000); /* restarted: far, more than a turn away */
    lv_wheel_stop(&wheel, &b);
    lv_wheel_stop(&wheel, &b); /* a no-op */
    cr_expect_eq(expire(59999), 0, "nothing due: a moved, b stopped");
    cr_expect_eq(expire(60000), 1);
}

Test(wheel, a_past_deadline_fires_at_the_next_expiry)
{
    lv_wheel_init(&wheel, 5000);
    struct lv_wheel_timer t = {0};
    lv_wheel_start(&wheel, &t, 10);
    cr_expect_leq(lv_wheel_next(&wheel), 5000 + LV_WHEEL_TICK);
    cr_expect_eq(expire(5000), 1);
}

Test(wheel, a_long_sleep_of_the_loop_still_fires_everything_due)
{
    lv_wheel_init(&wheel, 0);
    struct lv_wheel_timer t[3];
    memset(t, 0, sizeof(t));
    lv_wheel_start(&wheel, &t[0], 5);
    lv_wheel_start(&wheel, &t[1], 3 * LV_WHEEL_TICK * LV_WHEEL_SLOTS);
    lv_wheel_start(&wheel, &t[2], 10 * LV_WHEEL_TICK * LV_WHEEL_SLOTS);
    cr_expect_eq(expire(5 * LV_WHEEL_TICK * LV_WHEEL_SLOTS), 2);
    cr_expect(lv_wheel_timer_pending(&t[2]));
    cr_expect_eq(expire(10 * LV_WHEEL_TICK * LV_WHEEL_SLOTS), 1);
}

/* The model: each timer's deadline, or none. */
#define NT 200
static struct lv_wheel_timer timers[NT];
static uint64_t model[NT]; /* 0: stopped (deadlines start at 1) */

Test(wheel, random_operations_match_a_model)
{
    srand(12345);
    uint64_t now = 1000;
    lv_wheel_init(&wheel, now);
    memset(timers, 0, sizeof(timers));
    memset(model, 0, sizeof(model));
    for (unsigned step = 0; step < 200000; step++) {
        unsigned i = (unsigned)rand() % NT;
        switch (rand() % 8) {
        case 0:
        case 1:
        case 2: { /* start or restart, near or far */
            uint64_t d = rand() % 4 == 0 ? (uint64_t)(rand() % 100000) : (uint64_t)(rand() % 300);
            lv_wheel_start(&wheel, &timers[i], now + d);
            model[i] = now + d;
            break;
        }
        case 3:
            lv_wheel_stop(&wheel, &timers[i]);
            model[i] = 0;
            break;
        default: { /* time passes: to the wheel's next wake-up, or less */
            uint64_t next = lv_wheel_next(&wheel);
            uint64_t soonest = UINT64_MAX;
            for (unsigned k = 0; k < NT; k++)
                if (model[k] && model[k] < soonest) soonest = model[k];
            if (soonest == UINT64_MAX) {
                cr_assert_eq(next, UINT64_MAX);
                now += (uint64_t)(rand() % 50);
                break;
            }
            /* A wake-up may come early (a slot holds a deadline a turn
             * or more away); never in the past (see below), never late. */
            /* No later than a tick after the earliest deadline (or now). */
            uint64_t due = soonest > now ? soonest : now;
            cr_assert_leq(next, due + LV_WHEEL_TICK, "a wake-up more than a tick late");
            now = rand() % 3 ? next : now + (uint64_t)(rand() % 40);
            for (struct lv_wheel_timer *t; (t = lv_wheel_expire(&wheel, now));) {
                unsigned k = (unsigned)(t - timers);
                cr_assert_lt(k, NT);
                cr_assert_neq(model[k], 0, "a stopped timer fired");
                cr_assert_eq(t->deadline, model[k]);
                cr_assert_leq(model[k], now, "fired early");
                model[k] = 0;
            }
            for (unsigned k = 0; k < NT; k++) {
                cr_assert(model[k] == 0 || model[k] > now,
                          "timer %u due at %llu still waits at %llu", k,
                          (unsigned long long)model[k], (unsigned long long)now);
                cr_assert_eq(lv_wheel_timer_pending(&timers[k]), model[k] != 0);
            }
            cr_assert_gt(lv_wheel_next(&wheel), now, "nothing due: the next wake-up is ahead");
            break;
        }
        }
    }
}
