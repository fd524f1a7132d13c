/*
 * Helpers shared by the unit tests.
 *
 * LV_EXPECT_NO_LEAKS(): fails the current test if LeakSanitizer finds
 * unreachable memory at this point. Criterion prints LeakSanitizer's report
 * at a worker's exit but does not count it as a failure, so tests that check
 * an error path frees what it allocated call this at their end. It is a
 * no-op in builds without AddressSanitizer.
 */
#ifndef LV_TESTS_UNIT_LV_TEST_H
#define LV_TESTS_UNIT_LV_TEST_H

#include <criterion/criterion.h>

#if defined(__SANITIZE_ADDRESS__)
#define LV_TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LV_TEST_ASAN 1
#endif
#endif

#ifdef LV_TEST_ASAN
#include <sanitizer/lsan_interface.h>
#define LV_EXPECT_NO_LEAKS()                                                                       \
    cr_expect_eq(__lsan_do_recoverable_leak_check(), 0, "memory leaked (see the report above)")
#else
#define LV_EXPECT_NO_LEAKS()                                                                       \
    do {                                                                                           \
    } while (0)
#endif

#endif
