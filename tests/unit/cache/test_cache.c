/*
 * The cache as the request path will call it (cache/cache.c), whole
 * exchanges with a fake clock and no sockets: miss → store → hit, HEAD
 * from GET, Vary, revalidation with a 304 that updates the stored fields,
 * stale-while-revalidate's one background refresh, stale-if-error and
 * serve_stale_on_error, only-if-cached, conditional requests answered 304,
 * collapsed forwarding and pass markers, invalidation by unsafe methods,
 * targeted fields, Cache-Status (RFC 9211).
 */
#include <criterion/criterion.h>
#include <llhttp.h>
#include <stdatomic.h>

#include "cache/cache.h"
#include "unit/cache/fields_fixture.h"
#include "unit/lv_test.h"

#define MIB (1024ull * 1024)

static struct lv_cache_cfg cfg;
static struct lv_cache_store *store;

static void setup(void)
{
    lv_cache_cfg_init(&cfg);
    cfg.enabled = true;
    cfg.serve_stale_on_error = 0;
    store = lv_cache_store_create(MIB, MIB);
    cr_assert_not_null(store);
}

static void teardown(void)
{
    lv_cache_store_destroy(store);
    lv_cache_cfg_dispose(&cfg);
}

TestSuite(cache, .init = setup, .fini = teardown);

static struct lv_cache_req mkreq(uint8_t method, const char *target, const struct lv_fields *f)
{
    struct lv_cache_req r = {method, false, target, strlen(target), "example.com", 11, *f};
    return r;
}

/* A request through the cache up to the point where it has an answer:
 * SERVE, or FETCH/REVALIDATE then a response (status, fields, body) that
 * is offered for storing. Returns what the lookup said. */
static enum lv_cache_action lookup(struct lv_cache_lookup *l, const struct lv_cache_req *r,
                                   int64_t now)
{
    lv_cache_lookup(store, &cfg, r, now, NULL, l);
    return l->action;
}

/* Stores a response for l (a FETCH or REVALIDATE), whole. */
static int store_response(struct lv_cache_lookup *l, const struct lv_cache_req *r, uint16_t status,
                          const struct lv_fields *resp, const char *body, int64_t now,
                          enum lv_cache_nostore *why)
{
    struct lv_cache_writer w;
    enum lv_cache_nostore dummy;
    if (why == NULL) why = &dummy;
    if (lv_cache_begin(store, &cfg, l, r, status, resp, now, now, &w, why) != 0) return -1;
    if (body[0]) cr_assert_eq(lv_cache_writer_append(&w, body, strlen(body)), 0);
    cr_assert_eq(lv_cache_writer_finish(&w), 0);
    cr_assert_null(w.entry);
    return 0;
}

/* miss + store, for a GET of target with those response fields. */
static void prime(const char *target, const struct lv_fields *req, const struct lv_fields *resp,
                  const char *body, int64_t now)
{
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    struct lv_cache_req r = mkreq(HTTP_GET, target, req);
    cr_assert_eq(lookup(&l, &r, now), LV_CACHE_FETCH);
    cr_assert_eq(store_response(&l, &r, 200, resp, body, now, NULL), 0);
    lv_cache_lookup_dispose(store, &l, now);
}

struct answer {
    uint16_t status;
    bool body;
    int64_t length, age;
    char cache_status[LV_CACHE_STATUS_MAX];
    char fields[2048]; /* "Name: value\n"... */
    char data[4096];
};

static void reply(struct answer *a, const struct lv_cache_lookup *l, const struct lv_cache_req *r,
                  const struct lv_cache_entry *e, int64_t now)
{
    struct lv_cache_reply rp;
    lv_cache_reply_init(&rp, &cfg, l, r, e, now);
    memset(a, 0, sizeof(*a));
    a->status = rp.status;
    a->body = rp.body;
    a->length = rp.length;
    a->age = rp.age;
    memcpy(a->cache_status, rp.cache_status, sizeof(a->cache_status));
    struct lv_field f;
    size_t n = 0;
    while (lv_cache_reply_field(&rp, &f)) {
        n += (size_t)snprintf(a->fields + n, sizeof(a->fields) - n, "%.*s: %.*s\n", (int)f.name_len,
                              f.name, (int)f.value_len, f.value);
        cr_assert_lt(n, sizeof(a->fields));
    }
    if (!rp.body) return;
    struct lv_cache_cursor c;
    lv_cache_cursor_init(&c);
    const char *p;
    size_t len, off = 0;
    while (lv_cache_entry_read(e, &c, 1000, &p, &len) == LV_READ_DATA) {
        cr_assert_lt(off + len, sizeof(a->data));
        memcpy(a->data + off, p, len);
        off += len;
    }
}

/* Looks r up, expects SERVE, and builds the answer. */
static void serve(struct answer *a, const struct lv_cache_req *r, int64_t now)
{
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, r, now), LV_CACHE_SERVE, "action %d", l.action);
    reply(a, &l, r, l.entry, now);
    lv_cache_lookup_dispose(store, &l, now);
}

Test(cache, miss_store_hit)
{
    struct tfields q, s;
    char date[64];
    tf_date(date, sizeof(date), "Date", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    cr_expect_not_null(l.claim); /* it leads the fetch */
    cr_expect(l.strip_conditionals);
    struct lv_fields *resp =
        TF(&s, date, "Cache-Control: max-age=60", "Content-Type: text/plain", "Content-Length: 5");
    cr_assert_eq(store_response(&l, &r, 200, resp, "hello", T0, NULL), 0);
    cr_expect_null(l.claim);
    char cs[LV_CACHE_STATUS_MAX];
    lv_cache_status_format(cs, sizeof(cs), &l.status);
    cr_expect_str_eq(cs, "levee; fwd=uri-miss; stored");
    lv_cache_lookup_dispose(store, &l, T0);

    struct answer a;
    serve(&a, &r, T0 + 10 * SEC);
    cr_expect_eq(a.status, 200);
    cr_expect(a.body);
    cr_expect_eq(a.length, 5);
    cr_expect_eq(a.age, 10);
    cr_expect_str_eq(a.data, "hello");
    cr_expect_str_eq(a.cache_status, "levee; hit; ttl=50");
    char want[256];
    snprintf(want, sizeof(want), "%s\nCache-Control: max-age=60\nContent-Type: text/plain\n", date);
    cr_expect_str_eq(a.fields, want); /* no Content-Length: levee frames what it sends */
}

Test(cache, head_is_answered_from_get)
{
    struct tfields q, s;
    prime("/a", TF_EMPTY(&q), TF(&s, "Cache-Control: max-age=60"), "hello", T0);
    struct lv_cache_req r = mkreq(HTTP_HEAD, "/a", TF_EMPTY(&q));
    struct answer a;
    serve(&a, &r, T0);
    cr_expect_eq(a.status, 200);
    cr_expect_not(a.body);
    cr_expect_eq(a.length, 5);
}

Test(cache, a_head_response_is_not_stored)
{
    struct tfields q, s;
    struct lv_cache_req r = mkreq(HTTP_HEAD, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    enum lv_cache_nostore why;
    cr_expect_eq(store_response(&l, &r, 200, TF(&s, "Cache-Control: max-age=60"), "", T0, &why),
                 -1);
    cr_expect_eq(why, LV_NOSTORE_METHOD);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, stored_copy_keeps_no_cookie_no_hop_fields_and_gets_a_date)
{
    struct tfields q, s;
    struct lv_fields *resp =
        TF(&s, "Cache-Control: public, max-age=60", "Set-Cookie: id=secret", "Connection: x-hop",
           "X-Hop: 1", "Keep-Alive: timeout=5", "Age: 3", "X-Kept: yes");
    s.f[3].flags = LV_HF_HOP; /* as lv_head_classify marks a field named in Connection */
    prime("/a", TF_EMPTY(&q), resp, "x", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct answer a;
    serve(&a, &r, T0 + SEC);
    char date[64], want[256];
    tf_date(date, sizeof(date), "Date", T0);
    snprintf(want, sizeof(want), "Cache-Control: public, max-age=60\nX-Kept: yes\n%s\n", date);
    cr_expect_str_eq(a.fields, want);
    cr_expect_eq(a.age, 4); /* the origin's 3 s and 1 s here */
}

Test(cache, an_invalid_date_is_replaced_not_doubled)
{
    struct tfields q, s, n;
    prime("/a", TF_EMPTY(&q), TF(&s, "Date: yesterday", "Cache-Control: max-age=1", "ETag: \"1\""),
          "x", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct answer a;
    serve(&a, &r, T0);
    cr_expect_str_eq(a.fields, "Cache-Control: max-age=1\nETag: \"1\"\n"
                               "Date: Tue, 14 Nov 2023 22:13:20 GMT\n");
    /* The same for a 304 that updates it. */
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0 + 2 * SEC), LV_CACHE_REVALIDATE);
    struct lv_cache_entry *e;
    cr_assert_eq(lv_cache_revalidated(store, &cfg, &l, TF(&n, "Date: 0", "ETag: \"1\""),
                                      T0 + 2 * SEC, T0 + 2 * SEC, &e),
                 0);
    reply(&a, &l, &r, e, T0 + 2 * SEC);
    cr_expect_str_eq(a.fields, "Cache-Control: max-age=1\nETag: \"1\"\n"
                               "Date: Tue, 14 Nov 2023 22:13:22 GMT\n");
    cr_expect_eq(a.age, 0);
    lv_cache_entry_release(e);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, set_cookie_without_permission_is_not_stored)
{
    struct tfields q, s;
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    enum lv_cache_nostore why;
    cr_expect_eq(store_response(&l, &r, 200, TF(&s, "Cache-Control: max-age=60", "Set-Cookie: a=b"),
                                "x", T0, &why),
                 -1);
    cr_expect_eq(why, LV_NOSTORE_SET_COOKIE);
    lv_cache_lookup_dispose(store, &l, T0);
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, vary)
{
    struct tfields q, s;
    struct lv_fields *resp = TF(&s, "Cache-Control: max-age=60", "Vary: Accept-Encoding");
    prime("/a", TF(&q, "Accept-Encoding: gzip"), resp, "zipped", T0);
    struct tfields q2;
    prime("/a", TF(&q2, "Accept-Encoding: br"), resp, "brotli", T0);
    struct answer a;
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF(&q, "accept-encoding:  GZIP"));
    serve(&a, &r, T0);
    cr_expect_str_eq(a.data, "zipped");
    r = mkreq(HTTP_GET, "/a", TF(&q, "Accept-Encoding: br"));
    serve(&a, &r, T0);
    cr_expect_str_eq(a.data, "brotli");
    /* No Accept-Encoding at all: another variant, not stored yet. */
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    cr_expect_eq(l.status.fwd, LV_FWD_VARY_MISS);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, revalidation_with_304_updates_the_stored_fields)
{
    struct tfields q, s, n;
    char date[64];
    tf_date(date, sizeof(date), "Date", T0);
    prime("/a", TF_EMPTY(&q),
          TF(&s, date, "Cache-Control: max-age=60", "ETag: \"v1\"", "X-Old: 1", "X-Both: old"),
          "body", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0 + 61 * SEC), LV_CACHE_REVALIDATE);
    cr_expect_not_null(l.claim);
    cr_expect_eq(l.status.fwd, LV_FWD_STALE);
    struct lv_fields stored = lv_cache_entry_fields(l.entry);
    struct lv_cache_validators v;
    lv_cache_validators(&stored, &v);
    cr_assert_not_null(v.etag);
    cr_expect_eq(memcmp(v.etag, "\"v1\"", 4), 0);
    char date2[64];
    tf_date(date2, sizeof(date2), "Date", T0 + 61 * SEC);
    struct lv_fields *r304 = TF(&n, date2, "ETag: \"v1\"", "Cache-Control: max-age=120",
                                "X-Both: new", "Connection: close");
    n.f[4].flags = LV_HF_HOP;
    struct lv_cache_entry *fresh;
    cr_assert_eq(lv_cache_revalidated(store, &cfg, &l, r304, T0 + 61 * SEC, T0 + 61 * SEC, &fresh),
                 0);
    struct answer a;
    reply(&a, &l, &r, fresh, T0 + 61 * SEC);
    cr_expect_eq(a.status, 200);
    cr_expect_str_eq(a.data, "body");
    cr_expect_eq(a.age, 0);
    cr_expect_str_eq(a.cache_status, "levee; fwd=stale; fwd-status=304; ttl=120; stored");
    char want[512];
    snprintf(want, sizeof(want),
             "X-Old: 1\n%s\nETag: \"v1\"\nCache-Control: max-age=120\nX-Both: new\n", date2);
    cr_expect_str_eq(a.fields, want);
    lv_cache_entry_release(fresh);
    lv_cache_lookup_dispose(store, &l, T0);
    /* The next request is a hit on the updated response. */
    serve(&a, &r, T0 + 100 * SEC);
    cr_expect_str_eq(a.cache_status, "levee; hit; ttl=81");
    cr_expect_str_eq(a.data, "body");
}

Test(cache, a_304_about_another_response_does_not_update)
{
    struct tfields q, s, n;
    prime("/a", TF_EMPTY(&q), TF(&s, "Cache-Control: max-age=1", "ETag: \"v1\""), "b", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0 + 2 * SEC), LV_CACHE_REVALIDATE);
    struct lv_cache_entry *e;
    cr_expect_eq(lv_cache_revalidated(store, &cfg, &l, TF(&n, "ETag: \"v2\""), T0 + 2 * SEC,
                                      T0 + 2 * SEC, &e),
                 -1);
    cr_expect_null(e);
    cr_expect_null(l.claim);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, a_304_that_forbids_storing_answers_once)
{
    struct tfields q, s, n;
    prime("/a", TF_EMPTY(&q), TF(&s, "Cache-Control: max-age=1", "ETag: \"v1\""), "b", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0 + 2 * SEC), LV_CACHE_REVALIDATE);
    struct lv_cache_entry *e;
    cr_assert_eq(lv_cache_revalidated(store, &cfg, &l, TF(&n, "Cache-Control: no-store"),
                                      T0 + 2 * SEC, T0 + 2 * SEC, &e),
                 0);
    struct answer a;
    reply(&a, &l, &r, e, T0 + 2 * SEC);
    cr_expect_str_eq(a.data, "b");
    cr_expect_not(lv_cache_entry_linked(e));
    lv_cache_entry_release(e);
    lv_cache_lookup_dispose(store, &l, T0);
    cr_expect_eq(lookup(&l, &r, T0 + 3 * SEC), LV_CACHE_FETCH);
    cr_expect_eq(l.status.fwd, LV_FWD_URI_MISS);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, a_full_response_to_a_revalidation_replaces)
{
    struct tfields q, s, n;
    prime("/a", TF_EMPTY(&q), TF(&s, "Cache-Control: max-age=1", "ETag: \"v1\""), "old", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0 + 2 * SEC), LV_CACHE_REVALIDATE);
    cr_assert_eq(store_response(&l, &r, 200, TF(&n, "Cache-Control: max-age=60", "ETag: \"v2\""),
                                "new", T0 + 2 * SEC, NULL),
                 0);
    lv_cache_lookup_dispose(store, &l, T0);
    struct answer a;
    serve(&a, &r, T0 + 3 * SEC);
    cr_expect_str_eq(a.data, "new");
}

Test(cache, stale_while_revalidate_refreshes_once)
{
    struct tfields q, s, n;
    prime("/a", TF_EMPTY(&q),
          TF(&s, "Cache-Control: max-age=600, stale-while-revalidate=30", "ETag: \"v1\""), "old",
          T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l1, l2, bg;
    lv_cache_lookup_init(&l1);
    lv_cache_lookup_init(&l2);
    cr_assert_eq(lookup(&l1, &r, T0 + 610 * SEC), LV_CACHE_SERVE);
    cr_expect(l1.refresh);
    cr_assert_eq(lookup(&l2, &r, T0 + 611 * SEC), LV_CACHE_SERVE);
    cr_expect_not(l2.refresh); /* one background refresh */
    struct answer a;
    reply(&a, &l2, &r, l2.entry, T0 + 611 * SEC);
    cr_expect_str_eq(a.cache_status, "levee; hit; ttl=-11");
    cr_expect_str_eq(a.data, "old");
    cr_assert_eq(lv_cache_refresh_prepare(&l1, &bg), 0);
    cr_expect_eq(bg.action, LV_CACHE_REVALIDATE);
    struct lv_cache_entry *e;
    cr_assert_eq(lv_cache_revalidated(store, &cfg, &bg, TF(&n, "ETag: \"v1\""), T0 + 612 * SEC,
                                      T0 + 612 * SEC, &e),
                 0);
    lv_cache_entry_release(e);
    lv_cache_lookup_dispose(store, &bg, T0);
    lv_cache_lookup_dispose(store, &l1, T0);
    lv_cache_lookup_dispose(store, &l2, T0);
    serve(&a, &r, T0 + 613 * SEC);
    cr_expect_str_eq(a.cache_status, "levee; hit; ttl=599");
    /* Past the window: an ordinary revalidation. */
    cr_assert_eq(lookup(&l1, &r, T0 + 612 * SEC + 631 * SEC), LV_CACHE_REVALIDATE);
    lv_cache_lookup_dispose(store, &l1, T0);
}

Test(cache, stale_if_error)
{
    struct tfields q, s;
    prime("/a", TF_EMPTY(&q),
          TF(&s, "Cache-Control: max-age=600, stale-if-error=1200", "ETag: \"v1\""), "old", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0 + 1000 * SEC), LV_CACHE_REVALIDATE);
    cr_assert(lv_cache_serve_stale(store, &cfg, &l, 503, T0 + 1001 * SEC));
    cr_expect_null(l.claim);
    struct answer a;
    reply(&a, &l, &r, l.entry, T0 + 1001 * SEC);
    cr_expect_str_eq(a.data, "old");
    cr_expect_str_eq(a.cache_status,
                     "levee; fwd=stale; fwd-status=503; ttl=-401; detail=origin-error");
    lv_cache_lookup_dispose(store, &l, T0);
    /* Past stale-if-error: the error stands. */
    cr_assert_eq(lookup(&l, &r, T0 + 1801 * SEC), LV_CACHE_REVALIDATE);
    cr_expect_not(lv_cache_serve_stale(store, &cfg, &l, 0, T0 + 1801 * SEC));
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, serve_stale_on_error_unless_must_revalidate)
{
    struct tfields q, s;
    cfg.serve_stale_on_error = 3600 * SEC;
    prime("/a", TF_EMPTY(&q), TF(&s, "Cache-Control: max-age=60", "ETag: \"v1\""), "a", T0);
    prime("/m", TF_EMPTY(&q), TF(&s, "Cache-Control: max-age=60, must-revalidate", "ETag: \"v1\""),
          "m", T0);
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    cr_assert_eq(lookup(&l, &r, T0 + 1800 * SEC), LV_CACHE_REVALIDATE);
    cr_expect(lv_cache_serve_stale(store, &cfg, &l, 0, T0 + 1800 * SEC));
    char cs[LV_CACHE_STATUS_MAX];
    lv_cache_status_format(cs, sizeof(cs), &l.status);
    cr_expect_str_eq(cs, "levee; fwd=stale; detail=origin-unreachable");
    lv_cache_lookup_dispose(store, &l, T0);
    r = mkreq(HTTP_GET, "/m", TF_EMPTY(&q));
    cr_assert_eq(lookup(&l, &r, T0 + 61 * SEC), LV_CACHE_REVALIDATE);
    cr_expect_not(lv_cache_serve_stale(store, &cfg, &l, 0, T0 + 61 * SEC));
    lv_cache_lookup_dispose(store, &l, T0);
    /* No stored response at all: nothing to serve. */
    r = mkreq(HTTP_GET, "/none", TF_EMPTY(&q));
    cr_assert_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    cr_expect_not(lv_cache_serve_stale(store, &cfg, &l, 0, T0));
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, only_if_cached)
{
    struct tfields q, s;
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF(&q, "Cache-Control: only-if-cached"));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_REJECT);
    cr_expect_null(l.claim);
    char cs[LV_CACHE_STATUS_MAX];
    lv_cache_status_format(cs, sizeof(cs), &l.status);
    cr_expect_str_eq(cs, "levee; fwd=uri-miss; detail=only-if-cached");
    struct tfields q0;
    prime("/a", TF_EMPTY(&q0), TF(&s, "Cache-Control: max-age=60"), "a", T0);
    cr_expect_eq(lookup(&l, &r, T0 + 30 * SEC), LV_CACHE_SERVE);
    cr_expect_eq(lookup(&l, &r, T0 + 61 * SEC), LV_CACHE_REJECT);
    cr_expect_null(l.entry);
    r = mkreq(HTTP_GET, "/a", TF(&q, "Cache-Control: only-if-cached, max-stale=10"));
    cr_expect_eq(lookup(&l, &r, T0 + 61 * SEC), LV_CACHE_SERVE);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, conditional_requests_get_304_from_a_fresh_entry)
{
    struct tfields q, s;
    char lm[64];
    tf_date(lm, sizeof(lm), "Last-Modified", T0 - 3600 * SEC);
    prime("/a", TF_EMPTY(&q),
          TF(&s, "Cache-Control: max-age=60", "ETag: W/\"v1\"", lm, "Content-Type: text/html",
             "Vary: X-A"),
          "page", T0);
    struct answer a;
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF(&q, "If-None-Match: \"v1\""));
    serve(&a, &r, T0 + SEC);
    cr_expect_eq(a.status, 304);
    cr_expect_not(a.body);
    cr_expect_eq(a.length, 0);
    char want[256];
    snprintf(want, sizeof(want), "Cache-Control: max-age=60\nETag: W/\"v1\"\n%s\nVary: X-A\n", lm);
    cr_expect(strstr(a.fields, "Content-Type") == NULL, "%s", a.fields);
    cr_expect(strstr(a.fields, want) == a.fields, "%s", a.fields);
    char ims[64];
    tf_date(ims, sizeof(ims), "If-Modified-Since", T0 - 3600 * SEC);
    r = mkreq(HTTP_GET, "/a", TF(&q, ims));
    serve(&a, &r, T0 + SEC);
    cr_expect_eq(a.status, 304);
    r = mkreq(HTTP_GET, "/a", TF(&q, "If-None-Match: \"v2\""));
    serve(&a, &r, T0 + SEC);
    cr_expect_eq(a.status, 200);
    cr_expect_str_eq(a.data, "page");
}

Test(cache, request_no_store)
{
    struct tfields q, s;
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF(&q, "Cache-Control: no-store"));
    cr_assert_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    cr_expect_null(l.claim); /* nobody waits for what will not be stored */
    cr_expect_not(l.store);
    cr_expect_not(l.strip_conditionals);
    enum lv_cache_nostore why;
    cr_expect_eq(store_response(&l, &r, 200, TF(&s, "Cache-Control: max-age=60"), "x", T0, &why),
                 -1);
    cr_expect_eq(why, LV_NOSTORE_REQUEST);
    lv_cache_lookup_dispose(store, &l, T0);
    /* What is stored still answers it. */
    struct tfields q0;
    prime("/a", TF_EMPTY(&q0), TF(&s, "Cache-Control: max-age=60"), "stored", T0);
    struct answer a;
    serve(&a, &r, T0);
    cr_expect_str_eq(a.data, "stored");
}

Test(cache, what_the_cache_does_not_handle)
{
    struct tfields q;
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    struct lv_cache_req r = mkreq(HTTP_POST, "/a", TF_EMPTY(&q));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_PASS);
    cr_expect_eq(l.status.fwd, LV_FWD_METHOD);
    r = mkreq(HTTP_GET, "/a", TF(&q, "Range: bytes=0-10"));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_PASS);
    cr_expect_eq(l.status.fwd, LV_FWD_BYPASS);
    r = mkreq(HTTP_GET, "/a", TF(&q, "If-Match: \"x\""));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_PASS);
    cfg.enabled = false;
    r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_PASS);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, invalidation)
{
    struct tfields q, s;
    const char *paths[] = {"/items", "/items/7", "/other", "/items?page=2"};
    for (int i = 0; i < 4; i++)
        prime(paths[i], TF_EMPTY(&q), TF(&s, "Cache-Control: max-age=60"), "x", T0);
    struct lv_cache_req post = mkreq(HTTP_POST, "/items", TF_EMPTY(&q));
    /* An error does not invalidate. */
    cr_expect_eq(lv_cache_invalidate(store, &cfg, &post, 500, TF_EMPTY(&s)), 0);
    cr_expect_eq(lv_cache_invalidate(
                     store, &cfg, &post, 201,
                     TF(&s, "Location: /items/7", "Content-Location: http://evil.example/other")),
                 2);
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    struct lv_cache_req r = mkreq(HTTP_GET, "/items", TF_EMPTY(&q));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    r = mkreq(HTTP_GET, "/items/7", TF_EMPTY(&q));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    r = mkreq(HTTP_GET, "/other", TF_EMPTY(&q));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_SERVE);
    r = mkreq(HTTP_GET, "/items?page=2", TF_EMPTY(&q));
    cr_expect_eq(lookup(&l, &r, T0), LV_CACHE_SERVE);
    struct lv_cache_req del = mkreq(HTTP_DELETE, "/other", TF_EMPTY(&q));
    cr_expect_eq(lv_cache_invalidate(store, &cfg, &del, 204, NULL), 1);
    lv_cache_lookup_dispose(store, &l, T0);
}

struct flag {
    atomic_int fired;
};

static void on_wake(void *arg)
{
    atomic_fetch_add(&((struct flag *)arg)->fired, 1);
}

Test(cache, collapsed_forwarding)
{
    struct tfields q, s;
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup lead, other;
    lv_cache_lookup_init(&lead);
    lv_cache_lookup_init(&other);
    struct flag f = {0};
    struct lv_cache_waiter w = {.cb = on_wake, .arg = &f};
    cr_assert_eq(lookup(&lead, &r, T0), LV_CACHE_FETCH);
    cr_assert_not_null(lead.claim);
    lv_cache_lookup(store, &cfg, &r, T0, &w, &other);
    cr_assert_eq(other.action, LV_CACHE_WAIT);
    /* The response head arrives: stored, the waiter wakes and reads the
     * entry as it fills. */
    struct lv_cache_writer wr;
    enum lv_cache_nostore why;
    cr_assert_eq(lv_cache_begin(store, &cfg, &lead, &r, 200, TF(&s, "Cache-Control: max-age=60"),
                                T0, T0, &wr, &why),
                 0);
    cr_expect_eq(atomic_load(&f.fired), 1);
    lv_cache_lookup(store, &cfg, &r, T0, &w, &other);
    cr_assert_eq(other.action, LV_CACHE_SERVE);
    cr_expect_eq(lv_cache_entry_state(other.entry), LV_BODY_FILLING);
    struct lv_cache_reply rp;
    lv_cache_reply_init(&rp, &cfg, &other, &r, other.entry, T0);
    cr_expect_str_eq(rp.cache_status, "levee; hit; ttl=60; collapsed");
    cr_expect_eq(rp.length, -1); /* unknown yet: chunked */
    cr_assert_eq(lv_cache_writer_append(&wr, "abc", 3), 0);
    struct lv_cache_cursor c;
    lv_cache_cursor_init(&c);
    const char *p;
    size_t n;
    cr_expect_eq(lv_cache_entry_read(other.entry, &c, 100, &p, &n), LV_READ_DATA);
    cr_expect_eq(n, 3);
    cr_assert_eq(lv_cache_writer_finish(&wr), 0);
    cr_expect_eq(lv_cache_entry_read(other.entry, &c, 100, &p, &n), LV_READ_END);
    lv_cache_lookup_dispose(store, &lead, T0);
    lv_cache_lookup_dispose(store, &other, T0);
}

Test(cache, an_uncacheable_response_releases_the_waiters_at_once)
{
    struct tfields q, s;
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup lead, other, third;
    lv_cache_lookup_init(&lead);
    lv_cache_lookup_init(&other);
    lv_cache_lookup_init(&third);
    struct flag f = {0};
    struct lv_cache_waiter w = {.cb = on_wake, .arg = &f};
    cr_assert_eq(lookup(&lead, &r, T0), LV_CACHE_FETCH);
    lv_cache_lookup(store, &cfg, &r, T0, &w, &other);
    cr_assert_eq(other.action, LV_CACHE_WAIT);
    enum lv_cache_nostore why;
    cr_expect_eq(store_response(&lead, &r, 200, TF(&s, "Cache-Control: private"), "", T0, &why),
                 -1);
    cr_expect_eq(why, LV_NOSTORE_PRIVATE);
    cr_expect_eq(atomic_load(&f.fired), 1);
    /* They go to the origin, each on its own (a pass marker: no waiting). */
    lv_cache_lookup(store, &cfg, &r, T0 + SEC, &w, &other);
    cr_expect_eq(other.action, LV_CACHE_FETCH);
    cr_expect_null(other.claim);
    lv_cache_lookup(store, &cfg, &r, T0 + SEC, &w, &third);
    cr_expect_eq(third.action, LV_CACHE_FETCH);
    cr_expect_null(third.claim);
    /* A cacheable answer is still stored, and ends the pass marker. */
    cr_expect_eq(
        store_response(&third, &r, 200, TF(&s, "Cache-Control: max-age=60"), "ok", T0 + SEC, &why),
        0);
    lv_cache_lookup_dispose(store, &third, T0);
    struct answer a;
    serve(&a, &r, T0 + 2 * SEC);
    cr_expect_str_eq(a.data, "ok");
    lv_cache_lookup_dispose(store, &lead, T0);
    lv_cache_lookup_dispose(store, &other, T0);
}

Test(cache, a_lead_that_gives_up_releases_the_waiters)
{
    struct tfields q;
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup lead, other;
    lv_cache_lookup_init(&lead);
    lv_cache_lookup_init(&other);
    struct flag f = {0};
    struct lv_cache_waiter w = {.cb = on_wake, .arg = &f};
    cr_assert_eq(lookup(&lead, &r, T0), LV_CACHE_FETCH);
    lv_cache_lookup(store, &cfg, &r, T0, &w, &other);
    cr_assert_eq(other.action, LV_CACHE_WAIT);
    lv_cache_lookup_dispose(store, &lead, T0); /* the fetch failed, say */
    cr_expect_eq(atomic_load(&f.fired), 1);
    lv_cache_lookup(store, &cfg, &r, T0, &w, &other);
    cr_expect_eq(other.action, LV_CACHE_FETCH);
    cr_expect_not_null(other.claim);       /* no pass marker: it leads now */
    cr_expect_not(other.status.collapsed); /* it fetches for itself */
    lv_cache_lookup_dispose(store, &other, T0);
}

Test(cache, collapse_timeout_zero_never_waits)
{
    struct tfields q;
    cfg.collapse_timeout = 0;
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup a, b;
    lv_cache_lookup_init(&a);
    lv_cache_lookup_init(&b);
    struct flag f = {0};
    struct lv_cache_waiter w = {.cb = on_wake, .arg = &f};
    cr_expect_eq(lookup(&a, &r, T0), LV_CACHE_FETCH);
    cr_expect_null(a.claim);
    lv_cache_lookup(store, &cfg, &r, T0, &w, &b);
    cr_expect_eq(b.action, LV_CACHE_FETCH);
    lv_cache_lookup_dispose(store, &a, T0);
    lv_cache_lookup_dispose(store, &b, T0);
}

Test(cache, a_response_too_large_streams_through)
{
    struct tfields q, s;
    cfg.max_object_size = 10;
    lv_cache_store_set_limits(store, MIB, 10);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    enum lv_cache_nostore why;
    /* Known too large: refused at the head. */
    cr_expect_eq(store_response(&l, &r, 200,
                                TF(&s, "Cache-Control: max-age=60", "Content-Length: 11"), "", T0,
                                &why),
                 -1);
    cr_expect_eq(why, LV_NOSTORE_TOO_LARGE);
    /* Found out while streaming: the writer stops, nothing is stored. */
    cr_assert_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    struct lv_cache_writer w;
    cr_assert_eq(lv_cache_begin(store, &cfg, &l, &r, 200, TF(&s, "Cache-Control: max-age=60"), T0,
                                T0, &w, &why),
                 0);
    cr_expect_eq(lv_cache_writer_append(&w, "0123456789", 10), 0);
    cr_expect_eq(lv_cache_writer_append(&w, "x", 1), -1);
    cr_expect_null(w.entry);
    cr_expect_eq(lv_cache_writer_append(&w, "x", 1), -1);
    cr_expect_eq(lv_cache_writer_finish(&w), -1);
    lv_cache_writer_abort(&w);
    lv_cache_lookup_dispose(store, &l, T0);
    cr_assert_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    cr_expect_eq(l.status.fwd, LV_FWD_URI_MISS);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, targeted_fields_are_obeyed_and_hidden)
{
    struct tfields q, s;
    prime("/a", TF_EMPTY(&q),
          TF(&s, "Cache-Control: max-age=5", "CDN-Cache-Control: max-age=600", "X-A: 1"), "x", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct answer a;
    serve(&a, &r, T0 + 100 * SEC);
    cr_expect_str_eq(a.fields, "Cache-Control: max-age=5\nX-A: 1\n"
                               "Date: Tue, 14 Nov 2023 22:13:20 GMT\n");
    cr_expect_str_eq(a.cache_status, "levee; hit; ttl=500");
    cfg.forward_targeted = true;
    serve(&a, &r, T0 + 100 * SEC);
    cr_expect(strstr(a.fields, "CDN-Cache-Control: max-age=600") != NULL, "%s", a.fields);
}

Test(cache, head_without_content_length_while_filling)
{
    struct tfields q, s;
    struct lv_cache_req r = mkreq(HTTP_GET, "/a", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0), LV_CACHE_FETCH);
    struct lv_cache_writer w;
    enum lv_cache_nostore why;
    cr_assert_eq(lv_cache_begin(store, &cfg, &l, &r, 200,
                                TF(&s, "Cache-Control: max-age=60", "Content-Length: 4"), T0, T0,
                                &w, &why),
                 0);
    /* The lead's own client reads the entry it fills. */
    struct lv_cache_entry *mine = lv_cache_entry_ref(w.entry);
    struct lv_cache_reply rp;
    lv_cache_reply_init(&rp, &cfg, &l, &r, mine, T0);
    cr_expect_eq(rp.length, 4);
    cr_expect_str_eq(rp.cache_status, "levee; fwd=uri-miss; ttl=60; stored");
    cr_expect_eq(lv_cache_writer_append(&w, "abcd", 4), 0);
    cr_expect_eq(lv_cache_writer_finish(&w), 0);
    lv_cache_entry_release(mine);
    lv_cache_lookup_dispose(store, &l, T0);
}

Test(cache, everything_is_given_back)
{
    /* After a mix of flows and the removal of all, the store is empty to
     * the byte. */
    struct tfields q, s;
    prime("/a", TF_EMPTY(&q), TF(&s, "Cache-Control: max-age=60"), "aaa", T0);
    prime("/b", TF_EMPTY(&q), TF(&s, "Cache-Control: max-age=1", "ETag: \"1\""), "bbb", T0);
    struct lv_cache_req r = mkreq(HTTP_GET, "/b", TF_EMPTY(&q));
    struct lv_cache_lookup l;
    lv_cache_lookup_init(&l);
    cr_assert_eq(lookup(&l, &r, T0 + 5 * SEC), LV_CACHE_REVALIDATE);
    struct lv_cache_entry *e;
    struct tfields n;
    cr_assert_eq(lv_cache_revalidated(store, &cfg, &l, TF(&n, "ETag: \"1\""), T0, T0 + 5 * SEC, &e),
                 0);
    lv_cache_entry_release(e);
    lv_cache_lookup_dispose(store, &l, T0);
    lv_cache_store_remove_prefix(store, "", 0);
    struct lv_cache_store_stats st;
    lv_cache_store_stats(store, &st);
    cr_expect_eq(st.bytes, 0);
    cr_expect_eq(st.entries, 0);
    LV_EXPECT_NO_LEAKS();
}

/* --- Cache-Status (RFC 9211) --------------------------------------------------------- */

static const char *fmt(struct lv_cache_status st)
{
    static char out[LV_CACHE_STATUS_MAX];
    lv_cache_status_format(out, sizeof(out), &st);
    return out;
}

Test(cache_status, rfc_9211_forms)
{
    cr_expect_str_eq(fmt((struct lv_cache_status){.hit = true}), "levee; hit");
    cr_expect_str_eq(fmt((struct lv_cache_status){.fwd = LV_FWD_URI_MISS, .stored = true}),
                     "levee; fwd=uri-miss; stored");
    cr_expect_str_eq(fmt((struct lv_cache_status){.fwd = LV_FWD_VARY_MISS, .collapsed = true}),
                     "levee; fwd=vary-miss; collapsed");
    cr_expect_str_eq(
        fmt((struct lv_cache_status){
            .fwd = LV_FWD_STALE, .fwd_status = 304, .has_ttl = true, .ttl = 120, .stored = true}),
        "levee; fwd=stale; fwd-status=304; ttl=120; stored");
    cr_expect_str_eq(fmt((struct lv_cache_status){.hit = true, .has_ttl = true, .ttl = -30}),
                     "levee; hit; ttl=-30");
    cr_expect_str_eq(fmt((struct lv_cache_status){.fwd = LV_FWD_REQUEST}), "levee; fwd=request");
    cr_expect_str_eq(fmt((struct lv_cache_status){.fwd = LV_FWD_BYPASS}), "levee; fwd=bypass");
    cr_expect_str_eq(fmt((struct lv_cache_status){.fwd = LV_FWD_METHOD}), "levee; fwd=method");
    cr_expect_str_eq(fmt((struct lv_cache_status){.fwd = LV_FWD_MISS, .detail = "x"}),
                     "levee; fwd=miss; detail=x");
    cr_expect_str_eq(fmt((struct lv_cache_status){0}), "levee");
}

Test(cache_status, never_overflows)
{
    char small[12];
    struct lv_cache_status st = {.fwd = LV_FWD_URI_MISS, .stored = true, .detail = "long-detail"};
    size_t n = lv_cache_status_format(small, sizeof(small), &st);
    cr_expect_eq(n, strlen(small));
    cr_expect_lt(n, sizeof(small));
    st = (struct lv_cache_status){.hit = true,
                                  .fwd_status = 599,
                                  .has_ttl = true,
                                  .ttl = INT64_MIN,
                                  .stored = true,
                                  .collapsed = true,
                                  .detail = "origin-unreachable"};
    char out[LV_CACHE_STATUS_MAX];
    n = lv_cache_status_format(out, sizeof(out), &st);
    cr_expect_eq(n, strlen(out));
    cr_expect(strstr(out, "origin-unreachable") != NULL);
}
