/* Unit tests of common/fleet_count.c that need no server: the string format (encode, decode,
 * malformed lines skipped, sums), the local counts (never below 0), and an unreachable Redis
 * failing open (only the local counts count). Across instances through a real Redis: the
 * gateway's test 113. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/fleet_count.h"
#include "tests/support/util.h"

static int64_t get(const chat_strmap_t *m, const char *tenant)
{
    const int64_t *v = chat_strmap_get(m, tenant);
    return v != NULL ? *v : 0;
}

START_TEST(test_encode_decode)
{
    chat_strmap_t *counts = chat_strmap_new();
    ck_assert_int_eq(chat_fleet_decode_add("acme=3\nglobex=12\n", 17, counts), 2);
    ck_assert_int_eq(chat_fleet_decode_add("acme=2\nzero=0\n", 14, counts), 1);
    ck_assert_int_eq(get(counts, "acme"), 5);
    ck_assert_int_eq(get(counts, "globex"), 12);
    ck_assert_int_eq(get(counts, "zero"), 0);
    char *s = chat_fleet_encode(counts);
    ck_assert_ptr_nonnull(s);
    chat_strmap_t *again = chat_strmap_new();
    ck_assert_int_eq(chat_fleet_decode_add(s, strlen(s), again), 2);
    ck_assert_int_eq(get(again, "acme"), 5);
    ck_assert_int_eq(get(again, "globex"), 12);
    free(s);
    chat_fleet_counts_clear(again);
    chat_strmap_free(again);
    chat_fleet_counts_clear(counts);
    chat_strmap_free(counts);
}
END_TEST

START_TEST(test_malformed_lines_skipped)
{
    chat_strmap_t *sums = chat_strmap_new();
    static const char junk[] = "=4\nnoequals\nt=\nt=x\nt=-3\nt=99999999999999999999999\n"
                               "ok=7\nlast=1"; /* no final newline */
    ck_assert_int_eq(chat_fleet_decode_add(junk, sizeof junk - 1, sums), 2);
    ck_assert_int_eq(get(sums, "ok"), 7);
    ck_assert_int_eq(get(sums, "last"), 1);
    ck_assert_int_eq(get(sums, "t"), 0);
    ck_assert_int_eq(chat_fleet_decode_add("", 0, sums), 0);
    chat_fleet_counts_clear(sums);
    chat_strmap_free(sums);
}
END_TEST

/* Redis unreachable: the counts are the local ones, exact; never below 0. */
START_TEST(test_local_counts_fail_open)
{
    chat_fleet_conf_t conf = {.redis_url = "redis://127.0.0.1:1/0",
                              .timeout_ms = 200,
                              .prefix = "test:conns",
                              .instance = "0",
                              .period_ms = 100};
    chat_fleet_t *f = NULL;
    ck_assert_int_eq(chat_fleet_new(&conf, &f), CHAT_OK);
    chat_fleet_add(f, "acme", 1);
    chat_fleet_add(f, "acme", 1);
    chat_fleet_add(f, "globex", 1);
    chat_fleet_add(f, "globex", -1);
    chat_fleet_add(f, "globex", -1);
    ck_assert_int_eq(chat_fleet_local(f, "acme"), 2);
    ck_assert_int_eq(chat_fleet_total(f, "acme"), 2);
    ck_assert_int_eq(chat_fleet_total(f, "globex"), 0);
    ck_assert_int_eq(chat_fleet_instances(f), 1);
    ck_assert_int_eq(chat_fleet_sync(f), CHAT_ERR_REDIS);
    ck_assert_int_eq(chat_fleet_total(f, "acme"), 2);
    chat_fleet_free(f);
}
END_TEST

START_TEST(test_bad_conf)
{
    chat_fleet_t *f = NULL;
    chat_fleet_conf_t conf = {.redis_url = "redis://127.0.0.1:1/0", .prefix = NULL};
    ck_assert_int_eq(chat_fleet_new(&conf, &f), CHAT_ERR_CONFIG);
    ck_assert_ptr_null(f);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("fleet_count");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_encode_decode);
    tcase_add_test(tc, test_malformed_lines_skipped);
    tcase_add_test(tc, test_local_counts_fail_open);
    tcase_add_test(tc, test_bad_conf);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
