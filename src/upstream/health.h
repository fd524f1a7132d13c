/*
 * Health thresholds of one backend, as HAProxy's rise/fall: a healthy
 * backend becomes unhealthy after `fall` consecutive failed checks, an
 * unhealthy one healthy after `rise` consecutive passes. Pure bookkeeping;
 * the checks themselves are made by upstream/checker.c.
 */
#ifndef LV_UPSTREAM_HEALTH_H
#define LV_UPSTREAM_HEALTH_H

#include <stdbool.h>
#include <stdint.h>

struct lv_health {
    bool healthy;
    uint32_t ok_streak;
    uint32_t fail_streak;
};

/* Starts healthy: a backend is innocent until checks say otherwise. */
void lv_health_init(struct lv_health *h);

/* Records a check result; returns true if `healthy` changed. */
bool lv_health_report(struct lv_health *h, bool ok, uint32_t rise, uint32_t fall);

/* Unhealthy, but its last check passed: on its way back (rise not yet
 * reached). Such a backend is the last resort when none is usable. */
bool lv_health_rising(const struct lv_health *h);

#endif
