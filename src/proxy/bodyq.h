/*
 * The request body on its way through: slices of read buffers, held by
 * reference, addressed by an absolute index so that several attempts (a
 * retry, a hedge) can each keep their own cursor. Slices are released from
 * the front once no attempt can need them again; from then on the body
 * cannot be replayed (`dropped`).
 */
#ifndef LV_PROXY_BODYQ_H
#define LV_PROXY_BODYQ_H

#include "proxy/proxy-t.h"

void lv_bodyq_init(struct lv_bodyq *q);
/* Releases every slice and the array. */
void lv_bodyq_dispose(struct lv_bodyq *q);

/* Appends a slice of b (a reference is taken). 0 or -1 (ENOMEM). */
int lv_bodyq_push(struct lv_bodyq *q, struct lv_buf *b, const char *p, uint32_t len);

/* The slice at absolute index i, or NULL if released or not received yet. */
const struct lv_slice *lv_bodyq_at(const struct lv_bodyq *q, uint32_t i);

/* One past the last absolute index received. */
static inline uint32_t lv_bodyq_end(const struct lv_bodyq *q)
{
    return q->base + q->count;
}

/* Releases the slices before absolute index i. */
void lv_bodyq_drop_before(struct lv_bodyq *q, uint32_t i);

/* Bytes held from absolute index i to the end (what is still to send). */
uint64_t lv_bodyq_bytes_from(const struct lv_bodyq *q, uint32_t i);

#endif
