/*
 * Reference-counted byte buffers and the per-worker pool they come from.
 *
 * Every byte levee reads lands in an lv_buf. Slices of it (a body fragment, a
 * pipelined request) are passed on by taking a reference instead of copying;
 * the buffer returns to its pool when the last reference is dropped. Idle
 * connections hold no buffer at all: that is what keeps an idle client cheap.
 *
 * Buffers and pools belong to one worker thread; nothing here is thread-safe.
 */
#ifndef LV_CORE_BUF_H
#define LV_CORE_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "core/stats.h"

/* Size of a pooled buffer: one socket read, or one serialized head. */
#define LV_BUF_SIZE (32 * 1024)

struct lv_bufpool;

struct lv_buf {
    uint32_t refs;
    uint32_t cap;            /* usable bytes in data[] */
    uint32_t len;            /* bytes filled */
    struct lv_bufpool *pool; /* its accounting; only LV_BUF_SIZE buffers go back to its free list */
    struct lv_buf *next;     /* free list link while pooled */
    char data[];
};

struct lv_bufpool {
    struct lv_buf *free;
    size_t nfree;
    size_t max_free; /* buffers kept beyond this are freed */
    size_t out;      /* LV_BUF_SIZE buffers handed out and not yet back */
    /* Capacity of every buffer handed out and not yet released, whatever
     * its size: the worker's buffer memory in use. Written by the owning
     * thread only, read by the metrics scrape (core/stats.h). */
    atomic_uint_fast64_t bytes;
};

void lv_bufpool_init(struct lv_bufpool *pool, size_t max_free);
/* Frees the pooled buffers. Buffers still out are freed when released. */
void lv_bufpool_dispose(struct lv_bufpool *pool);

/* A buffer of LV_BUF_SIZE bytes with one reference, len 0. NULL on ENOMEM. */
struct lv_buf *lv_buf_get(struct lv_bufpool *pool);
/* A buffer of at least cap bytes: pooled when it fits, malloc'd otherwise. */
struct lv_buf *lv_buf_get_size(struct lv_bufpool *pool, size_t cap);
/* A buffer of exactly cap bytes (cap > 0): the pooled size comes from the
 * free list, any other is malloc'd and freed on its last unref. For small
 * copies that are held a while (an interim head, a compacted body piece):
 * they must not each keep a LV_BUF_SIZE buffer alive. Counted in `bytes`. */
struct lv_buf *lv_buf_get_exact(struct lv_bufpool *pool, size_t cap);

static inline struct lv_buf *lv_buf_ref(struct lv_buf *b)
{
    b->refs++;
    return b;
}

void lv_buf_unref(struct lv_buf *b);

/* The buffer whose data[] contains p (p must point into a buffer's data). */
static inline struct lv_buf *lv_buf_of(const char *data_start)
{
    return lv_container_of(data_start, struct lv_buf, data);
}

/* Appends len bytes; returns 0, or UV_ENOBUFS when they do not fit (nothing copied). */
int lv_buf_append(struct lv_buf *b, const void *p, size_t len);

#endif
