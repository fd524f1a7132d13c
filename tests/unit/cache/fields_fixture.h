/*
 * Header fields for the cache tests: a field view built from "Name: value"
 * strings, and HTTP dates from a fake clock.
 */
#ifndef LV_TESTS_UNIT_CACHE_FIELDS_FIXTURE_H
#define LV_TESTS_UNIT_CACHE_FIELDS_FIXTURE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "cache/fields.h"
#include "http/date.h"

/* The fake clock's origin: 2023-11-14T22:13:20Z, in ms. */
#define T0 1700000000000ll
#define SEC 1000ll

struct tfields {
    char text[16384];
    struct lv_hfield f[128];
    struct lv_fields v;
};

/* Fills t from lines "Name: value" (NULL-terminated); returns its view. */
static inline struct lv_fields *tf_fill(struct tfields *t, const char *const *lines)
{
    uint32_t off = 0, n = 0;
    for (; lines[n]; n++) {
        const char *l = lines[n];
        const char *colon = strchr(l, ':');
        cr_assert_not_null(colon, "no colon in '%s'", l);
        cr_assert_lt(n, 128);
        size_t nl = (size_t)(colon - l);
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        size_t vl = strlen(v);
        cr_assert_lt(off + nl + vl, sizeof(t->text));
        memcpy(t->text + off, l, nl);
        t->f[n].name = off;
        t->f[n].name_len = (uint32_t)nl;
        off += (uint32_t)nl;
        memcpy(t->text + off, v, vl);
        t->f[n].value = off;
        t->f[n].value_len = (uint32_t)vl;
        off += (uint32_t)vl;
        t->f[n].flags = 0;
    }
    t->v.base = t->text;
    t->v.f = t->f;
    t->v.n = n;
    return &t->v;
}

#define TF(t, ...) tf_fill((t), (const char *const[]){__VA_ARGS__, NULL})
#define TF_EMPTY(t) tf_fill((t), (const char *const[]){NULL})

/* "Name: <IMF-fixdate of ms>" into buf. */
static inline const char *tf_date(char *buf, size_t cap, const char *name, long long ms)
{
    char d[LV_HTTP_DATE_LEN + 1];
    lv_http_date_format(d, ms / 1000);
    snprintf(buf, cap, "%s: %s", name, d);
    return buf;
}

/* The value of the first field named name in fs, as a NUL-terminated copy
 * ("" when absent; *found tells). */
static inline const char *tf_get(const struct lv_fields *fs, const char *name, char *out,
                                 size_t cap)
{
    struct lv_field f;
    uint32_t i = 0;
    out[0] = '\0';
    if (lv_fields_next(fs, name, strlen(name), &i, &f)) {
        size_t n = f.value_len < cap - 1 ? f.value_len : cap - 1;
        memcpy(out, f.value, n);
        out[n] = '\0';
    }
    return out;
}

#endif
