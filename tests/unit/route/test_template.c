/*
 * Templates (route/template.c): captures, variables, "$$", the errors with
 * their offsets, and the hard cap on an expansion.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "route/template.h"
#include "unit/lv_test.h"

static struct lv_template *make(const char *text, int groups)
{
    char err[256];
    size_t off;
    struct lv_template *t = lv_template_create(text, strlen(text), groups, err, sizeof(err), &off);
    cr_assert_not_null(t, "'%s': %s at %zu", text, err, off);
    return t;
}

/* The error of text, and its offset. */
static size_t refused(const char *text, int groups, const char *fragment)
{
    char err[256];
    size_t off = 999;
    struct lv_template *t = lv_template_create(text, strlen(text), groups, err, sizeof(err), &off);
    cr_assert_null(t, "'%s' was accepted", text);
    cr_expect(strstr(err, fragment) != NULL, "'%s': '%s' lacks '%s'", text, err, fragment);
    return off;
}

static const char *expand(const struct lv_template *t, const struct lv_template_env *env, char *out,
                          size_t cap)
{
    ssize_t n = lv_template_expand(t, env, out, cap);
    if (n < 0) return "<too long>";
    out[n] = '\0';
    return out;
}

/* "/old/abc/def" matched by ^/old/([^/]*)/(.*)$: $0 whole, $1 abc, $2 def */
static const char subject[] = "/old/abc/def";
static const size_t ovector[] = {0, 12, 5, 8, 9, 12, (size_t)-1, (size_t)-1};

static struct lv_template_env env_with_captures(void)
{
    struct lv_template_env env = {0};
    env.subject = subject;
    env.ovector = ovector;
    env.npairs = 4;
    env.vars[LV_TVAR_HOST] = (struct lv_str){"example.com", 11};
    env.vars[LV_TVAR_ROUTE] = (struct lv_str){"api", 3};
    env.vars[LV_TVAR_CLIENT_ADDR] = (struct lv_str){"10.0.0.1", 8};
    return env;
}

Test(template, literal)
{
    struct lv_template *t = make("/new/place", -1);
    struct lv_template_env env = {0};
    char out[64];
    cr_expect(lv_template_is_literal(t));
    cr_expect_str_eq(expand(t, &env, out, sizeof(out)), "/new/place");
    cr_expect_not(t->has_query);
    lv_template_destroy(t);
}

Test(template, captures)
{
    struct lv_template *t = make("/new/$2/$1$0", 3);
    struct lv_template_env env = env_with_captures();
    char out[64];
    cr_expect_not(lv_template_is_literal(t));
    cr_expect_str_eq(expand(t, &env, out, sizeof(out)), "/new/def/abc/old/abc/def");
    cr_expect_eq(t->max_group, 2);
    lv_template_destroy(t);
}

Test(template, a_group_that_took_no_part_or_is_beyond_the_ovector_is_empty)
{
    struct lv_template *t = make("<$3|$9>", 9);
    struct lv_template_env env = env_with_captures();
    char out[64];
    cr_expect_str_eq(expand(t, &env, out, sizeof(out)), "<|>");
    env.ovector = NULL;
    env.npairs = 0;
    lv_template_destroy(t);
    t = make("<$1>", 1);
    cr_expect_str_eq(expand(t, &env, out, sizeof(out)), "<>");
    lv_template_destroy(t);
}

Test(template, variables_and_dollars)
{
    struct lv_template *t =
        make("https://${host}/x?from=${route}&ip=${client_addr}&cost=$$5${pool}", -1);
    struct lv_template_env env = env_with_captures();
    char out[128];
    cr_expect_str_eq(expand(t, &env, out, sizeof(out)),
                     "https://example.com/x?from=api&ip=10.0.0.1&cost=$5");
    cr_expect(t->has_query);
    lv_template_destroy(t);
}

Test(template, every_variable_name_is_accepted)
{
    for (int i = 0; i < LV_TVAR_COUNT; i++) {
        char text[64];
        snprintf(text, sizeof(text), "${%s}", lv_template_var_names[i]);
        struct lv_template_env env = {0};
        env.vars[i] = (struct lv_str){"v", 1};
        struct lv_template *t = make(text, -1);
        char out[8];
        cr_expect_str_eq(expand(t, &env, out, sizeof(out)), "v", "%s", text);
        lv_template_destroy(t);
    }
}

Test(template, errors_and_their_offsets)
{
    cr_expect_eq(refused("/a/$1", -1, "no path_regex"), 3);
    cr_expect_eq(refused("/a/$2", 1, "no capture group $2: path_regex has 1"), 3);
    cr_expect_eq(refused("/a/${nope}", -1, "unknown variable"), 3);
    cr_expect_eq(refused("/a/${host", -1, "must be followed"), 3);
    cr_expect_eq(refused("/a/$x", -1, "must be followed"), 3);
    cr_expect_eq(refused("/a/$", -1, "must be followed"), 3);
    cr_expect_eq(refused("/a\r\nSet-Cookie: x", -1, "control characters"), 2);
    cr_expect_eq(refused("x\x7f", -1, "control characters"), 1);
    LV_EXPECT_NO_LEAKS();
}

Test(template, the_expansion_is_capped)
{
    /* $0 ten times: 120 bytes from a 12-byte path. */
    struct lv_template *t = make("$0$0$0$0$0$0$0$0$0$0", 1);
    struct lv_template_env env = env_with_captures();
    char out[200];
    cr_expect_eq(lv_template_expand(t, &env, out, 120), 120);
    cr_expect_eq(lv_template_expand(t, &env, out, 119), -1);
    cr_expect_eq(lv_template_expand(t, &env, out, 0), -1);
    lv_template_destroy(t);
    t = make("abcdef", -1);
    cr_expect_eq(lv_template_expand(t, &env, out, 5), -1);
    cr_expect_eq(lv_template_expand(t, &env, out, 6), 6);
    lv_template_destroy(t);
}
