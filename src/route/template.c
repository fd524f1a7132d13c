/*
 * Templates (route/template.h): "$N", "${name}" and "$$" compiled into a
 * list of parts, expanded with a hard cap.
 */
#include "route/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const lv_template_var_names[LV_TVAR_COUNT] = {
    "host", "path", "query", "method", "scheme", "client_addr", "request_id", "route", "pool",
};

enum { PART_LITERAL, PART_CAPTURE, PART_VAR };

static int find_var(const char *name, size_t n)
{
    for (int i = 0; i < LV_TVAR_COUNT; i++) {
        if (strlen(lv_template_var_names[i]) == n && memcmp(lv_template_var_names[i], name, n) == 0)
            return i;
    }
    return -1;
}

static void fail(char *err, size_t errcap, size_t *erroff, size_t at, const char *msg)
{
    snprintf(err, errcap, "%s", msg);
    *erroff = at;
}

struct lv_template *lv_template_create(const char *text, size_t len, int groups, char *err,
                                       size_t errcap, size_t *erroff)
{
    struct lv_template *t = calloc(1, sizeof(*t));
    /* At most one part per input byte, plus one. */
    if (t) t->text = malloc(len + 1);
    if (t) t->parts = calloc(len + 1, sizeof(*t->parts));
    if (t == NULL || t->text == NULL || t->parts == NULL) {
        fail(err, errcap, erroff, 0, "out of memory");
        lv_template_destroy(t);
        return NULL;
    }
    uint32_t o = 0;
    struct lv_template_part *lit = NULL; /* the literal part being extended */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f) {
            fail(err, errcap, erroff, i, "control characters are not allowed");
            goto bad;
        }
        if (c == '$' && i + 1 < len && text[i + 1] == '$') {
            i++;
        } else if (c == '$') {
            struct lv_template_part *p = &t->parts[t->nparts];
            lit = NULL;
            if (i + 1 < len && text[i + 1] >= '0' && text[i + 1] <= '9') {
                int g = text[i + 1] - '0';
                if (groups < 0) {
                    fail(err, errcap, erroff, i,
                         "$N names a capture group of path_regex, and "
                         "this route has no path_regex (write $$ for $)");
                    goto bad;
                }
                if (g > groups) {
                    char msg[128];
                    snprintf(msg, sizeof(msg), "no capture group $%d: path_regex has %d", g,
                             groups);
                    fail(err, errcap, erroff, i, msg);
                    goto bad;
                }
                *p = (struct lv_template_part){.kind = PART_CAPTURE, .index = (uint8_t)g};
                if ((uint32_t)g > t->max_group) t->max_group = (uint32_t)g;
                t->nparts++;
                i++;
                continue;
            }
            const char *close =
                i + 1 < len && text[i + 1] == '{' ? memchr(text + i + 2, '}', len - (i + 2)) : NULL;
            int v = close ? find_var(text + i + 2, (size_t)(close - (text + i + 2))) : -1;
            if (v < 0) {
                char msg[256] = "";
                size_t m = (size_t)snprintf(msg, sizeof(msg), "%s (variables:",
                                            close ? "unknown variable"
                                                  : "'$' must be followed by a digit, "
                                                    "{variable} or '$'");
                for (int k = 0; k < LV_TVAR_COUNT && m < sizeof(msg); k++)
                    m += (size_t)snprintf(msg + m, sizeof(msg) - m, " ${%s}",
                                          lv_template_var_names[k]);
                if (m < sizeof(msg)) snprintf(msg + m, sizeof(msg) - m, ")");
                fail(err, errcap, erroff, i, msg);
                goto bad;
            }
            *p = (struct lv_template_part){.kind = PART_VAR, .index = (uint8_t)v};
            t->nparts++;
            i = (size_t)(close - text);
            continue;
        }
        if (lit == NULL) {
            lit = &t->parts[t->nparts++];
            *lit = (struct lv_template_part){.kind = PART_LITERAL, .off = o};
        }
        if (text[i] == '?') t->has_query = true;
        t->text[o++] = text[i];
        lit->len++;
    }
    t->text[o] = '\0';
    return t;
bad:
    lv_template_destroy(t);
    return NULL;
}

void lv_template_destroy(struct lv_template *t)
{
    if (t == NULL) return;
    free(t->text);
    free(t->parts);
    free(t);
}

bool lv_template_is_literal(const struct lv_template *t)
{
    for (uint32_t i = 0; i < t->nparts; i++) {
        if (t->parts[i].kind != PART_LITERAL) return false;
    }
    return true;
}

ssize_t lv_template_expand(const struct lv_template *t, const struct lv_template_env *env,
                           char *out, size_t cap)
{
    size_t o = 0;
    for (uint32_t i = 0; i < t->nparts; i++) {
        const struct lv_template_part *p = &t->parts[i];
        const char *s = NULL;
        size_t n = 0;
        if (p->kind == PART_LITERAL) {
            s = t->text + p->off;
            n = p->len;
        } else if (p->kind == PART_VAR) {
            s = env->vars[p->index].p;
            n = s ? env->vars[p->index].n : 0;
        } else if (env->ovector && p->index < env->npairs) {
            size_t a = env->ovector[2 * p->index], b = env->ovector[2 * p->index + 1];
            /* PCRE2_UNSET (~0) for a group that took no part. */
            if (a <= b && b != (size_t)-1) {
                s = env->subject + a;
                n = b - a;
            }
        }
        if (n > cap - o) {
            memcpy(out + o, s, cap - o);
            return -1;
        }
        if (n) memcpy(out + o, s, n);
        o += n;
    }
    return (ssize_t)o;
}
