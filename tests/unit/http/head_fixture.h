/*
 * A parsed head for the http tests: a buffer pool, a struct lv_head and a
 * request or response parser feeding it, with counters for the handler's
 * callbacks. Bytes are fed from pooled buffers, as the proxy does.
 */
#ifndef LV_TESTS_UNIT_HTTP_HEAD_FIXTURE_H
#define LV_TESTS_UNIT_HTTP_HEAD_FIXTURE_H

#include <criterion/criterion.h>
#include <string.h>

#include "core/buf.h"
#include "http/head.h"
#include "http/parser.h"

struct head_fixture {
    struct lv_bufpool pool;
    struct lv_head head;
    struct lv_http_parser p;
    int heads, completes;
    int head_rc;                 /* what on_head answers: 0, 1 (no body) or -1 */
    enum lv_fail_kind head_fail; /* set in p->fail when on_head answers -1 */
    int complete_rc;             /* what on_complete answers: 0 or HPE_PAUSED */
    char body[4096];
    size_t body_len;
};

static inline int fixture_on_head(struct lv_http_parser *p)
{
    struct head_fixture *f = p->owner;
    f->heads++;
    if (f->head_rc < 0) p->fail = f->head_fail;
    return f->head_rc;
}

static inline int fixture_on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    struct head_fixture *f = p->owner;
    cr_assert_not_null(p->cur_buf, "body bytes outside execute");
    cr_assert(at >= p->cur_buf->data && at + len <= p->cur_buf->data + p->cur_buf->len,
              "body bytes outside the buffer being parsed");
    cr_assert_leq(f->body_len + len, sizeof(f->body));
    memcpy(f->body + f->body_len, at, len);
    f->body_len += len;
    return 0;
}

static inline int fixture_on_complete(struct lv_http_parser *p)
{
    struct head_fixture *f = p->owner;
    f->completes++;
    return f->complete_rc;
}

static const struct lv_http_handler fixture_handler = {
    NULL,
    fixture_on_head,
    fixture_on_body,
    fixture_on_complete,
};

/* limit: bytes of target + names + values; max_fields; type HTTP_REQUEST or
 * HTTP_RESPONSE. */
static inline void fixture_init(struct head_fixture *f, llhttp_type_t type, uint32_t limit,
                                uint32_t max_fields)
{
    memset(f, 0, sizeof(*f));
    lv_bufpool_init(&f->pool, 4);
    lv_head_init(&f->head, limit, max_fields);
    lv_http_parser_init(&f->p, type, &fixture_handler, f);
    f->p.head = &f->head;
    f->p.pool = &f->pool;
}

static inline void fixture_dispose(struct head_fixture *f)
{
    lv_head_dispose(&f->head);
    lv_bufpool_dispose(&f->pool);
}

/* Feeds n bytes (copied into a pooled buffer first). */
static inline llhttp_errno_t fixture_feed(struct head_fixture *f, const char *s, size_t n)
{
    struct lv_buf *b = lv_buf_get_size(&f->pool, n);
    cr_assert_not_null(b);
    cr_assert_eq(lv_buf_append(b, s, n), 0);
    size_t consumed = 0;
    llhttp_errno_t err = lv_http_parser_execute(&f->p, b, b->data, n, &consumed);
    cr_assert_leq(consumed, n);
    lv_buf_unref(b);
    return err;
}

static inline llhttp_errno_t fixture_feed_str(struct head_fixture *f, const char *s)
{
    return fixture_feed(f, s, strlen(s));
}

/* The target (or a response's reason) as a NUL-terminated copy in out. */
static inline const char *fixture_target(const struct head_fixture *f, char *out, size_t cap)
{
    size_t n = f->head.target_len < cap - 1 ? f->head.target_len : cap - 1;
    memcpy(out, lv_head_str(&f->head, f->head.target), n);
    out[n] = '\0';
    return out;
}

/* Asserts that field i is exactly name: value. */
static inline void fixture_expect_field(const struct head_fixture *f, uint32_t i, const char *name,
                                        const char *value)
{
    cr_assert_lt(i, f->head.nfields, "no field %u (%u fields)", i, f->head.nfields);
    const struct lv_hfield *h = &f->head.fields[i];
    const char *n = lv_head_str(&f->head, h->name);
    const char *v = lv_head_str(&f->head, h->value);
    cr_expect(h->name_len == strlen(name) && memcmp(n, name, h->name_len) == 0,
              "field %u: name '%.*s', expected '%s'", i, (int)h->name_len, n, name);
    cr_expect(h->value_len == strlen(value) && memcmp(v, value, h->value_len) == 0,
              "field %u (%s): value '%.*s', expected '%s'", i, name, (int)h->value_len, v, value);
}

#endif
