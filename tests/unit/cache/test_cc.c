/*
 * Cache directives (cache/cc.c): Cache-Control as RFC 9111 §5.2 writes it,
 * with its error handling (§1.2.2, §4.2.1), and targeted fields as
 * Structured Fields dictionaries (RFC 9213 §2.1, RFC 8941 §3.2).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "cache/cc.h"

static struct lv_cc cc_of(const char *v)
{
    struct lv_cc cc;
    lv_cc_init(&cc);
    lv_cc_parse(&cc, v, strlen(v));
    return cc;
}

static int sf_of(const char *v, struct lv_cc *cc)
{
    lv_cc_init(cc);
    return lv_cc_parse_sf(cc, v, strlen(v));
}

Test(cc, nothing)
{
    struct lv_cc cc = cc_of("");
    cr_expect_eq(cc.flags, 0);
    cr_expect_eq(cc.max_age, LV_CC_ABSENT);
    cr_expect_eq(cc.s_maxage, LV_CC_ABSENT);
    cr_expect_eq(cc.max_stale, LV_CC_ABSENT);
    cr_expect_eq(cc.min_fresh, LV_CC_ABSENT);
    cr_expect_eq(cc.swr, LV_CC_ABSENT);
    cr_expect_eq(cc.sie, LV_CC_ABSENT);
}

Test(cc, response_directives)
{
    struct lv_cc cc = cc_of("public, max-age=600, s-maxage=60, must-revalidate, proxy-revalidate,"
                            " no-transform, immutable, must-understand, no-store,"
                            " stale-while-revalidate=30, stale-if-error=1200");
    cr_expect_eq(cc.flags, LV_CC_PUBLIC | LV_CC_MUST_REVALIDATE | LV_CC_PROXY_REVALIDATE |
                               LV_CC_NO_TRANSFORM | LV_CC_IMMUTABLE | LV_CC_MUST_UNDERSTAND |
                               LV_CC_NO_STORE);
    cr_expect_eq(cc.max_age, 600);
    cr_expect_eq(cc.s_maxage, 60);
    cr_expect_eq(cc.swr, 30);
    cr_expect_eq(cc.sie, 1200);
}

Test(cc, request_directives)
{
    struct lv_cc cc = cc_of("max-age=0, max-stale=5, min-fresh=10, no-cache, only-if-cached");
    cr_expect_eq(cc.flags, LV_CC_NO_CACHE | LV_CC_ONLY_IF_CACHED);
    cr_expect_eq(cc.max_age, 0);
    cr_expect_eq(cc.max_stale, 5);
    cr_expect_eq(cc.min_fresh, 10);
    /* max-stale without a value: any staleness (§5.2.1.2). */
    cc = cc_of("max-stale");
    cr_expect_eq(cc.max_stale, LV_CC_ANY);
}

Test(cc, names_are_case_insensitive_and_whitespace_is_allowed)
{
    struct lv_cc cc = cc_of("  Max-Age = 60 ,NO-STORE,,  Private");
    cr_expect_eq(cc.max_age, 60);
    cr_expect_eq(cc.flags, LV_CC_NO_STORE | LV_CC_PRIVATE);
}

Test(cc, quoted_arguments_are_accepted)
{
    /* §5.2: recipients accept both forms. */
    struct lv_cc cc = cc_of("max-age=\"60\", s-maxage=\"5\"");
    cr_expect_eq(cc.max_age, 60);
    cr_expect_eq(cc.s_maxage, 5);
}

Test(cc, invalid_lifetimes_make_the_response_stale)
{
    /* §4.2.1: invalid freshness information: treat as stale. */
    cr_expect_eq(cc_of("max-age=abc").max_age, 0);
    cr_expect_eq(cc_of("max-age=-1").max_age, 0);
    cr_expect_eq(cc_of("max-age=").max_age, 0);
    cr_expect_eq(cc_of("max-age").max_age, 0);
    cr_expect_eq(cc_of("s-maxage=1.5").s_maxage, 0);
    /* Two different values: stale; the same one twice: that value. */
    cr_expect_eq(cc_of("max-age=60, max-age=120").max_age, 0);
    cr_expect_eq(cc_of("max-age=60, max-age=60").max_age, 60);
    struct lv_cc cc;
    lv_cc_init(&cc);
    lv_cc_parse(&cc, "max-age=60", 10);
    lv_cc_parse(&cc, "max-age=30", 10); /* a second field line */
    cr_expect_eq(cc.max_age, 0);
}

Test(cc, invalid_optional_deltas_are_ignored)
{
    struct lv_cc cc = cc_of("stale-while-revalidate=x, stale-if-error=, min-fresh=-3");
    cr_expect_eq(cc.swr, LV_CC_ABSENT);
    cr_expect_eq(cc.sie, LV_CC_ABSENT);
    cr_expect_eq(cc.min_fresh, LV_CC_ABSENT);
}

Test(cc, huge_deltas_are_two_to_the_31)
{
    /* §1.2.2 */
    cr_expect_eq(cc_of("max-age=99999999999999999999999").max_age, LV_CC_DELTA_MAX);
    cr_expect_eq(cc_of("max-age=2147483648").max_age, LV_CC_DELTA_MAX);
    cr_expect_eq(cc_of("max-age=2147483647").max_age, 2147483647);
}

Test(cc, qualified_no_cache_and_private)
{
    struct lv_cc cc = cc_of("no-cache=\"Set-Cookie, X-Secret\", private=\"Authorization-Info\"");
    cr_expect_eq(cc.flags & (LV_CC_NO_CACHE | LV_CC_PRIVATE), 0);
    cr_expect_eq(cc.n_no_cache, 1);
    cr_expect_eq(cc.n_private, 1);
    cr_expect(lv_cc_names_has(cc.no_cache, cc.n_no_cache, "set-cookie", 10));
    cr_expect(lv_cc_names_has(cc.no_cache, cc.n_no_cache, "x-secret", 8));
    cr_expect_not(lv_cc_names_has(cc.no_cache, cc.n_no_cache, "x-secre", 7));
    cr_expect(lv_cc_names_has(cc.private_, cc.n_private, "Authorization-Info", 18));
    /* A token form too. */
    cc = cc_of("no-cache=Set-Cookie");
    cr_expect(lv_cc_names_has(cc.no_cache, cc.n_no_cache, "set-cookie", 10));
    /* Beyond LV_CC_QUAL_MAX lists: the stricter, unqualified reading. */
    cc = cc_of("private=\"a\", private=\"b\", private=\"c\", private=\"d\", private=\"e\"");
    cr_expect(cc.flags & LV_CC_PRIVATE);
}

Test(cc, a_comma_inside_quotes_does_not_split)
{
    struct lv_cc cc = cc_of("no-cache=\"a, max-age=5\", max-age=7");
    cr_expect_eq(cc.max_age, 7);
    cr_expect(lv_cc_names_has(cc.no_cache, cc.n_no_cache, "a", 1));
}

Test(cc, unknown_directives_are_ignored)
{
    struct lv_cc cc = cc_of("community=\"UCI\", foo, bar=1, max-age=5");
    cr_expect_eq(cc.flags, 0);
    cr_expect_eq(cc.max_age, 5);
}

Test(cc, garbage_does_not_stop_the_parse)
{
    struct lv_cc cc = cc_of("\"junk, max-age 5, =3, no-store");
    cr_expect_eq(cc.max_age, LV_CC_ABSENT);
    cr_expect(!(cc.flags & LV_CC_NO_STORE)); /* inside the unterminated quote */
    cc = cc_of("@@@, no-store, max-age 5");
    cr_expect(cc.flags & LV_CC_NO_STORE);
    cr_expect_eq(cc.max_age, LV_CC_ABSENT);
}

/* --- targeted fields (RFC 9213) ----------------------------------------------- */

Test(cc_sf, rfc_9213_examples)
{
    struct lv_cc cc;
    cr_assert_eq(sf_of("max-age=600", &cc), 0);
    cr_expect_eq(cc.max_age, 600);
    cr_assert_eq(sf_of("max-age=600, stale-while-revalidate=30", &cc), 0);
    cr_expect_eq(cc.swr, 30);
    cr_assert_eq(sf_of("no-store", &cc), 0);
    cr_expect(cc.flags & LV_CC_NO_STORE);
    cr_assert_eq(sf_of("no-cache=\"set-cookie\", private", &cc), 0);
    cr_expect(lv_cc_names_has(cc.no_cache, cc.n_no_cache, "set-cookie", 10));
    cr_expect(cc.flags & LV_CC_PRIVATE);
}

Test(cc_sf, booleans_and_wrong_types)
{
    struct lv_cc cc;
    cr_assert_eq(sf_of("no-store=?0, must-revalidate=?1", &cc), 0);
    cr_expect(!(cc.flags & LV_CC_NO_STORE)); /* false: absent */
    cr_expect(cc.flags & LV_CC_MUST_REVALIDATE);
    /* A string, token or decimal where an integer is wanted: ignored. */
    cr_assert_eq(sf_of("max-age=\"60\", s-maxage=1.5, stale-if-error=abc", &cc), 0);
    cr_expect_eq(cc.max_age, LV_CC_ABSENT);
    cr_expect_eq(cc.s_maxage, LV_CC_ABSENT);
    cr_expect_eq(cc.sie, LV_CC_ABSENT);
    cr_assert_eq(sf_of("max-age=-5", &cc), 0);
    cr_expect_eq(cc.max_age, LV_CC_ABSENT);
}

Test(cc_sf, last_member_wins)
{
    struct lv_cc cc;
    cr_assert_eq(sf_of("max-age=60, max-age=120", &cc), 0);
    cr_expect_eq(cc.max_age, 120);
}

Test(cc_sf, parameters_and_inner_lists_are_skipped)
{
    struct lv_cc cc;
    cr_assert_eq(sf_of("max-age=60;foo=bar;baz, x=(a b \"c\");q=1, no-cache", &cc), 0);
    cr_expect_eq(cc.max_age, 60);
    cr_expect(cc.flags & LV_CC_NO_CACHE);
    cr_assert_eq(sf_of("private;x, k=:aGVsbG8=:, d=@1659578233", &cc), 0);
    cr_expect(cc.flags & LV_CC_PRIVATE);
}

Test(cc_sf, invalid_dictionaries_are_refused_whole)
{
    struct lv_cc cc;
    cr_expect_eq(sf_of("", &cc), -1); /* empty: not usable */
    cr_expect_eq(sf_of("   ", &cc), -1);
    cr_expect_eq(sf_of("Max-Age=60", &cc), -1);  /* keys are lowercase */
    cr_expect_eq(sf_of("max-age=60,", &cc), -1); /* trailing comma */
    cr_expect_eq(sf_of("max-age=60 no-store", &cc), -1);
    cr_expect_eq(sf_of("max-age=\"60", &cc), -1);             /* unterminated string */
    cr_expect_eq(sf_of("max-age=1234567890123456", &cc), -1); /* 16 digits */
    cr_expect_eq(sf_of("a=(1 2", &cc), -1);
    cr_expect_eq(sf_of("a=?2", &cc), -1);
    cr_expect_eq(sf_of("a=\"\\x\"", &cc), -1); /* bad escape */
    cr_expect_eq(sf_of(", max-age=60", &cc), -1);
}
