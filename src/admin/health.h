/*
 * levee's health as its clients' load balancers and its operators see it:
 * the `/health` document (the spec's shape), and whether each backend can
 * take a request now. Safe from any thread: it reads the backends' atomics.
 */
#ifndef LV_ADMIN_HEALTH_H
#define LV_ADMIN_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lv_strbuf;
struct lv_gen;

/* Can backend i of generation g take a new request now? */
bool lv_admin_backend_usable(const struct lv_gen *g, size_t i, uint64_t now);

/* Writes the /health JSON for g; returns the HTTP status to answer with:
 * 200 (healthy or degraded) or 503 (no backend can serve). */
int lv_admin_health_json(struct lv_strbuf *sb, const struct lv_gen *g, uint64_t start_ms);

#endif
