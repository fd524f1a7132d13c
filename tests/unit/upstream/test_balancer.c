/*
 * Load balancing strategies (upstream/balancer.c and lb_*.c), each through
 * lv_balancer_find and a struct lv_pick over backends made here.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/rand.h"
#include "upstream/backend.h"
#include "upstream/balancer.h"

#define MAXB 8

struct farm {
    struct lv_backend_cfg cfg[MAXB];
    char ids[MAXB][8];
    struct lv_backend *b[MAXB];
    uint32_t weights[MAXB];
    bool eligible[MAXB];
    size_t n;
    struct lv_rand rand;
    const struct lv_balancer_ops *ops;
    void *state;
    struct lv_pick pick;
};

/* n backends "b0".."b<n-1>", all eligible, weight 1, under strategy name. */
static void farm_init(struct farm *f, const char *name, size_t n)
{
    memset(f, 0, sizeof(*f));
    cr_assert_leq(n, MAXB);
    f->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(f->ids[i], sizeof(f->ids[i]), "b%zu", i);
        f->cfg[i].id = f->ids[i];
        f->cfg[i].weight = 1;
        f->b[i] = lv_backend_create(f->ids[i], 1);
        cr_assert_not_null(f->b[i]);
        f->weights[i] = 1;
        f->eligible[i] = true;
    }
    lv_rand_seed(&f->rand, 20240601);
    f->ops = lv_balancer_find(name);
    cr_assert_not_null(f->ops, "no balancer %s", name);
    cr_assert_str_eq(f->ops->name, name);
    f->state = f->ops->create(n);
    cr_assert_not_null(f->state);
    f->pick = (struct lv_pick){f->b, n, f->eligible, f->weights, &f->rand, 1000000000ull};
}

static void farm_dispose(struct farm *f)
{
    f->ops->destroy(f->state);
    for (size_t i = 0; i < f->n; i++)
        lv_backend_unref(f->b[i]);
}

static int pick(struct farm *f)
{
    int i = f->ops->pick(f->state, &f->pick);
    if (i >= 0) cr_assert_lt((size_t)i, f->n);
    return i;
}

/* n picks in a row, each of them `want` */
static void expect_picks(struct farm *f, int n, int want)
{
    for (int k = 0; k < n; k++)
        cr_expect_eq(pick(f), want, "pick %d of %d", k + 1, n);
}

static void set_active(struct farm *f, size_t i, int active)
{
    atomic_store(&f->b[i]->active, active);
}

/* Picks len times and compares with want ("a" is backend 0, "b" 1...). */
static void expect_sequence(struct farm *f, const char *want)
{
    char got[128];
    size_t n = strlen(want);
    cr_assert_lt(n, sizeof(got));
    for (size_t k = 0; k < n; k++) {
        int i = pick(f);
        got[k] = i < 0 ? '-' : (char)('a' + i);
    }
    got[n] = '\0';
    cr_expect_str_eq(got, want);
}

Test(balancer, registry)
{
    cr_expect_null(lv_balancer_find("fastest"));
    cr_expect_null(lv_balancer_find(""));
    cr_expect_null(lv_balancer_find("Round_Robin"));
    const char *names[] = {"round_robin",       "random",       "weighted",
                           "least_connections", "power_of_two", "peak_ewma"};
    size_t n = 0;
    while (lv_balancers[n])
        n++;
    cr_expect_eq(n, 6);
    for (size_t i = 0; i < 6; i++) {
        const struct lv_balancer_ops *ops = lv_balancer_find(names[i]);
        cr_assert_not_null(ops, "%s", names[i]);
        cr_expect_str_eq(ops->name, names[i]);
        cr_expect_not_null(ops->create);
        cr_expect_not_null(ops->destroy);
        cr_expect_not_null(ops->pick);
    }
}

Test(balancer, every_strategy_returns_minus_one_when_none_eligible)
{
    for (size_t s = 0; lv_balancers[s]; s++) {
        struct farm f;
        farm_init(&f, lv_balancers[s]->name, 3);
        memset(f.eligible, 0, sizeof(f.eligible));
        for (int k = 0; k < 5; k++)
            cr_expect_eq(pick(&f), -1, "%s", f.ops->name);
        farm_dispose(&f);
    }
}

Test(balancer, every_strategy_with_a_single_backend)
{
    for (size_t s = 0; lv_balancers[s]; s++) {
        struct farm f;
        farm_init(&f, lv_balancers[s]->name, 1);
        for (int k = 0; k < 5; k++)
            cr_expect_eq(pick(&f), 0, "%s", f.ops->name);
        farm_dispose(&f);
    }
}

Test(balancer, every_strategy_with_eligible_null_means_all)
{
    for (size_t s = 0; lv_balancers[s]; s++) {
        struct farm f;
        farm_init(&f, lv_balancers[s]->name, 3);
        f.pick.eligible = NULL;
        bool seen[3] = {false};
        for (int k = 0; k < 300; k++)
            seen[pick(&f)] = true;
        cr_expect(seen[0] && seen[1] && seen[2], "%s", f.ops->name);
        farm_dispose(&f);
    }
}

/* --- round_robin ------------------------------------------------------------------ */

Test(round_robin, exact_cycle)
{
    struct farm f;
    farm_init(&f, "round_robin", 3);
    expect_sequence(&f, "abcabcabc");
    farm_dispose(&f);
}

Test(round_robin, skips_ineligible)
{
    struct farm f;
    farm_init(&f, "round_robin", 4);
    f.eligible[1] = false;
    expect_sequence(&f, "acdacd");
    f.eligible[3] = false;
    expect_sequence(&f, "acac");
    farm_dispose(&f);
}

Test(round_robin, resumes_after_the_last_pick)
{
    struct farm f;
    farm_init(&f, "round_robin", 4);
    expect_sequence(&f, "ab");
    f.eligible[2] = false;
    expect_sequence(&f, "dab");
    f.eligible[2] = true;
    expect_sequence(&f, "cdab");
    farm_dispose(&f);
}

Test(round_robin, ignores_weights)
{
    struct farm f;
    farm_init(&f, "round_robin", 3);
    f.weights[0] = 10;
    expect_sequence(&f, "abcabc");
    farm_dispose(&f);
}

/* --- weighted (smooth weighted round robin) -------------------------------------- */

Test(weighted, smooth_sequence_5_1_1)
{
    struct farm f;
    farm_init(&f, "weighted", 3);
    f.weights[0] = 5;
    expect_sequence(&f, "aabacaa");
    expect_sequence(&f, "aabacaa");
    farm_dispose(&f);
}

Test(weighted, exact_counts_1_2_3)
{
    struct farm f;
    farm_init(&f, "weighted", 3);
    f.weights[0] = 1;
    f.weights[1] = 2;
    f.weights[2] = 3;
    int counts[3] = {0};
    for (int k = 0; k < 600; k++)
        counts[pick(&f)]++;
    cr_expect_eq(counts[0], 100);
    cr_expect_eq(counts[1], 200);
    cr_expect_eq(counts[2], 300);
    farm_dispose(&f);
}

Test(weighted, exact_counts_every_cycle)
{
    /* over any whole cycle (sum of weights picks) the counts are exact */
    struct farm f;
    farm_init(&f, "weighted", 3);
    f.weights[0] = 1;
    f.weights[1] = 2;
    f.weights[2] = 3;
    for (int cycle = 0; cycle < 10; cycle++) {
        int counts[3] = {0};
        for (int k = 0; k < 6; k++)
            counts[pick(&f)]++;
        cr_expect(counts[0] == 1 && counts[1] == 2 && counts[2] == 3, "cycle %d: %d %d %d", cycle,
                  counts[0], counts[1], counts[2]);
    }
    farm_dispose(&f);
}

Test(weighted, equal_weights_never_repeat)
{
    struct farm f;
    farm_init(&f, "weighted", 4);
    int last = -1;
    for (int k = 0; k < 400; k++) {
        int i = pick(&f);
        cr_expect_neq(i, last, "backend %d picked twice in a row at %d", i, k);
        last = i;
    }
    farm_dispose(&f);
}

Test(weighted, equal_weights_cycle_in_order)
{
    struct farm f;
    farm_init(&f, "weighted", 3);
    expect_sequence(&f, "abcabc");
    farm_dispose(&f);
}

Test(weighted, skips_ineligible)
{
    struct farm f;
    farm_init(&f, "weighted", 3);
    f.weights[0] = 5;
    f.eligible[0] = false;
    for (int k = 0; k < 100; k++)
        cr_expect_neq(pick(&f), 0);
    f.eligible[0] = true;
    f.eligible[1] = false;
    f.eligible[2] = false;
    expect_picks(&f, 10, 0);
    farm_dispose(&f);
}

Test(weighted, shares_among_eligible_by_weight)
{
    struct farm f;
    farm_init(&f, "weighted", 3);
    f.weights[0] = 1;
    f.weights[1] = 3;
    f.weights[2] = 100;
    f.eligible[2] = false;
    int counts[3] = {0};
    for (int k = 0; k < 400; k++)
        counts[pick(&f)]++;
    cr_expect_eq(counts[0], 100);
    cr_expect_eq(counts[1], 300);
    cr_expect_eq(counts[2], 0);
    farm_dispose(&f);
}

/* --- random ---------------------------------------------------------------------- */

Test(random, uniform_over_eligible)
{
    struct farm f;
    farm_init(&f, "random", 3);
    int counts[3] = {0};
    for (int k = 0; k < 30000; k++)
        counts[pick(&f)]++;
    for (int i = 0; i < 3; i++) {
        /* 10000 expected; 5 standard deviations is about 410 */
        cr_expect(counts[i] > 9500 && counts[i] < 10500, "backend %d: %d picks", i, counts[i]);
    }
    farm_dispose(&f);
}

Test(random, never_ineligible)
{
    struct farm f;
    farm_init(&f, "random", 5);
    f.eligible[0] = false;
    f.eligible[3] = false;
    int counts[5] = {0};
    for (int k = 0; k < 30000; k++)
        counts[pick(&f)]++;
    cr_expect_eq(counts[0], 0);
    cr_expect_eq(counts[3], 0);
    for (int i = 1; i < 5; i++) {
        if (i == 3) continue;
        cr_expect(counts[i] > 9500 && counts[i] < 10500, "backend %d: %d picks", i, counts[i]);
    }
    farm_dispose(&f);
}

Test(random, reproducible_with_a_seed)
{
    struct farm f, g;
    farm_init(&f, "random", 4);
    farm_init(&g, "random", 4);
    for (int k = 0; k < 200; k++)
        cr_assert_eq(pick(&f), pick(&g), "diverged at %d", k);
    farm_dispose(&f);
    farm_dispose(&g);
}

/* --- least_connections ------------------------------------------------------------- */

Test(least_connections, picks_the_minimum)
{
    struct farm f;
    farm_init(&f, "least_connections", 4);
    set_active(&f, 0, 4);
    set_active(&f, 1, 2);
    set_active(&f, 2, 1);
    set_active(&f, 3, 3);
    expect_picks(&f, 20, 2);
    set_active(&f, 2, 5);
    expect_picks(&f, 20, 1);
    farm_dispose(&f);
}

Test(least_connections, relative_to_weight)
{
    struct farm f;
    farm_init(&f, "least_connections", 3);
    set_active(&f, 0, 6); /* 6/4 = 1.5 */
    set_active(&f, 1, 2); /* 2/1 = 2 */
    set_active(&f, 2, 5); /* 5/2 = 2.5 */
    f.weights[0] = 4;
    f.weights[1] = 1;
    f.weights[2] = 2;
    expect_picks(&f, 20, 0);
    set_active(&f, 0, 9); /* 2.25: now backend 1 */
    expect_picks(&f, 20, 1);
    farm_dispose(&f);
}

Test(least_connections, skips_ineligible_minimum)
{
    struct farm f;
    farm_init(&f, "least_connections", 3);
    set_active(&f, 0, 0);
    set_active(&f, 1, 7);
    set_active(&f, 2, 3);
    f.eligible[0] = false;
    expect_picks(&f, 20, 2);
    farm_dispose(&f);
}

Test(least_connections, ties_spread)
{
    struct farm f;
    farm_init(&f, "least_connections", 4);
    set_active(&f, 0, 1);
    set_active(&f, 1, 1);
    set_active(&f, 2, 2);
    set_active(&f, 3, 1);
    int counts[4] = {0};
    for (int k = 0; k < 3000; k++)
        counts[pick(&f)]++;
    cr_expect_eq(counts[2], 0);
    for (int i = 0; i < 4; i++) {
        if (i == 2) continue;
        /* 1000 expected each */
        cr_expect(counts[i] > 850 && counts[i] < 1150, "backend %d: %d picks", i, counts[i]);
    }
    farm_dispose(&f);
}

Test(least_connections, ties_by_ratio_spread)
{
    struct farm f;
    farm_init(&f, "least_connections", 2);
    set_active(&f, 0, 2);
    set_active(&f, 1, 4);
    f.weights[0] = 1;
    f.weights[1] = 2;
    int counts[2] = {0};
    for (int k = 0; k < 2000; k++)
        counts[pick(&f)]++;
    cr_expect(counts[0] > 850 && counts[0] < 1150, "%d %d", counts[0], counts[1]);
    farm_dispose(&f);
}

/* --- power_of_two, peak_ewma ---------------------------------------------------- */

/* Of two backends both are always drawn: the cheaper one always wins. */
Test(power_of_two, of_two_the_less_loaded_always)
{
    struct farm f;
    farm_init(&f, "power_of_two", 2);
    set_active(&f, 0, 5);
    set_active(&f, 1, 2);
    expect_picks(&f, 100, 1);
    f.weights[0] = 4; /* 5/4 < 2/1 */
    expect_picks(&f, 100, 0);
    farm_dispose(&f);
}

/* The most loaded of n is never picked (it loses every pair it is in); the
 * least loaded wins every pair it is in: 2/n of the picks. */
Test(power_of_two, shares_follow_the_pairs)
{
    struct farm f;
    farm_init(&f, "power_of_two", 4);
    int active[4] = {0, 1, 2, 3};
    for (size_t i = 0; i < 4; i++)
        set_active(&f, i, active[i]);
    int counts[4] = {0};
    const int n = 12000;
    for (int k = 0; k < n; k++)
        counts[pick(&f)]++;
    cr_expect_eq(counts[3], 0);
    /* pairs won: b0 3 of 6, b1 2, b2 1 */
    cr_expect(counts[0] > n * 0.45 && counts[0] < n * 0.55, "%d", counts[0]);
    cr_expect(counts[1] > n * 0.28 && counts[1] < n * 0.38, "%d", counts[1]);
    cr_expect(counts[2] > n * 0.12 && counts[2] < n * 0.22, "%d", counts[2]);
    farm_dispose(&f);
}

Test(power_of_two, never_ineligible_and_ties_spread)
{
    struct farm f;
    farm_init(&f, "power_of_two", 4);
    f.eligible[2] = false;
    int counts[4] = {0};
    for (int k = 0; k < 3000; k++)
        counts[pick(&f)]++;
    cr_expect_eq(counts[2], 0);
    for (size_t i = 0; i < 4; i++)
        if (i != 2) cr_expect(counts[i] > 800 && counts[i] < 1200, "b%zu %d", i, counts[i]);
    farm_dispose(&f);
}

static void sample(struct farm *f, size_t i, double us, uint64_t now_ns)
{
    lv_ewma_observe(&f->b[i]->rtt, us, now_ns, LV_EWMA_TAU_NS);
}

Test(peak_ewma, the_faster_backend_wins)
{
    struct farm f;
    farm_init(&f, "peak_ewma", 2);
    sample(&f, 0, 20000, 1000);
    sample(&f, 1, 2000, 1000);
    f.pick.now_ns = 2000;
    expect_picks(&f, 50, 1);
    /* ... until its requests in flight make it dearer: 2 ms x 11 > 20 ms x 1 */
    set_active(&f, 1, 10);
    expect_picks(&f, 50, 0);
    farm_dispose(&f);
}

Test(peak_ewma, unknown_backends_are_tried_when_idle_not_flooded)
{
    struct farm f;
    farm_init(&f, "peak_ewma", 2);
    sample(&f, 0, 1000, 1000); /* b1 has never answered */
    f.pick.now_ns = 2000;
    cr_expect_eq(pick(&f), 1); /* idle and unknown: costs nothing */
    set_active(&f, 1, 1);      /* one request out, no answer yet */
    expect_picks(&f, 50, 0);
    farm_dispose(&f);
}

Test(peak_ewma, a_timed_out_backend_rests_then_comes_back)
{
    struct farm f;
    farm_init(&f, "peak_ewma", 2);
    uint64_t s = 1000000000ull;
    sample(&f, 0, 2000, 1 * s);
    sample(&f, 1, 1000, 1 * s);
    sample(&f, 1, 1000000, 2 * s); /* a 1 s timeout: the peak replaces the estimate */
    f.pick.now_ns = 3 * s;
    expect_picks(&f, 20, 0);
    /* b0 keeps answering in 2 ms; b1 gets nothing, and its estimate decays:
     * 1 s x exp(-(t - 2 s)/10 s) < 2 ms once t > 64 s */
    for (uint64_t t = 4; t <= 63; t++)
        sample(&f, 0, 2000, t * s);
    f.pick.now_ns = 63 * s;
    cr_expect_eq(pick(&f), 0);
    sample(&f, 0, 2000, 65 * s);
    f.pick.now_ns = 65 * s;
    cr_expect_eq(pick(&f), 1);
    farm_dispose(&f);
}

Test(ewma, peak_then_decay)
{
    struct lv_ewma e;
    memset(&e, 0, sizeof(e));
    const uint64_t s = 1000000000ull, tau = 10 * s;
    cr_expect(!lv_ewma_has_sample(&e));
    cr_expect_float_eq(lv_ewma_read(&e, 5 * s, tau), 0.0, 1e-9);
    lv_ewma_observe(&e, 100, 1 * s, tau); /* first sample: taken as it is */
    cr_expect(lv_ewma_has_sample(&e));
    cr_expect_float_eq(lv_ewma_read(&e, 1 * s, tau), 100.0, 1e-9);
    lv_ewma_observe(&e, 500, 2 * s, tau); /* above: the peak replaces it */
    cr_expect_float_eq(lv_ewma_read(&e, 2 * s, tau), 500.0, 1e-9);
    /* below: moves toward it by 1 - exp(-dt/tau) */
    lv_ewma_observe(&e, 100, 12 * s, tau);
    double w = exp(-1.0);
    cr_expect_float_eq(lv_ewma_read(&e, 12 * s, tau), 500 * w + 100 * (1 - w), 1e-6);
    /* read: decays toward 0 with the time since the last sample */
    double v = 500 * w + 100 * (1 - w);
    cr_expect_float_eq(lv_ewma_read(&e, 22 * s, tau), v * w, 1e-6);
    /* a clock that did not move (or went back) changes nothing */
    cr_expect_float_eq(lv_ewma_read(&e, 11 * s, tau), v, 1e-6);
}

Test(ewma, steady_samples_converge)
{
    struct lv_ewma e;
    memset(&e, 0, sizeof(e));
    const uint64_t ms = 1000000ull, tau = 10000 * ms;
    lv_ewma_observe(&e, 1000000, 1 * ms, tau); /* one 1 s spike */
    for (uint64_t t = 2; t <= 60000; t += 10)  /* then 2 ms answers every 10 ms for 60 s */
        lv_ewma_observe(&e, 2000, t * ms, tau);
    double v = lv_ewma_read(&e, 60000 * ms, tau);
    cr_expect(v > 2000 && v < 2000 + 1000000 * exp(-5.9), "%f", v);
}

/* A backend taken out comes back without its penalty: reset forgets every
 * sample, and the next one is the estimate (not a peak over the old one). */
Test(ewma, reset_forgets_the_penalty)
{
    struct lv_ewma e;
    memset(&e, 0, sizeof(e));
    const uint64_t s = 1000000000ull, tau = 10 * s;
    lv_ewma_observe(&e, 1000000, 1 * s, tau); /* a reset weighs 1 s */
    cr_expect_float_eq(lv_ewma_read(&e, 1 * s, tau), 1000000.0, 1e-6);
    lv_ewma_reset(&e);
    cr_expect(!lv_ewma_has_sample(&e));
    cr_expect_float_eq(lv_ewma_read(&e, 2 * s, tau), 0.0, 1e-9);
    lv_ewma_observe(&e, 300, 3 * s, tau);
    cr_expect_float_eq(lv_ewma_read(&e, 3 * s, tau), 300.0, 1e-9);
}
