/*
 * The HTTP cache on the admin port: metrics, GET /cache, POST /cache/purge.
 * The store is shared by every worker; these read its counters and call
 * its removals from the admin thread (the store is thread-safe).
 */
#include "admin/cacheapi.h"

#include <llhttp.h>
#include <string.h>

#include "cache/cache.h"
#include "config/config.h"
#include "config/gen.h"
#include "core/stats.h"
#include "core/strbuf.h"
#include "proxy/cached.h"
#include "proxy/proxy.h"

#define WSUM(st, field) lv_stat_read(&(st)->w.field)

static void header(struct lv_strbuf *sb, const char *name, const char *type, const char *help)
{
    lv_strbuf_printf(sb, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void lv_cacheapi_metrics(struct lv_strbuf *sb, struct lv_proxy *px, const struct lv_proxy_stats *st)
{
    header(sb, "levee_cache_requests_total", "counter",
           "Requests the cache took part in, by how they were answered.");
    for (unsigned r = LV_CDR_HIT; r < LV_CDR_COUNT; r++)
        lv_strbuf_printf(sb, "levee_cache_requests_total{result=\"%s\"} %llu\n",
                         lv_cached_result_name((enum lv_cached_result)r),
                         (unsigned long long)WSUM(st, cache[r]));
    header(sb, "levee_cache_stores_total", "counter", "Responses stored (fills started).");
    lv_strbuf_printf(sb, "levee_cache_stores_total %llu\n",
                     (unsigned long long)WSUM(st, cache_stores));
    header(sb, "levee_cache_served_bytes_total", "counter",
           "Body bytes answered from stored responses.");
    lv_strbuf_printf(sb, "levee_cache_served_bytes_total %llu\n",
                     (unsigned long long)WSUM(st, cache_bytes_served));
    struct lv_cache_store_stats ss = {0};
    if (px->cache) lv_cache_store_stats(px->cache, &ss);
    header(sb, "levee_cache_entries", "gauge", "Stored responses that can be found.");
    lv_strbuf_printf(sb, "levee_cache_entries %llu\n", (unsigned long long)ss.entries);
    header(sb, "levee_cache_bytes", "gauge",
           "Memory held by stored responses (all workers; includes evicted ones still read).");
    lv_strbuf_printf(sb, "levee_cache_bytes %llu\n", (unsigned long long)ss.bytes);
    header(sb, "levee_cache_max_bytes", "gauge", "cache.max_size.");
    lv_strbuf_printf(sb, "levee_cache_max_bytes %llu\n", (unsigned long long)ss.max_bytes);
    header(sb, "levee_cache_evictions_total", "counter",
           "Stored responses evicted to make room (least recently used first).");
    lv_strbuf_printf(sb, "levee_cache_evictions_total %llu\n", (unsigned long long)ss.evictions);
}

void lv_cacheapi_json(struct lv_strbuf *sb, struct lv_proxy *px)
{
    struct lv_proxy_stats st;
    lv_proxy_stats_sum(px, &st);
    struct lv_cache_store_stats ss = {0};
    if (px->cache) lv_cache_store_stats(px->cache, &ss);
    uint64_t hits = WSUM(&st, cache[LV_CDR_HIT]) + WSUM(&st, cache[LV_CDR_COLLAPSED]) +
                    WSUM(&st, cache[LV_CDR_REVALIDATED]) + WSUM(&st, cache[LV_CDR_STALE]);
    uint64_t all = 0;
    for (unsigned r = LV_CDR_HIT; r < LV_CDR_COUNT; r++)
        all += WSUM(&st, cache[r]);
    lv_strbuf_printf(sb,
                     "{\"enabled\":%s,\"entries\":%llu,\"bytes\":%llu,\"max_bytes\":%llu,"
                     "\"stores\":%llu,\"evictions\":%llu,\"requests\":{",
                     px->gen->cfg->cache.enabled ? "true" : "false", (unsigned long long)ss.entries,
                     (unsigned long long)ss.bytes, (unsigned long long)ss.max_bytes,
                     (unsigned long long)ss.inserts, (unsigned long long)ss.evictions);
    for (unsigned r = LV_CDR_HIT; r < LV_CDR_COUNT; r++)
        lv_strbuf_printf(sb, "%s\"%s\":%llu", r == LV_CDR_HIT ? "" : ",",
                         lv_cached_result_name((enum lv_cached_result)r),
                         (unsigned long long)WSUM(&st, cache[r]));
    lv_strbuf_printf(sb, "},\"hit_ratio\":%.4f}\n", all ? (double)hits / (double)all : 0.0);
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Percent-decodes p[0..n) into out (cap bytes); its length, or -1. */
static long unescape(const char *p, size_t n, char *out, size_t cap)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '%' && i + 2 < n && hexval(p[i + 1]) >= 0 && hexval(p[i + 2]) >= 0) {
            ch = (char)(hexval(p[i + 1]) * 16 + hexval(p[i + 2]));
            i += 2;
        } else if (ch == '+') {
            ch = ' ';
        }
        if (k == cap) return -1;
        out[k++] = ch;
    }
    return (long)k;
}

unsigned lv_cacheapi_purge(struct lv_strbuf *sb, struct lv_proxy *px, const char *query,
                           size_t qlen)
{
    bool prefix = false;
    const char *v = NULL;
    size_t vlen = 0;
    if (qlen > 4 && memcmp(query, "url=", 4) == 0) {
        v = query + 4;
        vlen = qlen - 4;
    } else if (qlen > 7 && memcmp(query, "prefix=", 7) == 0) {
        v = query + 7;
        vlen = qlen - 7;
        prefix = true;
    }
    char url[4096];
    long n = v ? unescape(v, vlen, url, sizeof(url)) : -1;
    bool tls = n > 8 && memcmp(url, "https://", 8) == 0;
    bool plain = n > 7 && memcmp(url, "http://", 7) == 0;
    if (!tls && !plain) {
        lv_strbuf_puts(sb, "{\"ok\":false,\"error\":\"give ?url=http://host/path or "
                           "?prefix=http://host/path (percent-encoded)\"}\n");
        return 400;
    }
    /* The key a GET of that URL has: the host comes from the absolute form. */
    const char *host = url + (tls ? 8 : 7);
    const char *slash = memchr(host, '/', (size_t)(url + n - host));
    size_t hlen = slash ? (size_t)(slash - host) : (size_t)(url + n - host);
    struct lv_cache_req r = {
        .method = HTTP_GET,
        .tls = tls,
        .target = url,
        .target_len = (size_t)n,
        .host = host,
        .host_len = hlen,
    };
    struct lv_cache_key k;
    lv_cache_key_init(&k);
    size_t removed = 0;
    int rc = lv_cache_key_of_req(&k, px->gen->cfg->cache.key, &r);
    if (rc == 0 && px->cache) {
        if (prefix) {
            /* An empty path is the host's root: every URL of the host. */
            size_t len = k.len;
            if (slash == NULL && len > 0 && k.p[len - 1] == '/') len--;
            removed = lv_cache_store_remove_prefix(px->cache, k.p, len);
        } else {
            removed = lv_cache_store_remove(px->cache, k.p, k.len);
        }
    }
    if (rc != 0) {
        lv_strbuf_puts(sb, "{\"ok\":false,\"error\":\"no cache key for that URL\"}\n");
    } else {
        lv_strbuf_printf(sb, "{\"ok\":true,\"purged\":%zu}\n", removed);
    }
    lv_cache_key_dispose(&k);
    return rc == 0 ? 200 : 400;
}
