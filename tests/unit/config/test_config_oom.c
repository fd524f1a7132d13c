/*
 * The config loader out of memory (config/load.c's lv_cfg_fail_alloc): it
 * runs on SIGHUP inside a live server, so each of its allocations, failing
 * in turn, must give an error ("out of memory", with a position), never a
 * crash nor a leak.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/load.h"
#include "unit/lv_test.h"

/* Every section that allocates: listeners (a list), backends, strings,
 * string lists, the client key and trusted proxies, the Redis address. */
static const char every_allocation[] = "listen:\n"
                                       "  - 127.0.0.1:18080\n"
                                       "  - address: 127.0.0.1:18081\n"
                                       "backends:\n"
                                       "  - id: a\n"
                                       "    url: http://127.0.0.1:18001\n"
                                       "  - id: b\n"
                                       "    url: http://[::1]:18002/\n"
                                       "health_check:\n"
                                       "  path: /healthz\n"
                                       "access_log:\n"
                                       "  path: off\n"
                                       "headers:\n"
                                       "  remove_request: [x-one, x-two]\n"
                                       "upgrade:\n"
                                       "  allow: [websocket, h2c]\n"
                                       "admin:\n"
                                       "  listen: 127.0.0.1:19901\n"
                                       "  allowed_hosts: [admin.example, 'admin.example:9901']\n"
                                       "rate_limit:\n"
                                       "  requests_per_second: 10\n"
                                       "  per_client:\n"
                                       "    requests_per_second: 1\n"
                                       "    key: header:X-Client\n"
                                       "    trusted_proxies: [10.0.0.0/8, '::1']\n"
                                       "  redis:\n"
                                       "    address: 127.0.0.1:16379\n"
                                       "    key_prefix: 'lv:'\n";

static struct lv_config *load(const char *text, char **errs, int *nerrors)
{
    size_t len = 0;
    FILE *f = open_memstream(errs, &len);
    cr_assert_not_null(f);
    struct lv_config *cfg = lv_config_load_string("t.yaml", text, strlen(text), f, nerrors);
    fclose(f);
    return cfg;
}

Test(config_oom, each_allocation_failing_is_an_error_not_a_crash)
{
    /* Without a failure the file loads: count its allocations. */
    char *errs = NULL;
    int nerrors = -1;
    unsigned long before = lv_cfg_allocs();
    struct lv_config *cfg = load(every_allocation, &errs, &nerrors);
    unsigned long total = lv_cfg_allocs() - before;
    cr_assert_not_null(cfg, "%s", errs);
    cr_assert_eq(cfg->n_listeners, 2);
    cr_assert_eq(cfg->n_backends, 2);
    lv_config_destroy(cfg);
    free(errs);
    cr_expect_gt(total, 25, "the file makes more allocations than that (%lu)", total);

    /* Each one failing in turn: the load fails, says why, frees all. An
     * allocation left unchecked would let the load succeed here. */
    for (unsigned long n = 1; n <= total; n++) {
        errs = NULL;
        nerrors = -1;
        lv_cfg_fail_alloc(n);
        cfg = load(every_allocation, &errs, &nerrors);
        lv_cfg_fail_alloc(0);
        cr_expect_null(cfg, "allocation %lu of %lu failed, and the load succeeded", n, total);
        lv_config_destroy(cfg);
        cr_expect_geq(nerrors, 1, "allocation %lu", n);
        cr_expect_not_null(strstr(errs, "out of memory"), "allocation %lu: %s", n, errs);
        cr_expect_eq(strncmp(errs, "t.yaml:", 7), 0, "allocation %lu: %s", n, errs);
        free(errs);
    }
    LV_EXPECT_NO_LEAKS();
}

Test(config_oom, the_hook_fails_one_allocation_only)
{
    lv_cfg_fail_alloc(2);
    char *a = lv_cfg_strdup("a");
    char *b = lv_cfg_strdup("b");
    void *c = lv_cfg_calloc(1, 8);
    cr_expect_not_null(a);
    cr_expect_null(b);
    cr_expect_not_null(c);
    free(a);
    free(c);
    lv_cfg_fail_alloc(0);
    LV_EXPECT_NO_LEAKS();
}
