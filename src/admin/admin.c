/*
 * The admin HTTP server. Requests are small and answered at once (every
 * document is built in memory from counters and atomics). Which requests
 * are answered at all, and which may change state, is guard.c's call:
 * Host must name this listener, and a POST needs the bearer token, or on a
 * loopback listener without one, proof that no other web page sent it.
 *
 * Connections follow the proxy port's pipelining rules (proxy/client.c):
 * one request at a time (the parser pauses after each message and the bytes
 * of the next stay pending), and no new request starts while answers are
 * unwritten past the bounds of lv_sock_backlogged (net/sock.h): reading stops
 * until the client takes them. So a client that pipelines requests and
 * reads nothing holds a bounded amount of memory, and at most
 * admin.max_connections clients are served at once.
 *
 * One timer per connection, one meaning per phase (admin.timeout unless
 * said otherwise):
 *   idle     no request under way: close quietly
 *   request  from a request's first byte until it is complete (total, so
 *            trickling does not extend it): 408, then close
 *   send     answers unwritten and the client reads none of them: close
 *   linger   after the last answer (LINGER_MS): drop what the client still
 *            sends, so that closing does not reset the answer it is reading
 */
#include "admin/admin.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/cacheapi.h"
#include "admin/guard.h"
#include "admin/history.h"
#include "admin/metrics.h"
#include "admin/backends.h"
#include "config/config.h"
#include "core/clock.h"
#include "core/fail.h"
#include "core/list.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "http/parser.h"
#include "http/status.h"
#include "net/inherit.h"
#include "net/listener.h"
#include "net/sock.h"
#include "proxy/proxy.h"
#include "config/gen.h"

#define MAX_DOC (16 * 1024 * 1024)
#define MAX_HEAD (16 * 1024)
#define MAX_FIELDS 100
#define MAX_TARGET 8192
/* No endpoint takes a body: one is read and dropped up to this, then 413. */
#define MAX_BODY (16 * 1024)
#define LINGER_MS 2000
/* A flood of refused connections logs one line per period, with a count. */
#define REFUSED_LOG_MS 10000

/* The dashboard page: src/admin/dashboard.html, compiled in by the Makefile. */
extern const char lv_dashboard_html[];
extern const unsigned long lv_dashboard_html_len;

enum timer_mode { T_NONE, T_IDLE, T_REQUEST, T_SEND, T_LINGER };

struct aconn {
    struct lv_sock sock;
    uv_timer_t timer;
    struct lv_http_parser parser;
    struct lv_head head;
    struct lv_admin *adm;
    struct lv_list node;       /* in adm->conns */
    struct lv_admin_site site; /* the local address; hosts set per request */
    struct lv_buf *pending;    /* read, not yet parsed (reading stops meanwhile) */
    uint32_t pending_off, pending_len;
    uint64_t body_bytes;
    int handles;
    uint8_t timer_mode;
    bool in_request;    /* a request's first byte came, its answer not yet sent */
    bool head_only;     /* the request being answered is a HEAD */
    bool in_process;    /* process() is on the stack */
    bool write_blocked; /* waiting for answers to be written before the next request */
    bool shutting_down; /* the last answer is out: write side shut, input dropped */
    bool closing;
};

struct lv_admin {
    uv_loop_t *loop;
    struct lv_proxy *px;
    struct lv_history *hist;
    const struct lv_admin_ops *ops;
    void *ops_arg;
    struct lv_sockenv env;
    struct lv_acceptor *listener; /* NULL when off */
    char *address;
    struct lv_list conns;
    uint64_t nconns;           /* connections served (counted against max_connections) */
    uint64_t refused_unlogged; /* connections closed at once since the last log line */
    uint64_t refused_log_ms;   /* when that line was written */
    int open;                  /* handles not yet closed (listeners, connections) */
    bool stopping;
};

static void maybe_free(struct lv_admin *adm)
{
    if (!adm->stopping || adm->open > 0) return;
    lv_sockenv_dispose(&adm->env);
    free(adm->address);
    free(adm);
}

static const struct lv_admin_cfg *admin_cfg(const struct lv_admin *adm)
{
    return &adm->px->gen->cfg->admin;
}

/* --- connections ------------------------------------------------------------------- */

static struct aconn *of_sock(struct lv_sock *s)
{
    return lv_container_of(s, struct aconn, sock);
}

static void drop_pending(struct aconn *c)
{
    if (c->pending) lv_buf_unref(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
}

static void on_conn_closed(struct aconn *c)
{
    if (--c->handles > 0) return;
    struct lv_admin *adm = c->adm;
    lv_list_remove(&c->node);
    drop_pending(c);
    lv_head_dispose(&c->head);
    free(c);
    adm->nconns--;
    adm->open--;
    maybe_free(adm);
}

static void on_sock_closed(struct lv_sock *s)
{
    on_conn_closed(of_sock(s));
}

static void on_timer_closed(uv_handle_t *h)
{
    on_conn_closed(h->data);
}

static void close_now(struct aconn *c)
{
    if (c->closing) return;
    c->closing = true;
    drop_pending(c);
    uv_timer_stop(&c->timer);
    lv_sock_close(&c->sock);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_timer(uv_timer_t *t);

static void arm(struct aconn *c, enum timer_mode mode, uint64_t ms)
{
    c->timer_mode = (uint8_t)mode;
    if (mode == T_NONE)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, ms, 0);
}

static void on_shutdown(struct lv_sock *s, int status)
{
    struct aconn *c = of_sock(s);
    if (c->closing) return;
    if (status < 0) {
        close_now(c);
        return;
    }
    lv_sock_read_start(&c->sock); /* input is dropped (on_read) until EOF or the timer */
    arm(c, T_LINGER, LINGER_MS);
}

/* After the last answer: write what is queued, shut the write side, then
 * linger. The rest of the input is never parsed. */
static void close_gracefully(struct aconn *c)
{
    if (c->closing || c->shutting_down) return;
    c->shutting_down = true;
    drop_pending(c);
    lv_sock_read_stop(&c->sock);
    arm(c, T_SEND, admin_cfg(c->adm)->timeout);
    if (lv_sock_shutdown(&c->sock, on_shutdown) != 0) close_now(c);
}

/* --- answers ------------------------------------------------------------------------- */

/* A buffer of exactly n bytes, freed with its last reference: an answer is
 * queued on the socket until written, and a pooled buffer would hold 32 KiB
 * for a 100-byte error. */
static struct lv_buf *exact_buf(size_t n)
{
    struct lv_buf *b = malloc(sizeof(*b) + (n ? n : 1));
    if (b == NULL) return NULL;
    b->refs = 1;
    b->cap = (uint32_t)n;
    b->len = 0;
    b->pool = NULL;
    b->next = NULL;
    return b;
}

/* Queues one answer. `extra`: more header lines ("Name: value\r\n"), or
 * NULL. A static body (the dashboard) is sent from where it is, others are
 * copied once, with the head, into a buffer of their size. */
static void send_answer(struct aconn *c, unsigned status, const char *type, const char *extra,
                        const char *body, size_t len, bool static_body, bool keep_alive)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"
                     "X-Frame-Options: DENY\r\n%s%s\r\n",
                     status, lv_status_reason(status), type, len, extra ? extra : "",
                     keep_alive ? "" : "Connection: close\r\n");
    if (n < 0 || (size_t)n >= sizeof(head)) n = 0; /* cannot happen: every part is ours */
    size_t blen = c->head_only ? 0 : len;
    size_t copied = (size_t)n + (static_body ? 0 : blen);
    struct lv_buf *b = exact_buf(copied);
    if (b == NULL) {
        close_now(c);
        return;
    }
    lv_buf_append(b, head, (size_t)n);
    if (!static_body) lv_buf_append(b, body, blen);
    int rc = lv_sock_add(&c->sock, b->data, b->len, b);
    lv_buf_unref(b);
    if (rc == 0 && static_body) rc = lv_sock_add(&c->sock, body, blen, NULL);
    if (rc == 0) rc = lv_sock_flush(&c->sock);
    if (rc != 0) close_now(c);
}

static void send_response(struct aconn *c, unsigned status, const char *type, const char *body,
                          size_t len, bool keep_alive)
{
    send_answer(c, status, type, NULL, body, len, false, keep_alive);
}

static void send_json(struct aconn *c, unsigned status, struct lv_strbuf *sb, bool keep_alive)
{
    if (sb->truncated) {
        static const char err[] = "{\"error\":\"document too large\"}\n";
        send_response(c, 500, "application/json", err, sizeof(err) - 1, keep_alive);
        return;
    }
    send_response(c, status, "application/json", sb->p ? sb->p : "", sb->len, keep_alive);
}

static void send_error_with(struct aconn *c, unsigned status, const char *extra, const char *msg,
                            bool keep_alive)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 4096);
    lv_strbuf_printf(&sb, "{\"ok\":false,\"status\":%u,\"error\":", status);
    lv_strbuf_json_str(&sb, msg);
    lv_strbuf_puts(&sb, "}\n");
    send_answer(c, status, "application/json", extra, sb.p ? sb.p : "", sb.len, false, keep_alive);
    lv_strbuf_dispose(&sb);
}

static void send_error(struct aconn *c, unsigned status, const char *msg, bool keep_alive)
{
    send_error_with(c, status, NULL, msg, keep_alive);
}

/* --- routes -------------------------------------------------------------------------- */

static void route_control(struct aconn *c, const char *path, bool ka)
{
    struct lv_admin *adm = c->adm;
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 1024 * 1024);
    if (strcmp(path, "/reload") == 0) {
        struct lv_strbuf errs;
        lv_strbuf_init(&errs, 256 * 1024);
        int rc = adm->ops->reload(adm->ops_arg, &errs);
        if (rc == 0) {
            lv_strbuf_printf(&sb, "{\"ok\":true,\"generation\":%llu}\n",
                             (unsigned long long)adm->px->gen->id);
            send_json(c, 200, &sb, ka);
        } else {
            lv_strbuf_puts(&sb, "{\"ok\":false,\"errors\":[");
            bool first = true;
            for (char *line = errs.p, *nl; line && *line; line = nl + 1) {
                nl = strchr(line, '\n');
                if (nl) *nl = '\0';
                if (!first) lv_strbuf_puts(&sb, ",");
                lv_strbuf_json_str(&sb, line);
                first = false;
                if (nl == NULL) break;
            }
            lv_strbuf_puts(&sb, "]}\n");
            send_json(c, 400, &sb, ka);
        }
        lv_strbuf_dispose(&errs);
        lv_strbuf_dispose(&sb);
        return;
    }
    if (strcmp(path, "/cache/purge") == 0) {
        const char *t = lv_head_str(&c->head, c->head.target);
        const char *q = memchr(t, '?', c->head.target_len);
        size_t qlen = q ? c->head.target_len - (size_t)(q + 1 - t) : 0;
        unsigned status = lv_cacheapi_purge(&sb, adm->px, q ? q + 1 : "", qlen);
        send_json(c, status, &sb, ka);
        lv_strbuf_dispose(&sb);
        return;
    }
    if (strcmp(path, "/upgrade") == 0) {
        /* Accepted, not done: the new process takes over when it serves
         * (the log says so, and this admin port then answers from it). */
        struct lv_strbuf why;
        lv_strbuf_init(&why, 4096);
        int pid = adm->ops->upgrade(adm->ops_arg, &why);
        if (pid > 0) {
            lv_strbuf_printf(&sb, "{\"ok\":true,\"pid\":%d}\n", pid);
            send_json(c, 202, &sb, ka);
        } else {
            lv_strbuf_puts(&sb, "{\"ok\":false,\"error\":");
            lv_strbuf_json_str(&sb, why.p ? why.p : "");
            lv_strbuf_puts(&sb, "}\n");
            send_json(c, pid == LV_ADMIN_UPGRADE_REFUSED ? 409 : 500, &sb, ka);
        }
        lv_strbuf_dispose(&why);
        lv_strbuf_dispose(&sb);
        return;
    }
    /* /backends/{id}/{drain|disable|enable} */
    const char *id = path + strlen("/backends/");
    const char *slash = strrchr(id, '/');
    char name[128];
    size_t idlen = slash ? (size_t)(slash - id) : 0;
    enum lv_admin_state st = LV_ADMIN_ENABLED;
    bool verb_ok = slash && idlen > 0 && idlen < sizeof(name);
    if (verb_ok) {
        if (strcmp(slash, "/drain") == 0)
            st = LV_ADMIN_DRAINING;
        else if (strcmp(slash, "/disable") == 0)
            st = LV_ADMIN_DISABLED;
        else if (strcmp(slash, "/enable") == 0)
            st = LV_ADMIN_ENABLED;
        else
            verb_ok = false;
    }
    if (!verb_ok) {
        send_error(c, 404, "no such endpoint", ka);
        lv_strbuf_dispose(&sb);
        return;
    }
    memcpy(name, id, idlen);
    name[idlen] = '\0';
    if (lv_proxy_set_admin(adm->px, name, st) != 0) {
        send_error(c, 404, "no such backend", ka);
    } else {
        lv_strbuf_puts(&sb, "{\"ok\":true,\"backend\":");
        lv_strbuf_json_str(&sb, name);
        lv_strbuf_printf(&sb, ",\"admin_state\":\"%s\"}\n", lv_admin_state_name(st));
        send_json(c, 200, &sb, ka);
    }
    lv_strbuf_dispose(&sb);
}

/* /backends/health, from the proxy's current generation and counters. */
static void backends_doc(struct lv_strbuf *sb, struct lv_admin *adm)
{
    struct lv_proxy *px = adm->px;
    struct lv_proxy_stats st;
    lv_proxy_stats_sum(px, &st);
    struct lv_admin_store store = {atomic_load(&px->redis_shared.connected), px->nservers,
                                   lv_stat_read(&st.w.store_fallbacks)};
    struct lv_admin_now now = {lv_clock_ms(), lv_clock_ns(), lv_clock_wall_ms()};
    lv_admin_backends_json(sb, px->gen, adm->hist, &store, &now);
}

/* The fields the guard looks at (the first of each name, and how many). */
static void guard_fields(const struct lv_head *h, struct lv_admin_req *r)
{
    memset(r, 0, sizeof(*r));
    r->host_required = h->http_major > 1 || (h->http_major == 1 && h->http_minor >= 1);
    r->post = h->method == HTTP_POST;
    for (uint32_t i = 0; i < h->nfields; i++) {
        const struct lv_hfield *f = &h->fields[i];
        struct lv_admin_field *dst = NULL;
        if (LV_HFIELD_IS(h, f, "host"))
            dst = &r->host;
        else if (LV_HFIELD_IS(h, f, "origin"))
            dst = &r->origin;
        else if (LV_HFIELD_IS(h, f, "sec-fetch-site"))
            dst = &r->fetch_site;
        else if (LV_HFIELD_IS(h, f, "authorization"))
            dst = &r->authz;
        else if (LV_HFIELD_IS(h, f, "x-levee-admin"))
            dst = &r->admin_header;
        if (dst == NULL) continue;
        if (dst->count++ == 0) {
            dst->p = lv_head_str(h, f->value);
            dst->len = f->value_len;
        }
    }
}

/* Answers the request in c->head. Returns whether the connection stays
 * open for another request. */
static bool route(struct aconn *c, bool ka)
{
    struct lv_admin *adm = c->adm;
    const struct lv_admin_cfg *ac = admin_cfg(adm);
    c->head_only = c->head.method == HTTP_HEAD;
    struct lv_admin_req req;
    guard_fields(&c->head, &req);
    c->site.hosts = ac->allowed_hosts.items;
    c->site.nhosts = ac->allowed_hosts.n;
    enum lv_admin_verdict v = lv_admin_guard(&c->site, ac->token, &req);
    c->site.hosts = NULL; /* the configuration may change before the next request */
    c->site.nhosts = 0;
    if (v != LV_ADMIN_PASS) {
        /* A request meant for another host (DNS rebinding, a misrouted
         * client) gets no second try on this connection. */
        if (v == LV_ADMIN_BAD_HOST || v == LV_ADMIN_OTHER_HOST) ka = false;
        lv_debug("admin: refused (%u): %s", lv_admin_verdict_status(v),
                 lv_admin_verdict_message(v));
        send_error_with(
            c, lv_admin_verdict_status(v),
            v == LV_ADMIN_NEED_TOKEN ? "WWW-Authenticate: Bearer realm=\"levee admin\"\r\n" : NULL,
            lv_admin_verdict_message(v), ka);
        return ka;
    }
    char path[512];
    size_t n = c->head.target_len;
    const char *t = lv_head_str(&c->head, c->head.target);
    const char *q = memchr(t, '?', n);
    if (q) n = (size_t)(q - t);
    if (n >= sizeof(path)) {
        send_error(c, 414, "path too long", ka);
        return ka;
    }
    memcpy(path, t, n);
    path[n] = '\0';
    bool control = strcmp(path, "/reload") == 0 || strcmp(path, "/upgrade") == 0 ||
                   strcmp(path, "/cache/purge") == 0 ||
                   (strncmp(path, "/backends/", 10) == 0 && strcmp(path, "/backends/health") != 0);
    if (control) {
        if (c->head.method != HTTP_POST)
            send_error_with(c, 405, "Allow: POST\r\n", "use POST", ka);
        else
            route_control(c, path, ka);
        return ka;
    }
    if (c->head.method != HTTP_GET && c->head.method != HTTP_HEAD) {
        send_error_with(c, 405, "Allow: GET, HEAD\r\n", "use GET", ka);
        return ka;
    }
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, MAX_DOC);
    if (strcmp(path, "/") == 0 || strcmp(path, "/dashboard") == 0) {
        /* Static: sent by reference, never copied, however many are asked for. */
        send_answer(c, 200, "text/html; charset=utf-8", NULL, lv_dashboard_html,
                    (size_t)lv_dashboard_html_len, true, ka);
    } else if (strcmp(path, "/health") == 0) {
        int status = lv_gen_health_json(&sb, adm->px->gen, adm->px->start_ms, lv_clock_ms());
        send_json(c, (unsigned)status, &sb, ka);
    } else if (strcmp(path, "/backends/health") == 0) {
        backends_doc(&sb, adm);
        send_json(c, 200, &sb, ka);
    } else if (strcmp(path, "/cache") == 0) {
        lv_cacheapi_json(&sb, adm->px);
        send_json(c, 200, &sb, ka);
    } else if (strcmp(path, "/api/history") == 0) {
        lv_history_json(adm->hist, &sb);
        send_json(c, 200, &sb, ka);
    } else if (strcmp(path, "/metrics") == 0) {
        lv_metrics_render(&sb, adm->px);
        if (sb.truncated)
            send_error(c, 500, "metrics too large", ka);
        else
            send_response(c, 200, "text/plain; version=0.0.4; charset=utf-8", sb.p ? sb.p : "",
                          sb.len, ka);
    } else {
        send_error(c, 404, "no such endpoint", ka);
    }
    lv_strbuf_dispose(&sb);
    return ka;
}

/* --- parsing --------------------------------------------------------------------------- */

static int on_begin(struct lv_http_parser *p)
{
    struct aconn *c = p->owner;
    c->in_request = true;
    c->body_bytes = 0;
    lv_head_dispose(&c->head);
    lv_head_init(&c->head, MAX_HEAD, MAX_FIELDS);
    arm(c, T_REQUEST, admin_cfg(c->adm)->timeout);
    return 0;
}

static int on_head(struct lv_http_parser *p)
{
    if ((p->ll.flags & F_CONTENT_LENGTH) && p->ll.content_length > MAX_BODY) {
        p->fail = LV_FAIL_BODY_TOO_LARGE; /* refused before a byte of it is read */
        return -1;
    }
    return 0;
}

static int on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    (void)at;
    struct aconn *c = p->owner;
    c->body_bytes += len; /* dropped: no endpoint takes a body */
    if (c->body_bytes > MAX_BODY) {
        p->fail = LV_FAIL_BODY_TOO_LARGE;
        return -1;
    }
    return 0;
}

static int on_complete(struct lv_http_parser *p)
{
    struct aconn *c = p->owner;
    c->in_request = false;
    /* After an upgrade request (or CONNECT) the bytes that follow may not
     * be HTTP: answer and close. */
    bool ka = llhttp_should_keep_alive(&p->ll) && !p->ll.upgrade && !c->adm->stopping;
    ka = route(c, ka);
    /* An idle connection holds no head buffer. */
    lv_head_dispose(&c->head);
    lv_head_init(&c->head, MAX_HEAD, MAX_FIELDS);
    if (!ka) close_gracefully(c);
    return HPE_PAUSED; /* one request at a time */
}

static const struct lv_http_handler handler = {on_begin, on_head, on_body, on_complete};

/* Feeds the pending bytes to the parser, up to the end of one message. */
static void parse_pending(struct aconn *c)
{
    struct lv_buf *b = lv_buf_ref(c->pending); /* kept while callbacks may drop pending */
    size_t consumed = 0;
    llhttp_errno_t err =
        lv_http_parser_execute(&c->parser, b, b->data + c->pending_off, c->pending_len, &consumed);
    if (c->pending == b) {
        c->pending_off += (uint32_t)consumed;
        c->pending_len -= (uint32_t)consumed;
        if (c->pending_len == 0) drop_pending(c);
    }
    lv_buf_unref(b);
    if (c->closing || c->shutting_down || err == HPE_OK) return;
    if (err == HPE_PAUSED) {
        llhttp_resume(&c->parser.ll);
        return;
    }
    const struct lv_fail_info *fi = lv_fail_info(lv_http_parser_failure(&c->parser, err));
    c->head_only = false;
    send_error(c, (unsigned)fi->status, fi->message, false);
    close_gracefully(c);
}

static void process(struct aconn *c)
{
    if (c->in_process) return;
    c->in_process = true;
    uint64_t timeout = admin_cfg(c->adm)->timeout;
    while (!c->closing && !c->shutting_down) {
        if (lv_sock_backlogged(&c->sock)) {
            /* A pipelining client that does not read its answers: the next
             * request waits until they are written. */
            c->write_blocked = true;
            lv_sock_read_stop(&c->sock);
            if (c->timer_mode != T_SEND) arm(c, T_SEND, timeout);
            break;
        }
        if (c->pending == NULL) {
            lv_sock_read_start(&c->sock);
            if (c->in_request) {
                if (c->timer_mode != T_REQUEST) arm(c, T_REQUEST, timeout);
            } else if (c->timer_mode != T_IDLE) {
                arm(c, T_IDLE, timeout);
            }
            break;
        }
        lv_sock_read_stop(&c->sock); /* no more input until this is parsed */
        parse_pending(c);
    }
    c->in_process = false;
}

static void on_timer(uv_timer_t *t)
{
    struct aconn *c = t->data;
    enum timer_mode mode = (enum timer_mode)c->timer_mode;
    c->timer_mode = T_NONE;
    if (mode == T_REQUEST && !c->shutting_down) {
        const struct lv_fail_info *fi = lv_fail_info(LV_FAIL_HEADER_TIMEOUT);
        c->head_only = false;
        send_error(c, (unsigned)fi->status, "request not received in time", false);
        close_gracefully(c);
        return;
    }
    close_now(c);
}

static void on_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct aconn *c = of_sock(s);
    if (nread < 0) {
        close_now(c);
        return;
    }
    if (c->shutting_down) return; /* lingering: dropped */
    if (c->pending) {
        /* Reads are stopped while bytes are pending; this cannot happen. */
        close_now(c);
        return;
    }
    c->pending = lv_buf_ref(b);
    c->pending_off = 0;
    c->pending_len = (uint32_t)nread;
    process(c);
}

static void on_written(struct lv_sock *s, int status)
{
    struct aconn *c = of_sock(s);
    if (status < 0) {
        close_now(c);
        return;
    }
    /* Progress: the client reads, give it a new period. */
    if (c->timer_mode == T_SEND && (s->write_pending > 0 || c->shutting_down))
        arm(c, T_SEND, admin_cfg(c->adm)->timeout);
    if (c->write_blocked && !lv_sock_backlogged(&c->sock)) {
        c->write_blocked = false;
        process(c);
    }
}

/* Over admin.max_connections: the connection is closed at once, so that it
 * neither waits in the backlog nor costs more than a moment. */
static void refuse(struct lv_admin *adm, int fd)
{
    close(fd);
    adm->refused_unlogged++;
    uint64_t now = uv_now(adm->loop);
    if (adm->refused_log_ms == 0 || now - adm->refused_log_ms >= REFUSED_LOG_MS) {
        lv_warn("admin: %llu connections open (admin.max_connections): closed %llu new one(s)",
                (unsigned long long)adm->nconns, (unsigned long long)adm->refused_unlogged);
        adm->refused_unlogged = 0;
        adm->refused_log_ms = now ? now : 1;
    }
}

static void on_accepted(struct lv_acceptor *a, int fd)
{
    struct lv_admin *adm = a->data;
    if (adm->stopping) {
        close(fd);
        return;
    }
    const struct lv_admin_cfg *ac = admin_cfg(adm);
    if (adm->nconns >= ac->max_connections) {
        refuse(adm, fd);
        return;
    }
    struct aconn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    lv_sock_init(&adm->env, &c->sock);
    c->sock.on_read = on_read;
    c->sock.on_written = on_written;
    c->sock.on_close = on_sock_closed;
    uv_timer_init(adm->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    c->adm = adm;
    lv_list_push_front(&adm->conns, &c->node);
    adm->open++;
    adm->nconns++;
    lv_head_init(&c->head, MAX_HEAD, MAX_FIELDS);
    struct sockaddr_storage local;
    int len = sizeof(local);
    if (uv_tcp_open(&c->sock.tcp, fd) != 0) {
        close(fd);
        close_now(c);
        return;
    }
    if (uv_tcp_getsockname(&c->sock.tcp, (struct sockaddr *)&local, &len) != 0) {
        close_now(c);
        return;
    }
    lv_admin_site_set_local(&c->site, (struct sockaddr *)&local);
    lv_http_parser_init(&c->parser, HTTP_REQUEST, &handler, c);
    c->parser.head = &c->head;
    c->parser.pool = &adm->env.bufs;
    c->parser.max_target = MAX_TARGET;
    arm(c, T_IDLE, ac->timeout);
    lv_sock_read_start(&c->sock);
}

/* --- the listener ------------------------------------------------------------------------ */

static void on_listener_closed(struct lv_acceptor *a)
{
    struct lv_admin *adm = a->data;
    free(a);
    adm->open--;
    maybe_free(adm);
}

/* An accept that fails (no descriptor left) pauses the listener for a
 * moment (net/listener.h): never a busy loop on the main thread. */
static void on_accept_failed(struct lv_acceptor *a, int err, uint64_t backoff_ms)
{
    (void)a;
    lv_log_ratelimited(LV_LOG_WARN, "admin: accept failed: %s; not accepting for %llums",
                       uv_strerror(err), (unsigned long long)backoff_ms);
}

static const struct lv_acceptor_ops acceptor_ops = {
    .accepted = on_accepted,
    .failed = on_accept_failed,
};

static void listener_close(struct lv_admin *adm)
{
    if (adm->listener == NULL) return;
    lv_acceptor_close(adm->listener, on_listener_closed);
    adm->listener = NULL;
    free(adm->address);
    adm->address = NULL;
}

static int listener_open(struct lv_admin *adm, const struct lv_admin_cfg *ac)
{
    struct lv_acceptor *l = malloc(sizeof(*l));
    if (l == NULL) return UV_ENOMEM;
    const struct sockaddr *addr = (const struct sockaddr *)&ac->listen.addr;
    /* A socket inherited from systemd or from the levee this one upgrades
     * (net/inherit.h): the one the previous process served. */
    int fd = -1;
    int rc = lv_inherit_take(addr, 0, 1, &fd, 1);
    if (rc > 0)
        rc = lv_acceptor_adopt(l, adm->loop, fd, &acceptor_ops, adm);
    else if (rc == 0)
        rc = lv_listener_probe(addr);
    if (rc == 0 && fd < 0) rc = lv_acceptor_open(l, adm->loop, addr, 128, &acceptor_ops, adm);
    if (rc != 0) {
        lv_error("admin: cannot listen on %s: %s", ac->listen.address, uv_strerror(rc));
        free(l);
        return rc;
    }
    adm->open++;
    adm->listener = l;
    adm->address = strdup(ac->listen.address);
    lv_info("admin: listening on %s", ac->listen.address);
    return 0;
}

struct lv_admin *lv_admin_start(uv_loop_t *loop, struct lv_proxy *px, struct lv_history *hist,
                                const struct lv_admin_ops *ops, void *ops_arg, int *err)
{
    *err = 0;
    const struct lv_admin_cfg *ac = &px->gen->cfg->admin;
    struct lv_admin *adm = calloc(1, sizeof(*adm));
    if (adm == NULL) {
        *err = UV_ENOMEM;
        return NULL;
    }
    adm->loop = loop;
    adm->px = px;
    adm->hist = hist;
    adm->ops = ops;
    adm->ops_arg = ops_arg;
    lv_list_init(&adm->conns);
    lv_sockenv_init(&adm->env, loop);
    if (ac->enabled) *err = listener_open(adm, ac);
    return adm;
}

void lv_admin_apply(struct lv_admin *adm)
{
    if (adm == NULL) return;
    const struct lv_admin_cfg *ac = &adm->px->gen->cfg->admin;
    if (!ac->enabled) {
        listener_close(adm);
        return;
    }
    if (adm->address && strcmp(adm->address, ac->listen.address) == 0) return;
    listener_close(adm);
    listener_open(adm, ac);
}

static void on_env_closed(uv_handle_t *h)
{
    struct lv_admin *adm = lv_container_of(h, struct lv_admin, env.idle);
    adm->open--;
    maybe_free(adm);
}

void lv_admin_stop(struct lv_admin *adm)
{
    if (adm == NULL) return;
    adm->stopping = true;
    adm->open++;
    lv_sockenv_close(&adm->env, on_env_closed);
    listener_close(adm);
    struct lv_list *it;
    lv_list_foreach(it, &adm->conns)
    {
        close_now(lv_container_of(it, struct aconn, node));
    }
    maybe_free(adm);
}
