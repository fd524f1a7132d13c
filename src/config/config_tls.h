/*
 * The TLS parts of the configuration: a listener written as a mapping
 * (`address` and `tls`), and a backend's `tls` settings. The OpenSSL
 * contexts are built while the file is read, so that a missing or wrong
 * certificate is reported with its line, by `levee -t` too.
 */
#ifndef LV_CONFIG_CONFIG_TLS_H
#define LV_CONFIG_CONFIG_TLS_H

#include "config/load.h"

/* `- address: host:port` with an optional `tls:` mapping. */
int lv_cfg_listen_map(struct lv_cfg_ctx *c, yaml_node_t *n, struct lv_listen_cfg *out);

/* A backend's `tls:` mapping (node may be NULL: defaults); builds the
 * client context for an https:// backend. */
int lv_cfg_backend_tls(struct lv_cfg_ctx *c, yaml_node_t *n, yaml_node_t *url_node,
                       struct lv_backend_cfg *b);

/* The field tables of a listener mapping and of a backend's `tls:`, for
 * the tables that hold them (their aux). */
extern const struct lv_cfg_field lv_cfg_listen_fields[];
extern const struct lv_cfg_field lv_cfg_backend_tls_fields[];

#endif
