/* Unit tests of services/notify/retry.c: the schedules as configured (units, bounds, bad
 * input), the delay per failure with its jitter and the end of a schedule, and Retry-After in
 * both forms. */
#include <check.h>
#include <string.h>

#include "services/notify/retry.h"
#include "tests/support/util.h"

START_TEST(test_schedule_defaults_parse)
{
    ns_schedule_t s;
    char why[128];
    ck_assert_int_eq(ns_schedule_parse(NS_WEBHOOK_SCHEDULE, &s, why, sizeof why), CHAT_OK);
    ck_assert_uint_eq(s.n, 7);
    ck_assert_int_eq(s.delays_ms[0], 5000);
    ck_assert_int_eq(s.delays_ms[1], 300000);
    ck_assert_int_eq(s.delays_ms[2], 1800000);
    ck_assert_int_eq(s.delays_ms[3], 7200000);
    ck_assert_int_eq(s.delays_ms[6], 86400000);
    ck_assert_int_eq(ns_schedule_parse(NS_PUSH_SCHEDULE, &s, why, sizeof why), CHAT_OK);
    ck_assert_uint_eq(s.n, 4);
    ck_assert_int_eq(s.delays_ms[1], 30000);
    ck_assert_int_eq(s.delays_ms[2], 120000);
    ck_assert_int_eq(s.delays_ms[3], 600000);
}
END_TEST

START_TEST(test_schedule_units_and_spaces)
{
    ns_schedule_t s;
    char why[128];
    ck_assert_int_eq(ns_schedule_parse("200ms, 1s ,250,1d", &s, why, sizeof why), CHAT_OK);
    ck_assert_uint_eq(s.n, 4);
    ck_assert_int_eq(s.delays_ms[0], 200);
    ck_assert_int_eq(s.delays_ms[1], 1000);
    ck_assert_int_eq(s.delays_ms[2], 250);
    ck_assert_int_eq(s.delays_ms[3], 86400000);
}
END_TEST

START_TEST(test_schedule_refuses_bad_input)
{
    ns_schedule_t s;
    char why[128];
    const char *bad[] = {"",    "5x", "5s,,5s", "0s",
                         "-1s", "s",  "5s,",    "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        ck_assert_msg(ns_schedule_parse(bad[i], &s, why, sizeof why) == CHAT_ERR_CONFIG, "%s",
                      bad[i]);
        ck_assert_str_ne(why, "");
    }
    ck_assert_int_eq(ns_schedule_parse(NULL, &s, why, sizeof why), CHAT_ERR_CONFIG);
}
END_TEST

START_TEST(test_delay_per_failure_and_jitter)
{
    ns_schedule_t s;
    char why[128];
    ck_assert_int_eq(ns_schedule_parse("5s,5m,30m", &s, why, sizeof why), CHAT_OK);
    ck_assert_int_eq(ns_schedule_delay(&s, 1, 0, 0.3), 5000);
    ck_assert_int_eq(ns_schedule_delay(&s, 2, 0, 0.9), 300000);
    ck_assert_int_eq(ns_schedule_delay(&s, 3, 0, 0), 1800000);
    ck_assert_int_eq(ns_schedule_delay(&s, 4, 0, 0), -1); /* exhausted: give up */
    ck_assert_int_eq(ns_schedule_delay(&s, 0, 0, 0), -1);
    /* ±10 %: rnd 0 is the low end, just under 1 the high end, 0.5 the entry itself. */
    ck_assert_int_eq(ns_schedule_delay(&s, 2, 0.10, 0.0), 270000);
    ck_assert_int_eq(ns_schedule_delay(&s, 2, 0.10, 0.5), 300000);
    int64_t high = ns_schedule_delay(&s, 2, 0.10, 0.999999);
    ck_assert_int_le(high, 330000);
    ck_assert_int_ge(high, 329999);
}
END_TEST

START_TEST(test_retry_after_seconds)
{
    ck_assert_int_eq(ns_retry_after_ms("120", 0), 120000);
    ck_assert_int_eq(ns_retry_after_ms(" 7 ", 0), 7000);
    ck_assert_int_eq(ns_retry_after_ms("0", 0), 0);
    ck_assert_int_eq(ns_retry_after_ms("12a", 0), -1);
    ck_assert_int_eq(ns_retry_after_ms("", 0), -1);
    ck_assert_int_eq(ns_retry_after_ms(NULL, 0), -1);
    ck_assert_int_eq(ns_retry_after_ms("-5", 0), -1);
}
END_TEST

START_TEST(test_retry_after_http_date)
{
    /* Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 s. */
    int64_t at = 1445412480000LL;
    ck_assert_int_eq(ns_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", at - 90000), 90000);
    ck_assert_int_eq(ns_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT", at + 5000), 0);
    ck_assert_int_eq(ns_retry_after_ms("Thu, 01 Jan 1970 00:00:10 GMT", 0), 10000);
    ck_assert_int_eq(ns_retry_after_ms("Wed, 21 Oct 2015 07:28:00 CET", 0), -1);
    ck_assert_int_eq(ns_retry_after_ms("Wed, 21 Foo 2015 07:28:00 GMT", 0), -1);
    ck_assert_int_eq(ns_retry_after_ms("Wed, 21 Oct 2015 25:28:00 GMT", 0), -1);
    ck_assert_int_eq(ns_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT trailing", 0), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("notify_retry");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_schedule_defaults_parse);
    tcase_add_test(tc, test_schedule_units_and_spaces);
    tcase_add_test(tc, test_schedule_refuses_bad_input);
    tcase_add_test(tc, test_delay_per_failure_and_jitter);
    tcase_add_test(tc, test_retry_after_seconds);
    tcase_add_test(tc, test_retry_after_http_date);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
