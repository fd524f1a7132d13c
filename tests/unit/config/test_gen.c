/*
 * Generations with pools and routes (config/gen.c): each pool is a slice of
 * the backends with its own health-check group, a route with its own
 * rate_limit gets its own limiter, and a reload keeps a backend's state
 * only when its id and its pool's name both stay.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "config/gen.h"
#include "config/routes.h"
#include "limit/limiter.h"
#include "unit/lv_test.h"
#include "upstream/backend.h"

static struct lv_gen *gen_of(const char *text, const struct lv_gen *prev)
{
    char *errs = NULL;
    size_t len = 0;
    int nerrors = 0;
    FILE *f = open_memstream(&errs, &len);
    cr_assert_not_null(f);
    struct lv_config *cfg = lv_config_load_string("t.yaml", text, strlen(text), f, &nerrors);
    fclose(f);
    cr_assert_not_null(cfg, "%s", errs);
    free(errs);
    struct lv_gen *g = lv_gen_create(cfg, prev, 1, prev ? prev->id + 1 : 1);
    cr_assert_not_null(g);
    return g;
}

static const char two_pools[] = "pools:\n"
                                "  api:\n"
                                "    backends: [{ id: a1, url: 'http://127.0.0.1:18001' },"
                                "               { id: a2, url: 'http://127.0.0.1:18002' }]\n"
                                "    health_check: { path: /api-health, interval: 2s }\n"
                                "    circuit_breaker: { failure_threshold: 9 }\n"
                                "  web:\n"
                                "    backends: [{ id: w1, url: 'http://127.0.0.1:18003' }]\n"
                                "routes:\n"
                                "  - name: limited\n"
                                "    match: { path_prefix: /api }\n"
                                "    pool: api\n"
                                "    rate_limit: { requests_per_second: 5 }\n"
                                "  - match: { path_prefix: / }\n"
                                "    pool: web\n";

Test(gen_routes, each_pool_is_a_slice_with_its_own_check_group)
{
    struct lv_gen *g = gen_of(two_pools, NULL);
    cr_assert_eq(g->nbackends, 3);
    cr_assert_eq(g->npools, 2);
    cr_expect_str_eq(g->pools[0].name, "api");
    cr_expect_str_eq(lv_gen_backend_pool(g, 1)->name, "api");
    cr_expect_str_eq(lv_gen_backend_pool(g, 2)->name, "web");
    cr_expect_eq(g->checks[0].first, 0);
    cr_expect_eq(g->checks[0].n, 2);
    cr_expect_str_eq(g->checks[0].health->path, "/api-health");
    cr_expect_eq(g->checks[0].health->interval, 2000);
    cr_expect_eq(g->checks[0].breaker->failure_threshold, 9);
    cr_expect_eq(g->checks[1].first, 2);
    cr_expect_eq(g->checks[1].n, 1);
    cr_expect_str_eq(g->checks[1].health->path, g->cfg->health.path); /* the global one */
    /* Routes: limited, routes[1], and the implicit no_route. */
    cr_assert_eq(g->nroutes, 3);
    cr_expect_not_null(g->route_limiters[0]);
    cr_expect_null(g->route_limiters[1]);
    cr_expect_null(g->route_limiters[2]);
    cr_expect_null(g->limiter, "no global limit: the route's is its own");
    /* Traffic counters by route: a row per backend of the route's pool and
     * one for levee's own answers; the route "none" (not routed) last. */
    cr_assert_not_null(g->rstats);
    cr_expect_eq(lv_gen_rstats(g, 0, 0)->rows, 3);
    cr_expect_eq(lv_gen_rstats(g, 0, 1)->rows, 2);
    cr_expect_eq(lv_gen_rstats(g, 0, 2)->rows, 1, "no_route forwards nowhere");
    cr_expect_eq(lv_gen_rstats(g, 0, 3)->rows, 1);
    LV_STAT_INC(lv_gen_rstats(g, 0, 3)->status[LV_STATUS_CODES - 1]); /* the last cell */
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}

Test(gen_routes, a_reload_keeps_state_by_id_and_pool_and_route_limiters_by_name)
{
    struct lv_gen *g1 = gen_of(two_pools, NULL);
    /* a2 moves from api to web; a1 and w1 stay where they were. */
    static const char moved[] = "pools:\n"
                                "  api:\n"
                                "    backends: [{ id: a1, url: 'http://127.0.0.1:18001' }]\n"
                                "  web:\n"
                                "    backends: [{ id: w1, url: 'http://127.0.0.1:18003' },"
                                "               { id: a2, url: 'http://127.0.0.1:18002' }]\n"
                                "routes:\n"
                                "  - match: { path_prefix: /x }\n"
                                "    pool: web\n"
                                "  - name: limited\n"
                                "    match: { path_prefix: /api }\n"
                                "    pool: api\n"
                                "    rate_limit: { requests_per_second: 7 }\n";
    struct lv_gen *g2 = gen_of(moved, g1);
    cr_assert_eq(g2->nbackends, 3);
    cr_expect_eq(g2->backends[0], g1->backends[0], "a1 kept its id and pool: same state");
    cr_expect_eq(g2->backends[1], g1->backends[2], "w1 kept its id and pool: same state");
    cr_expect_str_eq(g2->backends[2]->id, "a2");
    cr_expect_neq(g2->backends[2], g1->backends[1], "a2 changed pool: fresh state");
    cr_expect_eq(g2->route_limiters[1], g1->route_limiters[0], "same route name, same shape");
    cr_expect_null(g2->route_limiters[0]);
    lv_gen_unref(g1);
    lv_gen_unref(g2);
    LV_EXPECT_NO_LEAKS();
}

Test(gen_routes, a_file_without_routes_has_one_default_pool_with_the_global_settings)
{
    static const char plain[] = "backends:\n"
                                "  - { id: b1, url: 'http://127.0.0.1:18001' }\n"
                                "  - { id: b2, url: 'http://127.0.0.1:18002' }\n"
                                "retry: { max_attempts: 2 }\n";
    struct lv_gen *g = gen_of(plain, NULL);
    cr_assert_eq(g->npools, 1);
    cr_expect_str_eq(g->pools[0].name, "default");
    cr_expect_eq(g->pools[0].n, 2);
    cr_expect_eq(g->pools[0].retry.max_attempts, 2);
    cr_expect_eq(g->checks[0].n, 2);
    cr_assert_eq(g->nroutes, 1, "the implicit route to the default pool");
    cr_expect_not(g->cfg->routing->configured);
    cr_expect_null(lv_gen_rstats(g, 0, 0), "no counters by route: the labels stay as they were");
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}
