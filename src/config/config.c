/*
 * The shape of levee's configuration file: one field table per section,
 * the defaults, and the checks that span several keys (unique backend ids,
 * at least one listener). A user coming from nginx or HAProxy should find
 * every default safe: no timeout is infinite, every buffer is capped.
 */
#include "config/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/cache.h"
#include "config/load.h"
#include "config/config_tls.h"
#include "config/routes.h"
#include "config/routes_read.h"
#include "core/log.h"
#include "core/units.h"
#include "admin/guard.h"
#include "net/addr.h"
#include "net/maxconn.h"
#include "upstream/balancer.h"

#define SEC(ms) ((uint64_t)(ms)*1000u)
#define DAY SEC(86400)
#define KIB 1024u
#define MIB (1024u * 1024u)
#define GIB (1024ull * 1024u * 1024u)

int lv_config_defaults(struct lv_config *cfg)
{
    cfg->workers = 0; /* auto */
    cfg->balancer = lv_balancer_find("peak_ewma");
    cfg->timeouts = (struct lv_timeouts_cfg){
        .connect = SEC(1),
        .per_try = SEC(15),
        .backend = SEC(30),
        .client_header = SEC(10),
        .client_body = SEC(30),
        .idle = SEC(60),
        .shutdown = SEC(10),
        .tunnel = SEC(3600),
        .binary_upgrade = SEC(30),
    };
    cfg->limits = (struct lv_limits_cfg){
        .max_body = 100 * MIB,
        .max_header_size = 32 * KIB,
        .max_headers = 100,
        .max_uri = 8 * KIB,
    };
    cfg->http2 = (struct lv_http2_cfg){
        .max_concurrent_streams = 100,
        .initial_window_size = 65535,
        .max_frame_size = 16384,
        .idle_timeout = SEC(60),
        .max_resets = 100,
        .max_control_frames = 100,
    };
    cfg->pool = (struct lv_pool_cfg){.max_idle = LV_POOL_UNLIMITED, .idle_timeout = SEC(30)};
    cfg->retry = (struct lv_retry_cfg){
        .max_attempts = 3,
        .classes = LV_FAILC_CONNECT | LV_FAILC_RESET | LV_FAILC_TIMEOUT,
        .statuses = {502, 503, 504},
        .nstatuses = 3,
        .base_delay = 25,
        .max_delay = 250,
        .budget_percent = 20,
        .min_retry_concurrency = 3,
        .max_replay_body = 64 * KIB,
        .hedge =
            {
                .after = LV_HEDGE_AUTO,
                .quantile = 0.95,
                .min = 10,
                .max = 500,
                .min_samples = 20,
                .window = SEC(10),
            },
    };
    cfg->breaker = (struct lv_breaker_cfg){
        .enabled = true,
        .failure_threshold = 5,
        .success_threshold = 2,
        .timeout = SEC(30),
        .max_timeout = SEC(300),
        .failure_rate_threshold = 0.5,
        .minimum_requests = 20,
        .window = SEC(10),
        .half_open_requests = 1,
        .failures_in_window = 5,
        .fail_window = SEC(10),
    };
    cfg->outlier = (struct lv_outlier_cfg){
        .enabled = true,
        .interval = SEC(1),
        .factor = 3,
        .latency_floor = SEC(50), /* µs: 50 ms */
        .timeout_floor = 0.05,
        .minimum_requests = 10,
        .latency_quantile = 0.5,
        .max_ejection_percent = 50,
    };
    cfg->health = (struct lv_health_check_cfg){
        .path = lv_cfg_strdup("/health"),
        .interval = SEC(5),
        .timeout = SEC(1),
        .unhealthy_threshold = 3,
        .healthy_threshold = 2,
        .status_min = 200,
        .status_max = 399,
    };
    cfg->admin.enabled = true;
    cfg->admin.listen.address = lv_cfg_strdup("127.0.0.1:9901");
    cfg->admin.max_connections = 64;
    cfg->admin.timeout = SEC(30);
    {
        const char *why;
        lv_addr_resolve("127.0.0.1", 9901, true, &cfg->admin.listen.addr,
                        &cfg->admin.listen.addrlen, &why);
    }
    cfg->rate_limit = (struct lv_rate_cfg){
        .key = LV_KEY_IP,
        .max_clients = 100000,
        .algorithm = LV_LIMIT_TOKEN_BUCKET,
        .window = SEC(1),
        .store = LV_STORE_LOCAL,
        .on_store_error = LV_ON_ERROR_LOCAL,
        .redis_timeout = 5,
        .redis_prefix = lv_cfg_strdup("levee:rl:"),
    };
    {
        const char *why;
        cfg->rate_limit.redis.address = lv_cfg_strdup("127.0.0.1:6379");
        lv_addr_resolve("127.0.0.1", 6379, false, &cfg->rate_limit.redis.addr,
                        &cfg->rate_limit.redis.addrlen, &why);
    }
    cfg->upgrade_allow.items = lv_cfg_calloc(1, sizeof(char *));
    if (cfg->upgrade_allow.items && (cfg->upgrade_allow.items[0] = lv_cfg_strdup("websocket")))
        cfg->upgrade_allow.n = 1;
    cfg->access_log.path = lv_cfg_strdup("stdout");
    lv_cache_cfg_init(&cfg->cache);
    cfg->access_log.format = LV_LOGFMT_COMBINED;
    cfg->log_level = LV_LOG_INFO;
    bool ok = cfg->health.path && cfg->admin.listen.address && cfg->rate_limit.redis_prefix &&
              cfg->rate_limit.redis.address && cfg->upgrade_allow.n == 1 && cfg->access_log.path;
    return ok ? 0 : UV_ENOMEM;
}

static void strlist_free(struct lv_strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

void lv_config_destroy(struct lv_config *cfg)
{
    if (cfg == NULL) return;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        lv_listen_cfg_dispose(&cfg->listeners[i]);
    free(cfg->listeners);
    for (size_t i = 0; i < cfg->n_backends; i++) {
        lv_backend_cfg_dispose(&cfg->backends[i]);
    }
    free(cfg->backends);
    free(cfg->access_log.path);
    free(cfg->health.path);
    lv_listen_cfg_dispose(&cfg->admin.listen);
    free(cfg->admin.token);
    lv_rate_cfg_dispose(&cfg->rate_limit);
    strlist_free(&cfg->headers.remove_request);
    strlist_free(&cfg->headers.remove_response);
    strlist_free(&cfg->upgrade_allow);
    strlist_free(&cfg->admin.allowed_hosts);
    lv_routes_cfg_destroy(cfg->routing);
    lv_cache_cfg_dispose(&cfg->cache);
    free(cfg->path);
    free(cfg);
}

/* --- listen ---------------------------------------------------------------- */

static int parse_one_listen(struct lv_cfg_ctx *c, yaml_node_t *n, struct lv_listen_cfg *out)
{
    const char *s = lv_cfg_scalar(c, n, "an address (host:port)");
    if (s == NULL) return UV_EINVAL;
    char host[256];
    uint16_t port;
    const char *why;
    if (lv_addr_split(s, host, sizeof(host), &port, &why) != 0 ||
        lv_addr_resolve(host, port, true, &out->addr, &out->addrlen, &why) != 0) {
        lv_cfg_error(c, n, "'%s': %s", s, why);
        return UV_EINVAL;
    }
    out->address = lv_cfg_strdup(s);
    return out->address ? 0 : lv_cfg_oom(c, n);
}

static int parse_listen(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                        const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_config *cfg = dst;
    for (size_t i = 0; i < cfg->n_listeners; i++)
        lv_listen_cfg_dispose(&cfg->listeners[i]);
    free(cfg->listeners);
    cfg->listeners = NULL;
    cfg->n_listeners = 0;
    if (n->type == YAML_SCALAR_NODE) {
        cfg->listeners = lv_cfg_calloc(1, sizeof(*cfg->listeners));
        if (cfg->listeners == NULL) return lv_cfg_oom(c, n);
        if (parse_one_listen(c, n, &cfg->listeners[0]) != 0) return UV_EINVAL;
        cfg->n_listeners = 1;
        return 0;
    }
    if (n->type != YAML_SEQUENCE_NODE) {
        lv_cfg_error(c, n, "expected host:port or a list of them");
        return UV_EINVAL;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    if (count == 0) {
        lv_cfg_error(c, n, "needs at least one address");
        return UV_EINVAL;
    }
    cfg->listeners = lv_cfg_calloc(count, sizeof(*cfg->listeners));
    if (cfg->listeners == NULL) return lv_cfg_oom(c, n);
    int rc = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = lv_cfg_node(c, *it);
        struct lv_listen_cfg *l = &cfg->listeners[cfg->n_listeners];
        int lrc = item->type == YAML_MAPPING_NODE ? lv_cfg_listen_map(c, item, l)
                                                  : parse_one_listen(c, item, l);
        if (lrc == 0) {
            cfg->n_listeners++;
        } else {
            lv_listen_cfg_dispose(l);
            rc = UV_EINVAL;
        }
    }
    return rc;
}

/* --- workers, balancer, logs ---------------------------------------------- */

static int parse_workers(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                         const struct lv_cfg_field *f)
{
    const char *s = lv_cfg_scalar(c, n, "a number or auto");
    if (s == NULL) return UV_EINVAL;
    if (strcmp(s, "auto") == 0) {
        *(unsigned *)dst = 0;
        return 0;
    }
    uint64_t v;
    if (lv_cfg_uint(c, n, &v, f) != 0) return UV_EINVAL;
    *(unsigned *)dst = (unsigned)v;
    return 0;
}

/* A number within the field's bounds, or `auto` (stored as 0). */
static int parse_auto_u64(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                          const struct lv_cfg_field *f)
{
    const char *s = lv_cfg_scalar(c, n, "a number or auto");
    if (s == NULL) return UV_EINVAL;
    if (strcmp(s, "auto") == 0) {
        *(uint64_t *)dst = 0;
        return 0;
    }
    return lv_cfg_uint(c, n, dst, f);
}

static int parse_balancer(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                          const struct lv_cfg_field *f)
{
    (void)f;
    const char *s = lv_cfg_scalar(c, n, "a balancer name");
    if (s == NULL) return UV_EINVAL;
    const struct lv_balancer_ops *ops = lv_balancer_find(s);
    if (ops == NULL) {
        char allowed[256] = "";
        for (size_t i = 0; lv_balancers[i]; i++)
            lv_cfg_append(allowed, sizeof(allowed), ", ", lv_balancers[i]->name);
        lv_cfg_error(c, n, "unknown balancer '%s' (allowed: %s)", s, allowed);
        return UV_EINVAL;
    }
    *(const struct lv_balancer_ops **)dst = ops;
    return 0;
}

static int parse_log_level(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                           const struct lv_cfg_field *f)
{
    (void)f;
    const char *s = lv_cfg_scalar(c, n, "a log level");
    if (s == NULL) return UV_EINVAL;
    if (lv_log_level_parse(s, dst) != 0) {
        lv_cfg_error(c, n, "unknown log level '%s' (allowed: debug, info, warn, error)", s);
        return UV_EINVAL;
    }
    return 0;
}

static int parse_log_path(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                          const struct lv_cfg_field *f)
{
    char **path = dst;
    if (lv_cfg_string(c, n, dst, f) != 0) return UV_EINVAL;
    if (strcmp(*path, "off") == 0) {
        free(*path);
        *path = NULL;
    }
    return 0;
}

/* --- backends --------------------------------------------------------------- */

struct backend_yaml {
    char *id;
    char *url;
    uint64_t weight;
    bool health_check_enabled;
    yaml_node_t *tls; /* read once the url says https */
};

static int keep_node(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    (void)c, (void)f;
    *(yaml_node_t **)dst = n;
    return 0;
}

static const struct lv_cfg_field backend_fields[] = {
    {"id", lv_cfg_string, offsetof(struct backend_yaml, id), 0, 0, NULL},
    {"url", lv_cfg_string, offsetof(struct backend_yaml, url), 0, 0, NULL},
    {"weight", lv_cfg_uint, offsetof(struct backend_yaml, weight), 1, 1000, NULL},
    {"tls", keep_node, offsetof(struct backend_yaml, tls), 0, 0, lv_cfg_backend_tls_fields},
    {"health_check_enabled", lv_cfg_bool, offsetof(struct backend_yaml, health_check_enabled), 0, 0,
     NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

static bool id_ok(const char *id)
{
    for (const char *p = id; *p; p++) {
        char ch = *p;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return id[0] != '\0';
}

/* "http://host[:port][/]" → host, port, authority. */
static int parse_url(struct lv_cfg_ctx *c, yaml_node_t *n, const char *url,
                     struct lv_backend_cfg *b)
{
    const char *rest;
    uint16_t default_port;
    if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
        default_port = 80;
    } else if (strncasecmp(url, "https://", 8) == 0) {
        rest = url + 8;
        default_port = 443;
        b->tls.enabled = true;
    } else {
        lv_cfg_error(c, n, "'%s': a backend url must start with http:// or https://", url);
        return UV_EINVAL;
    }
    size_t alen = strcspn(rest, "/?#");
    if (rest[alen] != '\0' && strcmp(rest + alen, "/") != 0) {
        lv_cfg_error(c, n, "'%s': a backend url is scheme://host[:port]; paths are not supported",
                     url);
        return UV_EINVAL;
    }
    if (alen == 0 || alen > 255) {
        lv_cfg_error(c, n, "'%s': missing host", url);
        return UV_EINVAL;
    }
    char auth[256], host[256];
    memcpy(auth, rest, alen);
    auth[alen] = '\0';
    uint16_t port = default_port;
    const char *why;
    bool has_port = auth[alen - 1] != ']' && strchr(auth, ':') != NULL;
    if (auth[0] == '[' && strstr(auth, "]:")) has_port = true;
    if (has_port) {
        if (lv_addr_split(auth, host, sizeof(host), &port, &why) != 0) {
            lv_cfg_error(c, n, "'%s': %s", url, why);
            return UV_EINVAL;
        }
    } else if (auth[0] == '[') {
        memcpy(host, auth + 1, alen - 2);
        host[alen - 2] = '\0';
    } else {
        memcpy(host, auth, alen + 1);
    }
    if (lv_addr_resolve(host, port, false, &b->addr, &b->addrlen, &why) != 0) {
        lv_cfg_error(c, n, "'%s': cannot resolve '%s': %s", url, host, why);
        return UV_EINVAL;
    }
    b->host = lv_cfg_strdup(host);
    b->authority = lv_cfg_strdup(auth);
    b->port = port;
    return b->host && b->authority ? 0 : lv_cfg_oom(c, n);
}

static yaml_node_t *find_key(struct lv_cfg_ctx *c, yaml_node_t *map, const char *key)
{
    if (map->type != YAML_MAPPING_NODE) return map;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = lv_cfg_node(c, p->key);
        if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
            return lv_cfg_node(c, p->value);
    }
    return map;
}

static int parse_backends(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                          const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_config *cfg = dst;
    if (lv_cfg_is_null(n)) return 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        lv_cfg_error(c, n, "expected a list of backends (- id: ..., url: ...)");
        return UV_EINVAL;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    cfg->backends = lv_cfg_calloc(count ? count : 1, sizeof(*cfg->backends));
    if (cfg->backends == NULL) return lv_cfg_oom(c, n);
    int rc = 0;
    size_t keylen = strlen(c->keypath);
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = lv_cfg_node(c, *it);
        snprintf(c->keypath + keylen, sizeof(c->keypath) - keylen, "[%zu]",
                 (size_t)(it - n->data.sequence.items.start));
        /* Active checks are opt-in per backend (health_check_enabled), as
         * HAProxy's `check`: a backend without the health path must not be
         * marked down by default. */
        struct backend_yaml y = {.weight = 1, .health_check_enabled = false};
        int brc = lv_cfg_walk(c, item, backend_fields, &y);
        if (brc == 0 && item->type == YAML_MAPPING_NODE) {
            if (y.id == NULL) {
                lv_cfg_error(c, item, "a backend needs an id");
                brc = UV_EINVAL;
            } else if (!id_ok(y.id)) {
                lv_cfg_error(c, find_key(c, item, "id"),
                             "id '%s' may only contain letters, digits, '_', '-' and '.'", y.id);
                brc = UV_EINVAL;
            }
            if (y.url == NULL) {
                lv_cfg_error(c, item, "a backend needs a url");
                brc = UV_EINVAL;
            }
        } else if (item->type != YAML_MAPPING_NODE) {
            brc = UV_EINVAL;
        }
        struct lv_backend_cfg *b = &cfg->backends[cfg->n_backends];
        if (y.url != NULL) {
            size_t old = strlen(c->keypath);
            lv_cfg_append(c->keypath, sizeof(c->keypath), NULL, ".url");
            if (parse_url(c, find_key(c, item, "url"), y.url, b) != 0) brc = UV_EINVAL;
            c->keypath[old] = '\0';
        }
        if (brc == 0) {
            for (size_t j = 0; j < cfg->n_backends; j++) {
                if (strcmp(cfg->backends[j].id, y.id) == 0) {
                    lv_cfg_error(c, find_key(c, item, "id"), "duplicate backend id '%s'", y.id);
                    brc = UV_EINVAL;
                }
            }
        }
        if (brc == 0 && lv_cfg_backend_tls(c, y.tls, find_key(c, item, "url"), b) != 0)
            brc = UV_EINVAL;
        if (brc == 0) {
            b->id = y.id;
            b->url = y.url;
            b->weight = (uint32_t)y.weight;
            b->health_check_enabled = y.health_check_enabled;
            if (b->tls.insecure_skip_verify)
                lv_warn(
                    "backend %s: tls.insecure_skip_verify is on: its certificate is not checked",
                    b->id);
            cfg->n_backends++;
        } else {
            free(y.id);
            free(y.url);
            lv_backend_cfg_dispose(b);
            rc = UV_EINVAL;
        }
    }
    c->keypath[keylen] = '\0';
    return rc;
}

/* --- resilience ------------------------------------------------------------- */

/* retry_on: connect_failure, reset, timeout, and status codes. */
static int parse_retry_on(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                          const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_retry_cfg *r = dst;
    if (n->type != YAML_SEQUENCE_NODE) {
        lv_cfg_error(c, n, "expected a list (e.g. [connect_failure, reset, timeout, 503])");
        return UV_EINVAL;
    }
    r->classes = 0;
    r->nstatuses = 0;
    int rc = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = lv_cfg_node(c, *it);
        const char *s = lv_cfg_scalar(c, item, "a condition");
        uint64_t code;
        if (s == NULL) {
            rc = UV_EINVAL;
        } else if (strcmp(s, "connect_failure") == 0) {
            r->classes |= LV_FAILC_CONNECT;
        } else if (strcmp(s, "reset") == 0) {
            r->classes |= LV_FAILC_RESET;
        } else if (strcmp(s, "timeout") == 0) {
            r->classes |= LV_FAILC_TIMEOUT;
        } else if (lv_parse_u64(s, &code) == 0 && code >= 400 && code <= 599) {
            if (r->nstatuses == LV_RETRY_MAX_STATUSES) {
                lv_cfg_error(c, item, "at most %d status codes", LV_RETRY_MAX_STATUSES);
                rc = UV_EINVAL;
            } else {
                r->statuses[r->nstatuses++] = (uint16_t)code;
            }
        } else {
            lv_cfg_error(c, item,
                         "unknown condition '%s' (allowed: connect_failure, reset, timeout, "
                         "or a status code from 400 to 599)",
                         s);
            rc = UV_EINVAL;
        }
    }
    return rc;
}

/* hedge_after: a duration, "auto" (from the backend's recent p95), or
 * "off"/0 for none. */
static int parse_hedge_after(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                             const struct lv_cfg_field *f)
{
    const char *s = lv_cfg_scalar(c, n, "a duration, auto or off");
    if (s == NULL) return UV_EINVAL;
    if (strcmp(s, "off") == 0 || strcmp(s, "false") == 0) {
        *(uint64_t *)dst = 0;
        return 0;
    }
    if (strcmp(s, "auto") == 0) {
        *(uint64_t *)dst = LV_HEDGE_AUTO;
        return 0;
    }
    return lv_cfg_duration(c, n, dst, f);
}

/* pool.max_idle: a number, or "unlimited" (the default: the pool keeps what
 * demand needed, and idle_timeout shrinks it). */
static int parse_max_idle(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                          const struct lv_cfg_field *f)
{
    if (n->type == YAML_SCALAR_NODE &&
        strcmp((const char *)n->data.scalar.value, "unlimited") == 0) {
        *(uint64_t *)dst = LV_POOL_UNLIMITED;
        return 0;
    }
    return lv_cfg_uint(c, n, dst, f);
}

/* A duration stored in µs (outlier_detection.latency_floor). */
static int parse_duration_us(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                             const struct lv_cfg_field *f)
{
    uint64_t ms;
    int rc = lv_cfg_duration(c, n, &ms, f);
    if (rc == 0) *(uint64_t *)dst = ms * 1000;
    return rc;
}

/* A factor: a number from 1 to 1000 (outlier_detection.factor). */
static int parse_factor(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                        const struct lv_cfg_field *f)
{
    (void)f;
    const char *s = lv_cfg_scalar(c, n, "a number");
    if (s == NULL) return UV_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= 1 && v <= 1000)) {
        lv_cfg_error(c, n, "'%s' is not a factor (a number from 1 to 1000)", s);
        return UV_EINVAL;
    }
    *(double *)dst = v;
    return 0;
}

/* A ratio: 0.5 or 50%. */
static int parse_ratio(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                       const struct lv_cfg_field *f)
{
    (void)f;
    const char *s = lv_cfg_scalar(c, n, "a ratio");
    if (s == NULL) return UV_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    bool pct = *end == '%';
    if (pct) {
        v /= 100;
        end++;
    }
    if (errno || end == s || *end != '\0' || !(v >= 0 && v <= 1)) {
        lv_cfg_error(c, n, "'%s' is not a ratio (0 to 1, or 0%% to 100%%)", s);
        return UV_EINVAL;
    }
    *(double *)dst = v;
    return 0;
}

/* expected_status: "200-399", "200", or 204. */
static int parse_status_range(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                              const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_health_check_cfg *h = dst;
    const char *s = lv_cfg_scalar(c, n, "a status or a range");
    if (s == NULL) return UV_EINVAL;
    char lo[8] = "", hi[8] = "";
    const char *dash = strchr(s, '-');
    size_t llen = dash ? (size_t)(dash - s) : strlen(s);
    uint64_t a, b;
    if (llen < sizeof(lo)) {
        memcpy(lo, s, llen);
        lo[llen] = '\0';
    }
    if (dash && strlen(dash + 1) < sizeof(hi)) memcpy(hi, dash + 1, strlen(dash + 1) + 1);
    bool ok = llen < sizeof(lo) && lv_parse_u64(lo, &a) == 0;
    if (ok) ok = dash ? lv_parse_u64(hi, &b) == 0 : (b = a, true);
    if (!ok || a < 100 || b > 599 || a > b) {
        lv_cfg_error(c, n, "'%s' is not a status or a range (e.g. 200-399)", s);
        return UV_EINVAL;
    }
    h->status_min = (uint32_t)a;
    h->status_max = (uint32_t)b;
    return 0;
}

static int parse_u32(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    return lv_cfg_u32(c, n, dst, f);
}

/* admin.listen: host:port, or "off". */
static int parse_admin_listen(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                              const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_admin_cfg *a = dst;
    const char *s = lv_cfg_scalar(c, n, "an address (host:port) or off");
    if (s == NULL) return UV_EINVAL;
    free(a->listen.address);
    a->listen.address = NULL;
    if (strcmp(s, "off") == 0) {
        a->enabled = false;
        return 0;
    }
    a->enabled = true;
    return parse_one_listen(c, n, &a->listen);
}

/* admin.token: sent in a header, so no whitespace or control character (a
 * value with them could not be compared as written); never empty (that would
 * let "Authorization: Bearer " through: lv_cfg_string refuses it). */
static int parse_admin_token(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                             const struct lv_cfg_field *f)
{
    const char *s = lv_cfg_scalar(c, n, "a token");
    if (s == NULL) return UV_EINVAL;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f) {
            lv_cfg_error(c, n, "only visible ASCII characters (no spaces)");
            return UV_EINVAL;
        }
    }
    return lv_cfg_string(c, n, dst, f);
}

/* admin.allowed_hosts: names (with or without :port) the Host field may
 * carry besides the listener's own address. */
static int parse_allowed_hosts(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                               const struct lv_cfg_field *f)
{
    if (lv_cfg_strlist(c, n, dst, f) != 0) return UV_EINVAL;
    const struct lv_strlist *l = dst;
    int rc = 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *why = lv_admin_host_entry_check(l->items[i]);
        if (why != NULL) {
            yaml_node_t *item = lv_cfg_node(c, n->data.sequence.items.start[i]);
            lv_cfg_error(c, item, "'%s': %s", l->items[i], why);
            rc = UV_EINVAL;
        }
    }
    return rc;
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return false;
}

/* --- rate limits ------------------------------------------------------------ */

/* A rate: a positive number of requests per second (fractions allowed). */
static int parse_rate(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    (void)f;
    const char *s = lv_cfg_scalar(c, n, "requests per second");
    if (s == NULL) return UV_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !(v >= 0 && v <= 1e9)) {
        lv_cfg_error(c, n, "'%s' is not a rate (requests per second, e.g. 100 or 0.5)", s);
        return UV_EINVAL;
    }
    *(double *)dst = v;
    return 0;
}

/* per_client.key: "ip" or "header:NAME". */
static int parse_limit_key(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                           const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_rate_cfg *r = dst;
    const char *s = lv_cfg_scalar(c, n, "ip or header:NAME");
    if (s == NULL) return UV_EINVAL;
    free(r->key_header);
    r->key_header = NULL;
    if (strcmp(s, "ip") == 0) {
        r->key = LV_KEY_IP;
        return 0;
    }
    if (strncmp(s, "header:", 7) == 0 && s[7] != '\0') {
        r->key = LV_KEY_HEADER;
        r->key_header = lv_cfg_strdup(s + 7);
        return r->key_header ? 0 : lv_cfg_oom(c, n);
    }
    lv_cfg_error(c, n, "'%s' is not a client key (allowed: ip, header:NAME)", s);
    return UV_EINVAL;
}

static int parse_trusted(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                         const struct lv_cfg_field *f)
{
    struct lv_rate_cfg *r = dst;
    struct lv_strlist l = {0};
    int rc = lv_cfg_strlist(c, n, &l, f);
    free(r->trusted);
    r->trusted = lv_cfg_calloc(l.n ? l.n : 1, sizeof(*r->trusted));
    r->ntrusted = 0;
    if (r->trusted == NULL) {
        for (size_t i = 0; i < l.n; i++)
            free(l.items[i]);
        free(l.items);
        return lv_cfg_oom(c, n);
    }
    yaml_node_item_t *it = n->type == YAML_SEQUENCE_NODE ? n->data.sequence.items.start : NULL;
    for (size_t i = 0; i < l.n; i++, it++) {
        if (lv_cidr_parse(l.items[i], &r->trusted[r->ntrusted]) == 0) {
            r->ntrusted++;
        } else {
            lv_cfg_error(c, it ? lv_cfg_node(c, *it) : n,
                         "'%s' is not an address or network (e.g. 10.0.0.0/8, ::1)", l.items[i]);
            rc = UV_EINVAL;
        }
        free(l.items[i]);
    }
    free(l.items);
    return rc;
}

static int parse_redis_address(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                               const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_addr_cfg *out = dst;
    const char *s = lv_cfg_scalar(c, n, "host:port");
    if (s == NULL) return UV_EINVAL;
    char host[256];
    uint16_t port;
    const char *why;
    struct lv_addr_cfg tmp = {0};
    if (lv_addr_split(s, host, sizeof(host), &port, &why) != 0 ||
        lv_addr_resolve(host, port, false, &tmp.addr, &tmp.addrlen, &why) != 0) {
        lv_cfg_error(c, n, "'%s': %s", s, why);
        return UV_EINVAL;
    }
    free(out->address);
    *out = tmp;
    out->address = lv_cfg_strdup(s);
    return out->address ? 0 : lv_cfg_oom(c, n);
}

/* --- the tables ------------------------------------------------------------- */

#define F(key, parse, type, member, min, max, aux)                                                 \
    {                                                                                              \
        key, parse, offsetof(type, member), min, max, aux                                          \
    }

static const struct lv_cfg_field timeout_fields[] = {
    F("connect", lv_cfg_duration, struct lv_timeouts_cfg, connect, 1, DAY, NULL),
    F("per_try", lv_cfg_duration, struct lv_timeouts_cfg, per_try, 1, DAY, NULL),
    F("backend", lv_cfg_duration, struct lv_timeouts_cfg, backend, 1, DAY, NULL),
    F("client_header", lv_cfg_duration, struct lv_timeouts_cfg, client_header, 1, DAY, NULL),
    F("client_body", lv_cfg_duration, struct lv_timeouts_cfg, client_body, 1, DAY, NULL),
    F("idle", lv_cfg_duration, struct lv_timeouts_cfg, idle, 1, DAY, NULL),
    F("shutdown", lv_cfg_duration, struct lv_timeouts_cfg, shutdown, 0, DAY, NULL),
    F("tunnel", lv_cfg_duration, struct lv_timeouts_cfg, tunnel, 1, 7 * DAY, NULL),
    F("binary_upgrade", lv_cfg_duration, struct lv_timeouts_cfg, binary_upgrade, 1, DAY, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field limit_fields[] = {
    F("max_body", lv_cfg_size, struct lv_limits_cfg, max_body, 0, 1ull << 50, NULL),
    F("max_header_size", lv_cfg_size, struct lv_limits_cfg, max_header_size, 1 * KIB, 16 * MIB,
      NULL),
    F("max_headers", lv_cfg_uint, struct lv_limits_cfg, max_headers, 8, 10000, NULL),
    F("max_uri", lv_cfg_size, struct lv_limits_cfg, max_uri, 64, 16 * MIB, NULL),
    F("max_connections", parse_auto_u64, struct lv_limits_cfg, max_connections, 1, LV_MAXCONN_MAX,
      NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field pool_fields[] = {
    F("max_idle", parse_max_idle, struct lv_pool_cfg, max_idle, 0, 100000, NULL),
    F("idle_timeout", lv_cfg_duration, struct lv_pool_cfg, idle_timeout, 1, DAY, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const char *const log_formats[] = {"combined", "json", NULL};

static const struct lv_cfg_field access_log_fields[] = {
    F("path", parse_log_path, struct lv_access_log_cfg, path, 0, 0, NULL),
    F("format", lv_cfg_choice, struct lv_access_log_cfg, format, 0, 0, log_formats),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field header_fields[] = {
    F("remove_request", lv_cfg_strlist, struct lv_headers_cfg, remove_request, 0, 0, NULL),
    F("remove_response", lv_cfg_strlist, struct lv_headers_cfg, remove_response, 0, 0, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field retry_fields[] = {
    F("max_attempts", parse_u32, struct lv_retry_cfg, max_attempts, 1, LV_RETRY_MAX_ATTEMPTS, NULL),
    {"retry_on", parse_retry_on, 0, 0, 0, NULL},
    F("base_delay", lv_cfg_duration, struct lv_retry_cfg, base_delay, 0, DAY, NULL),
    F("max_delay", lv_cfg_duration, struct lv_retry_cfg, max_delay, 0, DAY, NULL),
    F("budget_percent", parse_u32, struct lv_retry_cfg, budget_percent, 0, 100, NULL),
    F("min_retry_concurrency", parse_u32, struct lv_retry_cfg, min_retry_concurrency, 0, 100000,
      NULL),
    F("non_idempotent", lv_cfg_bool, struct lv_retry_cfg, non_idempotent, 0, 0, NULL),
    F("idempotency_key", lv_cfg_bool, struct lv_retry_cfg, idempotency_key, 0, 0, NULL),
    F("max_replay_body", lv_cfg_size, struct lv_retry_cfg, max_replay_body, 0, 64 * MIB, NULL),
    F("hedge_after", parse_hedge_after, struct lv_retry_cfg, hedge.after, 1, DAY, NULL),
    F("hedge_min", lv_cfg_duration, struct lv_retry_cfg, hedge.min, 1, DAY, NULL),
    F("hedge_max", lv_cfg_duration, struct lv_retry_cfg, hedge.max, 1, DAY, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field breaker_fields[] = {
    F("enabled", lv_cfg_bool, struct lv_breaker_cfg, enabled, 0, 0, NULL),
    F("failure_threshold", parse_u32, struct lv_breaker_cfg, failure_threshold, 1, 1000000, NULL),
    F("success_threshold", parse_u32, struct lv_breaker_cfg, success_threshold, 1, 1000000, NULL),
    F("timeout", lv_cfg_duration, struct lv_breaker_cfg, timeout, 1, DAY, NULL),
    F("max_timeout", lv_cfg_duration, struct lv_breaker_cfg, max_timeout, 1, DAY, NULL),
    F("failure_rate_threshold", parse_ratio, struct lv_breaker_cfg, failure_rate_threshold, 0, 0,
      NULL),
    F("minimum_requests", parse_u32, struct lv_breaker_cfg, minimum_requests, 1, 1000000, NULL),
    F("window", lv_cfg_duration, struct lv_breaker_cfg, window, 10, DAY, NULL),
    F("half_open_requests", parse_u32, struct lv_breaker_cfg, half_open_requests, 1, 10000, NULL),
    F("failures_in_window", parse_u32, struct lv_breaker_cfg, failures_in_window, 0, 1000000, NULL),
    F("fail_window", lv_cfg_duration, struct lv_breaker_cfg, fail_window, 10, DAY, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field outlier_fields[] = {
    F("enabled", lv_cfg_bool, struct lv_outlier_cfg, enabled, 0, 0, NULL),
    F("interval", lv_cfg_duration, struct lv_outlier_cfg, interval, 10, DAY, NULL),
    F("factor", parse_factor, struct lv_outlier_cfg, factor, 0, 0, NULL),
    F("latency_floor", parse_duration_us, struct lv_outlier_cfg, latency_floor, 0, DAY, NULL),
    F("timeout_floor", parse_ratio, struct lv_outlier_cfg, timeout_floor, 0, 0, NULL),
    F("minimum_requests", parse_u32, struct lv_outlier_cfg, minimum_requests, 1, 1000000, NULL),
    F("max_ejection_percent", parse_u32, struct lv_outlier_cfg, max_ejection_percent, 0, 100, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field health_fields[] = {
    F("path", lv_cfg_string, struct lv_health_check_cfg, path, 0, 0, NULL),
    F("interval", lv_cfg_duration, struct lv_health_check_cfg, interval, 10, DAY, NULL),
    F("timeout", lv_cfg_duration, struct lv_health_check_cfg, timeout, 1, DAY, NULL),
    F("unhealthy_threshold", lv_cfg_uint, struct lv_health_check_cfg, unhealthy_threshold, 1, 1000,
      NULL),
    F("healthy_threshold", lv_cfg_uint, struct lv_health_check_cfg, healthy_threshold, 1, 1000,
      NULL),
    {"expected_status", parse_status_range, 0, 0, 0, NULL},
    F("slow_start", lv_cfg_duration, struct lv_health_check_cfg, slow_start, 0, DAY, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field admin_fields[] = {
    {"listen", parse_admin_listen, 0, 0, 0, NULL},
    F("token", parse_admin_token, struct lv_admin_cfg, token, 0, 0, NULL),
    F("allowed_hosts", parse_allowed_hosts, struct lv_admin_cfg, allowed_hosts, 0, 0, NULL),
    F("max_connections", lv_cfg_uint, struct lv_admin_cfg, max_connections, 1, 4096, NULL),
    F("timeout", lv_cfg_duration, struct lv_admin_cfg, timeout, 100, SEC(3600), NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const char *const limit_algos[] = {"token_bucket", "sliding_window", NULL};
static const char *const stores[] = {"local", "redis", NULL};
static const char *const store_errors[] = {"local", "allow", "deny", NULL};

static const struct lv_cfg_field client_limit_fields[] = {
    F("requests_per_second", parse_rate, struct lv_rate_cfg, client_rate, 0, 0, NULL),
    F("burst", lv_cfg_uint, struct lv_rate_cfg, client_burst, 1, 1000000000, NULL),
    {"key", parse_limit_key, 0, 0, 0, NULL},
    {"trusted_proxies", parse_trusted, 0, 0, 0, NULL},
    F("max_clients", lv_cfg_uint, struct lv_rate_cfg, max_clients, 64, 100000000, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field redis_fields[] = {
    F("address", parse_redis_address, struct lv_rate_cfg, redis, 0, 0, NULL),
    F("timeout", lv_cfg_duration, struct lv_rate_cfg, redis_timeout, 1, 60000, NULL),
    F("key_prefix", lv_cfg_string, struct lv_rate_cfg, redis_prefix, 0, 0, NULL),
    F("password", lv_cfg_string, struct lv_rate_cfg, redis_password, 0, 0, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field rate_fields[] = {
    F("requests_per_second", parse_rate, struct lv_rate_cfg, rate, 0, 0, NULL),
    F("burst", lv_cfg_uint, struct lv_rate_cfg, burst, 1, 1000000000, NULL),
    {"per_client", lv_cfg_section, 0, 0, 0, client_limit_fields},
    F("algorithm", lv_cfg_choice, struct lv_rate_cfg, algorithm, 0, 0, limit_algos),
    F("window", lv_cfg_duration, struct lv_rate_cfg, window, 10, 3600000, NULL),
    F("headers", lv_cfg_bool, struct lv_rate_cfg, headers, 0, 0, NULL),
    F("store", lv_cfg_choice, struct lv_rate_cfg, store, 0, 0, stores),
    F("on_store_error", lv_cfg_choice, struct lv_rate_cfg, on_store_error, 0, 0, store_errors),
    {"redis", lv_cfg_section, 0, 0, 0, redis_fields},
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field http2_fields[] = {
    F("max_concurrent_streams", lv_cfg_uint, struct lv_http2_cfg, max_concurrent_streams, 1, 10000,
      NULL),
    F("initial_window_size", lv_cfg_size, struct lv_http2_cfg, initial_window_size, 1024,
      2147483647, NULL),
    F("max_frame_size", lv_cfg_size, struct lv_http2_cfg, max_frame_size, 16384, 16777215, NULL),
    F("max_header_list_size", lv_cfg_size, struct lv_http2_cfg, max_header_list_size, 1 * KIB,
      16 * MIB, NULL),
    F("idle_timeout", lv_cfg_duration, struct lv_http2_cfg, idle_timeout, 1, 86400000, NULL),
    F("max_resets", lv_cfg_uint, struct lv_http2_cfg, max_resets, 1, 1000000, NULL),
    F("max_control_frames", lv_cfg_uint, struct lv_http2_cfg, max_control_frames, 1, 1000000, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field upgrade_fields[] = {
    F("allow", lv_cfg_strlist, struct lv_config, upgrade_allow, 0, 0, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

static const struct lv_cfg_field root_fields[] = {
    {"listen", parse_listen, 0, 0, 0, lv_cfg_listen_fields},
    F("workers", parse_workers, struct lv_config, workers, 1, 256, NULL),
    {"backends", parse_backends, 0, 0, 0, backend_fields},
    F("load_balancing", parse_balancer, struct lv_config, balancer, 0, 0, NULL),
    F("timeouts", lv_cfg_section, struct lv_config, timeouts, 0, 0, timeout_fields),
    F("limits", lv_cfg_section, struct lv_config, limits, 0, 0, limit_fields),
    F("pool", lv_cfg_section, struct lv_config, pool, 0, 0, pool_fields),
    F("access_log", lv_cfg_section, struct lv_config, access_log, 0, 0, access_log_fields),
    F("headers", lv_cfg_section, struct lv_config, headers, 0, 0, header_fields),
    F("retry", lv_cfg_section, struct lv_config, retry, 0, 0, retry_fields),
    F("circuit_breaker", lv_cfg_section, struct lv_config, breaker, 0, 0, breaker_fields),
    F("outlier_detection", lv_cfg_section, struct lv_config, outlier, 0, 0, outlier_fields),
    F("health_check", lv_cfg_section, struct lv_config, health, 0, 0, health_fields),
    F("admin", lv_cfg_section, struct lv_config, admin, 0, 0, admin_fields),
    F("rate_limit", lv_cfg_section, struct lv_config, rate_limit, 0, 0, rate_fields),
    F("cache", lv_cfg_cache, struct lv_config, cache, 0, 0, lv_cfg_cache_fields),
    {"upgrade", lv_cfg_section, 0, 0, 0, upgrade_fields},
    F("http2", lv_cfg_section, struct lv_config, http2, 0, 0, http2_fields), /* issue 17 */
    F("log_level", parse_log_level, struct lv_config, log_level, 0, 0, NULL),
    {"pools", lv_cfg_later, 0, 0, 0, lv_cfg_pool_fields},
    {"routes", lv_cfg_later, 0, 0, 0, lv_cfg_route_fields},
    {"no_route", lv_cfg_later, 0, 0, 0, lv_cfg_respond_fields},
    {NULL, NULL, 0, 0, 0, NULL},
};

/* Reads the root mapping into cfg (defaults already set) and validates. */
static void config_read(struct lv_cfg_ctx *c, yaml_node_t *root, struct lv_config *cfg)
{
    lv_cfg_walk(c, root, root_fields, cfg);
    if (cfg->listeners == NULL && c->nerrors == 0) {
        const char *why;
        cfg->listeners = lv_cfg_calloc(1, sizeof(*cfg->listeners));
        if (cfg->listeners == NULL) {
            lv_cfg_oom(c, root);
        } else if ((cfg->listeners[0].address = lv_cfg_strdup("0.0.0.0:8080")) == NULL) {
            lv_cfg_oom(c, root);
        } else if (lv_addr_resolve("0.0.0.0", 8080, true, &cfg->listeners[0].addr,
                                   &cfg->listeners[0].addrlen, &why) == 0) {
            cfg->n_listeners = 1;
        } else {
            lv_listen_cfg_dispose(&cfg->listeners[0]);
        }
    }
    if (cfg->admin.enabled && !is_loopback(&cfg->admin.listen.addr) && cfg->admin.token == NULL &&
        c->nerrors == 0) {
        yaml_node_t *at = find_key(c, find_key(c, root, "admin"), "listen");
        lv_cfg_error(c, at,
                     "admin: listen %s is not a loopback address: set admin.token (control "
                     "endpoints need it) or listen on 127.0.0.1",
                     cfg->admin.listen.address);
    }
    /* A burst defaults to one second's worth (at least 1 request). */
    struct lv_rate_cfg *rl = &cfg->rate_limit;
    if (rl->rate > 0 && rl->burst == 0) rl->burst = rl->rate < 1 ? 1 : (uint64_t)rl->rate;
    if (rl->client_rate > 0 && rl->client_burst == 0)
        rl->client_burst = rl->client_rate < 1 ? 1 : (uint64_t)rl->client_rate;
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (unsigned)(n > 64 ? 64 : n) : 1;
    }
    /* Last: what pools and routes do not set comes from the keys above. */
    lv_config_read_routes(c, root, cfg);
}

const struct lv_cfg_field *lv_config_fields(void)
{
    return root_fields;
}

/* --- entry points --------------------------------------------------------- */

static struct lv_config *load_parser(const char *name, yaml_parser_t *parser, FILE *errs,
                                     int *nerrors)
{
    struct lv_cfg_ctx c = {.file = name, .errs = errs};
    yaml_document_t doc;
    *nerrors = 0;
    if (!yaml_parser_load(parser, &doc)) {
        fprintf(errs, "%s:%zu:%zu: YAML syntax error: %s%s%s\n", name,
                parser->problem_mark.line + 1, parser->problem_mark.column + 1,
                parser->problem ? parser->problem : "unknown", parser->context ? " " : "",
                parser->context ? parser->context : "");
        *nerrors = 1;
        return NULL;
    }
    c.doc = &doc;
    struct lv_config *cfg = lv_cfg_calloc(1, sizeof(*cfg));
    if (cfg == NULL || lv_config_defaults(cfg) != 0 || (cfg->path = lv_cfg_strdup(name)) == NULL) {
        fprintf(errs, "%s:1:1: out of memory\n", name);
        *nerrors = 1;
        lv_config_destroy(cfg);
        yaml_document_delete(&doc);
        return NULL;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_document_t next;
    if (root != NULL && yaml_parser_load(parser, &next)) {
        yaml_node_t *extra = yaml_document_get_root_node(&next);
        if (extra) {
            fprintf(errs, "%s:%zu:%zu: a second YAML document ('---') is not allowed\n", name,
                    extra->start_mark.line + 1, extra->start_mark.column + 1);
            c.nerrors++;
        }
        yaml_document_delete(&next);
    }
    if (root == NULL) {
        fprintf(errs, "%s:1:1: the file is empty (at least `backends:` is expected)\n", name);
        c.nerrors++;
    } else {
        config_read(&c, root, cfg);
    }
    yaml_document_delete(&doc);
    if (c.nerrors > 0) {
        *nerrors = c.nerrors;
        lv_config_destroy(cfg);
        return NULL;
    }
    return cfg;
}

struct lv_config *lv_config_load(const char *path, FILE *errs, int *nerrors)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(errs, "%s:1:1: cannot open: %s\n", path, strerror(errno));
        *nerrors = 1;
        return NULL;
    }
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    struct lv_config *cfg = load_parser(path, &parser, errs, nerrors);
    yaml_parser_delete(&parser);
    fclose(f);
    return cfg;
}

struct lv_config *lv_config_load_string(const char *name, const char *text, size_t len, FILE *errs,
                                        int *nerrors)
{
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    struct lv_config *cfg = load_parser(name, &parser, errs, nerrors);
    yaml_parser_delete(&parser);
    return cfg;
}
