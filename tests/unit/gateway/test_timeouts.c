/* Unit tests of services/gateway/timeouts: deadlines come out in time order across kinds,
 * only when due; a node moves between kinds and can be cleared anywhere in a queue; an
 * earlier deadline of a kind finds its place. */
#include <check.h>
#include <stdlib.h>

#include "services/gateway/timeouts.h"
#include "tests/support/util.h"

START_TEST(test_order_and_due)
{
    gw_timeouts_t q;
    gw_timeout_kind_t kind;
    gw_timeouts_init(&q);
    gw_timeout_t t[6];
    for (int i = 0; i < 6; i++)
        gw_timeout_init(&t[i]);
    gw_timeouts_set(&q, &t[0], GW_TIMEOUT_AUTH, 100);
    gw_timeouts_set(&q, &t[1], GW_TIMEOUT_AUTH, 200);
    gw_timeouts_set(&q, &t[2], GW_TIMEOUT_KEEPALIVE, 150);
    gw_timeouts_set(&q, &t[3], GW_TIMEOUT_CLOSE, 50);
    gw_timeouts_set(&q, &t[4], GW_TIMEOUT_AUTH, 120); /* earlier than the tail: walks back */
    ck_assert_ptr_null(gw_timeouts_expired(&q, 49, &kind));
    ck_assert_ptr_eq(gw_timeouts_expired(&q, 1000, &kind), &t[3]);
    ck_assert_int_eq(kind, GW_TIMEOUT_CLOSE);
    ck_assert_ptr_eq(gw_timeouts_expired(&q, 1000, &kind), &t[0]);
    ck_assert_ptr_eq(gw_timeouts_expired(&q, 1000, &kind), &t[4]);
    ck_assert_ptr_eq(gw_timeouts_expired(&q, 160, &kind), &t[2]);
    ck_assert_int_eq(kind, GW_TIMEOUT_KEEPALIVE);
    ck_assert_ptr_null(gw_timeouts_expired(&q, 160, &kind));
    ck_assert_int_eq(t[2].kind, -1);
    ck_assert_ptr_eq(gw_timeouts_expired(&q, 200, &kind), &t[1]);
    ck_assert_ptr_null(gw_timeouts_expired(&q, 1000000, &kind));
    for (int k = 0; k < GW_TIMEOUT__COUNT; k++)
        ck_assert_uint_eq(q.count[k], 0);
}
END_TEST

START_TEST(test_move_and_clear)
{
    gw_timeouts_t q;
    gw_timeout_kind_t kind;
    gw_timeouts_init(&q);
    gw_timeout_t a, b, c;
    gw_timeout_init(&a);
    gw_timeout_init(&b);
    gw_timeout_init(&c);
    gw_timeouts_set(&q, &a, GW_TIMEOUT_AUTH, 10);
    gw_timeouts_set(&q, &b, GW_TIMEOUT_AUTH, 20);
    gw_timeouts_set(&q, &c, GW_TIMEOUT_AUTH, 30);
    gw_timeouts_clear(&q, &b); /* the middle */
    gw_timeouts_clear(&q, &b); /* again: nothing */
    ck_assert_uint_eq(q.count[GW_TIMEOUT_AUTH], 2);
    gw_timeouts_set(&q, &a, GW_TIMEOUT_CLOSE, 40); /* moves to another kind */
    ck_assert_uint_eq(q.count[GW_TIMEOUT_AUTH], 1);
    ck_assert_uint_eq(q.count[GW_TIMEOUT_CLOSE], 1);
    gw_timeouts_set(&q, &c, GW_TIMEOUT_AUTH, 35); /* re-armed in its own kind */
    ck_assert_ptr_eq(gw_timeouts_expired(&q, 100, &kind), &c);
    ck_assert_ptr_eq(gw_timeouts_expired(&q, 100, &kind), &a);
    ck_assert_ptr_null(gw_timeouts_expired(&q, 100, &kind));
}
END_TEST

/* Many connections with one duration: every add stays O(1) and they expire in order. */
START_TEST(test_many)
{
    enum { N = 100000 };
    gw_timeouts_t q;
    gw_timeout_kind_t kind;
    gw_timeouts_init(&q);
    gw_timeout_t *t = calloc(N, sizeof *t);
    ck_assert_ptr_nonnull(t);
    for (int i = 0; i < N; i++) {
        gw_timeout_init(&t[i]);
        gw_timeouts_set(&q, &t[i], GW_TIMEOUT_KEEPALIVE, 1000 + i / 10);
    }
    int64_t last = 0;
    for (int i = 0; i < N; i++) {
        gw_timeout_t *e = gw_timeouts_expired(&q, 1000 + N, &kind);
        ck_assert_ptr_nonnull(e);
        ck_assert_int_ge(e->due_ms, last);
        last = e->due_ms;
    }
    ck_assert_ptr_null(gw_timeouts_expired(&q, 1000 + N, &kind));
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_timeouts");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_order_and_due);
    tcase_add_test(tc, test_move_and_clear);
    tcase_add_test(tc, test_many);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
