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
    size_t cap = (size_t)((uint64_t)n * cfg->max_ejection_percent / 100);
    if (cap < 1) cap = 1;
    if (cap > n - 1) cap = n - 1;
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
