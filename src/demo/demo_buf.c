/* Growable, capped byte buffers and the formatters the demo responses use. Nothing here
 * knows about HTTP; see buf.h for the contracts. */
#include "demo/demo_buf.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

void lv_demo_buf_init(struct lv_demo_buf *b, size_t cap)
{
    b->data = NULL;
    b->len = b->size = 0;
    b->cap = cap;
    b->err = 0;
}

void lv_demo_buf_reset(struct lv_demo_buf *b)
{
    b->len = 0;
    b->err = 0;
}

void lv_demo_buf_dispose(struct lv_demo_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->size = 0;
}

int lv_demo_buf_reserve(struct lv_demo_buf *b, size_t n)
{
    if (b->err) return b->err;
    if (b->size - b->len >= n) return 0;
    if (n > b->cap - b->len) return b->err = UV_ENOBUFS;
    size_t size = b->size ? b->size : 1024;
    while (size - b->len < n)
        size *= 2;
    if (size > b->cap) size = b->cap;
    char *p = realloc(b->data, size);
    if (p == NULL) return b->err = UV_ENOMEM;
    b->data = p;
    b->size = size;
    return 0;
}

int lv_demo_buf_add(struct lv_demo_buf *b, const void *p, size_t n)
{
    int err = lv_demo_buf_reserve(b, n);
    if (err) return err;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int lv_demo_buf_str(struct lv_demo_buf *b, const char *s)
{
    return lv_demo_buf_add(b, s, strlen(s));
}

int lv_demo_buf_num(struct lv_demo_buf *b, uint64_t v, unsigned base, int width)
{
    char tmp[20];
    int i = 20;
    do {
        tmp[--i] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v || 20 - i < width);
    return lv_demo_buf_add(b, tmp + i, (size_t)(20 - i));
}

int lv_demo_buf_json(struct lv_demo_buf *b, const char *s, size_t n)
{
    /* Worst case every byte becomes \u00XX: reserving once keeps the loop branch-light. */
    int err = lv_demo_buf_reserve(b, n * 6 + 2);
    if (err) return err;
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            *o++ = '\\';
            *o++ = (char)ch;
        } else if (ch == '\n' || ch == '\r' || ch == '\t') {
            *o++ = '\\';
            *o++ = ch == '\n' ? 'n' : ch == '\r' ? 'r' : 't';
        } else if (ch < 0x20 || ch >= 0x7f) {
            memcpy(o, "\\u00", 4);
            o[4] = "0123456789abcdef"[ch >> 4];
            o[5] = "0123456789abcdef"[ch & 15];
            o += 6;
        } else {
            *o++ = (char)ch;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return 0;
}
