/* The request body queue: a growable array of buffer slices, small pieces
 * compacted into tail buffers (see bodyq.h for the invariants). */
#include "proxy/bodyq.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

void lv_bodyq_init(struct lv_bodyq *q, struct lv_bufpool *pool)
{
    memset(q, 0, sizeof(*q));
    q->pool = pool;
}

void lv_bodyq_dispose(struct lv_bodyq *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        lv_buf_unref(q->s[i].buf);
    free(q->s);
    if (q->tail) lv_buf_unref(q->tail);
    struct lv_bufpool *pool = q->pool;
    memset(q, 0, sizeof(*q));
    q->pool = pool;
}

/* The memory a slice accounts for. */
static uint64_t slice_mem(const struct lv_slice *s)
{
    return s->pinned ? s->pinned : s->len;
}

static struct lv_slice *last_slice(struct lv_bodyq *q)
{
    return q->count ? &q->s[q->count - 1] : NULL;
}

/* Appends a slice (taking a reference to b); its bytes are counted by the
 * caller. */
static int add_slice(struct lv_bodyq *q, struct lv_buf *b, const char *p, uint32_t len,
                     uint32_t pinned)
{
    if (q->count == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 8;
        struct lv_slice *s = realloc(q->s, cap * sizeof(*s));
        if (s == NULL) return UV_ENOMEM;
        q->s = s;
        q->cap = cap;
    }
    q->s[q->count++] = (struct lv_slice){lv_buf_ref(b), p, q->bytes, len, pinned};
    return 0;
}

/* A new, empty tail for a piece of `need` bytes: twice the last one (from
 * LV_BODYQ_TAIL_MIN), doubled again until the piece fits, up to
 * LV_BUF_SIZE; so a small body holds a small buffer and a long trickle a
 * few full ones. A tail is replaced only when full: only the current one
 * has room. The old one stays alive through its slices. */
static int new_tail(struct lv_bodyq *q, uint32_t need)
{
    size_t cap = q->tail ? (size_t)q->tail->cap * 2 : LV_BODYQ_TAIL_MIN;
    while (cap < need && cap < LV_BUF_SIZE)
        cap *= 2;
    if (cap > LV_BUF_SIZE) cap = LV_BUF_SIZE;
    struct lv_buf *t = lv_buf_get_exact(q->pool, cap);
    if (t == NULL) return UV_ENOMEM;
    if (q->tail) {
        q->mem -= q->tail->cap - q->tail->len; /* its room is not ours any more */
        lv_buf_unref(q->tail);
    }
    q->tail = t;
    q->mem += t->cap;
    return 0;
}

/* Copies len bytes into the tail: they extend the last slice when it ends
 * where the tail does (nobody was given those bytes yet: see bodyq.h),
 * else they start a new one. */
static int copy_in(struct lv_bodyq *q, const char *p, uint32_t len)
{
    while (len > 0) {
        if (q->tail == NULL || q->tail->len == q->tail->cap) {
            if (new_tail(q, len) != 0) return UV_ENOMEM;
        }
        struct lv_buf *t = q->tail;
        uint32_t n = t->cap - t->len;
        if (n > len) n = len;
        char *dst = t->data + t->len;
        struct lv_slice *last = last_slice(q);
        if (last && last->buf == t && last->p + last->len == dst) {
            last->len += n;
        } else if (add_slice(q, t, dst, n, 0) != 0) {
            return UV_ENOMEM;
        }
        memcpy(dst, p, n);
        t->len += n;
        q->bytes += n;
        p += n;
        len -= n;
    }
    return 0;
}

int lv_bodyq_push(struct lv_bodyq *q, struct lv_buf *b, const char *p, uint32_t len)
{
    if (len == 0) return 0;
    /* A small piece would keep its whole buffer alive: copy it. */
    if ((uint64_t)len * 2 < b->cap) return copy_in(q, p, len);
    if (add_slice(q, b, p, len, b->cap) != 0) return UV_ENOMEM;
    q->bytes += len;
    q->mem += b->cap;
    return 0;
}

/* Index of the first slice that ends after off (count if none). */
static uint32_t find(const struct lv_bodyq *q, uint64_t off)
{
    uint32_t lo = 0, hi = q->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (q->s[mid].off + q->s[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint32_t lv_bodyq_peek(const struct lv_bodyq *q, uint64_t off, struct lv_slice *out)
{
    if (off < q->base || off >= q->bytes) return 0;
    uint32_t i = find(q, off);
    if (i == q->count) return 0;
    const struct lv_slice *s = &q->s[i];
    uint32_t skip = (uint32_t)(off - s->off);
    *out = (struct lv_slice){s->buf, s->p + skip, off, s->len - skip, s->pinned};
    return out->len;
}

void lv_bodyq_drop_before(struct lv_bodyq *q, uint64_t off)
{
    if (off <= q->base) return;
    if (off > q->bytes) off = q->bytes;
    q->dropped = true;
    q->base = off;
    uint32_t n = find(q, off);
    for (uint32_t k = 0; k < n; k++) {
        q->mem -= slice_mem(&q->s[k]);
        lv_buf_unref(q->s[k].buf);
    }
    memmove(q->s, q->s + n, (q->count - n) * sizeof(*q->s));
    q->count -= n;
    if (q->count > 0 && q->s[0].off < off) { /* the first one, in part */
        struct lv_slice *s = &q->s[0];
        uint32_t k = (uint32_t)(off - s->off);
        if (!s->pinned) q->mem -= k; /* a copied slice holds only its bytes */
        s->p += k;
        s->len -= k;
        s->off = off;
    }
}

uint64_t lv_bodyq_mem_from(const struct lv_bodyq *q, uint64_t off)
{
    uint64_t mem = 0;
    for (uint32_t i = find(q, off); i < q->count; i++)
        mem += slice_mem(&q->s[i]);
    return mem;
}
