/*
 * The typed configuration's types (HAProxy's -t.h convention: types apart
 * from functions, so that the walker, config/load.h, can name them without
 * including the loader's entry points). config/config.h says what a config
 * is and declares its functions.
 */
#ifndef LV_CONFIG_CONFIG_T_H
#define LV_CONFIG_CONFIG_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache/policy.h"
#include "core/log.h"
#include "limit/limiter.h"
#include "net/listener.h"
#include "upstream/backend.h"
#include "upstream/breaker.h"
#include "upstream/health.h"
#include "upstream/outlier.h"
#include "upstream/pool.h"
#include "upstream/retry.h"

/* The structs of the sections that a module below config owns are that
 * module's (policy modules own their *_cfg): lv_listen_cfg (net/listener.h),
 * lv_backend_cfg (upstream/backend.h), lv_pool_cfg (upstream/pool.h),
 * lv_health_check_cfg (upstream/health.h), lv_retry_cfg, lv_breaker_cfg,
 * lv_rate_cfg (limit/limiter.h). The sections of the layers above (proxy,
 * admin) are defined here. */

struct lv_balancer_ops;
struct lv_routes_cfg;

struct lv_timeouts_cfg {
    uint64_t connect;
    uint64_t per_try;
    uint64_t backend;
    uint64_t client_header;
    uint64_t client_body;
    uint64_t idle;
    uint64_t shutdown;
    uint64_t tunnel;
    uint64_t binary_upgrade; /* the new process of a binary upgrade serves within it */
};

/* HTTP/2 to clients (proxy/h2conn.h): per-connection limits. */
struct lv_http2_cfg {
    uint64_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint64_t initial_window_size;    /* SETTINGS_INITIAL_WINDOW_SIZE: request body per stream */
    uint64_t max_frame_size;         /* SETTINGS_MAX_FRAME_SIZE */
    uint64_t max_header_list_size;   /* SETTINGS_MAX_HEADER_LIST_SIZE; 0: limits.max_header_size */
    uint64_t idle_timeout;           /* ms without a stream: GOAWAY and close */
    uint64_t max_resets;             /* client RST_STREAM per second (rapid reset), averaged */
    uint64_t max_control_frames;     /* PING, SETTINGS, empty frames per second, averaged */
};

struct lv_limits_cfg {
    uint64_t max_body; /* 0: unlimited */
    uint64_t max_header_size;
    uint64_t max_headers;
    uint64_t max_uri;
    uint64_t max_connections; /* client connections, all workers; 0: auto (net/maxconn.h) */
};

enum lv_log_format { LV_LOGFMT_COMBINED, LV_LOGFMT_JSON };

struct lv_access_log_cfg {
    char *path; /* "stdout", "stderr", a file, or NULL when off */
    enum lv_log_format format;
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
    struct lv_http2_cfg http2;
    struct lv_pool_cfg pool;
    struct lv_access_log_cfg access_log;
    struct lv_headers_cfg headers;
    struct lv_retry_cfg retry;
    struct lv_breaker_cfg breaker;
    struct lv_outlier_cfg outlier; /* outlier_detection: */
    struct lv_health_check_cfg health;
    struct lv_admin_cfg admin;
    struct lv_rate_cfg rate_limit;
    struct lv_cache_cfg cache;
    struct lv_strlist upgrade_allow; /* protocols an Upgrade may switch to */
    enum lv_log_level log_level;
    struct lv_routes_cfg *routing; /* pools and routes (config/routes.h) */
};

/* Is any rate limit configured? */
static inline bool lv_config_rate_limiting(const struct lv_config *cfg)
{
    return lv_rate_cfg_enabled(&cfg->rate_limit);
}

#endif
