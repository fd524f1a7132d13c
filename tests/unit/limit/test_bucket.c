/*
 * The rate-limit algorithms (limit/bucket.c): the token bucket (GCRA on one
 * atomic word) and the two-window sliding window, every decision driven by
 * a fake clock: `now` is a plain number of microseconds the test advances.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "limit/bucket.h"

#define SEC 1000000ull
/* A start far from 0 and aligned on every window these tests use. */
#define T0 (1000 * SEC)

static struct lv_limit_cfg bucket_cfg(double rate, uint32_t burst)
{
    return (struct lv_limit_cfg){.rate = rate, .burst = burst};
}

static struct lv_limit_cfg window_cfg(uint32_t limit, uint64_t window_us)
{
    return (struct lv_limit_cfg){
        .rate = (double)limit * SEC / (double)window_us, .burst = limit, .window = window_us};
}

/* Takes from the bucket until it refuses (at most max tries); returns how
 * many were allowed. */
static unsigned drain(atomic_uint_fast64_t *tat, const struct lv_limit_cfg *c, uint64_t now,
                      unsigned max)
{
    struct lv_limit_result r;
    unsigned n = 0;
    for (unsigned i = 0; i < max; i++) {
        lv_bucket_take(tat, c, now, &r);
        if (!r.allowed) break;
        n++;
    }
    return n;
}

static unsigned drain_window(struct lv_window *w, const struct lv_limit_cfg *c, uint64_t now,
                             unsigned max)
{
    struct lv_limit_result r;
    unsigned n = 0;
    for (unsigned i = 0; i < max; i++) {
        lv_window_take(w, c, now, &r);
        if (!r.allowed) break;
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------- token bucket */

Test(bucket, fresh_bucket_allows_exactly_burst_at_one_instant)
{
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(10, 5); /* a token every 100 ms */
    struct lv_limit_result r;
    for (uint32_t i = 1; i <= 5; i++) {
        lv_bucket_take(&tat, &c, T0, &r);
        cr_expect(r.allowed, "take %u", i);
        cr_expect_eq(r.limit, 5);
        cr_expect_eq(r.remaining, 5 - i, "take %u: remaining %u", i, r.remaining);
        cr_expect_eq(r.reset_us, i * 100000ull, "take %u: reset %lu", i, (unsigned long)r.reset_us);
        cr_expect_eq(r.retry_us, 0);
    }
    lv_bucket_take(&tat, &c, T0, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.limit, 5);
    cr_expect_eq(r.remaining, 0);
    cr_expect_eq(r.retry_us, 100000, "the next token is 1/rate away, got %lu",
                 (unsigned long)r.retry_us);
    cr_expect_eq(r.reset_us, 500000, "the bucket is whole after burst/rate, got %lu",
                 (unsigned long)r.reset_us);
    /* A refusal costs nothing. */
    for (int i = 0; i < 100; i++)
        lv_bucket_take(&tat, &c, T0, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.retry_us, 100000);
}

Test(bucket, retry_us_is_exactly_when_the_next_token_comes)
{
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(10, 3);
    struct lv_limit_result r;
    cr_expect_eq(drain(&tat, &c, T0, 100), 3);
    lv_bucket_take(&tat, &c, T0 + 30000, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.retry_us, 70000);
    lv_bucket_take(&tat, &c, T0 + 30000 + 70000 - 1, &r);
    cr_expect_not(r.allowed, "1 µs before the token");
    cr_expect_eq(r.retry_us, 1);
    lv_bucket_take(&tat, &c, T0 + 30000 + 70000, &r);
    cr_expect(r.allowed, "at the token");
    lv_bucket_take(&tat, &c, T0 + 100000, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.retry_us, 100000);
}

Test(bucket, refills_at_rate)
{
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(10, 5);
    uint64_t now = T0;
    cr_expect_eq(drain(&tat, &c, now, 100), 5);
    for (unsigned k = 1; k <= 5; k++) {
        now += k * 100000; /* k tokens */
        cr_expect_eq(drain(&tat, &c, now, 100), k, "after %u/rate s", k);
    }
    now += 100000 - 1;
    cr_expect_eq(drain(&tat, &c, now, 100), 0, "1 µs short of a token");
    now += 1;
    cr_expect_eq(drain(&tat, &c, now, 100), 1);
    /* Tokens come one at a time at a steady rate: one take every 1/rate s
     * is always allowed, a second at the same instant is not. */
    for (int i = 0; i < 50; i++) {
        now += 100000;
        cr_expect_eq(drain(&tat, &c, now, 100), 1, "step %d", i);
    }
}

Test(bucket, never_more_than_burst_after_a_long_idle)
{
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(10, 5);
    cr_expect_eq(drain(&tat, &c, T0, 100), 5);
    cr_expect_eq(drain(&tat, &c, T0 + 3600 * SEC, 100), 5);
    cr_expect_eq(drain(&tat, &c, T0 + 3600 * SEC + 1000 * SEC, 100), 5);
    /* A partly used bucket also tops out at burst. */
    cr_expect_eq(drain(&tat, &c, T0 + 7200 * SEC, 2), 2);
    cr_expect_eq(drain(&tat, &c, T0 + 7200 * SEC + 10 * SEC, 100), 5);
}

Test(bucket, remaining_and_reset_after_each_take)
{
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(10, 5);
    struct lv_limit_result r;
    cr_expect_eq(drain(&tat, &c, T0, 3), 3); /* 2 tokens left */
    /* 150 ms later: 1.5 tokens came back, 3.5 left: one take leaves 2.5,
     * i.e. 2 whole requests. */
    uint64_t now = T0 + 150000;
    lv_bucket_take(&tat, &c, now, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.remaining, 2, "got %u", r.remaining);
    cr_expect_eq(r.reset_us, 250000, "2.5 tokens missing, got %lu", (unsigned long)r.reset_us);
    lv_bucket_take(&tat, &c, now, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.remaining, 1);
    cr_expect_eq(r.reset_us, 350000);
    lv_bucket_take(&tat, &c, now, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.remaining, 0, "half a token is not a request");
    cr_expect_eq(r.reset_us, 450000);
    lv_bucket_take(&tat, &c, now, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.retry_us, 50000, "the missing half token");
    cr_expect_eq(r.reset_us, 450000);
    lv_bucket_take(&tat, &c, now + 50000, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.remaining, 0);
    cr_expect_eq(r.reset_us, 500000);
}

Test(bucket, fractional_rate)
{
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(0.5, 2); /* a token every 2 s */
    struct lv_limit_result r;
    lv_bucket_take(&tat, &c, T0, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.remaining, 1);
    cr_expect_eq(r.reset_us, 2 * SEC);
    lv_bucket_take(&tat, &c, T0, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.remaining, 0);
    cr_expect_eq(r.reset_us, 4 * SEC);
    lv_bucket_take(&tat, &c, T0, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.retry_us, 2 * SEC);
    cr_expect_eq(drain(&tat, &c, T0 + 2 * SEC - 1, 10), 0);
    cr_expect_eq(drain(&tat, &c, T0 + 2 * SEC, 10), 1);
    cr_expect_eq(drain(&tat, &c, T0 + 3 * SEC, 10), 0);
    cr_expect_eq(drain(&tat, &c, T0 + 4 * SEC, 10), 1);
    cr_expect_eq(drain(&tat, &c, T0 + 100 * SEC, 10), 2);
}

Test(bucket, burst_one)
{
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(10, 1);
    struct lv_limit_result r;
    lv_bucket_take(&tat, &c, T0, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.limit, 1);
    cr_expect_eq(r.remaining, 0);
    cr_expect_eq(r.reset_us, 100000);
    lv_bucket_take(&tat, &c, T0 + 99999, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.retry_us, 1);
    cr_expect_eq(r.reset_us, 1);
    lv_bucket_take(&tat, &c, T0 + 100000, &r);
    cr_expect(r.allowed);
    cr_expect_eq(drain(&tat, &c, T0 + 100 * SEC, 10), 1);
}

Test(bucket, burst_zero_is_one)
{
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(10, 0);
    struct lv_limit_result r;
    lv_bucket_take(&tat, &c, T0, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.limit, 1);
    cr_expect_eq(drain(&tat, &c, T0, 10), 0);
}

Test(bucket, a_clock_starting_at_zero)
{
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(10, 4);
    cr_expect_eq(drain(&tat, &c, 0, 100), 4);
    cr_expect_eq(drain(&tat, &c, 100000, 100), 1);
}

Test(bucket, an_earlier_now_gets_no_extra_tokens)
{
    /* Workers read the clock at slightly different moments: a take with a
     * `now` older than the last one must not find tokens the bucket has
     * not earned. */
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(10, 5);
    cr_expect_eq(drain(&tat, &c, T0 + 10 * SEC, 100), 5);
    cr_expect_eq(drain(&tat, &c, T0, 100), 0);
    cr_expect_eq(drain(&tat, &c, T0 + 10 * SEC - 100000, 100), 0);
    cr_expect_eq(drain(&tat, &c, T0 + 10 * SEC + 100000, 100), 1);
}

Test(bucket, a_very_high_rate)
{
    /* More than a token per µs: the period is at least 1 µs. */
    atomic_uint_fast64_t tat = 0;
    struct lv_limit_cfg c = bucket_cfg(1e9, 3);
    cr_expect_eq(drain(&tat, &c, T0, 100), 3);
    cr_expect_eq(drain(&tat, &c, T0 + 1, 100), 1);
}

/* Many threads take from one bucket; the shared fake clock stands still
 * while they race and moves between rounds, so the total is exact. */
#define NTHREADS 8
#define TRIES 100 /* per thread and round: far more than a round allows */

struct race {
    atomic_uint_fast64_t tat;
    atomic_uint_fast64_t clock;
    atomic_uint allowed;
    struct lv_limit_cfg cfg;
    pthread_barrier_t go, done;
    int rounds;
};

static void *racer(void *arg)
{
    struct race *s = arg;
    for (int k = 0; k < s->rounds; k++) {
        pthread_barrier_wait(&s->go);
        uint64_t now = atomic_load(&s->clock);
        for (int i = 0; i < TRIES; i++) {
            struct lv_limit_result r;
            lv_bucket_take(&s->tat, &s->cfg, now, &r);
            if (r.allowed) atomic_fetch_add(&s->allowed, 1);
        }
        pthread_barrier_wait(&s->done);
    }
    return NULL;
}

Test(bucket, threads_never_exceed_burst_plus_refill)
{
    /* rate 1000/s: a token per ms; burst 50. */
    static const struct {
        uint64_t at;
        unsigned expect;
    } schedule[] = {
        {T0, 50},              /* a full bucket */
        {T0 + 10000, 10},      /* 10 ms: 10 tokens */
        {T0 + 10500, 0},       /* half a token */
        {T0 + 11000, 1},       /* the other half */
        {T0 + 11000, 0},       /* the same instant again */
        {T0 + 3600 * SEC, 50}, /* long idle: burst, no more */
        {T0 + 3600 * SEC + 37000, 37},
    };
    const int rounds = (int)(sizeof(schedule) / sizeof(schedule[0]));
    static struct race s;
    atomic_init(&s.tat, 0);
    atomic_init(&s.clock, 0);
    atomic_init(&s.allowed, 0);
    s.cfg = bucket_cfg(1000, 50);
    s.rounds = rounds;
    cr_assert_eq(pthread_barrier_init(&s.go, NULL, NTHREADS + 1), 0);
    cr_assert_eq(pthread_barrier_init(&s.done, NULL, NTHREADS + 1), 0);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, racer, &s), 0);
    unsigned total = 0, expect_total = 0;
    for (int k = 0; k < rounds; k++) {
        atomic_store(&s.clock, schedule[k].at);
        pthread_barrier_wait(&s.go);
        pthread_barrier_wait(&s.done);
        unsigned got = atomic_exchange(&s.allowed, 0);
        cr_expect_eq(got, schedule[k].expect, "round %d: %u allowed, expected %u", k, got,
                     schedule[k].expect);
        total += got;
        expect_total += schedule[k].expect;
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&s.go);
    pthread_barrier_destroy(&s.done);
    cr_expect_eq(total, expect_total);
}

/* The clock runs while they race: each take reads and advances it, so the
 * threads see interleaved, sometimes stale, times. The total can then only
 * be bounded: burst + rate × elapsed. */
#define FREE_TRIES 5000
#define STEP_US 10 /* the clock moves 10 µs per take, all threads together */

struct freerun {
    atomic_uint_fast64_t tat;
    atomic_uint_fast64_t clock;
    atomic_uint allowed;
    struct lv_limit_cfg cfg;
    pthread_barrier_t go;
};

static void *free_racer(void *arg)
{
    struct freerun *s = arg;
    pthread_barrier_wait(&s->go);
    for (int i = 0; i < FREE_TRIES; i++) {
        uint64_t now = atomic_fetch_add(&s->clock, STEP_US);
        struct lv_limit_result r;
        lv_bucket_take(&s->tat, &s->cfg, now, &r);
        if (r.allowed) atomic_fetch_add(&s->allowed, 1);
    }
    return NULL;
}

Test(bucket, threads_with_a_running_clock_stay_within_the_bound)
{
    static struct freerun s;
    atomic_init(&s.tat, 0);
    atomic_init(&s.clock, T0);
    atomic_init(&s.allowed, 0);
    s.cfg = bucket_cfg(1000, 20); /* a token per ms */
    cr_assert_eq(pthread_barrier_init(&s.go, NULL, NTHREADS), 0);
    pthread_t th[NTHREADS];
    for (int i = 0; i < NTHREADS; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, free_racer, &s), 0);
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&s.go);
    uint64_t elapsed = atomic_load(&s.clock) - T0; /* 8 × 5000 × 10 µs = 400 ms */
    cr_assert_eq(elapsed, (uint64_t)NTHREADS * FREE_TRIES * STEP_US);
    unsigned bound = 20 + (unsigned)(elapsed / 1000);
    unsigned got = atomic_load(&s.allowed);
    cr_expect_leq(got, bound, "%u allowed, at most %u possible", got, bound);
    cr_expect_geq(got, 20, "%u allowed", got);
}

/* -------------------------------------------------------------- sliding window */

Test(window, allows_the_limit_in_a_window_then_refuses)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(10, SEC);
    struct lv_limit_result r;
    for (uint32_t i = 1; i <= 10; i++) {
        lv_window_take(&w, &c, T0 + 100 * i, &r);
        cr_expect(r.allowed, "take %u", i);
        cr_expect_eq(r.limit, 10);
        cr_expect_eq(r.remaining, 10 - i, "take %u: remaining %u", i, r.remaining);
        cr_expect_eq(r.retry_us, 0);
    }
    lv_window_take(&w, &c, T0 + 5000, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.remaining, 0);
    cr_expect_eq(drain_window(&w, &c, T0 + SEC - 1, 100), 0, "still the same window");
}

Test(window, the_previous_window_decays_linearly)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(10, SEC);
    struct lv_limit_result r;
    /* 10 at the very end of window 1 ... */
    cr_expect_eq(drain_window(&w, &c, T0 + SEC - 1, 100), 10);
    /* ... weigh 10 at the start of window 2, so nothing fits ... */
    cr_expect_eq(drain_window(&w, &c, T0 + SEC, 100), 0);
    /* ... and 5 half way through it: 5 more. */
    uint64_t half = T0 + SEC + SEC / 2;
    for (uint32_t i = 1; i <= 5; i++) {
        lv_window_take(&w, &c, half, &r);
        cr_expect(r.allowed, "take %u", i);
        cr_expect_eq(r.remaining, 5 - i, "take %u: remaining %u", i, r.remaining);
    }
    lv_window_take(&w, &c, half, &r);
    cr_expect_not(r.allowed);
    /* 10 × (1 − x) + 5 + 1 <= 10 from x = 0.6: 100 ms later. */
    cr_expect_eq(r.retry_us, 100000, "got %lu", (unsigned long)r.retry_us);
    cr_expect_eq(r.reset_us, SEC / 2 + SEC, "window 2's requests count until window 3 ends");
    cr_expect_eq(drain_window(&w, &c, half + 100000 - 1, 100), 0);
    cr_expect_eq(drain_window(&w, &c, half + 100000, 100), 1);
    /* At 80 % only 2 of window 1's 10 weigh: 2 + 6 + 1 <= 10: two more. */
    cr_expect_eq(drain_window(&w, &c, T0 + SEC + 800000, 100), 2);
}

Test(window, a_quarter_of_the_previous_window)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(8, SEC);
    cr_expect_eq(drain_window(&w, &c, T0 + 200000, 100), 8);
    /* 75 % into window 2: 8 × 0.25 = 2 weigh, 6 fit. */
    cr_expect_eq(drain_window(&w, &c, T0 + SEC + 750000, 100), 6);
}

Test(window, retry_us_for_a_decaying_previous_window)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(10, SEC);
    struct lv_limit_result r;
    cr_expect_eq(drain_window(&w, &c, T0 + 500000, 100), 10);
    /* 10 % into window 2: 9 weigh, one more fits. */
    uint64_t now = T0 + SEC + 100000;
    cr_expect_eq(drain_window(&w, &c, now, 100), 1);
    lv_window_take(&w, &c, now, &r);
    cr_expect_not(r.allowed);
    /* 10 × (1 − x) + 1 + 1 <= 10 from x = 0.2. */
    cr_expect_eq(r.retry_us, 100000, "got %lu", (unsigned long)r.retry_us);
    cr_expect_eq(drain_window(&w, &c, now + r.retry_us - 1, 1), 0);
    cr_expect_eq(drain_window(&w, &c, now + r.retry_us, 1), 1);
}

/* retry_us promises a request will fit then (it becomes Retry-After). When
 * the current window is full, its count weighs fully at the start of the
 * next window and decays from there: the wait goes past the edge. */
Test(window, retry_us_when_the_current_window_is_full)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(10, SEC);
    struct lv_limit_result r;
    cr_expect_eq(drain_window(&w, &c, T0 + 100, 100), 10);
    lv_window_take(&w, &c, T0 + 100, &r);
    cr_expect_not(r.allowed);
    /* Next window starts in SEC − 100 µs, where 10 still weigh; from 10 %
     * into it 9 weigh and one fits. */
    uint64_t expect = SEC - 100 + 100000;
    cr_expect_eq(r.retry_us, expect, "retry in %lu µs, one more fits only in %lu µs",
                 (unsigned long)r.retry_us, (unsigned long)expect);
    struct lv_window probe = w;
    lv_window_take(&probe, &c, T0 + 100 + r.retry_us, &r);
    cr_expect(r.allowed, "a client that waits retry_us is refused again");
}

/* reset_us is "until the quota is whole again" (RateLimit's t): a request
 * just taken counts until the end of the next window. */
Test(window, reset_counts_the_request_just_taken)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(10, SEC);
    struct lv_limit_result r1, r2;
    lv_window_take(&w, &c, T0 + 100, &r1);
    lv_window_take(&w, &c, T0 + 100, &r2);
    cr_expect(r1.allowed);
    cr_expect(r2.allowed);
    cr_expect_eq(r2.reset_us, 2 * SEC - 100);
    cr_expect_eq(r1.reset_us, r2.reset_us,
                 "first take of a window says %lu, the second %lu: both requests weigh the same "
                 "until the end of the next window",
                 (unsigned long)r1.reset_us, (unsigned long)r2.reset_us);
}

Test(window, reset_when_only_the_previous_window_weighs)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(10, SEC);
    struct lv_limit_result r;
    cr_expect_eq(drain_window(&w, &c, T0 + 100, 100), 10);
    lv_window_take(&w, &c, T0 + SEC + 50000, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.reset_us, SEC - 50000, "window 1 stops counting when window 2 ends");
}

Test(window, forgets_everything_after_two_idle_windows)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(10, SEC);
    cr_expect_eq(drain_window(&w, &c, T0 + 999999, 100), 10);
    /* Half way through the next window half of it still weighs ... */
    cr_expect_eq(drain_window(&w, &c, T0 + SEC + SEC / 2, 100), 5);
    struct lv_window w2 = {0};
    cr_expect_eq(drain_window(&w2, &c, T0 + 999999, 100), 10);
    /* ... two windows later nothing does. */
    cr_expect_eq(drain_window(&w2, &c, T0 + 2 * SEC, 100), 10);
    cr_expect_eq(drain_window(&w2, &c, T0 + 50 * SEC + 3, 100), 10, "many idle windows");
}

Test(window, rolls_over_one_window_at_a_time)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(4, SEC);
    cr_expect_eq(drain_window(&w, &c, T0, 100), 4);
    cr_expect_eq(w.start, T0);
    cr_expect_eq(drain_window(&w, &c, T0 + SEC + SEC / 2, 100), 2); /* 4 × 0.5 weigh */
    cr_expect_eq(w.start, T0 + SEC);
    cr_expect_eq(w.prev, 4);
    cr_expect_eq(w.cur, 2);
    cr_expect_eq(drain_window(&w, &c, T0 + 2 * SEC + SEC / 2, 100), 3); /* 2 × 0.5 weigh */
    cr_expect_eq(w.start, T0 + 2 * SEC);
    cr_expect_eq(w.prev, 2);
}

/* Workers read the clock before taking the window's lock: a take may come
 * with a `now` just before the window another worker already rolled to. */
Test(window, a_stale_now_after_a_rollover)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(10, SEC);
    struct lv_limit_result r;
    cr_expect_eq(drain_window(&w, &c, T0 + SEC - 1, 100), 10);
    cr_expect_eq(drain_window(&w, &c, T0 + SEC + 1, 100), 0);
    lv_window_take(&w, &c, T0 + SEC - 5, &r);
    cr_expect_not(r.allowed, "no more lenient than the present");
    cr_expect_leq(r.retry_us, SEC + 100000, "retry %lu", (unsigned long)r.retry_us);
    cr_expect_leq(r.reset_us, 2 * SEC + 5, "reset %lu", (unsigned long)r.reset_us);
    cr_expect_eq(w.start, T0 + SEC, "the window does not move back");
}

Test(window, limit_one_and_the_default_window)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = {.rate = 1, .burst = 0, .window = 0}; /* 1 per second */
    struct lv_limit_result r;
    lv_window_take(&w, &c, T0, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.limit, 1);
    cr_expect_eq(r.remaining, 0);
    lv_window_take(&w, &c, T0 + 1, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(drain_window(&w, &c, T0 + 2 * SEC, 10), 1);
}

Test(window, a_clock_starting_at_zero)
{
    struct lv_window w = {0};
    struct lv_limit_cfg c = window_cfg(3, SEC);
    cr_expect_eq(drain_window(&w, &c, 0, 100), 3);
    cr_expect_eq(drain_window(&w, &c, 2 * SEC, 100), 3);
}
