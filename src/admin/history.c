/*
 * The per-second sampler. Counters are cumulative; a sample is the
 * difference from the previous one. Backends are tracked by id, so their
 * history survives a reload that keeps them.
 */
#include "admin/history.h"

#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/routes.h"
#include "core/clock.h"
#include "core/stats.h"
#include "core/strbuf.h"
#include "proxy/proxy.h"
#include "upstream/backend.h"
#include "upstream/eligible.h"
#include "config/gen.h"

#define LAT_SECONDS 60
#define ID_MAX 64

struct point_backend {
    char id[ID_MAX];
    float rps, errors;
    const char *state; /* static string */
};

struct point {
    uint64_t t; /* wall ms */
    float rps, error_rate, p50, p99;
    size_t nb;
    struct point_backend *b;
};

/* Cumulative counts of one backend at the previous tick, and the last
 * minute of its per-second latency buckets. */
struct track {
    char id[ID_MAX];
    uint64_t responses, errors;
    uint64_t lat[LV_LAT_BUCKETS];
    uint64_t ring[LAT_SECONDS][LV_LAT_BUCKETS];
};

struct lv_history {
    uv_timer_t timer; /* first: freed through its close callback */
    struct lv_proxy *px;
    struct point points[LV_HISTORY_POINTS];
    size_t head, count;
    unsigned tick;
    bool primed;
    uint64_t requests, errors5xx;
    uint64_t lat[LV_LAT_BUCKETS];
    struct track *tracks;
    size_t ntracks;
};

static struct track *track_of(struct lv_history *h, const char *id)
{
    for (size_t i = 0; i < h->ntracks; i++) {
        if (strcmp(h->tracks[i].id, id) == 0) return &h->tracks[i];
    }
    struct track *t = realloc(h->tracks, (h->ntracks + 1) * sizeof(*t));
    if (t == NULL) return NULL;
    h->tracks = t;
    t = &h->tracks[h->ntracks++];
    memset(t, 0, sizeof(*t));
    snprintf(t->id, sizeof(t->id), "%s", id);
    return t;
}

static uint64_t sum_range(const atomic_uint_fast64_t *c, unsigned from, unsigned to)
{
    uint64_t n = 0;
    for (unsigned i = from; i < to; i++)
        n += lv_stat_read(&c[i]);
    return n;
}

static void sample(uv_timer_t *timer)
{
    struct lv_history *h = (struct lv_history *)timer;
    struct lv_proxy *px = h->px;
    const struct lv_gen *g = px->gen;
    uint64_t now = lv_clock_ms();
    unsigned slot = h->tick % LAT_SECONDS;
    h->tick++;

    struct lv_proxy_stats st;
    lv_proxy_stats_sum(px, &st);
    uint64_t requests = lv_stat_read(&st.w.requests), lat[LV_LAT_BUCKETS];
    uint64_t e5 = sum_range(st.w.status, 500, 600);
    for (unsigned i = 0; i < LV_LAT_BUCKETS; i++)
        lat[i] = lv_stat_read(&st.w.duration.b[i]);

    struct point *pt = &h->points[h->head];
    free(pt->b);
    memset(pt, 0, sizeof(*pt));
    pt->t = lv_clock_wall_ms();
    pt->b = calloc(g->nbackends + 1, sizeof(*pt->b));
    for (size_t i = 0; i < g->nbackends; i++) {
        const struct lv_backend *b = g->backends[i];
        struct track *t = track_of(h, b->id);
        if (t == NULL) continue;
        uint64_t resp = 0, errs = 0, blat[LV_LAT_BUCKETS] = {0};
        for (unsigned w = 0; w < b->nworkers; w++) {
            const struct lv_backend_wstats *ws = &b->wstats[w];
            resp += sum_range(ws->status, 0, LV_STATUS_CODES);
            e5 += sum_range(ws->status, 500, 600);
            errs += lv_stat_read(&ws->errors);
            for (unsigned k = 0; k < LV_LAT_BUCKETS; k++)
                blat[k] += lv_stat_read(&ws->latency.b[k]);
        }
        for (unsigned k = 0; k < LV_LAT_BUCKETS; k++) {
            t->ring[slot][k] = blat[k] >= t->lat[k] ? blat[k] - t->lat[k] : 0;
            t->lat[k] = blat[k];
        }
        if (pt->b && h->primed) {
            struct point_backend *pb = &pt->b[pt->nb++];
            snprintf(pb->id, sizeof(pb->id), "%s", b->id);
            pb->rps = (float)(resp >= t->responses ? resp - t->responses : 0);
            pb->errors = (float)(errs >= t->errors ? errs - t->errors : 0);
            const struct lv_backend_pool_cfg *pool = lv_gen_backend_pool(g, i);
            pb->state = lv_verdict_state(
                lv_eligible_verdict(b, pool ? &pool->breaker : &g->cfg->breaker, now));
        }
        t->responses = resp;
        t->errors = errs;
    }
    if (h->primed) {
        uint64_t dreq = requests - h->requests;
        uint64_t delta[LV_LAT_BUCKETS];
        for (unsigned i = 0; i < LV_LAT_BUCKETS; i++)
            delta[i] = lat[i] - h->lat[i];
        pt->rps = (float)dreq;
        pt->error_rate = dreq ? (float)(e5 - h->errors5xx) / (float)dreq : 0;
        pt->p50 = (float)lv_lat_quantile(delta, 0.5);
        pt->p99 = (float)lv_lat_quantile(delta, 0.99);
        h->head = (h->head + 1) % LV_HISTORY_POINTS;
        if (h->count < LV_HISTORY_POINTS) h->count++;
    }
    h->primed = true;
    h->requests = requests;
    h->errors5xx = e5;
    memcpy(h->lat, lat, sizeof(lat));
}

struct lv_history *lv_history_start(uv_loop_t *loop, struct lv_proxy *px)
{
    struct lv_history *h = calloc(1, sizeof(*h));
    if (h == NULL) return NULL;
    h->px = px;
    uv_timer_init(loop, &h->timer);
    sample(&h->timer);
    uv_timer_start(&h->timer, sample, 1000, 1000);
    return h;
}

static void on_closed(uv_handle_t *handle)
{
    struct lv_history *h = (struct lv_history *)handle;
    for (size_t i = 0; i < LV_HISTORY_POINTS; i++)
        free(h->points[i].b);
    free(h->tracks);
    free(h);
}

void lv_history_stop(struct lv_history *h)
{
    if (h) uv_close((uv_handle_t *)&h->timer, on_closed);
}

void lv_history_json(struct lv_history *h, struct lv_strbuf *sb)
{
    lv_strbuf_puts(sb, "{\"interval_ms\":1000,\"points\":[");
    size_t start = (h->head + LV_HISTORY_POINTS - h->count) % LV_HISTORY_POINTS;
    for (size_t k = 0; k < h->count; k++) {
        const struct point *p = &h->points[(start + k) % LV_HISTORY_POINTS];
        lv_strbuf_printf(sb,
                         "%s{\"t\":%llu,\"rps\":%.1f,\"error_rate\":%.4f,\"p50_ms\":%.3f,"
                         "\"p99_ms\":%.3f,\"backends\":{",
                         k ? "," : "", (unsigned long long)p->t, p->rps, p->error_rate, p->p50,
                         p->p99);
        for (size_t i = 0; i < p->nb; i++) {
            if (i) lv_strbuf_puts(sb, ",");
            lv_strbuf_json_str(sb, p->b[i].id);
            lv_strbuf_printf(sb, ":{\"rps\":%.1f,\"errors\":%.1f,\"state\":\"%s\"}", p->b[i].rps,
                             p->b[i].errors, p->b[i].state);
        }
        lv_strbuf_puts(sb, "}}");
    }
    lv_strbuf_puts(sb, "]}\n");
}

void lv_history_backend_latency(struct lv_history *h, const char *id, double *p50, double *p99)
{
    *p50 = *p99 = 0;
    if (h == NULL) return;
    for (size_t i = 0; i < h->ntracks; i++) {
        const struct track *t = &h->tracks[i];
        if (strcmp(t->id, id) != 0) continue;
        uint64_t sum[LV_LAT_BUCKETS] = {0};
        for (unsigned s = 0; s < LAT_SECONDS; s++) {
            for (unsigned k = 0; k < LV_LAT_BUCKETS; k++)
                sum[k] += t->ring[s][k];
        }
        *p50 = lv_lat_quantile(sum, 0.5);
        *p99 = lv_lat_quantile(sum, 0.99);
        return;
    }
}
