/*
 * The Redis store: connection life (connect, AUTH, SCRIPT LOAD, reconnect
 * with backoff), checks as EVALSHA of one script, and timeouts. Redis
 * answers in order, so outstanding checks are a FIFO and one timer, armed
 * for the oldest, is enough.
 */
#include "limit/redis.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "net/addr.h"

/*
 * One check, atomically: the client's allowance first (KEYS[1], '' for
 * none), then the global one (KEYS[2]), with the time taken from Redis so
 * that every levee instance uses the same clock. Token bucket as GCRA
 * (one number per key); sliding window as two counters per key.
 * ARGV: algorithm (0 bucket, 1 window), client rate, client burst, global
 * rate, global burst, window (µs). Returns: allowed, denied by client (1)
 * or global (0), then for client and global: applied, remaining, reset µs,
 * retry µs.
 */
static const char script[] =
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local function bucket(key, rate, burst)\n"
    "  local T = 1000000 / rate\n"
    "  local tau = (burst - 1) * T\n"
    "  local tat = tonumber(redis.call('GET', key)) or now\n"
    "  if tat < now then tat = now end\n"
    "  if tat - now > tau then return 0, 0, tat - now, tat - now - tau end\n"
    "  local new = tat + T\n"
    "  redis.call('SET', key, string.format('%.0f', new), 'PX',\n"
    "             math.ceil((new - now) / 1000) + 1000)\n"
    "  local rem = burst - math.ceil((new - now) / T)\n"
    "  if rem < 0 then rem = 0 end\n"
    "  return 1, rem, new - now, 0\n"
    "end\n"
    "local function window(key, limit, w)\n"
    "  local start = math.floor(now / w) * w\n"
    "  local ck = key .. ':' .. string.format('%.0f', start)\n"
    "  local pk = key .. ':' .. string.format('%.0f', start - w)\n"
    "  local cur = tonumber(redis.call('GET', ck)) or 0\n"
    "  local prev = tonumber(redis.call('GET', pk)) or 0\n"
    "  local into = now - start\n"
    "  local est = prev * (w - into) / w + cur\n"
    "  if est + 1 > limit then\n"
    "    local retry\n"
    "    if cur + 1 > limit then -- as lv_window_take\n"
    "      local t = w * (1 - (limit - 1) / cur)\n"
    "      if t < 0 then t = 0 end\n"
    "      retry = w - into + math.ceil(t)\n"
    "    else\n"
    "      retry = math.ceil((est + 1 - limit) * w / prev)\n"
    "    end\n"
    "    if retry < 1 then retry = 1 end\n"
    "    return 0, 0, w - into, retry\n"
    "  end\n"
    "  redis.call('INCR', ck)\n"
    "  redis.call('PEXPIRE', ck, math.ceil(2 * w / 1000) + 1000)\n"
    "  return 1, math.floor(limit - est - 1), w - into, 0\n"
    "end\n"
    "local function take(key, rate, burst)\n"
    "  if ARGV[1] == '1' then return window(key, burst, tonumber(ARGV[6])) end\n"
    "  return bucket(key, rate, burst)\n"
    "end\n"
    "local res = {1, 0, 0, 0, 0, 0, 0, 0, 0, 0}\n"
    "if KEYS[1] ~= '' then\n"
    "  local a, r, reset, retry = take(KEYS[1], tonumber(ARGV[2]), tonumber(ARGV[3]))\n"
    "  res[3] = 1; res[4] = r; res[5] = math.ceil(reset); res[6] = math.ceil(retry)\n"
    "  if a == 0 then res[1] = 0; res[2] = 1; return res end\n"
    "end\n"
    "if tonumber(ARGV[4]) > 0 then\n"
    "  local a, r, reset, retry = take(KEYS[2], tonumber(ARGV[4]), tonumber(ARGV[5]))\n"
    "  res[7] = 1; res[8] = r; res[9] = math.ceil(reset); res[10] = math.ceil(retry)\n"
    "  if a == 0 then res[1] = 0; res[2] = 0 end\n"
    "end\n"
    "return res\n";

enum conn_state { C_DOWN, C_CONNECTING, C_LOADING, C_UP };

struct lv_redis_call {
    struct lv_redis *r;
    struct lv_list node; /* in r->calls */
    lv_redis_cb cb;      /* NULL once answered, timed out or cancelled */
    void *arg;
    uint64_t deadline; /* ms */
};

struct lv_redis {
    uv_loop_t *loop;
    uv_timer_t timer; /* first: freed through its close callback */
    uv_timer_t retry;
    struct lv_redis_shared *shared;
    redisAsyncContext *ac;
    enum conn_state state;
    bool closing;
    int handles;
    uint64_t backoff;
    uint64_t timeout;
    char host[64];
    int port;
    char *password;
    char sha[41];
    struct lv_list calls; /* outstanding checks, oldest first */
};

static struct lv_redis_call *call_of(struct lv_list *n)
{
    return lv_container_of(n, struct lv_redis_call, node);
}

static void set_up(struct lv_redis *r, bool up)
{
    bool was = r->state == C_UP;
    if (was == up) return;
    int n = atomic_fetch_add(&r->shared->connected, up ? 1 : -1) + (up ? 1 : -1);
    /* One line per change of the store's state, not one per worker. */
    int state = n > 0 ? 1 : 0;
    int old = atomic_exchange(&r->shared->up, state);
    if (old != state) {
        if (state)
            lv_log_ratelimited_burst(LV_LOG_INFO, LV_LOG_BURST_STATE,
                                     "rate limit store: connected to redis %s:%d", r->host,
                                     r->port);
        else
            lv_log_ratelimited_burst(LV_LOG_WARN, LV_LOG_BURST_STATE,
                                     "rate limit store: redis %s:%d unreachable; falling back to "
                                     "rate_limit.on_store_error",
                                     r->host, r->port);
    }
}

/* A worker could not connect. Logged once, if the store was never up (a
 * store that was up and went away is logged by set_up). */
static void never_connected(struct lv_redis *r, const char *why)
{
    int never = -1;
    if (atomic_compare_exchange_strong(&r->shared->up, &never, 0))
        lv_log_ratelimited_burst(LV_LOG_WARN, LV_LOG_BURST_STATE,
                                 "rate limit store: redis %s:%d unreachable (%s); falling back to "
                                 "rate_limit.on_store_error",
                                 r->host, r->port, why);
}

/* --- outstanding checks -------------------------------------------------------- */

static void arm(struct lv_redis *r);

static void deliver(struct lv_redis_call *c, int status, const struct lv_limit_verdict *v)
{
    lv_redis_cb cb = c->cb;
    c->cb = NULL;
    if (cb) cb(c->arg, status, v);
}

static void on_timeout(uv_timer_t *t)
{
    struct lv_redis *r = t->data;
    uint64_t now = lv_clock_ms();
    struct lv_list *it;
    lv_list_foreach(it, &r->calls)
    {
        struct lv_redis_call *c = call_of(it);
        if (c->cb && c->deadline <= now) deliver(c, UV_ETIMEDOUT, NULL);
    }
    arm(r);
}

static void arm(struct lv_redis *r)
{
    struct lv_list *it;
    lv_list_foreach(it, &r->calls)
    {
        struct lv_redis_call *c = call_of(it);
        if (c->cb == NULL) continue;
        uint64_t now = lv_clock_ms();
        uv_timer_start(&r->timer, on_timeout, c->deadline > now ? c->deadline - now : 0, 0);
        return;
    }
    uv_timer_stop(&r->timer);
}

static uint64_t int_at(const redisReply *rep, size_t i)
{
    if (i >= rep->elements || rep->element[i]->type != REDIS_REPLY_INTEGER) return 0;
    long long v = rep->element[i]->integer;
    return v > 0 ? (uint64_t)v : 0;
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct lv_redis_call *c = privdata;
    struct lv_redis *r = c->r;
    redisReply *rep = reply;
    lv_list_remove(&c->node);
    if (rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 10) {
        struct lv_limit_verdict v = {.allowed = int_at(rep, 0) == 1};
        v.denied_by = int_at(rep, 1) == 1 ? LV_SCOPE_CLIENT : LV_SCOPE_GLOBAL;
        for (int s = 0; s < LV_SCOPE_COUNT; s++) {
            size_t base = s == LV_SCOPE_CLIENT ? 2 : 6;
            v.has[s] = int_at(rep, base) == 1;
            v.r[s].allowed = !(!v.allowed && v.denied_by == (enum lv_limit_scope)s);
            v.r[s].remaining = (uint32_t)int_at(rep, base + 1);
            v.r[s].reset_us = int_at(rep, base + 2);
            v.r[s].retry_us = int_at(rep, base + 3);
        }
        deliver(c, 0, &v);
    } else {
        if (rep && rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "NOSCRIPT")) {
            /* Redis lost the script (restarted without a disconnect we saw):
             * reconnecting loads it again. */
            redisAsyncDisconnect(r->ac);
        }
        deliver(c, UV_EPROTO, NULL);
    }
    free(c);
    arm(r);
}

int lv_redis_take(struct lv_redis *r, const struct lv_rate_cfg *cfg, const char *key, size_t len,
                  lv_redis_cb cb, void *arg, struct lv_redis_call **call)
{
    if (r == NULL || r->state != C_UP || r->closing) return UV_ENOTCONN;
    struct lv_redis_call *c = calloc(1, sizeof(*c));
    if (c == NULL) return UV_ENOMEM;
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->deadline = lv_clock_ms() + r->timeout;

    struct lv_limit_cfg cp, gp;
    lv_limiter_params(cfg, LV_SCOPE_CLIENT, &cp);
    lv_limiter_params(cfg, LV_SCOPE_GLOBAL, &gp);
    char ckey[512], gkey[256], a[6][32];
    int cl = len && cfg->client_rate > 0
                 ? snprintf(ckey, sizeof(ckey), "%sc:%.*s", cfg->redis_prefix,
                            (int)(len < 400 ? len : 400), key)
                 : 0;
    int gl = snprintf(gkey, sizeof(gkey), "%sg", cfg->redis_prefix);
    snprintf(a[0], sizeof(a[0]), "%d", cfg->algorithm == LV_LIMIT_SLIDING_WINDOW ? 1 : 0);
    snprintf(a[1], sizeof(a[1]), "%.6f", cp.rate > 0 ? cp.rate : 1);
    snprintf(a[2], sizeof(a[2]), "%u", cp.burst);
    snprintf(a[3], sizeof(a[3]), "%.6f", gp.rate);
    snprintf(a[4], sizeof(a[4]), "%u", gp.burst);
    snprintf(a[5], sizeof(a[5]), "%llu", (unsigned long long)(cfg->window * 1000));
    const char *argv[11] = {"EVALSHA", r->sha, "2", ckey, gkey, a[0], a[1], a[2], a[3], a[4], a[5]};
    size_t argl[11];
    for (int i = 0; i < 11; i++)
        argl[i] = strlen(argv[i]);
    argl[3] = cl > 0 ? (size_t)cl : 0;
    argl[4] = (size_t)gl;
    if (redisAsyncCommandArgv(r->ac, on_reply, c, 11, argv, argl) != REDIS_OK) {
        free(c);
        return UV_ENOTCONN;
    }
    lv_list_push_back(&r->calls, &c->node);
    if (!uv_is_active((uv_handle_t *)&r->timer)) arm(r);
    *call = c;
    return 0;
}

void lv_redis_call_cancel(struct lv_redis_call *call)
{
    if (call) call->cb = NULL; /* freed when its reply (or the disconnect) comes */
}

/* --- the event loop glue ---------------------------------------------------------- */

/*
 * hiredis' own libuv adapter (0.14) returns when a poll reports an error.
 * libuv reports a reset connection, or a refused connect, that way and stops
 * polling: hiredis would never read the error, so checks in flight would wait
 * for their timeout and the connection would never be seen to be down. This
 * one lets hiredis read it.
 */
struct poll_events {
    redisAsyncContext *ac; /* NULL once hiredis has let go */
    uv_poll_t poll;
    int events;
};

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct poll_events *p = h->data;
    if (status < 0) {
        /* A read now fails with the error (or finds the connect failed) and
         * hiredis disconnects. Should it not, polling resumes. */
        redisAsyncHandleRead(p->ac);
        if (p->ac && p->events) uv_poll_start(&p->poll, p->events, on_poll);
        return;
    }
    if (p->ac && (events & UV_READABLE)) redisAsyncHandleRead(p->ac);
    if (p->ac && (events & UV_WRITABLE)) redisAsyncHandleWrite(p->ac);
}

static void update(struct poll_events *p, int add, int del)
{
    p->events = (p->events | add) & ~del;
    if (p->events)
        uv_poll_start(&p->poll, p->events, on_poll);
    else
        uv_poll_stop(&p->poll);
}

static void add_read(void *d)
{
    update(d, UV_READABLE, 0);
}

static void del_read(void *d)
{
    update(d, 0, UV_READABLE);
}

static void add_write(void *d)
{
    update(d, UV_WRITABLE, 0);
}

static void del_write(void *d)
{
    update(d, 0, UV_WRITABLE);
}

static void on_poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void cleanup(void *d)
{
    struct poll_events *p = d;
    p->ac = NULL;
    uv_close((uv_handle_t *)&p->poll, on_poll_closed);
}

static int attach(redisAsyncContext *ac, uv_loop_t *loop)
{
    struct poll_events *p = calloc(1, sizeof(*p));
    if (p == NULL) return -1;
    if (uv_poll_init(loop, &p->poll, ac->c.fd) != 0) {
        free(p);
        return -1;
    }
    p->ac = ac;
    p->poll.data = p;
    ac->ev.data = p;
    ac->ev.addRead = add_read;
    ac->ev.delRead = del_read;
    ac->ev.addWrite = add_write;
    ac->ev.delWrite = del_write;
    ac->ev.cleanup = cleanup;
    return 0;
}

/* --- the connection --------------------------------------------------------------- */

static void connect_now(struct lv_redis *r);
static void schedule_reconnect(struct lv_redis *r);

static void on_retry(uv_timer_t *t)
{
    connect_now(t->data);
}

/* A connect that neither succeeds nor fails (a peer that drops SYNs, a
 * server that never answers) is given up on after 500 ms. */
static void on_connect_timeout(uv_timer_t *t)
{
    struct lv_redis *r = t->data;
    if (r->state != C_CONNECTING || r->ac == NULL) return;
    redisAsyncContext *ac = r->ac;
    r->ac = NULL;
    r->state = C_DOWN;
    redisAsyncFree(ac);
    never_connected(r, "connect timed out");
    schedule_reconnect(r);
}

static void schedule_reconnect(struct lv_redis *r)
{
    if (r->closing) return;
    uv_timer_start(&r->retry, on_retry, r->backoff, 0);
    r->backoff = r->backoff < 2000 ? r->backoff * 2 : 2000;
}

static void on_script(redisAsyncContext *ac, void *reply, void *privdata)
{
    (void)ac;
    struct lv_redis *r = privdata;
    redisReply *rep = reply;
    if (rep && rep->type == REDIS_REPLY_STRING && rep->len == 40) {
        memcpy(r->sha, rep->str, 40);
        r->sha[40] = '\0';
        r->backoff = 100;
        set_up(r, true);
        r->state = C_UP;
        return;
    }
    if (rep && rep->type == REDIS_REPLY_ERROR)
        lv_log_ratelimited(LV_LOG_WARN, "rate limit store: redis refused the script: %s", rep->str);
    if (r->ac) redisAsyncDisconnect(r->ac);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    struct lv_redis *r = ac->data;
    lv_debug("rate limit store: connect %s", status == REDIS_OK ? "ok" : ac->errstr);
    uv_timer_stop(&r->retry);
    if (status != REDIS_OK) {
        never_connected(r, ac->errstr);
        r->ac = NULL; /* hiredis frees a context that failed to connect */
        r->state = C_DOWN;
        schedule_reconnect(r);
        return;
    }
    r->state = C_LOADING;
    if (r->password) redisAsyncCommand(r->ac, NULL, NULL, "AUTH %s", r->password);
    redisAsyncCommand(r->ac, on_script, r, "SCRIPT LOAD %s", script);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    struct lv_redis *r = ac->data;
    r->ac = NULL;
    if (r->state != C_UP && !r->closing) never_connected(r, ac->errstr[0] ? ac->errstr : "closed");
    set_up(r, false);
    r->state = C_DOWN;
    if (r->closing) return;
    schedule_reconnect(r);
}

static void connect_now(struct lv_redis *r)
{
    lv_debug("rate limit store: connecting to %s:%d%s", r->host, r->port, r->ac ? " (busy)" : "");
    if (r->closing || r->ac) return;
    redisAsyncContext *ac = redisAsyncConnect(r->host, r->port);
    if (ac == NULL || ac->err) {
        never_connected(r, ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    if (attach(ac, r->loop) != 0) {
        redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = C_CONNECTING;
    uv_timer_start(&r->retry, on_connect_timeout, 500, 0);
}

struct lv_redis *lv_redis_create(uv_loop_t *loop, const struct lv_rate_cfg *cfg,
                                 struct lv_redis_shared *shared)
{
    struct lv_redis *r = calloc(1, sizeof(*r));
    if (r == NULL) return NULL;
    r->loop = loop;
    r->shared = shared;
    r->timeout = cfg->redis_timeout;
    r->backoff = 100;
    lv_list_init(&r->calls);
    lv_addr_ip((const struct sockaddr *)&cfg->redis.addr, r->host, sizeof(r->host));
    const struct sockaddr *sa = (const struct sockaddr *)&cfg->redis.addr;
    r->port = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                              : ((const struct sockaddr_in *)sa)->sin_port);
    r->password = cfg->redis_password ? strdup(cfg->redis_password) : NULL;
    uv_timer_init(loop, &r->timer);
    uv_timer_init(loop, &r->retry);
    r->timer.data = r->retry.data = r;
    r->handles = 2;
    connect_now(r);
    return r;
}

bool lv_redis_same(const struct lv_redis *r, const struct lv_rate_cfg *cfg)
{
    char host[64];
    lv_addr_ip((const struct sockaddr *)&cfg->redis.addr, host, sizeof(host));
    const struct sockaddr *sa = (const struct sockaddr *)&cfg->redis.addr;
    int port = ntohs(sa->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)sa)->sin6_port
                                               : ((const struct sockaddr_in *)sa)->sin_port);
    const char *pw = cfg->redis_password;
    bool same_pw =
        (pw == NULL && r->password == NULL) || (pw && r->password && strcmp(pw, r->password) == 0);
    return strcmp(host, r->host) == 0 && port == r->port && same_pw &&
           r->timeout == cfg->redis_timeout;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct lv_redis *r = h->data;
    if (--r->handles > 0) return;
    free(r->password);
    free(r);
}

void lv_redis_close(struct lv_redis *r)
{
    if (r == NULL || r->closing) return;
    r->closing = true;
    /* Pending checks fail now; hiredis then calls each with a NULL reply. */
    struct lv_list *it;
    lv_list_foreach(it, &r->calls)
    {
        deliver(call_of(it), UV_ECANCELED, NULL);
    }
    /* redisAsyncFree answers the outstanding commands (NULL replies) at
     * once, so nothing refers to r after this. */
    if (r->ac) redisAsyncFree(r->ac);
    r->ac = NULL;
    set_up(r, false);
    uv_close((uv_handle_t *)&r->timer, on_handle_closed);
    uv_close((uv_handle_t *)&r->retry, on_handle_closed);
}
