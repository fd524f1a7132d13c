/*
 * The request body on its way through: a byte stream addressed by absolute
 * offset (0 is the body's first byte), held as slices of buffers, so that
 * several attempts (a retry, a hedge) can each keep their own cursor. Bytes
 * are released from the front once no attempt can need them again; from
 * then on the body cannot be replayed (`dropped`).
 *
 * Memory. A piece that fills at least half of the buffer it was read into
 * is kept by reference (zero copy: a full read stays where it landed). A
 * smaller one is copied into the queue's tail buffer, where consecutive
 * small pieces pack together; a full tail is followed by a new one, twice
 * as large (LV_BODYQ_TAIL_MIN, doubling up to LV_BUF_SIZE). So a body that
 * arrives one byte per read holds a few buffers, not one per byte: the
 * buffer memory held is at most about twice the bytes held, plus one tail.
 *
 * `mem` is that memory: for a slice kept by reference, its buffer's whole
 * capacity (two such slices never share a buffer: each fills half of it);
 * for a copied slice, its bytes; plus the unused room of the current tail.
 * It undercounts by at most one tail buffer (one whose first slices were
 * dropped while later ones are held). The slice array itself is not
 * counted: it holds at most two slices per buffer counted, plus one.
 *
 * The invariant that makes sharing a tail safe: bytes, once queued, never
 * change and never move. The socket write path keeps pointers into these
 * buffers (lv_sock_add takes a reference and writes later), and attempts
 * resend from the buffers on a retry. A tail only grows past its `len`;
 * the last slice may grow at its end (when its bytes end where the tail
 * does), never elsewhere. A reader that took [off, off + n) still finds
 * exactly those bytes there, and asks again from off + n for what came
 * since: that is why cursors are byte offsets, not slice indexes (a cursor
 * past a slice's old end would never see bytes appended to it).
 */
#ifndef LV_PROXY_BODYQ_H
#define LV_PROXY_BODYQ_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"

/* A run of request body bytes in one buffer. */
struct lv_slice {
    struct lv_buf *buf; /* a reference is held */
    const char *p;
    uint64_t off; /* absolute offset of p[0] in the body */
    uint32_t len;
    uint32_t pinned; /* kept by reference: buf's capacity; 0: copied into a tail */
};

struct lv_bodyq {
    struct lv_slice *s;
    uint32_t count; /* slices held: s[0..count) */
    uint32_t cap;
    uint64_t base;       /* absolute offset of the first byte held (bytes before it were dropped) */
    uint64_t bytes;      /* all body bytes received: the end offset */
    uint64_t mem;        /* buffer memory held (see above) */
    struct lv_buf *tail; /* where small pieces are copied; the queue holds a reference */
    struct lv_bufpool *pool; /* tails come from it */
    bool dropped;            /* some bytes were released: the body cannot be replayed */
};

/* The first tail's size; each next one is twice the last, up to LV_BUF_SIZE. */
#define LV_BODYQ_TAIL_MIN 1024

/* An empty queue whose tails come from pool. */
void lv_bodyq_init(struct lv_bodyq *q, struct lv_bufpool *pool);
/* Releases every slice, the tail and the array. */
void lv_bodyq_dispose(struct lv_bodyq *q);

/* Appends len bytes at p, which lie in b: by reference (a reference to b is
 * taken) or copied (b is not kept), as said above. 0, or UV_ENOMEM. */
int lv_bodyq_push(struct lv_bodyq *q, struct lv_buf *b, const char *p, uint32_t len);

/* The contiguous bytes held from absolute offset off: fills *out (buf, p at
 * off, len up to the end of that run) and returns out->len, or 0 when off is
 * not held (released, or not received yet). The bytes stay as they are while
 * a reference to out->buf is held (take one to keep them past a drop). */
uint32_t lv_bodyq_peek(const struct lv_bodyq *q, uint64_t off, struct lv_slice *out);

/* One past the last offset received. */
static inline uint64_t lv_bodyq_end(const struct lv_bodyq *q)
{
    return q->bytes;
}

/* Releases the bytes before absolute offset off (clamped to the end). */
void lv_bodyq_drop_before(struct lv_bodyq *q, uint64_t off);

/* Bytes held from absolute offset off to the end (what is still to send). */
static inline uint64_t lv_bodyq_bytes_from(const struct lv_bodyq *q, uint64_t off)
{
    uint64_t from = off > q->base ? off : q->base;
    return from < q->bytes ? q->bytes - from : 0;
}

/* Buffer memory held by the slices that hold offset off or later bytes. */
uint64_t lv_bodyq_mem_from(const struct lv_bodyq *q, uint64_t off);

#endif
