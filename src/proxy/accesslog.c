/*
 * Access log lines, buffered per worker. Client-supplied text (target,
 * Referer, User-Agent) is escaped: a request cannot forge a log line.
 */
#include "proxy/accesslog.h"

#include <errno.h>
#include <inttypes.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/strbuf.h"

#define LOG_FLUSH_AT (48 * 1024)
#define LOG_FLUSH_MS 100
#define FIELD_MAX 2048 /* longer client-supplied fields are cut */
/* The longest line: three client fields (target, Referer, User-Agent) of
 * FIELD_MAX bytes, each byte escaped into at most 6 (\u00XX), and the
 * fields levee writes itself. A line is formatted only where it fits
 * whole, so the buffer holds one beside a nearly full batch. */
#define LOG_LINE_MAX (3 * 6 * FIELD_MAX + 1024)
#define LOG_BUF (LOG_FLUSH_AT + LOG_LINE_MAX)

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

/* Client text: cut at FIELD_MAX bytes, escaped (core/strbuf.h): \xHH in
 * combined, JSON escapes (ASCII only) in json. */
static void put_escaped(struct lv_strbuf *l, const char *s, size_t n, bool json)
{
    if (n > FIELD_MAX) n = FIELD_MAX;
    if (json)
        lv_strbuf_json_escape(l, s, n, true);
    else
        lv_strbuf_text_escape(l, s, n);
}

static const struct lv_hfield *field(const struct lv_access_rec *r, const char *name, size_t len)
{
    return r->req ? lv_head_find(r->req, name, len) : NULL;
}

static void put_field_value(struct lv_strbuf *l, const struct lv_access_rec *r, const char *name,
                            bool json)
{
    const struct lv_hfield *f = field(r, name, strlen(name));
    if (f == NULL) {
        lv_strbuf_puts(l, json ? "null" : "\"-\"");
        return;
    }
    lv_strbuf_add(l, "\"", 1);
    put_escaped(l, lv_head_str(r->req, f->value), f->value_len, json);
    lv_strbuf_add(l, "\"", 1);
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

static void format_combined(struct lv_strbuf *l, const struct lv_access_rec *r, uint64_t now_ns)
{
    char when[40];
    lv_clock_fmt_clf(when, sizeof(when), r->start_wall_ms);
    lv_strbuf_printf(l, "%s - - [%s] \"", r->client_ip, when);
    if (r->req) {
        lv_strbuf_puts(l, llhttp_method_name((llhttp_method_t)r->req->method));
        lv_strbuf_add(l, " ", 1);
        put_escaped(l, lv_head_str(r->req, r->req->target), r->req->target_len, false);
        lv_strbuf_printf(l, " HTTP/%u.%u", r->req->http_major, r->req->http_minor);
    } else {
        lv_strbuf_add(l, "-", 1);
    }
    lv_strbuf_printf(l, "\" %u %" PRIu64 " ", logged_status(r), r->bytes);
    put_field_value(l, r, "referer", false);
    lv_strbuf_add(l, " ", 1);
    put_field_value(l, r, "user-agent", false);
    lv_strbuf_printf(l, " %.3f %s %u %s %s %s\n", (double)(now_ns - r->start_ns) / 1e9,
                     r->backend ? r->backend : "-", r->attempts, lv_fail_info(r->fail)->reason,
                     retry_note(r), r->request_id[0] ? r->request_id : "-");
}

static void format_json(struct lv_strbuf *l, const struct lv_access_rec *r, uint64_t now_ns)
{
    char when[40];
    lv_clock_fmt_iso(when, sizeof(when), r->start_wall_ms);
    lv_strbuf_printf(l, "{\"time\":\"%s\",\"client\":\"%s\",", when, r->client_ip);
    if (r->req) {
        lv_strbuf_printf(l, "\"method\":\"%s\",\"path\":\"",
                         llhttp_method_name((llhttp_method_t)r->req->method));
        put_escaped(l, lv_head_str(r->req, r->req->target), r->req->target_len, true);
        lv_strbuf_printf(l, "\",\"protocol\":\"HTTP/%u.%u\",", r->req->http_major,
                         r->req->http_minor);
    } else {
        lv_strbuf_puts(l, "\"method\":null,\"path\":null,\"protocol\":null,");
    }
    lv_strbuf_printf(l, "\"status\":%u,\"bytes\":%" PRIu64 ",\"duration_ms\":%.3f,",
                     logged_status(r), r->bytes, (double)(now_ns - r->start_ns) / 1e6);
    if (r->backend)
        lv_strbuf_printf(l, "\"backend\":\"%s\",", r->backend);
    else
        lv_strbuf_puts(l, "\"backend\":null,");
    lv_strbuf_printf(l, "\"attempts\":%u,", r->attempts);
    const char *note = retry_note(r);
    if (note[0] != '-')
        lv_strbuf_printf(l, "\"retry\":\"%s\",", note);
    else
        lv_strbuf_puts(l, "\"retry\":null,");
    if (r->fail != LV_FAIL_NONE)
        lv_strbuf_printf(l, "\"reason\":\"%s\",", lv_fail_info(r->fail)->reason);
    else
        lv_strbuf_puts(l, "\"reason\":null,");
    if (r->request_id[0])
        lv_strbuf_printf(l, "\"request_id\":\"%s\",", r->request_id);
    else
        lv_strbuf_puts(l, "\"request_id\":null,");
    lv_strbuf_puts(l, "\"cache\":");
    if (r->cache) {
        lv_strbuf_add(l, "\"", 1);
        lv_strbuf_puts(l, r->cache);
        lv_strbuf_puts(l, "\",");
    } else {
        lv_strbuf_puts(l, "null,");
    }
    lv_strbuf_puts(l, "\"referer\":");
    put_field_value(l, r, "referer", true);
    lv_strbuf_puts(l, ",\"user_agent\":");
    put_field_value(l, r, "user-agent", true);
    lv_strbuf_puts(l, "}\n");
}

void lv_accesslog_write(struct lv_accesslog *log, const struct lv_access_rec *r)
{
    if (log == NULL) return;
    if (LOG_BUF - log->len < LOG_LINE_MAX) lv_accesslog_flush(log);
    struct lv_strbuf l;
    lv_strbuf_init_fixed(&l, log->buf + log->len, LOG_BUF - log->len);
    uint64_t now = lv_clock_ns();
    if (log->fmt == LV_LOGFMT_JSON)
        format_json(&l, r, now);
    else
        format_combined(&l, r, now);
    /* Cannot happen (LOG_LINE_MAX): a cut line still ends its line. */
    if (l.truncated && l.len > 0) l.p[l.len - 1] = '\n';
    log->len += l.len;
    if (log->len >= LOG_FLUSH_AT)
        lv_accesslog_flush(log);
    else if (!uv_is_active((uv_handle_t *)&log->timer))
        uv_timer_start(&log->timer, on_flush_timer, LOG_FLUSH_MS, 0);
}
