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

/* health_check: in the configuration (the probes of upstream/checker.h, and
 * the thresholds here). Durations in ms. */
struct lv_health_check_cfg {
    char *path;
    uint64_t interval;
    uint64_t timeout;
    uint64_t unhealthy_threshold;    /* fall */
    uint64_t healthy_threshold;      /* rise */
    uint32_t status_min, status_max; /* expected status range */
    uint64_t slow_start;             /* ramp-up after recovery, ms; 0: none */
};

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
