/* Unit tests of common/contract.c: the record key of a room, gateway ids and their
 * chat.deliver partitions, and the Redis registration keys. (chat_topics_check needs a
 * broker: integration tests 006 and 120 start services against missing topics.) */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/log.h"
#include "tests/support/util.h"

START_TEST(test_room_key)
{
    char buf[32];
    ck_assert_int_eq(chat_room_key("acme", "general", buf, sizeof buf), 12);
    ck_assert_str_eq(buf, "acme/general");
    ck_assert_int_eq(chat_room_key("acme", "general", buf, 13), 12);
    ck_assert_int_eq(chat_room_key("acme", "general", buf, 12), -1);
    ck_assert_int_eq(chat_room_key("acme", "dm:a:b", buf, sizeof buf), 11);
    ck_assert_str_eq(buf, "acme/dm:a:b");
    ck_assert_int_eq(chat_room_key(NULL, "general", buf, sizeof buf), -1);
    ck_assert_int_eq(chat_room_key("acme", NULL, buf, sizeof buf), -1);
    ck_assert_int_eq(chat_room_key("", "general", buf, sizeof buf), -1);
    ck_assert_int_eq(chat_room_key("acme", "", buf, sizeof buf), -1);
    ck_assert_int_eq(chat_room_key("acme", "general", NULL, 0), -1);
}
END_TEST

/* A gateway's id is its index in decimal, and reads back as its partition. */
START_TEST(test_gateway_id)
{
    char buf[CHAT_GATEWAY_ID_MAX];
    ck_assert_int_eq(chat_gateway_id(0, buf, sizeof buf), 1);
    ck_assert_str_eq(buf, "0");
    ck_assert_int_eq(chat_gateway_id(CHAT_GATEWAY_INDEX_MAX, buf, sizeof buf), 4);
    ck_assert_str_eq(buf, "4095");
    for (int64_t i = 0; i <= CHAT_GATEWAY_INDEX_MAX; i++) {
        ck_assert_int_gt(chat_gateway_id(i, buf, sizeof buf), 0);
        ck_assert_int_eq(chat_gateway_partition(buf), (int32_t)i);
    }
    ck_assert_int_eq(chat_gateway_index_partition(0), 0);
    ck_assert_int_eq(chat_gateway_index_partition(17), 17);
    ck_assert_int_eq(chat_gateway_index_partition(CHAT_GATEWAY_INDEX_MAX), CHAT_GATEWAY_INDEX_MAX);
    ck_assert_int_eq(chat_gateway_index_partition(-1), -1);
    ck_assert_int_eq(chat_gateway_index_partition(CHAT_GATEWAY_INDEX_MAX + 1), -1);
    ck_assert_int_eq(chat_gateway_id(-1, buf, sizeof buf), -1);
    ck_assert_int_eq(chat_gateway_id(CHAT_GATEWAY_INDEX_MAX + 1, buf, sizeof buf), -1);
    ck_assert_int_eq(chat_gateway_id(15, buf, 2), -1);
    ck_assert_int_eq(chat_gateway_id(1, NULL, 0), -1);
}
END_TEST

START_TEST(test_gateway_partition)
{
    static const struct {
        const char *s;
        int32_t v;
    } cases[] = {
        {"0", 0},           {"1", 1},
        {"15", 15},         {"2147483647", 2147483647},
        {"2147483648", -1}, {"", -1},
        {"01", -1},         {"-1", -1},
        {"+1", -1},         {" 1", -1},
        {"1 ", -1},         {"1a", -1},
        {"gw-0", -1},       {"99999999999999999999", -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        ck_assert_msg(chat_gateway_partition(cases[i].s) == cases[i].v, "\"%s\"", cases[i].s);
    ck_assert_int_eq(chat_gateway_partition(NULL), -1);
}
END_TEST

/* The registration keys gateways write and broadcast reads: one cluster slot per room
 * (hash tag), and room for the longest names. */
START_TEST(test_registry_keys)
{
    char buf[CHAT_REGISTRY_KEY_MAX];
    ck_assert_int_eq(chat_registry_key("acme", "general", CHAT_REGISTRY_GWS, buf, sizeof buf),
                     (int)strlen("chat:room:{acme/general}:gws"));
    ck_assert_str_eq(buf, "chat:room:{acme/general}:gws");
    chat_registry_key("acme", "dm:a:b", CHAT_REGISTRY_ONLINE, buf, sizeof buf);
    ck_assert_str_eq(buf, "chat:room:{acme/dm:a:b}:online");
    chat_registry_key("acme", "general", CHAT_REGISTRY_PRESENCE, buf, sizeof buf);
    ck_assert_str_eq(buf, "chat:room:{acme/general}:presence");
    char small[10];
    ck_assert_int_eq(chat_registry_key("acme", "general", CHAT_REGISTRY_GWS, small, sizeof small),
                     -1);
    ck_assert_int_eq(chat_registry_key(NULL, "general", CHAT_REGISTRY_GWS, buf, sizeof buf), -1);
    ck_assert_int_eq(chat_registry_key("acme", "", CHAT_REGISTRY_GWS, buf, sizeof buf), -1);
    ck_assert_int_eq(chat_registry_key("acme", "general", (chat_registry_set_t)7, buf, sizeof buf),
                     -1);
    char tenant[CHAT_TENANT_MAX + 1], room[CHAT_ROOM_MAX + 1];
    memset(tenant, 't', CHAT_TENANT_MAX);
    tenant[CHAT_TENANT_MAX] = '\0';
    memset(room, 'r', CHAT_ROOM_MAX);
    room[CHAT_ROOM_MAX] = '\0';
    ck_assert_int_eq(chat_registry_key(tenant, room, CHAT_REGISTRY_PRESENCE, buf, sizeof buf),
                     (int)sizeof buf - 1);
    ck_assert_int_eq(chat_registry_key(tenant, room, CHAT_REGISTRY_ONLINE, buf, sizeof buf),
                     (int)sizeof buf - 3);
    char key[CHAT_ROOM_KEY_MAX];
    ck_assert_int_eq(chat_room_key(tenant, room, key, sizeof key), (int)sizeof key - 1);
}
END_TEST

/* The recent-history key: the registration keys' form, so one slot holds all of a room. */
START_TEST(test_recent_key)
{
    char buf[CHAT_RECENT_KEY_MAX];
    ck_assert_int_eq(chat_recent_key("acme", "general", buf, sizeof buf),
                     (int)strlen("chat:room:{acme/general}:recent"));
    ck_assert_str_eq(buf, "chat:room:{acme/general}:recent");
    char small[10];
    ck_assert_int_eq(chat_recent_key("acme", "general", small, sizeof small), -1);
    ck_assert_int_eq(chat_recent_key("acme", NULL, buf, sizeof buf), -1);
    ck_assert_int_eq(chat_recent_key("", "general", buf, sizeof buf), -1);
    char tenant[CHAT_TENANT_MAX + 1], room[CHAT_ROOM_MAX + 1];
    memset(tenant, 't', CHAT_TENANT_MAX);
    tenant[CHAT_TENANT_MAX] = '\0';
    memset(room, 'r', CHAT_ROOM_MAX);
    room[CHAT_ROOM_MAX] = '\0';
    ck_assert_int_eq(chat_recent_key(tenant, room, buf, sizeof buf), (int)sizeof buf - 1);
}
END_TEST

/* The useq key's value round-trips under its run id and is trusted under no other. */
START_TEST(test_useq_value)
{
    char buf[CHAT_USEQ_VALUE_MAX];
    int n = chat_useq_value("run1", 42, buf, sizeof buf);
    ck_assert_int_eq(n, 7);
    ck_assert_str_eq(buf, "run1:42");
    int64_t useq = 0;
    ck_assert(chat_useq_value_parse(buf, (size_t)n, "run1", &useq));
    ck_assert_int_eq(useq, 42);
    useq = 7;
    ck_assert(!chat_useq_value_parse(buf, (size_t)n, "run2", &useq)); /* another server's */
    ck_assert(!chat_useq_value_parse(buf, (size_t)n, "", &useq));
    ck_assert(!chat_useq_value_parse("run1:", 5, "run1", &useq));
    ck_assert(!chat_useq_value_parse("run1:4x", 7, "run1", &useq));
    ck_assert(!chat_useq_value_parse("run1:-3", 7, "run1", &useq));
    ck_assert(!chat_useq_value_parse("run1x42", 7, "run1", &useq));
    ck_assert_int_eq(useq, 7); /* untouched by a refusal */
    ck_assert_int_eq(chat_useq_value("run1", 42, buf, 5), -1);
}
END_TEST

/* The ids of the server API's documents and its reply lists, which two services spell alike. */
START_TEST(test_member_id_and_reply_key)
{
    char buf[CHAT_MEMBER_ID_MAX];
    ck_assert_int_eq(chat_member_id("acme", "team", "bob", buf, sizeof buf), 13);
    ck_assert_str_eq(buf, "acme/team/bob");
    ck_assert_int_eq(chat_member_id("acme", "team", "", buf, sizeof buf), -1);
    ck_assert_int_eq(chat_member_id("acme", "team", "bob", buf, 13), -1);
    /* the longest valid parts fit: a user id of 64 four-byte characters */
    char room[CHAT_ROOM_MAX + 1], user[CHAT_USER_MAX * 4 + 1], tenant[CHAT_TENANT_MAX + 1];
    memset(room, 'r', CHAT_ROOM_MAX);
    room[CHAT_ROOM_MAX] = '\0';
    memset(tenant, 't', CHAT_TENANT_MAX);
    tenant[CHAT_TENANT_MAX] = '\0';
    for (int i = 0; i < CHAT_USER_MAX; i++)
        memcpy(user + 4 * i, "\xf0\x9f\x98\x80", 4);
    user[CHAT_USER_MAX * 4] = '\0';
    ck_assert_int_gt(chat_member_id(tenant, room, user, buf, sizeof buf), 0);

    char key[CHAT_API_REPLY_KEY_MAX];
    ck_assert_int_gt(chat_api_reply_key("api-0.x-1", key, sizeof key), 0);
    ck_assert_str_eq(key, "chat:api:reply:{api-0.x-1}");
    ck_assert(chat_origin_is_api("api"));
    ck_assert(!chat_origin_is_api("3"));
}
END_TEST

static Suite *contract_suite(void)
{
    Suite *s = suite_create("contract");
    TCase *tc = tcase_create("keys");
    tcase_add_test(tc, test_room_key);
    tcase_add_test(tc, test_gateway_id);
    tcase_add_test(tc, test_gateway_partition);
    tcase_add_test(tc, test_registry_keys);
    tcase_add_test(tc, test_recent_key);
    tcase_add_test(tc, test_useq_value);
    tcase_add_test(tc, test_member_id_and_reply_key);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    chat_log_set_level(CHAT_LOG_OFF); /* refusals are logged; expected here */
    return chat_test_suite_run(contract_suite(), false);
}
