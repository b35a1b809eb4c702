/* Unit tests of common/mod_record.c's keys: a decision's log key and flag id depend only on
 * what was decided (tenant, message, version, rule), so a replay finds its own documents; a
 * moderator's review is logged beside the rule's decision, and a flag id is 24 hex digits.
 * (Writing them is covered against MongoDB and Redis by tests/integration/190-moderation.py.) */
#include <check.h>
#include <string.h>

#include "common/mod_record.h"
#include "tests/support/util.h"

static chat_mod_decision_t decision(void)
{
    return (chat_mod_decision_t){.tenant = "acme",
                                 .room = "general",
                                 .id = "65a1b2c3d4e5f60718293a4b",
                                 .seq = 7,
                                 .ver = 0,
                                 .from = "alice",
                                 .text = "hello",
                                 .action = CHAT_MOD_FLAG,
                                 .kind = CHAT_MOD_KIND_BLOCKLIST,
                                 .rule = "profanity",
                                 .by = "rules",
                                 .ts = 1700000000000};
}

START_TEST(test_log_key)
{
    chat_mod_decision_t d = decision();
    char key[256];
    ck_assert_int_gt(chat_mod_log_key(&d, key, sizeof key), 0);
    ck_assert_str_eq(key, "acme/65a1b2c3d4e5f60718293a4b/0/profanity");
    /* when and by which instance does not matter: a replay has the same key */
    d.ts += 5000;
    d.by = "rescan";
    char again[256];
    chat_mod_log_key(&d, again, sizeof again);
    ck_assert_str_eq(key, again);
    /* an edit is another version */
    d.ver = 12;
    chat_mod_log_key(&d, again, sizeof again);
    ck_assert_str_eq(again, "acme/65a1b2c3d4e5f60718293a4b/12/profanity");
    /* a moderator's review is a decision of its own */
    d.ver = 0;
    d.by = "moderator:carol";
    chat_mod_log_key(&d, again, sizeof again);
    ck_assert_str_eq(again, "acme/65a1b2c3d4e5f60718293a4b/0/profanity/moderator:carol");
    /* too small a buffer, or a missing part */
    ck_assert_int_eq(chat_mod_log_key(&d, key, 10), -1);
    d.rule = NULL;
    ck_assert_int_eq(chat_mod_log_key(&d, key, sizeof key), -1);
}
END_TEST

START_TEST(test_flag_id)
{
    chat_mod_decision_t d = decision();
    char a[CHAT_MOD_FLAG_ID_LEN + 1], b[CHAT_MOD_FLAG_ID_LEN + 1];
    chat_mod_flag_id(&d, a);
    ck_assert_uint_eq(strlen(a), CHAT_MOD_FLAG_ID_LEN);
    ck_assert_uint_eq(strspn(a, "0123456789abcdef"), CHAT_MOD_FLAG_ID_LEN);
    d.ts++;
    d.by = "moderator:carol"; /* a review of the flag is still that flag */
    chat_mod_flag_id(&d, b);
    ck_assert_str_eq(a, b);
    d.tenant = "other";
    chat_mod_flag_id(&d, b);
    ck_assert_str_ne(a, b);
    d = decision();
    d.rule = "repeat";
    chat_mod_flag_id(&d, b);
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(test_record_nothing)
{
    /* No decisions: nothing to write, no connection needed. */
    ck_assert_int_eq(chat_mod_record(NULL, NULL, NULL, 0), CHAT_OK);
    /* A mute needs Redis: refused, not crashed. */
    chat_mod_decision_t d = decision();
    d.action = CHAT_MOD_MUTE;
    d.mute_s = 60;
    ck_assert_int_eq(chat_mod_record(NULL, NULL, &d, 1), CHAT_ERR_INVALID);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("mod_record");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_log_key);
    tcase_add_test(tc, test_flag_id);
    tcase_add_test(tc, test_record_nothing);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
