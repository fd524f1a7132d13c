/*
 * The shared store (cache/store.c): lookups and variants, reference
 * lifetimes (an entry outlives its unlinking while read), memory
 * accounting to the byte, LRU eviction order, bodies filled while read,
 * waiters, collapsed-forwarding claims and pass markers, and threads
 * hammering all of it at once (run under ASan: a use after free or a leak
 * fails the test).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/store.h"
#include "unit/lv_test.h"

#define MIB (1024ull * 1024)

static struct lv_cache_entry *mk(struct lv_cache_store *s, const char *key, const char *vkey,
                                 int64_t content_length)
{
    struct lv_field f[2] = {{"Content-Type", "text/plain", 12, 10}, {"ETag", "\"1\"", 4, 3}};
    struct lv_cache_entry_spec spec = {
        .key = key,
        .key_len = strlen(key),
        .vary = vkey ? "x-v" : NULL,
        .vary_len = vkey ? 3 : 0,
        .vkey = vkey,
        .vkey_len = vkey ? strlen(vkey) : 0,
        .status = 200,
        .fields = f,
        .nfields = 2,
        .content_length = content_length,
    };
    spec.meta.lifetime = 60000;
    return lv_cache_entry_create(s, &spec);
}

/* Creates, fills with `body` and links an entry; returns the caller's ref. */
static struct lv_cache_entry *put(struct lv_cache_store *s, const char *key, const char *body,
                                  int64_t now)
{
    struct lv_cache_entry *e = mk(s, key, NULL, -1);
    cr_assert_not_null(e, "no entry for %s", key);
    lv_cache_store_insert(s, NULL, e, now);
    if (body[0]) cr_assert_eq(lv_cache_entry_append(s, e, body, strlen(body)), 0);
    cr_assert_eq(lv_cache_entry_finish(s, e), 0);
    return e;
}

static struct lv_cache_entry *get(struct lv_cache_store *s, const char *key, int64_t now)
{
    struct lv_cache_found f;
    lv_cache_store_find(s, key, strlen(key), NULL, NULL, now, &f);
    return f.entry;
}

static bool has(struct lv_cache_store *s, const char *key)
{
    struct lv_cache_entry *e = get(s, key, 0);
    lv_cache_entry_release(e);
    return e != NULL;
}

/* The whole body as a string (complete bodies only). */
static char *body_of(const struct lv_cache_entry *e)
{
    static char out[65536];
    struct lv_cache_cursor c;
    lv_cache_cursor_init(&c);
    size_t len = 0;
    const char *p;
    size_t n;
    enum lv_cache_read r;
    while ((r = lv_cache_entry_read(e, &c, 7, &p, &n)) == LV_READ_DATA) {
        cr_assert_lt(len + n, sizeof(out));
        memcpy(out + len, p, n);
        len += n;
    }
    cr_assert_eq(r, LV_READ_END);
    out[len] = '\0';
    return out;
}

static uint64_t bytes(struct lv_cache_store *s)
{
    struct lv_cache_store_stats st;
    lv_cache_store_stats(s, &st);
    return st.bytes;
}

static uint64_t entries(struct lv_cache_store *s)
{
    struct lv_cache_store_stats st;
    lv_cache_store_stats(s, &st);
    return st.entries;
}

Test(store, insert_find_release)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    cr_assert_not_null(s);
    struct lv_cache_entry *e = put(s, "GET h /a", "hello", 1);
    lv_cache_entry_release(e);
    e = get(s, "GET h /a", 2);
    cr_assert_not_null(e);
    cr_expect_str_eq(body_of(e), "hello");
    cr_expect_eq(lv_cache_entry_status(e), 200);
    cr_expect_eq(lv_cache_entry_length(e), 5);
    cr_expect_eq(lv_cache_entry_state(e), LV_BODY_COMPLETE);
    size_t klen;
    cr_expect_eq(memcmp(lv_cache_entry_key(e, &klen), "GET h /a", 8), 0);
    cr_expect_eq(klen, 8);
    struct lv_fields f = lv_cache_entry_fields(e);
    cr_expect_eq(f.n, 2);
    cr_expect(lv_fields_is(&f, 1, "etag", 4));
    cr_expect_eq(lv_cache_entry_meta(e)->lifetime, 60000);
    lv_cache_entry_release(e);
    cr_expect_null(get(s, "GET h /b", 2));
    cr_expect_null(get(s, "GET h /", 2));
    cr_expect_eq(entries(s), 1);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, a_read_entry_outlives_its_removal)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    lv_cache_entry_release(put(s, "k", "payload", 1));
    struct lv_cache_entry *e = get(s, "k", 2);
    cr_assert_not_null(e);
    cr_expect_eq(lv_cache_store_remove(s, "k", 1), 1);
    cr_expect_not(lv_cache_entry_linked(e));
    cr_expect_null(get(s, "k", 3));
    cr_expect_eq(entries(s), 0);
    cr_expect_gt(bytes(s), 0); /* still held by the reader, still counted */
    cr_expect_str_eq(body_of(e), "payload");
    lv_cache_entry_release(e);
    cr_expect_eq(bytes(s), 0);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, replacing_keeps_the_old_copy_for_its_readers)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    lv_cache_entry_release(put(s, "k", "old", 1));
    struct lv_cache_entry *old = get(s, "k", 2);
    lv_cache_entry_release(put(s, "k", "new", 3));
    cr_expect_eq(entries(s), 1);
    struct lv_cache_entry *now = get(s, "k", 4);
    cr_expect_str_eq(body_of(now), "new");
    cr_expect_str_eq(body_of(old), "old");
    lv_cache_entry_release(old);
    lv_cache_entry_release(now);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, accounting_to_the_byte)
{
    struct lv_cache_store *s = lv_cache_store_create(64 * MIB, 8 * MIB);
    cr_expect_eq(bytes(s), 0);
    struct lv_cache_entry *e = mk(s, "k", NULL, -1);
    uint64_t head = bytes(s);
    cr_expect_gt(head, 100); /* entry block and body header */
    cr_expect_lt(head, 1000);
    static char chunk[1000];
    memset(chunk, 'x', sizeof(chunk));
    cr_assert_eq(lv_cache_entry_append(s, e, chunk, sizeof(chunk)), 0);
    uint64_t one = bytes(s);
    cr_expect_geq(one - head, 4096); /* the first chunk of an unknown length */
    for (int i = 0; i < 99; i++)
        cr_assert_eq(lv_cache_entry_append(s, e, chunk, sizeof(chunk)), 0);
    /* Chunks double: memory stays within 2x the body (plus headers). */
    cr_expect_lt(bytes(s) - head, 2 * 100000 + 1024);
    cr_expect_geq(bytes(s) - head, 100000);
    cr_assert_eq(lv_cache_entry_finish(s, e), 0);
    lv_cache_entry_release(e); /* never linked: freed */
    cr_expect_eq(bytes(s), 0);
    /* A known length is one allocation of that size. */
    e = mk(s, "k", NULL, 100000);
    head = bytes(s);
    cr_assert_eq(lv_cache_entry_append(s, e, chunk, sizeof(chunk)), 0);
    uint64_t whole = bytes(s) - head;
    cr_expect_geq(whole, 100000);
    cr_expect_lt(whole, 100000 + 100);
    for (int i = 0; i < 99; i++)
        cr_assert_eq(lv_cache_entry_append(s, e, chunk, sizeof(chunk)), 0);
    cr_expect_eq(bytes(s) - head, whole);
    cr_assert_eq(lv_cache_entry_finish(s, e), 0);
    lv_cache_entry_release(e);
    cr_expect_eq(bytes(s), 0);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, lru_eviction_order)
{
    /* Room for about 4 entries of 10 KB. */
    struct lv_cache_store *s = lv_cache_store_create(4 * 11000, MIB);
    static char body[10001];
    memset(body, 'b', 10000);
    const char *keys[] = {"GET h /1", "GET h /2", "GET h /3", "GET h /4"};
    for (int i = 0; i < 4; i++) {
        struct lv_cache_entry *e = mk(s, keys[i], NULL, 10000);
        cr_assert_not_null(e);
        lv_cache_store_insert(s, NULL, e, 100 + i);
        cr_assert_eq(lv_cache_entry_append(s, e, body, 10000), 0);
        cr_assert_eq(lv_cache_entry_finish(s, e), 0);
        lv_cache_entry_release(e);
    }
    cr_expect_eq(entries(s), 4);
    /* /1 is used again: /2 is now the least recently used. */
    lv_cache_entry_release(get(s, "GET h /1", 200));
    struct lv_cache_entry *e = mk(s, "GET h /5", NULL, 10000);
    lv_cache_store_insert(s, NULL, e, 201);
    cr_assert_eq(lv_cache_entry_append(s, e, body, 10000), 0);
    cr_assert_eq(lv_cache_entry_finish(s, e), 0);
    lv_cache_entry_release(e);
    cr_expect_not(has(s, "GET h /2"));
    cr_expect(has(s, "GET h /1"));
    cr_expect(has(s, "GET h /3"));
    cr_expect(has(s, "GET h /4"));
    cr_expect(has(s, "GET h /5"));
    struct lv_cache_store_stats st;
    lv_cache_store_stats(s, &st);
    cr_expect_eq(st.evictions, 1);
    cr_expect_eq(st.inserts, 5);
    cr_expect_leq(st.bytes, st.max_bytes);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, eviction_spans_shards_in_lru_order)
{
    /* Many keys (spread over the shards), each used at its own time: the
     * survivors are exactly the most recently used. */
    struct lv_cache_store *s = lv_cache_store_create(64 * 1024, MIB);
    char key[32];
    int n = 0;
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "GET h /%d", i);
        struct lv_cache_entry *e = mk(s, key, NULL, -1);
        cr_assert_not_null(e);
        lv_cache_store_insert(s, NULL, e, 1000 + i);
        cr_assert_eq(lv_cache_entry_finish(s, e), 0);
        lv_cache_entry_release(e);
    }
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "GET h /%d", i);
        n += has(s, key);
    }
    cr_expect_gt(n, 10);
    cr_expect_lt(n, 400);
    for (int i = 0; i < 400; i++) {
        snprintf(key, sizeof(key), "GET h /%d", i);
        cr_expect_eq(has(s, key), i >= 400 - n, "/%d (%d kept)", i, n);
    }
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, filling_entries_are_not_evicted)
{
    struct lv_cache_store *s = lv_cache_store_create(3 * 11000, MIB);
    static char body[10000];
    struct lv_cache_entry *filling = mk(s, "GET h /filling", NULL, -1);
    lv_cache_store_insert(s, NULL, filling, 1);
    cr_assert_eq(lv_cache_entry_append(s, filling, body, 5000), 0);
    for (int i = 0; i < 5; i++) {
        char key[32];
        snprintf(key, sizeof(key), "GET h /%d", i);
        struct lv_cache_entry *e = mk(s, key, NULL, 10000);
        lv_cache_store_insert(s, NULL, e, 10 + i);
        lv_cache_entry_append(s, e, body, 10000);
        lv_cache_entry_finish(s, e);
        lv_cache_entry_release(e);
    }
    cr_expect(has(s, "GET h /filling"));
    cr_expect(has(s, "GET h /4"));
    cr_expect_not(has(s, "GET h /0"));
    cr_expect_eq(lv_cache_entry_finish(s, filling), 0);
    lv_cache_entry_release(filling);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, no_room_when_everything_is_read)
{
    /* Entries being read are evicted (unlinked) but their memory stays
     * until the readers are done: the bound holds, the fill fails. */
    struct lv_cache_store *s = lv_cache_store_create(2 * 11000, MIB);
    static char body[10000];
    struct lv_cache_entry *a = mk(s, "a", NULL, 10000);
    lv_cache_store_insert(s, NULL, a, 1);
    lv_cache_entry_append(s, a, body, 10000);
    lv_cache_entry_finish(s, a);
    struct lv_cache_entry *b = mk(s, "b", NULL, 10000);
    lv_cache_store_insert(s, NULL, b, 2);
    lv_cache_entry_append(s, b, body, 10000);
    lv_cache_entry_finish(s, b);
    struct lv_cache_entry *c = mk(s, "c", NULL, 10000);
    cr_assert_not_null(c);
    lv_cache_store_insert(s, NULL, c, 3);
    cr_expect_eq(lv_cache_entry_append(s, c, body, 10000), -1);
    cr_expect_eq(lv_cache_entry_state(c), LV_BODY_ABORTED);
    cr_expect_not(lv_cache_entry_linked(c));
    cr_expect_not(has(s, "a"));
    cr_expect_not(has(s, "b"));
    cr_expect_leq(bytes(s), 2 * 11000);
    lv_cache_entry_release(a);
    lv_cache_entry_release(b);
    lv_cache_entry_release(c);
    cr_expect_eq(bytes(s), 0);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, max_object_size)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, 10000);
    static char body[6000];
    struct lv_cache_entry *e = mk(s, "k", NULL, -1);
    lv_cache_store_insert(s, NULL, e, 1);
    struct lv_cache_entry *reader = get(s, "k", 2);
    cr_assert_eq(lv_cache_entry_append(s, e, body, 6000), 0);
    cr_expect_eq(lv_cache_entry_append(s, e, body, 4001), -1);
    cr_expect_null(get(s, "k", 3));
    /* A reader that joined it sees the bytes so far, then the abort. */
    struct lv_cache_cursor c;
    lv_cache_cursor_init(&c);
    const char *p;
    size_t n, total = 0;
    enum lv_cache_read r;
    while ((r = lv_cache_entry_read(reader, &c, 100000, &p, &n)) == LV_READ_DATA)
        total += n;
    cr_expect_eq(total, 6000);
    cr_expect_eq(r, LV_READ_ABORTED);
    lv_cache_entry_release(reader);
    lv_cache_entry_release(e);
    /* Exactly the limit fits. */
    e = mk(s, "k", NULL, -1);
    cr_expect_eq(lv_cache_entry_append(s, e, body, 6000), 0);
    cr_expect_eq(lv_cache_entry_append(s, e, body, 4000), 0);
    cr_expect_eq(lv_cache_entry_finish(s, e), 0);
    lv_cache_entry_release(e);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, short_body_is_aborted)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_entry *e = mk(s, "k", NULL, 10);
    lv_cache_store_insert(s, NULL, e, 1);
    cr_assert_eq(lv_cache_entry_append(s, e, "12345", 5), 0);
    cr_expect_eq(lv_cache_entry_length(e), 10);
    cr_expect_eq(lv_cache_entry_finish(s, e), -1);
    cr_expect_eq(lv_cache_entry_state(e), LV_BODY_ABORTED);
    cr_expect_null(get(s, "k", 2));
    lv_cache_entry_release(e);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

struct counter {
    atomic_int fired;
};

static void on_wake(void *arg)
{
    struct counter *c = arg;
    atomic_fetch_add(&c->fired, 1);
}

Test(store, readers_follow_a_filling_body)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_entry *e = mk(s, "k", NULL, -1);
    lv_cache_store_insert(s, NULL, e, 1);
    struct lv_cache_entry *r = get(s, "k", 2);
    cr_assert_not_null(r);
    struct lv_cache_cursor c;
    lv_cache_cursor_init(&c);
    const char *p;
    size_t n;
    cr_expect_eq(lv_cache_entry_read(r, &c, 100, &p, &n), LV_READ_WAIT);
    cr_expect_eq(lv_cache_entry_length(r), -1);
    struct counter cnt = {0};
    struct lv_cache_waiter w = {.cb = on_wake, .arg = &cnt};
    cr_assert(lv_cache_entry_wait(r, &c, &w));
    cr_assert_eq(lv_cache_entry_append(s, e, "abc", 3), 0);
    cr_expect_eq(atomic_load(&cnt.fired), 1);
    cr_expect_not(lv_cache_waiter_cancel(&w)); /* fired already */
    cr_assert_eq(lv_cache_entry_read(r, &c, 100, &p, &n), LV_READ_DATA);
    cr_expect_eq(n, 3);
    cr_expect_eq(memcmp(p, "abc", 3), 0);
    /* Bytes there: no wait. */
    cr_assert_eq(lv_cache_entry_append(s, e, "de", 2), 0);
    cr_expect_not(lv_cache_entry_wait(r, &c, &w));
    cr_assert_eq(lv_cache_entry_read(r, &c, 1, &p, &n), LV_READ_DATA);
    cr_expect_eq(n, 1);
    cr_expect_eq(*p, 'd');
    cr_assert_eq(lv_cache_entry_read(r, &c, 100, &p, &n), LV_READ_DATA);
    cr_expect_eq(*p, 'e');
    /* The end wakes too. */
    cr_assert(lv_cache_entry_wait(r, &c, &w));
    cr_assert_eq(lv_cache_entry_finish(s, e), 0);
    cr_expect_eq(atomic_load(&cnt.fired), 2);
    cr_expect_eq(lv_cache_entry_read(r, &c, 100, &p, &n), LV_READ_END);
    cr_expect_eq(lv_cache_entry_length(r), 5);
    cr_expect_not(lv_cache_entry_wait(r, &c, &w));
    /* A waiter cancelled before anything happens never fires. */
    struct lv_cache_entry *e2 = mk(s, "k2", NULL, -1);
    struct lv_cache_cursor c2;
    lv_cache_cursor_init(&c2);
    cr_assert(lv_cache_entry_wait(e2, &c2, &w));
    cr_expect(lv_cache_waiter_cancel(&w));
    lv_cache_entry_abort(s, e2);
    cr_expect_eq(atomic_load(&cnt.fired), 2);
    cr_expect_eq(lv_cache_entry_read(e2, &c2, 10, &p, &n), LV_READ_ABORTED);
    lv_cache_entry_release(e2);
    lv_cache_entry_release(r);
    lv_cache_entry_release(e);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, several_waiters_and_cancel_in_the_middle)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_entry *e = mk(s, "k", NULL, -1);
    struct lv_cache_cursor c;
    lv_cache_cursor_init(&c);
    struct counter cnt[3] = {{0}, {0}, {0}};
    struct lv_cache_waiter w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (struct lv_cache_waiter){.cb = on_wake, .arg = &cnt[i]};
        cr_assert(lv_cache_entry_wait(e, &c, &w[i]));
    }
    cr_expect(lv_cache_waiter_cancel(&w[1]));
    cr_expect_not(lv_cache_waiter_cancel(&w[1]));
    cr_assert_eq(lv_cache_entry_append(s, e, "x", 1), 0);
    cr_expect_eq(atomic_load(&cnt[0].fired), 1);
    cr_expect_eq(atomic_load(&cnt[1].fired), 0);
    cr_expect_eq(atomic_load(&cnt[2].fired), 1);
    lv_cache_entry_finish(s, e);
    lv_cache_entry_release(e);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, variants)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_entry *a = mk(s, "k", "=a\n", -1), *b = mk(s, "k", "=b\n", -1);
    lv_cache_store_insert(s, NULL, a, 1);
    lv_cache_store_insert(s, NULL, b, 2);
    lv_cache_entry_finish(s, a);
    lv_cache_entry_finish(s, b);
    cr_expect_eq(entries(s), 2);
    cr_expect(lv_cache_entry_linked(a));
    cr_expect(lv_cache_entry_linked(b));
    /* Newest first. */
    struct lv_cache_entry *found = get(s, "k", 3);
    cr_expect_eq(found, b);
    lv_cache_entry_release(found);
    /* The same variant again replaces it. */
    struct lv_cache_entry *a2 = mk(s, "k", "=a\n", -1);
    lv_cache_store_insert(s, NULL, a2, 4);
    lv_cache_entry_finish(s, a2);
    cr_expect_not(lv_cache_entry_linked(a));
    cr_expect(lv_cache_entry_linked(b));
    cr_expect_eq(entries(s), 2);
    /* Another set of Vary names replaces them all. */
    struct lv_cache_entry *plain = mk(s, "k", NULL, -1);
    lv_cache_store_insert(s, NULL, plain, 5);
    lv_cache_entry_finish(s, plain);
    cr_expect_not(lv_cache_entry_linked(b));
    cr_expect_not(lv_cache_entry_linked(a2));
    cr_expect_eq(entries(s), 1);
    lv_cache_entry_release(a);
    lv_cache_entry_release(b);
    lv_cache_entry_release(a2);
    lv_cache_entry_release(plain);
    /* At most LV_CACHE_MAX_VARIANTS per key: the oldest go. */
    struct lv_cache_entry *v[LV_CACHE_MAX_VARIANTS + 4];
    for (int i = 0; i < LV_CACHE_MAX_VARIANTS + 4; i++) {
        char vk[16];
        snprintf(vk, sizeof(vk), "=%d\n", i);
        v[i] = mk(s, "k", vk, -1);
        lv_cache_store_insert(s, NULL, v[i], 10 + i);
        lv_cache_entry_finish(s, v[i]);
    }
    cr_expect_eq(entries(s), LV_CACHE_MAX_VARIANTS);
    for (int i = 0; i < LV_CACHE_MAX_VARIANTS + 4; i++) {
        cr_expect_eq(lv_cache_entry_linked(v[i]), i >= 4, "variant %d", i);
        lv_cache_entry_release(v[i]);
    }
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

static bool match_vkey(const struct lv_cache_entry *e, void *arg)
{
    const char *vary, *vkey;
    size_t vl, vkl;
    lv_cache_entry_vary(e, &vary, &vl, &vkey, &vkl);
    return vkl == strlen(arg) && memcmp(vkey, arg, vkl) == 0;
}

Test(store, find_with_a_matcher)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_entry *a = mk(s, "k", "=a\n", -1), *b = mk(s, "k", "=b\n", -1);
    lv_cache_store_insert(s, NULL, a, 1);
    lv_cache_store_insert(s, NULL, b, 2);
    struct lv_cache_found f;
    lv_cache_store_find(s, "k", 1, match_vkey, "=a\n", 3, &f);
    cr_expect_eq(f.entry, a);
    cr_expect(f.key_known);
    lv_cache_entry_release(f.entry);
    lv_cache_store_find(s, "k", 1, match_vkey, "=c\n", 3, &f);
    cr_expect_null(f.entry);
    cr_expect(f.key_known); /* a vary miss */
    lv_cache_store_find(s, "j", 1, match_vkey, "=a\n", 3, &f);
    cr_expect_null(f.entry);
    cr_expect_not(f.key_known); /* a URI miss */
    lv_cache_entry_finish(s, a);
    lv_cache_entry_finish(s, b);
    lv_cache_entry_release(a);
    lv_cache_entry_release(b);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, shared_bodies)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_entry *a = put(s, "k", "the body", 1);
    struct lv_field f[1] = {{"ETag", "\"2\"", 4, 3}};
    struct lv_cache_entry_spec spec = {
        .key = "k", .key_len = 1, .status = 200, .fields = f, .nfields = 1, .share_of = a};
    uint64_t before = bytes(s);
    struct lv_cache_entry *b = lv_cache_entry_create(s, &spec);
    cr_assert_not_null(b);
    cr_expect_lt(bytes(s) - before, 400); /* a head, not a second body */
    lv_cache_store_insert(s, NULL, b, 2);
    cr_expect_not(lv_cache_entry_linked(a));
    lv_cache_entry_release(a);
    cr_expect_str_eq(body_of(b), "the body");
    lv_cache_entry_release(b);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, head_limits)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    static struct lv_field many[LV_CACHE_MAX_FIELDS + 1];
    for (int i = 0; i <= LV_CACHE_MAX_FIELDS; i++)
        many[i] = (struct lv_field){"X", "1", 1, 1};
    struct lv_cache_entry_spec spec = {.key = "k",
                                       .key_len = 1,
                                       .status = 200,
                                       .fields = many,
                                       .nfields = LV_CACHE_MAX_FIELDS + 1,
                                       .content_length = -1};
    cr_expect_null(lv_cache_entry_create(s, &spec));
    spec.nfields = LV_CACHE_MAX_FIELDS;
    struct lv_cache_entry *e = lv_cache_entry_create(s, &spec);
    cr_expect_not_null(e);
    lv_cache_entry_release(e);
    static char big[LV_CACHE_HEAD_MAX];
    memset(big, 'v', sizeof(big));
    struct lv_field f = {"X", big, 1, sizeof(big)};
    spec.fields = &f;
    spec.nfields = 1;
    cr_expect_null(lv_cache_entry_create(s, &spec));
    cr_expect_eq(bytes(s), 0);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, remove_and_purge_prefix)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    const char *keys[] = {"GET h /a", "GET h /a/1", "GET h /a/2?x", "GET h /b", "GET g /a"};
    for (int i = 0; i < 5; i++)
        lv_cache_entry_release(put(s, keys[i], "x", i));
    cr_expect_eq(lv_cache_store_remove(s, "GET h /a", 8), 1);
    cr_expect_eq(lv_cache_store_remove(s, "GET h /a", 8), 0);
    cr_expect_eq(lv_cache_store_remove_prefix(s, "GET h /a/", 9), 2);
    cr_expect(has(s, "GET h /b"));
    cr_expect(has(s, "GET g /a"));
    cr_expect_eq(lv_cache_store_remove_prefix(s, "", 0), 2);
    cr_expect_eq(entries(s), 0);
    cr_expect_eq(bytes(s), 0);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

static bool count_cb(const struct lv_cache_entry *e, void *arg)
{
    (void)e;
    (*(int *)arg)++;
    return true;
}

Test(store, each_and_set_limits)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    char key[32];
    for (int i = 0; i < 50; i++) {
        snprintf(key, sizeof(key), "/%d", i);
        lv_cache_entry_release(put(s, key, "0123456789", i));
    }
    int n = 0;
    lv_cache_store_each(s, count_cb, &n);
    cr_expect_eq(n, 50);
    /* A reload that shrinks the cache evicts down, oldest first. */
    uint64_t half = bytes(s) / 2;
    lv_cache_store_set_limits(s, half, MIB);
    cr_expect_leq(bytes(s), half);
    cr_expect(has(s, "/49"));
    cr_expect_not(has(s, "/0"));
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, refresh_once_per_lease)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_entry *e = put(s, "k", "", 1);
    cr_expect(lv_cache_entry_refresh_begin(e, 1000));
    cr_expect_not(lv_cache_entry_refresh_begin(e, 1001));
    cr_expect_not(lv_cache_entry_refresh_begin(e, 1000 + LV_CACHE_REFRESH_LEASE - 1));
    cr_expect(lv_cache_entry_refresh_begin(e, 1000 + LV_CACHE_REFRESH_LEASE));
    lv_cache_entry_refresh_end(e);
    cr_expect(lv_cache_entry_refresh_begin(e, 1000 + LV_CACHE_REFRESH_LEASE + 1));
    lv_cache_entry_release(e);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

/* --- claims ------------------------------------------------------------------------ */

Test(store, one_fetch_per_key)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_claim *lead, *c;
    struct counter cnt = {0};
    struct lv_cache_waiter w1 = {.cb = on_wake, .arg = &cnt}, w2 = {.cb = on_wake, .arg = &cnt};
    cr_assert_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 1, NULL, &lead), LV_CLAIM_LEAD);
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 1, &w1, &c), LV_CLAIM_WAIT);
    cr_expect_null(c);
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 1, &w2, &c), LV_CLAIM_WAIT);
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 1, NULL, &c), LV_CLAIM_NONE);
    /* Another key is another fetch. */
    struct lv_cache_claim *other;
    cr_expect_eq(lv_cache_store_claim(s, "j", 1, NULL, NULL, NULL, 1, NULL, &other), LV_CLAIM_LEAD);
    lv_cache_store_unclaim(s, other, 1, 0);
    cr_expect_eq(atomic_load(&cnt.fired), 0);
    /* The lead stores: the waiters wake and find it. */
    struct lv_cache_entry *e = mk(s, "k", NULL, -1);
    lv_cache_store_insert(s, lead, e, 2);
    cr_expect_eq(atomic_load(&cnt.fired), 2);
    cr_expect_not(lv_cache_waiter_cancel(&w1));
    struct lv_cache_entry *r = get(s, "k", 3);
    cr_expect_eq(r, e);
    lv_cache_entry_release(r);
    /* A request that looked up before the insert is told to look again. */
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 4, NULL, &c), LV_CLAIM_CHANGED);
    cr_expect_null(c);
    /* The key is free again (say, to revalidate what it found). */
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, e, 4, NULL, &c), LV_CLAIM_LEAD);
    lv_cache_store_unclaim(s, c, 4, 0);
    lv_cache_entry_finish(s, e);
    lv_cache_entry_release(e);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, unclaim_releases_waiters_and_may_leave_a_pass_marker)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_claim *lead, *c;
    struct counter cnt = {0};
    struct lv_cache_waiter w = {.cb = on_wake, .arg = &cnt};
    cr_assert_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 100, NULL, &lead),
                 LV_CLAIM_LEAD);
    cr_assert_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 100, &w, &c), LV_CLAIM_WAIT);
    lv_cache_store_unclaim(s, lead, 100, 1100);
    cr_expect_eq(atomic_load(&cnt.fired), 1);
    /* Until 1100, misses on k do not wait for each other. */
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 200, &w, &c), LV_CLAIM_NONE);
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 1099, &w, &c), LV_CLAIM_NONE);
    cr_expect_not(w.armed);
    cr_expect_null(get(s, "k", 200)); /* a marker is not a response */
    cr_expect_eq(entries(s), 0);
    cr_expect_gt(bytes(s), 0); /* it is charged */
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 1100, NULL, &c), LV_CLAIM_LEAD);
    cr_expect_eq(bytes(s), 0); /* the expired marker went */
    /* A stored response removes the marker. */
    lv_cache_store_unclaim(s, c, 1100, 5000);
    struct lv_cache_entry *e = put(s, "k", "x", 1200);
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, e, 1300, NULL, &c), LV_CLAIM_LEAD);
    lv_cache_store_unclaim(s, c, 1300, 0);
    lv_cache_entry_release(e);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, claim_checks_what_the_lookup_saw)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_entry *a = mk(s, "k", "=a\n", -1);
    lv_cache_store_insert(s, NULL, a, 1);
    struct lv_cache_claim *c;
    /* Another variant stored meanwhile is not a change for this request. */
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, match_vkey, "=b\n", NULL, 2, NULL, &c),
                 LV_CLAIM_LEAD);
    lv_cache_store_unclaim(s, c, 2, 0);
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, match_vkey, "=a\n", NULL, 2, NULL, &c),
                 LV_CLAIM_CHANGED);
    /* A newer copy of what it saw is. */
    struct lv_cache_entry *a2 = mk(s, "k", "=a\n", -1);
    lv_cache_store_insert(s, NULL, a2, 3);
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, match_vkey, "=a\n", a, 4, NULL, &c),
                 LV_CLAIM_CHANGED);
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, match_vkey, "=a\n", a2, 4, NULL, &c),
                 LV_CLAIM_LEAD);
    lv_cache_store_unclaim(s, c, 4, 0);
    lv_cache_entry_finish(s, a);
    lv_cache_entry_finish(s, a2);
    lv_cache_entry_release(a);
    lv_cache_entry_release(a2);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, waiter_cancelled_before_the_lead_ends)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_claim *lead, *c;
    struct counter cnt = {0};
    struct lv_cache_waiter w = {.cb = on_wake, .arg = &cnt};
    lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 1, NULL, &lead);
    cr_assert_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 1, &w, &c), LV_CLAIM_WAIT);
    cr_expect(lv_cache_waiter_cancel(&w)); /* collapse_timeout: it goes alone */
    lv_cache_store_unclaim(s, lead, 2, 0);
    cr_expect_eq(atomic_load(&cnt.fired), 0);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

/* --- threads ------------------------------------------------------------------------ */

#define NTHREADS 6
#define NKEYS 64

struct hammer {
    struct lv_cache_store *s;
    unsigned seed;
    atomic_int *errors;
};

/* The body of key k in generation g: its bytes say which (a torn or mixed
 * read shows). */
static size_t body_for(int k, unsigned g, char *out)
{
    size_t len = 100 + (size_t)((k * 131 + g * 17) % 20000);
    for (size_t i = 0; i < len; i++)
        out[i] = (char)('a' + (k + g + i) % 26);
    return len;
}

static bool body_ok(const struct lv_cache_entry *e, int k)
{
    /* The generation is in a field. */
    struct lv_fields f = lv_cache_entry_fields(e);
    struct lv_field g;
    uint32_t i = 0;
    if (!lv_fields_next(&f, "x-gen", 5, &i, &g)) return false;
    char num[16] = "";
    if (g.value_len >= sizeof(num)) return false;
    memcpy(num, g.value, g.value_len); /* field values are not NUL-terminated */
    unsigned gen = (unsigned)strtoul(num, NULL, 10);
    static __thread char want[32768];
    size_t len = body_for(k, gen, want), off = 0;
    struct lv_cache_cursor c;
    lv_cache_cursor_init(&c);
    const char *p;
    size_t n;
    enum lv_cache_read r;
    while ((r = lv_cache_entry_read(e, &c, 3000, &p, &n)) == LV_READ_DATA) {
        if (off + n > len || memcmp(p, want + off, n) != 0) return false;
        off += n;
    }
    return r == LV_READ_ABORTED || r == LV_READ_WAIT || (r == LV_READ_END && off == len);
}

static void *hammer(void *arg)
{
    struct hammer *h = arg;
    static __thread char body[32768];
    char key[32], gen[16];
    for (int it = 0; it < 3000; it++) {
        unsigned r = (unsigned)rand_r(&h->seed);
        int k = (int)(r % NKEYS);
        snprintf(key, sizeof(key), "GET h /%d", k);
        int64_t now = it;
        switch (r / NKEYS % 8) {
        case 0:
        case 1: { /* store a new generation, in pieces */
            unsigned g = r / 1024;
            snprintf(gen, sizeof(gen), "%u", g);
            struct lv_field f = {"X-Gen", gen, 5, (uint32_t)strlen(gen)};
            struct lv_cache_entry_spec spec = {.key = key,
                                               .key_len = strlen(key),
                                               .status = 200,
                                               .fields = &f,
                                               .nfields = 1,
                                               .content_length = (r & 1) ? -1 : 0};
            size_t len = body_for(k, g, body);
            if (!(r & 1)) spec.content_length = (int64_t)len;
            struct lv_cache_entry *e = lv_cache_entry_create(h->s, &spec);
            if (e == NULL) break;
            lv_cache_store_insert(h->s, NULL, e, now);
            size_t off = 0;
            int rc = 0;
            while (off < len && rc == 0) {
                size_t n = 1 + (size_t)rand_r(&h->seed) % 5000;
                if (n > len - off) n = len - off;
                rc = lv_cache_entry_append(h->s, e, body + off, n);
                off += n;
            }
            if (rc == 0) {
                if (r & 2)
                    lv_cache_entry_finish(h->s, e);
                else if ((r & 12) == 0)
                    lv_cache_entry_abort(h->s, e);
                else
                    lv_cache_entry_finish(h->s, e);
            }
            lv_cache_entry_release(e);
            break;
        }
        case 2: lv_cache_store_remove(h->s, key, strlen(key)); break;
        case 3: { /* claim, then store or give up */
            struct lv_cache_claim *c;
            if (lv_cache_store_claim(h->s, key, strlen(key), NULL, NULL, NULL, now, NULL, &c) ==
                LV_CLAIM_LEAD)
                lv_cache_store_unclaim(h->s, c, now, (r & 1) ? now + 5 : 0);
            break;
        }
        default: { /* read */
            struct lv_cache_found f;
            lv_cache_store_find(h->s, key, strlen(key), NULL, NULL, now, &f);
            if (f.entry) {
                if (!body_ok(f.entry, k)) atomic_fetch_add(h->errors, 1);
                lv_cache_entry_release(f.entry);
            }
        }
        }
    }
    return NULL;
}

Test(store, threads_hammering, .timeout = 120)
{
    /* Small enough that evictions happen all the time. */
    struct lv_cache_store *s = lv_cache_store_create(256 * 1024, 64 * 1024);
    atomic_int errors = 0;
    pthread_t t[NTHREADS];
    struct hammer h[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        h[i] = (struct hammer){s, (unsigned)i * 7919u + 1, &errors};
        cr_assert_eq(pthread_create(&t[i], NULL, hammer, &h[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(t[i], NULL);
    cr_expect_eq(atomic_load(&errors), 0);
    struct lv_cache_store_stats st;
    lv_cache_store_stats(s, &st);
    cr_expect_leq(st.bytes, st.max_bytes);
    cr_expect_gt(st.evictions, 0);
    cr_expect_gt(st.inserts, 1000);
    /* Nothing leaks in the accounting: everything removed, nothing held. */
    lv_cache_store_remove_prefix(s, "", 0);
    struct lv_cache_claim *c;
    for (int k = 0; k < NKEYS; k++) { /* expired pass markers go on the next claim */
        char key[32];
        snprintf(key, sizeof(key), "GET h /%d", k);
        if (lv_cache_store_claim(s, key, strlen(key), NULL, NULL, NULL, 1 << 30, NULL, &c) ==
            LV_CLAIM_LEAD)
            lv_cache_store_unclaim(s, c, 1 << 30, 0);
    }
    lv_cache_store_stats(s, &st);
    cr_expect_eq(st.entries, 0);
    cr_expect_eq(st.bytes, 0);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

/* One writer streams a body while readers on other threads follow it. */
struct follower {
    struct lv_cache_store *s;
    struct lv_cache_entry *e;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int wakes;
    size_t got;
    bool ok;
};

static void follower_wake(void *arg)
{
    struct follower *f = arg;
    pthread_mutex_lock(&f->lock);
    f->wakes++;
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

#define STREAM_LEN (3 * 1024 * 1024 + 17)

static void *follow(void *arg)
{
    struct follower *f = arg;
    struct lv_cache_cursor c;
    lv_cache_cursor_init(&c);
    struct lv_cache_waiter w = {.cb = follower_wake, .arg = f};
    f->ok = true;
    for (;;) {
        const char *p;
        size_t n;
        enum lv_cache_read r = lv_cache_entry_read(f->e, &c, 65536, &p, &n);
        if (r == LV_READ_DATA) {
            for (size_t i = 0; i < n; i++) {
                if (p[i] != (char)((f->got + i) % 251)) f->ok = false;
            }
            f->got += n;
            continue;
        }
        if (r != LV_READ_WAIT) {
            f->ok = f->ok && r == LV_READ_END;
            return NULL;
        }
        pthread_mutex_lock(&f->lock);
        int seen = f->wakes;
        pthread_mutex_unlock(&f->lock);
        if (!lv_cache_entry_wait(f->e, &c, &w)) continue;
        pthread_mutex_lock(&f->lock);
        while (f->wakes == seen)
            pthread_cond_wait(&f->cond, &f->lock);
        pthread_mutex_unlock(&f->lock);
    }
}

Test(store, readers_follow_a_writer_across_threads, .timeout = 120)
{
    struct lv_cache_store *s = lv_cache_store_create(64 * MIB, 8 * MIB);
    struct lv_cache_entry *e = mk(s, "k", NULL, -1);
    lv_cache_store_insert(s, NULL, e, 1);
    struct follower f[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
        f[i] = (struct follower){.s = s, .e = lv_cache_entry_ref(e)};
        pthread_mutex_init(&f[i].lock, NULL);
        pthread_cond_init(&f[i].cond, NULL);
        cr_assert_eq(pthread_create(&t[i], NULL, follow, &f[i]), 0);
    }
    static char buf[8192];
    size_t off = 0;
    unsigned seed = 42;
    while (off < STREAM_LEN) {
        size_t n = 1 + (size_t)rand_r(&seed) % sizeof(buf);
        if (n > STREAM_LEN - off) n = STREAM_LEN - off;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)((off + i) % 251);
        cr_assert_eq(lv_cache_entry_append(s, e, buf, n), 0);
        off += n;
    }
    cr_assert_eq(lv_cache_entry_finish(s, e), 0);
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        cr_expect(f[i].ok, "reader %d saw wrong bytes or no end", i);
        cr_expect_eq(f[i].got, STREAM_LEN);
        lv_cache_entry_release(f[i].e);
        pthread_mutex_destroy(&f[i].lock);
        pthread_cond_destroy(&f[i].cond);
    }
    lv_cache_entry_release(e);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

/* Many requests miss one key at once: one leads, all the others wait and
 * then find what it stored. */
struct misser {
    struct lv_cache_store *s;
    atomic_int *leads, *served;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool woken;
};

static void misser_wake(void *arg)
{
    struct misser *m = arg;
    pthread_mutex_lock(&m->lock);
    m->woken = true;
    pthread_cond_signal(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static void *miss(void *arg)
{
    struct misser *m = arg;
    struct lv_cache_waiter w = {.cb = misser_wake, .arg = m};
    for (;;) {
        struct lv_cache_entry *e = get(m->s, "hot", 1);
        if (e) {
            atomic_fetch_add(m->served, 1);
            lv_cache_entry_release(e);
            return NULL;
        }
        struct lv_cache_claim *c;
        m->woken = false;
        enum lv_cache_claim_result r =
            lv_cache_store_claim(m->s, "hot", 3, NULL, NULL, NULL, 1, &w, &c);
        if (r == LV_CLAIM_LEAD) {
            atomic_fetch_add(m->leads, 1);
            struct lv_cache_entry *ne = mk(m->s, "hot", NULL, -1);
            lv_cache_store_insert(m->s, c, ne, 1);
            lv_cache_entry_append(m->s, ne, "v", 1);
            lv_cache_entry_finish(m->s, ne);
            lv_cache_entry_release(ne);
            continue;
        }
        if (r == LV_CLAIM_WAIT) {
            pthread_mutex_lock(&m->lock);
            while (!m->woken)
                pthread_cond_wait(&m->cond, &m->lock);
            pthread_mutex_unlock(&m->lock);
        }
    }
}

Test(store, collapsed_misses, .timeout = 120)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    atomic_int leads = 0, served = 0;
    enum { N = 32 };
    struct misser m[N];
    pthread_t t[N];
    for (int i = 0; i < N; i++) {
        m[i] = (struct misser){.s = s, .leads = &leads, .served = &served};
        pthread_mutex_init(&m[i].lock, NULL);
        pthread_cond_init(&m[i].cond, NULL);
        cr_assert_eq(pthread_create(&t[i], NULL, miss, &m[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        pthread_mutex_destroy(&m[i].lock);
        pthread_cond_destroy(&m[i].cond);
    }
    cr_expect_eq(atomic_load(&leads), 1);
    cr_expect_eq(atomic_load(&served), N);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}

Test(store, an_update_of_a_body_aborted_later_is_never_found)
{
    struct lv_cache_store *s = lv_cache_store_create(MIB, MIB);
    struct lv_cache_entry *w = mk(s, "k", NULL, -1);
    lv_cache_store_insert(s, NULL, w, 1);
    cr_assert_eq(lv_cache_entry_append(s, w, "ab", 2), 0);
    /* A 304 updates it while it fills: the update shares the body. */
    struct lv_field f = {"ETag", "\"1\"", 4, 3};
    struct lv_cache_entry_spec spec = {
        .key = "k", .key_len = 1, .status = 200, .fields = &f, .nfields = 1, .share_of = w};
    struct lv_cache_entry *u = lv_cache_entry_create(s, &spec);
    lv_cache_store_insert(s, NULL, u, 2);
    cr_expect(lv_cache_entry_linked(u));
    /* Then the origin breaks off. */
    lv_cache_entry_abort(s, w);
    cr_expect_null(get(s, "k", 3));
    cr_expect_not(lv_cache_entry_linked(u));
    struct lv_cache_claim *c;
    cr_expect_eq(lv_cache_store_claim(s, "k", 1, NULL, NULL, NULL, 4, NULL, &c), LV_CLAIM_LEAD);
    lv_cache_store_unclaim(s, c, 4, 0);
    lv_cache_entry_release(u);
    lv_cache_entry_release(w);
    cr_expect_eq(bytes(s), 0);
    lv_cache_store_destroy(s);
    LV_EXPECT_NO_LEAKS();
}
