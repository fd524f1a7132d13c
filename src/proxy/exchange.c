/*
 * The exchange: one request, from its parsed head to the last byte of its
 * answer. It checks the request, asks the rate limits, runs the attempt
 * loop, relays the answer to its downstream with backpressure both ways,
 * and answers itself when levee has the last word. It writes no socket:
 * the downstream serializes, the attempt loop talks to backends.
 */
#include "proxy/exchange.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/routes.h"
#include "core/clock.h"
#include "core/fmt.h"
#include "core/log.h"
#include "core/strbuf.h"
#include "http/check.h"
#include "http/status.h"
#include "proxy/accesslog.h"
#include "proxy/flow.h"
#include "proxy/wgen.h"
#include "route/route.h"
#include "upstream/backend.h"
#include "upstream/eligible.h"
#include "config/gen.h"

#define MAX_FREE_EXCHANGES 1024

static const struct lv_cached_ops cached_ops;
static const struct lv_tunnel_ops tunnel_ops;
static void answer_route(struct lv_exchange *ex);
static void send_own(struct lv_exchange *ex, unsigned status, const char *extra, const char *body,
                     size_t blen, bool must_close);
static void respond(struct lv_exchange *ex, enum lv_fail_kind kind);
static void respond_health(struct lv_exchange *ex);
static void abort_answer(struct lv_exchange *ex, enum lv_fail_kind kind);

/* Moves to state `to`: only along the arrows of exchange.h's diagram. */
static void set_state(struct lv_exchange *ex, enum lv_ex_state to)
{
    enum lv_ex_state from = ex->state;
    switch (to) {
    case LV_EX_HEAD: assert(!"an exchange starts in HEAD, never goes back"); break;
    case LV_EX_LIMITING: assert(from == LV_EX_HEAD); break;
    case LV_EX_FORWARDING: assert(from == LV_EX_HEAD || from == LV_EX_LIMITING); break;
    case LV_EX_RESPONDING: assert(from == LV_EX_FORWARDING); break;
    case LV_EX_TUNNEL: assert(from == LV_EX_RESPONDING); break;
    case LV_EX_DONE: assert(from != LV_EX_DONE); break;
    }
    ex->state = to;
}

/* The exchange is DONE: everything in flight stops, the downstream hears. */
static void finish(struct lv_exchange *ex, enum lv_ex_end end)
{
    set_state(ex, LV_EX_DONE);
    ex->end = end;
    lv_ratelimit_cancel(&ex->rl);
    lv_cached_stop(&ex->cd);
    ex->ops->done(ex->d);
}

/* --- lifecycle ------------------------------------------------------------- */

struct lv_exchange *lv_exchange_create(struct lv_wctx *w, const struct lv_downstream_ops *ops,
                                       void *d, const char *peer_ip, bool tls)
{
    struct lv_exchange *ex = NULL;
    if (!lv_list_empty(&w->free_exchanges)) {
        ex = lv_container_of(w->free_exchanges.next, struct lv_exchange, link_free);
        lv_list_remove(&ex->link_free);
        w->nfree_exchanges--;
    } else {
        ex = calloc(1, sizeof(*ex));
        if (ex == NULL) return NULL;
        uv_timer_init(w->loop, &ex->timer);
        uv_timer_init(w->loop, &ex->tun_timer);
        ex->timer.data = ex->tun_timer.data = ex;
        ex->w = w;
        lv_list_init(&ex->link_free);
    }
    /* The text buffers at the end are not cleared: they are written before
     * they are read. */
    memset(&ex->state, 0,
           offsetof(struct lv_exchange, request_id) - offsetof(struct lv_exchange, state));
    ex->request_id[0] = ex->extra[0] = ex->upgrade_to[0] = '\0';
    ex->state = LV_EX_HEAD;
    ex->req_state = LV_EXR_HEAD;
    ex->end = LV_EXE_KEEP;
    ex->ops = ops;
    ex->d = d;
    ex->peer_ip = peer_ip;
    ex->tls = tls;
    ex->wg = lv_wgen_enter(w);
    ex->cfg = ex->wg->gen->cfg;
    lv_head_init(&ex->req, (uint32_t)ex->cfg->limits.max_header_size,
                 (uint32_t)ex->cfg->limits.max_headers);
    lv_bodyq_init(&ex->body, &w->env.bufs);
    lv_attempt_init(&ex->at, w, &ex->timer);
    lv_cached_init(&ex->cd, w, &ex->at);
    ex->start_ns = lv_clock_ns();
    ex->start_wall_ms = lv_clock_wall_ms();
    return ex;
}

/* The first timer is the exchange's first member: freeing it frees the
 * exchange; the tunnel's timer is closed first. */
static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void on_tun_timer_closed(uv_handle_t *h)
{
    struct lv_exchange *ex = h->data;
    uv_close((uv_handle_t *)&ex->timer, on_timer_closed);
}

static void free_exchange(struct lv_exchange *ex)
{
    ex->tun_timer.data = ex;
    uv_close((uv_handle_t *)&ex->tun_timer, on_tun_timer_closed);
}

/* Counts a finished request under its route and pool (only when the file
 * has pools or routes: config/gen.h). */
static void account_route(const struct lv_exchange *ex, unsigned status)
{
    const struct lv_gen *g = ex->wg->gen;
    const struct lv_route *rt = ex->route;
    size_t r = rt ? (size_t)(rt - ex->cfg->routing->table->routes) : g->nroutes;
    struct lv_route_wstats *rs = lv_gen_rstats(g, ex->w->id, r);
    if (rs == NULL) return;
    size_t row = rs->rows - 1; /* levee answered */
    for (size_t i = 0; ex->at.backend && ex->pool && i < ex->pool->n && i + 1 < rs->rows; i++) {
        if (ex->pool->backends[i] == ex->at.backend) row = i;
    }
    LV_STAT_INC(rs->status[row * LV_STATUS_CODES + status]);
    lv_lathist_add(&rs->duration, (lv_clock_ns() - ex->start_ns) / 1000);
    unsigned tries = ex->at.attempts > ex->at.hedges ? ex->at.attempts - ex->at.hedges : 0;
    if (tries > 1) LV_STAT_ADD(rs->retries, tries - 1);
    if (ex->fail == LV_FAIL_RATE_LIMITED) LV_STAT_INC(rs->rate_limited[ex->rl.denied_by ? 1 : 0]);
}

/* Counts a finished request in the worker's and its backend's metrics. */
static void account(const struct lv_exchange *ex)
{
    struct lv_stats *st = &ex->w->stats;
    unsigned status = ex->status ? ex->status : 499;
    if (status >= LV_STATUS_CODES) status = LV_STATUS_CODES - 1;
    LV_STAT_INC(st->requests);
    if (ex->at.backend)
        LV_STAT_INC(ex->at.backend->wstats[ex->w->id].status[status]);
    else
        LV_STAT_INC(st->status[status]);
    lv_lathist_add(&st->duration, (lv_clock_ns() - ex->start_ns) / 1000);
    unsigned a = ex->at.attempts > LV_RETRY_MAX_ATTEMPTS ? LV_RETRY_MAX_ATTEMPTS : ex->at.attempts;
    LV_STAT_INC(st->attempts[a]);
    account_route(ex, status);
}

static void log_line(const struct lv_exchange *ex)
{
    struct lv_access_rec r = {
        .client_ip = ex->peer_ip,
        .start_wall_ms = ex->start_wall_ms,
        .start_ns = ex->start_ns,
        .req = ex->req_state != LV_EXR_HEAD ? &ex->req : NULL,
        .status = ex->status,
        .bytes = ex->resp_bytes,
        .backend = ex->at.backend ? ex->at.backend->id : NULL,
        .attempts = ex->at.attempts,
        .fail = ex->fail,
        .skip = ex->at.skip,
        .hedged = ex->at.hedges > 0,
        .request_id = ex->request_id,
        .route = ex->route && ex->cfg->routing->configured ? ex->route->name : NULL,
        .cache = ex->cd.active ? lv_cached_result_name(ex->cd.result) : NULL,
    };
    lv_accesslog_write(ex->wg->alog, &r);
}

void lv_exchange_destroy(struct lv_exchange *ex)
{
    struct lv_wctx *w = ex->w;
    lv_tunnel_stop(&ex->tunnel);
    lv_ratelimit_cancel(&ex->rl);
    lv_cached_stop(&ex->cd);
    if (ex->req_state != LV_EXR_HEAD || ex->fail != LV_FAIL_NONE) {
        account(ex);
        log_line(ex);
    }
    lv_head_dispose(&ex->req);
    lv_bodyq_dispose(&ex->body);
    free(ex->rbuf);
    ex->rbuf = NULL;
    free(ex->req_lines);
    ex->req_lines = NULL;
    free(ex->resp_lines);
    ex->resp_lines = NULL;
    lv_wgen_leave(w, ex->wg);
    ex->wg = NULL;
    ex->ops = NULL;
    if (w->nfree_exchanges >= MAX_FREE_EXCHANGES || w->wgen == NULL) {
        free_exchange(ex);
        return;
    }
    lv_list_push_front(&w->free_exchanges, &ex->link_free);
    w->nfree_exchanges++;
}

void lv_exchange_free_list(struct lv_wctx *w)
{
    while (!lv_list_empty(&w->free_exchanges)) {
        struct lv_exchange *ex =
            lv_container_of(w->free_exchanges.next, struct lv_exchange, link_free);
        lv_list_remove(&ex->link_free);
        free_exchange(ex);
    }
    w->nfree_exchanges = 0;
}

/* --- the request ---------------------------------------------------------------- */

static bool method_idempotent(uint8_t m)
{
    return m == HTTP_GET || m == HTTP_HEAD || m == HTTP_OPTIONS || m == HTTP_PUT ||
           m == HTTP_DELETE || m == HTTP_TRACE;
}

/* A client's X-Request-Id is kept when it looks like an id: 1 to 128
 * characters from a conservative set. Anything else is replaced. */
static bool request_id_ok(const char *v, size_t n)
{
    if (n == 0 || n > 128) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = v[i];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.' || ch == ':' ||
                  ch == '/' || ch == '+' || ch == '=' || ch == '@';
        if (!ok) return false;
    }
    return true;
}

static void new_request_id(struct lv_exchange *ex)
{
    struct lv_rand *r = ex->w->rand;
    lv_fmt_hex_fixed(ex->request_id, lv_rand_next(r), 16); /* no printf on the request path */
    lv_fmt_hex_fixed(ex->request_id + 16, lv_rand_next(r), 16);
    ex->request_id[32] = '\0';
    ex->rid_generated = true;
    LV_STAT_INC(ex->w->stats.request_ids_generated);
}

/* Exactly one X-Request-Id that looks like an id is kept; none, a bad one,
 * or several (which one would be true?) get levee's own. */
static void take_request_id(struct lv_exchange *ex)
{
    struct lv_head *h = &ex->req;
    struct lv_hfield *keep = NULL;
    int count = 0;
    for (uint32_t i = 0; i < h->nfields; i++) {
        struct lv_hfield *f = &h->fields[i];
        if (!LV_HFIELD_IS(h, f, "x-request-id")) continue;
        count++;
        keep = f;
    }
    if (count == 1 && request_id_ok(lv_head_str(h, keep->value), keep->value_len) &&
        keep->value_len < sizeof(ex->request_id)) {
        memcpy(ex->request_id, lv_head_str(h, keep->value), keep->value_len);
        ex->request_id[keep->value_len] = '\0';
        return;
    }
    for (uint32_t i = 0; i < h->nfields; i++) {
        if (LV_HFIELD_IS(h, &h->fields[i], "x-request-id")) h->fields[i].flags |= LV_HF_DROP;
    }
    new_request_id(ex);
}

/* Connection: upgrade with Upgrade naming a protocol upgrade.allow lists.
 * Anything else loses its upgrade fields (hop-by-hop) and is a plain
 * request. */
static void detect_upgrade(struct lv_exchange *ex)
{
    const struct lv_head *h = &ex->req;
    const struct lv_hfield *u = LV_HEAD_FIND(h, "upgrade");
    if (u == NULL || u->value_len == 0 || u->value_len >= sizeof(ex->upgrade_to)) return;
    bool conn = false;
    for (uint32_t i = 0; i < h->nfields && !conn; i++) {
        const struct lv_hfield *f = &h->fields[i];
        conn = LV_HFIELD_IS(h, f, "connection") &&
               lv_token_list_has(lv_head_str(h, f->value), f->value_len, "upgrade", 7);
    }
    if (!conn) return;
    const struct lv_strlist *allow = &ex->rcfg->upgrade_allow;
    const char *v = lv_head_str(h, u->value);
    for (size_t i = 0; i < allow->n; i++) {
        if (lv_token_list_has(v, u->value_len, allow->items[i], strlen(allow->items[i]))) {
            memcpy(ex->upgrade_to, v, u->value_len);
            ex->upgrade_to[u->value_len] = '\0';
            ex->upgrade = true;
            return;
        }
    }
}

/* GET or HEAD /health on the proxy port: levee answers for itself, for the
 * load balancers in front of it. */
static bool is_health_probe(const struct lv_head *h)
{
    return (h->method == HTTP_GET || h->method == HTTP_HEAD) && h->target_len == 7 &&
           memcmp(lv_head_str(h, h->target), "/health", 7) == 0;
}

static bool has_body(const struct lv_exchange *ex)
{
    return ex->fwd.fwd.framing == LV_FRAME_CHUNKED ||
           (ex->fwd.fwd.framing == LV_FRAME_LENGTH && ex->req_length > 0);
}

/* Stops reading the client while too much body waits for the backends:
 * measured in buffer memory, so that many small pieces count for what they
 * hold, not for their bytes. */
static void body_flow(struct lv_exchange *ex)
{
    if (ex->req_state != LV_EXR_BODY || ex->state == LV_EX_DONE) return;
    uint64_t waiting = ex->state == LV_EX_HEAD || ex->state == LV_EX_LIMITING
                           ? lv_bodyq_mem_from(&ex->body, ex->body.base)
                           : lv_cached_body_backlog(&ex->cd);
    ex->ops->pause_body(ex->d, waiting > LV_FLOW_HIGH);
}

/* The request passed the rate limits: 100 Continue if asked, then the
 * attempt loop. */
static void proceed(struct lv_exchange *ex)
{
    if (ex->route->action != LV_ROUTE_POOL) {
        answer_route(ex);
        return;
    }
    struct lv_head *h = &ex->req;
    const struct lv_hfield *expect = LV_HEAD_FIND(h, "expect");
    if (expect && has_body(ex) && ex->req_state != LV_EXR_COMPLETE &&
        lv_token_list_has(lv_head_str(h, expect->value), expect->value_len, "100-continue", 12))
        ex->ops->send_continue(ex->d); /* levee asks for it: the backend never sees Expect */
    /* The deadline counts from the request's end: now, or when its body
     * is in (lv_cached_body_complete). */
    if (ex->fwd.body_complete) ex->fwd.deadline_ms = lv_clock_ms() + ex->pool->timeouts->backend;
    set_state(ex, LV_EX_FORWARDING);
    /* The cache answers, or forwards through the attempt loop
     * (proxy/cached.h), under the route's cache settings (the global
     * `cache:` with the route's keys on top). */
    lv_cached_start(&ex->cd, &ex->fwd, ex->tls, ex->pool, &ex->rcfg->cache, &cached_ops, ex);
    body_flow(ex);
}

static void on_verdict(void *arg, enum lv_rl_verdict v)
{
    struct lv_exchange *ex = arg;
    if (v == LV_RL_ALLOWED)
        proceed(ex);
    else
        respond(ex, LV_FAIL_RATE_LIMITED);
}

/* Appends the string s to dst (n bytes used of cap, NUL-terminated), cut
 * to fit; returns the new length. */
static size_t append(char *dst, size_t cap, size_t n, const char *s)
{
    size_t k = strlen(s);
    if (k > cap - 1 - n) k = cap - 1 - n;
    memcpy(dst + n, s, k);
    dst[n + k] = '\0';
    return n + k;
}

/* The lines levee adds to the forwarded request: its request id when it
 * made one, and the upgrade fields (hop-by-hop, re-added for this hop). */
static int forwarded_extra(struct lv_exchange *ex)
{
    size_t n = 0, cap = sizeof(ex->extra);
    ex->extra[0] = '\0';
    if (ex->rid_generated) {
        n = append(ex->extra, cap, n, "X-Request-Id: ");
        n = append(ex->extra, cap, n, ex->request_id);
        n = append(ex->extra, cap, n, "\r\n");
    }
    if (ex->upgrade)
        snprintf(ex->extra + n, cap - n, "Connection: upgrade\r\nUpgrade: %s\r\n", ex->upgrade_to);
    if (ex->req_lines) {
        /* The route's lines after levee's own, in one string. */
        size_t a = strlen(ex->extra), b = strlen(ex->req_lines);
        char *both = malloc(a + b + 1);
        if (both == NULL) return -1;
        memcpy(both, ex->extra, a);
        memcpy(both + a, ex->req_lines, b + 1);
        free(ex->req_lines);
        ex->req_lines = both;
    }
    return 0;
}

/* --- route the request (config/routes.h, route/route.h) --------------------------- */

/* The request as routes see it: its host (Host, or an absolute-form
 * target's authority) and its target in origin form. pbuf has room for
 * the target's length + 2; hbuf for LV_ROUTE_HOST_MAX. 0, or -1: an
 * invalid escape in the path. */
static int route_req(const struct lv_head *h, struct lv_route_req *req, char *pbuf, char *hbuf)
{
    const char *target = lv_head_str(h, h->target);
    size_t tlen = h->target_len;
    const char *host = NULL;
    size_t host_len = 0;
    /* Origin form (nearly every request) has no authority to look for. */
    size_t skip =
        tlen > 0 && target[0] == '/' ? 0 : lv_target_absolute(target, tlen, &host, &host_len);
    if (host == NULL) {
        const struct lv_hfield *f = LV_HEAD_FIND(h, "host");
        if (f) {
            host = lv_head_str(h, f->value);
            host_len = f->value_len;
        }
    }
    target += skip;
    tlen -= skip;
    /* "http://h?q": the path is "/"; the normalized path goes in pbuf, the
     * target in origin form right after it. */
    if (skip && (tlen == 0 || target[0] != '/')) {
        char *t = pbuf + tlen + 1;
        t[0] = '/';
        memcpy(t + 1, target, tlen);
        target = t;
        tlen++;
    }
    return lv_route_req_init(req, h->method, host, host_len, target, tlen, h, pbuf, hbuf);
}

static bool has_edits(const struct lv_route_fields *e)
{
    return e->nremove || e->nset || e->nadd;
}

/* Marks h's fields that a route's edits remove or replace (LV_HF_DROP). */
static void drop_fields(struct lv_head *h, const struct lv_route_fields *e)
{
    for (uint32_t i = 0; i < h->nfields; i++) {
        struct lv_hfield *f = &h->fields[i];
        bool drop = false;
        for (uint32_t k = 0; k < e->nset && !drop; k++)
            drop = lv_hfield_is(h, f, e->set[k].name, strlen(e->set[k].name));
        for (uint32_t k = 0; k < e->nremove && !drop; k++)
            drop = lv_hfield_is(h, f, e->remove[k], strlen(e->remove[k]));
        if (drop) f->flags |= LV_HF_DROP;
    }
}

/* Appends "Name: value\r\n" for each field a route sets or adds, values
 * expanded. 0, or -1 (a value over 4 KiB, or the lines over 64 KiB). */
static int fields_lines(struct lv_strbuf *sb, const struct lv_route_fields *e,
                        const struct lv_template_env *env)
{
    char v[4096];
    for (int pass = 0; pass < 2; pass++) {
        const struct lv_route_field *fs = pass ? e->add : e->set;
        uint32_t n = pass ? e->nadd : e->nset;
        for (uint32_t k = 0; k < n; k++) {
            ssize_t len = lv_template_expand(fs[k].value, env, v, sizeof(v));
            if (len < 0) return -1;
            lv_strbuf_printf(sb, "%s: %.*s\r\n", fs[k].name, (int)len, v);
        }
    }
    return sb->truncated ? -1 : 0;
}

/* A forwarding route's header edits: the request's fields it removes or
 * replaces are dropped now; the lines it adds (and an RFC 7239 Forwarded
 * field) go to ex->req_lines, the response's to ex->resp_lines. */
static int route_fields(struct lv_exchange *ex, const struct lv_route *r,
                        const struct lv_route_cfg *rcfg, const struct lv_template_env *env)
{
    const struct lv_route_fields *q = &r->request_fields, *a = &r->response_fields;
    int rc = 0;
    if (has_edits(q) || rcfg->forwarded) {
        drop_fields(&ex->req, q);
        struct lv_strbuf sb;
        lv_strbuf_init(&sb, 64 * 1024);
        if (rcfg->forwarded) {
            /* RFC 7239: an IPv6 address is bracketed and quoted; the host is
             * quoted (a port's ':' is not a token character). */
            bool v6 = strchr(ex->peer_ip, ':') != NULL;
            const struct lv_str *host = &env->vars[LV_TVAR_HOST];
            lv_strbuf_printf(&sb, "Forwarded: for=%s%s%s;proto=%s", v6 ? "\"[" : "", ex->peer_ip,
                             v6 ? "]\"" : "", ex->tls ? "https" : "http");
            if (host->n) lv_strbuf_printf(&sb, ";host=\"%.*s\"", (int)host->n, host->p);
            lv_strbuf_puts(&sb, "\r\n");
        }
        rc |= fields_lines(&sb, q, env);
        ex->req_lines = sb.p; /* taken over: freed with the exchange */
    }
    if (has_edits(a)) {
        struct lv_strbuf sb;
        lv_strbuf_init(&sb, 64 * 1024);
        rc |= fields_lines(&sb, a, env);
        ex->resp_lines = sb.p;
    }
    return rc;
}

/*
 * Finds the request's route, first match wins, and what it does:
 * ex->route, ex->rcfg, ex->pool (a pool route's pool with the route's
 * policies), ex->rbuf (a rewritten target, or a redirect's Location). A
 * file without pools: or routes: has one implicit route, to the default
 * pool: it is taken without matching (the single pool, as ever). Returns
 * 0, or -1 when levee answered: 400 for an invalid escape in the path, 414
 * for a rewrite or Location longer than LV_ROUTE_LOCATION_MAX.
 */
static int route_request(struct lv_exchange *ex)
{
    const struct lv_routes_cfg *rc = ex->cfg->routing;
    const struct lv_route_table *t = rc->table;
    uint32_t idx = t->n - 1;
    enum lv_fail_kind bad = LV_FAIL_NONE;
    if (rc->configured) {
        const struct lv_head *h = &ex->req;
        char small[1024], hbuf[LV_ROUTE_HOST_MAX + 1];
        size_t need = 2 * (size_t)h->target_len + 2;
        char *pbuf = need <= sizeof(small) ? small : malloc(need);
        struct lv_route_req req;
        struct lv_route_hit hit;
        if (pbuf == NULL) {
            bad = LV_FAIL_INTERNAL;
        } else if (route_req(h, &req, pbuf, hbuf) != 0) {
            bad = LV_FAIL_BAD_REQUEST;
        } else {
            lv_route_match(t, &req, ex->wg->scratch, &hit);
            idx = hit.index;
            const struct lv_route *r = hit.route;
            bool pool = r->action == LV_ROUTE_POOL;
            bool rewrites = pool && (r->strip_prefix || r->add_prefix || r->rewrite);
            bool edits = pool && (has_edits(&r->request_fields) || has_edits(&r->response_fields) ||
                                  rc->routes[idx].forwarded);
            struct lv_template_env env;
            if (r->action == LV_ROUTE_REDIRECT || rewrites || edits) {
                lv_route_env_init(&env, &req, &hit);
                env.vars[LV_TVAR_SCHEME] =
                    (struct lv_str){ex->tls ? "https" : "http", ex->tls ? 5 : 4};
                env.vars[LV_TVAR_CLIENT_ADDR] = (struct lv_str){ex->peer_ip, strlen(ex->peer_ip)};
                env.vars[LV_TVAR_REQUEST_ID] =
                    (struct lv_str){ex->request_id, strlen(ex->request_id)};
            }
            if (edits && route_fields(ex, r, &rc->routes[idx], &env) != 0) bad = LV_FAIL_INTERNAL;
            if (bad == LV_FAIL_NONE && (r->action == LV_ROUTE_REDIRECT || rewrites)) {
                ex->rbuf = malloc(LV_ROUTE_LOCATION_MAX);
                ssize_t n = ex->rbuf == NULL ? -2
                            : r->action == LV_ROUTE_REDIRECT
                                ? lv_route_location(r, &req, &env, ex->rbuf, LV_ROUTE_LOCATION_MAX)
                                : lv_route_target(r, &req, &env, ex->rbuf, LV_ROUTE_LOCATION_MAX);
                if (n < 0) bad = n == -1 ? LV_FAIL_URI_TOO_LONG : LV_FAIL_INTERNAL;
                ex->rbuf_len = n > 0 ? (size_t)n : 0;
                if (n <= 0) {
                    free(ex->rbuf);
                    ex->rbuf = NULL;
                }
            }
        }
        if (pbuf != small) free(pbuf);
    }
    ex->route = &t->routes[idx];
    ex->rcfg = &rc->routes[idx];
    ex->pool = ex->route->action == LV_ROUTE_POOL ? &ex->wg->routes[idx] : NULL;
    if (bad != LV_FAIL_NONE) {
        respond(ex, bad);
        return -1;
    }
    return 0;
}

/* A route's own answer: a redirect (Location: ex->rbuf, no body) or a
 * direct answer (its status, body and Content-Type); no_route is one. */
static void answer_route(struct lv_exchange *ex)
{
    const struct lv_route *r = ex->route;
    size_t cap = ex->rbuf_len + 700;
    char *extra = malloc(cap);
    if (extra == NULL) {
        respond(ex, LV_FAIL_INTERNAL);
        return;
    }
    size_t n = 0;
    int k = 0;
    if (r->action == LV_ROUTE_REDIRECT)
        k = snprintf(extra, cap, "Location: %.*s\r\n", (int)ex->rbuf_len, ex->rbuf ? ex->rbuf : "");
    else if (r->content_type)
        k = snprintf(extra, cap, "Content-Type: %.200s\r\n", r->content_type);
    if (k > 0 && (size_t)k < cap) n = (size_t)k;
    snprintf(extra + n, cap - n, "X-Request-Id: %s\r\n%s", ex->request_id, ex->rl.headers);
    /* With a body not read, the connection ends after the answer. */
    bool must_close =
        !ex->keep_alive || ex->w->draining || (ex->req_state != LV_EXR_COMPLETE && has_body(ex));
    const char *body = r->action == LV_ROUTE_RESPOND && r->body ? r->body : "";
    size_t blen = r->action == LV_ROUTE_RESPOND && r->body ? r->body_len : 0;
    send_own(ex, r->status, extra, body, blen, must_close);
    free(extra);
}

int lv_exchange_on_head(struct lv_exchange *ex, const struct lv_req_framing *f)
{
    assert(ex->state == LV_EX_HEAD && ex->req_state == LV_EXR_HEAD);
    struct lv_head *h = &ex->req;
    const struct lv_config *cfg = ex->cfg;
    ex->req_state = LV_EXR_BODY;
    ex->keep_alive = f->keep_alive && !ex->w->draining;
    ex->is_head = h->method == HTTP_HEAD;
    take_request_id(ex);
    if (h->method == HTTP_CONNECT) {
        respond(ex, LV_FAIL_METHOD);
        return -1;
    }
    /* Framing, target and Host (http/check.h), before anything reads them:
     * the health probe, the upgrade, the rate-limit key, the backend. */
    enum lv_fail_kind bad = lv_check_request(h);
    if (bad != LV_FAIL_NONE) {
        respond(ex, bad);
        return -1;
    }
    if (is_health_probe(h)) {
        respond_health(ex);
        return 0;
    }
    if (route_request(ex) != 0) return -1;
    detect_upgrade(ex);
    ex->fwd.fwd.framing = f->framing;
    if (f->framing == LV_FRAME_LENGTH) {
        ex->req_length = f->length;
        if (cfg->limits.max_body && ex->req_length > cfg->limits.max_body) {
            respond(ex, LV_FAIL_BODY_TOO_LARGE); /* before a byte of the body is read */
            return -1;
        }
    }
    if (forwarded_extra(ex) != 0) {
        respond(ex, LV_FAIL_INTERNAL);
        return -1;
    }
    ex->fwd.head = h;
    ex->fwd.fwd.client_ip = ex->peer_ip;
    ex->fwd.fwd.proto = ex->tls ? "https" : "http";
    ex->fwd.fwd.content_length = ex->req_length;
    ex->fwd.fwd.extra = ex->req_lines ? ex->req_lines : ex->extra;
    if (ex->route->action == LV_ROUTE_POOL) {
        ex->fwd.fwd.target = ex->rbuf;
        ex->fwd.fwd.target_len = ex->rbuf_len;
        ex->fwd.fwd.host = ex->route->host_rewrite;
    }
    ex->fwd.body = &ex->body;
    const struct lv_retry_cfg *retry = ex->pool ? ex->pool->retry : &cfg->retry;
    ex->fwd.idempotent = method_idempotent(h->method) ||
                         (retry->idempotency_key && LV_HEAD_FIND(h, "idempotency-key"));
    ex->fwd.upgrade = ex->upgrade;
    if (!has_body(ex)) ex->fwd.body_complete = true;
    /* Rate limits before anything is asked of the client or the backends. */
    /* A route with a rate_limit of its own counts in its own buckets only. */
    struct lv_limiter *lim = ex->wg->gen->limiter;
    const struct lv_rate_cfg *rlc = &cfg->rate_limit;
    if (ex->rcfg->rate_limit) {
        lim = ex->wg->gen->route_limiters[ex->route - ex->cfg->routing->table->routes];
        rlc = ex->rcfg->rate_limit;
    }
    switch (lv_ratelimit_check(&ex->rl, ex->w, lim, rlc, h, ex->peer_ip, on_verdict, ex)) {
    case LV_RL_ALLOWED: proceed(ex); break;
    case LV_RL_REFUSED: respond(ex, LV_FAIL_RATE_LIMITED); break;
    case LV_RL_WAIT: set_state(ex, LV_EX_LIMITING); break;
    }
    /* Answered already (429, 503...) with a body still to come: stop reading. */
    return ex->state == LV_EX_DONE && ex->end != LV_EXE_KEEP && has_body(ex) ? -1 : 0;
}

int lv_exchange_on_body(struct lv_exchange *ex, struct lv_buf *b, const char *p, size_t len)
{
    if (ex->state == LV_EX_DONE) return ex->end == LV_EXE_KEEP ? 0 : -1; /* answered: dropped */
    uint64_t max = ex->cfg->limits.max_body;
    if (max && ex->body.bytes + len > max) {
        lv_exchange_fail(ex, LV_FAIL_BODY_TOO_LARGE);
        return -1;
    }
    if (lv_bodyq_push(&ex->body, b, p, (uint32_t)len) != 0) {
        lv_exchange_fail(ex, LV_FAIL_INTERNAL);
        return -1;
    }
    if (ex->state == LV_EX_FORWARDING || ex->state == LV_EX_RESPONDING)
        lv_cached_body_added(&ex->cd);
    body_flow(ex);
    return 0;
}

void lv_exchange_on_request_end(struct lv_exchange *ex)
{
    ex->req_state = LV_EXR_COMPLETE;
    ex->ops->pause_body(ex->d, false); /* the body is all in: its back-pressure is over */
    if (ex->state == LV_EX_DONE) return;
    if (ex->state == LV_EX_FORWARDING || ex->state == LV_EX_RESPONDING)
        lv_cached_body_complete(&ex->cd);
    else
        ex->fwd.body_complete = true;
}

void lv_exchange_on_drain(struct lv_exchange *ex)
{
    if (ex->state == LV_EX_RESPONDING && ex->ops->backlog(ex->d) <= LV_FLOW_LOW)
        lv_cached_resume(&ex->cd);
}

/* --- the answer ------------------------------------------------------------------- */

/* Appends the string s at out + n (the caller sized out); the new length. */
static size_t put(char *out, size_t n, const char *s)
{
    size_t len = strlen(s);
    memcpy(out + n, s, len);
    return n + len;
}

static int at_head(void *user, const struct lv_cached_answer *ca)
{
    struct lv_exchange *ex = user;
    struct lv_head *r = (struct lv_head *)ca->head;
    unsigned status = ca->status;
    char stack[1024];
    char *extra = stack;
    /* A route's response_headers: its fields replace or remove the
     * backend's, its lines come after levee's. A stored response's fields
     * are all in ca->lines: there the route's lines are only added. */
    const char *route_lines = NULL;
    if (ex->route && status != 101 && has_edits(&ex->route->response_fields)) {
        if (r) drop_fields(r, &ex->route->response_fields);
        route_lines = ex->resp_lines;
    }
    size_t cap = strlen(ca->lines) + strlen(ex->rl.headers) + sizeof(ex->request_id) + 200 +
                 (route_lines ? strlen(route_lines) : 0);
    if (cap > sizeof(stack) && (extra = malloc(cap)) == NULL) return -1;
    if (cap <= sizeof(stack)) cap = sizeof(stack);
    struct lv_answer a = {.status = status, .head = r, .extra = extra};
    /* The backend's request id gives way to the request's. */
    for (uint32_t i = 0; r && i < r->nfields; i++) {
        if (LV_HFIELD_IS(r, &r->fields[i], "x-request-id")) r->fields[i].flags |= LV_HF_DROP;
    }
    if (status == 101) {
        /* The upgrade fields are hop-by-hop, but meant for this hop's other
         * side too. */
        const struct lv_hfield *u = LV_HEAD_FIND(r, "upgrade");
        snprintf(extra, cap, "X-Request-Id: %s\r\nConnection: upgrade\r\nUpgrade: %.*s\r\n",
                 ex->request_id, u ? (int)(u->value_len < 64 ? u->value_len : 64) : 0,
                 u ? lv_head_str(r, u->value) : "");
        a.body = LV_BODY_NONE;
    } else {
        /* By hand: a stored response's fields are all in ca->lines, and
         * this runs on every hit. */
        size_t n = 0;
        n = put(extra, n, ca->lines);
        n = put(extra, n, "X-Request-Id: ");
        n = put(extra, n, ex->request_id);
        n = put(extra, n, "\r\n");
        n = put(extra, n, ex->rl.headers);
        if (route_lines) n = put(extra, n, route_lines);
        extra[n] = '\0';
        bool bodyless = ex->is_head || !ca->body;
        a.body = bodyless ? LV_BODY_NONE : ca->length_known ? LV_BODY_LENGTH : LV_BODY_STREAM;
        a.length = ca->length; /* the whole length: no body byte is in yet */
        if (ca->head_only) {   /* a stored response to a HEAD states its length */
            a.body = LV_BODY_LENGTH;
            a.head_only = true;
        }
    }
    /* A stored answer can go out from inside on_head: a request without a
     * body is complete then, as for levee's own answers. */
    a.must_close =
        !ex->keep_alive || (ex->req_state != LV_EXR_COMPLETE && has_body(ex)) || ex->w->draining;
    int rc = ex->ops->head(ex->d, &a);
    if (extra != stack) free(extra);
    if (rc != 0) return -1;
    ex->status = status;
    set_state(ex, LV_EX_RESPONDING);
    if (a.must_close) ex->end = LV_EXE_CLOSE;
    return (a.body == LV_BODY_NONE || a.head_only) && status != 101 ? 1 : 0;
}

static void at_interim(void *user, const struct lv_upconn_head *h)
{
    struct lv_exchange *ex = user;
    ex->ops->interim(ex->d, h->head);
}

static int at_body(void *user, struct lv_buf *b, const char *p, size_t len)
{
    struct lv_exchange *ex = user;
    ex->resp_bytes += len;
    if (ex->ops->body(ex->d, b, p, len) != 0) return -1;
    if (ex->ops->backlog(ex->d) > LV_FLOW_HIGH) lv_cached_pause(&ex->cd);
    return 0;
}

static void at_end(void *user)
{
    struct lv_exchange *ex = user;
    ex->ops->end(ex->d);
    finish(ex, ex->end == LV_EXE_CLOSE ? LV_EXE_CLOSE : LV_EXE_KEEP);
}

static void at_upgraded(void *user, struct lv_sock *backend, struct lv_buf *b, const char *rest,
                        size_t n)
{
    struct lv_exchange *ex = user;
    struct lv_buf *ub = NULL;
    const char *up = NULL;
    size_t nup = 0;
    struct lv_sock *client = ex->ops->take_stream(ex->d, &ub, &up, &nup);
    set_state(ex, LV_EX_TUNNEL);
    lv_tunnel_start(&ex->tunnel, client, backend, b, rest, n, ub, up, nup, &ex->tun_timer,
                    ex->pool->timeouts->tunnel, &ex->w->stats, &tunnel_ops, ex);
    if (ub) lv_buf_unref(ub);
}

static void tunnel_ended(void *user, const char *why)
{
    struct lv_exchange *ex = user;
    (void)why;
    ex->resp_bytes += ex->tunnel.down;
    lv_attempt_tunnel_end(&ex->at, ex->cfg->timeouts.idle);
    finish(ex, LV_EXE_CLOSE);
}

static const struct lv_tunnel_ops tunnel_ops = {.ended = tunnel_ended};

static void at_failed(void *user, enum lv_fail_kind kind)
{
    struct lv_exchange *ex = user;
    if (ex->state == LV_EX_DONE) return;
    if (ex->state == LV_EX_RESPONDING || ex->state == LV_EX_TUNNEL)
        abort_answer(ex, kind);
    else
        respond(ex, kind);
}

static void at_body_sent(void *user)
{
    body_flow(user);
}

static bool at_client_gone(void *user)
{
    struct lv_exchange *ex = user;
    return ex->ops->gone(ex->d);
}

static size_t at_backlog(void *user)
{
    struct lv_exchange *ex = user;
    return ex->ops->backlog(ex->d);
}

static const struct lv_cached_ops cached_ops = {
    .head = at_head,
    .interim = at_interim,
    .body = at_body,
    .end = at_end,
    .upgraded = at_upgraded,
    .failed = at_failed,
    .body_sent = at_body_sent,
    .client_gone = at_client_gone,
    .backlog = at_backlog,
};

/* --- levee's own answers ----------------------------------------------------------- */

static unsigned retry_after_s(const struct lv_exchange *ex, enum lv_fail_kind kind)
{
    if (kind == LV_FAIL_RATE_LIMITED) return ex->rl.retry_after_s;
    if (kind != LV_FAIL_NO_BACKEND || ex->pool == NULL) return 0;
    const struct lv_wpool *p = ex->pool;
    return lv_eligible_retry_after(p->backends, p->n, p->health->interval, lv_clock_ms());
}

/* Sends an answer of levee's own: status, the header lines in extra, a
 * body of blen bytes (not sent to a HEAD), then DONE. */
static void send_own(struct lv_exchange *ex, unsigned status, const char *extra, const char *body,
                     size_t blen, bool must_close)
{
    ex->status = status;
    struct lv_answer a = {
        .status = status,
        .extra = extra,
        .body = LV_BODY_LENGTH,
        .length = blen,
        .head_only = ex->is_head,
        .must_close = must_close,
    };
    bool ok = ex->ops->head(ex->d, &a) == 0;
    if (ok && !ex->is_head && blen > 0) {
        struct lv_buf *b = lv_buf_get_exact(&ex->w->env.bufs, blen);
        ok = b != NULL && lv_buf_append(b, body, blen) == 0 &&
             ex->ops->body(ex->d, b, b->data, blen) == 0;
        if (b) lv_buf_unref(b);
    }
    if (ok) ex->ops->end(ex->d);
    ex->resp_bytes = ok && !ex->is_head ? blen : 0;
    finish(ex, !ok ? LV_EXE_ABORT : must_close ? LV_EXE_CLOSE : LV_EXE_KEEP);
}

/* GET /health on the proxy port: levee's own status. */
static void respond_health(struct lv_exchange *ex)
{
    struct lv_strbuf body;
    lv_strbuf_init(&body, 64 * 1024);
    unsigned status =
        (unsigned)lv_gen_health_json(&body, ex->wg->gen, ex->w->start_ms, lv_clock_ms());
    char extra[256];
    snprintf(extra, sizeof(extra),
             "Content-Type: application/json\r\nCache-Control: no-store\r\nX-Request-Id: %s\r\n",
             ex->request_id);
    send_own(ex, status, extra, body.p ? body.p : "", body.len, !ex->keep_alive);
    lv_strbuf_dispose(&body);
}

static void respond(struct lv_exchange *ex, enum lv_fail_kind kind)
{
    const struct lv_fail_info *fi = lv_fail_info(kind);
    lv_attempt_stop(&ex->at);
    lv_ratelimit_cancel(&ex->rl);
    ex->fail = kind;
    ex->status = (unsigned)fi->status;
    if (ex->request_id[0] == '\0') new_request_id(ex); /* the head never completed */
    /* After a client error, or with a body not read, the connection ends. */
    bool client_fault = fi->side == LV_SIDE_CLIENT && kind != LV_FAIL_RATE_LIMITED;
    bool must_close =
        client_fault || !ex->keep_alive || ex->w->draining ||
        (ex->req_state != LV_EXR_COMPLETE && (ex->req_state == LV_EXR_HEAD || has_body(ex)));
    char extra[420];
    size_t n = 0;
    unsigned ra = retry_after_s(ex, kind);
    int k = snprintf(extra, sizeof(extra),
                     "Content-Type: application/json\r\nCache-Control: no-store\r\n");
    if (k > 0) n = (size_t)k;
    if (ra) {
        k = snprintf(extra + n, sizeof(extra) - n, "Retry-After: %u\r\n", ra);
        if (k > 0 && (size_t)k < sizeof(extra) - n) n += (size_t)k;
    }
    snprintf(extra + n, sizeof(extra) - n, "X-Request-Id: %s\r\n%s", ex->request_id,
             ex->rl.headers);
    char body[LV_STATUS_BODY_MAX];
    size_t blen = lv_status_body(body, sizeof(body), kind);
    LV_STAT_INC(ex->w->stats.generated[kind]);
    send_own(ex, (unsigned)fi->status, extra, body, blen, must_close);
}

/* Part of the answer is out: the only honest thing left is to cut the
 * connection, so that the client sees the answer is short. */
static void abort_answer(struct lv_exchange *ex, enum lv_fail_kind kind)
{
    ex->fail = kind;
    lv_tunnel_stop(&ex->tunnel);
    finish(ex, LV_EXE_ABORT);
}

void lv_exchange_fail(struct lv_exchange *ex, enum lv_fail_kind kind)
{
    if (ex->state == LV_EX_DONE) return;
    if (ex->state == LV_EX_RESPONDING || ex->state == LV_EX_TUNNEL)
        abort_answer(ex, kind);
    else
        respond(ex, kind);
}

void lv_exchange_cancel(struct lv_exchange *ex)
{
    lv_tunnel_stop(&ex->tunnel);
    lv_ratelimit_cancel(&ex->rl);
    lv_cached_stop(&ex->cd);
    if (ex->state == LV_EX_DONE) return;
    if (ex->state == LV_EX_TUNNEL) ex->resp_bytes += ex->tunnel.down;
    if (ex->fail == LV_FAIL_NONE) ex->fail = LV_FAIL_CLIENT_CLOSED;
    if (ex->state != LV_EX_RESPONDING && ex->state != LV_EX_TUNNEL) ex->status = 499;
    set_state(ex, LV_EX_DONE);
    ex->end = LV_EXE_ABORT;
}
