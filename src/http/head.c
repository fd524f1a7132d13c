/*
 * Message heads: capped storage and the header-field predicates the proxy
 * needs (lookup, token lists, hop-by-hop classification).
 */
#include "http/head.h"

#include <stdlib.h>
#include <strings.h>
#include <uv.h>

void lv_head_init(struct lv_head *h, uint32_t limit, uint32_t max_fields)
{
    h->buf = NULL;
    h->limit = limit;
    h->target = h->target_len = 0;
    h->fields = h->inline_fields;
    h->nfields = 0;
    h->cap_fields = LV_HEAD_INLINE_FIELDS;
    h->max_fields = max_fields;
    h->last = 0;
    h->method = 0;
    h->http_major = 1;
    h->http_minor = 1;
    h->status = 0;
}

void lv_head_dispose(struct lv_head *h)
{
    if (h->buf) lv_buf_unref(h->buf);
    h->buf = NULL;
    if (h->fields != h->inline_fields) free(h->fields);
    h->fields = h->inline_fields;
    h->nfields = 0;
}

static int append(struct lv_head *h, struct lv_bufpool *pool, const char *p, size_t n)
{
    if (h->buf == NULL) {
        h->buf = lv_buf_get_size(pool, h->limit);
        if (h->buf == NULL) return UV_ENOBUFS;
    }
    if (n > h->limit - h->buf->len) return UV_ENOBUFS;
    return lv_buf_append(h->buf, p, n);
}

int lv_head_add_target(struct lv_head *h, struct lv_bufpool *pool, const char *p, size_t n)
{
    if (h->last != 1) {
        h->target = h->buf ? h->buf->len : 0;
        h->target_len = 0;
        h->last = 1;
    }
    if (append(h, pool, p, n) != 0) return UV_ENOBUFS;
    h->target_len += (uint32_t)n;
    return 0;
}

int lv_head_add_name(struct lv_head *h, struct lv_bufpool *pool, const char *p, size_t n)
{
    if (h->last != 2) {
        if (h->nfields >= h->max_fields) return UV_E2BIG;
        if (h->nfields == h->cap_fields) {
            uint32_t cap = h->cap_fields * 2;
            struct lv_hfield *f = malloc(cap * sizeof(*f));
            if (f == NULL) return UV_ENOBUFS;
            memcpy(f, h->fields, h->nfields * sizeof(*f));
            if (h->fields != h->inline_fields) free(h->fields);
            h->fields = f;
            h->cap_fields = cap;
        }
        struct lv_hfield *f = &h->fields[h->nfields++];
        f->name = h->buf ? h->buf->len : 0;
        f->name_len = 0;
        f->value = f->name;
        f->value_len = 0;
        f->flags = 0;
        h->last = 2;
    }
    if (append(h, pool, p, n) != 0) return UV_ENOBUFS;
    h->fields[h->nfields - 1].name_len += (uint32_t)n;
    return 0;
}

int lv_head_add_value(struct lv_head *h, struct lv_bufpool *pool, const char *p, size_t n)
{
    if (h->nfields == 0) return UV_ENOBUFS;
    struct lv_hfield *f = &h->fields[h->nfields - 1];
    if (h->last != 3) {
        f->value = h->buf ? h->buf->len : 0;
        f->value_len = 0;
        h->last = 3;
    }
    if (append(h, pool, p, n) != 0) return UV_ENOBUFS;
    f->value_len += (uint32_t)n;
    return 0;
}

bool lv_hfield_is(const struct lv_head *h, const struct lv_hfield *f, const char *name, size_t len)
{
    return f->name_len == len && strncasecmp(lv_head_str(h, f->name), name, len) == 0;
}

const struct lv_hfield *lv_head_find(const struct lv_head *h, const char *name, size_t len)
{
    for (uint32_t i = 0; i < h->nfields; i++) {
        if (lv_hfield_is(h, &h->fields[i], name, len)) return &h->fields[i];
    }
    return NULL;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool lv_token_list_has(const char *v, size_t len, const char *token, size_t tlen)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && (is_ows(v[i]) || v[i] == ','))
            i++;
        size_t start = i;
        while (i < len && v[i] != ',')
            i++;
        size_t end = i;
        while (end > start && is_ows(v[end - 1]))
            end--;
        if (end - start == tlen && strncasecmp(v + start, token, tlen) == 0) return true;
    }
    return false;
}

static const struct {
    const char *name;
    size_t len;
} hop_names[] = {
    {"connection", 10}, {"keep-alive", 10},        {"proxy-connection", 16}, {"te", 2},
    {"trailer", 7},     {"transfer-encoding", 17}, {"upgrade", 7},
};

void lv_head_classify(struct lv_head *h, char *const *drop, size_t ndrop)
{
    for (uint32_t i = 0; i < h->nfields; i++) {
        struct lv_hfield *f = &h->fields[i];
        const char *v = lv_head_str(h, f->value);
        while (f->value_len > 0 && is_ows(v[f->value_len - 1]))
            f->value_len--;
        for (size_t k = 0; k < sizeof(hop_names) / sizeof(hop_names[0]); k++) {
            if (lv_hfield_is(h, f, hop_names[k].name, hop_names[k].len)) f->flags |= LV_HF_HOP;
        }
        for (size_t k = 0; k < ndrop; k++) {
            if (lv_hfield_is(h, f, drop[k], strlen(drop[k]))) f->flags |= LV_HF_DROP;
        }
    }
    /* Names listed in Connection are hop-by-hop too (RFC 9110 §7.6.1). */
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct lv_hfield *c = &h->fields[i];
        if (!LV_HFIELD_IS(h, c, "connection")) continue;
        const char *v = lv_head_str(h, c->value);
        for (uint32_t j = 0; j < h->nfields; j++) {
            struct lv_hfield *f = &h->fields[j];
            /* Host, and the fields that frame the message, are not for
             * Connection to remove: without Content-Length a response
             * levee relays would have no framing at all, and the next
             * response on the connection would be read as its body. */
            if (LV_HFIELD_IS(h, f, "host") || LV_HFIELD_IS(h, f, "content-length")) continue;
            if (lv_token_list_has(v, c->value_len, lv_head_str(h, f->name), f->name_len))
                f->flags |= LV_HF_HOP;
        }
    }
}
