/* The request body queue: a growable array of buffer slices. */
#include "proxy/bodyq.h"

#include <stdlib.h>
#include <string.h>

void lv_bodyq_init(struct lv_bodyq *q)
{
    memset(q, 0, sizeof(*q));
}

void lv_bodyq_dispose(struct lv_bodyq *q)
{
    for (uint32_t i = 0; i < q->count; i++)
        lv_buf_unref(q->s[i].buf);
    free(q->s);
    memset(q, 0, sizeof(*q));
}

int lv_bodyq_push(struct lv_bodyq *q, struct lv_buf *b, const char *p, uint32_t len)
{
    if (len == 0) return 0;
    /* Never extend the previous slice: an attempt may have sent it already. */
    if (q->count == q->cap) {
        uint32_t cap = q->cap ? q->cap * 2 : 8;
        struct lv_slice *s = realloc(q->s, cap * sizeof(*s));
        if (s == NULL) return -1;
        q->s = s;
        q->cap = cap;
    }
    q->s[q->count++] = (struct lv_slice){lv_buf_ref(b), p, len};
    q->bytes += len;
    q->held += len;
    return 0;
}

const struct lv_slice *lv_bodyq_at(const struct lv_bodyq *q, uint32_t i)
{
    if (i < q->base || i >= q->base + q->count) return NULL;
    return &q->s[i - q->base];
}

void lv_bodyq_drop_before(struct lv_bodyq *q, uint32_t i)
{
    if (i <= q->base) return;
    uint32_t n = i - q->base;
    if (n > q->count) n = q->count;
    for (uint32_t k = 0; k < n; k++) {
        q->held -= q->s[k].len;
        lv_buf_unref(q->s[k].buf);
    }
    memmove(q->s, q->s + n, (q->count - n) * sizeof(*q->s));
    q->count -= n;
    q->base += n;
    q->dropped = true;
}

uint64_t lv_bodyq_bytes_from(const struct lv_bodyq *q, uint32_t i)
{
    uint64_t n = 0;
    for (uint32_t k = i > q->base ? i - q->base : 0; k < q->count; k++)
        n += q->s[k].len;
    return n;
}
