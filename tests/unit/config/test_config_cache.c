/*
 * The `cache:` section (config/cache.c): the issue's example loads as
 * written, defaults, every key, and each error with its FILE:LINE:COL.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "unit/lv_test.h"

#define MIB (1024ull * 1024)

struct result {
    struct lv_config *cfg;
    char *errs;
    int nerrors;
};

static struct result load(const char *text)
{
    struct result r = {NULL, NULL, -1};
    size_t len = 0;
    FILE *errs = open_memstream(&r.errs, &len);
    cr_assert_not_null(errs);
    r.cfg = lv_config_load_string("t.yaml", text, strlen(text), errs, &r.nerrors);
    fclose(errs);
    return r;
}

static void result_dispose(struct result *r)
{
    lv_config_destroy(r->cfg);
    r->cfg = NULL;
    free(r->errs);
    r->errs = NULL;
}

static void expect_one_error(const char *text, const char *prefix, const char *fragment)
{
    struct result r = load(text);
    cr_expect_null(r.cfg);
    cr_expect_eq(r.nerrors, 1, "errors:\n%s", r.errs);
    cr_expect_eq(strncmp(r.errs, prefix, strlen(prefix)), 0, "expected '%s...', got:\n%s", prefix,
                 r.errs);
    cr_expect_not_null(strstr(r.errs, fragment), "expected '%s' in:\n%s", fragment, r.errs);
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

Test(config_cache, the_issues_example_loads)
{
    struct result r = load("cache:\n"
                           "  enabled: true\n"
                           "  max_size: 256MiB          # all workers together\n"
                           "  max_object_size: 8MiB\n"
                           "  default_ttl: 0s\n"
                           "  serve_stale_on_error: 1h\n"
                           "  key: [method, host, path, query]\n");
    cr_assert_not_null(r.cfg, "%s", r.errs);
    const struct lv_cache_cfg *c = &r.cfg->cache;
    cr_expect(c->enabled);
    cr_expect_eq(c->max_size, 256 * MIB);
    cr_expect_eq(c->max_object_size, 8 * MIB);
    cr_expect_eq(c->default_ttl, 0);
    cr_expect_eq(c->serve_stale_on_error, 3600 * 1000);
    cr_expect_eq(c->key, LV_CKEY_METHOD | LV_CKEY_HOST | LV_CKEY_PATH | LV_CKEY_QUERY);
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

Test(config_cache, defaults)
{
    struct result r = load("backends: []\n");
    cr_assert_not_null(r.cfg, "%s", r.errs);
    const struct lv_cache_cfg *c = &r.cfg->cache;
    cr_expect_not(c->enabled);
    cr_expect_eq(c->max_size, 256 * MIB);
    cr_expect_eq(c->max_object_size, 8 * MIB);
    cr_expect_eq(c->default_ttl, 0);
    cr_expect_eq(c->serve_stale_on_error, 3600 * 1000);
    cr_expect_eq(c->collapse_timeout, 5000);
    cr_expect_eq(c->key, LV_CKEY_DEFAULT);
    cr_assert_eq(c->ntargets, 1);
    cr_expect_str_eq(c->targets[0], "CDN-Cache-Control");
    cr_expect_not(c->forward_targeted);
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

Test(config_cache, every_key)
{
    struct result r = load("cache:\n"
                           "  enabled: yes\n"
                           "  max_size: 1GiB\n"
                           "  max_object_size: 100MiB\n"
                           "  default_ttl: 2m\n"
                           "  serve_stale_on_error: 0\n"
                           "  collapse_timeout: 250ms\n"
                           "  key: [scheme, host, path]\n"
                           "  targeted_fields: [Levee-Cache-Control, CDN-Cache-Control]\n"
                           "  forward_targeted: true\n");
    cr_assert_not_null(r.cfg, "%s", r.errs);
    const struct lv_cache_cfg *c = &r.cfg->cache;
    cr_expect(c->enabled);
    cr_expect_eq(c->max_size, 1024 * MIB);
    cr_expect_eq(c->max_object_size, 100 * MIB);
    cr_expect_eq(c->default_ttl, 120000);
    cr_expect_eq(c->serve_stale_on_error, 0);
    cr_expect_eq(c->collapse_timeout, 250);
    cr_expect_eq(c->key, LV_CKEY_SCHEME | LV_CKEY_HOST | LV_CKEY_PATH);
    cr_assert_eq(c->ntargets, 2);
    cr_expect_str_eq(c->targets[0], "Levee-Cache-Control");
    cr_expect_str_eq(c->targets[1], "CDN-Cache-Control");
    cr_expect(c->forward_targeted);
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

Test(config_cache, no_targeted_fields)
{
    struct result r = load("cache:\n  targeted_fields: []\n");
    cr_assert_not_null(r.cfg, "%s", r.errs);
    cr_expect_eq(r.cfg->cache.ntargets, 0);
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

Test(config_cache, errors)
{
    expect_one_error("cache:\n  max_object_size: 2MiB\n  max_size: 1MiB\n", "t.yaml:2:20: cache: ",
                     "max_object_size (2097152 bytes) is larger than max_size");
    expect_one_error("cache:\n  max_size: 1KiB\n", "t.yaml:2:13: cache.max_size: ", "out of range");
    expect_one_error("cache:\n  default_ttl: forever\n",
                     "t.yaml:2:16: cache.default_ttl: ", "is not a duration");
    expect_one_error("cache:\n  key: [method, host, url]\n", "t.yaml:2:23: cache.key: ",
                     "unknown key part 'url' (allowed: method, scheme, host, path, query)");
    expect_one_error("cache:\n  key: [path, path]\n",
                     "t.yaml:2:15: cache.key: ", "'path' is listed twice");
    expect_one_error("cache:\n  key: [host, query]\n",
                     "t.yaml:2:8: cache.key: ", "must include path");
    expect_one_error("cache:\n  key: path\n", "t.yaml:2:8: cache.key: ", "expected a list");
    expect_one_error("cache:\n  targeted_fields: [\"CDN Cache\"]\n",
                     "t.yaml:2:21: cache.targeted_fields: ", "is not a header field name");
    expect_one_error("cache:\n  targeted_fields: CDN-Cache-Control\n",
                     "t.yaml:2:20: cache.targeted_fields: ", "expected a list");
    expect_one_error("cache:\n  enabled: maybe\n",
                     "t.yaml:2:12: cache.enabled: ", "is not a boolean");
    expect_one_error("cache:\n  ttl: 5s\n", "t.yaml:2:3: cache: ", "unknown key 'ttl'");
    expect_one_error("cache: on\n", "t.yaml:1:8: cache: ", "expected a mapping");
}
