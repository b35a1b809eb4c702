/* Unit tests of services/notify/push.c and webhook.c: the payloads a service worker receives
 * (fields, the optional name, the text cut to 1,000 characters on a UTF-8 boundary and the
 * whole within 3,000 bytes), and how push and webhook answers are judged. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "services/notify/push.h"
#include "services/notify/webhook.h"
#include "tests/support/util.h"

static ns_push_msg_t msg(const char *text)
{
    return (ns_push_msg_t){.tenant = "acme",
                           .room = "dm:ann:bob",
                           .id = "65a1b2c3d4e5f60718293a4b",
                           .from = "bob",
                           .name = "Bob B.",
                           .text = text,
                           .seq = 42,
                           .count = 3,
                           .ts = 1700000000123LL};
}

/* Parses a payload and returns the number of characters of its text. */
static size_t text_chars(const char *payload, cJSON **out)
{
    cJSON *o = cJSON_Parse(payload);
    ck_assert_ptr_nonnull(o);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "text");
    ck_assert(cJSON_IsString(t));
    size_t chars = 0;
    for (const unsigned char *p = (const unsigned char *)t->valuestring; *p; p++)
        chars += (*p & 0xc0) != 0x80;
    *out = o;
    return chars;
}

START_TEST(test_payload_fields)
{
    ns_push_msg_t m = msg("hi <there> \"you\"");
    size_t len = 0;
    char *p = ns_push_payload(&m, &len);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq(len, strlen(p));
    ck_assert_str_eq(p,
                     "{\"type\":\"message\",\"tenant\":\"acme\",\"room\":\"dm:ann:bob\",\"seq\":42,"
                     "\"id\":\"65a1b2c3d4e5f60718293a4b\",\"from\":\"bob\",\"name\":\"Bob B.\","
                     "\"text\":\"hi <there> \\\"you\\\"\",\"count\":3,\"ts\":1700000000123}");
    free(p);
    m.name = NULL;
    p = ns_push_payload(&m, &len);
    ck_assert_ptr_null(strstr(p, "\"name\""));
    free(p);
}
END_TEST

START_TEST(test_text_cut_on_a_character_boundary)
{
    /* 1,200 characters of 2 bytes each ("é"): cut to 1,000 characters, 2,000 bytes. */
    char *text = malloc(2401);
    for (int i = 0; i < 1200; i++)
        memcpy(text + 2 * i, "\xc3\xa9", 2);
    text[2400] = '\0';
    ns_push_msg_t m = msg(text);
    size_t len = 0;
    char *p = ns_push_payload(&m, &len);
    cJSON *o = NULL;
    ck_assert_uint_eq(text_chars(p, &o), 1000);
    ck_assert_uint_eq(strlen(cJSON_GetObjectItem(o, "text")->valuestring), 2000);
    ck_assert_uint_le(len, NS_PUSH_PAYLOAD_MAX);
    cJSON_Delete(o);
    free(p);
    free(text);
}
END_TEST

START_TEST(test_payload_stays_within_3000_bytes)
{
    /* 1,000 characters of 4 bytes (an emoji) would be 4,000 bytes: the text gets shorter. */
    char *text = malloc(4001);
    for (int i = 0; i < 1000; i++)
        memcpy(text + 4 * i, "\xf0\x9f\x98\x80", 4);
    text[4000] = '\0';
    ns_push_msg_t m = msg(text);
    size_t len = 0;
    char *p = ns_push_payload(&m, &len);
    ck_assert_uint_le(len, NS_PUSH_PAYLOAD_MAX);
    cJSON *o = NULL;
    size_t chars = text_chars(p, &o);
    ck_assert_uint_gt(chars, 500);
    ck_assert_uint_lt(chars, 1000);
    /* Whole characters only: the byte length is 4 per character. */
    ck_assert_uint_eq(strlen(cJSON_GetObjectItem(o, "text")->valuestring), 4 * chars);
    cJSON_Delete(o);
    free(p);
    free(text);

    /* Escapes count too: 1,000 control characters print as \u00XX (6 bytes each). */
    text = malloc(1001);
    memset(text, 0x01, 1000);
    text[1000] = '\0';
    m = msg(text);
    p = ns_push_payload(&m, &len);
    ck_assert_uint_le(len, NS_PUSH_PAYLOAD_MAX);
    cJSON *o2 = cJSON_Parse(p);
    ck_assert_ptr_nonnull(o2);
    cJSON_Delete(o2);
    free(p);
    free(text);
}
END_TEST

START_TEST(test_utf8_prefix)
{
    ck_assert_uint_eq(ns_utf8_prefix("abc", 2), 2);
    ck_assert_uint_eq(ns_utf8_prefix("abc", 10), 3);
    ck_assert_uint_eq(ns_utf8_prefix("\xc3\xa9\xe2\x82\xac!", 2), 5); /* é € */
    ck_assert_uint_eq(ns_utf8_prefix("\xf0\x9f\x98\x80x", 1), 4);
    ck_assert_uint_eq(ns_utf8_prefix("\xe2\x82", 5), 2); /* truncated sequence: one char */
    ck_assert_uint_eq(ns_utf8_prefix("", 5), 0);
}
END_TEST

START_TEST(test_close_payload)
{
    size_t len = 0;
    char *p = ns_push_close_payload("acme", "lobby", 9, &len);
    ck_assert_str_eq(p, "{\"type\":\"close\",\"tenant\":\"acme\",\"room\":\"lobby\",\"seq\":9}");
    ck_assert_uint_eq(len, strlen(p));
    free(p);
}
END_TEST

START_TEST(test_push_judge)
{
    ck_assert_int_eq(ns_push_judge(201, false), NS_PUSH_SENT);
    ck_assert_int_eq(ns_push_judge(200, false), NS_PUSH_SENT);
    ck_assert_int_eq(ns_push_judge(202, false), NS_PUSH_SENT);
    ck_assert_int_eq(ns_push_judge(404, false), NS_PUSH_GONE);
    ck_assert_int_eq(ns_push_judge(410, false), NS_PUSH_GONE);
    ck_assert_int_eq(ns_push_judge(429, false), NS_PUSH_RETRY);
    ck_assert_int_eq(ns_push_judge(500, false), NS_PUSH_RETRY);
    ck_assert_int_eq(ns_push_judge(503, false), NS_PUSH_RETRY);
    ck_assert_int_eq(ns_push_judge(0, false), NS_PUSH_RETRY); /* no answer */
    ck_assert_int_eq(ns_push_judge(400, false), NS_PUSH_FAILED);
    ck_assert_int_eq(ns_push_judge(401, false), NS_PUSH_FAILED);
    ck_assert_int_eq(ns_push_judge(413, false), NS_PUSH_FAILED);
    ck_assert_int_eq(ns_push_judge(204, false), NS_PUSH_FAILED);
    ck_assert_int_eq(ns_push_judge(0, true), NS_PUSH_FAILED); /* refused address */
    ck_assert_str_eq(ns_push_outcome_name(NS_PUSH_GONE), "gone");
}
END_TEST

START_TEST(test_webhook_judge)
{
    ck_assert_int_eq(ns_webhook_judge(200), NS_WEBHOOK_DELIVERED);
    ck_assert_int_eq(ns_webhook_judge(204), NS_WEBHOOK_DELIVERED);
    ck_assert_int_eq(ns_webhook_judge(299), NS_WEBHOOK_DELIVERED);
    ck_assert_int_eq(ns_webhook_judge(410), NS_WEBHOOK_GONE);
    ck_assert_int_eq(ns_webhook_judge(404), NS_WEBHOOK_RETRY);
    ck_assert_int_eq(ns_webhook_judge(301), NS_WEBHOOK_RETRY);
    ck_assert_int_eq(ns_webhook_judge(500), NS_WEBHOOK_RETRY);
    ck_assert_int_eq(ns_webhook_judge(0), NS_WEBHOOK_RETRY);
    int64_t h = 3600 * 1000;
    ck_assert(!ns_webhook_failing_too_long(0, 100 * h));
    ck_assert(!ns_webhook_failing_too_long(h, 24 * h));
    ck_assert(ns_webhook_failing_too_long(h, 25 * h));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("notify_push");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_payload_fields);
    tcase_add_test(tc, test_text_cut_on_a_character_boundary);
    tcase_add_test(tc, test_payload_stays_within_3000_bytes);
    tcase_add_test(tc, test_utf8_prefix);
    tcase_add_test(tc, test_close_payload);
    tcase_add_test(tc, test_push_judge);
    tcase_add_test(tc, test_webhook_judge);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
