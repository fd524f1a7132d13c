/*
 * A route's type (HAProxy's -t.h convention: types here, functions in
 * route/route.h), so that the index (route/index.c) can read routes
 * without depending on the table that uses it.
 */
#ifndef LV_ROUTE_ROUTE_T_H
#define LV_ROUTE_ROUTE_T_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lv_regex;
struct lv_route_index;

#define LV_ROUTE_MAX 4096             /* routes in a table */
#define LV_ROUTE_MAX_HOSTS 64         /* host patterns of a route */
#define LV_ROUTE_MAX_CONDS 32         /* header conditions, and query conditions, of a route */
#define LV_ROUTE_MAX_CAPTURES 9       /* $1 .. $9 (route/regex.h) */
#define LV_ROUTE_BODY_MAX (64 * 1024) /* a direct answer's body */
#define LV_ROUTE_LOCATION_MAX 8192    /* an expanded redirect location, rewritten target */

enum lv_route_path_kind {
    LV_RPATH_ANY,    /* no path condition */
    LV_RPATH_PREFIX, /* path_prefix, on segment boundaries */
    LV_RPATH_EXACT,  /* path_exact */
    LV_RPATH_REGEX,  /* path_regex (PCRE2) */
};

enum lv_route_cond_kind {
    LV_RCOND_PRESENT, /* a field / parameter of that name is there */
    LV_RCOND_ABSENT,  /* none is */
    LV_RCOND_EQUAL,   /* one has exactly this value */
    LV_RCOND_REGEX,   /* one's value matches */
};

/* A header or query parameter condition. Header names compare without
 * regard to case; query names and values as written in the target (still
 * percent-encoded, as nginx's $arg_ and HAProxy's urlp). */
struct lv_route_cond {
    char *name;
    size_t name_len;
    enum lv_route_cond_kind kind;
    bool ignore_case; /* LV_RCOND_EQUAL: ASCII case-insensitive */
    char *value;      /* LV_RCOND_EQUAL */
    size_t value_len;
    struct lv_regex *re; /* LV_RCOND_REGEX */
};

enum lv_route_action {
    LV_ROUTE_POOL,     /* forward to a pool */
    LV_ROUTE_REDIRECT, /* answer with a redirect */
    LV_ROUTE_RESPOND,  /* answer with a fixed response */
};

/* A header field a route sets or adds. */
struct lv_route_field {
    char *name;
    struct lv_template *value;
};

/* What a route does to the header fields of a request or a response:
 * remove these names, then set these (removing any field of the same name
 * first), then add these (beside any of the same name). */
struct lv_route_fields {
    char **remove;
    uint32_t nremove;
    struct lv_route_field *set;
    uint32_t nset;
    struct lv_route_field *add;
    uint32_t nadd;
};

struct lv_route {
    char *name;         /* for logs and metrics: `name:`, or "routes[N]" */
    bool implicit;      /* the last route levee adds: to the default pool, or no_route */
    uint32_t line, col; /* where it is written, for messages (0: nowhere) */

    /* Match: every condition holds. */
    char **hosts; /* lower case; "*.example.com" matches a.example.com, a.b.example.com */
    uint32_t nhosts;
    enum lv_route_path_kind path_kind;
    char *path; /* LV_RPATH_PREFIX / LV_RPATH_EXACT, normalized; LV_RPATH_REGEX: the
                 * pattern as written (for the admin API, never matched on) */
    size_t path_len;
    struct lv_regex *path_re; /* LV_RPATH_REGEX */
    uint64_t methods;         /* bit (1 << llhttp_method_t); 0: any method */
    struct lv_route_cond *headers;
    uint32_t nheaders;
    struct lv_route_cond *query;
    uint32_t nquery;

    /* Action. */
    enum lv_route_action action;
    uint32_t pool;      /* LV_ROUTE_POOL: index of the pool */
    char *pool_name;    /* its name (${pool}) */
    char *strip_prefix; /* removed from the front of the path, on a segment boundary */
    size_t strip_len;
    char *add_prefix; /* put in front of the path (after strip_prefix) */
    size_t add_len;
    struct lv_template *rewrite; /* the new path, from path_regex's captures */
    char *host_rewrite;          /* Host sent to the backend; NULL: the client's */
    struct lv_route_fields request_fields, response_fields;
    uint16_t status;              /* LV_ROUTE_REDIRECT, LV_ROUTE_RESPOND */
    struct lv_template *location; /* LV_ROUTE_REDIRECT */
    bool keep_query;              /* append the request's query to the location */
    char *body;                   /* LV_ROUTE_RESPOND; may be NULL (no body) */
    size_t body_len;
    char *content_type;
};

#endif
