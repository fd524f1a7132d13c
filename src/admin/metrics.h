/*
 * /metrics: every counter levee keeps, in the Prometheus text format
 * (HELP and TYPE lines, base units, `_total` counters), summed over the
 * workers at scrape time. README.md lists them.
 */
#ifndef LV_ADMIN_METRICS_H
#define LV_ADMIN_METRICS_H

struct lv_strbuf;
struct lv_proxy;

void lv_metrics_render(struct lv_strbuf *sb, struct lv_proxy *px);

#endif
