/*
 * levee's one bounded string writer, and its escapers: for the documents
 * levee builds (metrics, JSON status pages, the /health document) and for
 * access-log lines. Appends never overflow: past the cap they are dropped
 * and `truncated` is set (it sticks: a document with a hole is worse than a
 * cut one), so a caller can answer 500 rather than a silently cut document.
 *
 * A writer either grows in the heap up to a cap (lv_strbuf_init), or
 * writes into memory the caller owns and never allocates
 * (lv_strbuf_init_fixed: an access-log line in the worker's log buffer).
 * The text is NUL-terminated whenever len < the memory's size.
 */
#ifndef LV_CORE_STRBUF_H
#define LV_CORE_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct lv_strbuf {
    char *p;
    size_t len, cap, max;
    bool truncated;
    bool fixed; /* p is the caller's (cap bytes), never grown nor freed */
};

/* A heap writer that holds at most max - 1 bytes of text (and its NUL). */
void lv_strbuf_init(struct lv_strbuf *sb, size_t max);
/* A writer into buf[0..cap): at most cap bytes of text (no room is kept
 * for a NUL: the text is terminated only while there is room for one). */
void lv_strbuf_init_fixed(struct lv_strbuf *sb, char *buf, size_t cap);
/* Frees what a heap writer allocated; nothing for a fixed one. */
void lv_strbuf_dispose(struct lv_strbuf *sb);

void lv_strbuf_add(struct lv_strbuf *sb, const char *s, size_t n);
void lv_strbuf_puts(struct lv_strbuf *sb, const char *s);
void lv_strbuf_printf(struct lv_strbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The one JSON string escaper: appends s[0..n) escaped for the inside of
 * a JSON string (no quotes): '"' and '\' get a backslash, control bytes
 * become \u00XX. Bytes from 0x7f up pass as they are (UTF-8 text), unless
 * ascii_only: then they become \u00XX too, so that bytes a client sent
 * (not necessarily UTF-8) leave valid, ASCII-only JSON. */
void lv_strbuf_json_escape(struct lv_strbuf *sb, const char *s, size_t n, bool ascii_only);
/* Appends s (NUL-terminated, UTF-8) as a JSON string literal, quotes
 * included. */
void lv_strbuf_json_str(struct lv_strbuf *sb, const char *s);

/* Appends s[0..n) for a quoted field of a text log line (the combined
 * access log): '"', '\' and every byte outside printable ASCII become
 * \xHH, so that a client cannot end the field or forge a line. */
void lv_strbuf_text_escape(struct lv_strbuf *sb, const char *s, size_t n);

#endif
