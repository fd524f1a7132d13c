/*
 * A parsed HTTP message head: the request target (or the status reason) and
 * the header fields, copied out of the read buffers into one capped buffer
 * as llhttp reports them, so that the head outlives the reads it came from.
 * Fields are offsets into that buffer, in the order received.
 */
#ifndef LV_HTTP_HEAD_H
#define LV_HTTP_HEAD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"

/* Field flags, set when the head is complete. */
#define LV_HF_HOP 0x1  /* hop-by-hop (fixed list, or named in Connection) */
#define LV_HF_DROP 0x2 /* removed by configuration or by levee itself */

struct lv_hfield {
    uint32_t name, name_len;
    uint32_t value, value_len;
    uint32_t flags;
};

#define LV_HEAD_INLINE_FIELDS 24

struct lv_head {
    struct lv_buf *buf; /* NULL until the first byte */
    uint32_t limit;     /* max bytes of target + names + values */
    uint32_t target, target_len;
    struct lv_hfield *fields;
    uint32_t nfields, cap_fields, max_fields;
    uint8_t last; /* which callback ran last: 0 none, 1 target, 2 name, 3 value */
    uint8_t method;
    uint8_t http_major, http_minor;
    uint16_t status;
    struct lv_hfield inline_fields[LV_HEAD_INLINE_FIELDS];
};

/* Prepares an empty head; memory is taken on first use. */
void lv_head_init(struct lv_head *h, uint32_t limit, uint32_t max_fields);
/* Releases the buffer and any field array; the head can be reused after
 * lv_head_init. */
void lv_head_dispose(struct lv_head *h);

/* Appends bytes to the target / current name / current value. Returns 0,
 * UV_ENOBUFS when the byte limit is reached (or no buffer could be had),
 * UV_E2BIG when the field count limit is. */
int lv_head_add_target(struct lv_head *h, struct lv_bufpool *pool, const char *p, size_t n);
int lv_head_add_name(struct lv_head *h, struct lv_bufpool *pool, const char *p, size_t n);
int lv_head_add_value(struct lv_head *h, struct lv_bufpool *pool, const char *p, size_t n);

static inline const char *lv_head_str(const struct lv_head *h, uint32_t off)
{
    return h->buf->data + off;
}

/* True if field f's name equals name (ASCII case-insensitive). */
bool lv_hfield_is(const struct lv_head *h, const struct lv_hfield *f, const char *name, size_t len);
#define LV_HFIELD_IS(h, f, lit) lv_hfield_is((h), (f), lit, sizeof(lit) - 1)

/* The first field with that name, or NULL. */
const struct lv_hfield *lv_head_find(const struct lv_head *h, const char *name, size_t len);
#define LV_HEAD_FIND(h, lit) lv_head_find((h), lit, sizeof(lit) - 1)

/* True if a comma-separated list value contains token (case-insensitive). */
bool lv_token_list_has(const char *value, size_t len, const char *token, size_t tlen);

/*
 * Marks hop-by-hop fields (Connection, Keep-Alive, Proxy-Connection, TE,
 * Trailer, Transfer-Encoding, Upgrade, and every name listed in a
 * Connection field but Host and Content-Length) with LV_HF_HOP, and the
 * names in `drop` with LV_HF_DROP.
 * Trims trailing whitespace from values.
 */
void lv_head_classify(struct lv_head *h, char *const *drop, size_t ndrop);

#endif
