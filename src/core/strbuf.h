/*
 * A growable text buffer with a hard cap, for the documents levee builds
 * (metrics, JSON status pages): appends never overflow; past the cap they
 * are dropped and `truncated` is set, so a caller can answer 500 rather
 * than a silently cut document.
 */
#ifndef LV_CORE_STRBUF_H
#define LV_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct lv_strbuf {
    char *p;
    size_t len, cap, max;
    bool truncated;
};

void lv_strbuf_init(struct lv_strbuf *sb, size_t max);
void lv_strbuf_dispose(struct lv_strbuf *sb);

void lv_strbuf_add(struct lv_strbuf *sb, const char *s, size_t n);
void lv_strbuf_puts(struct lv_strbuf *sb, const char *s);
void lv_strbuf_printf(struct lv_strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included. */
void lv_strbuf_json_str(struct lv_strbuf *sb, const char *s);

#endif
