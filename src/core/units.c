/* Parsing of durations and sizes; strict: trailing garbage is an error. */
#include "core/units.h"

#include <uv.h>

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int lv_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)s[0])) return UV_EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') return UV_EINVAL;
    *out = v;
    return 0;
}

/* A non-negative decimal ("12", "1.5", ".25") split into its integer part
 * and its fraction (frac / 10^fdigits), then the unit suffix. Integers all
 * the way: "2.007s" is exactly 2007 ms. */
struct decimal {
    uint64_t ip, frac, scale; /* value = ip + frac / scale */
};

static int split_number(const char *s, struct decimal *d, const char **suffix)
{
    const char *p = s;
    d->ip = 0;
    d->frac = 0;
    d->scale = 1;
    bool digits = false;
    while (isdigit((unsigned char)*p)) {
        if (d->ip > (UINT64_MAX - 9) / 10) return UV_EINVAL;
        d->ip = d->ip * 10 + (uint64_t)(*p++ - '0');
        digits = true;
    }
    if (*p == '.') {
        p++;
        while (isdigit((unsigned char)*p)) {
            if (d->scale >= 1000000000000ull) return UV_EINVAL; /* 12 decimals is plenty */
            d->frac = d->frac * 10 + (uint64_t)(*p++ - '0');
            d->scale *= 10;
            digits = true;
        }
    }
    if (!digits) return UV_EINVAL;
    while (*p == ' ')
        p++;
    *suffix = p;
    return 0;
}

struct unit {
    const char *name;
    uint64_t factor;
};

/* value * factor of the matching unit (bare: `bare`); *exact tells whether
 * the fraction came out whole. */
static int scale(const char *s, const struct unit *units, uint64_t bare, uint64_t *out, bool *exact)
{
    struct decimal d;
    const char *suffix;
    if (s == NULL || split_number(s, &d, &suffix) != 0) return UV_EINVAL;
    uint64_t f = bare;
    if (*suffix != '\0') {
        const struct unit *u = units;
        while (u->name && strcasecmp(suffix, u->name) != 0)
            u++;
        if (u->name == NULL) return UV_EINVAL;
        f = u->factor;
    }
    if (d.ip && f > UINT64_MAX / d.ip) return UV_EINVAL;
    unsigned __int128 frac = (unsigned __int128)d.frac * f;
    uint64_t whole = (uint64_t)(frac / d.scale);
    *exact = frac % d.scale == 0;
    if (d.ip * f > UINT64_MAX - whole - 1) return UV_EINVAL;
    *out = d.ip * f + whole + (*exact ? 0 : 1); /* rounds up */
    return 0;
}

int lv_parse_duration_ms(const char *s, uint64_t *ms)
{
    /* In microseconds, then rounded up to whole milliseconds. */
    static const struct unit units[] = {
        {"us", 1},       {"ms", 1000},         {"s", 1000000},
        {"m", 60000000}, {"h", 3600000000ull}, {"d", 86400000000ull},
        {NULL, 0}};
    uint64_t us;
    bool exact;
    if (scale(s, units, 1000000, &us, &exact) != 0) return UV_EINVAL;
    *ms = us / 1000 + (us % 1000 != 0);
    return 0;
}

int lv_parse_size(const char *s, uint64_t *bytes)
{
    static const struct unit units[] = {{"b", 1},
                                        {"k", 1ull << 10},
                                        {"kb", 1ull << 10},
                                        {"kib", 1ull << 10},
                                        {"m", 1ull << 20},
                                        {"mb", 1ull << 20},
                                        {"mib", 1ull << 20},
                                        {"g", 1ull << 30},
                                        {"gb", 1ull << 30},
                                        {"gib", 1ull << 30},
                                        {NULL, 0}};
    bool exact;
    uint64_t v;
    if (scale(s, units, 1, &v, &exact) != 0 || !exact) return UV_EINVAL;
    *bytes = v;
    return 0;
}
