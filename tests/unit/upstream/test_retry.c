/*
 * Retry policy (upstream/retry.c): full-jitter backoff, retry_on statuses,
 * the retry budget, and the decision with its skip reasons in order.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/fail.h"
#include "core/rand.h"
#include "upstream/retry.h"

/* The largest double below 1: what lv_rand_unit can return at most. */
#define U_MAX 0x1.fffffffffffffp-1

/* The defaults of config.c, spelled out: 3 attempts, connect/reset/timeout
 * and 502-504, 25..250 ms, 20% budget with a floor of 3. */
static struct lv_retry_cfg defaults(void)
{
    return (struct lv_retry_cfg){
        .max_attempts = 3,
        .classes = LV_FAILC_CONNECT | LV_FAILC_RESET | LV_FAILC_TIMEOUT,
        .statuses = {502, 503, 504},
        .nstatuses = 3,
        .base_delay = 25,
        .max_delay = 250,
        .budget_percent = 20,
        .min_retry_concurrency = 3,
        .max_replay_body = 64 * 1024,
    };
}

/* An input that every rule lets through: an idempotent request reset by
 * the backend after one attempt, with plenty of time left. */
static struct lv_retry_input retryable(void)
{
    return (struct lv_retry_input){
        .kind = LV_FAIL_RESET,
        .sent = true,
        .idempotent = true,
        .replayable = true,
        .attempts = 1,
        .now = 1000,
        .deadline = 31000,
        .delay = 100,
    };
}

static const struct lv_retry_budget idle = {.active = 1, .retrying = 0};

/* --- backoff ---------------------------------------------------------------------- */

/* The upper bound of the backoff before retry number `retry`. */
static uint64_t cap_of(const struct lv_retry_cfg *c, unsigned retry)
{
    uint64_t cap = c->base_delay;
    for (unsigned i = 1; i < retry; i++) {
        cap *= 2;
        if (cap >= c->max_delay) return c->max_delay;
    }
    return cap < c->max_delay ? cap : c->max_delay;
}

Test(retry_backoff, u_zero_is_no_wait)
{
    struct lv_retry_cfg c = defaults();
    for (unsigned r = 0; r <= 12; r++)
        cr_expect_eq(lv_retry_backoff(&c, r, 0.0), 0, "retry %u", r);
}

Test(retry_backoff, u_near_one_is_just_under_the_cap)
{
    struct lv_retry_cfg c = defaults();
    const uint64_t want[] = {25, 50, 100, 200, 250, 250, 250, 250};
    for (unsigned r = 1; r <= 8; r++) {
        uint64_t d = lv_retry_backoff(&c, r, U_MAX);
        cr_expect_eq(d, want[r - 1] - 1, "retry %u: %llu, want %llu", r, (unsigned long long)d,
                     (unsigned long long)want[r - 1] - 1);
        cr_expect_eq(lv_retry_backoff(&c, r, 0.999), (uint64_t)(want[r - 1] * 0.999));
    }
}

Test(retry_backoff, u_half_is_half_the_cap)
{
    struct lv_retry_cfg c = defaults();
    cr_expect_eq(lv_retry_backoff(&c, 1, 0.5), 12);
    cr_expect_eq(lv_retry_backoff(&c, 2, 0.5), 25);
    cr_expect_eq(lv_retry_backoff(&c, 3, 0.5), 50);
    cr_expect_eq(lv_retry_backoff(&c, 4, 0.5), 100);
    cr_expect_eq(lv_retry_backoff(&c, 5, 0.5), 125);
    cr_expect_eq(lv_retry_backoff(&c, 6, 0.5), 125);
}

Test(retry_backoff, cap_doubles_from_base_and_stops_at_max)
{
    struct lv_retry_cfg c = defaults();
    c.base_delay = 100;
    c.max_delay = 1000;
    /* 100, 200, 400, 800, then 1000 (not 1600) for ever */
    const uint64_t want[] = {100, 200, 400, 800, 1000, 1000, 1000};
    for (unsigned r = 1; r <= 7; r++)
        cr_expect_eq(lv_retry_backoff(&c, r, U_MAX), want[r - 1] - 1, "retry %u", r);
    /* retry 0 (before any retry) is the base */
    cr_expect_eq(lv_retry_backoff(&c, 0, U_MAX), 99);
}

Test(retry_backoff, large_retry_numbers_do_not_overflow)
{
    struct lv_retry_cfg c = defaults();
    c.base_delay = 1;
    c.max_delay = 60000;
    for (unsigned r = 1; r < 200; r++) {
        uint64_t d = lv_retry_backoff(&c, r, U_MAX);
        cr_expect_lt(d, cap_of(&c, r), "retry %u", r);
    }
    cr_expect_eq(lv_retry_backoff(&c, 1000000, U_MAX), 59999);
    cr_expect_eq(lv_retry_backoff(&c, UINT32_MAX, U_MAX), 59999);
}

Test(retry_backoff, base_above_max_is_capped)
{
    struct lv_retry_cfg c = defaults();
    c.base_delay = 500;
    c.max_delay = 100;
    cr_expect_eq(lv_retry_backoff(&c, 1, U_MAX), 99);
    cr_expect_eq(lv_retry_backoff(&c, 5, U_MAX), 99);
}

Test(retry_backoff, zero_delays_never_wait)
{
    struct lv_retry_cfg c = defaults();
    c.base_delay = 0;
    c.max_delay = 0;
    for (unsigned r = 0; r < 20; r++)
        cr_expect_eq(lv_retry_backoff(&c, r, U_MAX), 0);
}

Test(retry_backoff, full_jitter_distribution)
{
    struct lv_retry_cfg c = defaults();
    c.base_delay = 100;
    c.max_delay = 10000;
    struct lv_rand rnd;
    lv_rand_seed(&rnd, 42);
    const unsigned draws = 20000;
    for (unsigned r = 1; r <= 10; r++) {
        uint64_t cap = cap_of(&c, r);
        double sum = 0;
        uint64_t lo = UINT64_MAX, hi = 0;
        unsigned below_half = 0;
        for (unsigned i = 0; i < draws; i++) {
            uint64_t d = lv_retry_backoff(&c, r, lv_rand_unit(&rnd));
            cr_assert_lt(d, cap, "retry %u: %llu >= cap %llu", r, (unsigned long long)d,
                         (unsigned long long)cap);
            sum += (double)d;
            if (d < lo) lo = d;
            if (d > hi) hi = d;
            if (d < cap / 2) below_half++;
        }
        double mean = sum / draws;
        /* truncation lowers the mean by ~0.5 ms; the sampling error on
         * 20000 draws is ~0.2% of the cap: 3% is loose. */
        cr_expect(fabs(mean - (double)cap / 2) < 0.03 * (double)cap + 1,
                  "retry %u: mean %.1f, cap %llu", r, mean, (unsigned long long)cap);
        cr_expect_lt(lo, cap / 50 + 1, "retry %u: the low end is reached", r);
        cr_expect_gt(hi, cap - cap / 50 - 2, "retry %u: the high end is reached", r);
        cr_expect(below_half > draws * 45 / 100 && below_half < draws * 55 / 100,
                  "retry %u: %u of %u below half the cap", r, below_half, draws);
    }
}

/* --- statuses --------------------------------------------------------------------- */

Test(retry_status, listed_statuses_only)
{
    struct lv_retry_cfg c = defaults();
    cr_expect(lv_retry_status(&c, 502));
    cr_expect(lv_retry_status(&c, 503));
    cr_expect(lv_retry_status(&c, 504));
    cr_expect_not(lv_retry_status(&c, 500));
    cr_expect_not(lv_retry_status(&c, 501));
    cr_expect_not(lv_retry_status(&c, 505));
    cr_expect_not(lv_retry_status(&c, 200));
    cr_expect_not(lv_retry_status(&c, 429));
    cr_expect_not(lv_retry_status(&c, 0));
    cr_expect_not(lv_retry_status(&c, 502 + 65536), "no truncation to 16 bits");
}

Test(retry_status, only_the_first_nstatuses_count)
{
    struct lv_retry_cfg c = defaults();
    c.nstatuses = 1;
    cr_expect(lv_retry_status(&c, 502));
    cr_expect_not(lv_retry_status(&c, 503));
    c.nstatuses = 0;
    cr_expect_not(lv_retry_status(&c, 502));
    /* a zeroed tail entry does not make status 0 retryable */
    cr_expect_not(lv_retry_status(&c, 0));
}

Test(retry_status, a_full_list)
{
    struct lv_retry_cfg c = defaults();
    for (unsigned i = 0; i < LV_RETRY_MAX_STATUSES; i++)
        c.statuses[i] = (uint16_t)(500 + i);
    c.nstatuses = LV_RETRY_MAX_STATUSES;
    for (unsigned i = 0; i < LV_RETRY_MAX_STATUSES; i++)
        cr_expect(lv_retry_status(&c, 500 + i));
    cr_expect_not(lv_retry_status(&c, 500 + LV_RETRY_MAX_STATUSES));
    cr_expect_not(lv_retry_status(&c, 499));
}

/* --- budget ----------------------------------------------------------------------- */

Test(retry_budget, floor_when_few_requests_are_active)
{
    struct lv_retry_cfg c = defaults(); /* 20%, floor 3 */
    for (uint32_t active = 0; active <= 19; active++) {
        /* 20% of <= 19 is at most 3: the floor rules */
        for (uint32_t r = 0; r < 3; r++)
            cr_expect(lv_retry_budget_allows(&c, &(struct lv_retry_budget){active, r}),
                      "active %u retrying %u", active, r);
        cr_expect_not(lv_retry_budget_allows(&c, &(struct lv_retry_budget){active, 3}),
                      "active %u: the 4th retry", active);
    }
}

Test(retry_budget, percent_of_active_otherwise)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_budget b = {.active = 100};
    for (b.retrying = 0; b.retrying < 20; b.retrying++)
        cr_expect(lv_retry_budget_allows(&c, &b), "retry %u of 20", b.retrying + 1);
    cr_expect_not(lv_retry_budget_allows(&c, &b), "the 21st retry");
    b.retrying = 50;
    cr_expect_not(lv_retry_budget_allows(&c, &b));
}

Test(retry_budget, percent_rounds_down)
{
    struct lv_retry_cfg c = defaults();
    /* 20% of 24 = 4.8: 4 allowed */
    cr_expect(lv_retry_budget_allows(&c, &(struct lv_retry_budget){24, 3}));
    cr_expect_not(lv_retry_budget_allows(&c, &(struct lv_retry_budget){24, 4}));
    /* 20% of 25 = 5 */
    cr_expect(lv_retry_budget_allows(&c, &(struct lv_retry_budget){25, 4}));
    cr_expect_not(lv_retry_budget_allows(&c, &(struct lv_retry_budget){25, 5}));
}

Test(retry_budget, large_counts_do_not_overflow)
{
    struct lv_retry_cfg c = defaults();
    c.budget_percent = 100;
    struct lv_retry_budget b = {.active = UINT32_MAX, .retrying = UINT32_MAX - 1};
    cr_expect(lv_retry_budget_allows(&c, &b));
    b.retrying = UINT32_MAX;
    cr_expect_not(lv_retry_budget_allows(&c, &b));
}

Test(retry_budget, zero_percent_and_zero_floor_allow_nothing)
{
    struct lv_retry_cfg c = defaults();
    c.budget_percent = 0;
    c.min_retry_concurrency = 0;
    cr_expect_not(lv_retry_budget_allows(&c, &(struct lv_retry_budget){1000, 0}));
    c.min_retry_concurrency = 1;
    cr_expect(lv_retry_budget_allows(&c, &(struct lv_retry_budget){1000, 0}));
    cr_expect_not(lv_retry_budget_allows(&c, &(struct lv_retry_budget){1000, 1}));
}

/* --- decide ----------------------------------------------------------------------- */

Test(retry_decide, retryable_input_is_retried)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
}

Test(retry_decide, class_not_in_retry_on)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    c.classes = LV_FAILC_CONNECT;
    in.kind = LV_FAIL_RESET;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_RETRYABLE);
    in.kind = LV_FAIL_BAD_RESPONSE;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_RETRYABLE);
    in.kind = LV_FAIL_RESPONSE_TIMEOUT;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_RETRYABLE);
    in.kind = LV_FAIL_CONNECT_FAILED;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
    in.kind = LV_FAIL_CONNECT_TIMEOUT;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
    c.classes = 0;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_RETRYABLE);
}

Test(retry_decide, every_kind_against_every_class)
{
    const uint32_t classes[] = {0,
                                LV_FAILC_CONNECT,
                                LV_FAILC_RESET,
                                LV_FAILC_TIMEOUT,
                                LV_FAILC_CONNECT | LV_FAILC_RESET | LV_FAILC_TIMEOUT,
                                LV_FAILC_CONNECT | LV_FAILC_RESET | LV_FAILC_TIMEOUT |
                                    LV_FAILC_STATUS};
    for (size_t ci = 0; ci < sizeof(classes) / sizeof(classes[0]); ci++) {
        struct lv_retry_cfg c = defaults();
        c.classes = classes[ci];
        for (int k = LV_FAIL_NONE; k < LV_FAIL_KIND_COUNT; k++) {
            if (k == LV_FAIL_BAD_STATUS) continue; /* by status: below */
            struct lv_retry_input in = retryable();
            in.kind = (enum lv_fail_kind)k;
            bool want = (lv_fail_info(in.kind)->cls & c.classes) != 0;
            enum lv_retry_skip got = lv_retry_decide(&c, &in, &idle);
            cr_expect_eq(got, want ? LV_SKIP_NONE : LV_SKIP_NOT_RETRYABLE,
                         "kind %s, classes %#x: %s", lv_fail_info(in.kind)->reason, c.classes,
                         lv_retry_skip_name(got));
            if (!lv_fail_is_backend(in.kind))
                cr_expect_eq(got, LV_SKIP_NOT_RETRYABLE, "%s is not the backend's fault",
                             lv_fail_info(in.kind)->reason);
        }
    }
}

Test(retry_decide, bad_status_by_the_list_of_statuses)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    in.kind = LV_FAIL_BAD_STATUS;
    in.status = 503;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
    in.status = 500;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_RETRYABLE, "500 is not listed");
    in.status = 429;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_RETRYABLE);
    /* the classes do not matter for a status, only the list */
    c.classes = 0;
    in.status = 502;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
    c.classes = LV_FAILC_STATUS;
    c.nstatuses = 0;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_RETRYABLE);
    /* and a status does not matter for other kinds */
    in.kind = LV_FAIL_RESET;
    in.status = 503;
    c = defaults();
    c.classes = 0;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_RETRYABLE);
}

Test(retry_decide, attempts)
{
    struct lv_retry_cfg c = defaults(); /* 3 attempts in all */
    struct lv_retry_input in = retryable();
    in.attempts = 1;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
    in.attempts = 2;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
    in.attempts = 3;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_ATTEMPTS);
    in.attempts = 4;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_ATTEMPTS);
    c.max_attempts = 1;
    in.attempts = 1;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_ATTEMPTS, "1 attempt: no retry");
}

Test(retry_decide, not_idempotent)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    in.idempotent = false; /* a POST */
    in.sent = true;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_IDEMPOTENT);
    in.kind = LV_FAIL_RESPONSE_TIMEOUT;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NOT_IDEMPOTENT);
}

Test(retry_decide, a_connect_failure_of_a_post_is_retried)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    in.kind = LV_FAIL_CONNECT_FAILED;
    in.idempotent = false;
    in.sent = false;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
    in.kind = LV_FAIL_CONNECT_TIMEOUT;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
}

Test(retry_decide, non_idempotent_allows_a_sent_post)
{
    struct lv_retry_cfg c = defaults();
    c.non_idempotent = true;
    struct lv_retry_input in = retryable();
    in.idempotent = false;
    in.sent = true;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
}

Test(retry_decide, body_too_large)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    in.replayable = false;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_BODY_TOO_LARGE);
    /* even a connect failure needs the body again */
    in.kind = LV_FAIL_CONNECT_FAILED;
    in.sent = false;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_BODY_TOO_LARGE);
}

Test(retry_decide, deadline)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    in.now = 1000;
    in.delay = 100;
    in.deadline = 1101;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE, "1 ms left after the wait");
    in.deadline = 1100;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_DEADLINE, "the wait ends at it");
    in.deadline = 1050;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_DEADLINE, "the wait ends after it");
    in.deadline = 900;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_DEADLINE, "already past");
    in.delay = 0;
    in.deadline = 1000;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_DEADLINE, "no wait, no time left");
    in.deadline = 1001;
    cr_expect_eq(lv_retry_decide(&c, &in, &idle), LV_SKIP_NONE);
}

Test(retry_decide, budget)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    struct lv_retry_budget b = {.active = 100, .retrying = 19};
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_NONE);
    b.retrying = 20;
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_BUDGET);
    b = (struct lv_retry_budget){.active = 5, .retrying = 3};
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_BUDGET, "over the floor of 3");
}

Test(retry_decide, already_retrying_bypasses_the_budget)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    in.already_retrying = true;
    struct lv_retry_budget b = {.active = 100, .retrying = 100};
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_NONE);
    c.budget_percent = 0;
    c.min_retry_concurrency = 0;
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_NONE);
    /* ... but nothing else */
    in.deadline = in.now;
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_DEADLINE);
}

/* Everything wrong at once; each fix in turn uncovers the next reason, in
 * the order the header documents. */
Test(retry_decide, order_of_precedence)
{
    struct lv_retry_cfg c = defaults();
    c.classes = 0;
    struct lv_retry_input in = retryable();
    in.kind = LV_FAIL_RESET;
    in.attempts = 3;
    in.sent = true;
    in.idempotent = false;
    in.replayable = false;
    in.deadline = in.now + in.delay;
    in.already_retrying = false;
    struct lv_retry_budget b = {.active = 100, .retrying = 100};

    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_NOT_RETRYABLE);
    c.classes = LV_FAILC_RESET;
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_ATTEMPTS);
    in.attempts = 2;
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_NOT_IDEMPOTENT);
    in.idempotent = true;
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_BODY_TOO_LARGE);
    in.replayable = true;
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_DEADLINE);
    in.deadline = in.now + in.delay + 1;
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_BUDGET);
    b.retrying = 0;
    cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_NONE);
}

/* Each reason wins over every later one, pairwise. */
Test(retry_decide, each_reason_beats_every_later_one)
{
    enum { R_CLASS, R_ATTEMPTS, R_IDEMPOTENT, R_BODY, R_DEADLINE, R_BUDGET, R_N };
    const enum lv_retry_skip reason[R_N] = {LV_SKIP_NOT_RETRYABLE,  LV_SKIP_ATTEMPTS,
                                            LV_SKIP_NOT_IDEMPOTENT, LV_SKIP_BODY_TOO_LARGE,
                                            LV_SKIP_DEADLINE,       LV_SKIP_BUDGET};
    for (unsigned mask = 1; mask < (1u << R_N); mask++) {
        struct lv_retry_cfg c = defaults();
        struct lv_retry_input in = retryable();
        struct lv_retry_budget b = idle;
        if (mask & (1u << R_CLASS)) c.classes = 0;
        if (mask & (1u << R_ATTEMPTS)) in.attempts = c.max_attempts;
        if (mask & (1u << R_IDEMPOTENT)) in.idempotent = false;
        if (mask & (1u << R_BODY)) in.replayable = false;
        if (mask & (1u << R_DEADLINE)) in.deadline = in.now;
        if (mask & (1u << R_BUDGET)) b = (struct lv_retry_budget){.active = 10, .retrying = 10};
        unsigned first = (unsigned)__builtin_ctz(mask);
        cr_expect_eq(lv_retry_decide(&c, &in, &b), reason[first], "mask %#x: got %s, want %s", mask,
                     lv_retry_skip_name(lv_retry_decide(&c, &in, &b)),
                     lv_retry_skip_name(reason[first]));
    }
}

Test(retry_decide, is_pure)
{
    struct lv_retry_cfg c = defaults();
    struct lv_retry_input in = retryable();
    struct lv_retry_budget b = {.active = 7, .retrying = 2};
    struct lv_retry_cfg c0 = c;
    struct lv_retry_input in0 = in;
    struct lv_retry_budget b0 = b;
    for (int i = 0; i < 3; i++)
        cr_expect_eq(lv_retry_decide(&c, &in, &b), LV_SKIP_NONE);
    cr_expect_eq(memcmp(&c, &c0, sizeof(c)), 0);
    cr_expect_eq(memcmp(&in, &in0, sizeof(in)), 0);
    cr_expect_eq(memcmp(&b, &b0, sizeof(b)), 0, "the caller takes the slot, not decide");
}

/* --- names ------------------------------------------------------------------------ */

Test(retry_skip_name, tokens)
{
    cr_expect_str_eq(lv_retry_skip_name(LV_SKIP_NONE), "-");
    cr_expect_str_eq(lv_retry_skip_name(LV_SKIP_NOT_RETRYABLE), "not_retryable");
    cr_expect_str_eq(lv_retry_skip_name(LV_SKIP_ATTEMPTS), "attempts_exhausted");
    cr_expect_str_eq(lv_retry_skip_name(LV_SKIP_NOT_IDEMPOTENT), "not_idempotent");
    cr_expect_str_eq(lv_retry_skip_name(LV_SKIP_BODY_TOO_LARGE), "body_too_large");
    cr_expect_str_eq(lv_retry_skip_name(LV_SKIP_DEADLINE), "deadline");
    cr_expect_str_eq(lv_retry_skip_name(LV_SKIP_BUDGET), "budget");
}

Test(retry_skip_name, out_of_range_is_a_dash)
{
    cr_expect_str_eq(lv_retry_skip_name(LV_SKIP_COUNT), "-");
    cr_expect_str_eq(lv_retry_skip_name((enum lv_retry_skip)99), "-");
    unsigned huge = ~0u;
    cr_expect_str_eq(lv_retry_skip_name((enum lv_retry_skip)huge), "-");
}

Test(retry_skip_name, every_reason_has_a_distinct_token)
{
    for (int i = 0; i < LV_SKIP_COUNT; i++) {
        const char *a = lv_retry_skip_name((enum lv_retry_skip)i);
        cr_assert_not_null(a);
        cr_expect_gt(strlen(a), 0);
        for (int j = i + 1; j < LV_SKIP_COUNT; j++)
            cr_expect_str_neq(a, lv_retry_skip_name((enum lv_retry_skip)j), "%d and %d", i, j);
    }
}
