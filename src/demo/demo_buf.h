/* Growable byte buffers for the demo backend: a response being assembled, the head of a
 * request being parsed, bytes waiting for the parser. Each buffer has a cap fixed when it is
 * initialised; an append that would pass it fails, which is how the demo bounds header and
 * pipelining memory. The first failure sticks: later appends do nothing and return it, so a
 * formatter can append freely and check `err` once. Also the few formatters responses need
 * (decimal, hex, JSON strings). */
#ifndef LV_DEMO_DEMO_BUF_H
#define LV_DEMO_DEMO_BUF_H

#include <stddef.h>
#include <stdint.h>

struct lv_demo_buf {
    char *data;
    size_t len;
    size_t size; /* allocated bytes */
    size_t cap;  /* never grows past this */
    int err;     /* first failure, 0 if none; cleared by lv_demo_buf_reset */
};

/* Prepares an empty buffer that may grow to cap bytes; allocates nothing yet. */
void lv_demo_buf_init(struct lv_demo_buf *b, size_t cap);
/* Frees the storage; the buffer is empty and reusable afterwards. */
void lv_demo_buf_dispose(struct lv_demo_buf *b);
/* Empties the buffer and clears err, keeping the storage for reuse. */
void lv_demo_buf_reset(struct lv_demo_buf *b);
/* Makes room for n more bytes. Returns 0, UV_ENOBUFS past the cap or UV_ENOMEM (and
 * records it in err). */
int lv_demo_buf_reserve(struct lv_demo_buf *b, size_t n);
/* Appends bytes. Returns 0 or a negative code as lv_demo_buf_reserve; on failure nothing is
 * appended. */
int lv_demo_buf_add(struct lv_demo_buf *b, const void *p, size_t n);
int lv_demo_buf_str(struct lv_demo_buf *b, const char *s);
/* Appends v in base 10 or 16 (lowercase), with at least `width` digits. */
int lv_demo_buf_num(struct lv_demo_buf *b, uint64_t v, unsigned base, int width);
/* Appends a quoted JSON string. Bytes >= 0x80 are written as \u00XX: the string is the
 * Latin-1 reading of the raw bytes, so any input gives valid JSON and round-trips with
 * str.encode("latin-1"). */
int lv_demo_buf_json(struct lv_demo_buf *b, const char *s, size_t n);

#endif
