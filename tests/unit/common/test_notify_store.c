/* Unit tests of common/notify_store.c that need no server: preference modes, webhook event
 * names, the online hash's key, the index declarations and the argument checks. What is
 * stored in MongoDB and counted in Redis is checked against the real stack by
 * tests/integration/195-push-frames.c. */
#include <check.h>
#include <string.h>

#include "common/notify_store.h"
#include "tests/support/util.h"

START_TEST(test_mode_parse)
{
    ck_assert_int_eq(chat_push_mode_parse("all"), CHAT_PUSH_MODE_ALL);
    ck_assert_int_eq(chat_push_mode_parse("mentions"), CHAT_PUSH_MODE_MENTIONS);
    ck_assert_int_eq(chat_push_mode_parse("none"), CHAT_PUSH_MODE_NONE);
    /* "default" is no stored mode: it parses as DEFAULT like anything unknown */
    ck_assert_int_eq(chat_push_mode_parse("default"), CHAT_PUSH_MODE_DEFAULT);
    ck_assert_int_eq(chat_push_mode_parse("All"), CHAT_PUSH_MODE_DEFAULT);
    ck_assert_int_eq(chat_push_mode_parse("all "), CHAT_PUSH_MODE_DEFAULT);
    ck_assert_int_eq(chat_push_mode_parse(""), CHAT_PUSH_MODE_DEFAULT);
    ck_assert_int_eq(chat_push_mode_parse(NULL), CHAT_PUSH_MODE_DEFAULT);
}
END_TEST

START_TEST(test_mode_name)
{
    ck_assert_str_eq(chat_push_mode_name(CHAT_PUSH_MODE_DEFAULT), "default");
    ck_assert_str_eq(chat_push_mode_name(CHAT_PUSH_MODE_ALL), "all");
    ck_assert_str_eq(chat_push_mode_name(CHAT_PUSH_MODE_MENTIONS), "mentions");
    ck_assert_str_eq(chat_push_mode_name(CHAT_PUSH_MODE_NONE), "none");
    ck_assert_str_eq(chat_push_mode_name((chat_push_mode_t)42), "default");
    for (int m = CHAT_PUSH_MODE_ALL; m <= CHAT_PUSH_MODE_NONE; m++)
        ck_assert_int_eq(chat_push_mode_parse(chat_push_mode_name((chat_push_mode_t)m)), m);
}
END_TEST

START_TEST(test_event_parse)
{
    static const struct {
        const char *name;
        unsigned bit;
    } events[] = {
        {"message.new", CHAT_WH_MESSAGE_NEW},
        {"message.updated", CHAT_WH_MESSAGE_UPDATED},
        {"message.removed", CHAT_WH_MESSAGE_REMOVED},
        {"room.member_added", CHAT_WH_ROOM_MEMBER_ADDED},
        {"room.member_removed", CHAT_WH_ROOM_MEMBER_REMOVED},
        {"user.offline_message", CHAT_WH_USER_OFFLINE_MESSAGE},
    };
    unsigned all = 0;
    for (size_t i = 0; i < sizeof events / sizeof events[0]; i++) {
        ck_assert_uint_eq(chat_webhook_event_parse(events[i].name), events[i].bit);
        ck_assert_str_eq(chat_webhook_event_name(events[i].bit), events[i].name);
        all |= events[i].bit;
    }
    ck_assert_uint_eq(all, CHAT_WH_EVENTS_ALL);
    ck_assert_uint_eq(chat_webhook_event_parse("message"), 0);
    ck_assert_uint_eq(chat_webhook_event_parse("message.new.x"), 0);
    ck_assert_uint_eq(chat_webhook_event_parse("MESSAGE.NEW"), 0);
    ck_assert_uint_eq(chat_webhook_event_parse(""), 0);
    ck_assert_uint_eq(chat_webhook_event_parse(NULL), 0);
    ck_assert_ptr_null(chat_webhook_event_name(0));
    ck_assert_ptr_null(chat_webhook_event_name(1u << 6));
    ck_assert_ptr_null(chat_webhook_event_name(CHAT_WH_MESSAGE_NEW | CHAT_WH_MESSAGE_UPDATED));
}
END_TEST

START_TEST(test_online_key)
{
    char buf[64];
    ck_assert_int_eq(chat_online_key("0", buf, sizeof buf), 15);
    ck_assert_str_eq(buf, "chat:gw:0:users");
    ck_assert_int_eq(chat_online_key("12", buf, sizeof buf), 16);
    ck_assert_str_eq(buf, "chat:gw:12:users");
    ck_assert_int_eq(chat_online_key("0", buf, 15), -1); /* no room for the NUL */
    ck_assert_int_eq(chat_online_key("0", buf, 16), 15);
    ck_assert_int_eq(chat_online_key("", buf, sizeof buf), -1);
    ck_assert_int_eq(chat_online_key(NULL, buf, sizeof buf), -1);
}
END_TEST

START_TEST(test_indexes)
{
    ck_assert_uint_eq(chat_notify_store_nindexes, 4);
    const char *const collections[] = {CHAT_PUSH_SUBS_COLLECTION, CHAT_PUSH_PREFS_COLLECTION,
                                       CHAT_USER_CONTACTS_COLLECTION, CHAT_WEBHOOKS_COLLECTION};
    for (size_t i = 0; i < 4; i++) {
        const chat_store_index_t *ix = &chat_notify_store_indexes[i];
        ck_assert_str_eq(ix->collection, collections[i]);
        ck_assert(!ix->unique);
        ck_assert_str_eq(ix->fields[0], "tenant");
        if (i < 3) {
            ck_assert_str_eq(ix->name, "tenant_user");
            ck_assert_str_eq(ix->fields[1], "user");
            ck_assert_ptr_null(ix->fields[2]);
        } else {
            ck_assert_str_eq(ix->name, "tenant");
            ck_assert_ptr_null(ix->fields[1]);
        }
    }
}
END_TEST

/* Bad arguments are refused before any server is asked (the store and Redis handles are NULL
 * here: a call that got past its checks would crash). */
START_TEST(test_arguments)
{
    const char *users[] = {"alice"};
    chat_push_mode_t modes[1] = {CHAT_PUSH_MODE_NONE};
    bool online[1] = {true};
    /* nothing asked: no round trip, outputs untouched */
    ck_assert_int_eq(chat_push_prefs_effective(NULL, "acme", "r", "public", users, 0, modes),
                     CHAT_OK);
    ck_assert_int_eq(modes[0], CHAT_PUSH_MODE_NONE);
    ck_assert_int_eq(chat_online_users(NULL, 2, "acme", users, 0, online), CHAT_OK);
    ck_assert(online[0]);

    ck_assert_int_eq(chat_push_prefs_effective(NULL, "acme", "r", "public", users, 1, modes),
                     CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_online_users(NULL, 2, "acme", users, 1, online), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_online_add(NULL, "0", "acme", "alice", 1), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_online_reset(NULL, "0"), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_online_refresh(NULL, "0", 15000), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_push_sub_put(NULL, "acme", "alice", "https://p.example/x", "k", "a", 1),
                     CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_push_sub_delete(NULL, "acme", "alice", "https://p.example/x"),
                     CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_push_sub_delete_id(NULL, "acme/alice/00"), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_push_pref_set(NULL, "acme", "alice", "*", CHAT_PUSH_MODE_ALL, 1),
                     CHAT_ERR_INVALID);
    chat_push_sub_t *subs = (chat_push_sub_t *)1;
    size_t n = 7;
    ck_assert_int_eq(chat_push_subs_list(NULL, "acme", "alice", &subs, &n), CHAT_ERR_INVALID);
    ck_assert_ptr_null(subs);
    ck_assert_uint_eq(n, 0);
    chat_push_subs_free(NULL, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("notify_store");
    TCase *tc = tcase_create("notify_store");
    tcase_add_test(tc, test_mode_parse);
    tcase_add_test(tc, test_mode_name);
    tcase_add_test(tc, test_event_parse);
    tcase_add_test(tc, test_online_key);
    tcase_add_test(tc, test_indexes);
    tcase_add_test(tc, test_arguments);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
