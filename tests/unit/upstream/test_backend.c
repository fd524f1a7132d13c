/*
 * The shared backend object (upstream/backend.c): what a new one starts
 * as, and its lifetime. Whether it can serve is tested in test_eligible.c.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "unit/lv_test.h"
#include "upstream/backend.h"
#include "upstream/breaker.h"

Test(backend, starts_enabled_healthy_closed_and_in_service)
{
    struct lv_backend *b = lv_backend_create("b0", 3);
    cr_assert_not_null(b);
    cr_expect_str_eq(b->id, "b0");
    cr_expect_eq(b->nworkers, 3);
    cr_expect_eq(lv_backend_admin(b), LV_ADMIN_ENABLED);
    cr_expect(atomic_load(&b->healthy));
    cr_expect_not(atomic_load(&b->rising));
    cr_expect_eq(atomic_load(&b->recovered_at), 0, "never out of service: no slow start");
    cr_expect_eq(lv_breaker_state(&b->breaker), LV_BREAKER_CLOSED);
    cr_expect_eq(lv_backend_active(b), 0);
    for (unsigned w = 0; w < 3; w++)
        cr_expect_eq(b->pools[w].n, 0);
    lv_backend_unref(b);
}

Test(backend, recovered_stamps_the_time_never_zero)
{
    struct lv_backend *b = lv_backend_create("b0", 1);
    cr_assert_not_null(b);
    lv_backend_recovered(b, 5000);
    cr_expect_eq(atomic_load(&b->recovered_at), 5000);
    lv_backend_recovered(b, 0); /* 0 means "never": a recovery at 0 is 1 */
    cr_expect_eq(atomic_load(&b->recovered_at), 1);
    lv_backend_unref(b);
}

Test(backend, the_last_reference_frees_it)
{
    struct lv_backend *b = lv_backend_create("b0", 2);
    cr_assert_not_null(b);
    lv_backend_ref(b);
    lv_backend_unref(b);
    cr_expect_eq(atomic_load(&b->refs), 1);
    lv_backend_unref(b);
    lv_backend_unref(NULL);
    LV_EXPECT_NO_LEAKS();
}

Test(backend, admin_state_names)
{
    cr_expect_str_eq(lv_admin_state_name(LV_ADMIN_ENABLED), "enabled");
    cr_expect_str_eq(lv_admin_state_name(LV_ADMIN_DRAINING), "draining");
    cr_expect_str_eq(lv_admin_state_name(LV_ADMIN_DISABLED), "disabled");
}
