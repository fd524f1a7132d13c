/*
 * The inside of the store, shared by its two halves only: store.c (the
 * sharded table: lookups, claims, LRU, memory) and entry.c (entries and
 * their bodies, waiters). Nothing else includes this file.
 */
#ifndef LV_CACHE_STORE_I_H
#define LV_CACHE_STORE_I_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cache/store.h"

#define LV_CACHE_ALLOC_OVERHEAD 16 /* charged per allocation besides its size */

enum lv_ce_kind { LV_CE_OBJ, LV_CE_PASS, LV_CE_BUSY };

struct lv_lru {
    struct lv_lru *prev, *next;
};

struct lv_chunk {
    _Atomic(struct lv_chunk *) next;
    uint64_t start; /* body offset of data[0] */
    uint32_t cap;
    uint32_t len; /* the writer's */
    char data[];
};

struct lv_body {
    atomic_uint refs;
    _Atomic(struct lv_chunk *) first;
    struct lv_chunk *tail; /* the writer's */
    atomic_uint_fast64_t committed;
    atomic_int state;       /* enum lv_cache_body_state */
    int64_t content_length; /* announced; -1 unknown */
    uint64_t charged;       /* chunk memory charged (the writer's, read at free) */
    pthread_mutex_t lock;   /* waiters */
    struct lv_cache_waiter *waiters;
};

struct lv_cache_entry {
    /* Shard linkage: under the shard lock. */
    struct lv_cache_entry *hnext;
    struct lv_lru lru;
    bool linked, in_lru;
    uint8_t kind;
    int64_t used;                    /* last use, for LRU */
    int64_t pass_until;              /* LV_CE_PASS */
    struct lv_cache_waiter *waiters; /* LV_CE_BUSY */
    /* Lifetime. */
    atomic_uint refs;
    atomic_int_fast64_t refresh_until;
    struct lv_cache_store *store;
    size_t charge; /* bytes this block counts for in the store's memory */
    bool charged;
    uint64_t hash;
    /* Immutable once created. */
    struct lv_body *body;
    struct lv_cache_meta meta;
    uint16_t status;
    uint32_t nfields;
    struct lv_hfield *fields;
    const char *text; /* names and values */
    const char *key, *vary, *vkey;
    uint32_t klen, vlen, vklen;
};

#define LV_CACHE_SHARDS 64

struct lv_shard {
    pthread_mutex_t lock;
    struct lv_cache_entry **buckets;
    size_t nbuckets, n;
    struct lv_lru lru;             /* lru.next: most recent */
    atomic_int_fast64_t tail_used; /* `used` of the LRU tail; INT64_MAX when empty */
};

struct lv_cache_store {
    atomic_uint_fast64_t bytes, max_bytes, max_object;
    atomic_uint_fast64_t entries, inserts, evictions;
    struct lv_shard shards[LV_CACHE_SHARDS];
};

/* FNV-1a and a finalizer (as limit/table.c): the shard from the low bits,
 * the bucket from the bits above. */
uint64_t lv_cache_hash(const char *key, size_t n);

/* Makes room for n bytes of the store's memory, evicting as needed: 0, or
 * -1 when it cannot. lv_cache_uncharge gives them back. */
int lv_cache_charge(struct lv_cache_store *s, uint64_t n);
void lv_cache_uncharge(struct lv_cache_store *s, uint64_t n);

/* A bare entry of a kind: [entry][fsize bytes for fields][key][extra], the
 * key copied. Not linked, one reference, not charged. NULL on ENOMEM. */
struct lv_cache_entry *lv_cache_entry_alloc(struct lv_cache_store *s, enum lv_ce_kind kind,
                                            const char *key, size_t klen, size_t fsize,
                                            size_t extra);
/* Frees an entry whose last reference is gone (or that was never shared). */
void lv_cache_entry_free(struct lv_cache_entry *e);

/* Arms w on a waiter list guarded by lock (held). */
void lv_cache_waiter_arm(struct lv_cache_waiter **list, pthread_mutex_t *lock,
                         struct lv_cache_waiter *w);
/* Fires and disarms every waiter of a list (its lock held). */
void lv_cache_waiters_fire(struct lv_cache_waiter **list);

#endif
