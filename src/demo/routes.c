/* The demo backend's endpoints: which path means what, the chaos drawn for each request, and
 * the bytes of every response head and inline body. Bodies up to INLINE_MAX are copied into
 * the connection's output; larger ones are left to the connection to stream from
 * lv_demo_fill, so memory stays flat whatever the size asked for. */
#include "demo/routes.h"

#include <llhttp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "demo/options.h"
#include "http/reason.h"
#include "demo/demo_server-t.h"

#define INLINE_MAX (16 * 1024)
#define NO_LENGTH UINT64_MAX
#define DEFAULT_CHUNK (16 * 1024)

const char lv_demo_fill[LV_DEMO_FILL] = {[0 ... LV_DEMO_FILL - 1] = 'x'};

static const struct {
    const char *path;
    enum lv_demo_route route;
    int prefix; /* the path is a prefix followed by an argument */
} routes[] = {
    {"/health", LV_DEMO_HEALTH, 0},    {"/echo", LV_DEMO_ECHO, 0},
    {"/upload", LV_DEMO_UPLOAD, 0},    {"/stats", LV_DEMO_STATS, 0},
    {"/close", LV_DEMO_CLOSE, 0},      {"/status/", LV_DEMO_STATUS, 1},
    {"/delay/", LV_DEMO_DELAY, 1},     {"/bytes/", LV_DEMO_BYTES, 1},
    {"/chunked/", LV_DEMO_CHUNKED, 1},
};

/* Narrows a request target to its path: no scheme and authority, no query. */
static void path_of(const char *t, size_t n, const char **path, size_t *plen)
{
    size_t skip = n >= 7 && strncasecmp(t, "http://", 7) == 0    ? 7
                  : n >= 8 && strncasecmp(t, "https://", 8) == 0 ? 8
                                                                 : 0;
    if (skip) {
        const char *slash = memchr(t + skip, '/', n - skip);
        skip = slash ? (size_t)(slash - t) : n;
    }
    const char *q = memchr(t + skip, '?', n - skip);
    *path = t + skip;
    *plen = (q ? (size_t)(q - t) : n) - skip;
}

enum lv_demo_route lv_demo_route_find(const char *target, size_t n)
{
    const char *p;
    size_t len;
    path_of(target, n, &p, &len);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        size_t rl = strlen(routes[i].path);
        if (len < rl || memcmp(p, routes[i].path, rl) != 0) continue;
        if (len == rl || routes[i].prefix) return routes[i].route;
        /* /echo/anything echoes too: a proxy test can see the path it forwarded. */
        if (routes[i].route == LV_DEMO_ECHO && p[rl] == '/') return LV_DEMO_ECHO;
    }
    return LV_DEMO_DEFAULT;
}

static uint64_t rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Parses the argument after the route's prefix; a bad one turns the route into LV_DEMO_BAD. */
static void parse_arg(struct lv_demo_req *r)
{
    const char *p;
    size_t len;
    path_of(r->target, r->target_len, &p, &len);
    size_t skip = strlen(r->route == LV_DEMO_STATUS  ? "/status/"
                         : r->route == LV_DEMO_DELAY ? "/delay/"
                         : r->route == LV_DEMO_BYTES ? "/bytes/"
                                                     : "/chunked/");
    p += skip;
    len -= skip;
    int ok;
    if (r->route == LV_DEMO_STATUS) {
        ok = len == 3 && p[0] >= '2' && p[0] <= '5' && p[1] >= '0' && p[1] <= '9' && p[2] >= '0' &&
             p[2] <= '9';
        if (ok) r->arg = (uint64_t)((p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0'));
    } else if (r->route == LV_DEMO_DELAY) {
        ok = lv_demo_parse_duration(p, len, &r->arg) == 0;
    } else {
        ok = lv_demo_parse_size(p, len, &r->arg) == 0;
        r->chunk = DEFAULT_CHUNK;
        /* ?chunk=SIZE, anywhere among the query parameters */
        const char *q = memchr(r->target, '?', r->target_len);
        const char *end = r->target + r->target_len;
        while (q && ok && r->route == LV_DEMO_CHUNKED) {
            q++;
            const char *amp = memchr(q, '&', (size_t)(end - q));
            const char *stop = amp ? amp : end;
            if (stop - q > 6 && memcmp(q, "chunk=", 6) == 0)
                ok = lv_demo_parse_size(q + 6, (size_t)(stop - q - 6), &r->chunk) == 0 &&
                     r->chunk > 0;
            q = amp;
        }
    }
    if (!ok) r->route = LV_DEMO_BAD;
}

void lv_demo_route_plan(struct lv_demo_worker *w, struct lv_demo_req *r)
{
    const struct lv_demo_options *o = w->server->opts;
    r->action = LV_DEMO_ANSWER;
    r->delay_ms = 0;
    if (r->route == LV_DEMO_STATUS || r->route == LV_DEMO_DELAY || r->route == LV_DEMO_BYTES ||
        r->route == LV_DEMO_CHUNKED)
        parse_arg(r);
    /* Tests read /stats and check /health to learn the real state: keep them out of chaos. */
    if (r->route == LV_DEMO_STATS || (r->route == LV_DEMO_HEALTH && !o->chaos_health)) return;

    /* One draw, cut in consecutive slices, so each rate is exactly the fraction it names. */
    double u = (double)(rng_next(&w->rng) >> 11) * 0x1.0p-53;
    if (u < o->reset_rate)
        r->action = LV_DEMO_RESET;
    else if (u < o->reset_rate + o->hang_rate)
        r->action = LV_DEMO_HANG;
    else if (u < o->reset_rate + o->hang_rate + o->error_rate)
        r->action = LV_DEMO_ERROR;
    r->delay_ms = o->latency_ms;
    if (o->jitter_ms) r->delay_ms += rng_next(&w->rng) % (o->jitter_ms + 1);
    if (r->route == LV_DEMO_DELAY) r->delay_ms += r->arg;
    /* A hang that ends (--hang-for) is a very slow answer: the client that
     * waited long enough gets it, as from a backend stuck on a lock. */
    if (r->action == LV_DEMO_HANG && o->hang_for_ms) {
        r->action = LV_DEMO_ANSWER;
        r->delay_ms += o->hang_for_ms;
    }
}

/* Appends a response head. len NO_LENGTH sends no Content-Length (204, 304, chunked or a
 * close-delimited body). */
static void head(struct lv_demo_worker *w, const struct lv_demo_req *r, struct lv_demo_buf *b,
                 int status, const char *ctype, uint64_t len, int chunked)
{
    lv_demo_buf_str(b, "HTTP/1.1 ");
    lv_demo_buf_num(b, (uint64_t)status, 10, 1);
    lv_demo_buf_str(b, " ");
    lv_demo_buf_str(b, lv_status_reason((unsigned)status));
    if (ctype) {
        lv_demo_buf_str(b, "\r\nContent-Type: ");
        lv_demo_buf_str(b, ctype);
    }
    if (chunked) {
        lv_demo_buf_str(b, "\r\nTransfer-Encoding: chunked");
    } else if (len != NO_LENGTH) {
        lv_demo_buf_str(b, "\r\nContent-Length: ");
        lv_demo_buf_num(b, len, 10, 1);
    }
    lv_demo_buf_str(b, "\r\nX-Backend-Id: ");
    lv_demo_buf_str(b, w->server->opts->id);
    if (r->close)
        lv_demo_buf_str(b, "\r\nConnection: close");
    else if (r->http_minor == 0)
        lv_demo_buf_str(b, "\r\nConnection: keep-alive");
    lv_demo_buf_str(b, "\r\n\r\n");
}

static int text(struct lv_demo_worker *w, struct lv_demo_req *r, struct lv_demo_buf *b, int status,
                const char *body)
{
    if (status == 204 || status == 304) {
        head(w, r, b, status, NULL, NO_LENGTH, 0);
        return b->err;
    }
    head(w, r, b, status, "text/plain", strlen(body), 0);
    if (r->method != HTTP_HEAD) lv_demo_buf_str(b, body);
    return b->err;
}

/* n bytes of 'x' ending in '\n', inline when small, else streamed by the connection. */
static int generated(struct lv_demo_worker *w, struct lv_demo_req *r, struct lv_demo_buf *b,
                     uint64_t n, uint64_t chunk)
{
    if (chunk && r->http_minor == 0) { /* no chunked encoding in HTTP/1.0: close-delimited */
        chunk = 0;
        r->close = 1;
        head(w, r, b, 200, "text/plain", NO_LENGTH, 0);
    } else {
        head(w, r, b, 200, "text/plain", chunk ? NO_LENGTH : n, chunk != 0);
    }
    if (b->err || r->method == HTTP_HEAD) return b->err;
    if (chunk && n == 0) {
        lv_demo_buf_str(b, "0\r\n\r\n");
    } else if (!chunk && n <= INLINE_MAX) {
        if (n) lv_demo_buf_add(b, lv_demo_fill, (size_t)n - 1);
        if (n) lv_demo_buf_add(b, "\n", 1);
    } else {
        r->stream_left = n;
        r->stream_chunk = chunk;
    }
    return b->err;
}

static int json_reply(struct lv_demo_worker *w, struct lv_demo_req *r, struct lv_demo_buf *b)
{
    struct lv_demo_buf *j = &w->scratch;
    if (j->err) return j->err;
    head(w, r, b, 200, "application/json", j->len, 0);
    if (r->method != HTTP_HEAD) lv_demo_buf_add(b, j->data, j->len);
    return b->err;
}

static int echo(struct lv_demo_worker *w, struct lv_demo_req *r, struct lv_demo_buf *b)
{
    struct lv_demo_buf *j = &w->scratch;
    const char *method = llhttp_method_name((llhttp_method_t)r->method);
    lv_demo_buf_reset(j);
    lv_demo_buf_str(j, "{\"method\":");
    lv_demo_buf_json(j, method, strlen(method));
    lv_demo_buf_str(j, ",\"path\":");
    lv_demo_buf_json(j, r->target, r->target_len);
    lv_demo_buf_str(j, r->http_minor ? ",\"version\":\"1.1\"" : ",\"version\":\"1.0\"");
    lv_demo_buf_str(j, ",\"headers\":[");
    const char *name, *value;
    size_t pos = 0, nlen, vlen;
    for (int first = 1; lv_demo_req_header(r, &pos, &name, &nlen, &value, &vlen); first = 0) {
        lv_demo_buf_str(j, first ? "[" : ",[");
        lv_demo_buf_json(j, name, nlen);
        lv_demo_buf_str(j, ",");
        lv_demo_buf_json(j, value, vlen);
        lv_demo_buf_str(j, "]");
    }
    lv_demo_buf_str(j, "],\"body_length\":");
    lv_demo_buf_num(j, r->body_len, 10, 1);
    lv_demo_buf_str(j, ",\"body_fnv1a64\":\"");
    lv_demo_buf_num(j, r->body_hash, 16, 16);
    lv_demo_buf_str(j, "\",\"backend\":");
    lv_demo_buf_json(j, w->server->opts->id, strlen(w->server->opts->id));
    lv_demo_buf_str(j, ",\"connection_requests\":");
    lv_demo_buf_num(j, r->conn_requests, 10, 1);
    lv_demo_buf_str(j, "}\n");
    return json_reply(w, r, b);
}

static int stats(struct lv_demo_worker *w, struct lv_demo_req *r, struct lv_demo_buf *b)
{
    struct lv_demo_server *s = w->server;
    struct lv_demo_buf *j = &w->scratch;
    uint64_t accepted = 0, open = 0, requests = 0;
    for (int i = 0; i < s->nworkers; i++) {
        accepted += atomic_load_explicit(&s->workers[i].accepted, memory_order_relaxed);
        open += atomic_load_explicit(&s->workers[i].open, memory_order_relaxed);
        requests += atomic_load_explicit(&s->workers[i].requests, memory_order_relaxed);
    }
    lv_demo_buf_reset(j);
    lv_demo_buf_str(j, "{\"id\":");
    lv_demo_buf_json(j, s->opts->id, strlen(s->opts->id));
    lv_demo_buf_str(j, ",\"connections_accepted\":");
    lv_demo_buf_num(j, accepted, 10, 1);
    lv_demo_buf_str(j, ",\"connections_open\":");
    lv_demo_buf_num(j, open, 10, 1);
    lv_demo_buf_str(j, ",\"requests\":");
    lv_demo_buf_num(j, requests, 10, 1);
    lv_demo_buf_str(j, "}\n");
    return json_reply(w, r, b);
}

int lv_demo_route_respond(struct lv_demo_worker *w, struct lv_demo_req *r, struct lv_demo_buf *out)
{
    char line[64] = "";
    r->close = !r->keep_alive;
    r->stream_left = r->stream_chunk = 0;
    if (r->action == LV_DEMO_ERROR)
        return text(w, r, out, w->server->opts->error_status, "injected error\n");
    switch (r->route) {
    case LV_DEMO_HEALTH: return text(w, r, out, 200, "ok\n");
    case LV_DEMO_ECHO:
    case LV_DEMO_UPLOAD: return echo(w, r, out);
    case LV_DEMO_STATS: return stats(w, r, out);
    case LV_DEMO_DELAY: return text(w, r, out, 200, "ok\n");
    case LV_DEMO_BAD: return text(w, r, out, 400, "bad request: invalid path argument\n");
    case LV_DEMO_BYTES: return generated(w, r, out, r->arg, 0);
    case LV_DEMO_CHUNKED: return generated(w, r, out, r->arg, r->chunk);
    case LV_DEMO_CLOSE: r->close = 1; return text(w, r, out, 200, "ok\n");
    case LV_DEMO_STATUS:
        snprintf(line, sizeof(line), "%d %s\n", (int)r->arg, lv_status_reason((unsigned)r->arg));
        return text(w, r, out, (int)r->arg, line);
    default: return generated(w, r, out, w->server->opts->body_size, 0);
    }
}

int lv_demo_route_reject(struct lv_demo_worker *w, struct lv_demo_buf *out, int status)
{
    struct lv_demo_req r = {.close = 1, .http_minor = 1, .method = HTTP_GET};
    return text(w, &r, out, status, status == 431 ? "request head too large\n" : "bad request\n");
}

int lv_demo_req_header(const struct lv_demo_req *r, size_t *pos, const char **name, size_t *nlen,
                       const char **value, size_t *vlen)
{
    uint32_t len;
    if (*pos + 8 > r->headers_len) return 0;
    memcpy(&len, r->headers + *pos, 4);
    *name = r->headers + *pos + 4;
    *nlen = len;
    *pos += 4 + len;
    memcpy(&len, r->headers + *pos, 4);
    *value = r->headers + *pos + 4;
    *vlen = len;
    *pos += 4 + len;
    return 1;
}

int lv_demo_req_expects_continue(const struct lv_demo_req *r)
{
    const char *name, *value;
    size_t pos = 0, nlen, vlen;
    while (lv_demo_req_header(r, &pos, &name, &nlen, &value, &vlen))
        if (nlen == 6 && strncasecmp(name, "expect", 6) == 0 && vlen == 12 &&
            strncasecmp(value, "100-continue", 12) == 0)
            return 1;
    return 0;
}
