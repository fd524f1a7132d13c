/*
 * The admin section of the config (config/config.c): the keys that bound and
 * guard the admin port (allowed_hosts, max_connections, timeout, token), with
 * their defaults and their FILE:LINE:COL: errors. Kept apart from
 * test_config.c so that each can grow on its own.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "unit/lv_test.h"

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

Test(config_admin, defaults)
{
    struct result r = load("backends: []\n");
    cr_assert_not_null(r.cfg, "%s", r.errs);
    const struct lv_admin_cfg *a = &r.cfg->admin;
    cr_expect(a->enabled);
    cr_expect_str_eq(a->listen.address, "127.0.0.1:9901");
    cr_expect_null(a->token);
    cr_expect_eq(a->allowed_hosts.n, 0);
    cr_expect_eq(a->max_connections, 64);
    cr_expect_eq(a->timeout, 30000);
    result_dispose(&r);
}

Test(config_admin, every_key)
{
    struct result r = load("admin:\n"
                           "  listen: 127.0.0.1:9902\n"
                           "  token: \"s3cr3t-T0k3n_with.=/+~!\"\n"
                           "  allowed_hosts: [levee.internal, \"admin.example:8443\", \"[::1]\"]\n"
                           "  max_connections: 8\n"
                           "  timeout: 5s\n");
    cr_assert_not_null(r.cfg, "%s", r.errs);
    const struct lv_admin_cfg *a = &r.cfg->admin;
    cr_expect_str_eq(a->token, "s3cr3t-T0k3n_with.=/+~!");
    cr_assert_eq(a->allowed_hosts.n, 3);
    cr_expect_str_eq(a->allowed_hosts.items[0], "levee.internal");
    cr_expect_str_eq(a->allowed_hosts.items[1], "admin.example:8443");
    cr_expect_str_eq(a->allowed_hosts.items[2], "[::1]");
    cr_expect_eq(a->max_connections, 8);
    cr_expect_eq(a->timeout, 5000);
    result_dispose(&r);
    LV_EXPECT_NO_LEAKS();
}

Test(config_admin, allowed_hosts_errors_point_at_the_entry)
{
    expect_one_error("admin:\n  allowed_hosts:\n    - levee.internal\n    - http://x.example\n",
                     "t.yaml:4:7: admin.allowed_hosts: ", "'http://x.example': a host name");
    expect_one_error("admin:\n  allowed_hosts: [\"levee.internal:0\"]\n",
                     "t.yaml:2:19: admin.allowed_hosts: ", "'levee.internal:0': not a host[:port]");
    expect_one_error("admin:\n  allowed_hosts: [\"\"]\n",
                     "t.yaml:2:19: admin.allowed_hosts: ", "must not be empty");
    expect_one_error("admin:\n  allowed_hosts: levee.internal\n",
                     "t.yaml:2:18: admin.allowed_hosts: ", "expected a list");
}

Test(config_admin, bounds)
{
    expect_one_error("admin:\n  max_connections: 0\n",
                     "t.yaml:2:20: admin.max_connections: ", "0 is out of range (1 to 4096)");
    expect_one_error("admin:\n  max_connections: 5000\n",
                     "t.yaml:2:20: admin.max_connections: ", "out of range");
    expect_one_error("admin:\n  timeout: 10ms\n",
                     "t.yaml:2:12: admin.timeout: ", "10ms is out of range (100ms to 3600000ms)");
    expect_one_error("admin:\n  timeout: 2h\n", "t.yaml:2:12: admin.timeout: ", "out of range");
}

Test(config_admin, token_must_be_visible_ascii_and_not_empty)
{
    expect_one_error("admin:\n  token: \"two words\"\n",
                     "t.yaml:2:10: admin.token: ", "only visible ASCII characters");
    expect_one_error("admin:\n  token: \"tab\\there\"\n",
                     "t.yaml:2:10: admin.token: ", "only visible ASCII characters");
    expect_one_error("admin:\n  token: \"\"\n", "t.yaml:2:10: admin.token: ", "must not be empty");
}
