/*
 * The sharded client table: per shard an open hash (chains) and an LRU
 * list, both intrusive in the entries; entries are allocated once per
 * shard up to its cap and recycled on eviction.
 */
#include "limit/table.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define NSHARDS 64
#define KEY_MAX 48 /* longer keys are identified by their hash alone */

struct entry {
    struct entry *hnext;         /* hash chain */
    struct entry *lprev, *lnext; /* LRU list: head = most recent */
    uint64_t hash;
    uint8_t klen; /* 0: key longer than KEY_MAX, hash only */
    char key[KEY_MAX];
    atomic_uint_fast64_t tat; /* token bucket */
    struct lv_window win;     /* sliding window */
};

struct shard {
    pthread_mutex_t lock;
    struct entry **buckets;
    size_t nbuckets;
    struct entry head; /* LRU sentinel */
    size_t n, max;
    uint64_t evictions;
};

/* The shard is picked from the hash's low 6 bits, the bucket from the bits
 * above them: with the same bits for both, a shard would use 1/64 of its
 * buckets. */
struct lv_ratetable {
    struct shard shards[NSHARDS];
};

/* FNV-1a then a finalizer: cheap and well spread for short keys. */
static uint64_t hash_key(const char *k, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

struct lv_ratetable *lv_ratetable_create(size_t max_clients)
{
    struct lv_ratetable *t = calloc(1, sizeof(*t));
    if (t == NULL) return NULL;
    size_t per = max_clients / NSHARDS + 1;
    size_t nb = 16;
    while (nb < per)
        nb *= 2;
    for (int i = 0; i < NSHARDS; i++) {
        struct shard *s = &t->shards[i];
        pthread_mutex_init(&s->lock, NULL);
        s->max = per;
        s->nbuckets = nb;
        s->buckets = calloc(nb, sizeof(*s->buckets));
        s->head.lprev = s->head.lnext = &s->head;
        if (s->buckets == NULL) {
            lv_ratetable_destroy(t);
            return NULL;
        }
    }
    return t;
}

void lv_ratetable_destroy(struct lv_ratetable *t)
{
    if (t == NULL) return;
    for (int i = 0; i < NSHARDS; i++) {
        struct shard *s = &t->shards[i];
        if (s->head.lnext) {
            struct entry *e = s->head.lnext;
            while (e && e != &s->head) {
                struct entry *next = e->lnext;
                free(e);
                e = next;
            }
        }
        free(s->buckets);
        pthread_mutex_destroy(&s->lock);
    }
    free(t);
}

static void lru_unlink(struct entry *e)
{
    e->lprev->lnext = e->lnext;
    e->lnext->lprev = e->lprev;
}

static void lru_push(struct shard *s, struct entry *e)
{
    e->lnext = s->head.lnext;
    e->lprev = &s->head;
    s->head.lnext->lprev = e;
    s->head.lnext = e;
}

static void hash_unlink(struct shard *s, struct entry *e)
{
    struct entry **pp = &s->buckets[(e->hash >> 6) & (s->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->hnext;
    if (*pp) *pp = e->hnext;
}

static struct entry *find_or_make(struct shard *s, uint64_t h, const char *key, size_t len)
{
    uint8_t klen = len <= KEY_MAX ? (uint8_t)len : 0;
    struct entry **slot = &s->buckets[(h >> 6) & (s->nbuckets - 1)];
    for (struct entry *e = *slot; e; e = e->hnext) {
        if (e->hash == h && e->klen == klen && memcmp(e->key, key, klen) == 0) {
            lru_unlink(e);
            lru_push(s, e);
            return e;
        }
    }
    struct entry *e;
    if (s->n >= s->max) { /* recycle the least recently seen client */
        e = s->head.lprev;
        lru_unlink(e);
        hash_unlink(s, e);
        s->evictions++;
    } else {
        e = malloc(sizeof(*e));
        if (e == NULL) return NULL;
        s->n++;
    }
    memset(e, 0, sizeof(*e));
    e->hash = h;
    e->klen = klen;
    memcpy(e->key, key, klen);
    atomic_init(&e->tat, 0);
    e->hnext = *slot;
    *slot = e;
    lru_push(s, e);
    return e;
}

void lv_ratetable_take(struct lv_ratetable *t, const char *key, size_t len, enum lv_limit_algo algo,
                       const struct lv_limit_cfg *cfg, uint64_t now, struct lv_limit_result *res)
{
    uint64_t h = hash_key(key, len);
    struct shard *s = &t->shards[h % NSHARDS];
    pthread_mutex_lock(&s->lock);
    struct entry *e = find_or_make(s, h, key, len);
    if (e == NULL) { /* out of memory: let it through rather than fail it */
        pthread_mutex_unlock(&s->lock);
        *res = (struct lv_limit_result){.allowed = true, .limit = cfg->burst};
        return;
    }
    if (algo == LV_LIMIT_SLIDING_WINDOW)
        lv_window_take(&e->win, cfg, now, res);
    else
        lv_bucket_take(&e->tat, cfg, now, res);
    pthread_mutex_unlock(&s->lock);
}

size_t lv_ratetable_size(struct lv_ratetable *t)
{
    size_t n = 0;
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        n += t->shards[i].n;
        pthread_mutex_unlock(&t->shards[i].lock);
    }
    return n;
}

uint64_t lv_ratetable_evictions(struct lv_ratetable *t)
{
    uint64_t n = 0;
    for (int i = 0; i < NSHARDS; i++) {
        pthread_mutex_lock(&t->shards[i].lock);
        n += t->shards[i].evictions;
        pthread_mutex_unlock(&t->shards[i].lock);
    }
    return n;
}
