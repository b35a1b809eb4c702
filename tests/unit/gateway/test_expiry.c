/* Unit tests of services/gateway/expiry: the token expiry wheel. Deadlines come out at their
 * second (not before), in any order of setting; a deadline a turn of the wheel or more ahead
 * is passed over until its turn; set moves, clear removes, a past exp comes out at once; many
 * mixed lifetimes come out exactly once each. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "services/gateway/expiry.h"
#include "tests/support/util.h"

static gw_expiry_t w;

static gw_timeout_t *node(void)
{
    gw_timeout_t *t = calloc(1, sizeof *t);
    ck_assert_ptr_nonnull(t);
    gw_timeout_init(t);
    return t;
}

START_TEST(test_due_at_their_second)
{
    gw_expiry_init(&w, 1000);
    gw_timeout_t *a = node(), *b = node(), *late = node();
    gw_expiry_set(&w, b, 1002);
    gw_expiry_set(&w, a, 1001);
    gw_expiry_set(&w, late, 1001 + GW_EXPIRY_SLOTS); /* same slot as a, a turn later */
    ck_assert_uint_eq(w.count, 3);
    ck_assert_ptr_null(gw_expiry_expired(&w, 1000));
    ck_assert_ptr_eq(gw_expiry_expired(&w, 1001), a);
    ck_assert_ptr_null(gw_expiry_expired(&w, 1001));
    ck_assert_ptr_eq(gw_expiry_expired(&w, 1005), b); /* a late tick catches up */
    ck_assert_ptr_null(gw_expiry_expired(&w, 1000 + GW_EXPIRY_SLOTS));
    ck_assert_ptr_eq(gw_expiry_expired(&w, 1001 + GW_EXPIRY_SLOTS), late);
    ck_assert_uint_eq(w.count, 0);
    free(a);
    free(b);
    free(late);
}
END_TEST

START_TEST(test_set_moves_clear_removes)
{
    gw_expiry_init(&w, 50);
    gw_timeout_t *a = node(), *b = node(), *c = node();
    gw_expiry_set(&w, a, 60);
    gw_expiry_set(&w, b, 60);
    gw_expiry_set(&w, c, 60);
    gw_expiry_set(&w, b, 90); /* a refresh moved it */
    gw_expiry_clear(&w, a);   /* a connection closed */
    gw_expiry_clear(&w, a);   /* twice: no-op */
    ck_assert_uint_eq(w.count, 2);
    ck_assert_ptr_eq(gw_expiry_expired(&w, 60), c);
    ck_assert_ptr_null(gw_expiry_expired(&w, 89));
    ck_assert_ptr_eq(gw_expiry_expired(&w, 90), b);
    /* A past exp (a token that expired while its welcome was on the way) comes out at once. */
    gw_expiry_set(&w, a, 10);
    ck_assert_ptr_eq(gw_expiry_expired(&w, 91), a);
    ck_assert_int_eq(a->kind, -1); /* out of the wheel */
    free(a);
    free(b);
    free(c);
}
END_TEST

enum { N = 5000 };

START_TEST(test_mixed_lifetimes_once_each)
{
    int64_t start = 1700000000;
    gw_expiry_init(&w, start);
    gw_timeout_t *nodes = calloc(N, sizeof *nodes);
    int *seen = calloc(N, sizeof *seen);
    srand(7);
    for (size_t i = 0; i < N; i++) {
        gw_timeout_init(&nodes[i]);
        /* lifetimes from 1 s to 3 h, as several tenants' tokens would have */
        gw_expiry_set(&w, &nodes[i], start + 1 + rand() % (3 * 3600));
    }
    for (int64_t now = start; now <= start + 3 * 3600 + 1; now += 1 + rand() % 7) {
        gw_timeout_t *t;
        while ((t = gw_expiry_expired(&w, now)) != NULL) {
            size_t i = (size_t)(t - nodes);
            ck_assert_int_le(t->due_ms / 1000, now);     /* never early */
            ck_assert_int_gt(t->due_ms / 1000, now - 7); /* nor later than the tick */
            seen[i]++;
        }
    }
    for (size_t i = 0; i < N; i++)
        ck_assert_int_eq(seen[i], 1);
    ck_assert_uint_eq(w.count, 0);
    free(nodes);
    free(seen);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_expiry");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_due_at_their_second);
    tcase_add_test(tc, test_set_moves_clear_removes);
    tcase_add_test(tc, test_mixed_lifetimes_once_each);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
