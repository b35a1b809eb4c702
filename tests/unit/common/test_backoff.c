/* Unit tests of common/backoff: the first delay, doubling, the ceiling, reset, and the
 * bounds chat_backoff_make enforces. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/backoff.h"
#include "tests/support/util.h"

START_TEST(test_doubles_up_to_the_ceiling)
{
    chat_backoff_t b = chat_backoff_make(CHAT_BACKOFF_FIRST_MS, CHAT_BACKOFF_MAX_MS);
    const int64_t want[] = {100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        ck_assert_int_eq(chat_backoff_next(&b), want[i]);
    ck_assert_int_eq(b.attempts, 9);
}
END_TEST

START_TEST(test_reset_starts_over)
{
    chat_backoff_t b = chat_backoff_make(10, 1000);
    chat_backoff_next(&b);
    chat_backoff_next(&b);
    ck_assert_int_eq(chat_backoff_next(&b), 40);
    chat_backoff_reset(&b);
    ck_assert_int_eq(b.attempts, 0);
    ck_assert_int_eq(chat_backoff_next(&b), 10);
    ck_assert_int_eq(b.attempts, 1);
}
END_TEST

START_TEST(test_bounds)
{
    chat_backoff_t b = chat_backoff_make(0, -5);
    ck_assert_int_eq(chat_backoff_next(&b), 1);
    ck_assert_int_eq(chat_backoff_next(&b), 1);
    b = chat_backoff_make(300, 100); /* a ceiling below the first delay is raised to it */
    ck_assert_int_eq(chat_backoff_next(&b), 300);
    ck_assert_int_eq(chat_backoff_next(&b), 300);
    b = chat_backoff_make(INT64_MAX / 2 + 1, INT64_MAX); /* no overflow near the top */
    chat_backoff_next(&b);
    ck_assert_int_eq(chat_backoff_next(&b), INT64_MAX);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("backoff");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_doubles_up_to_the_ceiling);
    tcase_add_test(tc, test_reset_starts_over);
    tcase_add_test(tc, test_bounds);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
