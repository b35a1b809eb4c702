/* Unit tests of services/gateway/drain: how many connections each step of a drain closes, so
 * that the closes spread evenly over the window and the last step takes what is left. */
#include <check.h>
#include <stdint.h>

#include "services/gateway/drain.h"
#include "tests/support/util.h"

START_TEST(test_batch_basics)
{
    ck_assert_uint_eq(gw_drain_batch(0, 0, 0, 0, 10000, 100), 0);
    ck_assert_uint_eq(gw_drain_batch(100, 0, 0, 0, 10000, 100), 0); /* none open */
    /* 100 connections over 10 s in steps of 100 ms: one per step */
    ck_assert_uint_eq(gw_drain_batch(100, 0, 100, 0, 10000, 100), 1);
    ck_assert_uint_eq(gw_drain_batch(100, 50, 50, 5000, 10000, 100), 1);
    /* behind the schedule (a slow step): catches up */
    ck_assert_uint_eq(gw_drain_batch(100, 10, 90, 5000, 10000, 100), 41);
    /* ahead of it (clients left by themselves do not count as done): waits */
    ck_assert_uint_eq(gw_drain_batch(10, 1, 9, 100, 10000, 100), 0);
    /* 150 over 100 steps: 2, then 1, then 2 ... (the even share, rounded up) */
    ck_assert_uint_eq(gw_drain_batch(150, 0, 150, 0, 10000, 100), 2);
    ck_assert_uint_eq(gw_drain_batch(150, 2, 148, 100, 10000, 100), 1);
    /* never more than are open */
    ck_assert_uint_eq(gw_drain_batch(100, 0, 3, 5000, 10000, 100), 3);
    /* the last step, or past the end: everything */
    ck_assert_uint_eq(gw_drain_batch(57, 0, 57, 9900, 10000, 100), 57);
    ck_assert_uint_eq(gw_drain_batch(57, 3, 54, 12000, 10000, 100), 54);
    ck_assert_uint_eq(gw_drain_batch(57, 0, 57, 0, 0, 100), 57);
    /* a zero tick behaves as 1 ms, a negative elapsed as 0 */
    ck_assert_uint_eq(gw_drain_batch(10, 0, 10, 0, 1000, 0), 1);
    ck_assert_uint_eq(gw_drain_batch(10, 0, 10, -50, 1000, 100), 1);
    /* huge counts do not overflow */
    ck_assert_uint_eq(gw_drain_batch(SIZE_MAX, 0, SIZE_MAX, 0, 10000, 100), SIZE_MAX);
}
END_TEST

/* Simulates a drain: a step every tick until every connection is closed. The closes cover
 * the window (the first at its start, the last within its last part), every connection is
 * closed exactly once, and no step closes more than its even share. */
static void simulate(size_t n, int64_t window, int64_t tick)
{
    size_t open = n, done = 0, max_step = 0;
    int64_t first = -1, last = -1;
    for (int64_t t = 0; open > 0; t += tick) {
        ck_assert_msg(t < window, "drain of %zu over %lld ms overran", n, (long long)window);
        size_t k = gw_drain_batch(n, done, open, t, window, tick);
        ck_assert_uint_le(k, open);
        if (k > 0 && first < 0)
            first = t;
        if (k > 0)
            last = t;
        if (k > max_step)
            max_step = k;
        open -= k;
        done += k;
    }
    ck_assert_uint_eq(done, n);
    ck_assert_int_eq(first, 0);
    size_t steps = (size_t)(window / tick);
    ck_assert_uint_le(max_step, (n + steps - 1) / steps);
    /* the last close comes in the last 1/n of the window (or its last step) */
    int64_t slot = window / (int64_t)(n < steps ? n : steps);
    ck_assert_msg(last >= window - slot - tick, "%zu over %lld: last close at %lld", n,
                  (long long)window, (long long)last);
}

START_TEST(test_batch_spreads_over_window)
{
    simulate(40, 3000, 100);
    simulate(1000, 10000, 100);
    simulate(100000, 10000, 100);
    simulate(7, 10000, 100);
    simulate(30, 3000, 100);
    simulate(3, 1000, 100);
    simulate(1, 10000, 100);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_drain");
    TCase *tc = tcase_create("drain");
    tcase_add_test(tc, test_batch_basics);
    tcase_add_test(tc, test_batch_spreads_over_window);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
