/*
 * The shared store: 64 shards, each a chained hash of entries and an LRU
 * list, one mutex each. Three kinds of entries live in the chains: stored
 * responses (LV_CE_OBJ), pass markers (LV_CE_PASS: in the LRU and charged, so a flood
 * of uncacheable URLs is bounded like anything else) and fetches in flight
 * (LV_CE_BUSY: the claim; neither charged nor evictable, bounded by the requests
 * in flight).
 *
 * Global LRU order from per-shard lists: every entry carries the time it
 * was last used; the victim is the tail of the shard whose tail is oldest.
 * Evictions happen on inserts and appends (misses), so the scan of 64
 * shard tails is off the hit path.
 *
 * Entries and bodies themselves are entry.c's.
 */
#include <assert.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache/key.h"
#include "cache/store-i.h"

#define EVICT_SCAN 16 /* LRU tail entries looked at for one that is not filling */

static struct lv_cache_entry *of_lru(struct lv_lru *l)
{
    return (struct lv_cache_entry *)(void *)((char *)l - offsetof(struct lv_cache_entry, lru));
}

static struct lv_cache_entry *busy_of(struct lv_cache_claim *c)
{
    return (struct lv_cache_entry *)(void *)c;
}

static struct lv_shard *shard_of(struct lv_cache_store *s, uint64_t h)
{
    return &s->shards[h % LV_CACHE_SHARDS];
}

static struct lv_cache_entry **bucket_of(struct lv_shard *sh, uint64_t h)
{
    return &sh->buckets[(h / LV_CACHE_SHARDS) & (sh->nbuckets - 1)];
}

static bool key_is(const struct lv_cache_entry *e, uint64_t h, const char *key, size_t klen)
{
    return e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0;
}

/* --- memory ----------------------------------------------------------------- */

void lv_cache_uncharge(struct lv_cache_store *s, uint64_t n)
{
    atomic_fetch_sub(&s->bytes, n);
}

static bool evict_one(struct lv_cache_store *s);

int lv_cache_charge(struct lv_cache_store *s, uint64_t n)
{
    for (;;) {
        uint64_t cur = atomic_load(&s->bytes), max = atomic_load(&s->max_bytes);
        if (n > max) return -1;
        if (cur <= max - n) {
            if (atomic_compare_exchange_weak(&s->bytes, &cur, cur + n)) return 0;
            continue;
        }
        if (!evict_one(s)) return -1;
    }
}

/* --- the store ---------------------------------------------------------------- */

struct lv_cache_store *lv_cache_store_create(uint64_t max_bytes, uint64_t max_object)
{
    struct lv_cache_store *s = calloc(1, sizeof(*s));
    if (s == NULL) return NULL;
    atomic_init(&s->max_bytes, max_bytes);
    atomic_init(&s->max_object, max_object);
    for (int i = 0; i < LV_CACHE_SHARDS; i++) {
        struct lv_shard *sh = &s->shards[i];
        pthread_mutex_init(&sh->lock, NULL);
        sh->nbuckets = 16;
        sh->buckets = calloc(sh->nbuckets, sizeof(*sh->buckets));
        sh->lru.prev = sh->lru.next = &sh->lru;
        atomic_init(&sh->tail_used, INT64_MAX);
        if (sh->buckets == NULL) {
            lv_cache_store_destroy(s);
            return NULL;
        }
    }
    return s;
}

void lv_cache_store_destroy(struct lv_cache_store *s)
{
    if (s == NULL) return;
    for (int i = 0; i < LV_CACHE_SHARDS; i++) {
        struct lv_shard *sh = &s->shards[i];
        for (size_t b = 0; sh->buckets && b < sh->nbuckets; b++) {
            struct lv_cache_entry *e = sh->buckets[b];
            while (e) {
                struct lv_cache_entry *next = e->hnext;
                assert(e->kind != LV_CE_BUSY); /* a claim outlived the store */
                e->linked = false;
                if (atomic_fetch_sub(&e->refs, 1) == 1) lv_cache_entry_free(e);
                e = next;
            }
        }
        free(sh->buckets);
        pthread_mutex_destroy(&sh->lock);
    }
    free(s);
}

void lv_cache_store_stats(struct lv_cache_store *s, struct lv_cache_store_stats *st)
{
    st->entries = atomic_load(&s->entries);
    st->bytes = atomic_load(&s->bytes);
    st->max_bytes = atomic_load(&s->max_bytes);
    st->inserts = atomic_load(&s->inserts);
    st->evictions = atomic_load(&s->evictions);
}

void lv_cache_store_set_limits(struct lv_cache_store *s, uint64_t max_bytes, uint64_t max_object)
{
    atomic_store(&s->max_bytes, max_bytes);
    atomic_store(&s->max_object, max_object);
    while (atomic_load(&s->bytes) > max_bytes && evict_one(s)) {}
}

/* --- linkage (shard lock held) -------------------------------------------- */

static void tail_update(struct lv_shard *sh)
{
    struct lv_lru *t = sh->lru.prev;
    atomic_store(&sh->tail_used, t == &sh->lru ? INT64_MAX : of_lru(t)->used);
}

static void lru_unlink(struct lv_shard *sh, struct lv_cache_entry *e)
{
    if (!e->in_lru) return;
    e->lru.prev->next = e->lru.next;
    e->lru.next->prev = e->lru.prev;
    e->in_lru = false;
    tail_update(sh);
}

static void lru_push(struct lv_shard *sh, struct lv_cache_entry *e, int64_t now)
{
    e->used = now;
    e->lru.next = sh->lru.next;
    e->lru.prev = &sh->lru;
    sh->lru.next->prev = &e->lru;
    sh->lru.next = &e->lru;
    e->in_lru = true;
    tail_update(sh);
}

static void grow(struct lv_shard *sh)
{
    size_t nb = sh->nbuckets * 2;
    struct lv_cache_entry **b = calloc(nb, sizeof(*b));
    if (b == NULL) return; /* longer chains, still correct */
    for (size_t i = 0; i < sh->nbuckets; i++) {
        /* Chains are newest first (lookups rely on it): reverse the old
         * chain, then push each entry on the front of its new one. */
        struct lv_cache_entry *rev = NULL, *e = sh->buckets[i];
        while (e) {
            struct lv_cache_entry *next = e->hnext;
            e->hnext = rev;
            rev = e;
            e = next;
        }
        while (rev) {
            struct lv_cache_entry *next = rev->hnext;
            struct lv_cache_entry **slot = &b[(rev->hash / LV_CACHE_SHARDS) & (nb - 1)];
            rev->hnext = *slot;
            *slot = rev;
            rev = next;
        }
    }
    free(sh->buckets);
    sh->buckets = b;
    sh->nbuckets = nb;
}

static void link_entry(struct lv_cache_store *s, struct lv_shard *sh, struct lv_cache_entry *e)
{
    struct lv_cache_entry **slot = bucket_of(sh, e->hash);
    e->hnext = *slot;
    *slot = e;
    e->linked = true;
    sh->n++;
    if (e->kind == LV_CE_OBJ) atomic_fetch_add(&s->entries, 1);
    if (sh->n > sh->nbuckets * 2) grow(sh);
}

/* Takes e out of its chain and LRU. The store's reference is the caller's
 * to drop (after unlocking). */
static void unlink_entry(struct lv_cache_store *s, struct lv_shard *sh, struct lv_cache_entry *e)
{
    assert(e->linked);
    struct lv_cache_entry **pp = bucket_of(sh, e->hash);
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    e->hnext = NULL;
    e->linked = false;
    sh->n--;
    if (e->kind == LV_CE_OBJ) atomic_fetch_sub(&s->entries, 1);
    lru_unlink(sh, e);
}

/* Entries unlinked under a lock, released after it: a release may free
 * (no lock is needed for that, but it need not be held either). */
struct dropped {
    struct lv_cache_entry *list;
};

static void drop(struct lv_cache_store *s, struct lv_shard *sh, struct lv_cache_entry *e,
                 struct dropped *d)
{
    unlink_entry(s, sh, e);
    e->hnext = d->list;
    d->list = e;
}

static void release_dropped(struct dropped *d)
{
    struct lv_cache_entry *e = d->list;
    while (e) {
        struct lv_cache_entry *next = e->hnext;
        e->hnext = NULL;
        lv_cache_entry_release(e);
        e = next;
    }
    d->list = NULL;
}

/* --- eviction ---------------------------------------------------------------- */

static bool evictable(const struct lv_cache_entry *e)
{
    return e->kind == LV_CE_PASS ||
           (e->kind == LV_CE_OBJ && atomic_load(&e->body->state) != LV_BODY_FILLING);
}

/* Evicts one entry from shard sh: the least recently used that is not
 * filling, among the last EVICT_SCAN. */
static bool evict_from(struct lv_cache_store *s, struct lv_shard *sh)
{
    struct lv_cache_entry *victim = NULL;
    pthread_mutex_lock(&sh->lock);
    struct lv_lru *l = sh->lru.prev;
    for (int i = 0; i < EVICT_SCAN && l != &sh->lru; i++, l = l->prev) {
        if (evictable(of_lru(l))) {
            victim = of_lru(l);
            break;
        }
    }
    if (victim) unlink_entry(s, sh, victim);
    pthread_mutex_unlock(&sh->lock);
    if (victim == NULL) return false;
    atomic_fetch_add(&s->evictions, 1);
    lv_cache_entry_release(victim);
    return true;
}

static bool evict_one(struct lv_cache_store *s)
{
    int best = -1;
    int64_t oldest = INT64_MAX;
    for (int i = 0; i < LV_CACHE_SHARDS; i++) {
        int64_t t = atomic_load(&s->shards[i].tail_used);
        if (t < oldest) {
            oldest = t;
            best = i;
        }
    }
    if (best >= 0 && evict_from(s, &s->shards[best])) return true;
    /* Its tail was filling, or it changed meanwhile: any other will do. */
    for (int i = 0; i < LV_CACHE_SHARDS; i++) {
        if (i != best && atomic_load(&s->shards[i].tail_used) != INT64_MAX &&
            evict_from(s, &s->shards[i]))
            return true;
    }
    return false;
}

/* --- lookups and claims ------------------------------------------------------------ */

/* An entry whose body was aborted: a 304 update can share a body whose
 * writer aborts afterwards (the abort unlinks only the writer's entry).
 * Lookups skip such entries and take them out. */
static bool dead(const struct lv_cache_entry *e)
{
    return atomic_load_explicit(&e->body->state, memory_order_acquire) == LV_BODY_ABORTED;
}

void lv_cache_store_find(struct lv_cache_store *s, const char *key, size_t klen,
                         lv_cache_match_cb match, void *arg, int64_t now,
                         struct lv_cache_found *out)
{
    uint64_t h = lv_cache_hash(key, klen);
    struct lv_shard *sh = shard_of(s, h);
    struct dropped d = {NULL};
    out->entry = NULL;
    out->key_known = false;
    pthread_mutex_lock(&sh->lock);
    for (struct lv_cache_entry *e = *bucket_of(sh, h), *next; e; e = next) {
        next = e->hnext;
        if (e->kind != LV_CE_OBJ || !key_is(e, h, key, klen)) continue;
        if (dead(e)) {
            drop(s, sh, e, &d);
            continue;
        }
        out->key_known = true;
        if (match == NULL || match(e, arg)) {
            atomic_fetch_add(&e->refs, 1);
            out->entry = e;
            lru_unlink(sh, e);
            lru_push(sh, e, now);
            break;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    release_dropped(&d);
}

static struct lv_cache_entry *find_kind(struct lv_shard *sh, uint64_t h, const char *key,
                                        size_t klen, enum lv_ce_kind kind)
{
    for (struct lv_cache_entry *e = *bucket_of(sh, h); e; e = e->hnext) {
        if (e->kind == kind && key_is(e, h, key, klen)) return e;
    }
    return NULL;
}

/* The newest response under key that match accepts (shard lock held). */
static struct lv_cache_entry *newest(struct lv_shard *sh, uint64_t h, const char *key, size_t klen,
                                     lv_cache_match_cb match, void *arg)
{
    for (struct lv_cache_entry *e = *bucket_of(sh, h); e; e = e->hnext) {
        if (e->kind == LV_CE_OBJ && key_is(e, h, key, klen) && !dead(e) &&
            (match == NULL || match(e, arg)))
            return e;
    }
    return NULL;
}

enum lv_cache_claim_result lv_cache_store_claim(struct lv_cache_store *s, const char *key,
                                                size_t klen, lv_cache_match_cb match, void *arg,
                                                const struct lv_cache_entry *seen, int64_t now,
                                                struct lv_cache_waiter *w,
                                                struct lv_cache_claim **c)
{
    uint64_t h = lv_cache_hash(key, klen);
    struct lv_shard *sh = shard_of(s, h);
    struct dropped d = {NULL};
    enum lv_cache_claim_result r;
    *c = NULL;
    /* Allocated before the lock; freed if another request leads. */
    struct lv_cache_entry *busy = lv_cache_entry_alloc(s, LV_CE_BUSY, key, klen, 0, 0);
    pthread_mutex_lock(&sh->lock);
    struct lv_cache_entry *lead = find_kind(sh, h, key, klen, LV_CE_BUSY);
    struct lv_cache_entry *pass = find_kind(sh, h, key, klen, LV_CE_PASS);
    if (pass && pass->pass_until <= now) {
        drop(s, sh, pass, &d);
        pass = NULL;
    }
    if (newest(sh, h, key, klen, match, arg) != seen) {
        r = LV_CLAIM_CHANGED;
    } else if (lead) {
        r = w ? LV_CLAIM_WAIT : LV_CLAIM_NONE;
        if (w) lv_cache_waiter_arm(&lead->waiters, &sh->lock, w);
    } else if (pass || busy == NULL) {
        r = LV_CLAIM_NONE;
    } else {
        link_entry(s, sh, busy);
        *c = (struct lv_cache_claim *)(void *)busy;
        busy = NULL;
        r = LV_CLAIM_LEAD;
    }
    pthread_mutex_unlock(&sh->lock);
    release_dropped(&d);
    if (busy) lv_cache_entry_free(busy);
    return r;
}

/* Takes the busy entry out and fires its waiters (shard lock held). */
static void busy_end(struct lv_cache_store *s, struct lv_shard *sh, struct lv_cache_entry *busy)
{
    unlink_entry(s, sh, busy);
    lv_cache_waiters_fire(&busy->waiters);
}

void lv_cache_store_unclaim(struct lv_cache_store *s, struct lv_cache_claim *c, int64_t now,
                            int64_t pass_until)
{
    struct lv_cache_entry *busy = busy_of(c);
    struct lv_shard *sh = shard_of(s, busy->hash);
    struct lv_cache_entry *pass = NULL;
    if (pass_until > now) {
        pass = lv_cache_entry_alloc(s, LV_CE_PASS, busy->key, busy->klen, 0, 0);
        if (pass && lv_cache_charge(s, pass->charge) == 0) {
            pass->charged = true;
            pass->pass_until = pass_until;
        } else if (pass) {
            lv_cache_entry_free(pass);
            pass = NULL;
        }
    }
    pthread_mutex_lock(&sh->lock);
    busy_end(s, sh, busy);
    if (pass) {
        struct lv_cache_entry *old = find_kind(sh, busy->hash, busy->key, busy->klen, LV_CE_PASS);
        if (old) {
            old->pass_until = pass_until;
        } else {
            link_entry(s, sh, pass);
            lru_push(sh, pass, now);
            pass = NULL;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    if (pass) lv_cache_entry_release(pass);
    lv_cache_entry_free(busy);
}

static bool same_bytes(const char *a, size_t an, const char *b, size_t bn)
{
    return an == bn && (an == 0 || memcmp(a, b, an) == 0);
}

void lv_cache_store_insert(struct lv_cache_store *s, struct lv_cache_claim *c,
                           struct lv_cache_entry *e, int64_t now)
{
    assert(e->kind == LV_CE_OBJ && !e->linked);
    struct lv_shard *sh = shard_of(s, e->hash);
    struct lv_cache_entry *busy = c ? busy_of(c) : NULL;
    struct dropped d = {NULL};
    pthread_mutex_lock(&sh->lock);
    if (busy) busy_end(s, sh, busy);
    /* The same variant, a variant of another Vary, the pass marker: gone.
     * Then the oldest variants beyond the cap (the chain is newest first). */
    unsigned variants = 0;
    struct lv_cache_entry *x = *bucket_of(sh, e->hash);
    while (x) {
        struct lv_cache_entry *next = x->hnext;
        if (key_is(x, e->hash, e->key, e->klen) && x->kind != LV_CE_BUSY) {
            if (x->kind == LV_CE_PASS || !same_bytes(x->vary, x->vlen, e->vary, e->vlen) ||
                same_bytes(x->vkey, x->vklen, e->vkey, e->vklen) ||
                ++variants >= LV_CACHE_MAX_VARIANTS)
                drop(s, sh, x, &d);
        }
        x = next;
    }
    atomic_fetch_add(&e->refs, 1); /* the store's */
    link_entry(s, sh, e);
    lru_push(sh, e, now);
    pthread_mutex_unlock(&sh->lock);
    atomic_fetch_add(&s->inserts, 1);
    release_dropped(&d);
    if (busy) lv_cache_entry_free(busy);
}

void lv_cache_store_unlink(struct lv_cache_store *s, struct lv_cache_entry *e)
{
    struct lv_shard *sh = shard_of(s, e->hash);
    pthread_mutex_lock(&sh->lock);
    bool was = e->linked;
    if (was) unlink_entry(s, sh, e);
    pthread_mutex_unlock(&sh->lock);
    if (was) lv_cache_entry_release(e);
}

size_t lv_cache_store_remove(struct lv_cache_store *s, const char *key, size_t klen)
{
    uint64_t h = lv_cache_hash(key, klen);
    struct lv_shard *sh = shard_of(s, h);
    struct dropped d = {NULL};
    size_t n = 0;
    pthread_mutex_lock(&sh->lock);
    struct lv_cache_entry *x = *bucket_of(sh, h);
    while (x) {
        struct lv_cache_entry *next = x->hnext;
        if (x->kind != LV_CE_BUSY && key_is(x, h, key, klen)) {
            n += x->kind == LV_CE_OBJ;
            drop(s, sh, x, &d);
        }
        x = next;
    }
    pthread_mutex_unlock(&sh->lock);
    release_dropped(&d);
    return n;
}

size_t lv_cache_store_remove_prefix(struct lv_cache_store *s, const char *prefix, size_t plen)
{
    size_t n = 0;
    for (int i = 0; i < LV_CACHE_SHARDS; i++) {
        struct lv_shard *sh = &s->shards[i];
        struct dropped d = {NULL};
        pthread_mutex_lock(&sh->lock);
        for (size_t b = 0; b < sh->nbuckets; b++) {
            struct lv_cache_entry *x = sh->buckets[b];
            while (x) {
                struct lv_cache_entry *next = x->hnext;
                if (x->kind != LV_CE_BUSY && x->klen >= plen && memcmp(x->key, prefix, plen) == 0) {
                    n += x->kind == LV_CE_OBJ;
                    drop(s, sh, x, &d);
                }
                x = next;
            }
        }
        pthread_mutex_unlock(&sh->lock);
        release_dropped(&d);
    }
    return n;
}

void lv_cache_store_each(struct lv_cache_store *s,
                         bool (*cb)(const struct lv_cache_entry *e, void *arg), void *arg)
{
    for (int i = 0; i < LV_CACHE_SHARDS; i++) {
        struct lv_shard *sh = &s->shards[i];
        bool go = true;
        pthread_mutex_lock(&sh->lock);
        for (size_t b = 0; go && b < sh->nbuckets; b++) {
            for (struct lv_cache_entry *x = sh->buckets[b]; go && x; x = x->hnext) {
                if (x->kind == LV_CE_OBJ) go = cb(x, arg);
            }
        }
        pthread_mutex_unlock(&sh->lock);
        if (!go) return;
    }
}

bool lv_cache_entry_linked(const struct lv_cache_entry *e)
{
    struct lv_shard *sh = shard_of(e->store, e->hash);
    pthread_mutex_lock(&sh->lock);
    bool linked = e->linked;
    pthread_mutex_unlock(&sh->lock);
    return linked;
}
