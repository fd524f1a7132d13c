/*
 * The config walker: YAML nodes into typed fields, for the section tables
 * (config.c, config_tls.c). A section is a NULL-terminated array of fields;
 * each field names its key, its parser, where the value goes (offset in the
 * section's struct) and its bounds.
 */
#ifndef LV_CONFIG_LOAD_H
#define LV_CONFIG_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>
#include <yaml.h>

#include "config/config-t.h"

struct lv_cfg_ctx {
    const char *file;
    yaml_document_t *doc;
    FILE *errs;
    int nerrors;
    char keypath[256]; /* "timeouts.connect", for messages */
    /* A pool's `tls:` while its backends are read (config/pools.c): the
     * defaults of their own `tls` (config_tls.c). NULL otherwise. */
    yaml_node_t *pool_tls;
};

struct lv_cfg_field;
typedef int (*lv_cfg_parse_cb)(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst,
                               const struct lv_cfg_field *f);

struct lv_cfg_field {
    const char *key;
    lv_cfg_parse_cb parse;
    size_t off;
    uint64_t min, max;
    /* Names for lv_cfg_choice; otherwise, when not NULL, the field table of
     * what is under the key (a section, a list of mappings, a mapping read
     * by a parser of its own), so that the tables describe every key: the
     * docs are checked against them (tests/tools/config_keys.c). */
    const void *aux;
};

/*
 * The loader's allocations. The loader runs on SIGHUP inside a live server:
 * every allocation is checked, and a failure is an error of the load (the
 * running configuration stays), never a crash. lv_cfg_calloc and
 * lv_cfg_strdup are calloc and strdup (NULL on failure), except that a test
 * can make one of them fail: after lv_cfg_fail_alloc(n), the n-th
 * allocation from then on returns NULL (n = 0: none). Main thread only.
 */
void *lv_cfg_calloc(size_t n, size_t size);
char *lv_cfg_strdup(const char *s);
void lv_cfg_fail_alloc(unsigned long n);
/* How many allocations the loader made so far (for the same tests). */
unsigned long lv_cfg_allocs(void);
/* Reports "out of memory" at n and returns UV_ENOMEM, for `return`. */
int lv_cfg_oom(struct lv_cfg_ctx *c, const yaml_node_t *n);

/* Appends item to the string in dst (capacity cap), after sep when dst is
 * not empty; truncates rather than overflows. */
void lv_cfg_append(char *dst, size_t cap, const char *sep, const char *item);

/* Reports an error at a node's position; counts it. */
void lv_cfg_error(struct lv_cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
yaml_node_t *lv_cfg_node(struct lv_cfg_ctx *c, int index);
bool lv_cfg_is_null(const yaml_node_t *n);
/* The scalar's text, or NULL after reporting "expected <expected>". */
const char *lv_cfg_scalar(struct lv_cfg_ctx *c, const yaml_node_t *n, const char *expected);

/* Walks a mapping with a field table; returns 0 or UV_EINVAL (errors
 * reported). Every field parser returns the same. */
int lv_cfg_walk(struct lv_cfg_ctx *c, yaml_node_t *n, const struct lv_cfg_field *fields,
                void *base);

/* Field parsers. dst types: duration/size/uint → uint64_t, u32 → uint32_t,
 * bool → bool, string → char * (strdup'd), choice → int (index in aux, a
 * NULL-terminated array of names), section → struct at dst (aux = fields),
 * strlist → struct lv_strlist. */
int lv_cfg_duration(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
int lv_cfg_size(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
int lv_cfg_uint(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
int lv_cfg_u32(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
int lv_cfg_bool(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
int lv_cfg_string(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
int lv_cfg_choice(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
int lv_cfg_section(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);
int lv_cfg_strlist(struct lv_cfg_ctx *, yaml_node_t *, void *, const struct lv_cfg_field *);

#endif
