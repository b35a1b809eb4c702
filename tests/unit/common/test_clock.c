/* Unit tests of common/clock: the monotonic clock never goes back and agrees with itself in
 * ms and us, the wall clock is the date, a sleep lasts at least its time even when signals
 * arrive, and the remaining time clamps to [0, INT_MAX]. */
#include <check.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "common/clock.h"
#include "tests/support/util.h"

START_TEST(test_mono_never_goes_back)
{
    int64_t prev_ms = chat_clock_mono_ms(), prev_us = chat_clock_mono_us();
    for (int i = 0; i < 100000; i++) {
        int64_t ms = chat_clock_mono_ms(), us = chat_clock_mono_us();
        ck_assert_int_ge(ms, prev_ms);
        ck_assert_int_ge(us, prev_us);
        prev_ms = ms;
        prev_us = us;
    }
}
END_TEST

START_TEST(test_mono_units_agree)
{
    int64_t ms = chat_clock_mono_ms();
    int64_t us = chat_clock_mono_us();
    int64_t ms_after = chat_clock_mono_ms();
    ck_assert_int_ge(us / 1000, ms);
    ck_assert_int_le(us / 1000, ms_after);
}
END_TEST

/* time() may read a coarse clock a few ms behind: a second of slack on each side. */
START_TEST(test_wall_is_the_date)
{
    int64_t before = ((int64_t)time(NULL) - 1) * 1000;
    int64_t wall = chat_clock_wall_ms();
    int64_t after = ((int64_t)time(NULL) + 2) * 1000;
    ck_assert_int_ge(wall, before);
    ck_assert_int_lt(wall, after);
}
END_TEST

START_TEST(test_sleep_lasts_at_least_its_time)
{
    int64_t start = chat_clock_mono_us();
    chat_clock_sleep_ms(120);
    int64_t took_us = chat_clock_mono_us() - start;
    ck_assert_int_ge(took_us, 120 * 1000);
    ck_assert_int_lt(took_us, 2000 * 1000);
}
END_TEST

START_TEST(test_sleep_nothing_for_zero_or_less)
{
    int64_t start = chat_clock_mono_us();
    chat_clock_sleep_ms(0);
    chat_clock_sleep_ms(-5000);
    ck_assert_int_lt(chat_clock_mono_us() - start, 100 * 1000);
}
END_TEST

static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

/* SIGALRM every 20 ms interrupts nanosleep again and again: the sleep still lasts its time. */
START_TEST(test_sleep_survives_signals)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: nanosleep fails with EINTR */
    ck_assert_int_eq(sigaction(SIGALRM, &sa, NULL), 0);
    struct itimerval every_20ms = {.it_interval = {.tv_usec = 20000},
                                   .it_value = {.tv_usec = 20000}};
    ck_assert_int_eq(setitimer(ITIMER_REAL, &every_20ms, NULL), 0);
    int64_t start = chat_clock_mono_us();
    chat_clock_sleep_ms(200);
    int64_t took_us = chat_clock_mono_us() - start;
    struct itimerval off = {0};
    setitimer(ITIMER_REAL, &off, NULL);
    ck_assert_int_ge(took_us, 200 * 1000);
    ck_assert_int_lt(took_us, 2000 * 1000);
    ck_assert_int_ge(alarms, 3); /* the signals did arrive during the sleep */
}
END_TEST

START_TEST(test_remaining_clamps)
{
    int64_t now = chat_clock_mono_ms();
    ck_assert_int_eq(chat_clock_remaining_ms(now - 1000), 0);
    ck_assert_int_eq(chat_clock_remaining_ms(INT64_MIN / 2), 0);
    ck_assert_int_eq(chat_clock_remaining_ms(now + (int64_t)INT_MAX * 4), INT_MAX);
    ck_assert_int_eq(chat_clock_remaining_ms(INT64_MAX / 2), INT_MAX);
    int left = chat_clock_remaining_ms(now + 5000);
    ck_assert_int_le(left, 5000);
    ck_assert_int_gt(left, 4000);
}
END_TEST

START_TEST(test_remaining_reaches_zero)
{
    int64_t deadline = chat_clock_mono_ms() + 50;
    ck_assert_int_gt(chat_clock_remaining_ms(deadline), 0);
    chat_clock_sleep_ms(60);
    ck_assert_int_eq(chat_clock_remaining_ms(deadline), 0);
}
END_TEST

START_TEST(test_seconds_since_counts_seconds)
{
    int64_t start = chat_clock_mono_us();
    ck_assert(chat_clock_seconds_since(start) >= 0.0);
    chat_clock_sleep_ms(30);
    double took = chat_clock_seconds_since(start);
    ck_assert_msg(took >= 0.030 && took < 1.0, "took %.6f s", took);
    ck_assert(chat_clock_seconds_since(start - 2 * 1000 * 1000) >= 2.0);
}
END_TEST

static Suite *clock_suite(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_mono_never_goes_back);
    tcase_add_test(tc, test_mono_units_agree);
    tcase_add_test(tc, test_wall_is_the_date);
    tcase_add_test(tc, test_sleep_lasts_at_least_its_time);
    tcase_add_test(tc, test_sleep_nothing_for_zero_or_less);
    tcase_add_test(tc, test_sleep_survives_signals);
    tcase_add_test(tc, test_remaining_clamps);
    tcase_add_test(tc, test_remaining_reaches_zero);
    tcase_add_test(tc, test_seconds_since_counts_seconds);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(clock_suite(), false);
}
