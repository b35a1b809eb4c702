/* Unit tests of common/token_bucket: the burst, the refill rate, the cap at burst and a
 * clock that steps backwards. */
#include <check.h>
#include <stdlib.h>

#include "common/token_bucket.h"
#include "tests/support/util.h"

#define SEC 1000000LL /* microseconds */

/* Takes tokens at now_us until the bucket refuses; returns how many it gave. */
static int drain(chat_token_bucket_t *tb, int64_t now_us)
{
    int n = 0;
    while (chat_token_bucket_take(tb, now_us)) {
        n++;
        ck_assert_int_lt(n, 1000000);
    }
    return n;
}

START_TEST(test_burst)
{
    chat_token_bucket_t tb;
    chat_token_bucket_init(&tb, 20, 40, 5 * SEC);
    ck_assert_int_eq(drain(&tb, 5 * SEC), 40);
    ck_assert(!chat_token_bucket_take(&tb, 5 * SEC));
}
END_TEST

START_TEST(test_refill_rate)
{
    chat_token_bucket_t tb;
    chat_token_bucket_init(&tb, 20, 40, 0);
    ck_assert_int_eq(drain(&tb, 0), 40);
    /* 20 per second: one token every 50 ms, none before. */
    ck_assert(!chat_token_bucket_take(&tb, 49999));
    ck_assert(chat_token_bucket_take(&tb, 50000));
    ck_assert(!chat_token_bucket_take(&tb, 50000));
    /* Half a second later: 10 more. */
    ck_assert_int_eq(drain(&tb, 550000), 10);
    /* A steady 20/s is allowed indefinitely, 21/s is not. */
    int64_t t = 550000;
    for (int i = 0; i < 200; i++) {
        t += SEC / 20;
        ck_assert(chat_token_bucket_take(&tb, t));
    }
    /* From an empty bucket, 10 s at 21/s asks for 210 and gets the 200 earned. */
    chat_token_bucket_init(&tb, 20, 40, 0);
    drain(&tb, 0);
    int refused = 0;
    for (int i = 1; i <= 21 * 10; i++)
        refused += !chat_token_bucket_take(&tb, (int64_t)i * SEC / 21);
    ck_assert_int_ge(refused, 9);
    ck_assert_int_le(refused, 11);
}
END_TEST

START_TEST(test_no_overfill)
{
    chat_token_bucket_t tb;
    chat_token_bucket_init(&tb, 20, 40, 0);
    ck_assert_int_eq(drain(&tb, 0), 40);
    /* An hour of silence refills to the burst, not to 72000. */
    ck_assert_int_eq(drain(&tb, 3600 * SEC), 40);
    /* A fresh bucket that waits is still capped at the burst. */
    chat_token_bucket_init(&tb, 1000, 3, 0);
    ck_assert_int_eq(drain(&tb, 10 * SEC), 3);
}
END_TEST

START_TEST(test_time_backwards)
{
    chat_token_bucket_t tb;
    chat_token_bucket_init(&tb, 10, 5, 100 * SEC);
    ck_assert_int_eq(drain(&tb, 100 * SEC), 5);
    /* The clock jumps back 50 s: nothing is added... */
    ck_assert(!chat_token_bucket_take(&tb, 50 * SEC));
    ck_assert(!chat_token_bucket_take(&tb, 50 * SEC + 500000));
    /* ...and when it comes back, only the time after the last real reading counts: 100 ms at
     * 10/s is one token, not the 50 s that were "lived" twice. */
    ck_assert_int_eq(drain(&tb, 100 * SEC + 100000), 1);
}
END_TEST

START_TEST(test_zero_rate)
{
    chat_token_bucket_t tb;
    chat_token_bucket_init(&tb, 0, 2, 0);
    ck_assert_int_eq(drain(&tb, 0), 2);
    ck_assert_int_eq(drain(&tb, 1000 * SEC), 0);
}
END_TEST

/* A new rate and capacity count since the last take; a lower capacity cuts what the bucket
 * holds at once, a higher one fills at the new rate. */
START_TEST(test_set_rate)
{
    chat_token_bucket_t tb;
    chat_token_bucket_init(&tb, 10, 10, 0);
    chat_token_bucket_set(&tb, 2, 3); /* full (10): cut to 3 */
    for (int i = 0; i < 3; i++)
        ck_assert(chat_token_bucket_take(&tb, 0));
    ck_assert(!chat_token_bucket_take(&tb, 0));
    /* 0.5 s later at 2/s: one token, not the 5 of the old rate */
    ck_assert(chat_token_bucket_take(&tb, 500000));
    ck_assert(!chat_token_bucket_take(&tb, 500000));
    /* raised to 20/s, capacity 20: 2 s later it holds the new capacity */
    chat_token_bucket_set(&tb, 20, 20);
    for (int i = 0; i < 20; i++)
        ck_assert(chat_token_bucket_take(&tb, 2500000));
    ck_assert(!chat_token_bucket_take(&tb, 2500000));
}
END_TEST

static Suite *token_bucket_suite(void)
{
    Suite *s = suite_create("token_bucket");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_burst);
    tcase_add_test(tc, test_refill_rate);
    tcase_add_test(tc, test_no_overfill);
    tcase_add_test(tc, test_time_backwards);
    tcase_add_test(tc, test_zero_rate);
    tcase_add_test(tc, test_set_rate);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(token_bucket_suite(), false);
}
