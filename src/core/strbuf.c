/* Capped text writers (growable or fixed) and their escapers. */
#include "core/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lv_strbuf_init(struct lv_strbuf *sb, size_t max)
{
    memset(sb, 0, sizeof(*sb));
    sb->max = max;
}

void lv_strbuf_init_fixed(struct lv_strbuf *sb, char *buf, size_t cap)
{
    memset(sb, 0, sizeof(*sb));
    sb->p = buf;
    sb->cap = sb->max = cap;
    sb->fixed = true;
    if (cap) buf[0] = '\0';
}

void lv_strbuf_dispose(struct lv_strbuf *sb)
{
    if (!sb->fixed) free(sb->p);
    memset(sb, 0, sizeof(*sb));
}

/* Room for n more bytes (and, in a heap writer, the NUL after them)? */
static bool reserve(struct lv_strbuf *sb, size_t n)
{
    if (sb->truncated) return false;
    if (sb->fixed) {
        if (n <= sb->cap - sb->len) return true;
        sb->truncated = true;
        return false;
    }
    if (sb->len + n + 1 <= sb->cap) return true;
    if (sb->len + n + 1 > sb->max) {
        sb->truncated = true;
        return false;
    }
    size_t cap = sb->cap ? sb->cap : 1024;
    while (cap < sb->len + n + 1)
        cap *= 2;
    if (cap > sb->max) cap = sb->max;
    char *p = realloc(sb->p, cap);
    if (p == NULL) {
        sb->truncated = true;
        return false;
    }
    sb->p = p;
    sb->cap = cap;
    return true;
}

void lv_strbuf_add(struct lv_strbuf *sb, const char *s, size_t n)
{
    if (!reserve(sb, n)) return;
    memcpy(sb->p + sb->len, s, n);
    sb->len += n;
    if (sb->len < sb->cap) sb->p[sb->len] = '\0';
}

void lv_strbuf_puts(struct lv_strbuf *sb, const char *s)
{
    lv_strbuf_add(sb, s, strlen(s));
}

void lv_strbuf_printf(struct lv_strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(tmp)) {
        lv_strbuf_add(sb, tmp, (size_t)n);
        return;
    }
    if (!reserve(sb, (size_t)n)) return;
    if (sb->fixed && sb->cap - sb->len == (size_t)n) {
        /* No room for vsnprintf's NUL: format aside, copy the text. */
        char *tmp2 = malloc((size_t)n + 1);
        if (tmp2 == NULL) {
            sb->truncated = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(tmp2, (size_t)n + 1, fmt, ap);
        va_end(ap);
        memcpy(sb->p + sb->len, tmp2, (size_t)n);
        free(tmp2);
        sb->len += (size_t)n;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

static const char hex_lower[] = "0123456789abcdef";
static const char hex_upper[] = "0123456789ABCDEF";

void lv_strbuf_json_escape(struct lv_strbuf *sb, const char *s, size_t n, bool ascii_only)
{
    size_t run = 0; /* start of the bytes that pass as they are */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\' && !(ascii_only && ch >= 0x7f)) continue;
        if (i > run) lv_strbuf_add(sb, s + run, i - run);
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            lv_strbuf_add(sb, e, 2);
        } else {
            char e[6] = {'\\', 'u', '0', '0', hex_lower[ch >> 4], hex_lower[ch & 15]};
            lv_strbuf_add(sb, e, 6);
        }
        run = i + 1;
    }
    if (n > run) lv_strbuf_add(sb, s + run, n - run);
}

void lv_strbuf_json_str(struct lv_strbuf *sb, const char *s)
{
    lv_strbuf_add(sb, "\"", 1);
    lv_strbuf_json_escape(sb, s, strlen(s), false);
    lv_strbuf_add(sb, "\"", 1);
}

void lv_strbuf_text_escape(struct lv_strbuf *sb, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') continue;
        if (i > run) lv_strbuf_add(sb, s + run, i - run);
        char e[4] = {'\\', 'x', hex_upper[ch >> 4], hex_upper[ch & 15]};
        lv_strbuf_add(sb, e, 4);
        run = i + 1;
    }
    if (n > run) lv_strbuf_add(sb, s + run, n - run);
}
