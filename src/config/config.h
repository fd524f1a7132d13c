/*
 * The typed configuration: what levee runs on, after the YAML file has been
 * read, defaulted and validated. A config is immutable once loaded; a reload
 * builds a new one beside it (issue: reload) and requests in flight keep the
 * one they started with.
 *
 * Every duration is in milliseconds, every size in bytes.
 */
#ifndef LV_CONFIG_CONFIG_H
#define LV_CONFIG_CONFIG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "cache/policy.h"
#include "core/log.h"
#include "limit/bucket.h"
#include "limit/key.h"
#include "limit/table.h"
#include "net/tls.h"
#include "upstream/breaker.h"
#include "upstream/retry.h"

struct lv_balancer_ops;

struct lv_listen_cfg {
    char *address; /* as written, for messages */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool tls_enabled;
    struct lv_tls_listen_cfg tls;
    SSL_CTX *tls_ctx; /* built when the file is loaded */
};

struct lv_backend_cfg {
    char *id;
    char *url;
    char *host;      /* host part of the URL, without brackets */
    char *authority; /* host[:port] as it appears in the URL */
    uint16_t port;
    struct sockaddr_storage addr; /* resolved when the file is loaded */
    socklen_t addrlen;
    uint32_t weight;
    bool health_check_enabled;
    struct lv_tls_backend_cfg tls; /* tls.enabled: an https:// url */
    SSL_CTX *tls_ctx;              /* built when the file is loaded */
};

struct lv_timeouts_cfg {
    uint64_t connect;
    uint64_t per_try;
    uint64_t backend;
    uint64_t client_header;
    uint64_t client_body;
    uint64_t idle;
    uint64_t shutdown;
    uint64_t tunnel;
};

struct lv_limits_cfg {
    uint64_t max_body; /* 0: unlimited */
    uint64_t max_header_size;
    uint64_t max_headers;
    uint64_t max_uri;
    uint64_t max_connections; /* client connections, all workers; 0: auto (proxy/maxconn.h) */
};

struct lv_pool_cfg {
    uint64_t max_idle; /* per backend, per worker */
    uint64_t idle_timeout;
};

enum lv_log_format { LV_LOGFMT_COMBINED, LV_LOGFMT_JSON };

struct lv_access_log_cfg {
    char *path; /* "stdout", "stderr", a file, or NULL when off */
    enum lv_log_format format;
};

struct lv_health_check_cfg {
    char *path;
    uint64_t interval;
    uint64_t timeout;
    uint64_t unhealthy_threshold;    /* fall */
    uint64_t healthy_threshold;      /* rise */
    uint32_t status_min, status_max; /* expected status range */
    uint64_t slow_start;             /* ramp-up after recovery, ms; 0: none */
};

enum lv_store_kind { LV_STORE_LOCAL, LV_STORE_REDIS };
enum lv_store_error { LV_ON_ERROR_LOCAL, LV_ON_ERROR_ALLOW, LV_ON_ERROR_DENY };
enum lv_key_kind { LV_KEY_IP, LV_KEY_HEADER };

struct lv_rate_cfg {
    /* global: all clients together; rate 0 = no global limit */
    double rate;
    uint64_t burst;
    /* per client; rate 0 = no per-client limit */
    double client_rate;
    uint64_t client_burst;
    enum lv_key_kind key;
    char *key_header;        /* with LV_KEY_HEADER */
    struct lv_cidr *trusted; /* proxies whose X-Forwarded-For is believed */
    size_t ntrusted;
    uint64_t max_clients;
    int algorithm;              /* enum lv_limit_algo */
    uint64_t window;            /* ms, sliding window */
    bool headers;               /* RateLimit on allowed responses too */
    int store;                  /* enum lv_store_kind */
    int on_store_error;         /* enum lv_store_error */
    struct lv_listen_cfg redis; /* address */
    uint64_t redis_timeout;     /* ms */
    char *redis_prefix;
    char *redis_password;
};

struct lv_strlist {
    char **items;
    size_t n;
};

struct lv_admin_cfg {
    bool enabled; /* admin.listen is not "off" */
    struct lv_listen_cfg listen;
    char *token;                     /* required for control endpoints off loopback */
    struct lv_strlist allowed_hosts; /* Host names accepted besides the listener's address */
    uint64_t max_connections;        /* open admin connections at most; more are closed */
    uint64_t timeout;                /* ms: idle, request, and unread answers */
};

struct lv_headers_cfg {
    struct lv_strlist remove_request;  /* extra names removed before forwarding */
    struct lv_strlist remove_response; /* extra names removed from responses */
};

struct lv_config {
    char *path;
    struct lv_listen_cfg *listeners;
    size_t n_listeners;
    unsigned workers;
    struct lv_backend_cfg *backends;
    size_t n_backends;
    const struct lv_balancer_ops *balancer;
    struct lv_timeouts_cfg timeouts;
    struct lv_limits_cfg limits;
    struct lv_pool_cfg pool;
    struct lv_access_log_cfg access_log;
    struct lv_headers_cfg headers;
    struct lv_retry_cfg retry;
    struct lv_breaker_cfg breaker;
    struct lv_health_check_cfg health;
    struct lv_admin_cfg admin;
    struct lv_rate_cfg rate_limit;
    struct lv_cache_cfg cache;
    struct lv_strlist upgrade_allow; /* protocols an Upgrade may switch to */
    enum lv_log_level log_level;
};

/* Is any rate limit configured? */
static inline bool lv_config_rate_limiting(const struct lv_config *cfg)
{
    return cfg->rate_limit.rate > 0 || cfg->rate_limit.client_rate > 0;
}

/* Fills cfg with every default (no listeners or backends yet). */
void lv_config_defaults(struct lv_config *cfg);

/*
 * Loads and validates a file. On success returns a new config (caller owns;
 * free with lv_config_destroy) and *nerrors = 0. On failure returns NULL and
 * writes every error, one "FILE:LINE:COL: message" line each, to errs and
 * sets *nerrors.
 */
struct lv_config *lv_config_load(const char *path, FILE *errs, int *nerrors);

/* Same, from a string in memory; `name` is used in messages. */
struct lv_config *lv_config_load_string(const char *name, const char *text, size_t len, FILE *errs,
                                        int *nerrors);

void lv_config_destroy(struct lv_config *cfg);

#endif
