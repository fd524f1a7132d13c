/*
 * Which backends can serve (upstream/eligible.c): the verdict of one
 * backend for every combination of operator state, health, rising, breaker
 * state and breaker configuration; the last resort; untried first; slow
 * start's ramp and thinning; Retry-After. Real backends and breakers, a
 * fake clock: `now` is a number the test picks.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/rand.h"
#include "upstream/backend.h"
#include "upstream/breaker.h"
#include "upstream/eligible.h"

/* failure_threshold 1: one failure opens it; open for exactly `timeout`
 * with jitter 0.5; two probe slots. */
static const struct lv_breaker_cfg BC = {
    .enabled = true,
    .failure_threshold = 1,
    .success_threshold = 2,
    .timeout = 1000,
    .max_timeout = 60000,
    .half_open_requests = 2,
};
static const struct lv_breaker_cfg BC_OFF = {
    .enabled = false,
    .failure_threshold = 1,
    .success_threshold = 2,
    .timeout = 1000,
    .max_timeout = 60000,
    .half_open_requests = 2,
};

#define T0 10000ull     /* the breaker opens at T0 ... */
#define DUE (T0 + 1000) /* ... until DUE */

/* The breaker states a backend can be found in, and the `now` to ask at. */
enum bstate { B_CLOSED, B_OPEN_NOT_DUE, B_OPEN_DUE, B_HALF_FREE, B_HALF_FULL, B_COUNT };
static const char *const bstate_names[B_COUNT] = {"closed", "open, not due", "open, due",
                                                  "half-open, a slot free",
                                                  "half-open, every slot taken"};

static void open_at(struct lv_backend *b, uint64_t now)
{
    struct lv_breaker_ticket t;
    cr_assert(lv_breaker_allow(&b->breaker, &BC, now, &t));
    lv_breaker_report(&b->breaker, &BC, 0, now, false, 0.5, &t);
    cr_assert_eq(lv_breaker_state(&b->breaker), LV_BREAKER_OPEN);
    cr_assert_eq(lv_breaker_open_until(&b->breaker), now + BC.timeout);
}

/* Drives b's breaker into state s; returns the time to ask at. */
static uint64_t put_breaker(struct lv_backend *b, enum bstate s)
{
    struct lv_breaker_ticket t;
    switch (s) {
    case B_CLOSED: return DUE;
    case B_OPEN_NOT_DUE: open_at(b, T0); return DUE - 1;
    case B_OPEN_DUE: open_at(b, T0); return DUE;
    case B_HALF_FREE:
        open_at(b, T0);
        cr_assert(lv_breaker_allow(&b->breaker, &BC, DUE, &t) && t.probe);
        cr_assert_eq(lv_breaker_state(&b->breaker), LV_BREAKER_HALF_OPEN);
        return DUE;
    case B_HALF_FULL:
        open_at(b, T0);
        for (unsigned i = 0; i < BC.half_open_requests; i++)
            cr_assert(lv_breaker_allow(&b->breaker, &BC, DUE, &t) && t.probe);
        cr_assert_not(lv_breaker_allow(&b->breaker, &BC, DUE, &t));
        return DUE;
    case B_COUNT: break;
    }
    cr_assert_fail("bad breaker state");
    return 0;
}

static void checks_say(struct lv_backend *b, bool healthy, bool rising)
{
    atomic_store(&b->healthy, healthy);
    atomic_store(&b->rising, rising);
}

static void set_admin(struct lv_backend *b, enum lv_admin_state a)
{
    atomic_store(&b->admin_state, (int)a);
}

/* The verdict table of eligible.h, written out again: the first line that
 * applies. */
static enum lv_verdict expected(enum lv_admin_state admin, bool healthy, bool rising, enum bstate s,
                                bool breaker_on)
{
    if (admin == LV_ADMIN_DISABLED) return LV_VERDICT_DISABLED;
    if (admin == LV_ADMIN_DRAINING) return LV_VERDICT_DRAINING;
    if (breaker_on && s == B_OPEN_NOT_DUE) return LV_VERDICT_OPEN;
    if (breaker_on && s == B_HALF_FULL) return LV_VERDICT_PROBES_OUT;
    if (!healthy) return rising ? LV_VERDICT_RISING : LV_VERDICT_UNHEALTHY;
    if (breaker_on && (s == B_OPEN_DUE || s == B_HALF_FREE)) return LV_VERDICT_PROBING;
    return LV_VERDICT_SERVING;
}

Test(eligible, every_verdict_for_every_combination)
{
    static const enum lv_admin_state admins[] = {LV_ADMIN_ENABLED, LV_ADMIN_DRAINING,
                                                 LV_ADMIN_DISABLED};
    unsigned seen[LV_VERDICT_COUNT] = {0}, cases = 0;
    for (unsigned a = 0; a < 3; a++)
        for (int healthy = 0; healthy < 2; healthy++)
            for (int rising = 0; rising < 2; rising++)
                for (unsigned s = 0; s < B_COUNT; s++)
                    for (int on = 0; on < 2; on++) {
                        struct lv_backend *b = lv_backend_create("b", 1);
                        cr_assert_not_null(b);
                        uint64_t now = put_breaker(b, (enum bstate)s);
                        set_admin(b, admins[a]);
                        checks_say(b, healthy, rising);
                        enum lv_verdict want =
                            expected(admins[a], healthy, rising, (enum bstate)s, on);
                        enum lv_verdict got = lv_eligible_verdict(b, on ? &BC : &BC_OFF, now);
                        cr_expect_eq(got, want, "%s, %s, %s, breaker %s (%s): %s, expected %s",
                                     lv_admin_state_name(admins[a]),
                                     healthy ? "healthy" : "unhealthy",
                                     rising ? "rising" : "not rising", bstate_names[s],
                                     on ? "enabled" : "disabled", lv_verdict_name(got),
                                     lv_verdict_name(want));
                        seen[got]++;
                        cases++;
                        lv_backend_unref(b);
                    }
    cr_expect_eq(cases, 3 * 2 * 2 * B_COUNT * 2);
    for (unsigned v = 0; v < LV_VERDICT_COUNT; v++)
        cr_expect_gt(seen[v], 0, "verdict %s never came up", lv_verdict_name((enum lv_verdict)v));
}

Test(eligible, state_and_usable_come_from_the_verdict_and_never_disagree)
{
    static const struct {
        enum lv_verdict v;
        const char *state;
        bool usable;
    } table[] = {
        {LV_VERDICT_SERVING, "ok", true},
        {LV_VERDICT_PROBING, "half_open", true},
        {LV_VERDICT_RISING, "unhealthy", false},
        {LV_VERDICT_UNHEALTHY, "unhealthy", false},
        {LV_VERDICT_PROBES_OUT, "half_open", false},
        {LV_VERDICT_OPEN, "open", false},
        {LV_VERDICT_DRAINING, "draining", false},
        {LV_VERDICT_DISABLED, "disabled", false},
    };
    cr_assert_eq(sizeof(table) / sizeof(table[0]), LV_VERDICT_COUNT);
    for (unsigned i = 0; i < LV_VERDICT_COUNT; i++) {
        cr_expect_str_eq(lv_verdict_state(table[i].v), table[i].state);
        cr_expect_eq(lv_verdict_usable(table[i].v), table[i].usable, "%s",
                     lv_verdict_name(table[i].v));
        /* "open" is a refusal: never usable; usable is never "unhealthy" */
        if (strcmp(table[i].state, "open") == 0 || strcmp(table[i].state, "unhealthy") == 0)
            cr_expect_not(lv_verdict_usable(table[i].v));
    }
    cr_expect_str_eq(lv_verdict_state(LV_VERDICT_COUNT), "unknown");
    cr_expect_str_eq(lv_verdict_name(LV_VERDICT_COUNT), "unknown");
}

Test(eligible, an_open_breaker_past_its_period_is_probing_not_open)
{
    /* The disagreement this module ends: /backends/health said "open" with
     * "usable": true for an open breaker whose open period was over. */
    struct lv_backend *b = lv_backend_create("b", 1);
    cr_assert_not_null(b);
    open_at(b, T0);
    cr_expect_eq(lv_eligible_verdict(b, &BC, DUE - 1), LV_VERDICT_OPEN);
    enum lv_verdict v = lv_eligible_verdict(b, &BC, DUE);
    cr_expect_eq(v, LV_VERDICT_PROBING);
    cr_expect_str_eq(lv_verdict_state(v), "half_open");
    cr_expect(lv_verdict_usable(v));
    cr_expect_eq(lv_breaker_state(&b->breaker), LV_BREAKER_OPEN, "a verdict admits nothing");
    /* the probe goes, comes back well: probing until success_threshold */
    struct lv_breaker_ticket t;
    cr_assert(lv_breaker_allow(&b->breaker, &BC, DUE, &t));
    lv_breaker_report(&b->breaker, &BC, 0, DUE + 5, true, 0.5, &t);
    cr_expect_eq(lv_eligible_verdict(b, &BC, DUE + 5), LV_VERDICT_PROBING);
    cr_assert(lv_breaker_allow(&b->breaker, &BC, DUE + 6, &t));
    lv_breaker_report(&b->breaker, &BC, 0, DUE + 7, true, 0.5, &t);
    cr_expect_eq(lv_breaker_state(&b->breaker), LV_BREAKER_CLOSED);
    cr_expect_eq(lv_eligible_verdict(b, &BC, DUE + 7), LV_VERDICT_SERVING);
    lv_backend_unref(b);
}

Test(eligible, a_probe_slot_given_back_makes_it_probing_again)
{
    struct lv_backend *b = lv_backend_create("b", 1);
    cr_assert_not_null(b);
    put_breaker(b, B_HALF_FREE);
    struct lv_breaker_ticket t;
    cr_assert(lv_breaker_allow(&b->breaker, &BC, DUE, &t));
    cr_expect_eq(lv_eligible_verdict(b, &BC, DUE), LV_VERDICT_PROBES_OUT);
    lv_breaker_cancel(&b->breaker, &t);
    cr_expect_eq(lv_eligible_verdict(b, &BC, DUE), LV_VERDICT_PROBING);
    lv_backend_unref(b);
}

/* --- sets of backends ------------------------------------------------------------ */

#define NB 4

struct set {
    struct lv_backend *b[NB];
    bool eligible[NB];
    uint32_t weights[NB];
    struct lv_rand rand;
    struct lv_eligible_ask ask;
    struct lv_backend *tried[NB];
};

static void set_init(struct set *s, size_t n)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < n; i++) {
        s->b[i] = lv_backend_create("b", 1);
        cr_assert_not_null(s->b[i]);
    }
    lv_rand_seed(&s->rand, 42);
    s->ask = (struct lv_eligible_ask){
        .backends = s->b,
        .n = n,
        .breaker = &BC,
        .tried = s->tried,
    };
}

static void set_dispose(struct set *s)
{
    for (size_t i = 0; i < s->ask.n; i++)
        lv_backend_unref(s->b[i]);
}

/* Marks with every configured weight 100; returns the mask as bits. */
static unsigned mark(struct set *s, uint64_t now, size_t *count)
{
    for (size_t i = 0; i < s->ask.n; i++) {
        s->weights[i] = 100;
        s->eligible[i] = !s->eligible[i]; /* garbage in: every entry must be written */
    }
    *count = lv_eligible_mark(&s->ask, now, &s->rand, s->eligible, s->weights);
    unsigned bits = 0, n = 0;
    for (size_t i = 0; i < s->ask.n; i++) {
        bits |= (unsigned)s->eligible[i] << i;
        n += s->eligible[i];
    }
    cr_expect_eq(n, *count, "the count is the number marked");
    return bits;
}

Test(eligible, usable_ones_are_eligible_and_the_rest_not)
{
    struct set s;
    set_init(&s, 4);
    size_t n;
    cr_expect_eq(mark(&s, DUE, &n), 0xf);
    set_admin(s.b[0], LV_ADMIN_DRAINING);
    checks_say(s.b[1], false, false);
    put_breaker(s.b[2], B_OPEN_NOT_DUE);
    cr_expect_eq(mark(&s, DUE - 1, &n), 0x8);
    cr_expect_eq(n, 1);
    /* b2's open period ends: it is eligible (as a probe) */
    cr_expect_eq(mark(&s, DUE, &n), 0xc);
    set_dispose(&s);
}

Test(eligible, untried_first_and_never_the_busy_one)
{
    struct set s;
    set_init(&s, 3);
    size_t n;
    s.tried[0] = s.b[0];
    s.ask.ntried = 1;
    cr_expect_eq(mark(&s, DUE, &n), 0x7, "tried ones count unless untried_only");
    s.ask.untried_only = true;
    cr_expect_eq(mark(&s, DUE, &n), 0x6);
    s.ask.busy = s.b[1];
    cr_expect_eq(mark(&s, DUE, &n), 0x4);
    s.ask.untried_only = false;
    cr_expect_eq(mark(&s, DUE, &n), 0x5, "busy is out either way");
    s.tried[1] = s.b[2];
    s.ask.ntried = 2;
    s.ask.untried_only = true;
    cr_expect_eq(mark(&s, DUE, &n), 0);
    cr_expect_eq(n, 0);
    set_dispose(&s);
}

Test(eligible, the_last_resort_only_when_nothing_is_usable)
{
    struct set s;
    set_init(&s, 2);
    size_t n;
    checks_say(s.b[0], false, true); /* rising */
    cr_expect_eq(mark(&s, DUE, &n), 0x2, "b1 usable: rise counts in full");
    struct lv_eligible_tally t = lv_eligible_tally(s.b, 2, &BC, DUE);
    cr_expect_eq(t.usable, 1);
    cr_expect_eq(t.last_resort, 0);

    /* b1 usable but out of this pick (tried, or busy): no last resort */
    s.tried[0] = s.b[1];
    s.ask.ntried = 1;
    s.ask.untried_only = true;
    cr_expect_eq(mark(&s, DUE, &n), 0, "a usable backend was tried: not the last resort's turn");
    s.ask.untried_only = false;
    s.ask.busy = s.b[1];
    cr_expect_eq(mark(&s, DUE, &n), 0, "a usable backend is busy: not the last resort's turn");
    s.ask.busy = NULL;

    /* nothing usable: the rising one serves */
    put_breaker(s.b[1], B_OPEN_NOT_DUE);
    cr_expect_eq(mark(&s, DUE - 1, &n), 0x1);
    t = lv_eligible_tally(s.b, 2, &BC, DUE - 1);
    cr_expect_eq(t.usable, 0);
    cr_expect_eq(t.last_resort, 1);
    cr_expect_not(lv_eligible_any_usable(s.b, 2, &BC, DUE - 1));

    /* the last resort keeps to the pick's exclusions */
    s.ask.busy = s.b[0];
    cr_expect_eq(mark(&s, DUE - 1, &n), 0);
    s.ask.busy = NULL;
    s.tried[0] = s.b[0];
    s.ask.untried_only = true;
    cr_expect_eq(mark(&s, DUE - 1, &n), 0);
    s.ask.untried_only = false;

    /* not rising, draining, or its own breaker refusing: no last resort */
    checks_say(s.b[0], false, false);
    cr_expect_eq(mark(&s, DUE - 1, &n), 0);
    checks_say(s.b[0], false, true);
    set_admin(s.b[0], LV_ADMIN_DRAINING);
    cr_expect_eq(mark(&s, DUE - 1, &n), 0);
    set_admin(s.b[0], LV_ADMIN_ENABLED);
    put_breaker(s.b[0], B_OPEN_NOT_DUE);
    cr_expect_eq(mark(&s, DUE - 1, &n), 0);
    t = lv_eligible_tally(s.b, 2, &BC, DUE - 1);
    cr_expect_eq(t.last_resort, 0);

    /* b1's period ends: b1 is usable (probing) again, b0 (due too, rising)
     * waits for its checks */
    cr_expect_eq(mark(&s, DUE, &n), 0x2);
    cr_expect(lv_eligible_any_usable(s.b, 2, &BC, DUE));
    set_dispose(&s);
}

Test(eligible, every_rising_backend_is_a_last_resort)
{
    struct set s;
    set_init(&s, 3);
    size_t n;
    for (int i = 0; i < 3; i++)
        checks_say(s.b[i], false, i != 1);
    cr_expect_eq(mark(&s, DUE, &n), 0x5);
    struct lv_eligible_tally t = lv_eligible_tally(s.b, 3, &BC, DUE);
    cr_expect_eq(t.usable, 0);
    cr_expect_eq(t.last_resort, 2);
    set_dispose(&s);
}

/* --- slow start ------------------------------------------------------------------- */

Test(eligible, ramp_grows_from_ten_percent_to_all)
{
    const uint64_t at = 5000, slow = 10000;
    cr_expect_float_eq(lv_eligible_ramp(at, at, slow), 0.1, 1e-9);
    cr_expect_float_eq(lv_eligible_ramp(at, at + 2500, slow), 0.325, 1e-9);
    cr_expect_float_eq(lv_eligible_ramp(at, at + 5000, slow), 0.55, 1e-9);
    cr_expect_float_eq(lv_eligible_ramp(at, at + 9999, slow), 0.1 + 0.9 * 0.9999, 1e-9);
    cr_expect_float_eq(lv_eligible_ramp(at, at + 10000, slow), 1.0, 1e-9);
    cr_expect_float_eq(lv_eligible_ramp(at, at + 99999, slow), 1.0, 1e-9);
    cr_expect_float_eq(lv_eligible_ramp(0, at, slow), 1.0, 1e-9, "never out of service");
    cr_expect_float_eq(lv_eligible_ramp(at, at, 0), 1.0, 1e-9, "no slow start");
    cr_expect_float_eq(lv_eligible_ramp(at, at - 3, slow), 0.1, 1e-9,
                       "stamped by another thread just after this one read the clock");
    double last = 0;
    for (uint64_t t = at; t <= at + slow; t += 100) {
        double r = lv_eligible_ramp(at, t, slow);
        cr_expect(r >= last && r >= 0.1 && r <= 1.0);
        last = r;
    }
}

Test(eligible, slow_start_scales_the_weight_and_thins_by_the_ramp)
{
    struct set s;
    set_init(&s, 2);
    s.ask.slow_start = 10000;
    lv_backend_recovered(s.b[0], 100000);
    const uint64_t at = 100000;
    static const struct {
        uint64_t dt;
        uint32_t weight;
        double share;
    } steps[] = {{0, 10, 0.1}, {5000, 55, 0.55}, {9000, 91, 0.91}, {10000, 100, 1.0}};
    for (unsigned k = 0; k < 4; k++) {
        unsigned kept = 0;
        const unsigned draws = 20000;
        for (unsigned i = 0; i < draws; i++) {
            size_t n;
            unsigned bits = mark(&s, at + steps[k].dt, &n);
            cr_assert(bits & 0x2, "the backend in full service is never thinned");
            cr_assert_eq(s.weights[1], 100);
            cr_assert_eq(s.weights[0], steps[k].weight, "weight %u at +%llu ms", s.weights[0],
                         (unsigned long long)steps[k].dt);
            kept += bits & 0x1;
        }
        double share = (double)kept / draws;
        cr_expect(share > steps[k].share - 0.02 && share < steps[k].share + 0.02,
                  "+%llu ms: eligible in %.3f of picks, ramp %.2f", (unsigned long long)steps[k].dt,
                  share, steps[k].share);
    }
    set_dispose(&s);
}

Test(eligible, thinning_never_leaves_none_when_some_are_eligible)
{
    struct set s;
    set_init(&s, 4);
    s.ask.slow_start = 10000;
    for (int i = 0; i < 4; i++)
        lv_backend_recovered(s.b[i], 100000); /* all at 10% */
    unsigned hits[4] = {0};
    for (unsigned i = 0; i < 20000; i++) {
        size_t n;
        unsigned bits = mark(&s, 100000, &n);
        cr_assert_geq(n, 1, "thinning took out every backend");
        for (int j = 0; j < 4; j++)
            hits[j] += (bits >> j) & 1;
    }
    for (int j = 0; j < 4; j++)
        cr_expect_gt(hits[j], 0, "b%d never eligible", j);
    set_dispose(&s);
}

Test(eligible, one_eligible_backend_is_neither_thinned_nor_scaled)
{
    struct set s;
    set_init(&s, 2);
    s.ask.slow_start = 10000;
    lv_backend_recovered(s.b[0], 100000);
    checks_say(s.b[1], false, false);
    for (unsigned i = 0; i < 1000; i++) {
        size_t n;
        cr_assert_eq(mark(&s, 100000, &n), 0x1);
        cr_assert_eq(s.weights[0], 100, "alone, its share is all the traffic anyway");
    }
    set_dispose(&s);
}

Test(eligible, the_weight_of_a_ramping_backend_is_at_least_one)
{
    struct set s;
    set_init(&s, 2);
    s.ask.slow_start = 10000;
    lv_backend_recovered(s.b[0], 100000);
    bool seen = false;
    for (unsigned i = 0; i < 200; i++) {
        s.weights[0] = s.weights[1] = 1;
        size_t n = lv_eligible_mark(&s.ask, 100000, &s.rand, s.eligible, s.weights);
        cr_assert_geq(n, 1);
        cr_assert_eq(s.weights[0], 1);
        seen |= s.eligible[0];
    }
    cr_expect(seen);
    set_dispose(&s);
}

Test(eligible, the_last_resort_ramps_too)
{
    struct set s;
    set_init(&s, 2);
    s.ask.slow_start = 10000;
    for (int i = 0; i < 2; i++)
        checks_say(s.b[i], false, true);
    lv_backend_recovered(s.b[0], 100000);
    size_t n;
    mark(&s, 100000, &n);
    cr_expect_geq(n, 1);
    cr_expect_eq(s.weights[0], 10);
    set_dispose(&s);
}

/* --- Retry-After ------------------------------------------------------------------- */

Test(eligible, retry_after_is_the_soonest_probe_or_check)
{
    struct set s;
    set_init(&s, 3);
    const uint64_t interval = 5000;
    cr_expect_eq(lv_eligible_retry_after(s.b, 3, interval, DUE), 1, "nothing to wait for");
    checks_say(s.b[0], false, false);
    cr_expect_eq(lv_eligible_retry_after(s.b, 3, interval, DUE), 5, "one check interval");
    put_breaker(s.b[1], B_OPEN_NOT_DUE); /* open until DUE */
    cr_expect_eq(lv_eligible_retry_after(s.b, 3, interval, T0), 1);
    cr_expect_eq(lv_eligible_retry_after(s.b, 3, interval, T0 + 1), 1, "999 ms round up to 1 s");
    cr_expect_eq(lv_eligible_retry_after(s.b, 3, 500, T0), 1, "the check is sooner");
    cr_expect_eq(lv_eligible_retry_after(s.b, 3, interval, DUE), 5,
                 "a due breaker is no wait: the check is what is left");
    cr_expect_eq(lv_eligible_retry_after(s.b, 1, 2500, DUE), 3, "2.5 s round up");
    cr_expect_eq(lv_eligible_retry_after(s.b, 1, 36000000, DUE), 3600, "at most an hour");
    cr_expect_eq(lv_eligible_retry_after(s.b, 0, interval, DUE), 1, "no backend at all");
    set_dispose(&s);
}

Test(eligible, retry_after_follows_the_breaker_open_period)
{
    struct set s;
    set_init(&s, 2);
    struct lv_breaker_cfg long_open = BC;
    long_open.timeout = 10000;
    for (int i = 0; i < 2; i++) {
        struct lv_breaker_ticket t;
        cr_assert(lv_breaker_allow(&s.b[i]->breaker, &long_open, 0, &t));
        lv_breaker_report(&s.b[i]->breaker, &long_open, 0, 1000 * (uint64_t)i, false, 0.5, &t);
    }
    /* open until 10 000 and 11 000 */
    cr_expect_eq(lv_eligible_retry_after(s.b, 2, 5000, 0), 10);
    cr_expect_eq(lv_eligible_retry_after(s.b, 2, 5000, 9500), 1);
    cr_expect_eq(lv_eligible_retry_after(s.b, 2, 5000, 10000), 1, "one more second for b1");
    cr_expect_eq(lv_eligible_retry_after(s.b, 2, 5000, 11000), 1, "nothing left to wait for");
    set_dispose(&s);
}
