/*
 * Per-client rate-limit state, shared by all workers: a hash table split
 * into shards, one lock each (two workers rarely want the same shard at the
 * same time), bounded in memory: each shard holds at most max/nshards
 * clients and evicts the least recently seen one to make room, so a flood
 * of distinct client keys cannot grow it. An evicted client starts again
 * with a full allowance — the price of a bound, and the same trade-off
 * nginx's limit_req zone makes.
 */
#ifndef LV_LIMIT_TABLE_H
#define LV_LIMIT_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "limit/bucket.h"

enum lv_limit_algo { LV_LIMIT_TOKEN_BUCKET, LV_LIMIT_SLIDING_WINDOW };

struct lv_ratetable;

/* A table for at most max_clients keys. NULL on ENOMEM. */
struct lv_ratetable *lv_ratetable_create(size_t max_clients);
void lv_ratetable_destroy(struct lv_ratetable *t);

/* Takes one request for key (any bytes) at now (µs). Thread-safe. */
void lv_ratetable_take(struct lv_ratetable *t, const char *key, size_t len, enum lv_limit_algo algo,
                       const struct lv_limit_cfg *cfg, uint64_t now, struct lv_limit_result *res);

/* Clients held now, and evictions so far (for metrics and tests). */
size_t lv_ratetable_size(struct lv_ratetable *t);
uint64_t lv_ratetable_evictions(struct lv_ratetable *t);

#endif
