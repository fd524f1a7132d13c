/* Outlier ejection by latency and timeouts: see outlier.h. */
#include "upstream/outlier.h"

#include <stdlib.h>

const char *lv_outlier_why_name(enum lv_outlier_why why)
{
    switch (why) {
    case LV_OUTLIER_NONE: return "-";
    case LV_OUTLIER_TIMEOUTS: return "timeouts";
    case LV_OUTLIER_SLOW: return "slow";
    }
    return "-";
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..m) (sorted) without one element equal to x (x is
 * in v). m >= 2. */
static double median_without(const double *v, size_t m, double x)
{
    size_t p = 0;
    while (p < m && v[p] != x)
        p++;
    size_t k = m - 1; /* the others */
#define AT(j) (v[(j) < p ? (j) : (j) + 1])
    double med = k % 2 ? AT(k / 2) : (AT(k / 2 - 1) + AT(k / 2)) / 2;
#undef AT
    return med;
}

static bool judged(const struct lv_outlier_cfg *cfg, const struct lv_outlier_stat *s)
{
    uint64_t tries = s->answered + s->timeouts;
    return s->in && tries > 0 && tries >= cfg->minimum_requests;
}

static double share(const struct lv_outlier_stat *s)
{
    return (double)s->timeouts / (double)(s->answered + s->timeouts);
}

struct cand {
    size_t i;
    enum lv_outlier_why why;
    double score;
};

/* Timeout outliers first, the worst first; then the slow ones. */
static int cmp_cand(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->why != y->why) return x->why == LV_OUTLIER_TIMEOUTS ? -1 : 1;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

size_t lv_outlier_cap(const struct lv_outlier_cfg *cfg, size_t n)
{
    if (n < 2) return 0;
    size_t cap = (size_t)((uint64_t)n * cfg->max_ejection_percent / 100);
    if (cap < 1) cap = 1;
    if (cap > n - 1) cap = n - 1;
    return cap;
}

size_t lv_outlier_sweep(const struct lv_outlier_cfg *cfg, const struct lv_outlier_stat *st,
                        size_t n, enum lv_outlier_why *why)
{
    for (size_t i = 0; i < n; i++)
        why[i] = LV_OUTLIER_NONE;
    if (!cfg->enabled || n < 2) return 0;

    /* The cap first: nothing to judge if it leaves no room. */
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        out += !st[i].in;
    size_t cap = lv_outlier_cap(cfg, n);
    if (out >= cap) return 0;

    double *shares = malloc(n * sizeof(*shares));
    double *lats = malloc(n * sizeof(*lats));
    struct cand *cands = malloc(n * sizeof(*cands));
    size_t ns = 0, nl = 0, nc = 0;
    if (shares == NULL || lats == NULL || cands == NULL) goto done; /* no ejection: safe */
    for (size_t i = 0; i < n; i++) {
        if (!judged(cfg, &st[i])) continue;
        shares[ns++] = share(&st[i]);
        if (st[i].latency > 0) lats[nl++] = (double)st[i].latency;
    }
    qsort(shares, ns, sizeof(*shares), cmp_double);
    qsort(lats, nl, sizeof(*lats), cmp_double);

    for (size_t i = 0; i < n; i++) {
        if (!judged(cfg, &st[i])) continue;
        double t = share(&st[i]);
        if (ns >= 2) {
            double m = median_without(shares, ns, t);
            if (t >= cfg->factor * m && t - m >= cfg->timeout_floor && t > m) {
                cands[nc++] = (struct cand){i, LV_OUTLIER_TIMEOUTS, t - m};
                continue;
            }
        }
        double l = (double)st[i].latency;
        if (l > 0 && nl >= 2) {
            double m = median_without(lats, nl, l);
            if (l >= cfg->factor * m && l - m >= (double)cfg->latency_floor && l > m)
                cands[nc++] = (struct cand){i, LV_OUTLIER_SLOW, l / (m > 1 ? m : 1)};
        }
    }
    qsort(cands, nc, sizeof(*cands), cmp_cand);
    if (nc > cap - out) nc = cap - out;
    for (size_t k = 0; k < nc; k++)
        why[cands[k].i] = cands[k].why;
done:
    free(shares);
    free(lats);
    free(cands);
    return nc;
}

int lv_outlier_run_init(struct lv_outlier_run *r, size_t n)
{
    r->n = n;
    r->next = 0;
    r->st = calloc(n + 1, sizeof(*r->st));
    r->last = calloc(n + 1, sizeof(*r->last));
    r->why = calloc(n + 1, sizeof(*r->why));
    if (r->st == NULL || r->last == NULL || r->why == NULL) {
        lv_outlier_run_dispose(r);
        return -1;
    }
    return 0;
}

void lv_outlier_run_dispose(struct lv_outlier_run *r)
{
    free(r->st);
    free(r->last);
    free(r->why);
    r->st = NULL;
    r->last = NULL;
    r->why = NULL;
    r->n = 0;
}

void lv_outlier_count(struct lv_outlier_run *r, size_t i, bool timed_out)
{
    if (i >= r->n) return;
    if (timed_out)
        r->st[i].timeouts++;
    else
        r->st[i].answered++;
}

bool lv_outlier_due(struct lv_outlier_run *r, const struct lv_outlier_cfg *cfg, uint64_t now)
{
    if (!cfg->enabled || r->n == 0) return false;
    uint64_t interval = cfg->interval ? cfg->interval : 1;
    if (r->next == 0) {
        r->next = now + interval;
        return false;
    }
    if (now < r->next) return false;
    /* Counts older than one interval are not this interval's: after a
     * quiet spell the clock restarts from now. */
    r->next = now + interval;
    return true;
}

size_t lv_outlier_run_sweep(struct lv_outlier_run *r, const struct lv_outlier_cfg *cfg)
{
    size_t k = lv_outlier_sweep(cfg, r->st, r->n, r->why);
    for (size_t i = 0; i < r->n; i++) {
        r->last[i] = r->st[i];
        r->st[i] = (struct lv_outlier_stat){0};
    }
    return k;
}
