/* Rise/fall thresholds. */
#include "upstream/health.h"

void lv_health_init(struct lv_health *h)
{
    h->healthy = true;
    h->ok_streak = 0;
    h->fail_streak = 0;
}

bool lv_health_report(struct lv_health *h, bool ok, uint32_t rise, uint32_t fall)
{
    if (ok) {
        h->fail_streak = 0;
        h->ok_streak++;
        if (!h->healthy && h->ok_streak >= rise) {
            h->healthy = true;
            return true;
        }
    } else {
        h->ok_streak = 0;
        h->fail_streak++;
        if (h->healthy && h->fail_streak >= fall) {
            h->healthy = false;
            return true;
        }
    }
    return false;
}

bool lv_health_rising(const struct lv_health *h)
{
    return !h->healthy && h->ok_streak > 0;
}
