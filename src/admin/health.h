/*
 * levee's health as its clients' load balancers see it: the `/health`
 * document (the spec's shape), from the backends' verdicts
 * (upstream/eligible.h). Safe from any thread: it reads the backends'
 * atomics.
 */
#ifndef LV_ADMIN_HEALTH_H
#define LV_ADMIN_HEALTH_H

#include <stdint.h>

struct lv_strbuf;
struct lv_gen;

/* Writes the /health JSON for g; returns the HTTP status to answer with:
 * 200 (healthy or degraded) or 503 (no backend can serve). */
int lv_admin_health_json(struct lv_strbuf *sb, const struct lv_gen *g, uint64_t start_ms);

#endif
