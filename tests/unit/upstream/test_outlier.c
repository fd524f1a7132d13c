/*
 * Outlier ejection (upstream/outlier.c): the two rules against the peers'
 * median with their floors, who is judged and who is a peer, the cap, the
 * order under the cap; and, with the breaker, the growing open time of a
 * backend ejected again and again on a fake clock.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "unit/lv_test.h"
#include "upstream/breaker.h"
#include "upstream/outlier.h"

#define MS 1000 /* µs */

static struct lv_outlier_cfg cfg(void)
{
    return (struct lv_outlier_cfg){
        .enabled = true,
        .interval = 1000,
        .factor = 3,
        .latency_floor = 50 * MS,
        .timeout_floor = 0.05,
        .minimum_requests = 10,
        .latency_quantile = 0.5,
        .max_ejection_percent = 50,
    };
}

/* A backend in rotation: `answered` answers at `lat_ms`, `timeouts` timeouts. */
static struct lv_outlier_stat b(uint64_t answered, uint64_t timeouts, uint64_t lat_ms)
{
    return (struct lv_outlier_stat){
        .in = true, .answered = answered, .timeouts = timeouts, .latency = lat_ms * MS};
}

static struct lv_outlier_stat out(void)
{
    return (struct lv_outlier_stat){.in = false};
}

/* Sweeps and returns why[i] of every backend, as a string of letters:
 * '.' kept, 'T' timeouts, 'S' slow. */
static const char *sweep(const struct lv_outlier_cfg *c, const struct lv_outlier_stat *st, size_t n)
{
    static char buf[64];
    enum lv_outlier_why why[64];
    cr_assert_leq(n, 63);
    size_t k = lv_outlier_sweep(c, st, n, why);
    size_t marked = 0;
    for (size_t i = 0; i < n; i++) {
        buf[i] = why[i] == LV_OUTLIER_TIMEOUTS ? 'T' : why[i] == LV_OUTLIER_SLOW ? 'S' : '.';
        marked += why[i] != LV_OUTLIER_NONE;
    }
    buf[n] = '\0';
    cr_assert_eq(k, marked, "the count returned is the count marked (%s)", buf);
    return buf;
}

#define EXPECT_SWEEP(c, want, ...)                                                                 \
    do {                                                                                           \
        const struct lv_outlier_stat st_[] = {__VA_ARGS__};                                        \
        cr_expect_str_eq(sweep((c), st_, sizeof(st_) / sizeof(st_[0])), want);                     \
    } while (0)

/* --- timeouts ---------------------------------------------------------------------------- */

Test(outlier, a_backend_timing_out_a_fifth_of_its_tries_is_ejected)
{
    struct lv_outlier_cfg c = cfg();
    /* the chaos bench's "hangs": b2 hangs 20%, its peers never */
    EXPECT_SWEEP(&c, ".T.", b(33, 0, 1), b(27, 7, 1), b(33, 0, 1));
}

Test(outlier, the_timeout_floor_spares_a_few_timeouts_among_peers_without_any)
{
    struct lv_outlier_cfg c = cfg();
    EXPECT_SWEEP(&c, "...", b(100, 0, 1), b(96, 4, 1), b(100, 0, 1)); /* 4% < 5% */
    EXPECT_SWEEP(&c, ".T.", b(100, 0, 1), b(95, 5, 1), b(100, 0, 1)); /* 5% */
}

Test(outlier, the_factor_spares_a_backend_near_its_peers)
{
    struct lv_outlier_cfg c = cfg();
    /* peers at 10%: 25% is 2.5 x, not 3 x */
    EXPECT_SWEEP(&c, "...", b(90, 10, 1), b(75, 25, 1), b(90, 10, 1));
    /* 31% is over 3 x and 21 points above */
    EXPECT_SWEEP(&c, ".T.", b(90, 10, 1), b(69, 31, 1), b(90, 10, 1));
}

Test(outlier, everyone_timing_out_alike_is_no_outlier)
{
    struct lv_outlier_cfg c = cfg();
    EXPECT_SWEEP(&c, "...", b(50, 50, 1), b(50, 50, 1), b(50, 50, 1));
    EXPECT_SWEEP(&c, "...", b(0, 20, 0), b(0, 20, 0), b(0, 20, 0));
}

/* --- latency ------------------------------------------------------------------------------ */

Test(outlier, a_slow_backend_is_ejected)
{
    struct lv_outlier_cfg c = cfg();
    EXPECT_SWEEP(&c, "..S", b(50, 0, 2), b(50, 0, 3), b(50, 0, 300));
}

Test(outlier, the_latency_floor_spares_fast_backends_slower_than_their_peers)
{
    struct lv_outlier_cfg c = cfg();
    /* 10 x slower, but 45 ms: within the floor */
    EXPECT_SWEEP(&c, "...", b(50, 0, 5), b(50, 0, 50), b(50, 0, 5));
    EXPECT_SWEEP(&c, ".S.", b(50, 0, 5), b(50, 0, 55), b(50, 0, 5));
}

Test(outlier, the_latency_factor_spares_a_backend_near_its_peers)
{
    struct lv_outlier_cfg c = cfg();
    EXPECT_SWEEP(&c, "...", b(50, 0, 100), b(50, 0, 299), b(50, 0, 100));
    EXPECT_SWEEP(&c, ".S.", b(50, 0, 100), b(50, 0, 300), b(50, 0, 100));
}

Test(outlier, an_unknown_latency_is_not_judged_nor_a_peer)
{
    struct lv_outlier_cfg c = cfg();
    /* b1's latency is unknown: b3 has one latency peer, b2 (fast) */
    EXPECT_SWEEP(&c, "..S", b(50, 0, 0), b(50, 0, 2), b(50, 0, 300));
    /* only one backend with a latency: nobody to compare with */
    EXPECT_SWEEP(&c, "...", b(50, 0, 0), b(50, 0, 0), b(50, 0, 300));
}

Test(outlier, the_median_of_the_peers_resists_one_other_outlier)
{
    struct lv_outlier_cfg c = cfg();
    c.max_ejection_percent = 100;
    /* 5 backends, two slow ones: each one's peers' median is a fast one's */
    EXPECT_SWEEP(&c, ".S.S.", b(50, 0, 2), b(50, 0, 400), b(50, 0, 2), b(50, 0, 500), b(50, 0, 3));
}

/* --- who is judged ------------------------------------------------------------------------ */

Test(outlier, too_few_tries_are_not_judged_nor_peers)
{
    struct lv_outlier_cfg c = cfg();
    EXPECT_SWEEP(&c, "...", b(9, 0, 1), b(5, 4, 900), b(9, 0, 1)); /* each under 10 */
    EXPECT_SWEEP(&c, ".T.", b(10, 0, 1), b(6, 4, 900), b(10, 0, 1));
    /* b1 under the minimum: b2's only peer is b3, enough */
    EXPECT_SWEEP(&c, ".T.", b(3, 0, 1), b(6, 4, 900), b(10, 0, 1));
    /* minimum 0 still needs one try */
    c.minimum_requests = 0;
    EXPECT_SWEEP(&c, "...", b(0, 0, 0), b(0, 0, 0), b(0, 0, 0));
}

Test(outlier, backends_out_of_rotation_are_neither_judged_nor_peers)
{
    struct lv_outlier_cfg c = cfg();
    c.max_ejection_percent = 100;
    struct lv_outlier_stat gone = b(0, 50, 900);
    gone.in = false;
    /* b1 (out) would be the worst, and as a peer would lift the median */
    EXPECT_SWEEP(&c, "..T.", gone, b(100, 0, 1), b(70, 30, 1), b(100, 0, 1));
}

Test(outlier, disabled_or_alone_ejects_nothing)
{
    struct lv_outlier_cfg c = cfg();
    c.enabled = false;
    EXPECT_SWEEP(&c, "...", b(100, 0, 1), b(0, 100, 900), b(100, 0, 1));
    c.enabled = true;
    EXPECT_SWEEP(&c, ".", b(0, 100, 900));
    enum lv_outlier_why why[1] = {LV_OUTLIER_SLOW};
    cr_expect_eq(lv_outlier_sweep(&c, NULL, 0, why), 0);
    cr_expect_eq(why[0], LV_OUTLIER_SLOW, "n 0 touches nothing");
}

Test(outlier, two_backends_the_far_one_goes)
{
    struct lv_outlier_cfg c = cfg();
    EXPECT_SWEEP(&c, "T.", b(70, 30, 1), b(100, 0, 1));
    EXPECT_SWEEP(&c, ".S", b(50, 0, 1), b(50, 0, 100));
}

/* --- the cap -------------------------------------------------------------------------------- */

Test(outlier, at_least_one_may_go_whatever_the_percent)
{
    struct lv_outlier_cfg c = cfg();
    c.max_ejection_percent = 10; /* Envoy's default: 0.3 of 3 */
    EXPECT_SWEEP(&c, ".T.", b(33, 0, 1), b(27, 7, 1), b(33, 0, 1));
    c.max_ejection_percent = 0;
    EXPECT_SWEEP(&c, ".T.", b(33, 0, 1), b(27, 7, 1), b(33, 0, 1));
}

Test(outlier, never_all_of_them)
{
    struct lv_outlier_cfg c = cfg();
    c.max_ejection_percent = 100;
    /* 2 backends: one may go, not both (neither is far from the other here
     * anyway: each is the other's peer) */
    EXPECT_SWEEP(&c, "T.", b(0, 50, 1), b(100, 0, 1));
}

Test(outlier, backends_already_out_count_against_the_cap)
{
    struct lv_outlier_cfg c = cfg(); /* 50% of 4: 2 */
    EXPECT_SWEEP(&c, "TT..", b(0, 40, 1), b(10, 30, 1), b(100, 0, 1), b(100, 0, 1));
    EXPECT_SWEEP(&c, ".T..", out(), b(10, 30, 1), b(100, 0, 1), b(100, 0, 1));
    EXPECT_SWEEP(&c, ".T..", b(100, 0, 1), b(10, 30, 1), out(), b(100, 0, 1));
    EXPECT_SWEEP(&c, "....", out(), b(10, 30, 1), out(), b(100, 0, 1));
}

Test(outlier, the_cap)
{
    struct lv_outlier_cfg c = cfg();
    c.max_ejection_percent = 50;
    cr_expect_eq(lv_outlier_cap(&c, 0), 0);
    cr_expect_eq(lv_outlier_cap(&c, 1), 0);
    cr_expect_eq(lv_outlier_cap(&c, 2), 1);
    cr_expect_eq(lv_outlier_cap(&c, 5), 2);
    cr_expect_eq(lv_outlier_cap(&c, 8), 4);
    c.max_ejection_percent = 0;
    cr_expect_eq(lv_outlier_cap(&c, 8), 1);
    c.max_ejection_percent = 100;
    cr_expect_eq(lv_outlier_cap(&c, 8), 7);
}

/* Two workers sweep the same shared state, each from its own counts: each
 * sweep alone keeps the cap, together they would not. This is why the
 * caller ejects under a lock after a fresh count against lv_outlier_cap
 * (proxy/attempt.c outlier_sweep). */
Test(outlier, two_sweeps_from_the_same_state_can_each_fill_the_cap)
{
    struct lv_outlier_cfg c = cfg(); /* 50% of 4: 2 */
    EXPECT_SWEEP(&c, "TT..", b(0, 40, 1), b(10, 30, 1), b(100, 0, 1), b(100, 0, 1));
    EXPECT_SWEEP(&c, "..TT", b(100, 0, 1), b(100, 0, 1), b(0, 40, 1), b(10, 30, 1));
}

Test(outlier, under_the_cap_timeouts_go_first_then_the_worst)
{
    struct lv_outlier_cfg c = cfg();
    c.max_ejection_percent = 25; /* 2 of 8 */
    /* two slow ones, three timing out at 20%, 40%, 30%: the 40% and the 30% */
    EXPECT_SWEEP(&c, "..T.T...", b(100, 0, 900), b(80, 20, 1), b(60, 40, 1), b(100, 0, 2),
                 b(70, 30, 1), b(100, 0, 800), b(100, 0, 2), b(100, 0, 2));
    c.max_ejection_percent = 50; /* 4 of 8: the three timing out, then the slowest */
    EXPECT_SWEEP(&c, "STT.T...", b(100, 0, 900), b(80, 20, 1), b(60, 40, 1), b(100, 0, 2),
                 b(70, 30, 1), b(100, 0, 800), b(100, 0, 2), b(100, 0, 2));
}

Test(outlier, a_backend_both_slow_and_timing_out_counts_as_timing_out)
{
    struct lv_outlier_cfg c = cfg();
    EXPECT_SWEEP(&c, ".T.", b(100, 0, 2), b(50, 50, 900), b(100, 0, 2));
}

Test(outlier, names)
{
    cr_expect_str_eq(lv_outlier_why_name(LV_OUTLIER_NONE), "-");
    cr_expect_str_eq(lv_outlier_why_name(LV_OUTLIER_TIMEOUTS), "timeouts");
    cr_expect_str_eq(lv_outlier_why_name(LV_OUTLIER_SLOW), "slow");
}

/* --- with the breaker: the growing open time ---------------------------------------------- */

Test(outlier, ejected_again_and_again_it_stays_out_longer)
{
    struct lv_breaker_cfg bc = {
        .enabled = true,
        .failure_threshold = 5,
        .success_threshold = 2,
        .timeout = 5000,
        .max_timeout = 60000,
        .window = 10000,
        .half_open_requests = 1,
    };
    struct lv_outlier_cfg c = cfg();
    struct lv_breaker br[3];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(lv_breaker_init(&br[i], 1), 0);
    uint64_t now = 0, periods[4];
    for (int round = 0; round < 4; round++) {
        /* a sweep sees b2 hang on a fifth of its tries */
        struct lv_outlier_stat st[3] = {b(33, 0, 1), b(27, 7, 1), b(33, 0, 1)};
        for (int i = 0; i < 3; i++)
            st[i].in = lv_breaker_state(&br[i]) == LV_BREAKER_CLOSED;
        enum lv_outlier_why why[3];
        cr_assert_eq(lv_outlier_sweep(&c, st, 3, why), 1);
        cr_assert_eq(why[1], LV_OUTLIER_TIMEOUTS);
        cr_assert(lv_breaker_eject(&br[1], &bc, now, 0.5));
        periods[round] = lv_breaker_open_until(&br[1]) - now;
        /* while it is out, the sweeps leave the others alone: 1 of 3 out */
        st[1].in = false;
        cr_assert_eq(lv_outlier_sweep(&c, st, 3, why), 0);
        /* it comes back through two probes, and hangs again soon */
        now = lv_breaker_open_until(&br[1]);
        for (int p = 0; p < 2; p++) {
            struct lv_breaker_ticket t;
            cr_assert(lv_breaker_allow(&br[1], &bc, now, &t));
            lv_breaker_report(&br[1], &bc, 0, now, true, 0.5, &t);
        }
        cr_assert_eq(lv_breaker_state(&br[1]), LV_BREAKER_CLOSED);
        now += c.interval;
    }
    cr_expect_eq(periods[0], 5000);
    cr_expect_eq(periods[1], 10000);
    cr_expect_eq(periods[2], 20000);
    cr_expect_eq(periods[3], 40000);
    for (int i = 0; i < 3; i++)
        lv_breaker_dispose(&br[i]);
    LV_EXPECT_NO_LEAKS();
}

/* --- one worker's sweeps (lv_outlier_run), on a fake clock ---------------------- */

Test(outlier_run, the_first_call_starts_the_clock_then_one_sweep_per_interval)
{
    struct lv_outlier_cfg c = cfg();
    struct lv_outlier_run r;
    cr_assert_eq(lv_outlier_run_init(&r, 3), 0);
    cr_expect_not(lv_outlier_due(&r, &c, 5000), "the first call starts the clock");
    cr_expect_not(lv_outlier_due(&r, &c, 5999));
    cr_expect(lv_outlier_due(&r, &c, 6000));
    cr_expect_not(lv_outlier_due(&r, &c, 6500));
    cr_expect(lv_outlier_due(&r, &c, 9000), "after a quiet spell: at once");
    cr_expect_not(lv_outlier_due(&r, &c, 9999), "and the next a whole interval later");
    cr_expect(lv_outlier_due(&r, &c, 10000));
    c.enabled = false;
    cr_expect_not(lv_outlier_due(&r, &c, 20000), "disabled: never");
    lv_outlier_run_dispose(&r);
}

Test(outlier_run, counts_are_judged_once_then_start_from_zero)
{
    struct lv_outlier_cfg c = cfg();
    struct lv_outlier_run r;
    cr_assert_eq(lv_outlier_run_init(&r, 3), 0);
    for (int k = 0; k < 40; k++) {
        lv_outlier_count(&r, 0, false);
        lv_outlier_count(&r, 2, false);
        lv_outlier_count(&r, 1, k % 5 == 0); /* b1 times out (or loses the race) 1 in 5 */
    }
    lv_outlier_count(&r, 7, true); /* out of range: ignored */
    for (size_t i = 0; i < 3; i++) {
        r.st[i].in = true;
        r.st[i].latency = 1 * MS;
    }
    cr_expect_eq(r.st[1].timeouts, 8);
    cr_expect_eq(r.st[1].answered, 32);
    cr_expect_eq(lv_outlier_run_sweep(&r, &c), 1);
    cr_expect_eq(r.why[1], LV_OUTLIER_TIMEOUTS);
    cr_expect_eq(r.why[0], LV_OUTLIER_NONE);
    cr_expect_eq(r.last[1].timeouts, 8, "what was judged is kept for the log");
    cr_expect_eq(r.st[1].timeouts + r.st[1].answered + r.st[0].answered, 0, "the next from zero");
    for (size_t i = 0; i < 3; i++)
        r.st[i].in = true;
    cr_expect_eq(lv_outlier_run_sweep(&r, &c), 0, "an empty interval judges nobody");
    lv_outlier_run_dispose(&r);
}
