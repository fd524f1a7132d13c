/* Growable, capped text buffers. */
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

void lv_strbuf_dispose(struct lv_strbuf *sb)
{
    free(sb->p);
    memset(sb, 0, sizeof(*sb));
}

static bool reserve(struct lv_strbuf *sb, size_t n)
{
    if (sb->truncated) return false;
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
    sb->p[sb->len] = '\0';
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
    va_start(ap, fmt);
    vsnprintf(sb->p + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

void lv_strbuf_json_str(struct lv_strbuf *sb, const char *s)
{
    lv_strbuf_add(sb, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            lv_strbuf_add(sb, e, 2);
        } else if (*p < 0x20) {
            lv_strbuf_printf(sb, "\\u%04x", *p);
        } else {
            lv_strbuf_add(sb, (const char *)p, 1);
        }
    }
    lv_strbuf_add(sb, "\"", 1);
}
