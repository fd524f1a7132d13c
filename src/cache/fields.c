/*
 * Field lookups and list walking over a struct lv_fields.
 */
#include "cache/fields.h"

#include <strings.h>

bool lv_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

bool lv_fields_is(const struct lv_fields *fs, uint32_t i, const char *name, size_t len)
{
    const struct lv_hfield *h = &fs->f[i];
    return lv_name_eq(fs->base + h->name, h->name_len, name, len);
}

bool lv_fields_next(const struct lv_fields *fs, const char *name, size_t len, uint32_t *i,
                    struct lv_field *out)
{
    for (; *i < fs->n; (*i)++) {
        if (lv_fields_is(fs, *i, name, len)) {
            *out = lv_fields_at(fs, *i);
            (*i)++;
            return true;
        }
    }
    return false;
}

bool lv_fields_has(const struct lv_fields *fs, const char *name, size_t len)
{
    for (uint32_t i = 0; i < fs->n; i++) {
        if (lv_fields_is(fs, i, name, len)) return true;
    }
    return false;
}

static bool is_ows(char c)
{
    return c == ' ' || c == '\t';
}

bool lv_list_next(const char *v, size_t n, size_t *pos, const char **item, size_t *item_len)
{
    size_t i = *pos;
    for (;;) {
        while (i < n && (is_ows(v[i]) || v[i] == ','))
            i++;
        if (i >= n) {
            *pos = n;
            return false;
        }
        size_t start = i;
        bool quoted = false;
        while (i < n && (quoted || v[i] != ',')) {
            if (v[i] == '"') {
                quoted = !quoted;
            } else if (quoted && v[i] == '\\' && i + 1 < n) {
                i++;
            }
            i++;
        }
        size_t end = i;
        while (end > start && is_ows(v[end - 1]))
            end--;
        if (end > start) {
            *item = v + start;
            *item_len = end - start;
            *pos = i;
            return true;
        }
    }
}
