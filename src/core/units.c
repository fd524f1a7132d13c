/* Parsing of durations and sizes; strict: trailing garbage is an error. */
#include "core/units.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int lv_parse_u64(const char *s, uint64_t *out)
{
    if (s == NULL || !isdigit((unsigned char)s[0])) return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') return -1;
    *out = v;
    return 0;
}

/* A non-negative decimal number (with optional fraction) and its suffix. */
static int split_number(const char *s, double *value, const char **suffix)
{
    if (s == NULL || !(isdigit((unsigned char)s[0]) || s[0] == '.')) return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(v) || v < 0) return -1;
    /* strtod accepts hex and exponents; levee's files do not need them. */
    for (const char *p = s; p < end; p++) {
        if (!isdigit((unsigned char)*p) && *p != '.') return -1;
    }
    while (*end == ' ')
        end++;
    *value = v;
    *suffix = end;
    return 0;
}

struct unit {
    const char *name;
    double factor;
};

static int scale(const char *s, const struct unit *units, double bare, double *out)
{
    double v;
    const char *suffix;
    if (split_number(s, &v, &suffix) != 0) return -1;
    if (*suffix == '\0') {
        *out = v * bare;
        return 0;
    }
    for (const struct unit *u = units; u->name; u++) {
        if (strcasecmp(suffix, u->name) == 0) {
            *out = v * u->factor;
            return 0;
        }
    }
    return -1;
}

int lv_parse_duration_ms(const char *s, uint64_t *ms)
{
    static const struct unit units[] = {{"us", 0.001},  {"ms", 1},       {"s", 1000}, {"m", 60000},
                                        {"h", 3600000}, {"d", 86400000}, {NULL, 0}};
    double v;
    if (scale(s, units, 1000, &v) != 0) return -1;
    if (v > 1e15) return -1;
    uint64_t r = (uint64_t)ceil(v);
    *ms = r;
    return 0;
}

int lv_parse_size(const char *s, uint64_t *bytes)
{
    static const struct unit units[] = {{"b", 1},
                                        {"k", 1024.0},
                                        {"kb", 1024.0},
                                        {"kib", 1024.0},
                                        {"m", 1048576.0},
                                        {"mb", 1048576.0},
                                        {"mib", 1048576.0},
                                        {"g", 1073741824.0},
                                        {"gb", 1073741824.0},
                                        {"gib", 1073741824.0},
                                        {NULL, 0}};
    double v;
    if (scale(s, units, 1, &v) != 0) return -1;
    if (v > 1e18 || v != floor(v)) return -1;
    *bytes = (uint64_t)v;
    return 0;
}
