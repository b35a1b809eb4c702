/* Unit tests of common/mutes.c that need no server: the key of a tenant's mutes and the
 * argument checks. The Redis behaviour (a mute only extends, the hash expires with its last
 * mute, one HMGET for many users) is checked against a real Redis by
 * tests/integration/185-moderation-verdicts.c. */
#include <check.h>
#include <string.h>

#include "common/mutes.h"
#include "tests/support/util.h"

START_TEST(test_key)
{
    char buf[64];
    ck_assert_int_eq(chat_mute_key("acme", buf, sizeof buf), 16);
    ck_assert_str_eq(buf, "chat:mute:{acme}");
    /* the hash tag keeps a tenant's mutes in one slot of a cluster */
    ck_assert_ptr_nonnull(strstr(buf, "{acme}"));
    ck_assert_int_eq(chat_mute_key("acme", buf, 16), -1); /* no room for the NUL */
    ck_assert_int_eq(chat_mute_key("acme", buf, 17), 16);
    ck_assert_int_eq(chat_mute_key("", buf, sizeof buf), -1);
    ck_assert_int_eq(chat_mute_key(NULL, buf, sizeof buf), -1);
}
END_TEST

START_TEST(test_arguments)
{
    const char *users[] = {"alice"};
    bool muted[1] = {true};
    /* nothing to ask: no round trip, muted untouched */
    ck_assert_int_eq(chat_mute_check(NULL, "acme", users, 0, 1, muted), CHAT_OK);
    ck_assert(muted[0]);
    ck_assert_int_eq(chat_mute_check(NULL, "acme", users, 1, 1, muted), CHAT_ERR_INVALID);
    ck_assert(muted[0]);
    ck_assert_int_eq(chat_mute_set(NULL, "acme", "alice", 1), CHAT_ERR_INVALID);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mutes");
    TCase *tc = tcase_create("mutes");
    tcase_add_test(tc, test_key);
    tcase_add_test(tc, test_arguments);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
