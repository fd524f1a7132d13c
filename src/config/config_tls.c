/*
 * TLS settings of listeners and backends, and their OpenSSL contexts.
 */
#include "config/config_tls.h"

#include <stdlib.h>
#include <string.h>

#include "net/addr.h"

static int parse_version(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                         const struct lv_cfg_field *f)
{
    (void)f;
    const char *s = lv_cfg_scalar(c, n, "a TLS version");
    if (s == NULL) return UV_EINVAL;
    if (strcmp(s, "1.2") == 0)
        *(int *)dst = TLS1_2_VERSION;
    else if (strcmp(s, "1.3") == 0)
        *(int *)dst = TLS1_3_VERSION;
    else {
        lv_cfg_error(c, n, "'%s' is not a TLS version levee accepts (1.2 or 1.3)", s);
        return UV_EINVAL;
    }
    return 0;
}

struct cert_yaml {
    char *cert, *key;
};

static const struct lv_cfg_field cert_fields[] = {
    {"cert", lv_cfg_string, offsetof(struct cert_yaml, cert), 0, 0, NULL},
    {"key", lv_cfg_string, offsetof(struct cert_yaml, key), 0, 0, NULL},
    {NULL, NULL, 0, 0, 0, NULL},
};

static int parse_certs(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                       const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_tls_listen_cfg *t = dst;
    if (n->type != YAML_SEQUENCE_NODE) {
        lv_cfg_error(c, n, "expected a list of {cert: FILE, key: FILE}");
        return UV_EINVAL;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    t->certs = lv_cfg_calloc(count ? count : 1, sizeof(*t->certs));
    if (t->certs == NULL) return lv_cfg_oom(c, n);
    int rc = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = lv_cfg_node(c, *it);
        struct cert_yaml y = {0};
        if (lv_cfg_walk(c, item, cert_fields, &y) != 0 || y.cert == NULL || y.key == NULL) {
            if (y.cert == NULL || y.key == NULL) lv_cfg_error(c, item, "needs both cert and key");
            free(y.cert);
            free(y.key);
            rc = UV_EINVAL;
            continue;
        }
        t->certs[t->ncerts].cert = y.cert;
        t->certs[t->ncerts].key = y.key;
        t->ncerts++;
    }
    return rc;
}

#define F(key, parse, type, member, min, max, aux)                                                 \
    {                                                                                              \
        key, parse, offsetof(type, member), min, max, aux                                          \
    }

static const struct lv_cfg_field listen_tls_fields[] = {
    {"certificates", parse_certs, 0, 0, 0, cert_fields},
    F("min_version", parse_version, struct lv_tls_listen_cfg, min_version, 0, 0, NULL),
    F("ciphers", lv_cfg_string, struct lv_tls_listen_cfg, ciphers, 0, 0, NULL),
    F("ciphersuites", lv_cfg_string, struct lv_tls_listen_cfg, ciphersuites, 0, 0, NULL),
    F("handshake_timeout", lv_cfg_duration, struct lv_tls_listen_cfg, handshake_timeout, 1, 3600000,
      NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

struct listen_yaml {
    char *address;
    bool http2;
    yaml_node_t *http2_node;
    struct lv_tls_listen_cfg tls;
    yaml_node_t *tls_node;
};

static int parse_listen_tls(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                            const struct lv_cfg_field *f)
{
    (void)f;
    struct listen_yaml *y = dst;
    y->tls_node = n;
    return lv_cfg_walk(c, n, listen_tls_fields, &y->tls);
}

/* `http2:` is on by default with TLS (ALPN), off without (prior knowledge). */
static int parse_listen_http2(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                              const struct lv_cfg_field *f)
{
    struct listen_yaml *y = dst;
    y->http2_node = n;
    return lv_cfg_bool(c, n, &y->http2, f);
}

const struct lv_cfg_field lv_cfg_listen_fields[] = {
    {"address", lv_cfg_string, offsetof(struct listen_yaml, address), 0, 0, NULL},
    {"http2", parse_listen_http2, 0, 0, 0, NULL},
    {"tls", parse_listen_tls, 0, 0, 0, listen_tls_fields},
    {NULL, NULL, 0, 0, 0, NULL},
};

int lv_cfg_listen_map(struct lv_cfg_ctx *c, yaml_node_t *n, struct lv_listen_cfg *out)
{
    struct listen_yaml y = {.tls = {.min_version = TLS1_2_VERSION, .handshake_timeout = 10000}};
    int rc = lv_cfg_walk(c, n, lv_cfg_listen_fields, &y);
    out->tls = y.tls;
    if (y.address == NULL) {
        if (rc == 0) lv_cfg_error(c, n, "a listener needs an address");
        free(y.address);
        return UV_EINVAL;
    }
    char host[256];
    uint16_t port;
    const char *why;
    if (lv_addr_split(y.address, host, sizeof(host), &port, &why) != 0 ||
        lv_addr_resolve(host, port, true, &out->addr, &out->addrlen, &why) != 0) {
        lv_cfg_error(c, n, "'%s': %s", y.address, why);
        free(y.address);
        return UV_EINVAL;
    }
    out->address = y.address;
    out->http2 = y.http2_node ? y.http2 : y.tls_node != NULL;
    if (y.tls_node == NULL || rc != 0) return rc;
    out->tls_enabled = true;
    out->tls.h2 = out->http2;
    if (out->tls.ncerts == 0) {
        lv_cfg_error(c, y.tls_node, "tls needs at least one certificate (certificates: ...)");
        return UV_EINVAL;
    }
    char err[300];
    out->tls_ctx = lv_tls_server_ctx(&out->tls, err, sizeof(err));
    if (out->tls_ctx == NULL) {
        lv_cfg_error(c, y.tls_node, "%s", err);
        return UV_EINVAL;
    }
    return 0;
}

const struct lv_cfg_field lv_cfg_backend_tls_fields[] = {
    F("ca_file", lv_cfg_string, struct lv_tls_backend_cfg, ca_file, 0, 0, NULL),
    F("server_name", lv_cfg_string, struct lv_tls_backend_cfg, server_name, 0, 0, NULL),
    F("insecure_skip_verify", lv_cfg_bool, struct lv_tls_backend_cfg, insecure_skip_verify, 0, 0,
      NULL),
    F("cert", lv_cfg_string, struct lv_tls_backend_cfg, cert, 0, 0, NULL),
    F("key", lv_cfg_string, struct lv_tls_backend_cfg, key, 0, 0, NULL),
    F("min_version", parse_version, struct lv_tls_backend_cfg, min_version, 0, 0, NULL),
    {NULL, NULL, 0, 0, 0, NULL},
};

int lv_cfg_backend_tls(struct lv_cfg_ctx *c, yaml_node_t *n, yaml_node_t *url_node,
                       struct lv_backend_cfg *b)
{
    bool https = b->tls.enabled;
    b->tls.min_version = TLS1_2_VERSION;
    /* A pool's tls: first (an https backend's defaults), then its own. */
    yaml_node_t *pool = c->pool_tls;
    if (https && pool && lv_cfg_walk(c, pool, lv_cfg_backend_tls_fields, &b->tls) != 0)
        return UV_EINVAL;
    if (n && lv_cfg_walk(c, n, lv_cfg_backend_tls_fields, &b->tls) != 0) return UV_EINVAL;
    if (!https) {
        if (n) {
            lv_cfg_error(c, n, "tls settings need an https:// url");
            return UV_EINVAL;
        }
        return 0;
    }
    if ((b->tls.cert == NULL) != (b->tls.key == NULL)) {
        lv_cfg_error(c, n, "a client certificate needs both cert and key");
        return UV_EINVAL;
    }
    char err[300];
    b->tls_ctx = lv_tls_client_ctx(&b->tls, err, sizeof(err));
    if (b->tls_ctx == NULL) {
        lv_cfg_error(c, n ? n : pool && https ? pool : url_node, "%s", err);
        return UV_EINVAL;
    }
    return 0;
}
