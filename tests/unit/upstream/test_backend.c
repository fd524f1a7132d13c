/*
 * Whether a backend can take a request (upstream/backend.c): usable, and
 * the last resort when none is, with a fake clock for the breaker.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "upstream/backend.h"
#include "upstream/breaker.h"

static const struct lv_breaker_cfg BC = {
    .enabled = true,
    .failure_threshold = 2,
    .success_threshold = 1,
    .timeout = 5000,
    .max_timeout = 60000,
    .half_open_requests = 1,
};

static struct lv_backend *bs[2];

static void setup(void)
{
    bs[0] = lv_backend_create("b0", 1);
    bs[1] = lv_backend_create("b1", 1);
    cr_assert(bs[0] && bs[1]);
}

static void teardown(void)
{
    lv_backend_unref(bs[0]);
    lv_backend_unref(bs[1]);
}

/* The health checker's verdict: unhealthy, and rising or not. */
static void checks_say(struct lv_backend *b, bool healthy, bool rising)
{
    atomic_store(&b->healthy, healthy);
    atomic_store(&b->rising, rising);
}

static void open_breaker(struct lv_backend *b, uint64_t now)
{
    for (uint32_t i = 0; i < BC.failure_threshold; i++) {
        struct lv_breaker_ticket t;
        cr_assert(lv_breaker_allow(&b->breaker, &BC, now, &t));
        lv_breaker_report(&b->breaker, &BC, 0, now, false, 0.5, &t);
    }
    cr_assert_eq(lv_breaker_state(&b->breaker), LV_BREAKER_OPEN);
}

TestSuite(backend, .init = setup, .fini = teardown);

Test(backend, usable_when_enabled_healthy_and_breaker_closed)
{
    cr_expect(lv_backend_usable(bs[0], &BC, 1000));
    cr_expect(lv_backend_any_usable(bs, 2, &BC, 1000));
    atomic_store(&bs[0]->admin_state, LV_ADMIN_DRAINING);
    cr_expect_not(lv_backend_usable(bs[0], &BC, 1000));
    atomic_store(&bs[0]->admin_state, LV_ADMIN_ENABLED);
    checks_say(bs[0], false, false);
    cr_expect_not(lv_backend_usable(bs[0], &BC, 1000));
    open_breaker(bs[1], 1000);
    cr_expect_not(lv_backend_usable(bs[1], &BC, 1000));
    cr_expect_not(lv_backend_any_usable(bs, 2, &BC, 1000));
    cr_expect(lv_backend_usable(bs[1], &BC, 1000 + BC.timeout * 2), "the open period ended");
}

Test(backend, last_resort_is_a_rising_backend_its_breaker_permitting)
{
    checks_say(bs[0], false, false);
    cr_expect_not(lv_backend_last_resort(bs[0], &BC, 1000), "failing its checks");
    checks_say(bs[0], false, true);
    cr_expect(lv_backend_last_resort(bs[0], &BC, 1000));
    cr_expect_not(lv_backend_usable(bs[0], &BC, 1000), "only as the last resort");
    atomic_store(&bs[0]->admin_state, LV_ADMIN_DISABLED);
    cr_expect_not(lv_backend_last_resort(bs[0], &BC, 1000), "disabled");
    atomic_store(&bs[0]->admin_state, LV_ADMIN_ENABLED);

    open_breaker(bs[0], 1000);
    cr_expect_not(lv_backend_last_resort(bs[0], &BC, 1001), "breaker open");
    /* The checker's first pass while nothing is usable lets it probe now. */
    lv_breaker_health_passed(&bs[0]->breaker, 1002);
    cr_expect(lv_backend_last_resort(bs[0], &BC, 1002));
}
