/*
 * Access log lines, buffered per worker. Client-supplied text (target,
 * Referer, User-Agent) is escaped: a request cannot forge a log line.
 */
#include "proxy/accesslog.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"

#define LOG_BUF (64 * 1024)
#define LOG_FLUSH_AT (48 * 1024)
#define LOG_FLUSH_MS 100
#define FIELD_MAX 2048 /* longer client-supplied fields are cut */

struct lv_accesslog {
    uv_timer_t timer; /* first: freed in its close callback */
    int fd;
    enum lv_log_format fmt;
    size_t len;
    bool warned;
    char buf[LOG_BUF];
};

struct lv_accesslog *lv_accesslog_create(uv_loop_t *loop, int fd, enum lv_log_format fmt)
{
    if (fd < 0) return NULL;
    struct lv_accesslog *log = malloc(sizeof(*log));
    if (log == NULL) return NULL;
    log->fd = fd;
    log->fmt = fmt;
    log->len = 0;
    log->warned = false;
    uv_timer_init(loop, &log->timer);
    log->timer.data = log;
    return log;
}

void lv_accesslog_flush(struct lv_accesslog *log)
{
    if (log == NULL) return;
    size_t off = 0;
    while (off < log->len) {
        ssize_t n = write(log->fd, log->buf + off, log->len - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            if (!log->warned) lv_warn("access log: write failed: %s", strerror(errno));
            log->warned = true;
            break;
        }
        off += (size_t)n;
    }
    log->len = 0;
}

static void on_flush_timer(uv_timer_t *t)
{
    lv_accesslog_flush(t->data);
}

static void on_closed(uv_handle_t *h)
{
    free(h);
}

void lv_accesslog_close(struct lv_accesslog *log)
{
    if (log == NULL) return;
    lv_accesslog_flush(log);
    uv_close((uv_handle_t *)&log->timer, on_closed);
}

/* --- formatting ------------------------------------------------------------- */

struct line {
    char *p;
    size_t len, cap;
};

static void put(struct line *l, const char *s, size_t n)
{
    if (n > l->cap - l->len) n = l->cap - l->len;
    memcpy(l->p + l->len, s, n);
    l->len += n;
}

static void puts_(struct line *l, const char *s)
{
    put(l, s, strlen(s));
}

static void putf(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(struct line *l, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->p + l->len, l->cap - l->len, fmt, ap);
    va_end(ap);
    if (n > 0) l->len += (size_t)n < l->cap - l->len ? (size_t)n : l->cap - l->len - 1;
}

/* Client text: '"', '\\' and bytes outside printable ASCII become \xHH
 * (combined) or JSON escapes (json). */
static void put_escaped(struct line *l, const char *s, size_t n, bool json)
{
    if (n > FIELD_MAX) n = FIELD_MAX;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') {
            put(l, (const char *)&ch, 1);
        } else if (json) {
            if (ch == '"' || ch == '\\') {
                char e[2] = {'\\', (char)ch};
                put(l, e, 2);
            } else {
                putf(l, "\\u%04x", ch);
            }
        } else {
            putf(l, "\\x%02X", ch);
        }
    }
}

static const struct lv_hfield *field(const struct lv_access_rec *r, const char *name, size_t len)
{
    return r->req ? lv_head_find(r->req, name, len) : NULL;
}

static void put_field_value(struct line *l, const struct lv_access_rec *r, const char *name,
                            bool json)
{
    const struct lv_hfield *f = field(r, name, strlen(name));
    if (f == NULL) {
        puts_(l, json ? "null" : "\"-\"");
        return;
    }
    put(l, "\"", 1);
    put_escaped(l, lv_head_str(r->req, f->value), f->value_len, json);
    put(l, "\"", 1);
}

static unsigned logged_status(const struct lv_access_rec *r)
{
    return r->status ? r->status : 499;
}

/* Why the request was not retried (when a retry was considered), or that
 * a hedge was sent: "-" otherwise. */
static const char *retry_note(const struct lv_access_rec *r)
{
    if (r->skip != LV_SKIP_NONE && r->skip != LV_SKIP_NOT_RETRYABLE)
        return lv_retry_skip_name(r->skip);
    return r->hedged ? "hedged" : "-";
}

static void format_combined(struct line *l, const struct lv_access_rec *r, uint64_t now_ns)
{
    char when[40];
    lv_clock_fmt_clf(when, sizeof(when), r->start_wall_ms);
    putf(l, "%s - - [%s] \"", r->client_ip, when);
    if (r->req) {
        puts_(l, llhttp_method_name((llhttp_method_t)r->req->method));
        put(l, " ", 1);
        put_escaped(l, lv_head_str(r->req, r->req->target), r->req->target_len, false);
        putf(l, " HTTP/%u.%u", r->req->http_major, r->req->http_minor);
    } else {
        put(l, "-", 1);
    }
    putf(l, "\" %u %" PRIu64 " ", logged_status(r), r->bytes);
    put_field_value(l, r, "referer", false);
    put(l, " ", 1);
    put_field_value(l, r, "user-agent", false);
    putf(l, " %.3f %s %u %s %s %s\n", (double)(now_ns - r->start_ns) / 1e9,
         r->backend ? r->backend : "-", r->attempts, lv_fail_info(r->fail)->reason, retry_note(r),
         r->request_id[0] ? r->request_id : "-");
}

static void format_json(struct line *l, const struct lv_access_rec *r, uint64_t now_ns)
{
    char when[40];
    lv_clock_fmt_iso(when, sizeof(when), r->start_wall_ms);
    putf(l, "{\"time\":\"%s\",\"client\":\"%s\",", when, r->client_ip);
    if (r->req) {
        putf(l, "\"method\":\"%s\",\"path\":\"",
             llhttp_method_name((llhttp_method_t)r->req->method));
        put_escaped(l, lv_head_str(r->req, r->req->target), r->req->target_len, true);
        putf(l, "\",\"protocol\":\"HTTP/%u.%u\",", r->req->http_major, r->req->http_minor);
    } else {
        puts_(l, "\"method\":null,\"path\":null,\"protocol\":null,");
    }
    putf(l, "\"status\":%u,\"bytes\":%" PRIu64 ",\"duration_ms\":%.3f,", logged_status(r), r->bytes,
         (double)(now_ns - r->start_ns) / 1e6);
    if (r->backend)
        putf(l, "\"backend\":\"%s\",", r->backend);
    else
        puts_(l, "\"backend\":null,");
    putf(l, "\"attempts\":%u,", r->attempts);
    const char *note = retry_note(r);
    if (note[0] != '-')
        putf(l, "\"retry\":\"%s\",", note);
    else
        puts_(l, "\"retry\":null,");
    if (r->fail != LV_FAIL_NONE)
        putf(l, "\"reason\":\"%s\",", lv_fail_info(r->fail)->reason);
    else
        puts_(l, "\"reason\":null,");
    if (r->request_id[0])
        putf(l, "\"request_id\":\"%s\",", r->request_id);
    else
        puts_(l, "\"request_id\":null,");
    puts_(l, "\"referer\":");
    put_field_value(l, r, "referer", true);
    puts_(l, ",\"user_agent\":");
    put_field_value(l, r, "user-agent", true);
    puts_(l, "}\n");
}

void lv_accesslog_write(struct lv_accesslog *log, const struct lv_access_rec *r)
{
    if (log == NULL) return;
    if (LOG_BUF - log->len < 3 * FIELD_MAX + 1024) lv_accesslog_flush(log);
    struct line l = {log->buf + log->len, 0, LOG_BUF - log->len};
    uint64_t now = lv_clock_ns();
    if (log->fmt == LV_LOGFMT_JSON)
        format_json(&l, r, now);
    else
        format_combined(&l, r, now);
    if (l.len > 0 && l.p[l.len - 1] != '\n') l.p[l.len - 1] = '\n';
    log->len += l.len;
    if (log->len >= LOG_FLUSH_AT)
        lv_accesslog_flush(log);
    else if (!uv_is_active((uv_handle_t *)&log->timer))
        uv_timer_start(&log->timer, on_flush_timer, LOG_FLUSH_MS, 0);
}
