/* Durations, sizes and plain numbers as written in a config file (core/units.c). */
#include <criterion/criterion.h>
#include <uv.h>
#include <stdint.h>

#include "core/units.h"

/* The value parsed from s, failing the test when s is rejected. */
static uint64_t duration(const char *s)
{
    uint64_t ms = UINT64_MAX;
    cr_assert_eq(lv_parse_duration_ms(s, &ms), 0, "'%s' should be a duration", s);
    return ms;
}

static uint64_t size(const char *s)
{
    uint64_t v = UINT64_MAX;
    cr_assert_eq(lv_parse_size(s, &v), 0, "'%s' should be a size", s);
    return v;
}

static void duration_rejected(const char *s)
{
    uint64_t ms = 12345;
    cr_expect_eq(lv_parse_duration_ms(s, &ms), UV_EINVAL, "'%s' should not be a duration", s);
    cr_expect_eq(ms, 12345, "'%s': the output must be left alone", s);
}

static void size_rejected(const char *s)
{
    uint64_t v = 12345;
    cr_expect_eq(lv_parse_size(s, &v), UV_EINVAL, "'%s' should not be a size", s);
    cr_expect_eq(v, 12345, "'%s': the output must be left alone", s);
}

Test(units, duration_milliseconds)
{
    cr_expect_eq(duration("250ms"), 250);
    cr_expect_eq(duration("1ms"), 1);
}

Test(units, duration_seconds_minutes_hours)
{
    cr_expect_eq(duration("5s"), 5000);
    cr_expect_eq(duration("2m"), 120000);
    cr_expect_eq(duration("1h"), 3600000);
    cr_expect_eq(duration("1d"), 86400000);
}

Test(units, duration_fraction)
{
    cr_expect_eq(duration("1.5s"), 1500);
    cr_expect_eq(duration("0.25s"), 250);
}

Test(units, duration_microseconds_round_up)
{
    cr_expect_eq(duration("100us"), 1);
    cr_expect_eq(duration("1500us"), 2);
    cr_expect_eq(duration("2000us"), 2);
}

Test(units, duration_bare_number_is_seconds)
{
    cr_expect_eq(duration("30"), 30000);
    cr_expect_eq(duration("1"), 1000);
}

Test(units, duration_zero)
{
    cr_expect_eq(duration("0"), 0);
    cr_expect_eq(duration("0ms"), 0);
    cr_expect_eq(duration("0us"), 0);
}

Test(units, duration_suffix_case_insensitive)
{
    cr_expect_eq(duration("5S"), 5000);
    cr_expect_eq(duration("250MS"), 250);
}

Test(units, duration_rejects_garbage)
{
    duration_rejected("");
    duration_rejected("5x");
    duration_rejected("-1s");
    duration_rejected("1e3");
    duration_rejected(" 5s");
    duration_rejected("s");
    duration_rejected("0x10");
    duration_rejected("5s ");
    duration_rejected("5ss");
    duration_rejected("inf");
    duration_rejected("nan");
    duration_rejected("+5s");
}

Test(units, duration_rejects_null)
{
    uint64_t ms = 7;
    cr_expect_eq(lv_parse_duration_ms(NULL, &ms), UV_EINVAL);
    cr_expect_eq(ms, 7);
}

Test(units, duration_rejects_absurdly_large)
{
    duration_rejected("99999999999999999999d");
}

Test(units, size_bytes)
{
    cr_expect_eq(size("512"), 512);
    cr_expect_eq(size("0"), 0);
    cr_expect_eq(size("512b"), 512);
}

Test(units, size_binary_suffixes)
{
    cr_expect_eq(size("64KiB"), 65536);
    cr_expect_eq(size("1MiB"), 1048576);
    cr_expect_eq(size("2GiB"), 2147483648ull);
}

Test(units, size_short_suffixes_are_binary)
{
    cr_expect_eq(size("1K"), 1024);
    cr_expect_eq(size("1KB"), 1024);
    cr_expect_eq(size("1MB"), 1048576);
    cr_expect_eq(size("1M"), 1048576);
    cr_expect_eq(size("1G"), 1073741824ull);
    cr_expect_eq(size("1kib"), 1024);
}

Test(units, size_fraction_with_whole_result)
{
    cr_expect_eq(size("1.5K"), 1536);
    cr_expect_eq(size("0.5MiB"), 524288);
}

Test(units, size_rejects_garbage)
{
    size_rejected("1.3");
    size_rejected("x");
    size_rejected("-1");
    size_rejected("");
    size_rejected("1KiBB");
    size_rejected("1e3");
    size_rejected("0x10");
    size_rejected(" 1K");
    size_rejected("1T");
}

Test(units, u64_values)
{
    uint64_t v = 1;
    cr_assert_eq(lv_parse_u64("0", &v), 0);
    cr_expect_eq(v, 0);
    cr_assert_eq(lv_parse_u64("42", &v), 0);
    cr_expect_eq(v, 42);
    cr_assert_eq(lv_parse_u64("18446744073709551615", &v), 0);
    cr_expect_eq(v, UINT64_MAX);
}

Test(units, u64_rejects)
{
    const char *bad[] = {"",    "-1", "+1",  " 1",   "1 ",
                         "1.0", "1k", "abc", "0x10", "18446744073709551616"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t v = 99;
        cr_expect_eq(lv_parse_u64(bad[i], &v), UV_EINVAL, "'%s' should be rejected", bad[i]);
        cr_expect_eq(v, 99, "'%s': the output must be left alone", bad[i]);
    }
    uint64_t v = 99;
    cr_expect_eq(lv_parse_u64(NULL, &v), UV_EINVAL);
}

/* --- bugs: these fail until src/core/units.c is fixed ---------------------------- */

/* A decimal duration is exact to the millisecond: the value is computed in
 * floating point and then rounded up, so 2.007 * 1000 = 2007.0000000000002
 * becomes 2008 (731 of the 100000 values 0.000s..99.999s are off by one). */
Test(units_bugs, decimal_durations_are_exact)
{
    cr_expect_eq(duration("2.007s"), 2007);
    cr_expect_eq(duration("2.011s"), 2011);
    cr_expect_eq(duration("0.27m"), 16200);
    cr_expect_eq(duration("1.07m"), 64200);
}
