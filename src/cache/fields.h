/*
 * A read-only view of a message's header fields, whatever holds them: a
 * parsed head (http/head.h) or a stored response (cache/store.h). The
 * cache's rules read requests and responses through it, so they are the
 * same for a live response and for a stored one, and do not depend on the
 * protocol the message came in (an HTTP/2 head maps to the same view).
 */
#ifndef LV_CACHE_FIELDS_H
#define LV_CACHE_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/head.h"

struct lv_fields {
    const char *base;          /* offsets in f[] are relative to it */
    const struct lv_hfield *f; /* f[0..n) */
    uint32_t n;
};

/* One field, as pointers. */
struct lv_field {
    const char *name, *value;
    uint32_t name_len, value_len;
};

/* The view of a parsed head (valid while the head is). */
static inline struct lv_fields lv_fields_of_head(const struct lv_head *h)
{
    struct lv_fields v = {h->buf ? h->buf->data : NULL, h->fields, h->nfields};
    return v;
}

static inline struct lv_field lv_fields_at(const struct lv_fields *fs, uint32_t i)
{
    const struct lv_hfield *h = &fs->f[i];
    struct lv_field f = {fs->base + h->name, fs->base + h->value, h->name_len, h->value_len};
    return f;
}

/* True if field i is named name (ASCII case-insensitive). */
bool lv_fields_is(const struct lv_fields *fs, uint32_t i, const char *name, size_t len);

/*
 * The next field named name at or after *i: returns true, sets *out and
 * moves *i past it; false when there is none. Start with *i = 0 to visit
 * every line of a field that was sent more than once.
 */
bool lv_fields_next(const struct lv_fields *fs, const char *name, size_t len, uint32_t *i,
                    struct lv_field *out);
#define LV_FIELDS_NEXT(fs, lit, i, out) lv_fields_next((fs), lit, sizeof(lit) - 1, (i), (out))

/* True if a field with that name is present. */
bool lv_fields_has(const struct lv_fields *fs, const char *name, size_t len);
#define LV_FIELDS_HAS(fs, lit) lv_fields_has((fs), lit, sizeof(lit) - 1)

/* ASCII case-insensitive equality of two names. */
bool lv_name_eq(const char *a, size_t alen, const char *b, size_t blen);

/*
 * Walks a comma-separated list (RFC 9110 §5.6.1): each call sets *item to
 * the next non-empty element, trimmed of whitespace, and returns true;
 * false at the end. Commas inside a quoted string do not split. *pos
 * starts at 0.
 */
bool lv_list_next(const char *v, size_t n, size_t *pos, const char **item, size_t *item_len);

#endif
