/*
 * YAML → struct lv_config. libyaml builds the document tree (with the line
 * and column of every node); a table of fields per section then walks it.
 * Every problem is reported, not just the first, as
 * "FILE:LINE:COL: key.path: what is wrong (what is allowed)", and a key that
 * is not in the table is an error: a typo must never be silently ignored.
 */
#include "config/load.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/units.h"

static unsigned long fail_countdown; /* test hook: lv_cfg_fail_alloc */
static unsigned long allocs;         /* made so far, for the same tests */

static bool alloc_fails(void)
{
    allocs++;
    return fail_countdown > 0 && --fail_countdown == 0;
}

unsigned long lv_cfg_allocs(void)
{
    return allocs;
}

void lv_cfg_fail_alloc(unsigned long n)
{
    fail_countdown = n;
}

void *lv_cfg_calloc(size_t n, size_t size)
{
    return alloc_fails() ? NULL : calloc(n, size);
}

char *lv_cfg_strdup(const char *s)
{
    return alloc_fails() ? NULL : strdup(s);
}

int lv_cfg_oom(struct lv_cfg_ctx *c, const yaml_node_t *n)
{
    lv_cfg_error(c, n, "out of memory");
    return UV_ENOMEM;
}

void lv_cfg_error(struct lv_cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    size_t line = n ? n->start_mark.line + 1 : 1;
    size_t col = n ? n->start_mark.column + 1 : 1;
    fprintf(c->errs, "%s:%zu:%zu: ", c->file, line, col);
    if (c->keypath[0]) fprintf(c->errs, "%s: ", c->keypath);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(c->errs, fmt, ap);
    va_end(ap);
    fputc('\n', c->errs);
    c->nerrors++;
}

yaml_node_t *lv_cfg_node(struct lv_cfg_ctx *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

bool lv_cfg_is_null(const yaml_node_t *n)
{
    if (n == NULL) return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

static const char *node_kind(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "a value";
    }
}

const char *lv_cfg_scalar(struct lv_cfg_ctx *c, const yaml_node_t *n, const char *expected)
{
    if (n->type != YAML_SCALAR_NODE) {
        lv_cfg_error(c, n, "expected %s, got %s", expected, node_kind(n));
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

void lv_cfg_append(char *dst, size_t cap, const char *sep, const char *item)
{
    size_t len = strnlen(dst, cap);
    if (len + 1 >= cap) return;
    snprintf(dst + len, cap - len, "%s%s", len && sep ? sep : "", item);
}

/* --- field parsers -------------------------------------------------------- */

int lv_cfg_duration(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    const char *s = lv_cfg_scalar(c, n, "a duration");
    if (s == NULL) return UV_EINVAL;
    uint64_t ms;
    if (lv_parse_duration_ms(s, &ms) != 0) {
        lv_cfg_error(c, n, "'%s' is not a duration (e.g. 250ms, 5s, 1m; a bare number is seconds)",
                     s);
        return UV_EINVAL;
    }
    if (ms < f->min || ms > f->max) {
        lv_cfg_error(c, n, "%s is out of range (%llums to %llums)", s, (unsigned long long)f->min,
                     (unsigned long long)f->max);
        return UV_EINVAL;
    }
    *(uint64_t *)dst = ms;
    return 0;
}

int lv_cfg_size(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    const char *s = lv_cfg_scalar(c, n, "a size");
    if (s == NULL) return UV_EINVAL;
    uint64_t v;
    if (lv_parse_size(s, &v) != 0) {
        lv_cfg_error(c, n, "'%s' is not a size (e.g. 512, 64KiB, 10MiB, 1GiB)", s);
        return UV_EINVAL;
    }
    if (v < f->min || v > f->max) {
        lv_cfg_error(c, n, "%s is out of range (%llu to %llu bytes)", s, (unsigned long long)f->min,
                     (unsigned long long)f->max);
        return UV_EINVAL;
    }
    *(uint64_t *)dst = v;
    return 0;
}

int lv_cfg_uint(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    const char *s = lv_cfg_scalar(c, n, "a number");
    if (s == NULL) return UV_EINVAL;
    uint64_t v;
    if (lv_parse_u64(s, &v) != 0) {
        lv_cfg_error(c, n, "'%s' is not a whole number", s);
        return UV_EINVAL;
    }
    if (v < f->min || v > f->max) {
        lv_cfg_error(c, n, "%s is out of range (%llu to %llu)", s, (unsigned long long)f->min,
                     (unsigned long long)f->max);
        return UV_EINVAL;
    }
    *(uint64_t *)dst = v;
    return 0;
}

int lv_cfg_u32(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    uint64_t v;
    if (lv_cfg_uint(c, n, &v, f) != 0) return UV_EINVAL;
    *(uint32_t *)dst = (uint32_t)v;
    return 0;
}

int lv_cfg_bool(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    (void)f;
    const char *s = lv_cfg_scalar(c, n, "true or false");
    if (s == NULL) return UV_EINVAL;
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};
    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *(bool *)dst = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *(bool *)dst = false;
            return 0;
        }
    }
    lv_cfg_error(c, n, "'%s' is not a boolean (true or false)", s);
    return UV_EINVAL;
}

int lv_cfg_string(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    (void)f;
    const char *s = lv_cfg_scalar(c, n, "a string");
    if (s == NULL) return UV_EINVAL;
    if (s[0] == '\0') {
        lv_cfg_error(c, n, "must not be empty");
        return UV_EINVAL;
    }
    char **p = dst;
    free(*p);
    *p = lv_cfg_strdup(s);
    return *p ? 0 : lv_cfg_oom(c, n);
}

int lv_cfg_choice(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    const char *s = lv_cfg_scalar(c, n, "a name");
    if (s == NULL) return UV_EINVAL;
    const char *const *names = f->aux;
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *(int *)dst = i;
            return 0;
        }
    }
    char allowed[256] = "";
    for (int i = 0; names[i]; i++)
        lv_cfg_append(allowed, sizeof(allowed), ", ", names[i]);
    lv_cfg_error(c, n, "unknown value '%s' (allowed: %s)", s, allowed);
    return UV_EINVAL;
}

int lv_cfg_section(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    return lv_cfg_walk(c, n, f->aux, dst);
}

int lv_cfg_strlist(struct lv_cfg_ctx *c, yaml_node_t *n, void *dst, const struct lv_cfg_field *f)
{
    (void)f;
    struct lv_strlist *out = dst;
    if (lv_cfg_is_null(n)) return 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        lv_cfg_error(c, n, "expected a list, got %s", node_kind(n));
        return UV_EINVAL;
    }
    size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    for (size_t i = 0; i < out->n; i++)
        free(out->items[i]);
    free(out->items);
    out->n = 0;
    out->items = lv_cfg_calloc(count ? count : 1, sizeof(char *));
    if (out->items == NULL) return lv_cfg_oom(c, n);
    int rc = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        yaml_node_t *item = lv_cfg_node(c, *it);
        const char *s = lv_cfg_scalar(c, item, "a string");
        if (s == NULL || s[0] == '\0') {
            if (s) lv_cfg_error(c, item, "must not be empty");
            rc = UV_EINVAL;
            continue;
        }
        if ((out->items[out->n] = lv_cfg_strdup(s)) == NULL) return lv_cfg_oom(c, item);
        out->n++;
    }
    return rc;
}

/* --- the walker ----------------------------------------------------------- */

static size_t keypath_push(struct lv_cfg_ctx *c, const char *key)
{
    size_t old = strlen(c->keypath);
    lv_cfg_append(c->keypath, sizeof(c->keypath), ".", key);
    return old;
}

int lv_cfg_walk(struct lv_cfg_ctx *c, yaml_node_t *n, const struct lv_cfg_field *fields, void *base)
{
    if (lv_cfg_is_null(n)) return 0; /* "section:" with nothing under it: defaults */
    if (n->type != YAML_MAPPING_NODE) {
        lv_cfg_error(c, n, "expected a mapping (key: value lines), got %s", node_kind(n));
        return UV_EINVAL;
    }
    int rc = 0;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = lv_cfg_node(c, p->key);
        yaml_node_t *v = lv_cfg_node(c, p->value);
        if (k->type != YAML_SCALAR_NODE) {
            lv_cfg_error(c, k, "a key must be a plain name");
            rc = UV_EINVAL;
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        bool dup = false;
        for (yaml_node_pair_t *q = n->data.mapping.pairs.start; q < p && !dup; q++) {
            yaml_node_t *qk = lv_cfg_node(c, q->key);
            if (qk->type == YAML_SCALAR_NODE &&
                strcmp((const char *)qk->data.scalar.value, key) == 0) {
                lv_cfg_error(c, k, "duplicate key '%s' (first at line %zu)", key,
                             qk->start_mark.line + 1);
                dup = true;
            }
        }
        if (dup) { /* the first one counts; the value of this one is not read */
            rc = UV_EINVAL;
            continue;
        }
        const struct lv_cfg_field *f = fields;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        if (f->key == NULL) {
            char allowed[512] = "";
            for (const struct lv_cfg_field *g = fields; g->key; g++)
                lv_cfg_append(allowed, sizeof(allowed), ", ", g->key);
            lv_cfg_error(c, k, "unknown key '%s' (allowed here: %s)", key, allowed);
            rc = UV_EINVAL;
            continue;
        }
        size_t old = keypath_push(c, key);
        if (f->parse(c, v, (char *)base + f->off, f) != 0) rc = UV_EINVAL;
        c->keypath[old] = '\0';
    }
    return rc;
}
