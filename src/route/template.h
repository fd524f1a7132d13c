/*
 * Templates: the text of a redirect location, a rewritten path or an added
 * header value, with what varies per request marked in it:
 *
 *   $0 .. $9    a capture group of the route's path_regex ($0: what the
 *               whole pattern matched); a group that did not take part is
 *               empty
 *   ${name}     a variable: host, path, query, method, scheme, client_addr,
 *               request_id, route, pool (enum lv_template_var)
 *   $$          a "$"
 *
 * Compiled when the configuration is loaded (an unknown variable, a group
 * the pattern does not have or a lone "$" is an error with its offset);
 * expanded into a buffer of the caller's with a hard cap, so that a long
 * path captured several times can never make an unbounded value. Pure.
 */
#ifndef LV_ROUTE_TEMPLATE_H
#define LV_ROUTE_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum lv_template_var {
    LV_TVAR_HOST,        /* the request's host, without port, lower case */
    LV_TVAR_PATH,        /* the normalized path */
    LV_TVAR_QUERY,       /* the query, without "?" */
    LV_TVAR_METHOD,      /* GET, POST, ... */
    LV_TVAR_SCHEME,      /* http or https: what the client used */
    LV_TVAR_CLIENT_ADDR, /* the client's address */
    LV_TVAR_REQUEST_ID,  /* the request's X-Request-Id */
    LV_TVAR_ROUTE,       /* the route's name */
    LV_TVAR_POOL,        /* the route's pool ("" for a redirect or a direct answer) */
    LV_TVAR_COUNT
};

/* The names, as written in ${...}, indexed by enum lv_template_var. */
extern const char *const lv_template_var_names[LV_TVAR_COUNT];

struct lv_template_part {
    uint8_t kind; /* 0 literal, 1 capture, 2 variable */
    uint8_t index;
    uint32_t off, len; /* literal: text[off .. off + len) */
};

struct lv_template {
    char *text; /* the literal bytes, "$$" already made "$" */
    struct lv_template_part *parts;
    uint32_t nparts;
    uint32_t max_group; /* highest $N used, 0 if none */
    bool has_query;     /* the literal text has a '?' */
};

struct lv_str {
    const char *p;
    size_t n;
};

/* What a template is expanded with. Unset variables are empty. */
struct lv_template_env {
    struct lv_str vars[LV_TVAR_COUNT];
    const char *subject;   /* the string the captures point into */
    const size_t *ovector; /* start, end per group, $0 first (PCRE2's ovector) */
    uint32_t npairs;       /* pairs in ovector; a group beyond it is empty */
};

/*
 * Compiles text[0..len). groups: the capture groups of the route's
 * path_regex ($0 .. $groups may be used), or -1 without one (no $N). A control character other
 * than a tab is refused. Returns the template (caller owns; free with
 * lv_template_destroy), or NULL after writing what is wrong to err (errcap
 * bytes) and its offset in text to *erroff.
 */
struct lv_template *lv_template_create(const char *text, size_t len, int groups, char *err,
                                       size_t errcap, size_t *erroff);
void lv_template_destroy(struct lv_template *t);

/* True if the template is plain text (no capture, no variable). */
bool lv_template_is_literal(const struct lv_template *t);

/*
 * Writes the expansion to out (cap bytes; no NUL added). Returns its length,
 * or -1 when it is longer than cap (out then holds a truncated prefix).
 */
ssize_t lv_template_expand(const struct lv_template *t, const struct lv_template_env *env,
                           char *out, size_t cap);

#endif
