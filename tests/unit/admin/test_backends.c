/*
 * The two health documents for given backend states, byte for byte:
 * `/health` (config/gen.c's lv_gen_health_json, answered on the proxy port
 * and the admin port) and `/backends/health` (admin/backends.c). Real
 * backends in a real generation, states set through their own APIs (the
 * breaker opened by a failure, health verdicts, the operator state), and a
 * fake clock: `now` is a number the test picks.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/backends.h"
#include "config/config.h"
#include "config/gen.h"
#include "core/strbuf.h"
#include "unit/lv_test.h"
#include "upstream/backend.h"
#include "upstream/breaker.h"

/* a is checked, b and c are not; one failure opens a breaker for 1 s
 * (jitter 0.5 below: exactly 1 s), two probes at once. */
static const char three_backends[] = "backends:\n"
                                     "  - id: a\n"
                                     "    url: http://127.0.0.1:18001\n"
                                     "    health_check_enabled: true\n"
                                     "  - id: b\n"
                                     "    url: http://127.0.0.1:18002\n"
                                     "    weight: 3\n"
                                     "  - id: c\n"
                                     "    url: http://127.0.0.1:18003\n"
                                     "circuit_breaker:\n"
                                     "  failure_threshold: 1\n"
                                     "  timeout: 1s\n"
                                     "  half_open_requests: 2\n"
                                     "access_log:\n"
                                     "  path: off\n";

#define START 5000ull   /* levee started (ms, monotonic) */
#define T0 100000ull    /* a breaker opens at T0 ... */
#define DUE (T0 + 1000) /* ... until DUE */

static struct lv_gen *gen_of(const char *text)
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
    struct lv_gen *g = lv_gen_create(cfg, NULL, 1, 7);
    cr_assert_not_null(g);
    return g;
}

static void open_breaker(struct lv_gen *g, size_t i, uint64_t now)
{
    struct lv_backend *b = g->backends[i];
    struct lv_breaker_ticket t;
    cr_assert(lv_breaker_allow(&b->breaker, &g->cfg->breaker, now, &t));
    lv_breaker_report(&b->breaker, &g->cfg->breaker, 0, now, false, 0.5, &t);
    cr_assert_eq(lv_breaker_state(&b->breaker), LV_BREAKER_OPEN);
    cr_assert_eq(lv_breaker_open_until(&b->breaker), now + 1000);
}

static void set_health(struct lv_backend *b, bool healthy, bool rising)
{
    atomic_store(&b->healthy, healthy);
    atomic_store(&b->rising, rising);
}

/* The /health document and status for g at now. */
static void expect_health(const struct lv_gen *g, uint64_t now, int status, const char *want)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 4096);
    int got = lv_gen_health_json(&sb, g, START, now);
    cr_expect_eq(got, status, "status for %s", sb.p);
    cr_expect_str_eq(sb.p, want);
    lv_strbuf_dispose(&sb);
}

#define FEATURES                                                                                   \
    "\"features\":{\"circuit_breaker\":true,\"rate_limiting\":false,\"health_checks\":true}}\n"

Test(health_doc, every_backend_serving_is_healthy)
{
    struct lv_gen *g = gen_of(three_backends);
    expect_health(g, START + 12999, 200,
                  "{\"status\":\"healthy\",\"uptime_seconds\":12,"
                  "\"backends\":{\"healthy\":3,\"total\":3}," FEATURES);
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}

Test(health_doc, some_out_of_service_is_degraded)
{
    struct lv_gen *g = gen_of(three_backends);
    atomic_store(&g->backends[1]->admin_state, LV_ADMIN_DISABLED);
    open_breaker(g, 2, T0);
    expect_health(g, DUE - 1, 200,
                  "{\"status\":\"degraded\",\"uptime_seconds\":95,"
                  "\"backends\":{\"healthy\":1,\"total\":3}," FEATURES);
    /* The open period over, c may take a probe: it can serve again (an
     * open breaker past its timeout used to show "open" yet count as usable
     * in one place and not in another). */
    expect_health(g, DUE, 200,
                  "{\"status\":\"degraded\",\"uptime_seconds\":96,"
                  "\"backends\":{\"healthy\":2,\"total\":3}," FEATURES);
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}

Test(health_doc, none_can_serve_is_unhealthy_and_503)
{
    struct lv_gen *g = gen_of(three_backends);
    set_health(g->backends[0], false, false);
    atomic_store(&g->backends[1]->admin_state, LV_ADMIN_DRAINING);
    open_breaker(g, 2, T0);
    expect_health(g, DUE - 1, 503,
                  "{\"status\":\"unhealthy\",\"uptime_seconds\":95,"
                  "\"backends\":{\"healthy\":0,\"total\":3}," FEATURES);
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}

Test(health_doc, the_last_resort_is_degraded_not_unhealthy)
{
    struct lv_gen *g = gen_of(three_backends);
    set_health(g->backends[0], false, true); /* failing checks, the last one passed */
    atomic_store(&g->backends[1]->admin_state, LV_ADMIN_DISABLED);
    atomic_store(&g->backends[2]->admin_state, LV_ADMIN_DISABLED);
    expect_health(g, START, 200,
                  "{\"status\":\"degraded\",\"uptime_seconds\":0,"
                  "\"backends\":{\"healthy\":0,\"total\":3}," FEATURES);
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}

Test(health_doc, features_follow_the_configuration)
{
    struct lv_gen *g = gen_of("backends:\n"
                              "  - id: a\n"
                              "    url: http://127.0.0.1:18001\n"
                              "circuit_breaker:\n"
                              "  enabled: false\n"
                              "rate_limit:\n"
                              "  requests_per_second: 5\n"
                              "access_log:\n"
                              "  path: off\n");
    expect_health(g, START + 1000, 200,
                  "{\"status\":\"healthy\",\"uptime_seconds\":1,"
                  "\"backends\":{\"healthy\":1,\"total\":1},\"features\":{\"circuit_breaker\":"
                  "false,\"rate_limiting\":true,\"health_checks\":false}}\n");
    lv_gen_unref(g);
    g = gen_of("backends: []\naccess_log:\n  path: off\n");
    expect_health(g, START, 503,
                  "{\"status\":\"unhealthy\",\"uptime_seconds\":0,"
                  "\"backends\":{\"healthy\":0,\"total\":0},\"features\":{\"circuit_breaker\":"
                  "true,\"rate_limiting\":false,\"health_checks\":false}}\n");
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}

/* --- /backends/health ------------------------------------------------------------- */

static char *backends_doc(const struct lv_gen *g, uint64_t now, const struct lv_admin_store *st)
{
    struct lv_strbuf sb;
    lv_strbuf_init(&sb, 1 << 20);
    struct lv_admin_now when = {now, now * 1000000ull, 1700000000000ull};
    struct lv_admin_store none = {0};
    lv_admin_backends_json(&sb, g, NULL, st ? st : &none, &when);
    cr_assert_not(sb.truncated);
    return sb.p;
}

/* One backend's object, from {"id":... to its closing brace, by id. */
static char *backend_obj(const char *doc, const char *id)
{
    char key[64];
    snprintf(key, sizeof(key), "{\"id\":\"%s\",", id);
    const char *p = strstr(doc, key);
    cr_assert_not_null(p, "no backend %s in %s", id, doc);
    const char *end = strstr(p, "}},\"consecutive_check_failures\"");
    cr_assert_not_null(end);
    end = strchr(strstr(end, "\"last_check\":"), '}');
    /* last_check is null or an object: the backend's brace follows. */
    if (strncmp(strstr(p, "\"last_check\":") + 13, "null", 4) == 0)
        end = strstr(p, "\"last_check\":null}") + strlen("\"last_check\":null");
    else
        end = strchr(end + 1, '}');
    cr_assert_not_null(end);
    return strndup(p, (size_t)(end - p + 1));
}

Test(backends_doc, each_backend_with_its_state_breaker_and_checks)
{
    struct lv_gen *g = gen_of(three_backends);
    struct lv_backend *a = g->backends[0], *b = g->backends[1];
    /* a: checks passing, the last one at a wall time; b: disabled; c: its
     * breaker opened by one failure at T0 (tripping starts the count of
     * consecutive failures again; the window keeps the failure). */
    a->last_check_ms = 1699999999000ull;
    snprintf(a->last_check, sizeof(a->last_check), "ok (%u)", 204);
    a->health.ok_streak = 4;
    atomic_store(&b->admin_state, LV_ADMIN_DISABLED);
    open_breaker(g, 2, T0);
    char *doc = backends_doc(g, T0 + 250, NULL);

    const char *head = "{\"time\":1700000000000,\"generation\":7,\"backends\":[{";
    cr_expect_eq(strncmp(doc, head, strlen(head)), 0, "%s", doc);
    cr_expect_str_eq(doc + strlen(doc) - 27, "],\"rate_limit_store\":null}\n");
    char *oa = backend_obj(doc, "a"), *ob = backend_obj(doc, "b"), *oc = backend_obj(doc, "c");
    cr_expect_str_eq(
        oa, "{\"id\":\"a\",\"pool\":\"default\",\"url\":\"http://"
            "127.0.0.1:18001\",\"weight\":1,\"admin_state\":"
            "\"enabled\",\"state\":\"ok\",\"usable\":true,\"health\":\"healthy\",\"breaker\":{"
            "\"state\":\"closed\",\"next_change_ms\":null,\"consecutive_failures\":0,\"window\":"
            "{\"ok\":0,\"fail\":0}},\"consecutive_check_failures\":0,"
            "\"consecutive_check_successes\":4,\"active_requests\":0,\"requests\":0,\"errors\":0,"
            "\"latency_ms\":{\"p50\":0.000,\"p99\":0.000,\"ewma\":0.000},\"last_check\":{"
            "\"result\":\"ok (204)\",\"time\":1699999999000}}");
    cr_expect_str_eq(
        ob, "{\"id\":\"b\",\"pool\":\"default\",\"url\":\"http://"
            "127.0.0.1:18002\",\"weight\":3,\"admin_state\":"
            "\"disabled\",\"state\":\"disabled\",\"usable\":false,\"health\":\"unchecked\","
            "\"breaker\":{\"state\":\"closed\",\"next_change_ms\":null,\"consecutive_failures\":"
            "0,\"window\":{\"ok\":0,\"fail\":0}},\"consecutive_check_failures\":0,"
            "\"consecutive_check_successes\":0,\"active_requests\":0,\"requests\":0,\"errors\":0,"
            "\"latency_ms\":{\"p50\":0.000,\"p99\":0.000,\"ewma\":0.000},\"last_check\":null}");
    cr_expect_str_eq(
        oc, "{\"id\":\"c\",\"pool\":\"default\",\"url\":\"http://"
            "127.0.0.1:18003\",\"weight\":1,\"admin_state\":"
            "\"enabled\",\"state\":\"open\",\"usable\":false,\"health\":\"unchecked\",\"breaker\":"
            "{\"state\":\"open\",\"next_change_ms\":750,\"consecutive_failures\":0,\"window\":"
            "{\"ok\":0,\"fail\":1}},\"consecutive_check_failures\":0,"
            "\"consecutive_check_successes\":0,\"active_requests\":0,\"requests\":0,\"errors\":0,"
            "\"latency_ms\":{\"p50\":0.000,\"p99\":0.000,\"ewma\":0.000},\"last_check\":null}");
    free(oa);
    free(ob);
    free(oc);
    free(doc);
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}

Test(backends_doc, state_and_usable_are_one_verdict_as_time_passes)
{
    struct lv_gen *g = gen_of(three_backends);
    open_breaker(g, 2, T0);
    /* Past its open period c is probing: "half_open" and usable, never
     * "open" and usable. */
    char *doc = backends_doc(g, DUE + 5, NULL);
    char *oc = backend_obj(doc, "c");
    cr_expect_not_null(strstr(oc, "\"state\":\"half_open\",\"usable\":true,"), "%s", oc);
    cr_expect_not_null(strstr(oc, "\"breaker\":{\"state\":\"open\",\"next_change_ms\":0,"), "%s",
                       oc);
    free(oc);
    free(doc);
    /* a failing its checks: unhealthy, not usable. */
    set_health(g->backends[0], false, false);
    g->backends[0]->health.fail_streak = 3;
    doc = backends_doc(g, T0, NULL);
    char *oa = backend_obj(doc, "a");
    cr_expect_not_null(strstr(oa, "\"state\":\"unhealthy\",\"usable\":false,\"health\":"
                                  "\"unhealthy\","),
                       "%s", oa);
    cr_expect_not_null(strstr(oa, "\"consecutive_check_failures\":3,"), "%s", oa);
    free(oa);
    free(doc);
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}

Test(backends_doc, the_redis_store_when_limits_are_shared)
{
    struct lv_gen *g = gen_of("backends:\n"
                              "  - id: a\n"
                              "    url: http://127.0.0.1:18001\n"
                              "rate_limit:\n"
                              "  requests_per_second: 5\n"
                              "  store: redis\n"
                              "  on_store_error: deny\n"
                              "  redis:\n"
                              "    address: 127.0.0.1:16379\n"
                              "access_log:\n"
                              "  path: off\n");
    struct lv_admin_store st = {.connected = 1, .workers = 2, .fallbacks = 17};
    char *doc = backends_doc(g, T0, &st);
    const char *want = "],\"rate_limit_store\":{\"type\":\"redis\",\"address\":\"127.0.0.1:16379\","
                       "\"state\":\"up\",\"workers_connected\":1,\"workers\":2,"
                       "\"on_store_error\":\"deny\",\"fallbacks\":17}}\n";
    cr_expect_str_eq(doc + strlen(doc) - strlen(want), want);
    free(doc);
    st.connected = 0;
    doc = backends_doc(g, T0, &st);
    cr_expect_not_null(strstr(doc, "\"state\":\"down\",\"workers_connected\":0,"), "%s", doc);
    free(doc);
    lv_gen_unref(g);
    LV_EXPECT_NO_LEAKS();
}
