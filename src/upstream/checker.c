/*
 * Active health checks, run on the main thread's loop, off the request
 * path. Each checked backend has a probe that, every `interval` (+-10%
 * jitter, so that checks of many backends do not go out in lockstep),
 * connects, sends `GET path`, reads the status line and closes. The result
 * goes through rise/fall thresholds (upstream/health.c); a change of
 * verdict is published to the workers through the backend's atomics and
 * logged. A pass also lets an open circuit breaker probe at once: the
 * backend is back, no need to wait out the open period.
 */
#include "upstream/checker.h"

#include <assert.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/list.h"
#include "core/log.h"
#include "core/rand.h"
#include "net/sock.h"
#include "upstream/backend.h"
#include "upstream/eligible.h"
#include "upstream/health.h"

enum probe_state { P_WAITING, P_CONNECTING, P_READING, P_CLOSING };

struct probe {
    struct lv_checker *ck;
    struct lv_backend *b;
    const struct lv_backend_cfg *bc;
    const struct lv_checker_group *grp; /* its pool's settings */
    uv_timer_t timer;
    struct lv_sock sock;
    uv_connect_t creq;
    llhttp_t parser;
    enum probe_state state;
    bool ok;
    bool not_run; /* levee could not even try (no descriptor left): no verdict */
    bool stopping;
    bool timer_open, sock_open;
    unsigned status;
    char why[128]; /* failure reason of the current check */
    size_t reqlen;
    char req[512];
};

struct lv_checker {
    uv_loop_t *loop;
    struct lv_checker_set set; /* read until on_stopped */
    struct lv_sockenv env;
    struct lv_rand rand;
    size_t nprobes;
    size_t open; /* probes not yet fully closed, and the env */
    struct probe *probes;
};

static void schedule(struct probe *p, bool first);

/* --- results ----------------------------------------------------------------------- */

static void record(struct probe *p, bool ok, const char *why)
{
    struct lv_backend *b = p->b;
    const struct lv_health_check_cfg *hc = p->grp->health;
    uint64_t now = lv_clock_ms();
    b->last_check_ms = lv_clock_wall_ms();
    if (ok)
        snprintf(b->last_check, sizeof(b->last_check), "ok (%u)", p->status);
    else if (p->status)
        snprintf(b->last_check, sizeof(b->last_check), "status %u", p->status);
    else
        snprintf(b->last_check, sizeof(b->last_check), "%s", why);
    bool changed = lv_health_report(&b->health, ok, (uint32_t)hc->healthy_threshold,
                                    (uint32_t)hc->unhealthy_threshold);
    bool rising = lv_health_rising(&b->health);
    atomic_store(&b->rising, rising);
    if (ok) atomic_store(&b->last_pass, now ? now : 1);
    /* No answer at all (refused, reset, timed out): it may come back
     * before the next check (revive.h); an answer, even a failing one,
     * says it is there and what it thinks of itself. */
    atomic_store(&b->unreachable, !ok && p->status == 0);
    const struct lv_checker_set *set = &p->ck->set;
    const struct lv_checker_group *g = p->grp;
    if (rising && b->health.ok_streak == 1 &&
        !lv_eligible_any_usable(set->backends + g->first, g->n, g->breaker, now)) {
        /* Nothing else can serve: the first pass makes b the last resort,
         * its open breaker probing at once (upstream/eligible.h). */
        lv_log_limited(LV_LOG_INFO, &b->log_state,
                       "backend %s: passed a check while no backend is usable: taking requests "
                       "as the last resort",
                       b->id);
        lv_breaker_health_passed(&b->breaker, now);
    }
    if (!changed) return;
    atomic_store(&b->healthy, b->health.healthy);
    if (b->health.healthy) {
        lv_log_limited(LV_LOG_INFO, &b->log_state, "backend %s: healthy again (%u passed checks)",
                       b->id, b->health.ok_streak);
        lv_backend_recovered(b, now);
        /* Back from an outage the checks saw: an open breaker may probe at
         * once. (Not on every pass: a backend whose /health is fine while
         * its real traffic fails must stay behind its breaker.) */
        lv_breaker_health_passed(&b->breaker, now);
    } else {
        atomic_store(&b->down_at, now ? now : 1);
        lv_log_limited(LV_LOG_WARN, &b->log_state,
                       "backend %s: unhealthy after %u failed checks (last: %s)", b->id,
                       b->health.fail_streak, why);
    }
}

/* --- one check ----------------------------------------------------------------------- */

static void release(struct lv_checker *ck)
{
    if (--ck->open > 0) return;
    lv_sockenv_dispose(&ck->env);
    void (*on_stopped)(void *) = ck->set.on_stopped;
    void *arg = ck->set.arg;
    free(ck->probes);
    free(ck);
    if (on_stopped) on_stopped(arg);
}

static struct probe *of_sock(struct lv_sock *s)
{
    return lv_container_of(s, struct probe, sock);
}

static void on_sock_closed(struct lv_sock *s)
{
    struct probe *p = of_sock(s);
    p->sock_open = false;
    if (p->stopping) {
        if (!p->timer_open) release(p->ck);
        return;
    }
    if (!p->not_run) record(p, p->ok, p->why);
    schedule(p, false);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct probe *p = h->data;
    p->timer_open = false;
    if (!p->sock_open) release(p->ck);
}

static void finish(struct probe *p, bool ok, const char *why)
{
    if (p->state == P_CLOSING || p->state == P_WAITING) return;
    p->state = P_CLOSING;
    p->ok = ok;
    if (why && why != p->why) snprintf(p->why, sizeof(p->why), "%s", why);
    uv_timer_stop(&p->timer);
    lv_sock_close(&p->sock);
}

static int on_status_head(llhttp_t *ll)
{
    struct probe *p = ll->data;
    p->status = ll->status_code;
    return HPE_PAUSED;
}

static void on_read(struct lv_sock *s, struct lv_buf *b, ssize_t nread)
{
    struct probe *p = of_sock(s);
    if (nread < 0) {
        finish(p, false, nread == UV_EOF ? "closed before answering" : uv_strerror((int)nread));
        return;
    }
    llhttp_errno_t err = llhttp_execute(&p->parser, b->data, (size_t)nread);
    if (err == HPE_PAUSED) {
        const struct lv_health_check_cfg *hc = p->grp->health;
        bool ok = p->status >= hc->status_min && p->status <= hc->status_max;
        finish(p, ok, "unexpected status");
    } else if (err != HPE_OK) {
        finish(p, false, "malformed response");
    }
}

static void on_written(struct lv_sock *s, int status)
{
    if (status < 0) finish(of_sock(s), false, uv_strerror(status));
}

static void send_request(struct probe *p)
{
    p->state = P_READING;
    lv_sock_add(&p->sock, p->req, p->reqlen, NULL);
    if (lv_sock_flush(&p->sock) != 0) finish(p, false, "cannot write");
}

static void on_handshake(struct lv_sock *s, int status)
{
    struct probe *p = of_sock(s);
    if (status != 0) {
        snprintf(p->why, sizeof(p->why), "TLS: %.120s", lv_sock_tls_why(s));
        finish(p, false, p->why);
        return;
    }
    send_request(p);
}

static void on_connect(uv_connect_t *req, int status)
{
    struct probe *p = req->data;
    if (status == UV_ECANCELED || p->state != P_CONNECTING) return;
    if (status < 0) {
        finish(p, false, uv_strerror(status));
        return;
    }
    if (lv_sock_read_start(&p->sock) != 0) {
        finish(p, false, "cannot read");
        return;
    }
    const struct lv_backend_cfg *bc = p->bc;
    if (!bc->tls.enabled) {
        send_request(p);
        return;
    }
    /* Checks of an https backend go over TLS, verified like requests. */
    const char *name = bc->tls.server_name ? bc->tls.server_name : bc->host;
    p->sock.on_handshake = on_handshake;
    if (lv_sock_tls_start(&p->sock, bc->tls_ctx, true, name,
                          bc->tls.insecure_skip_verify ? NULL : name, NULL, NULL) != 0)
        finish(p, false, "TLS: out of memory");
}

static void on_timer(uv_timer_t *t)
{
    struct probe *p = t->data;
    if (p->state != P_WAITING) {
        finish(p, false, "timeout");
        return;
    }
    /* Time for a check. */
    static llhttp_settings_t settings;
    llhttp_settings_init(&settings);
    settings.on_headers_complete = on_status_head;
    llhttp_init(&p->parser, HTTP_RESPONSE, &settings);
    p->parser.data = p;
    p->status = 0;
    p->why[0] = '\0';
    lv_sock_init(&p->ck->env, &p->sock);
    p->sock.on_read = on_read;
    p->sock.on_written = on_written;
    p->sock.on_close = on_sock_closed;
    p->sock_open = true;
    p->creq.data = p;
    p->state = P_CONNECTING;
    int rc =
        uv_tcp_connect(&p->creq, &p->sock.tcp, (const struct sockaddr *)&p->bc->addr, on_connect);
    uv_timer_start(&p->timer, on_timer, p->grp->health->timeout, 0);
    /* Out of descriptors (or memory) is levee's trouble, not the backend's:
     * the check is skipped, not failed. */
    p->not_run = rc == UV_EMFILE || rc == UV_ENFILE || rc == UV_ENOBUFS || rc == UV_ENOMEM;
    if (p->not_run)
        lv_log_limited(LV_LOG_WARN, &p->b->log_conn, "backend %s: health check not run: %s",
                       p->b->id, uv_strerror(rc));
    if (rc != 0) finish(p, false, uv_strerror(rc));
}

static void schedule(struct probe *p, bool first)
{
    p->state = P_WAITING;
    uint64_t interval = p->grp->health->interval;
    double jitter = 0.9 + 0.2 * lv_rand_unit(&p->ck->rand);
    /* The first check goes out soon, spread over a tenth of the interval. */
    uint64_t ms = first ? (uint64_t)((double)interval * 0.1 * lv_rand_unit(&p->ck->rand))
                        : (uint64_t)((double)interval * jitter);
    uv_timer_start(&p->timer, on_timer, ms, 0);
}

/* --- the set of probes ------------------------------------------------------------- */

struct lv_checker *lv_checker_start(uv_loop_t *loop, const struct lv_checker_set *set)
{
    size_t count = 0;
    for (size_t i = 0; i < set->n; i++) {
        if (set->cfgs[i].health_check_enabled) {
            count++;
            continue;
        }
        /* Not checked (any more): nothing can vouch against it. */
        struct lv_backend *b = set->backends[i];
        lv_health_init(&b->health);
        b->last_check_ms = 0;
        b->last_check[0] = '\0';
        atomic_store(&b->healthy, true);
        atomic_store(&b->rising, false);
    }
    if (count == 0) return NULL;
    struct lv_checker *ck = calloc(1, sizeof(*ck));
    if (ck == NULL) return NULL;
    ck->probes = calloc(count, sizeof(*ck->probes));
    if (ck->probes == NULL) {
        free(ck);
        return NULL;
    }
    ck->loop = loop;
    lv_sockenv_init(&ck->env, loop);
    ck->set = *set;
    lv_rand_seed(&ck->rand, lv_clock_ns());
    for (size_t i = 0, gi = 0; i < set->n; i++) {
        const struct lv_backend_cfg *bc = &set->cfgs[i];
        while (gi + 1 < set->ngroups && i >= set->groups[gi].first + set->groups[gi].n)
            gi++;
        assert(gi < set->ngroups && i >= set->groups[gi].first);
        if (!bc->health_check_enabled) continue;
        struct probe *p = &ck->probes[ck->nprobes++];
        p->ck = ck;
        p->b = set->backends[i];
        p->bc = bc;
        p->grp = &set->groups[gi];
        int len = snprintf(p->req, sizeof(p->req),
                           "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: levee-health-check\r\n"
                           "Connection: close\r\n\r\n",
                           p->grp->health->path, bc->authority);
        p->reqlen = len > 0 && (size_t)len < sizeof(p->req) ? (size_t)len : 0;
        uv_timer_init(loop, &p->timer);
        p->timer.data = p;
        p->timer_open = true;
        schedule(p, true);
    }
    ck->open = ck->nprobes + 1; /* + the env's handle */
    return ck;
}

static void on_env_closed(uv_handle_t *h)
{
    struct lv_checker *ck = lv_container_of(h, struct lv_checker, env.idle);
    release(ck);
}

void lv_checker_stop(struct lv_checker *ck)
{
    if (ck == NULL) return;
    for (size_t i = 0; i < ck->nprobes; i++) {
        struct probe *p = &ck->probes[i];
        p->stopping = true;
        uv_timer_stop(&p->timer);
        /* A closing connection finishes closing on its own. */
        if (p->sock_open && p->state != P_CLOSING) lv_sock_close(&p->sock);
        uv_close((uv_handle_t *)&p->timer, on_timer_closed);
    }
    lv_sockenv_close(&ck->env, on_env_closed);
}
