/*
 * Reference-counted buffers: a free list per worker, capped, so that a burst
 * of traffic does not leave its memory behind once it is over.
 */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

void lv_bufpool_init(struct lv_bufpool *pool, size_t max_free)
{
    memset(pool, 0, sizeof(*pool));
    pool->max_free = max_free;
}

void lv_bufpool_dispose(struct lv_bufpool *pool)
{
    while (pool->free) {
        struct lv_buf *b = pool->free;
        pool->free = b->next;
        free(b);
    }
    pool->nfree = 0;
    pool->max_free = 0; /* buffers still out are freed when released */
}

static struct lv_buf *buf_new(size_t cap, struct lv_bufpool *pool)
{
    struct lv_buf *b = malloc(sizeof(*b) + cap);
    if (b == NULL) return NULL;
    b->cap = (uint32_t)cap;
    b->pool = pool;
    return b;
}

/* A malloc'd buffer of any size: never pooled, but counted. */
static struct lv_buf *buf_new_unpooled(struct lv_bufpool *pool, size_t cap)
{
    struct lv_buf *b = buf_new(cap, pool);
    if (b == NULL) return NULL;
    b->refs = 1;
    b->len = 0;
    b->next = NULL;
    if (pool) LV_STAT_ADD(pool->bytes, cap);
    return b;
}

struct lv_buf *lv_buf_get(struct lv_bufpool *pool)
{
    struct lv_buf *b = pool->free;
    if (b != NULL) {
        pool->free = b->next;
        pool->nfree--;
    } else {
        b = buf_new(LV_BUF_SIZE, pool);
        if (b == NULL) return NULL;
    }
    pool->out++;
    LV_STAT_ADD(pool->bytes, LV_BUF_SIZE);
    b->refs = 1;
    b->len = 0;
    b->next = NULL;
    return b;
}

struct lv_buf *lv_buf_get_size(struct lv_bufpool *pool, size_t cap)
{
    if (cap <= LV_BUF_SIZE) return lv_buf_get(pool);
    return buf_new_unpooled(pool, cap);
}

struct lv_buf *lv_buf_get_exact(struct lv_bufpool *pool, size_t cap)
{
    if (cap == LV_BUF_SIZE) return lv_buf_get(pool);
    return buf_new_unpooled(pool, cap);
}

void lv_buf_unref(struct lv_buf *b)
{
    if (--b->refs > 0) return;
    struct lv_bufpool *pool = b->pool;
    if (pool) LV_STAT_ADD(pool->bytes, -(uint64_t)b->cap);
    if (pool == NULL || b->cap != LV_BUF_SIZE) {
        free(b);
        return;
    }
    pool->out--;
    if (pool->nfree >= pool->max_free) {
        free(b);
        return;
    }
    b->next = pool->free;
    pool->free = b;
    pool->nfree++;
}

int lv_buf_append(struct lv_buf *b, const void *p, size_t len)
{
    if (len > (size_t)(b->cap - b->len)) return UV_ENOBUFS;
    memcpy(b->data + b->len, p, len);
    b->len += (uint32_t)len;
    return 0;
}
