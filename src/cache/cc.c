/*
 * Cache-Control and targeted-field parsing. Both syntaxes feed one setter
 * per directive (`apply`), so that Cache-Control and CDN-Cache-Control mean
 * the same thing once read; they differ in duplicates (Cache-Control: two
 * different max-age values make the response stale; a dictionary: the last
 * member wins) and in error handling (a bad Cache-Control directive is
 * skipped; a bad dictionary voids the whole field).
 */
#include "cache/cc.h"

#include <string.h>
#include <strings.h>

#include "cache/fields.h"

void lv_cc_init(struct lv_cc *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->max_age = cc->s_maxage = cc->max_stale = cc->min_fresh = LV_CC_ABSENT;
    cc->swr = cc->sie = LV_CC_ABSENT;
}

/* A directive's argument as the parser found it. */
enum arg_kind {
    ARG_NONE,   /* no argument (or a Boolean true) */
    ARG_NUMBER, /* valid delta-seconds in num */
    ARG_TEXT,   /* anything else: text in p[0..n) (a quoted string without its quotes) */
};

struct arg {
    enum arg_kind kind;
    int64_t num;
    const char *p;
    size_t n;
};

/* delta-seconds: 1*DIGIT, clamped to 2^31. */
static bool delta(const char *p, size_t n, int64_t *out)
{
    if (n == 0) return false;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        if (v < LV_CC_DELTA_MAX) v = v * 10 + (p[i] - '0');
    }
    *out = v < LV_CC_DELTA_MAX ? v : LV_CC_DELTA_MAX;
    return true;
}

/* A delta for max-age / s-maxage: invalid means stale (0); a second,
 * different value in Cache-Control means stale too (§4.2.1). */
static void set_lifetime(int64_t *slot, const struct arg *a, bool last_wins)
{
    int64_t v = 0;
    if (a->kind == ARG_NUMBER)
        v = a->num;
    else if (a->kind != ARG_TEXT || !delta(a->p, a->n, &v)) /* max-age="60" is 60 */
        v = 0;
    if (*slot == LV_CC_ABSENT || last_wins)
        *slot = v;
    else if (*slot != v)
        *slot = 0;
}

/* A delta where an invalid value leaves the directive out. */
static void set_delta(int64_t *slot, const struct arg *a)
{
    int64_t v;
    if (a->kind == ARG_NUMBER)
        *slot = a->num;
    else if (a->kind == ARG_TEXT && delta(a->p, a->n, &v))
        *slot = v;
}

static void set_qualified(struct lv_cc *cc, uint32_t flag, struct lv_cc_names *l, uint8_t *count,
                          const struct arg *a)
{
    if (a->kind == ARG_NONE) {
        cc->flags |= flag;
    } else if (*count < LV_CC_QUAL_MAX) {
        l[*count].p = a->p;
        l[*count].n = (uint32_t)a->n;
        (*count)++;
    } else {
        cc->flags |= flag; /* too many lists: the stricter reading */
    }
}

#define IS(lit) lv_name_eq(name, nlen, lit, sizeof(lit) - 1)

static void apply(struct lv_cc *cc, const char *name, size_t nlen, const struct arg *a,
                  bool last_wins)
{
    static const struct {
        const char *name;
        size_t len;
        uint32_t flag;
    } flags[] = {
        {"no-store", 8, LV_CC_NO_STORE},
        {"public", 6, LV_CC_PUBLIC},
        {"must-revalidate", 15, LV_CC_MUST_REVALIDATE},
        {"proxy-revalidate", 16, LV_CC_PROXY_REVALIDATE},
        {"no-transform", 12, LV_CC_NO_TRANSFORM},
        {"must-understand", 15, LV_CC_MUST_UNDERSTAND},
        {"immutable", 9, LV_CC_IMMUTABLE},
        {"only-if-cached", 14, LV_CC_ONLY_IF_CACHED},
    };
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        if (lv_name_eq(name, nlen, flags[i].name, flags[i].len)) {
            cc->flags |= flags[i].flag;
            return;
        }
    }
    if (IS("max-age"))
        set_lifetime(&cc->max_age, a, last_wins);
    else if (IS("s-maxage"))
        set_lifetime(&cc->s_maxage, a, last_wins);
    else if (IS("max-stale")) {
        if (a->kind == ARG_NONE)
            cc->max_stale = LV_CC_ANY;
        else
            set_delta(&cc->max_stale, a);
    } else if (IS("min-fresh"))
        set_delta(&cc->min_fresh, a);
    else if (IS("stale-while-revalidate"))
        set_delta(&cc->swr, a);
    else if (IS("stale-if-error"))
        set_delta(&cc->sie, a);
    else if (IS("no-cache"))
        set_qualified(cc, LV_CC_NO_CACHE, cc->no_cache, &cc->n_no_cache, a);
    else if (IS("private"))
        set_qualified(cc, LV_CC_PRIVATE, cc->private_, &cc->n_private, a);
}

/* --- Cache-Control (RFC 9111 §5.2) ----------------------------------------- */

static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

void lv_cc_parse(struct lv_cc *cc, const char *v, size_t n)
{
    size_t pos = 0;
    const char *item;
    size_t len;
    while (lv_list_next(v, n, &pos, &item, &len)) {
        size_t i = 0;
        while (i < len && is_tchar(item[i]))
            i++;
        if (i == 0) continue;
        const char *name = item;
        size_t nlen = i;
        while (i < len && (item[i] == ' ' || item[i] == '\t'))
            i++;
        struct arg a = {ARG_NONE, 0, NULL, 0};
        if (i < len) {
            if (item[i] != '=') continue; /* "max-age 5": not a directive */
            i++;
            while (i < len && (item[i] == ' ' || item[i] == '\t'))
                i++;
            if (i < len && item[i] == '"') {
                size_t end = len;
                if (end - i < 2 || item[end - 1] != '"') continue;
                a.kind = ARG_TEXT;
                a.p = item + i + 1;
                a.n = end - i - 2;
            } else {
                a.kind = ARG_TEXT;
                a.p = item + i;
                a.n = len - i;
                if (delta(a.p, a.n, &a.num)) a.kind = ARG_NUMBER;
            }
        }
        apply(cc, name, nlen, &a, false);
    }
}

/* --- Structured Fields dictionary (RFC 8941 §3.2, §4.2.2) ----------------- */

struct sf {
    const char *p, *end;
};

static bool sf_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool sf_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool sf_key(struct sf *s, const char **k, size_t *klen)
{
    const char *start = s->p;
    if (s->p >= s->end || !(sf_lcalpha(*s->p) || *s->p == '*')) return false;
    s->p++;
    while (s->p < s->end && (sf_lcalpha(*s->p) || sf_digit(*s->p) || *s->p == '_' || *s->p == '-' ||
                             *s->p == '.' || *s->p == '*'))
        s->p++;
    *k = start;
    *klen = (size_t)(s->p - start);
    return true;
}

/* A bare item; fills a (numbers and strings as directives use them). */
static bool sf_bare_item(struct sf *s, struct arg *a)
{
    if (s->p >= s->end) return false;
    char c = *s->p;
    a->kind = ARG_TEXT;
    a->p = NULL;
    a->n = 0;
    if (c == '-' || sf_digit(c)) { /* Integer or Decimal */
        bool neg = c == '-';
        if (neg) s->p++;
        const char *start = s->p;
        int64_t v = 0;
        while (s->p < s->end && sf_digit(*s->p) && s->p - start < 15)
            v = v * 10 + (*s->p++ - '0');
        size_t ndig = (size_t)(s->p - start);
        if (ndig == 0) return false;
        if (s->p < s->end && *s->p == '.') { /* a Decimal: no directive takes one */
            if (ndig > 12) return false;
            const char *f = ++s->p;
            while (s->p < s->end && sf_digit(*s->p) && s->p - f < 3)
                s->p++;
            if (s->p == f) return false;
            return true;
        }
        if (s->p < s->end && sf_digit(*s->p)) return false; /* more than 15 digits */
        if (!neg) {
            a->kind = ARG_NUMBER;
            a->num = v < LV_CC_DELTA_MAX ? v : LV_CC_DELTA_MAX;
        }
        return true;
    }
    if (c == '"') { /* String */
        const char *start = ++s->p;
        while (s->p < s->end && *s->p != '"') {
            if (*s->p == '\\') {
                s->p++;
                if (s->p >= s->end || (*s->p != '"' && *s->p != '\\')) return false;
            } else if ((unsigned char)*s->p < 0x20 || (unsigned char)*s->p > 0x7e) {
                return false;
            }
            s->p++;
        }
        if (s->p >= s->end) return false;
        a->p = start;
        a->n = (size_t)(s->p - start);
        s->p++;
        return true;
    }
    if (c == '?') { /* Boolean */
        if (s->end - s->p < 2 || (s->p[1] != '0' && s->p[1] != '1')) return false;
        a->kind = s->p[1] == '1' ? ARG_NONE : ARG_TEXT;
        a->num = s->p[1] == '1';
        s->p += 2;
        return true;
    }
    if (c == ':') { /* Byte Sequence */
        s->p++;
        while (s->p < s->end && *s->p != ':') {
            char b = *s->p;
            if (!(sf_lcalpha(b) || (b >= 'A' && b <= 'Z') || sf_digit(b) || b == '+' || b == '/' ||
                  b == '='))
                return false;
            s->p++;
        }
        if (s->p >= s->end) return false;
        s->p++;
        return true;
    }
    if (c == '@') { /* Date (RFC 9651): not a directive's type */
        s->p++;
        struct arg num;
        return sf_bare_item(s, &num) && num.kind == ARG_NUMBER;
    }
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '*') { /* Token */
        s->p++;
        while (s->p < s->end && (is_tchar(*s->p) || *s->p == ':' || *s->p == '/'))
            s->p++;
        return true;
    }
    return false;
}

/* *( ";" *SP key [ "=" bare-item ] ) — parameters are read and ignored. */
static bool sf_params(struct sf *s)
{
    while (s->p < s->end && *s->p == ';') {
        s->p++;
        while (s->p < s->end && *s->p == ' ')
            s->p++;
        const char *k;
        size_t kl;
        if (!sf_key(s, &k, &kl)) return false;
        if (s->p < s->end && *s->p == '=') {
            s->p++;
            struct arg a;
            if (!sf_bare_item(s, &a)) return false;
        }
    }
    return true;
}

static bool sf_inner_list(struct sf *s)
{
    s->p++; /* '(' */
    for (;;) {
        while (s->p < s->end && *s->p == ' ')
            s->p++;
        if (s->p >= s->end) return false;
        if (*s->p == ')') {
            s->p++;
            return sf_params(s);
        }
        struct arg a;
        if (!sf_bare_item(s, &a) || !sf_params(s)) return false;
        if (s->p < s->end && *s->p != ' ' && *s->p != ')') return false;
    }
}

int lv_cc_parse_sf(struct lv_cc *cc, const char *v, size_t n)
{
    struct sf s = {v, v + n};
    while (s.p < s.end && (*s.p == ' ' || *s.p == '\t'))
        s.p++;
    while (s.end > s.p && (s.end[-1] == ' ' || s.end[-1] == '\t'))
        s.end--;
    if (s.p == s.end) return -1;
    for (;;) {
        const char *k;
        size_t kl;
        if (!sf_key(&s, &k, &kl)) return -1;
        struct arg a = {ARG_NONE, 1, NULL, 0};
        bool skip = false;
        if (s.p < s.end && *s.p == '=') {
            s.p++;
            if (s.p < s.end && *s.p == '(') {
                if (!sf_inner_list(&s)) return -1;
                skip = true; /* no directive is an inner list */
            } else {
                if (!sf_bare_item(&s, &a) || !sf_params(&s)) return -1;
                /* ?0 is false: the directive is absent; a Token or Decimal
                 * (ARG_TEXT without text) is not a directive's type. */
                skip = a.kind == ARG_TEXT && a.p == NULL;
            }
        } else if (!sf_params(&s)) {
            return -1;
        }
        if (!skip) {
            /* A String on a directive that takes a number is the wrong type. */
            bool numeric = lv_name_eq(k, kl, "max-age", 7) || lv_name_eq(k, kl, "s-maxage", 8) ||
                           lv_name_eq(k, kl, "stale-while-revalidate", 22) ||
                           lv_name_eq(k, kl, "stale-if-error", 14);
            if (!(numeric && a.kind != ARG_NUMBER)) apply(cc, k, kl, &a, true);
        }
        while (s.p < s.end && (*s.p == ' ' || *s.p == '\t'))
            s.p++;
        if (s.p == s.end) return 0;
        if (*s.p != ',') return -1;
        s.p++;
        while (s.p < s.end && (*s.p == ' ' || *s.p == '\t'))
            s.p++;
        if (s.p == s.end) return -1; /* a trailing comma */
    }
}

bool lv_cc_names_has(const struct lv_cc_names *l, unsigned count, const char *name, size_t len)
{
    for (unsigned i = 0; i < count; i++) {
        size_t pos = 0;
        const char *item;
        size_t ilen;
        while (lv_list_next(l[i].p, l[i].n, &pos, &item, &ilen)) {
            if (lv_name_eq(item, ilen, name, len)) return true;
        }
    }
    return false;
}
