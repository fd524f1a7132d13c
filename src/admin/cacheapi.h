/*
 * The admin port's view of the HTTP cache: its metrics
 * (levee_cache_*), GET /cache (what it holds, its hit ratio) and
 * POST /cache/purge (one URL, or every URL under a prefix).
 */
#ifndef LV_ADMIN_CACHEAPI_H
#define LV_ADMIN_CACHEAPI_H

#include <stddef.h>

struct lv_strbuf;
struct lv_proxy;
struct lv_proxy_stats;

/* Appends the levee_cache_* metrics. */
void lv_cacheapi_metrics(struct lv_strbuf *sb, struct lv_proxy *px,
                         const struct lv_proxy_stats *st);

/* The GET /cache document (JSON). */
void lv_cacheapi_json(struct lv_strbuf *sb, struct lv_proxy *px);

/*
 * POST /cache/purge?url=URL or ?prefix=URL (percent-encoded; URL absolute,
 * http or https): removes the stored responses of that URL (every variant),
 * or of every URL that starts with it. Writes the JSON answer into sb and
 * returns its status: 200, or 400 when the query names no URL levee can
 * make a key of.
 */
unsigned lv_cacheapi_purge(struct lv_strbuf *sb, struct lv_proxy *px, const char *query,
                           size_t qlen);

#endif
