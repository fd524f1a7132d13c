/*
 * HTTP-date (http/date.c): the three formats of RFC 9110 §5.6.7, with the
 * RFC's own example instant, the two-digit-year rule, calendar edges, and
 * what is not a date.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "http/date.h"

#define EXAMPLE 784111777ll /* Sun, 06 Nov 1994 08:49:37 GMT */
#define NOW_2026 1780000000ll

static int64_t parse(const char *s, int64_t now)
{
    int64_t t = -1;
    cr_assert_eq(lv_http_date_parse(s, strlen(s), now, &t), 0, "'%s' not parsed", s);
    return t;
}

static bool bad(const char *s)
{
    int64_t t = 12345;
    return lv_http_date_parse(s, strlen(s), NOW_2026, &t) == -1 && t == 12345;
}

Test(http_date, rfc_9110_examples_are_the_same_instant)
{
    cr_expect_eq(parse("Sun, 06 Nov 1994 08:49:37 GMT", NOW_2026), EXAMPLE);
    cr_expect_eq(parse("Sunday, 06-Nov-94 08:49:37 GMT", 0), EXAMPLE);
    cr_expect_eq(parse("Sun Nov  6 08:49:37 1994", NOW_2026), EXAMPLE);
}

Test(http_date, formats_imf_fixdate)
{
    char out[LV_HTTP_DATE_LEN + 1];
    cr_expect_eq(lv_http_date_format(out, EXAMPLE), LV_HTTP_DATE_LEN);
    cr_expect_str_eq(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    lv_http_date_format(out, 0);
    cr_expect_str_eq(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    lv_http_date_format(out, 951782400); /* a leap day */
    cr_expect_str_eq(out, "Tue, 29 Feb 2000 00:00:00 GMT");
    lv_http_date_format(out, -1);
    cr_expect_str_eq(out, "Wed, 31 Dec 1969 23:59:59 GMT");
}

Test(http_date, round_trips)
{
    char out[LV_HTTP_DATE_LEN + 1];
    for (int64_t t = -86400 * 400; t < 4102444800ll; t += 86400 * 37 + 3671) {
        lv_http_date_format(out, t);
        cr_assert_eq(parse(out, NOW_2026), t, "%s", out);
    }
}

Test(http_date, two_digit_years_are_at_most_50_years_ahead)
{
    /* §5.6.7: more than 50 years in the future means the past century. */
    int64_t y2026 = NOW_2026;
    cr_expect_eq(parse("Sunday, 06-Nov-94 08:49:37 GMT", y2026), EXAMPLE);
    char out[LV_HTTP_DATE_LEN + 1];
    int64_t t = parse("Friday, 01-Jan-66 00:00:00 GMT", y2026); /* 2066: 40 years ahead */
    lv_http_date_format(out, t);
    cr_expect_str_eq(out, "Fri, 01 Jan 2066 00:00:00 GMT");
    t = parse("Thursday, 01-Jan-98 00:00:00 GMT", y2026); /* 2098 would be 72 years ahead */
    lv_http_date_format(out, t);
    cr_expect_str_eq(out, "Thu, 01 Jan 1998 00:00:00 GMT");
}

Test(http_date, whitespace_around_and_month_case)
{
    cr_expect_eq(parse("  Sun, 06 Nov 1994 08:49:37 GMT\t", NOW_2026), EXAMPLE);
    cr_expect_eq(parse("Sun, 06 NOV 1994 08:49:37 GMT", NOW_2026), EXAMPLE);
}

Test(http_date, not_dates)
{
    cr_expect(bad(""));
    cr_expect(bad("0"));
    cr_expect(bad("-1"));
    cr_expect(bad("Sun, 06 Nov 1994 08:49:37"));     /* no GMT */
    cr_expect(bad("Sun, 06 Nov 1994 08:49:37 UTC")); /* not GMT */
    cr_expect(bad("Sun, 6 Nov 1994 08:49:37 GMT"));  /* one-digit day */
    cr_expect(bad("Sun, 31 Nov 1994 08:49:37 GMT")); /* no such day */
    cr_expect(bad("Sun, 29 Feb 1900 08:49:37 GMT")); /* not a leap year */
    cr_expect(bad("Sun, 06 Nov 1994 24:00:00 GMT"));
    cr_expect(bad("Sun, 06 Nov 1994 08:60:00 GMT"));
    cr_expect(bad("Sun, 06 Foo 1994 08:49:37 GMT"));
    cr_expect(bad("Sun, 06 Nov 1994 08:49:37 GMT trailing"));
    cr_expect(bad("Sun Nov 6 08:49:37 1994")); /* asctime pads the day with a space */
    cr_expect(bad("1994-11-06T08:49:37Z"));
}

Test(http_date, leap_day_and_leap_second)
{
    cr_expect_eq(parse("Tue, 29 Feb 2000 00:00:00 GMT", NOW_2026), 951782400);
    cr_expect_eq(parse("Wed, 31 Dec 2008 23:59:60 GMT", NOW_2026), 1230768000);
}
