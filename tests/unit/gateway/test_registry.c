/* Unit tests of services/gateway/registry, its I/O-free parts: the conversion of online members
 * "<gateway>:<user>" into distinct user ids, and the deep copies of rooms for heartbeats,
 * also when a copy runs out of memory. The Redis pipelines run against the stack. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "services/gateway/registry.h"

/* strdup for the whole test program, failing its call number strdup_fail_at (counted from
 * 0 since strdup_calls was reset; -1: never), so out-of-memory paths can be driven. */
static long strdup_fail_at = -1;
static long strdup_calls;

char *strdup(const char *s)
{
    if (strdup_fail_at >= 0 && strdup_calls++ == strdup_fail_at)
        return NULL;
    size_t len = strlen(s) + 1;
    char *copy = malloc(len);
    if (copy != NULL)
        memcpy(copy, s, len);
    return copy;
}

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

START_TEST(test_rooms_append_copies)
{
    gw_registry_room_t *rooms = NULL;
    size_t n = 0, cap = 0;
    char tenant[] = "acme", room[] = "general", alice[] = "alice";
    const char *users[] = {alice, "bob"};
    ck_assert(gw_registry_rooms_append(&rooms, &n, &cap, tenant, room, users, 2));
    ck_assert(gw_registry_rooms_append(&rooms, &n, &cap, "acme", "empty", NULL, 0));
    tenant[0] = room[0] = alice[0] = 'X'; /* copies, not references */
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(rooms[0].tenant, "acme");
    ck_assert_str_eq(rooms[0].room, "general");
    ck_assert_uint_eq(rooms[0].nusers, 2);
    ck_assert_str_eq(rooms[0].users[0], "alice");
    ck_assert_str_eq(rooms[0].users[1], "bob");
    ck_assert_str_eq(rooms[1].room, "empty");
    ck_assert_uint_eq(rooms[1].nusers, 0);
    gw_registry_rooms_free(rooms, n);
    gw_registry_rooms_free(NULL, 0);
}
END_TEST

/* Whichever copy runs out of memory (tenant, room or a user), the room is not appended and
 * nothing leaks (ASan); the rooms before stay as they were. */
START_TEST(test_rooms_append_out_of_memory)
{
    const char *users[] = {"alice", "bob"};
    for (long fail = 0; fail < 4; fail++) {
        gw_registry_room_t *rooms = NULL;
        size_t n = 0, cap = 0;
        ck_assert(gw_registry_rooms_append(&rooms, &n, &cap, "acme", "first", NULL, 0));
        strdup_calls = 0;
        strdup_fail_at = fail;
        bool ok = gw_registry_rooms_append(&rooms, &n, &cap, "acme", "general", users, 2);
        strdup_fail_at = -1;
        ck_assert_msg(!ok, "strdup %ld failed, yet the room was appended", fail);
        ck_assert_msg(n == 1, "strdup %ld failed: %zu rooms", fail, n);
        ck_assert_str_eq(rooms[0].room, "first");
        gw_registry_rooms_free(rooms, n);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, test_users_from_members);
    tcase_add_test(tc, test_rooms_append_copies);
    tcase_add_test(tc, test_rooms_append_out_of_memory);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
