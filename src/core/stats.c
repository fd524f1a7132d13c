/* Latency buckets: lookup and quantiles. */
#include "core/stats.h"

const uint32_t lv_lat_bounds_us[LV_LAT_BUCKETS - 1] = {
    100,     150,     200,     300,      500,      750,      1000,     1500,     2000,
    3000,    5000,    7500,    10000,    15000,    20000,    30000,    50000,    75000,
    100000,  150000,  200000,  300000,   500000,   750000,   1000000,  1500000,  2000000,
    3000000, 5000000, 7500000, 10000000, 15000000, 20000000, 30000000, 60000000,
};

unsigned lv_lat_bucket(uint64_t us)
{
    unsigned lo = 0, hi = LV_LAT_BUCKETS - 1;
    while (lo < hi) { /* first bound >= us */
        unsigned mid = (lo + hi) / 2;
        if (us <= lv_lat_bounds_us[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

double lv_lat_quantile(const uint64_t counts[LV_LAT_BUCKETS], double q)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < LV_LAT_BUCKETS; i++)
        total += counts[i];
    if (total == 0) return 0;
    double rank = q * (double)total;
    uint64_t seen = 0;
    for (unsigned i = 0; i < LV_LAT_BUCKETS; i++) {
        if (counts[i] == 0) continue;
        if ((double)(seen + counts[i]) >= rank) {
            double lo = i == 0 ? 0 : lv_lat_bounds_us[i - 1];
            double hi = i < LV_LAT_BUCKETS - 1 ? lv_lat_bounds_us[i] : lo * 2;
            double f = ((rank - (double)seen) / (double)counts[i]);
            if (f < 0) f = 0;
            return (lo + (hi - lo) * f) / 1000.0;
        }
        seen += counts[i];
    }
    return (double)lv_lat_bounds_us[LV_LAT_BUCKETS - 2] / 1000.0;
}
