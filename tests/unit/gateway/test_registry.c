/* Unit tests of services/gateway/registry, its I/O-free parts: the Redis key layout (hash
 * tags keep a room's keys in one cluster slot) and the conversion of online members
 * "<gateway>:<user>" into distinct user ids. The Redis pipelines run against the stack. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/gateway/registry.h"

START_TEST(test_keys)
{
    char buf[GW_REGISTRY_KEY_MAX];
    ck_assert_int_eq(gw_registry_key(buf, sizeof buf, "acme", "general", "gws"),
                     (int)strlen("chat:room:{acme/general}:gws"));
    ck_assert_str_eq(buf, "chat:room:{acme/general}:gws");
    gw_registry_key(buf, sizeof buf, "acme", "dm:a:b", "online");
    ck_assert_str_eq(buf, "chat:room:{acme/dm:a:b}:online");
    char small[10];
    ck_assert_int_eq(gw_registry_key(small, sizeof small, "acme", "general", "gws"), -1);
}
END_TEST

START_TEST(test_users_from_members)
{
    const char *members[] = {"0:alice", "1:bob", "1:alice", "2:user:with:colons", "broken", "3:"};
    const char *users[6];
    size_t n = gw_registry_users(members, 6, users);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(users[0], "alice");
    ck_assert_str_eq(users[1], "bob");
    ck_assert_str_eq(users[2], "user:with:colons");
    ck_assert_uint_eq(gw_registry_users(members, 0, users), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, test_keys);
    tcase_add_test(tc, test_users_from_members);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
