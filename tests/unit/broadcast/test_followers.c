/* Unit tests of the broadcast room table (without Redis: the lookup itself is covered by
 * tests/integration/120-broadcast-service.c): distinct rooms, tenant separation, the
 * longest names, reset, and growth past the initial table size. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/names.h"
#include "services/broadcast/followers.h"
#include "tests/support/util.h"

START_TEST(test_distinct_rooms)
{
    broadcast_followers_t *f = broadcast_followers_new();
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(broadcast_followers_add(f, "acme", "general"), CHAT_OK);
    ck_assert_int_eq(broadcast_followers_add(f, "acme", "general"), CHAT_OK);
    ck_assert_int_eq(broadcast_followers_add(f, "beta", "general"), CHAT_OK);
    ck_assert_int_eq(broadcast_followers_add(f, "acme", "random"), CHAT_OK);
    ck_assert_uint_eq(broadcast_followers_count(f), 3);
    size_t n = 99;
    ck_assert_ptr_null(broadcast_followers_get(f, "acme", "general", &n));
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(broadcast_followers_add(f, NULL, "x"), CHAT_ERR_INVALID);
    broadcast_followers_free(f);
    broadcast_followers_free(NULL);
}
END_TEST

START_TEST(test_set_and_get)
{
    broadcast_followers_t *f = broadcast_followers_new();
    const int32_t gws[] = {3, 0, 7};
    ck_assert_int_eq(broadcast_followers_set(f, "acme", "general", gws, 3), CHAT_OK);
    size_t n;
    const int32_t *got = broadcast_followers_get(f, "acme", "general", &n);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(got[0], 3);
    ck_assert_int_eq(got[1], 0);
    ck_assert_int_eq(got[2], 7);
    /* Same room name, other tenant: nothing. */
    ck_assert_ptr_null(broadcast_followers_get(f, "beta", "general", &n));
    ck_assert_uint_eq(n, 0);
    /* "a/b" + "c" and "a" + "b/c" cannot meet: tenants have no '/'. */
    ck_assert_ptr_null(broadcast_followers_get(f, "acm", "e/general", &n));
    /* Setting again replaces. */
    ck_assert_int_eq(broadcast_followers_set(f, "acme", "general", gws, 1), CHAT_OK);
    got = broadcast_followers_get(f, "acme", "general", &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(got[0], 3);
    ck_assert_uint_eq(broadcast_followers_count(f), 1);
    broadcast_followers_reset(f);
    ck_assert_uint_eq(broadcast_followers_count(f), 0);
    ck_assert_ptr_null(broadcast_followers_get(f, "acme", "general", &n));
    ck_assert_uint_eq(n, 0);
    broadcast_followers_free(f);
}
END_TEST

START_TEST(test_many_rooms)
{
    /* Well past the initial table: every room keeps its own gateways. */
    broadcast_followers_t *f = broadcast_followers_new();
    for (int round = 0; round < 2; round++) {
        for (int32_t i = 0; i < 3000; i++) {
            char room[32];
            snprintf(room, sizeof room, "room-%d", (int)i);
            int32_t gws[] = {i, i + 1};
            ck_assert_int_eq(broadcast_followers_set(f, "acme", room, gws, (size_t)(i % 3)),
                             CHAT_OK);
        }
        ck_assert_uint_eq(broadcast_followers_count(f), 3000);
        for (int32_t i = 0; i < 3000; i++) {
            char room[32];
            snprintf(room, sizeof room, "room-%d", (int)i);
            size_t n;
            const int32_t *got = broadcast_followers_get(f, "acme", room, &n);
            ck_assert_uint_eq(n, (size_t)(i % 3));
            if (n > 0)
                ck_assert_int_eq(got[0], i);
        }
        broadcast_followers_reset(f);
    }
    broadcast_followers_free(f);
}
END_TEST

START_TEST(test_longest_names)
{
    /* The longest tenant and room fit in the table (and their Redis key in its entry). */
    char tenant[CHAT_TENANT_MAX + 1], room[CHAT_ROOM_MAX + 1];
    memset(tenant, 't', CHAT_TENANT_MAX);
    tenant[CHAT_TENANT_MAX] = '\0';
    memset(room, 'r', CHAT_ROOM_MAX);
    room[CHAT_ROOM_MAX] = '\0';
    broadcast_followers_t *f = broadcast_followers_new();
    const int32_t gws[] = {1};
    ck_assert_int_eq(broadcast_followers_set(f, tenant, room, gws, 1), CHAT_OK);
    size_t n;
    ck_assert_ptr_nonnull(broadcast_followers_get(f, tenant, room, &n));
    broadcast_followers_free(f);
}
END_TEST

static Suite *followers_suite(void)
{
    Suite *s = suite_create("broadcast_followers");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_distinct_rooms);
    tcase_add_test(tc, test_set_and_get);
    tcase_add_test(tc, test_many_rooms);
    tcase_add_test(tc, test_longest_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(followers_suite(), false);
}
