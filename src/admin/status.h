/*
 * The /backends/health document: every backend of the current
 * configuration with its operator state, health, breaker, traffic and
 * recent latency (docs/admin-api.md).
 */
#ifndef LV_ADMIN_STATUS_H
#define LV_ADMIN_STATUS_H

struct lv_proxy;
struct lv_history;
struct lv_strbuf;

/* Writes the document for px's current generation. Each backend's "state"
 * and "usable" come from one verdict (lv_eligible_verdict), so they cannot
 * disagree. */
void lv_admin_backends_json(struct lv_strbuf *sb, struct lv_proxy *px, struct lv_history *hist);

#endif
