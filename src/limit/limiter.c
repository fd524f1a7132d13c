/* The local rate limiter and the RateLimit header fields. */
#include "limit/limiter.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lv_rate_cfg_dispose(struct lv_rate_cfg *cfg)
{
    free(cfg->key_header);
    free(cfg->trusted);
    free(cfg->redis.address);
    free(cfg->redis_prefix);
    free(cfg->redis_password);
    memset(cfg, 0, sizeof(*cfg));
}

void lv_limiter_params(const struct lv_rate_cfg *cfg, enum lv_limit_scope scope,
                       struct lv_limit_cfg *out)
{
    double rate = scope == LV_SCOPE_GLOBAL ? cfg->rate : cfg->client_rate;
    uint64_t burst = scope == LV_SCOPE_GLOBAL ? cfg->burst : cfg->client_burst;
    out->rate = rate;
    out->window = cfg->window * 1000;
    if (cfg->algorithm == LV_LIMIT_SLIDING_WINDOW) {
        /* A sliding window allows rate × window requests per window. */
        double n = rate * (double)cfg->window / 1000.0;
        out->burst = n < 1 ? 1 : (uint32_t)n;
    } else {
        out->burst = burst > UINT32_MAX ? UINT32_MAX : (uint32_t)burst;
    }
}

struct lv_limiter *lv_limiter_create(const struct lv_rate_cfg *cfg)
{
    struct lv_limiter *l = calloc(1, sizeof(*l));
    if (l == NULL) return NULL;
    atomic_init(&l->refs, 1);
    l->algorithm = cfg->algorithm;
    l->max_clients = cfg->max_clients;
    pthread_mutex_init(&l->global_lock, NULL);
    l->clients = lv_ratetable_create(cfg->max_clients);
    if (l->clients == NULL) {
        pthread_mutex_destroy(&l->global_lock);
        free(l);
        return NULL;
    }
    return l;
}

struct lv_limiter *lv_limiter_reuse(struct lv_limiter *prev, const struct lv_rate_cfg *cfg)
{
    if (prev && prev->algorithm == cfg->algorithm && prev->max_clients == cfg->max_clients) {
        lv_limiter_ref(prev);
        return prev;
    }
    return lv_limiter_create(cfg);
}

void lv_limiter_ref(struct lv_limiter *l)
{
    atomic_fetch_add(&l->refs, 1);
}

void lv_limiter_unref(struct lv_limiter *l)
{
    if (l == NULL || atomic_fetch_sub(&l->refs, 1) != 1) return;
    lv_ratetable_destroy(l->clients);
    pthread_mutex_destroy(&l->global_lock);
    free(l);
}

void lv_limiter_check(struct lv_limiter *l, const struct lv_rate_cfg *cfg, const char *key,
                      size_t len, uint64_t now, struct lv_limit_verdict *v)
{
    *v = (struct lv_limit_verdict){.allowed = true};
    struct lv_limit_cfg p;
    if (cfg->client_rate > 0 && len > 0) {
        lv_limiter_params(cfg, LV_SCOPE_CLIENT, &p);
        lv_ratetable_take(l->clients, key, len, cfg->algorithm, &p, now, &v->r[LV_SCOPE_CLIENT]);
        v->has[LV_SCOPE_CLIENT] = true;
        if (!v->r[LV_SCOPE_CLIENT].allowed) {
            v->allowed = false;
            v->denied_by = LV_SCOPE_CLIENT;
            return;
        }
    }
    if (cfg->rate > 0) {
        lv_limiter_params(cfg, LV_SCOPE_GLOBAL, &p);
        struct lv_limit_result *r = &v->r[LV_SCOPE_GLOBAL];
        if (cfg->algorithm == LV_LIMIT_SLIDING_WINDOW) {
            pthread_mutex_lock(&l->global_lock);
            lv_window_take(&l->global_win, &p, now, r);
            pthread_mutex_unlock(&l->global_lock);
        } else {
            lv_bucket_take(&l->global_tat, &p, now, r);
        }
        v->has[LV_SCOPE_GLOBAL] = true;
        if (!r->allowed) {
            v->allowed = false;
            v->denied_by = LV_SCOPE_GLOBAL;
        }
    }
}

static uint64_t secs_up(uint64_t us)
{
    return (us + 999999) / 1000000;
}

size_t lv_limiter_headers(const struct lv_rate_cfg *cfg, const struct lv_limit_verdict *v,
                          bool policy, char *out, size_t cap)
{
    static const char *const names[LV_SCOPE_COUNT] = {"global", "client"};
    size_t n = 0;
    int m;
    if (cap) out[0] = '\0';
    if (!v->has[LV_SCOPE_GLOBAL] && !v->has[LV_SCOPE_CLIENT]) return 0; /* no empty lists */
    if (policy) {
        m = snprintf(out, cap, "RateLimit-Policy: ");
        n += m > 0 ? (size_t)m : 0;
        bool first = true;
        for (int s = LV_SCOPE_COUNT - 1; s >= 0; s--) {
            if (!v->has[s] || n >= cap) continue;
            struct lv_limit_cfg p;
            lv_limiter_params(cfg, (enum lv_limit_scope)s, &p);
            /* w: the window the quota q is for (a full bucket refills in burst/rate s). */
            double w = cfg->algorithm == LV_LIMIT_SLIDING_WINDOW ? (double)cfg->window / 1000.0
                                                                 : (double)p.burst / p.rate;
            uint64_t ws = w < 1 ? 1 : w > 1e15 ? 999999999999999ull : (uint64_t)ceil(w);
            m = snprintf(out + n, cap - n, "%s\"%s\";q=%u;w=%" PRIu64, first ? "" : ", ", names[s],
                         p.burst, ws);
            n += m > 0 ? (size_t)m : 0;
            first = false;
        }
        if (n < cap) n += (size_t)snprintf(out + n, cap - n, "\r\n");
    }
    if (n >= cap) return cap ? cap - 1 : 0;
    m = snprintf(out + n, cap - n, "RateLimit: ");
    n += m > 0 ? (size_t)m : 0;
    bool first = true;
    for (int s = LV_SCOPE_COUNT - 1; s >= 0; s--) {
        if (!v->has[s] || n >= cap) continue;
        const struct lv_limit_result *r = &v->r[s];
        m = snprintf(out + n, cap - n, "%s\"%s\";r=%u;t=%" PRIu64, first ? "" : ", ", names[s],
                     r->remaining, secs_up(r->reset_us));
        n += m > 0 ? (size_t)m : 0;
        first = false;
    }
    if (n < cap) n += (size_t)snprintf(out + n, cap - n, "\r\n");
    return n < cap ? n : cap - 1;
}
