/*
 * proxy/cached.c without sockets: a real loop, the shared store, parsed
 * request heads, and callbacks that record what the exchange would send.
 * Hits (fields, Age, Cache-Status, framing), HEAD from a stored GET, a
 * client's conditional answered 304, only-if-cached, collapsed forwarding
 * woken through the worker's async handle while the lead's body fills, a
 * fill that breaks off under a reader, flow control, and the metrics.
 * The times are the store's rules' (their own fake-clock tests are
 * tests/unit/cache/): here every stored response is fresh for a minute.
 */
#include <criterion/criterion.h>
#include <llhttp.h>
#include <string.h>

#include "cache/cache.h"
#include "core/clock.h"
#include "proxy/cached.h"
#include "unit/http/head_fixture.h"
#include "unit/lv_test.h"

#define MIB (1024ull * 1024)

struct rec {
    int heads, ends, fails;
    enum lv_fail_kind fail;
    unsigned status;
    bool body, length_known, head_only;
    uint64_t length;
    char lines[8192];
    char got[256 * 1024];
    size_t got_len;
    size_t backlog; /* what backlog() answers */
};

static uv_loop_t loop;
static uv_timer_t at_timer;
static struct lv_wctx w;
static struct lv_cache_cfg cfg;
static struct lv_cache_store *store;

static void setup(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&w, 0, sizeof(w));
    w.loop = &loop;
    lv_bufpool_init(&w.env.bufs, 8);
    uv_timer_init(&loop, &at_timer);
    lv_cache_cfg_init(&cfg);
    cfg.enabled = true;
    store = lv_cache_store_create(MIB, MIB / 2);
    cr_assert_not_null(store);
    w.cache_store = store;
    cr_assert_eq(lv_cached_worker_start(&w), 0);
}

static void teardown(void)
{
    lv_cached_worker_close(&w);
    uv_close((uv_handle_t *)&at_timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_expect_eq(uv_loop_close(&loop), 0, "handles left open");
    lv_cache_store_destroy(store);
    lv_cache_cfg_dispose(&cfg);
    lv_bufpool_dispose(&w.env.bufs);
}

TestSuite(cached, .init = setup, .fini = teardown);

/* --- the exchange's side ------------------------------------------------------ */

static int r_head(void *user, const struct lv_cached_answer *a)
{
    struct rec *r = user;
    r->heads++;
    r->status = a->status;
    r->body = a->body;
    r->length_known = a->length_known;
    r->length = a->length;
    r->head_only = a->head_only;
    snprintf(r->lines, sizeof(r->lines), "%s", a->lines);
    return a->body ? 0 : 1;
}

static int r_body(void *user, struct lv_buf *b, const char *p, size_t len)
{
    struct rec *r = user;
    cr_assert(p >= b->data && p + len <= b->data + b->len);
    cr_assert_leq(r->got_len + len, sizeof(r->got));
    memcpy(r->got + r->got_len, p, len);
    r->got_len += len;
    return 0;
}

static void r_end(void *user)
{
    ((struct rec *)user)->ends++;
}

static void r_failed(void *user, enum lv_fail_kind kind)
{
    struct rec *r = user;
    r->fails++;
    r->fail = kind;
}

static size_t r_backlog(void *user)
{
    return ((struct rec *)user)->backlog;
}

static const struct lv_cached_ops ops = {
    .head = r_head,
    .body = r_body,
    .end = r_end,
    .failed = r_failed,
    .backlog = r_backlog,
};

/* One request through the cache. */
struct req {
    struct head_fixture hf;
    struct lv_bodyq body;
    struct lv_attempt_req ar;
    struct lv_attempt at;
    struct lv_cached c;
    struct rec r;
};

static void req_start(struct req *q, const char *text)
{
    memset(&q->r, 0, sizeof(q->r));
    fixture_init(&q->hf, HTTP_REQUEST, 64 * 1024, 100);
    llhttp_errno_t err = fixture_feed_str(&q->hf, text);
    cr_assert(err == HPE_OK || err == HPE_PAUSED);
    lv_bodyq_init(&q->body, &w.env.bufs);
    memset(&q->ar, 0, sizeof(q->ar));
    q->ar.head = &q->hf.head;
    q->ar.body = &q->body;
    q->ar.body_complete = true;
    q->ar.fwd.extra = "";
    lv_attempt_init(&q->at, &w, &at_timer);
    lv_cached_init(&q->c, &w, &q->at);
    lv_cached_start(&q->c, &q->ar, false, NULL, &cfg, &ops, &q->r);
}

static void req_end(struct req *q)
{
    lv_cached_stop(&q->c);
    lv_bodyq_dispose(&q->body);
    fixture_dispose(&q->hf);
}

/* Stores a response for a GET of target: status line and fields in resp
 * ("HTTP/1.1 200 OK\r\n...\r\n\r\n"), then body (finish: complete it). The
 * writer is returned to append more when !finish. */
static void store_response(const char *target, const char *resp, const char *body, bool finish,
                           struct lv_cache_writer *wr, struct lv_cache_lookup *l,
                           struct head_fixture *rq)
{
    char text[512];
    snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: h.test\r\n\r\n", target);
    fixture_init(rq, HTTP_REQUEST, 64 * 1024, 100);
    cr_assert(fixture_feed_str(rq, text) != HPE_USER);
    struct lv_cache_req creq;
    lv_cache_req_from_head(&creq, &rq->head, false);
    lv_cache_lookup_init(l);
    int64_t now = (int64_t)lv_clock_wall_ms();
    lv_cache_lookup(store, &cfg, &creq, now, NULL, l);
    cr_assert(l->action == LV_CACHE_FETCH, "action %d", l->action);
    struct head_fixture rs;
    fixture_init(&rs, HTTP_RESPONSE, 64 * 1024, 100);
    cr_assert(fixture_feed_str(&rs, resp) != HPE_USER);
    struct lv_fields rf = lv_fields_of_head(&rs.head);
    enum lv_cache_nostore why;
    cr_assert_eq(lv_cache_begin(store, &cfg, l, &creq, rs.head.status, &rf, now, now, wr, &why), 0,
                 "not stored: %s", lv_cache_nostore_name(why));
    if (body[0]) cr_assert_eq(lv_cache_writer_append(wr, body, strlen(body)), 0);
    if (finish) {
        cr_assert_eq(lv_cache_writer_finish(wr), 0);
        lv_cache_lookup_dispose(store, l, now);
        fixture_dispose(rq);
    }
    fixture_dispose(&rs);
}

static void store_simple(const char *target, const char *resp, const char *body)
{
    struct lv_cache_writer wr;
    struct lv_cache_lookup l;
    struct head_fixture rq;
    store_response(target, resp, body, true, &wr, &l, &rq);
}

static void spin(void)
{
    for (int i = 0; i < 10; i++)
        uv_run(&loop, UV_RUN_NOWAIT);
}

#define RESP_A                                                                                     \
    "HTTP/1.1 200 OK\r\nCache-Control: public, max-age=60\r\nETag: \"a1\"\r\nContent-Type: "       \
    "text/plain\r\nContent-Length: 5\r\nSet-Cookie: s=1\r\nConnection: keep-alive\r\n\r\n"

/* --- tests ------------------------------------------------------------------------- */

Test(cached, a_fresh_entry_is_answered_at_once_with_age_and_cache_status)
{
    cfg.forward_targeted = false;
    store_simple("/a", RESP_A, "hello");
    struct req q;
    req_start(&q, "GET /a HTTP/1.1\r\nHost: h.test\r\n\r\n");
    cr_expect_eq(q.r.heads, 1);
    cr_expect_eq(q.r.ends, 1);
    cr_expect_eq(q.r.status, 200);
    cr_expect(q.r.body && q.r.length_known && q.r.length == 5);
    cr_expect(strstr(q.r.lines, "ETag: \"a1\"\r\n") != NULL, "%s", q.r.lines);
    cr_expect(strstr(q.r.lines, "Content-Type: text/plain\r\n") != NULL);
    cr_expect(strstr(q.r.lines, "Age: 0\r\n") != NULL, "%s", q.r.lines);
    cr_expect(strstr(q.r.lines, "Cache-Status: levee; hit") != NULL, "%s", q.r.lines);
    /* Levee frames what it sends; hop-by-hop and Set-Cookie are not replayed. */
    cr_expect(strstr(q.r.lines, "Content-Length") == NULL);
    cr_expect(strstr(q.r.lines, "Connection") == NULL);
    cr_expect(strstr(q.r.lines, "Set-Cookie") == NULL);
    cr_expect(q.r.got_len == 5 && memcmp(q.r.got, "hello", 5) == 0);
    cr_expect_eq(q.c.state, LV_CD_DONE);
    req_end(&q);
    cr_expect_eq(lv_stat_read(&w.stats.cache[LV_CDR_HIT]), 1);
    cr_expect_eq(lv_stat_read(&w.stats.cache_bytes_served), 5);
}

Test(cached, head_is_answered_from_the_stored_get_with_its_length)
{
    store_simple("/a", RESP_A, "hello");
    struct req q;
    req_start(&q, "HEAD /a HTTP/1.1\r\nHost: h.test\r\n\r\n");
    cr_expect_eq(q.r.ends, 1);
    cr_expect(!q.r.body && q.r.head_only && q.r.length == 5);
    cr_expect_eq(q.r.got_len, 0);
    req_end(&q);
}

Test(cached, a_matching_client_condition_gets_304_without_a_body)
{
    store_simple("/a", RESP_A, "hello");
    struct req q;
    req_start(&q, "GET /a HTTP/1.1\r\nHost: h.test\r\nIf-None-Match: \"a1\"\r\n\r\n");
    cr_expect_eq(q.r.status, 304);
    cr_expect(!q.r.body && !q.r.head_only);
    cr_expect(strstr(q.r.lines, "ETag: \"a1\"") != NULL);
    cr_expect(strstr(q.r.lines, "Content-Type") == NULL, "%s", q.r.lines);
    cr_expect_eq(q.r.ends, 1);
    req_end(&q);
    struct req q2;
    req_start(&q2, "GET /a HTTP/1.1\r\nHost: h.test\r\nIf-None-Match: \"zz\"\r\n\r\n");
    cr_expect_eq(q2.r.status, 200);
    cr_expect_eq(q2.r.got_len, 5);
    req_end(&q2);
}

Test(cached, only_if_cached_without_an_entry_is_504_not_cached)
{
    struct req q;
    req_start(&q, "GET /none HTTP/1.1\r\nHost: h.test\r\nCache-Control: only-if-cached\r\n\r\n");
    cr_expect_eq(q.r.fails, 1);
    cr_expect_eq(q.r.fail, LV_FAIL_NOT_CACHED);
    cr_expect_eq(lv_fail_info(LV_FAIL_NOT_CACHED)->status, 504);
    cr_expect_eq(q.r.heads, 0);
    req_end(&q);
}

Test(cached, a_collapsed_miss_waits_for_the_lead_and_reads_its_body_as_it_fills)
{
    /* The lead: a lookup that claims the key, as another worker's request would. */
    struct head_fixture lrq;
    fixture_init(&lrq, HTTP_REQUEST, 64 * 1024, 100);
    fixture_feed_str(&lrq, "GET /c HTTP/1.1\r\nHost: h.test\r\n\r\n");
    struct lv_cache_req lreq;
    lv_cache_req_from_head(&lreq, &lrq.head, false);
    struct lv_cache_lookup lead;
    lv_cache_lookup_init(&lead);
    int64_t now = (int64_t)lv_clock_wall_ms();
    struct lv_cache_waiter lw = {0};
    lv_cache_lookup(store, &cfg, &lreq, now, &lw, &lead);
    cr_assert_eq(lead.action, LV_CACHE_FETCH);
    cr_assert_not_null(lead.claim);

    struct req q;
    req_start(&q, "GET /c HTTP/1.1\r\nHost: h.test\r\n\r\n");
    cr_expect_eq(q.c.state, LV_CD_WAITING);
    cr_expect_eq(q.r.heads, 0);

    /* The lead's response head: stored, the waiter wakes (through the async). */
    struct head_fixture rs;
    fixture_init(&rs, HTTP_RESPONSE, 64 * 1024, 100);
    fixture_feed_str(&rs, "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n");
    struct lv_fields rf = lv_fields_of_head(&rs.head);
    struct lv_cache_writer wr;
    enum lv_cache_nostore why;
    cr_assert_eq(lv_cache_begin(store, &cfg, &lead, &lreq, 200, &rf, now, now, &wr, &why), 0);
    cr_assert_eq(lv_cache_writer_append(&wr, "abc", 3), 0);
    spin();
    cr_expect_eq(q.r.heads, 1);
    cr_expect(q.r.body && !q.r.length_known, "the length is not known while it fills");
    cr_expect(strstr(q.r.lines, "collapsed") != NULL, "%s", q.r.lines);
    cr_expect(q.r.got_len == 3 && memcmp(q.r.got, "abc", 3) == 0);
    cr_expect_eq(q.r.ends, 0);
    cr_assert_eq(lv_cache_writer_append(&wr, "def", 3), 0);
    spin();
    cr_expect_eq(q.r.got_len, 6);
    cr_expect_eq(q.r.ends, 0);
    cr_assert_eq(lv_cache_writer_finish(&wr), 0);
    spin();
    cr_expect_eq(q.r.ends, 1);
    cr_expect(memcmp(q.r.got, "abcdef", 6) == 0);
    req_end(&q);
    cr_expect_eq(lv_stat_read(&w.stats.cache[LV_CDR_COLLAPSED]), 1);
    lv_cache_lookup_dispose(store, &lead, now);
    fixture_dispose(&rs);
    fixture_dispose(&lrq);
}

Test(cached, a_fill_that_breaks_off_cuts_the_readers_answer)
{
    struct lv_cache_writer wr;
    struct lv_cache_lookup l;
    struct head_fixture rq;
    store_response("/b",
                   "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 10\r\n\r\n",
                   "12345", false, &wr, &l, &rq);
    struct req q;
    req_start(&q, "GET /b HTTP/1.1\r\nHost: h.test\r\n\r\n");
    cr_expect_eq(q.r.heads, 1);
    cr_expect(q.r.length_known && q.r.length == 10);
    cr_expect_eq(q.r.got_len, 5);
    lv_cache_writer_abort(&wr);
    spin();
    cr_expect_eq(q.r.fails, 1);
    cr_expect_eq(q.r.fail, LV_FAIL_RESET);
    req_end(&q);
    lv_cache_lookup_dispose(store, &l, (int64_t)lv_clock_wall_ms());
    fixture_dispose(&rq);
}

Test(cached, a_slow_client_is_not_written_past_the_high_water_mark)
{
    static char big[200 * 1024];
    memset(big, 'x', sizeof(big) - 1);
    char resp[256];
    snprintf(resp, sizeof(resp),
             "HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: %zu\r\n\r\n",
             strlen(big));
    store_simple("/big", resp, big);
    struct req q;
    memset(&q.r, 0, sizeof(q.r));
    q.r.backlog = 1u << 30; /* the client reads nothing */
    /* req_start clears the record: start by hand. */
    fixture_init(&q.hf, HTTP_REQUEST, 64 * 1024, 100);
    fixture_feed_str(&q.hf, "GET /big HTTP/1.1\r\nHost: h.test\r\n\r\n");
    lv_bodyq_init(&q.body, &w.env.bufs);
    memset(&q.ar, 0, sizeof(q.ar));
    q.ar.head = &q.hf.head;
    q.ar.body = &q.body;
    q.ar.body_complete = true;
    lv_attempt_init(&q.at, &w, &at_timer);
    lv_cached_init(&q.c, &w, &q.at);
    lv_cached_start(&q.c, &q.ar, false, NULL, &cfg, &ops, &q.r);
    cr_expect_eq(q.r.heads, 1);
    cr_expect_eq(q.r.got_len, 0, "nothing written while the client is behind");
    q.r.backlog = 0;
    lv_cached_resume(&q.c);
    cr_expect_eq(q.r.got_len, strlen(big));
    cr_expect_eq(q.r.ends, 1);
    req_end(&q);
}
