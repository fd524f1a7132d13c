/* Numbers into text without printf (core/fmt.c), checked against snprintf. */
#include <criterion/criterion.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/fmt.h"

static uint64_t next(uint64_t *x) /* xorshift64: a fixed sequence */
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Values of every width: random bits cut to a random length, and edges. */
static uint64_t value(uint64_t *x, unsigned i)
{
    static const uint64_t edge[] = {
        0,         1, 9, 10, 15, 16, 99, 100, 999, 1000, 1001, UINT32_MAX, (uint64_t)UINT32_MAX + 1,
        UINT64_MAX};
    if (i < sizeof(edge) / sizeof(edge[0])) return edge[i];
    uint64_t v = next(x);
    return v >> (next(x) % 64);
}

Test(fmt, decimal_and_hex_match_printf)
{
    uint64_t x = 88172645463325252ull;
    for (unsigned i = 0; i < 20000; i++) {
        uint64_t v = value(&x, i);
        char got[32], want[32];
        size_t n = lv_fmt_u64(got, v);
        snprintf(want, sizeof(want), "%" PRIu64, v);
        cr_assert_eq(n, strlen(want));
        cr_assert_eq(memcmp(got, want, n), 0, "%" PRIu64 ": %.*s", v, (int)n, got);
        n = lv_fmt_hex(got, v);
        snprintf(want, sizeof(want), "%" PRIx64, v);
        cr_assert_eq(n, strlen(want));
        cr_assert_eq(memcmp(got, want, n), 0, "%" PRIx64 ": %.*s", v, (int)n, got);
        n = lv_fmt_hex_fixed(got, v, 16);
        snprintf(want, sizeof(want), "%016" PRIx64, v);
        cr_assert_eq(n, 16);
        cr_assert_eq(memcmp(got, want, n), 0, "%s: %.*s", want, (int)n, got);
    }
}

Test(fmt, fixed_hex_pads_and_cuts)
{
    char out[16];
    cr_assert_eq(lv_fmt_hex_fixed(out, 0xab, 4), 4);
    cr_expect_eq(memcmp(out, "00ab", 4), 0);
    cr_assert_eq(lv_fmt_hex_fixed(out, 0x12345, 4), 4);
    cr_expect_eq(memcmp(out, "2345", 4), 0, "the high digits are dropped");
}

Test(fmt, milli_matches_printf_of_thousandths)
{
    uint64_t x = 2463534242ull;
    for (unsigned i = 0; i < 20000; i++) {
        uint64_t v = value(&x, i) % 100000000000ull; /* exact in a double */
        char got[32], want[40];
        size_t n = lv_fmt_milli(got, v);
        snprintf(want, sizeof(want), "%" PRIu64 ".%03u", v / 1000, (unsigned)(v % 1000));
        cr_assert_eq(n, strlen(want));
        cr_assert_eq(memcmp(got, want, n), 0, "%s: %.*s", want, (int)n, got);
        snprintf(want, sizeof(want), "%.3f", (double)v / 1000);
        cr_assert_eq(memcmp(got, want, n), 0, "%%.3f says %s: %.*s", want, (int)n, got);
    }
}
