/*
 * The /backends/health document: every backend of the current
 * configuration with its operator state, health, breaker, traffic and
 * recent latency (docs/admin-api.md).
 */
#ifndef LV_ADMIN_STATUS_H
#define LV_ADMIN_STATUS_H

#include <stdint.h>

struct lv_proxy;
struct lv_history;
struct lv_strbuf;
struct lv_backend;
struct lv_breaker_cfg;

void lv_admin_backends_json(struct lv_strbuf *sb, struct lv_proxy *px, struct lv_history *hist);

/* One word for a backend's state, the first that applies: "disabled",
 * "draining", "open", "half_open", "unhealthy", "ok". */
const char *lv_admin_backend_state(const struct lv_backend *b, const struct lv_breaker_cfg *bc,
                                   uint64_t now);

#endif
