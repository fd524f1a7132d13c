/*
 * The sharded, bounded table of per-client rate-limit state
 * (limit/table.c): isolation between keys, the memory bound, which client
 * is evicted, long keys, both algorithms. Fake clock throughout.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "limit/table.h"
#include "unit/lv_test.h"

#define SEC 1000000ull
#define T0 (1000 * SEC)
#define NSHARDS 64 /* the table's shard count, for the rounding of its bound */

/* Burst 1 and a token every ~3 hours: a key that took once stays empty for
 * the whole test, a fresh (or evicted and recreated) key is allowed. */
static const struct lv_limit_cfg one_shot = {.rate = 0.0001, .burst = 1};

static bool take(struct lv_ratetable *t, const char *key, const struct lv_limit_cfg *c,
                 uint64_t now)
{
    struct lv_limit_result r;
    lv_ratetable_take(t, key, strlen(key), LV_LIMIT_TOKEN_BUCKET, c, now, &r);
    return r.allowed;
}

static bool take_bytes(struct lv_ratetable *t, const char *key, size_t len,
                       const struct lv_limit_cfg *c, uint64_t now)
{
    struct lv_limit_result r;
    lv_ratetable_take(t, key, len, LV_LIMIT_TOKEN_BUCKET, c, now, &r);
    return r.allowed;
}

static unsigned drain(struct lv_ratetable *t, const char *key, enum lv_limit_algo algo,
                      const struct lv_limit_cfg *c, uint64_t now, unsigned max)
{
    struct lv_limit_result r;
    unsigned n = 0;
    for (unsigned i = 0; i < max; i++) {
        lv_ratetable_take(t, key, strlen(key), algo, c, now, &r);
        if (!r.allowed) break;
        n++;
    }
    return n;
}

Test(ratetable, starts_empty)
{
    struct lv_ratetable *t = lv_ratetable_create(1000);
    cr_assert_not_null(t);
    cr_expect_eq(lv_ratetable_size(t), 0);
    cr_expect_eq(lv_ratetable_evictions(t), 0);
    lv_ratetable_destroy(t);
    lv_ratetable_destroy(NULL);
    LV_EXPECT_NO_LEAKS();
}

Test(ratetable, keys_are_independent)
{
    struct lv_ratetable *t = lv_ratetable_create(1000);
    cr_assert_not_null(t);
    struct lv_limit_cfg c = {.rate = 10, .burst = 3};
    cr_expect_eq(drain(t, "ip:10.0.0.1", LV_LIMIT_TOKEN_BUCKET, &c, T0, 100), 3);
    cr_expect_eq(drain(t, "ip:10.0.0.1", LV_LIMIT_TOKEN_BUCKET, &c, T0, 100), 0);
    cr_expect_eq(drain(t, "ip:10.0.0.2", LV_LIMIT_TOKEN_BUCKET, &c, T0, 100), 3);
    cr_expect_eq(drain(t, "ip:10.0.0.2", LV_LIMIT_TOKEN_BUCKET, &c, T0, 100), 0);
    /* A key that is a prefix of another is another key. */
    cr_expect_eq(drain(t, "ip:10.0.0.", LV_LIMIT_TOKEN_BUCKET, &c, T0, 100), 3);
    cr_expect_eq(drain(t, "ip:10.0.0.10", LV_LIMIT_TOKEN_BUCKET, &c, T0, 100), 3);
    /* Each refills on its own. */
    cr_expect_eq(drain(t, "ip:10.0.0.1", LV_LIMIT_TOKEN_BUCKET, &c, T0 + 100000, 100), 1);
    cr_expect_eq(drain(t, "ip:10.0.0.2", LV_LIMIT_TOKEN_BUCKET, &c, T0 + 100000, 100), 1);
    cr_expect_eq(lv_ratetable_size(t), 4);
    cr_expect_eq(lv_ratetable_evictions(t), 0);
    lv_ratetable_destroy(t);
    LV_EXPECT_NO_LEAKS();
}

Test(ratetable, keys_are_bytes)
{
    struct lv_ratetable *t = lv_ratetable_create(1000);
    cr_assert_not_null(t);
    cr_expect(take_bytes(t, "a\0b", 3, &one_shot, T0));
    cr_expect(take_bytes(t, "a\0c", 3, &one_shot, T0), "bytes after a NUL count");
    cr_expect(take_bytes(t, "a", 1, &one_shot, T0));
    cr_expect(take_bytes(t, "a\0", 2, &one_shot, T0), "the length counts");
    cr_expect_not(take_bytes(t, "a\0b", 3, &one_shot, T0));
    cr_expect_not(take_bytes(t, "a\0", 2, &one_shot, T0));
    lv_ratetable_destroy(t);
    LV_EXPECT_NO_LEAKS();
}

/* size + evictions counts every distinct key ever seen: each new key either
 * gets a new entry or recycles an evicted one. */
static void flood(size_t max_clients, unsigned nkeys)
{
    struct lv_ratetable *t = lv_ratetable_create(max_clients);
    cr_assert_not_null(t);
    size_t bound = max_clients + NSHARDS;
    char key[32];
    for (unsigned i = 0; i < nkeys; i++) {
        snprintf(key, sizeof(key), "ip:198.51.%u.%u", i / 256, i % 256);
        take(t, key, &one_shot, T0 + i);
        if (i % 997 == 0) {
            size_t n = lv_ratetable_size(t);
            cr_expect_leq(n, bound, "max_clients %zu: %zu held after %u keys", max_clients, n,
                          i + 1);
        }
    }
    size_t n = lv_ratetable_size(t);
    uint64_t ev = lv_ratetable_evictions(t);
    cr_expect_leq(n, bound, "max_clients %zu: %zu held", max_clients, n);
    cr_expect_eq(n + ev, nkeys, "max_clients %zu: %zu held + %lu evicted", max_clients, n,
                 (unsigned long)ev);
    if (nkeys > bound) cr_expect_geq(ev, nkeys - bound);
    lv_ratetable_destroy(t);
}

Test(ratetable, memory_is_bounded)
{
    flood(1000, 20000);
    flood(64, 5000);
    flood(0, 5000); /* still one per shard */
    flood(100000, 30000);
    LV_EXPECT_NO_LEAKS();
}

Test(ratetable, no_eviction_below_the_bound)
{
    /* Fewer keys than max_clients / shards: nothing to evict. */
    struct lv_ratetable *t = lv_ratetable_create(64 * 1000);
    cr_assert_not_null(t);
    char key[32];
    for (unsigned i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        take(t, key, &one_shot, T0);
    }
    cr_expect_eq(lv_ratetable_size(t), 500);
    cr_expect_eq(lv_ratetable_evictions(t), 0);
    for (unsigned i = 0; i < 500; i++) {
        snprintf(key, sizeof(key), "k%u", i);
        cr_expect_not(take(t, key, &one_shot, T0), "%s kept its state", key);
    }
    lv_ratetable_destroy(t);
    LV_EXPECT_NO_LEAKS();
}

Test(ratetable, a_key_in_constant_use_survives_a_flood)
{
    struct lv_ratetable *t = lv_ratetable_create(256); /* 5 per shard */
    cr_assert_not_null(t);
    cr_expect(take(t, "regular", &one_shot, T0));
    char key[32];
    for (unsigned i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "flood-%u", i);
        take(t, key, &one_shot, T0);
        /* Refused, and the refusal marks it as recently seen. */
        if (take(t, "regular", &one_shot, T0)) {
            cr_expect_fail("the regular client was evicted after %u other keys", i + 1);
            break;
        }
    }
    cr_expect_gt(lv_ratetable_evictions(t), 10000);
    lv_ratetable_destroy(t);
    LV_EXPECT_NO_LEAKS();
}

Test(ratetable, an_idle_key_is_forgotten_in_a_flood)
{
    struct lv_ratetable *t = lv_ratetable_create(256);
    cr_assert_not_null(t);
    cr_expect(take(t, "idle", &one_shot, T0));
    cr_expect_not(take(t, "idle", &one_shot, T0));
    char key[32];
    for (unsigned i = 0; i < 20000; i++) {
        snprintf(key, sizeof(key), "flood-%u", i);
        take(t, key, &one_shot, T0);
    }
    cr_expect(take(t, "idle", &one_shot, T0), "evicted: a full allowance again");
    lv_ratetable_destroy(t);
    LV_EXPECT_NO_LEAKS();
}

/* Keys that land in the same shard as `home`, found through the table
 * itself: with max_clients 0 a shard holds one client, so a key in home's
 * shard evicts home (which then gets a fresh allowance). */
static unsigned same_shard_keys(const char *home, char out[][32], unsigned want)
{
    struct lv_ratetable *probe = lv_ratetable_create(0);
    cr_assert_not_null(probe);
    cr_assert(take(probe, home, &one_shot, T0));
    unsigned found = 0;
    for (unsigned i = 0; i < 100000 && found < want; i++) {
        char key[32];
        snprintf(key, sizeof(key), "cand-%u", i);
        take(probe, key, &one_shot, T0);
        if (take(probe, home, &one_shot, T0)) { /* home was evicted by key */
            memcpy(out[found++], key, sizeof(key));
        }
    }
    lv_ratetable_destroy(probe);
    return found;
}

Test(ratetable, the_least_recently_seen_key_is_evicted)
{
    char k[3][32];
    cr_assert_eq(same_shard_keys("A", k, 3), 3);
    const char *A = "A", *B = k[0], *C = k[1], *D = k[2];
    struct lv_ratetable *t = lv_ratetable_create(NSHARDS); /* 2 per shard */
    cr_assert_not_null(t);
    cr_expect(take(t, A, &one_shot, T0));
    cr_expect(take(t, B, &one_shot, T0));     /* shard: B, A */
    cr_expect_not(take(t, A, &one_shot, T0)); /* A, B */
    cr_expect(take(t, C, &one_shot, T0));     /* C, A: B evicted */
    cr_expect_eq(lv_ratetable_evictions(t), 1);
    cr_expect_not(take(t, A, &one_shot, T0), "A was seen after B: kept"); /* A, C */
    cr_expect(take(t, B, &one_shot, T0), "B was the least recent: evicted, fresh again");
    cr_expect_eq(lv_ratetable_evictions(t), 2); /* B, A: C evicted */
    cr_expect_not(take(t, A, &one_shot, T0));   /* A, B */
    cr_expect_not(take(t, B, &one_shot, T0));   /* B, A */
    cr_expect(take(t, D, &one_shot, T0));       /* D, B: A evicted */
    cr_expect(take(t, A, &one_shot, T0), "A evicted by D");
    cr_expect(take(t, C, &one_shot, T0), "C evicted earlier");
    cr_expect_eq(lv_ratetable_evictions(t), 5);
    cr_expect_eq(lv_ratetable_size(t), 2, "all in one shard of two");
    lv_ratetable_destroy(t);
    LV_EXPECT_NO_LEAKS();
}

Test(ratetable, long_keys)
{
    struct lv_ratetable *t = lv_ratetable_create(1000);
    cr_assert_not_null(t);
    char a[200], b[200];
    memset(a, 'x', sizeof(a));
    memcpy(b, a, sizeof(b));
    b[sizeof(b) - 1] = 'y'; /* differ only in the last byte */
    cr_expect(take_bytes(t, a, sizeof(a), &one_shot, T0));
    cr_expect(take_bytes(t, b, sizeof(b), &one_shot, T0), "distinct from a");
    cr_expect_not(take_bytes(t, a, sizeof(a), &one_shot, T0), "the same long key");
    cr_expect_not(take_bytes(t, b, sizeof(b), &one_shot, T0));
    /* Differ only in the first byte, and by length. */
    b[sizeof(b) - 1] = 'x';
    b[0] = 'z';
    cr_expect(take_bytes(t, b, sizeof(b), &one_shot, T0));
    cr_expect(take_bytes(t, a, 100, &one_shot, T0));
    cr_expect(take_bytes(t, a, 101, &one_shot, T0));
    cr_expect_not(take_bytes(t, a, 100, &one_shot, T0));
    /* Around the inline key size (48 bytes). */
    for (size_t len = 46; len <= 51; len++) {
        cr_expect(take_bytes(t, a + 1, len, &one_shot, T0), "length %zu", len);
    }
    for (size_t len = 46; len <= 51; len++) {
        cr_expect_not(take_bytes(t, a + 1, len, &one_shot, T0), "length %zu again", len);
    }
    /* Many long keys, all distinct. */
    char k[120];
    memset(k, 'h', sizeof(k));
    for (unsigned i = 0; i < 500; i++) {
        int n = snprintf(k + 60, 20, "%u", i);
        k[60 + n] = 'h';
        cr_expect(take_bytes(t, k, sizeof(k), &one_shot, T0), "long key %u", i);
    }
    lv_ratetable_destroy(t);
    LV_EXPECT_NO_LEAKS();
}

Test(ratetable, sliding_window_through_the_table)
{
    struct lv_ratetable *t = lv_ratetable_create(1000);
    cr_assert_not_null(t);
    struct lv_limit_cfg c = {.rate = 4, .burst = 4, .window = SEC};
    struct lv_limit_result r;
    cr_expect_eq(drain(t, "a", LV_LIMIT_SLIDING_WINDOW, &c, T0 + 1, 100), 4);
    lv_ratetable_take(t, "a", 1, LV_LIMIT_SLIDING_WINDOW, &c, T0 + 2, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.limit, 4);
    cr_expect_eq(drain(t, "b", LV_LIMIT_SLIDING_WINDOW, &c, T0 + 2, 100), 4);
    /* Half way through the next window, half of "a"'s count weighs. */
    cr_expect_eq(drain(t, "a", LV_LIMIT_SLIDING_WINDOW, &c, T0 + SEC + SEC / 2, 100), 2);
    cr_expect_eq(drain(t, "a", LV_LIMIT_SLIDING_WINDOW, &c, T0 + 3 * SEC, 100), 4);
    lv_ratetable_destroy(t);
    LV_EXPECT_NO_LEAKS();
}

Test(ratetable, token_bucket_through_the_table)
{
    struct lv_ratetable *t = lv_ratetable_create(1000);
    cr_assert_not_null(t);
    struct lv_limit_cfg c = {.rate = 10, .burst = 2};
    struct lv_limit_result r;
    lv_ratetable_take(t, "a", 1, LV_LIMIT_TOKEN_BUCKET, &c, T0, &r);
    cr_expect(r.allowed);
    cr_expect_eq(r.limit, 2);
    cr_expect_eq(r.remaining, 1);
    cr_expect_eq(r.reset_us, 100000);
    lv_ratetable_take(t, "a", 1, LV_LIMIT_TOKEN_BUCKET, &c, T0, &r);
    cr_expect(r.allowed);
    lv_ratetable_take(t, "a", 1, LV_LIMIT_TOKEN_BUCKET, &c, T0, &r);
    cr_expect_not(r.allowed);
    cr_expect_eq(r.retry_us, 100000);
    cr_expect_eq(drain(t, "a", LV_LIMIT_TOKEN_BUCKET, &c, T0 + 100000, 100), 1);
    lv_ratetable_destroy(t);
    LV_EXPECT_NO_LEAKS();
}

/* Threads share one key and each has its own; the clock stands still, so
 * the totals are exact. */
#define NTHREADS 8

struct race {
    struct lv_ratetable *t;
    struct lv_limit_cfg cfg;
    pthread_barrier_t go;
    atomic_uint shared_allowed;
    atomic_uint own_allowed[NTHREADS];
};

struct racer {
    struct race *s;
    unsigned id;
};

static void *run(void *arg)
{
    struct racer *rc = arg;
    struct race *s = rc->s;
    char own[32];
    snprintf(own, sizeof(own), "own-%u", rc->id);
    pthread_barrier_wait(&s->go);
    for (int i = 0; i < 2000; i++) {
        struct lv_limit_result r;
        lv_ratetable_take(s->t, "shared", 6, LV_LIMIT_TOKEN_BUCKET, &s->cfg, T0, &r);
        if (r.allowed) atomic_fetch_add(&s->shared_allowed, 1);
        lv_ratetable_take(s->t, own, strlen(own), LV_LIMIT_TOKEN_BUCKET, &s->cfg, T0, &r);
        if (r.allowed) atomic_fetch_add(&s->own_allowed[rc->id], 1);
        if (i % 16 == 0) { /* and churn: other clients come and go */
            char k[32];
            snprintf(k, sizeof(k), "churn-%u-%d", rc->id, i);
            lv_ratetable_take(s->t, k, strlen(k), LV_LIMIT_TOKEN_BUCKET, &s->cfg, T0, &r);
        }
    }
    return NULL;
}

Test(ratetable, threads_share_a_key_exactly)
{
    static struct race s;
    s.t = lv_ratetable_create(100000);
    cr_assert_not_null(s.t);
    s.cfg = (struct lv_limit_cfg){.rate = 1, .burst = 25};
    atomic_init(&s.shared_allowed, 0);
    for (int i = 0; i < NTHREADS; i++)
        atomic_init(&s.own_allowed[i], 0);
    cr_assert_eq(pthread_barrier_init(&s.go, NULL, NTHREADS), 0);
    pthread_t th[NTHREADS];
    struct racer rc[NTHREADS];
    for (unsigned i = 0; i < NTHREADS; i++) {
        rc[i] = (struct racer){&s, i};
        cr_assert_eq(pthread_create(&th[i], NULL, run, &rc[i]), 0);
    }
    for (int i = 0; i < NTHREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&s.go);
    cr_expect_eq(atomic_load(&s.shared_allowed), 25);
    for (int i = 0; i < NTHREADS; i++)
        cr_expect_eq(atomic_load(&s.own_allowed[i]), 25, "thread %d", i);
    cr_expect_eq(lv_ratetable_size(s.t), 1 + NTHREADS + NTHREADS * 125);
    lv_ratetable_destroy(s.t);
    s.t = NULL;
    LV_EXPECT_NO_LEAKS();
}
