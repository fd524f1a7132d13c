/*
 * The admin HTTP server. Requests are small and answered at once (every
 * document is built in memory from counters and atomics), so a connection
 * needs no state between requests beyond its parser. Control endpoints
 * take POST only, and a bearer token when one is configured (always
 * required off loopback: the configuration refuses to load otherwise).
 */
#include "admin/server.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "admin/health.h"
#include "admin/history.h"
#include "admin/metrics.h"
#include "admin/status.h"
#include "config/config.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "http/parser.h"
#include "http/status.h"
#include "net/listener.h"
#include "net/sock.h"
#include "proxy/proxy.h"
#include "upstream/gen.h"

#define IDLE_MS 30000
#define MAX_DOC (16 * 1024 * 1024)

/* The dashboard page: src/admin/dashboard.html, compiled in by the Makefile. */
extern const char lv_dashboard_html[];
extern const unsigned long lv_dashboard_html_len;

struct aconn {
    struct lv_sock sock;
    uv_timer_t timer;
    struct lv_http_parser parser;
    struct lv_head head;
    struct lv_admin *adm;
    struct aconn *prev, *next;
    int handles;
    bool closing;
};

struct lv_admin {
    uv_loop_t *loop;
    struct lv_proxy *px;
    struct lv_history *hist;
    lv_admin_reload_cb reload;
    void *reload_arg;
    struct lv_sockenv env;
    struct lv_acceptor *listener; /* NULL when off */
    char *address;
    struct aconn *conns;
    int open; /* handles not yet closed (listeners, connections) */
    bool stopping;
};

static void maybe_free(struct lv_admin *adm)
{
    if (!adm->stopping || adm->open > 0) return;
    lv_sockenv_dispose(&adm->env);
    free(adm->address);
    free(adm);
}

/* --- connections ------------------------------------------------------------------- */

static struct aconn *of_sock(struct lv_sock *s)
{
    return (struct aconn *)(void *)((char *)s - offsetof(struct aconn, sock));
}

static void on_conn_closed(struct aconn *c)
{
    if (--c->handles > 0) return;
    struct lv_admin *adm = c->adm;
    if (c->prev)
        c->prev->next = c->next;
    else
        adm->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    lv_head_dispose(&c->head);
    free(c);
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

static void conn_close(struct aconn *c)
{
    if (c->closing) return;
    c->closing = true;
    lv_sock_close(&c->sock);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

static void on_idle(uv_timer_t *t)
{
    conn_close(t->data);
}

static void send_response(struct aconn *c, unsigned status, const char *type, const char *body,
                          size_t len, bool keep_alive)
{
    char head[256];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n%s\r\n",
                     status, lv_status_reason(status), type, len,
                     keep_alive ? "" : "Connection: close\r\n");
    lv_sock_add_copy(&c->sock, head, (size_t)n);
    if (c->head.method != HTTP_HEAD) lv_sock_add_copy(&c->sock, body, len);
    lv_sock_flush(&c->sock);
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

static void send_error(struct aconn *c, unsigned status, const char *msg, bool keep_alive)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 4096);
    lv_strbuf_printf(&sb, "{\"ok\":false,\"status\":%u,\"error\":", status);
    lv_strbuf_json_str(&sb, msg);
    lv_strbuf_puts(&sb, "}\n");
    send_json(c, status, &sb, keep_alive);
    lv_strbuf_dispose(&sb);
}

/* --- routes -------------------------------------------------------------------------- */

static bool token_ok(struct aconn *c)
{
    const char *token = c->adm->px->gen->cfg->admin.token;
    if (token == NULL) return true;
    const struct lv_hfield *f = LV_HEAD_FIND(&c->head, "authorization");
    if (f == NULL) return false;
    const char *v = lv_head_str(&c->head, f->value);
    size_t tl = strlen(token);
    return f->value_len == 7 + tl && strncmp(v, "Bearer ", 7) == 0 && memcmp(v + 7, token, tl) == 0;
}

static void route_control(struct aconn *c, const char *path, bool ka)
{
    struct lv_admin *adm = c->adm;
    if (c->head.method != HTTP_POST) {
        send_error(c, 405, "use POST", ka);
        return;
    }
    if (!token_ok(c)) {
        send_error(c, 401, "missing or wrong bearer token (admin.token)", ka);
        return;
    }
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 1024 * 1024);
    if (strcmp(path, "/reload") == 0) {
        struct lv_strbuf errs;
        lv_strbuf_init(&errs, 256 * 1024);
        int rc = adm->reload(adm->reload_arg, &errs);
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

static void route(struct aconn *c, bool ka)
{
    struct lv_admin *adm = c->adm;
    char path[512];
    size_t n = c->head.target_len;
    const char *t = lv_head_str(&c->head, c->head.target);
    const char *q = memchr(t, '?', n);
    if (q) n = (size_t)(q - t);
    if (n >= sizeof(path)) {
        send_error(c, 414, "path too long", ka);
        return;
    }
    memcpy(path, t, n);
    path[n] = '\0';
    if (strcmp(path, "/reload") == 0 || strncmp(path, "/backends/", 10) == 0) {
        if (strcmp(path, "/backends/health") != 0) {
            route_control(c, path, ka);
            return;
        }
    }
    if (c->head.method != HTTP_GET && c->head.method != HTTP_HEAD) {
        send_error(c, 405, "use GET", ka);
        return;
    }
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, MAX_DOC);
    if (strcmp(path, "/") == 0 || strcmp(path, "/dashboard") == 0) {
        send_response(c, 200, "text/html; charset=utf-8", lv_dashboard_html,
                      (size_t)lv_dashboard_html_len, ka);
    } else if (strcmp(path, "/health") == 0) {
        int status = lv_admin_health_json(&sb, adm->px->gen, adm->px->start_ms);
        send_json(c, (unsigned)status, &sb, ka);
    } else if (strcmp(path, "/backends/health") == 0) {
        lv_admin_backends_json(&sb, adm->px, adm->hist);
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
}

/* --- parsing --------------------------------------------------------------------------- */

static int on_begin(struct lv_http_parser *p)
{
    struct aconn *c = p->owner;
    lv_head_dispose(&c->head);
    lv_head_init(&c->head, 16 * 1024, 100);
    return 0;
}

static int on_head(struct lv_http_parser *p)
{
    (void)p;
    return 0;
}

static int on_body(struct lv_http_parser *p, const char *at, size_t len)
{
    (void)p;
    (void)at;
    return len > 64 * 1024 ? -1 : 0; /* controls take no body */
}

static int on_complete(struct lv_http_parser *p)
{
    struct aconn *c = p->owner;
    bool ka = llhttp_should_keep_alive(&p->ll) && !c->adm->stopping;
    route(c, ka);
    if (!ka) {
        lv_sock_shutdown(&c->sock, NULL);
        uv_timer_start(&c->timer, on_idle, 1000, 0);
        return HPE_PAUSED;
    }
    return 0;
}

static const struct lv_http_handler handler = {on_begin, on_head, on_body, on_complete};

static void on_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct aconn *c = of_sock(s);
    if (nread < 0) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_idle, IDLE_MS, 0);
    size_t consumed;
    llhttp_errno_t err = lv_http_parser_execute(&c->parser, b, b->data, (size_t)nread, &consumed);
    if (err == HPE_PAUSED) {
        lv_sock_read_stop(&c->sock); /* answered with Connection: close */
    } else if (err != HPE_OK) {
        send_error(c, 400, "bad request", false);
        lv_sock_shutdown(&c->sock, NULL);
        lv_sock_read_stop(&c->sock);
        uv_timer_start(&c->timer, on_idle, 1000, 0);
    }
}

static void on_accepted(struct lv_acceptor *a, int fd)
{
    struct lv_admin *adm = a->data;
    struct aconn *c = adm->stopping ? NULL : calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    lv_sock_init(&adm->env, &c->sock);
    c->sock.on_read = on_read;
    c->sock.on_close = on_sock_closed;
    uv_timer_init(adm->loop, &c->timer);
    c->timer.data = c;
    c->handles = 2;
    c->adm = adm;
    c->next = adm->conns;
    if (adm->conns) adm->conns->prev = c;
    adm->conns = c;
    adm->open++;
    if (uv_tcp_open(&c->sock.tcp, fd) != 0) {
        close(fd);
        conn_close(c);
        return;
    }
    lv_head_init(&c->head, 16 * 1024, 100);
    lv_http_parser_init(&c->parser, HTTP_REQUEST, &handler, c);
    c->parser.head = &c->head;
    c->parser.pool = &adm->env.bufs;
    c->parser.max_target = 8192;
    uv_timer_start(&c->timer, on_idle, IDLE_MS, 0);
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
    int rc = lv_listener_probe((const struct sockaddr *)&ac->listen.addr);
    if (rc == 0)
        rc = lv_acceptor_open(l, adm->loop, (const struct sockaddr *)&ac->listen.addr, 128,
                              &acceptor_ops, adm);
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
                                lv_admin_reload_cb reload, void *reload_arg, int *err)
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
    adm->reload = reload;
    adm->reload_arg = reload_arg;
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
    struct lv_admin *adm = (struct lv_admin *)((char *)h - offsetof(struct lv_admin, env.idle));
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
    for (struct aconn *c = adm->conns; c; c = c->next)
        conn_close(c);
    maybe_free(adm);
}
