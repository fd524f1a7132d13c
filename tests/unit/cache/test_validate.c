/*
 * Validation (cache/validate.c): RFC 9110 §8.8.3.2's entity-tag comparison
 * table, conditional requests answered from a stored response (RFC 9111
 * §4.3.2), the validators levee sends (§4.3.1), which stored response a 304
 * updates (§4.3.4), and which methods invalidate (§4.4).
 */
#include <criterion/criterion.h>
#include <llhttp.h>

#include "cache/validate.h"
#include "unit/cache/fields_fixture.h"

static bool eq(const char *a, const char *b, bool strong)
{
    return lv_etag_eq(a, strlen(a), b, strlen(b), strong);
}

Test(etag, rfc_9110_comparison_table)
{
    /* | ETag 1 | ETag 2 | Strong Comparison | Weak Comparison | */
    cr_expect_not(eq("W/\"1\"", "W/\"1\"", true));
    cr_expect(eq("W/\"1\"", "W/\"1\"", false));
    cr_expect_not(eq("W/\"1\"", "W/\"2\"", true));
    cr_expect_not(eq("W/\"1\"", "W/\"2\"", false));
    cr_expect_not(eq("W/\"1\"", "\"1\"", true));
    cr_expect(eq("W/\"1\"", "\"1\"", false));
    cr_expect(eq("\"1\"", "\"1\"", true));
    cr_expect(eq("\"1\"", "\"1\"", false));
}

Test(etag, not_entity_tags)
{
    cr_expect_not(eq("1", "1", false));
    cr_expect_not(eq("\"1", "\"1", false));
    cr_expect_not(eq("w/\"1\"", "\"1\"", false)); /* W is case-sensitive */
    cr_expect_not(eq("\"a\"b\"", "\"a\"b\"", false));
    cr_expect(eq("\"\"", "\"\"", true)); /* an empty opaque-tag is one */
}

Test(etag, lists)
{
    const char *l = "\"a\", W/\"b\" ,\"c\"";
    cr_expect(lv_etag_list_match(l, strlen(l), "\"b\"", 3, false));
    cr_expect_not(lv_etag_list_match(l, strlen(l), "\"b\"", 3, true));
    cr_expect(lv_etag_list_match(l, strlen(l), "W/\"c\"", 5, false));
    cr_expect_not(lv_etag_list_match(l, strlen(l), "\"d\"", 3, false));
    cr_expect(lv_etag_list_match("*", 1, "\"zz\"", 4, true));
}

static struct lv_cache_meta meta_lm(int64_t last_modified, int64_t date)
{
    struct lv_cache_meta m;
    memset(&m, 0, sizeof(m));
    m.last_modified = last_modified;
    m.date = date;
    return m;
}

static bool not_modified(const struct lv_fields *req, const struct lv_fields *stored,
                         const struct lv_cache_meta *m)
{
    struct lv_cache_reqinfo rq;
    lv_cache_reqinfo_read(&rq, req, T0);
    return lv_cache_not_modified(req, &rq, stored, m, T0);
}

Test(conditional, if_none_match_weak_comparison)
{
    struct tfields q, s;
    struct lv_cache_meta m = meta_lm(LV_CACHE_NO_TIME, T0 / 1000);
    struct lv_fields *stored = TF(&s, "ETag: W/\"v1\"");
    cr_expect(not_modified(TF(&q, "If-None-Match: \"v1\""), stored, &m));
    cr_expect(not_modified(TF(&q, "If-None-Match: \"x\", W/\"v1\""), stored, &m));
    cr_expect(not_modified(TF(&q, "If-None-Match: \"x\"", "If-None-Match: \"v1\""), stored, &m));
    cr_expect(not_modified(TF(&q, "If-None-Match: *"), stored, &m));
    cr_expect_not(not_modified(TF(&q, "If-None-Match: \"v2\""), stored, &m));
}

Test(conditional, if_none_match_decides_alone)
{
    /* RFC 9110 §13.2.2: with If-None-Match, If-Modified-Since is ignored. */
    struct tfields q, s;
    struct lv_cache_meta m = meta_lm(T0 / 1000 - 100, T0 / 1000);
    struct lv_fields *stored = TF(&s, "ETag: \"v1\"", "Last-Modified: x");
    char ims[64];
    tf_date(ims, sizeof(ims), "If-Modified-Since", T0);
    cr_expect_not(not_modified(TF(&q, "If-None-Match: \"v2\"", ims), stored, &m));
    cr_expect(not_modified(TF(&q, ims), stored, &m));
}

Test(conditional, if_none_match_without_stored_etag)
{
    struct tfields q, s;
    struct lv_cache_meta m = meta_lm(LV_CACHE_NO_TIME, T0 / 1000);
    struct lv_fields *stored = TF(&s, "Content-Type: text/plain");
    cr_expect_not(not_modified(TF(&q, "If-None-Match: \"v1\""), stored, &m));
    cr_expect(not_modified(TF(&q, "If-None-Match: *"), stored, &m));
}

Test(conditional, if_modified_since)
{
    struct tfields q, s;
    struct lv_fields *stored = TF(&s, "Content-Type: text/plain");
    char ims[64];
    struct lv_cache_meta m = meta_lm(T0 / 1000 - 100, T0 / 1000);
    tf_date(ims, sizeof(ims), "If-Modified-Since", T0 - 100 * SEC);
    cr_expect(not_modified(TF(&q, ims), stored, &m));
    tf_date(ims, sizeof(ims), "If-Modified-Since", T0 - 101 * SEC);
    cr_expect_not(not_modified(TF(&q, ims), stored, &m));
    /* No Last-Modified: the stored Date (§4.3.2). */
    m = meta_lm(LV_CACHE_NO_TIME, T0 / 1000 - 50);
    tf_date(ims, sizeof(ims), "If-Modified-Since", T0 - 50 * SEC);
    cr_expect(not_modified(TF(&q, ims), stored, &m));
    tf_date(ims, sizeof(ims), "If-Modified-Since", T0 - 51 * SEC);
    cr_expect_not(not_modified(TF(&q, ims), stored, &m));
    /* A date in the future is not believed. */
    tf_date(ims, sizeof(ims), "If-Modified-Since", T0 + 3600 * SEC);
    cr_expect_not(not_modified(TF(&q, ims), stored, &m));
    /* No condition at all. */
    cr_expect_not(not_modified(TF_EMPTY(&q), stored, &m));
}

Test(conditional, fields_of_a_304)
{
    const char *kept[] = {"Cache-Control", "Content-Location", "Date", "ETag", "Expires",
                          "Vary",          "Last-Modified"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        cr_expect(lv_cache_field_in_304(kept[i], strlen(kept[i])), "%s", kept[i]);
    cr_expect_not(lv_cache_field_in_304("Content-Type", 12));
    cr_expect_not(lv_cache_field_in_304("Content-Encoding", 16));
}

Test(revalidation, validators_sent)
{
    struct tfields s;
    struct lv_cache_validators v;
    lv_cache_validators(TF(&s, "ETag: \"v1\"", "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT"), &v);
    cr_assert_not_null(v.etag);
    cr_expect_eq(v.etag_len, 4);
    cr_expect_eq(memcmp(v.etag, "\"v1\"", 4), 0);
    cr_assert_not_null(v.last_modified);
    cr_expect_eq(v.last_modified_len, 29);
    lv_cache_validators(TF(&s, "Content-Type: x"), &v);
    cr_expect_null(v.etag);
    cr_expect_null(v.last_modified);
}

Test(revalidation, which_304_updates)
{
    struct tfields s, n;
    struct lv_fields *stored =
        TF(&s, "ETag: \"v1\"", "Last-Modified: Sun, 06 Nov 1994 08:49:37 GMT");
    cr_expect(lv_cache_304_selects(stored, TF(&n, "ETag: \"v1\"")));
    cr_expect_not(lv_cache_304_selects(stored, TF(&n, "ETag: \"v2\"")));
    cr_expect(lv_cache_304_selects(stored, TF(&n, "ETag: W/\"v1\""))); /* weak: weak match */
    cr_expect(
        lv_cache_304_selects(stored, TF(&n, "Last-Modified: Sunday, 06-Nov-94 08:49:37 GMT")));
    cr_expect_not(
        lv_cache_304_selects(stored, TF(&n, "Last-Modified: Sun, 06 Nov 1994 08:49:38 GMT")));
    cr_expect(lv_cache_304_selects(stored, TF(&n, "Cache-Control: max-age=5")));
    /* A strong 304 ETag against a weak stored one: not the same. */
    stored = TF(&s, "ETag: W/\"v1\"");
    cr_expect_not(lv_cache_304_selects(stored, TF(&n, "ETag: \"v1\"")));
    stored = TF(&s, "Content-Type: x");
    cr_expect_not(lv_cache_304_selects(stored, TF(&n, "ETag: \"v1\"")));
}

Test(invalidation, unsafe_methods_with_success)
{
    cr_expect(lv_cache_invalidates(HTTP_POST, 200));
    cr_expect(lv_cache_invalidates(HTTP_PUT, 201));
    cr_expect(lv_cache_invalidates(HTTP_DELETE, 204));
    cr_expect(lv_cache_invalidates(HTTP_PATCH, 303));
    cr_expect(lv_cache_invalidates(HTTP_PURGE, 200)); /* safety unknown: unsafe */
    cr_expect_not(lv_cache_invalidates(HTTP_POST, 404));
    cr_expect_not(lv_cache_invalidates(HTTP_POST, 500));
    cr_expect_not(lv_cache_invalidates(HTTP_POST, 100));
    cr_expect_not(lv_cache_invalidates(HTTP_GET, 200));
    cr_expect_not(lv_cache_invalidates(HTTP_HEAD, 200));
    cr_expect_not(lv_cache_invalidates(HTTP_OPTIONS, 200));
    cr_expect_not(lv_cache_invalidates(HTTP_TRACE, 200));
}
