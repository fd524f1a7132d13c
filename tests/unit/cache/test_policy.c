/*
 * The caching rules (cache/policy.c) with a fake clock: storability (RFC
 * 9111 §3, §3.5, Set-Cookie), freshness lifetime (§4.2.1, §4.2.2,
 * default_ttl, RFC 9213 targeted fields), age (§4.2.3), reuse decisions
 * (§4, §5.2.1, RFC 5861) and what a stale copy may do on errors.
 */
#include <criterion/criterion.h>
#include <llhttp.h>

#include "cache/policy.h"
#include "unit/cache/fields_fixture.h"

static struct lv_cache_cfg cfg;

static void setup(void)
{
    lv_cache_cfg_init(&cfg);
    cfg.enabled = true;
}

static void teardown(void)
{
    lv_cache_cfg_dispose(&cfg);
}

TestSuite(policy, .init = setup, .fini = teardown);

static struct lv_cache_respinfo rs_of(uint16_t status, const struct lv_fields *f)
{
    struct lv_cache_respinfo rs;
    lv_cache_respinfo_read(&rs, &cfg, status, f, T0);
    return rs;
}

static struct lv_cache_reqinfo rq_of(const struct lv_fields *f)
{
    struct lv_cache_reqinfo rq;
    lv_cache_reqinfo_read(&rq, f, T0);
    return rq;
}

static enum lv_cache_nostore storable(uint16_t status, const struct lv_fields *resp)
{
    struct tfields t;
    struct lv_cache_reqinfo rq = rq_of(TF_EMPTY(&t));
    struct lv_cache_respinfo rs = rs_of(status, resp);
    return lv_cache_storable(&cfg, HTTP_GET, &rq, &rs, T0);
}

static int64_t lifetime(uint16_t status, const struct lv_fields *resp)
{
    struct lv_cache_respinfo rs = rs_of(status, resp);
    bool h;
    return lv_cache_lifetime(&cfg, &rs, T0, &h);
}

/* A stored response's meta from its fields, received at T0 (sent at T0). */
static struct lv_cache_meta meta_of(uint16_t status, const struct lv_fields *resp)
{
    struct lv_cache_respinfo rs = rs_of(status, resp);
    struct lv_cache_meta m;
    lv_cache_meta_init(&m, &cfg, &rs, T0, T0);
    return m;
}

/* --- storability -------------------------------------------------------------- */

Test(policy, only_get_responses_are_stored)
{
    struct tfields t, q;
    struct lv_cache_reqinfo rq = rq_of(TF_EMPTY(&q));
    struct lv_cache_respinfo rs = rs_of(200, TF(&t, "Cache-Control: max-age=60"));
    cr_expect_eq(lv_cache_storable(&cfg, HTTP_GET, &rq, &rs, T0), LV_STORE_OK);
    cr_expect_eq(lv_cache_storable(&cfg, HTTP_HEAD, &rq, &rs, T0), LV_NOSTORE_METHOD);
    cr_expect_eq(lv_cache_storable(&cfg, HTTP_POST, &rq, &rs, T0), LV_NOSTORE_METHOD);
}

Test(policy, request_no_store)
{
    struct tfields t, q;
    struct lv_cache_reqinfo rq = rq_of(TF(&q, "Cache-Control: no-store"));
    struct lv_cache_respinfo rs = rs_of(200, TF(&t, "Cache-Control: max-age=60"));
    cr_expect_eq(lv_cache_storable(&cfg, HTTP_GET, &rq, &rs, T0), LV_NOSTORE_REQUEST);
}

Test(policy, statuses)
{
    struct tfields t;
    /* Cacheable by default: stored with a validator or a lifetime. */
    cr_expect_eq(storable(200, TF(&t, "ETag: \"a\"")), LV_STORE_OK);
    cr_expect_eq(storable(404, TF(&t, "Cache-Control: max-age=10")), LV_STORE_OK);
    cr_expect_eq(storable(301, TF(&t, "Cache-Control: max-age=10")), LV_STORE_OK);
    /* Not by default: only with explicit freshness. */
    cr_expect_eq(storable(302, TF(&t, "ETag: \"a\"")), LV_NOSTORE_STATUS);
    cr_expect_eq(storable(302, TF(&t, "Cache-Control: max-age=10")), LV_STORE_OK);
    cr_expect_eq(storable(503, TF(&t, "Retry-After: 5")), LV_NOSTORE_STATUS);
    cr_expect_eq(storable(503, TF(&t, "Cache-Control: max-age=5")), LV_STORE_OK);
    cr_expect_eq(storable(500, TF(&t, "Cache-Control: public")), LV_NOSTORE_NO_FRESHNESS);
    /* Never: not final, partial, not modified. */
    cr_expect_eq(storable(100, TF(&t, "Cache-Control: max-age=10")), LV_NOSTORE_STATUS);
    cr_expect_eq(storable(206, TF(&t, "Cache-Control: max-age=10")), LV_NOSTORE_STATUS);
    cr_expect_eq(storable(304, TF(&t, "Cache-Control: max-age=10")), LV_NOSTORE_STATUS);
}

Test(policy, no_store_and_must_understand)
{
    struct tfields t;
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=60, no-store")), LV_NOSTORE_NO_STORE);
    /* §5.2.2.3: a cache that understands the status ignores no-store. */
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=60, no-store, must-understand")),
                 LV_STORE_OK);
    cr_expect_eq(storable(299, TF(&t, "Cache-Control: max-age=60, no-store, must-understand")),
                 LV_NOSTORE_STATUS);
    /* An unknown status with explicit freshness is storable (§3). */
    cr_expect_eq(storable(299, TF(&t, "Cache-Control: max-age=60")), LV_STORE_OK);
}

Test(policy, private_is_for_the_users_cache_only)
{
    struct tfields t;
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: private, max-age=60")), LV_NOSTORE_PRIVATE);
    /* The qualified form keeps the response, without the named fields. */
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: private=\"X-User\", max-age=60")),
                 LV_STORE_OK);
}

Test(policy, authorization_needs_an_explicit_permission)
{
    /* §3.5: public, s-maxage or must-revalidate. */
    struct tfields t, q;
    struct lv_cache_reqinfo rq = rq_of(TF(&q, "Authorization: Bearer x"));
    struct lv_cache_respinfo rs = rs_of(200, TF(&t, "Cache-Control: max-age=60"));
    cr_expect_eq(lv_cache_storable(&cfg, HTTP_GET, &rq, &rs, T0), LV_NOSTORE_AUTHORIZATION);
    const char *ok[] = {"Cache-Control: max-age=60, public", "Cache-Control: s-maxage=60",
                        "Cache-Control: max-age=60, must-revalidate"};
    for (int i = 0; i < 3; i++) {
        rs = rs_of(200, tf_fill(&t, (const char *const[]){ok[i], NULL}));
        cr_expect_eq(lv_cache_storable(&cfg, HTTP_GET, &rq, &rs, T0), LV_STORE_OK, "%s", ok[i]);
    }
}

Test(policy, set_cookie_only_when_shareable)
{
    struct tfields t;
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=60", "Set-Cookie: id=1")),
                 LV_NOSTORE_SET_COOKIE);
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=60, public", "Set-Cookie: id=1")),
                 LV_STORE_OK);
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: s-maxage=60", "Set-Cookie: id=1")),
                 LV_STORE_OK);
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=60, no-cache=\"Set-Cookie\"",
                                  "Set-Cookie: id=1")),
                 LV_STORE_OK);
    cr_expect_eq(
        storable(200, TF(&t, "Expires: Thu, 01 Jan 2099 00:00:00 GMT", "Set-Cookie2: id=1")),
        LV_NOSTORE_SET_COOKIE);
}

Test(policy, vary_star_never_matches)
{
    struct tfields t;
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=60", "Vary: Accept, *")),
                 LV_NOSTORE_VARY);
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=60", "Vary: Accept")), LV_STORE_OK);
}

Test(policy, too_large)
{
    struct tfields t;
    cfg.max_object_size = 1000;
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=60", "Content-Length: 1001")),
                 LV_NOSTORE_TOO_LARGE);
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=60", "Content-Length: 1000")),
                 LV_STORE_OK);
}

Test(policy, nothing_to_reuse_is_not_stored)
{
    struct tfields t;
    /* No lifetime, no validator: it could never answer anything. */
    cr_expect_eq(storable(200, TF(&t, "Content-Type: text/plain")), LV_NOSTORE_NO_FRESHNESS);
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=0")), LV_NOSTORE_NO_FRESHNESS);
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: no-cache, max-age=60")),
                 LV_NOSTORE_NO_FRESHNESS);
    /* With a validator it can be revalidated; with stale-if-error it can
     * answer when the origin fails; with a default_ttl it is fresh. */
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: no-cache", "ETag: \"x\"")), LV_STORE_OK);
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=0, stale-if-error=60")), LV_STORE_OK);
    cfg.default_ttl = 5000;
    cr_expect_eq(storable(200, TF(&t, "Content-Type: text/plain")), LV_STORE_OK);
}

Test(policy, nostore_names)
{
    cr_expect_str_eq(lv_cache_nostore_name(LV_NOSTORE_SET_COOKIE), "set_cookie");
    cr_expect_str_eq(lv_cache_nostore_name(LV_STORE_OK), "stored");
    for (int i = 0; i < LV_NOSTORE__COUNT; i++)
        cr_expect_not_null(lv_cache_nostore_name(i));
    cr_expect_str_eq(lv_cache_nostore_name(LV_NOSTORE__COUNT), "unknown");
}

/* --- freshness lifetime ---------------------------------------------------------- */

Test(policy, s_maxage_then_max_age_then_expires)
{
    struct tfields t;
    char date[64], exp[64];
    tf_date(date, sizeof(date), "Date", T0);
    tf_date(exp, sizeof(exp), "Expires", T0 + 300 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, "Cache-Control: max-age=60, s-maxage=30", date, exp)),
                 30 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, "Cache-Control: max-age=60", date, exp)), 60 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, date, exp)), 300 * SEC);
}

Test(policy, expires_minus_date)
{
    struct tfields t;
    char date[64], exp[64];
    /* Expires is relative to the origin's Date, not to levee's clock. */
    tf_date(date, sizeof(date), "Date", T0 - 3600 * SEC);
    tf_date(exp, sizeof(exp), "Expires", T0 - 3600 * SEC + 120 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, date, exp)), 120 * SEC);
    /* Without Date: the response time. */
    tf_date(exp, sizeof(exp), "Expires", T0 + 90 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, exp)), 90 * SEC);
    /* In the past, invalid (§5.3: "0" is already expired), or two different. */
    tf_date(date, sizeof(date), "Date", T0);
    tf_date(exp, sizeof(exp), "Expires", T0 - 90 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, date, exp)), 0);
    cr_expect_eq(lifetime(200, TF(&t, "Expires: 0")), 0);
    cr_expect_eq(storable(200, TF(&t, "Expires: 0")), LV_NOSTORE_NO_FRESHNESS);
    tf_date(exp, sizeof(exp), "Expires", T0 + 90 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, exp, "Expires: Thu, 01 Jan 2099 00:00:00 GMT")), 0);
}

Test(policy, heuristic_is_ten_percent_of_last_modified_capped)
{
    struct tfields t;
    char date[64], lm[64];
    tf_date(date, sizeof(date), "Date", T0);
    tf_date(lm, sizeof(lm), "Last-Modified", T0 - 1000 * SEC);
    struct lv_cache_respinfo rs = rs_of(200, TF(&t, date, lm));
    bool h = false;
    cr_expect_eq(lv_cache_lifetime(&cfg, &rs, T0, &h), 100 * SEC);
    cr_expect(h);
    tf_date(lm, sizeof(lm), "Last-Modified", T0 - 365 * 86400 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, date, lm)), LV_CACHE_HEURISTIC_MAX);
    /* A Last-Modified after Date says nothing. */
    tf_date(lm, sizeof(lm), "Last-Modified", T0 + 1000 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, date, lm)), 0);
    /* Only for statuses cacheable by default, or public responses. */
    tf_date(lm, sizeof(lm), "Last-Modified", T0 - 1000 * SEC);
    cr_expect_eq(lifetime(302, TF(&t, date, lm)), 0);
    cr_expect_eq(lifetime(302, TF(&t, date, lm, "Cache-Control: public")), 100 * SEC);
    /* Never with explicit freshness (§4.2.2). */
    cr_expect_eq(lifetime(200, TF(&t, date, lm, "Cache-Control: max-age=0")), 0);
}

Test(policy, default_ttl_replaces_the_heuristic)
{
    struct tfields t;
    char date[64], lm[64];
    tf_date(date, sizeof(date), "Date", T0);
    tf_date(lm, sizeof(lm), "Last-Modified", T0 - 1000 * SEC);
    cfg.default_ttl = 7 * SEC;
    cr_expect_eq(lifetime(200, TF(&t, date, lm)), 7 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, date)), 7 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, date, "Cache-Control: max-age=3")), 3 * SEC);
    cr_expect_eq(lifetime(302, TF(&t, date)), 0);
}

Test(policy, targeted_field_takes_precedence)
{
    /* RFC 9213 §3.1: CDNs use 600, other caches 60. */
    struct tfields t;
    cr_expect_eq(
        lifetime(200, TF(&t, "Cache-Control: max-age=60", "CDN-Cache-Control: max-age=600")),
        600 * SEC);
    /* It replaces Cache-Control whole: no-store there no longer applies. */
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: no-store", "CDN-Cache-Control: max-age=600")),
                 LV_STORE_OK);
    cr_expect_eq(storable(200, TF(&t, "Cache-Control: max-age=600", "CDN-Cache-Control: no-store")),
                 LV_NOSTORE_NO_STORE);
    /* ... and Expires. */
    cr_expect_eq(lifetime(200, TF(&t, "Expires: Thu, 01 Jan 2099 00:00:00 GMT",
                                  "CDN-Cache-Control: must-revalidate")),
                 0);
    /* An invalid or empty one is ignored: Cache-Control applies. */
    cr_expect_eq(
        lifetime(200, TF(&t, "Cache-Control: max-age=60", "CDN-Cache-Control: Max-Age=600")),
        60 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, "Cache-Control: max-age=60", "CDN-Cache-Control: ")),
                 60 * SEC);
    /* Field lines combine; one invalid line voids the field. */
    cr_expect_eq(lifetime(200, TF(&t, "CDN-Cache-Control: max-age=5", "CDN-Cache-Control: public")),
                 5 * SEC);
    cr_expect_eq(lifetime(200, TF(&t, "Cache-Control: max-age=60", "CDN-Cache-Control: max-age=5",
                                  "CDN-Cache-Control: ;")),
                 60 * SEC);
}

Test(policy, targeted_fields_in_configured_order)
{
    struct tfields t;
    lv_cache_cfg_dispose(&cfg);
    static char a[] = "Levee-Cache-Control", b[] = "CDN-Cache-Control";
    char *targets[] = {a, b};
    cfg.targets = targets;
    cfg.ntargets = 2;
    struct lv_fields *f = TF(&t, "CDN-Cache-Control: max-age=600", "Levee-Cache-Control: max-age=6",
                             "Cache-Control: max-age=60");
    struct lv_cache_respinfo rs = rs_of(200, f);
    cr_expect_eq(rs.target, 0);
    cr_expect_eq(rs.cc.max_age, 6);
    /* Fields not on the list change nothing (§2.1). */
    cfg.ntargets = 0;
    rs = rs_of(200, f);
    cr_expect_eq(rs.target, -1);
    cr_expect_eq(rs.cc.max_age, 60);
    cfg.targets = NULL;
}

/* --- age (§4.2.3) ------------------------------------------------------------------ */

Test(policy, age_calculation)
{
    /* Sent at T0, answered at T0+2s, Date T0, Age 10: the corrected age
     * value (10 + 2) beats the apparent age (2). */
    cr_expect_eq(lv_cache_initial_age(10, T0 / 1000, T0, T0 + 2 * SEC), 12 * SEC);
    /* The origin's Date an hour ago, no Age: the apparent age wins. */
    cr_expect_eq(lv_cache_initial_age(0, T0 / 1000 - 3600, T0, T0 + 2 * SEC), 3602 * SEC);
    /* A Date in the future (clock skew): no negative age. */
    cr_expect_eq(lv_cache_initial_age(0, T0 / 1000 + 3600, T0, T0 + 2 * SEC), 2 * SEC);
    /* No Date at all. */
    cr_expect_eq(lv_cache_initial_age(5, LV_CACHE_NO_TIME, T0, T0), 5 * SEC);
    /* A response time before the request time (a clock step): no delay. */
    cr_expect_eq(lv_cache_initial_age(0, LV_CACHE_NO_TIME, T0, T0 - SEC), 0);
}

Test(policy, current_age_grows_with_resident_time)
{
    struct tfields t;
    char date[64];
    tf_date(date, sizeof(date), "Date", T0);
    struct lv_cache_respinfo rs = rs_of(200, TF(&t, date, "Age: 10", "Cache-Control: max-age=60"));
    struct lv_cache_meta m;
    lv_cache_meta_init(&m, &cfg, &rs, T0, T0 + 2 * SEC);
    cr_expect_eq(lv_cache_age(&m, T0 + 2 * SEC), 12 * SEC);
    cr_expect_eq(lv_cache_age(&m, T0 + 7 * SEC), 17 * SEC);
    cr_expect_eq(lv_cache_age_seconds(&m, T0 + 7500), 17);
    cr_expect_eq(lv_cache_ttl(&m, T0 + 7 * SEC), 43 * SEC);
    /* The clock stepped back: resident time 0, not negative. */
    cr_expect_eq(lv_cache_age(&m, T0 - 100 * SEC), 12 * SEC);
    /* The Age field is capped at 2^31 (§5.1). */
    rs.age = LV_CC_DELTA_MAX;
    lv_cache_meta_init(&m, &cfg, &rs, T0, T0);
    cr_expect_eq(lv_cache_age_seconds(&m, T0 + 1000 * SEC), LV_CC_DELTA_MAX);
}

Test(policy, invalid_age_is_zero)
{
    struct tfields t;
    cr_expect_eq(rs_of(200, TF(&t, "Age: abc")).age, 0);
    cr_expect_eq(rs_of(200, TF(&t, "Age: -5")).age, 0);
    cr_expect_eq(rs_of(200, TF(&t, "Age: 7", "Age: 9")).age, 7);
}

/* --- reuse -------------------------------------------------------------------------- */

static enum lv_cache_use use(const struct lv_cache_meta *m, const char *req_cc, int64_t now,
                             bool *by_request)
{
    struct tfields q;
    struct lv_cache_reqinfo rq =
        rq_of(req_cc ? tf_fill(&q, (const char *const[]){req_cc, NULL}) : TF_EMPTY(&q));
    bool br;
    enum lv_cache_use u = lv_cache_usable(m, &rq, now, &br);
    if (by_request) *by_request = br;
    return u;
}

Test(policy, fresh_then_stale)
{
    struct tfields t;
    struct lv_cache_meta m = meta_of(200, TF(&t, "Cache-Control: max-age=60", "ETag: \"1\""));
    bool br;
    cr_expect_eq(use(&m, NULL, T0, NULL), LV_USE_FRESH);
    cr_expect_eq(use(&m, NULL, T0 + 59999, NULL), LV_USE_FRESH);
    /* §4.2: fresh while lifetime > age. */
    cr_expect_eq(use(&m, NULL, T0 + 60 * SEC, &br), LV_USE_REVALIDATE);
    cr_expect_not(br);
}

Test(policy, request_directives)
{
    struct tfields t;
    struct lv_cache_meta m = meta_of(200, TF(&t, "Cache-Control: max-age=60"));
    bool br;
    cr_expect_eq(use(&m, "Cache-Control: no-cache", T0, &br), LV_USE_REVALIDATE);
    cr_expect(br);
    /* max-age: older than that is not accepted. */
    cr_expect_eq(use(&m, "Cache-Control: max-age=10", T0 + 10 * SEC, NULL), LV_USE_FRESH);
    cr_expect_eq(use(&m, "Cache-Control: max-age=10", T0 + 10001, &br), LV_USE_REVALIDATE);
    cr_expect(br);
    cr_expect_eq(use(&m, "Cache-Control: max-age=0", T0 + 1, NULL), LV_USE_REVALIDATE);
    /* min-fresh: fresh for at least that much longer. */
    cr_expect_eq(use(&m, "Cache-Control: min-fresh=20", T0 + 40 * SEC, NULL), LV_USE_FRESH);
    cr_expect_eq(use(&m, "Cache-Control: min-fresh=20", T0 + 40001, NULL), LV_USE_REVALIDATE);
    /* max-stale: stale up to that much is fine; without a value, any. */
    cr_expect_eq(use(&m, "Cache-Control: max-stale=30", T0 + 90 * SEC, NULL), LV_USE_STALE);
    cr_expect_eq(use(&m, "Cache-Control: max-stale=30", T0 + 90001, NULL), LV_USE_REVALIDATE);
    cr_expect_eq(use(&m, "Cache-Control: max-stale", T0 + 86400 * SEC, NULL), LV_USE_STALE);
    /* Pragma: no-cache, when there is no Cache-Control. */
    cr_expect_eq(use(&m, "Pragma: no-cache", T0, NULL), LV_USE_REVALIDATE);
}

Test(policy, pragma_yields_to_cache_control)
{
    struct tfields q;
    struct lv_cache_reqinfo rq = rq_of(TF(&q, "Pragma: no-cache", "Cache-Control: max-stale"));
    cr_expect(!(rq.cc.flags & LV_CC_NO_CACHE));
    rq = rq_of(TF(&q, "Pragma: foo, no-cache"));
    cr_expect(rq.cc.flags & LV_CC_NO_CACHE);
}

Test(policy, must_revalidate_beats_max_stale)
{
    struct tfields t;
    const char *never_stale[] = {"Cache-Control: max-age=60, must-revalidate",
                                 "Cache-Control: max-age=60, proxy-revalidate",
                                 "Cache-Control: s-maxage=60"};
    for (int i = 0; i < 3; i++) {
        struct lv_cache_meta m =
            meta_of(200, tf_fill(&t, (const char *const[]){never_stale[i], NULL}));
        cr_expect_eq(use(&m, "Cache-Control: max-stale", T0 + 61 * SEC, NULL), LV_USE_REVALIDATE,
                     "%s", never_stale[i]);
        cr_expect_eq(use(&m, NULL, T0 + 59 * SEC, NULL), LV_USE_FRESH);
    }
}

Test(policy, no_cache_response_is_always_validated)
{
    struct tfields t;
    struct lv_cache_meta m =
        meta_of(200, TF(&t, "Cache-Control: no-cache, max-age=60", "ETag: \"1\""));
    cr_expect_eq(use(&m, NULL, T0, NULL), LV_USE_REVALIDATE);
    cr_expect_eq(use(&m, "Cache-Control: max-stale", T0, NULL), LV_USE_REVALIDATE);
}

Test(policy, stale_while_revalidate_rfc_5861_example)
{
    /* "max-age=600, stale-while-revalidate=30": fresh 600 s, then served
     * stale while revalidating for 30 s, then truly stale. */
    struct tfields t;
    struct lv_cache_meta m =
        meta_of(200, TF(&t, "Cache-Control: max-age=600, stale-while-revalidate=30"));
    cr_expect_eq(use(&m, NULL, T0 + 599 * SEC, NULL), LV_USE_FRESH);
    cr_expect_eq(use(&m, NULL, T0 + 600 * SEC, NULL), LV_USE_STALE_REFRESH);
    cr_expect_eq(use(&m, NULL, T0 + 630 * SEC, NULL), LV_USE_STALE_REFRESH);
    cr_expect_eq(use(&m, NULL, T0 + 630 * SEC + 1, NULL), LV_USE_REVALIDATE);
    /* Not with must-revalidate. */
    m = meta_of(200, TF(&t, "Cache-Control: max-age=600, stale-while-revalidate=30, "
                            "must-revalidate"));
    cr_expect_eq(use(&m, NULL, T0 + 610 * SEC, NULL), LV_USE_REVALIDATE);
}

static bool on_error(const struct lv_cache_meta *m, const char *req_cc, int64_t now)
{
    struct tfields q;
    struct lv_cache_reqinfo rq =
        rq_of(req_cc ? tf_fill(&q, (const char *const[]){req_cc, NULL}) : TF_EMPTY(&q));
    return lv_cache_stale_on_error(&cfg, m, &rq, now);
}

Test(policy, stale_if_error_rfc_5861_example)
{
    /* "max-age=600, stale-if-error=1200": usable for 1200 s more if an
     * error is encountered. */
    struct tfields t;
    cfg.serve_stale_on_error = 0;
    struct lv_cache_meta m =
        meta_of(200, TF(&t, "Cache-Control: max-age=600, stale-if-error=1200"));
    cr_expect(on_error(&m, NULL, T0 + 1000 * SEC));
    cr_expect(on_error(&m, NULL, T0 + 1800 * SEC));
    cr_expect_not(on_error(&m, NULL, T0 + 1800 * SEC + 1));
    /* RFC 5861 §4: "regardless of other freshness information". */
    m = meta_of(200, TF(&t, "Cache-Control: max-age=600, stale-if-error=1200, must-revalidate"));
    cr_expect(on_error(&m, NULL, T0 + 1000 * SEC));
}

Test(policy, serve_stale_on_error_extends_it)
{
    struct tfields t;
    cfg.serve_stale_on_error = 3600 * SEC;
    struct lv_cache_meta m = meta_of(200, TF(&t, "Cache-Control: max-age=60", "ETag: \"1\""));
    cr_expect(on_error(&m, NULL, T0 + 60 * SEC + 3600 * SEC));
    cr_expect_not(on_error(&m, NULL, T0 + 60 * SEC + 3600 * SEC + 1));
    /* Never where a directive forbids serving it stale (§4.2.4). */
    const char *strict[] = {"Cache-Control: max-age=60, must-revalidate",
                            "Cache-Control: max-age=60, proxy-revalidate",
                            "Cache-Control: s-maxage=60", "Cache-Control: no-cache, max-age=60"};
    for (int i = 0; i < 4; i++) {
        struct tfields u;
        m = meta_of(200, tf_fill(&u, (const char *const[]){strict[i], "ETag: \"1\"", NULL}));
        cr_expect_not(on_error(&m, NULL, T0 + 61 * SEC), "%s", strict[i]);
    }
    /* Off: only the directives decide. */
    cfg.serve_stale_on_error = 0;
    m = meta_of(200, TF(&t, "Cache-Control: max-age=60", "ETag: \"1\""));
    cr_expect_not(on_error(&m, NULL, T0 + 61 * SEC));
    /* The request's own stale-if-error. */
    cr_expect(on_error(&m, "Cache-Control: stale-if-error=10", T0 + 70 * SEC));
    cr_expect_not(on_error(&m, "Cache-Control: stale-if-error=10", T0 + 70001));
}

Test(policy, fresh_copy_answers_a_forced_validation_that_failed)
{
    /* The request said no-cache, the origin is down, the copy is fresh:
     * answering with it is not answering stale. Not for no-cache
     * responses, which are never used unvalidated. */
    struct tfields t;
    cfg.serve_stale_on_error = 0;
    struct lv_cache_meta m = meta_of(200, TF(&t, "Cache-Control: max-age=60, must-revalidate"));
    cr_expect(on_error(&m, "Cache-Control: no-cache", T0 + 10 * SEC));
    m = meta_of(200, TF(&t, "Cache-Control: no-cache, max-age=60", "ETag: \"1\""));
    cr_expect_not(on_error(&m, NULL, T0 + 10 * SEC));
}

/* --- the request summary -------------------------------------------------------------- */

Test(policy, reqinfo)
{
    struct tfields q;
    struct lv_cache_reqinfo rq =
        rq_of(TF(&q, "Range: bytes=0-1", "Authorization: x", "If-None-Match: \"a\"",
                 "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT"));
    cr_expect(rq.range);
    cr_expect(rq.authorization);
    cr_expect(rq.inm);
    cr_expect(rq.ims);
    cr_expect_eq(rq.ims_time, 784111777);
    rq = rq_of(TF(&q, "If-Match: \"a\""));
    cr_expect(rq.preconditions);
    rq = rq_of(TF(&q, "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT"));
    cr_expect(rq.preconditions);
    rq = rq_of(TF(&q, "If-Range: \"a\""));
    cr_expect(rq.range);
    /* An invalid If-Modified-Since, or two, is ignored. */
    rq = rq_of(TF(&q, "If-Modified-Since: yesterday"));
    cr_expect_not(rq.ims);
    rq = rq_of(TF(&q, "If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT",
                  "If-Modified-Since: Sun, 06 Nov 1994 08:49:38 GMT"));
    cr_expect_not(rq.ims);
}

Test(policy, request_from_head)
{
    struct lv_head h;
    struct lv_bufpool pool;
    lv_bufpool_init(&pool, 2);
    lv_head_init(&h, 4096, 16);
    h.method = HTTP_GET;
    cr_assert_eq(lv_head_add_target(&h, &pool, "/a?b", 4), 0);
    cr_assert_eq(lv_head_add_name(&h, &pool, "Host", 4), 0);
    cr_assert_eq(lv_head_add_value(&h, &pool, "example.com", 11), 0);
    struct lv_cache_req r;
    lv_cache_req_from_head(&r, &h, true);
    cr_expect_eq(r.method, HTTP_GET);
    cr_expect(r.tls);
    cr_expect_eq(r.target_len, 4);
    cr_expect_eq(memcmp(r.target, "/a?b", 4), 0);
    cr_expect_eq(r.host_len, 11);
    cr_expect_eq(memcmp(r.host, "example.com", 11), 0);
    cr_expect_eq(r.fields.n, 1);
    lv_head_dispose(&h);
    lv_bufpool_dispose(&pool);
}

/* --- stored fields ----------------------------------------------------------------------- */

Test(policy, stored_fields)
{
    struct tfields t;
    struct lv_cache_respinfo rs = rs_of(200, TF(&t, "Cache-Control: max-age=5, no-cache=\"X-A\", "
                                                    "private=\"x-b\""));
#define KEPT(name, flags) lv_cache_field_stored(&rs, name, sizeof(name) - 1, flags)
    cr_expect(KEPT("Content-Type", 0));
    cr_expect(KEPT("ETag", 0));
    cr_expect(KEPT("Cache-Control", 0));
    cr_expect_not(KEPT("Content-Type", LV_HF_HOP));
    cr_expect_not(KEPT("Content-Type", LV_HF_DROP));
    const char *never[] = {"Connection",
                           "Keep-Alive",
                           "Transfer-Encoding",
                           "Content-Length",
                           "Age",
                           "Set-Cookie",
                           "set-cookie2",
                           "Proxy-Authenticate",
                           "Proxy-Authentication-Info",
                           "Upgrade",
                           "TE",
                           "Trailer"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        cr_expect_not(lv_cache_field_stored(&rs, never[i], strlen(never[i]), 0), "%s", never[i]);
    cr_expect_not(KEPT("x-a", 0));
    cr_expect_not(KEPT("X-B", 0));
#undef KEPT
}

Test(policy, hidden_fields)
{
    cr_expect(lv_cache_field_hidden(&cfg, "cdn-cache-control", 17));
    cr_expect_not(lv_cache_field_hidden(&cfg, "cache-control", 13));
    cfg.forward_targeted = true;
    cr_expect_not(lv_cache_field_hidden(&cfg, "CDN-Cache-Control", 17));
}

Test(policy, defaults)
{
    struct lv_cache_cfg d;
    lv_cache_cfg_init(&d);
    cr_expect_not(d.enabled);
    cr_expect_eq(d.max_size, 256ull << 20);
    cr_expect_eq(d.max_object_size, 8ull << 20);
    cr_expect_eq(d.default_ttl, 0);
    cr_expect_eq(d.serve_stale_on_error, 3600 * SEC);
    cr_expect_eq(d.collapse_timeout, 5 * SEC);
    cr_expect_eq(d.key, LV_CKEY_METHOD | LV_CKEY_HOST | LV_CKEY_PATH | LV_CKEY_QUERY);
    cr_assert_eq(d.ntargets, 1);
    cr_expect_str_eq(d.targets[0], "CDN-Cache-Control");
    cr_expect_not(d.forward_targeted);
    lv_cache_cfg_dispose(&d);
}
