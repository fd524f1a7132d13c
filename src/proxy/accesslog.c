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
#include "core/fmt.h"
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
    /* The timestamp to the second, formatted once per second. */
    uint64_t when_sec; /* UINT64_MAX: none yet */
    size_t when_len;
    char when[40];
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
    log->when_sec = UINT64_MAX;
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

static void put_u64(struct lv_strbuf *l, uint64_t v)
{
    char tmp[LV_FMT_U64_MAX];
    lv_strbuf_add(l, tmp, lv_fmt_u64(tmp, v));
}

static void put_milli(struct lv_strbuf *l, uint64_t thousandths)
{
    char tmp[LV_FMT_U64_MAX + 1];
    lv_strbuf_add(l, tmp, lv_fmt_milli(tmp, thousandths));
}

/* " HTTP/1.1" without its leading space. */
static void put_protocol(struct lv_strbuf *l, const struct lv_head *req)
{
    char p[] = "HTTP/x.y";
    p[5] = (char)('0' + req->http_major % 10);
    p[7] = (char)('0' + req->http_minor % 10);
    lv_strbuf_add(l, p, sizeof(p) - 1);
}

/* The start time to the second: strftime once a second. */
static void put_when(struct lv_accesslog *log, struct lv_strbuf *l, uint64_t wall_ms)
{
    uint64_t sec = wall_ms / 1000;
    if (sec != log->when_sec) {
        log->when_sec = sec;
        log->when_len = log->fmt == LV_LOGFMT_JSON
                            ? lv_clock_fmt_iso(log->when, sizeof(log->when), sec * 1000)
                            : lv_clock_fmt_clf(log->when, sizeof(log->when), sec * 1000);
        /* The ISO form ends ".000Z": the milliseconds are the request's. */
        if (log->fmt == LV_LOGFMT_JSON && log->when_len >= 5) log->when_len -= 5;
    }
    lv_strbuf_add(l, log->when, log->when_len);
    if (log->fmt == LV_LOGFMT_JSON) {
        unsigned ms = (unsigned)(wall_ms % 1000);
        char t[5] = {'.', (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10),
                     'Z'};
        lv_strbuf_add(l, t, sizeof(t));
    }
}

/* Rounded to the nearest unit of `unit` nanoseconds. */
static uint64_t round_div(uint64_t ns, uint64_t unit)
{
    return (ns + unit / 2) / unit;
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

static void format_combined(struct lv_accesslog *log, struct lv_strbuf *l,
                            const struct lv_access_rec *r, uint64_t now_ns)
{
    lv_strbuf_puts(l, r->client_ip);
    lv_strbuf_add(l, " - - [", 6);
    put_when(log, l, r->start_wall_ms);
    lv_strbuf_add(l, "] \"", 3);
    if (r->req) {
        lv_strbuf_puts(l, llhttp_method_name((llhttp_method_t)r->req->method));
        lv_strbuf_add(l, " ", 1);
        put_escaped(l, lv_head_str(r->req, r->req->target), r->req->target_len, false);
        lv_strbuf_add(l, " ", 1);
        put_protocol(l, r->req);
    } else {
        lv_strbuf_add(l, "-", 1);
    }
    lv_strbuf_add(l, "\" ", 2);
    put_u64(l, logged_status(r));
    lv_strbuf_add(l, " ", 1);
    put_u64(l, r->bytes);
    lv_strbuf_add(l, " ", 1);
    put_field_value(l, r, "referer", false);
    lv_strbuf_add(l, " ", 1);
    put_field_value(l, r, "user-agent", false);
    lv_strbuf_add(l, " ", 1);
    put_milli(l, round_div(now_ns - r->start_ns, 1000000)); /* seconds */
    lv_strbuf_add(l, " ", 1);
    lv_strbuf_puts(l, r->backend ? r->backend : "-");
    lv_strbuf_add(l, " ", 1);
    put_u64(l, r->attempts);
    lv_strbuf_add(l, " ", 1);
    lv_strbuf_puts(l, lv_fail_info(r->fail)->reason);
    lv_strbuf_add(l, " ", 1);
    lv_strbuf_puts(l, retry_note(r));
    lv_strbuf_add(l, " ", 1);
    lv_strbuf_puts(l, r->request_id[0] ? r->request_id : "-");
    lv_strbuf_add(l, "\n", 1);
}

/* "key":"value", for text levee writes itself (no escaping needed). */
static void put_json_str(struct lv_strbuf *l, const char *key, const char *v)
{
    lv_strbuf_add(l, "\"", 1);
    lv_strbuf_puts(l, key);
    if (v == NULL) {
        lv_strbuf_add(l, "\":null,", 7);
        return;
    }
    lv_strbuf_add(l, "\":\"", 3);
    lv_strbuf_puts(l, v);
    lv_strbuf_add(l, "\",", 2);
}

static void format_json(struct lv_accesslog *log, struct lv_strbuf *l,
                        const struct lv_access_rec *r, uint64_t now_ns)
{
    lv_strbuf_puts(l, "{\"time\":\"");
    put_when(log, l, r->start_wall_ms);
    lv_strbuf_add(l, "\",", 2);
    put_json_str(l, "client", r->client_ip);
    if (r->req) {
        put_json_str(l, "method", llhttp_method_name((llhttp_method_t)r->req->method));
        lv_strbuf_puts(l, "\"path\":\"");
        put_escaped(l, lv_head_str(r->req, r->req->target), r->req->target_len, true);
        lv_strbuf_puts(l, "\",\"protocol\":\"");
        put_protocol(l, r->req);
        lv_strbuf_add(l, "\",", 2);
    } else {
        lv_strbuf_puts(l, "\"method\":null,\"path\":null,\"protocol\":null,");
    }
    lv_strbuf_puts(l, "\"status\":");
    put_u64(l, logged_status(r));
    lv_strbuf_puts(l, ",\"bytes\":");
    put_u64(l, r->bytes);
    lv_strbuf_puts(l, ",\"duration_ms\":");
    put_milli(l, round_div(now_ns - r->start_ns, 1000)); /* milliseconds */
    lv_strbuf_add(l, ",", 1);
    put_json_str(l, "backend", r->backend);
    if (r->route) put_json_str(l, "route", r->route);
    lv_strbuf_puts(l, "\"attempts\":");
    put_u64(l, r->attempts);
    lv_strbuf_add(l, ",", 1);
    const char *note = retry_note(r);
    put_json_str(l, "retry", note[0] != '-' ? note : NULL);
    put_json_str(l, "reason", r->fail != LV_FAIL_NONE ? lv_fail_info(r->fail)->reason : NULL);
    put_json_str(l, "request_id", r->request_id[0] ? r->request_id : NULL);
    put_json_str(l, "cache", r->cache);
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
        format_json(log, &l, r, now);
    else
        format_combined(log, &l, r, now);
    /* Cannot happen (LOG_LINE_MAX): a cut line still ends its line. */
    if (l.truncated && l.len > 0) l.p[l.len - 1] = '\n';
    log->len += l.len;
    if (log->len >= LOG_FLUSH_AT)
        lv_accesslog_flush(log);
    else if (!uv_is_active((uv_handle_t *)&log->timer))
        uv_timer_start(&log->timer, on_flush_timer, LOG_FLUSH_MS, 0);
}
