/*
 * The error log's rate limiter (core/log.c), with a fake clock: how many
 * lines pass, when, and the "suppressed" count the next line carries.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#define T0 1000000u /* an arbitrary monotonic start */

Test(log_limit, first_line_passes_then_one_a_second)
{
    struct lv_log_limit lim = {0};
    uint64_t n = 99;
    cr_expect(lv_log_limit_take(&lim, T0, &n));
    cr_expect_eq(n, 0);
    for (uint64_t t = T0; t < T0 + LV_LOG_LIMIT_MS; t += 100)
        cr_expect_not(lv_log_limit_take(&lim, t, &n), "at +%llu ms", (unsigned long long)(t - T0));
    cr_expect(lv_log_limit_take(&lim, T0 + LV_LOG_LIMIT_MS, &n));
    cr_expect_eq(n, 10, "the ten refused lines are reported with the next one");
    cr_expect_not(lv_log_limit_take(&lim, T0 + LV_LOG_LIMIT_MS + 999, &n));
    cr_expect(lv_log_limit_take(&lim, T0 + 2 * LV_LOG_LIMIT_MS, &n));
    cr_expect_eq(n, 1);
    cr_expect(lv_log_limit_take(&lim, T0 + 60000, &n), "after a quiet minute");
    cr_expect_eq(n, 0);
}

Test(log_limit, a_flood_writes_one_line_per_second)
{
    struct lv_log_limit lim = {0};
    uint64_t n, written = 0, reported = 0;
    /* A million events over ten seconds. */
    for (uint64_t i = 0; i < 1000000; i++) {
        if (lv_log_limit_take(&lim, T0 + i / 100000 * 1000 + (i % 100000) / 100, &n)) {
            written++;
            reported += n;
        }
    }
    cr_expect_eq(written, 10);
    cr_expect_eq(written + reported + atomic_load(&lim.suppressed), 1000000,
                 "every event is written or counted");
}

Test(log_limit, burst_then_one_a_second)
{
    struct lv_log_limit lim = {.burst = 3};
    uint64_t n;
    for (int i = 0; i < 3; i++)
        cr_expect(lv_log_limit_take(&lim, T0, &n), "line %d of the burst", i);
    cr_expect_not(lv_log_limit_take(&lim, T0, &n));
    cr_expect_not(lv_log_limit_take(&lim, T0 + 999, &n));
    cr_expect(lv_log_limit_take(&lim, T0 + 1000, &n));
    cr_expect_eq(n, 2);
    cr_expect_not(lv_log_limit_take(&lim, T0 + 1000, &n));
    /* Three quiet seconds refill the bucket. */
    for (int i = 0; i < 3; i++)
        cr_expect(lv_log_limit_take(&lim, T0 + 5000, &n), "line %d of the second burst", i);
    cr_expect_not(lv_log_limit_take(&lim, T0 + 5000, &n));
}

Test(log_limit, a_clock_at_zero_still_works)
{
    struct lv_log_limit lim = {0};
    uint64_t n;
    cr_expect(lv_log_limit_take(&lim, 0, &n));
    cr_expect_not(lv_log_limit_take(&lim, 0, &n));
    cr_expect(lv_log_limit_take(&lim, LV_LOG_LIMIT_MS, &n));
    cr_expect_eq(n, 1);
}

struct race {
    struct lv_log_limit *lim;
    uint64_t now;
    uint64_t passed, reported;
};

static void *take_many(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 20000; i++) {
        uint64_t n;
        if (lv_log_limit_take(r->lim, r->now, &n)) {
            r->passed++;
            r->reported += n;
        }
    }
    return NULL;
}

Test(log_limit, threads_share_one_limiter)
{
    struct lv_log_limit lim = {0};
    struct race rs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        rs[i] = (struct race){.lim = &lim, .now = T0};
        pthread_create(&th[i], NULL, take_many, &rs[i]);
    }
    uint64_t passed = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        passed += rs[i].passed;
    }
    cr_expect_eq(passed, 1, "one line for 80000 events at the same instant");
    uint64_t n;
    cr_expect(lv_log_limit_take(&lim, T0 + LV_LOG_LIMIT_MS, &n));
    cr_expect_eq(n, 80000 - 1);
}

/* --- the lines written -------------------------------------------------------- */

/* Points the log at a pipe; read() returns what was written so far. */
static int pipe_log(void)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    lv_log_set_fd(fds[1]);
    return fds[0];
}

static char *read_log(int fd, char *buf, size_t cap)
{
    lv_log_set_fd(-1); /* nothing more */
    ssize_t n = read(fd, buf, cap - 1);
    buf[n > 0 ? n : 0] = '\0';
    return buf;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

Test(log_limited, lines_carry_the_suppressed_count)
{
    int fd = pipe_log();
    struct lv_log_limit lim = {0};
    for (int i = 0; i < 5; i++)
        lv_log_limited_at(LV_LOG_WARN, &lim, T0 + (uint64_t)i, "accept failed: %s", "EMFILE");
    lv_log_limited_at(LV_LOG_WARN, &lim, T0 + 1000, "accept failed: %s", "EMFILE");
    lv_log_limited_at(LV_LOG_WARN, &lim, T0 + 1001, "accept failed: %s", "EMFILE");
    lv_log_limited_at(LV_LOG_WARN, &lim, T0 + 2000, "accept failed: %s", "EMFILE");
    char buf[4096];
    const char *out = read_log(fd, buf, sizeof(buf));
    cr_expect_eq(count(out, "\n"), 3, "%s", out);
    cr_expect_eq(count(out, " warn: accept failed: EMFILE\n"), 1, "%s", out);
    cr_expect_eq(count(out, "accept failed: EMFILE (4 similar lines suppressed)\n"), 1, "%s", out);
    cr_expect_eq(count(out, "accept failed: EMFILE (1 similar line suppressed)\n"), 1, "%s", out);
    close(fd);
}

Test(log_limited, a_level_not_logged_is_not_counted)
{
    int fd = pipe_log();
    lv_log_set_level(LV_LOG_WARN);
    struct lv_log_limit lim = {0};
    lv_log_limited_at(LV_LOG_WARN, &lim, T0, "first");
    for (int i = 0; i < 3; i++)
        lv_log_limited_at(LV_LOG_INFO, &lim, T0 + 1, "hidden");
    lv_log_limited_at(LV_LOG_WARN, &lim, T0 + 1000, "second");
    char buf[4096];
    const char *out = read_log(fd, buf, sizeof(buf));
    cr_expect_eq(count(out, "hidden"), 0, "%s", out);
    cr_expect_eq(count(out, "second\n"), 1, "nothing counted as suppressed: %s", out);
    close(fd);
}

Test(log_limited, a_long_line_is_cut_and_still_ends_with_a_newline)
{
    int fd = pipe_log();
    struct lv_log_limit lim = {0};
    static char big[3000];
    memset(big, 'x', sizeof(big) - 1);
    lv_log_limited_at(LV_LOG_ERROR, &lim, T0, "%s", big);
    lv_log_limited_at(LV_LOG_ERROR, &lim, T0, "%s", big);
    lv_log_limited_at(LV_LOG_ERROR, &lim, T0 + 1000, "%s", big);
    char buf[8192];
    const char *out = read_log(fd, buf, sizeof(buf));
    cr_expect_eq(count(out, "\n"), 2, "two lines");
    cr_expect_leq(strlen(out), 2 * 2048);
    cr_expect_eq(out[strlen(out) - 1], '\n');
    close(fd);
}

Test(log_ratelimited, the_macro_keeps_one_limiter_per_call_site)
{
    int fd = pipe_log();
    for (int i = 0; i < 100; i++)
        lv_log_ratelimited(LV_LOG_ERROR, "site A %d", i);
    for (int i = 0; i < 100; i++)
        lv_log_ratelimited_burst(LV_LOG_ERROR, 3, "site B %d", i);
    char buf[4096];
    const char *out = read_log(fd, buf, sizeof(buf));
    cr_expect_eq(count(out, "site A"), 1, "%s", out);
    cr_expect_eq(count(out, "site A 0\n"), 1, "%s", out);
    cr_expect_eq(count(out, "site B"), 3, "%s", out);
    close(fd);
}
