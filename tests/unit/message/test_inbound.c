/* Unit tests of services/message/inbound: which chat.inbound records become sends, rejects
 * (with the code and the origin to answer) or invalid records. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/message/inbound.h"
#include "tests/support/util.h"

#define ORIGIN "\"origin\":{\"gw\":\"0\",\"conn\":\"0.b.1\"}"

static message_inbound_t parse(const char *json, long max_chars)
{
    message_inbound_t in;
    message_inbound_parse(json, strlen(json), max_chars, &in);
    return in;
}

static char *send_with_text(const char *room, const char *user, const char *text)
{
    size_t len = strlen(text) + 256;
    char *json = malloc(len);
    ck_assert_ptr_nonnull(json);
    snprintf(json, len,
             "{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"%s\",\"user\":\"%s\","
             "\"cid\":\"c1\",\"text\":\"%s\",\"ts\":1," ORIGIN "}",
             room, user, text);
    return json;
}

START_TEST(test_valid_send)
{
    char *json = send_with_text("general", "alice", "h\xc3\xa9llo");
    message_inbound_t in = parse(json, 5); /* 5 characters, 6 bytes */
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_SEND);
    ck_assert_str_eq(in.ev.tenant, "acme");
    ck_assert_str_eq(in.ev.cid, "c1");
    ck_assert_str_eq(in.ev.origin_conn, "0.b.1");
    message_inbound_clear(&in);
    free(json);
}
END_TEST

START_TEST(test_text_over_configured_limit)
{
    char *json = send_with_text("general", "alice", "hello!");
    message_inbound_t in = parse(json, 5);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_REJECT);
    ck_assert_str_eq(message_reject_code_name(in.code), "too_large");
    ck_assert_str_eq(in.reason, "text is longer than 5 characters");
    ck_assert_str_eq(in.ev.origin_gw, "0");
    message_inbound_clear(&in);
    free(json);
}
END_TEST

/* The codec refuses a text over the protocol's 4000 characters; the sender still gets
 * too_large through the recovered origin. */
START_TEST(test_text_over_protocol_limit_salvaged)
{
    char *text = malloc(4002);
    memset(text, 'x', 4001);
    text[4001] = '\0';
    char *json = send_with_text("general", "alice", text);
    message_inbound_t in = parse(json, 4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_REJECT);
    ck_assert_str_eq(message_reject_code_name(in.code), "too_large");
    ck_assert_str_eq(in.ev.tenant, "acme");
    ck_assert_str_eq(in.ev.room, "general");
    ck_assert_str_eq(in.ev.cid, "c1");
    ck_assert_str_eq(in.ev.origin_conn, "0.b.1");
    ck_assert_ptr_nonnull(in.salvaged);
    message_inbound_clear(&in);
    free(json);
    free(text);
}
END_TEST

START_TEST(test_bad_send_with_origin_rejected)
{
    /* user missing: the codec refuses it, the origin is usable */
    const char *json = "{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"r\","
                       "\"cid\":\"c1\",\"text\":\"hi\",\"ts\":1," ORIGIN "}";
    message_inbound_t in = parse(json, 4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_REJECT);
    ck_assert_str_eq(message_reject_code_name(in.code), "bad_request");
    ck_assert_msg(strncmp(in.reason, "invalid send: ", 14) == 0, "reason: %s", in.reason);
    message_inbound_clear(&in);
}
END_TEST

START_TEST(test_dm_only_members)
{
    char *json = send_with_text("dm:alice:bob", "carol", "hi");
    message_inbound_t in = parse(json, 4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_REJECT);
    ck_assert_str_eq(message_reject_code_name(in.code), "forbidden");
    message_inbound_clear(&in);
    free(json);
    json = send_with_text("dm:alice:bob", "bob", "hi");
    in = parse(json, 4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_SEND);
    message_inbound_clear(&in);
    free(json);
    json = send_with_text("dm:bob:alice", "bob", "hi"); /* not in sorted order */
    in = parse(json, 4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_REJECT);
    message_inbound_clear(&in);
    free(json);
}
END_TEST

START_TEST(test_read_marks)
{
    message_inbound_t in =
        parse("{\"v\":1,\"type\":\"read\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"u\","
              "\"seq\":3,\"rid\":\"r-1\",\"ts\":1," ORIGIN "}",
              4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_READ);
    ck_assert_str_eq(in.ev.rid, "r-1");
    message_inbound_clear(&in);
    in = parse("{\"v\":1,\"type\":\"read\",\"tenant\":\"acme\",\"room\":\"dm:a:u\","
               "\"user\":\"u\",\"seq\":3,\"ts\":1}",
               4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_READ);
    message_inbound_clear(&in);
    in = parse("{\"v\":1,\"type\":\"read\",\"tenant\":\"acme\",\"room\":\"dm:a:b\","
               "\"user\":\"u\",\"seq\":3,\"ts\":1," ORIGIN "}",
               4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_REJECT);
    ck_assert_int_eq(in.code, MESSAGE_REJECT_FORBIDDEN);
    message_inbound_clear(&in);
}
END_TEST

START_TEST(test_invalid_records)
{
    static const char *const cases[] = {
        "not json",
        "{}",
        "{\"v\":1,\"type\":\"send\"}",
        /* no origin: nobody to answer */
        "{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"u\","
        "\"cid\":\"c1\",\"text\":\"hi\",\"ts\":1}",
        /* bad room: no usable key for an answer */
        "{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"a b\",\"user\":\"u\","
        "\"cid\":\"c1\",\"text\":\"hi\",\"ts\":1," ORIGIN "}",
        /* a read of a dm room by someone else, without an origin to answer */
        "{\"v\":1,\"type\":\"read\",\"tenant\":\"acme\",\"room\":\"dm:a:b\",\"user\":\"u\","
        "\"seq\":3,\"ts\":1}",
        /* not a chat.inbound event */
        "{\"v\":1,\"type\":\"typing\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"u\","
        "\"ts\":1}",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        message_inbound_t in = parse(cases[i], 4000);
        ck_assert_msg(in.kind == MESSAGE_INBOUND_INVALID, "case %zu: kind %d", i, in.kind);
        ck_assert_msg(in.reason[0] != '\0', "case %zu has no reason", i);
        message_inbound_clear(&in);
    }
    message_inbound_t in;
    message_inbound_parse(NULL, 0, 4000, &in);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_INVALID);
    message_inbound_clear(&in);
}
END_TEST

START_TEST(test_updates_classified)
{
    const char *json = "{\"v\":1,\"type\":\"delete\",\"tenant\":\"acme\",\"room\":\"r\","
                       "\"user\":\"u\",\"id\":\"0123456789abcdef01234567\",\"rid\":\"q1\","
                       "\"ts\":1," ORIGIN "}";
    message_inbound_t in = parse(json, 4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_UPDATE);
    ck_assert_str_eq(in.ev.rid, "q1");
    message_inbound_clear(&in);
    /* An edit longer than the configured limit, a react in someone else's dm room. */
    json = "{\"v\":1,\"type\":\"edit\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"u\","
           "\"id\":\"0123456789abcdef01234567\",\"text\":\"eleven char\",\"rid\":\"q2\","
           "\"ts\":1," ORIGIN "}";
    in = parse(json, 10);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_REJECT);
    ck_assert_str_eq(message_reject_code_name(in.code), "too_large");
    ck_assert_str_eq(in.ev.rid, "q2");
    message_inbound_clear(&in);
    json = "{\"v\":1,\"type\":\"react\",\"tenant\":\"acme\",\"room\":\"dm:a:b\","
           "\"user\":\"c\",\"id\":\"0123456789abcdef01234567\",\"emoji\":\"x\",\"on\":true,"
           "\"ts\":1," ORIGIN "}";
    in = parse(json, 4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_REJECT);
    ck_assert_str_eq(message_reject_code_name(in.code), "forbidden");
    message_inbound_clear(&in);
    /* A react the codec refuses (emoji too long) is answered, echoing its rid. */
    json = "{\"v\":1,\"type\":\"react\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"u\","
           "\"id\":\"0123456789abcdef01234567\",\"emoji\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
           "\"on\":true,\"rid\":\"q3\",\"ts\":1," ORIGIN "}";
    in = parse(json, 4000);
    ck_assert_int_eq(in.kind, MESSAGE_INBOUND_REJECT);
    ck_assert_str_eq(message_reject_code_name(in.code), "bad_request");
    ck_assert_str_eq(in.ev.rid, "q3");
    ck_assert_ptr_null(in.ev.cid);
    message_inbound_clear(&in);
    ck_assert_str_eq(message_reject_code_name(MESSAGE_REJECT_NOT_FOUND), "not_found");
}
END_TEST

#define API_ORIGIN "\"origin\":{\"gw\":\"api\",\"conn\":\"req-1\"}"

/* Classifies json; checks the kind and, for a reject, the code and the reason. */
static void expect_kind(const char *json, message_inbound_kind_t kind, const char *code,
                        const char *reason)
{
    message_inbound_t in = parse(json, 4000);
    ck_assert_msg(in.kind == kind, "kind %d for %s (%s)", in.kind, json, in.reason);
    if (code != NULL)
        ck_assert_str_eq(message_reject_code_name(in.code), code);
    if (reason != NULL)
        ck_assert_str_eq(in.reason, reason);
    message_inbound_clear(&in);
}

/* "system" only through the api (forbidden otherwise), also in dm rooms; notices only from
 * "system"; an empty text only on a notice (the codec's rule, answered bad_request). */
START_TEST(test_system_and_notices)
{
    expect_kind("{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"system\","
                "\"cid\":\"c1\",\"text\":\"hi\",\"ts\":1," ORIGIN "}",
                MESSAGE_INBOUND_REJECT, "forbidden", "reserved user id");
    expect_kind("{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"system\","
                "\"cid\":\"c1\",\"text\":\"hi\",\"ts\":1," API_ORIGIN "}",
                MESSAGE_INBOUND_SEND, NULL, NULL);
    expect_kind("{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"dm:a:b\","
                "\"user\":\"system\",\"cid\":\"c1\",\"text\":\"hi\",\"ts\":1," API_ORIGIN "}",
                MESSAGE_INBOUND_SEND, NULL, NULL);
    expect_kind("{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"system\","
                "\"cid\":\"c1\",\"text\":\"\",\"notice\":\"member_added\",\"target\":\"bob\","
                "\"ts\":1," API_ORIGIN "}",
                MESSAGE_INBOUND_SEND, NULL, NULL);
    expect_kind("{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"bot\","
                "\"cid\":\"c1\",\"text\":\"\",\"notice\":\"member_added\",\"target\":\"bob\","
                "\"ts\":1," API_ORIGIN "}",
                MESSAGE_INBOUND_REJECT, "bad_request", "only the system sends notices");
    expect_kind("{\"v\":1,\"type\":\"send\",\"tenant\":\"acme\",\"room\":\"r\",\"user\":\"bot\","
                "\"cid\":\"c1\",\"text\":\"\",\"ts\":1," API_ORIGIN "}",
                MESSAGE_INBOUND_REJECT, "bad_request", NULL);
    expect_kind("{\"v\":1,\"type\":\"delete\",\"tenant\":\"acme\",\"room\":\"r\","
                "\"user\":\"system\",\"id\":\"0123456789abcdef01234567\",\"ts\":1," ORIGIN "}",
                MESSAGE_INBOUND_REJECT, "forbidden", "reserved user id");
    expect_kind("{\"v\":1,\"type\":\"delete\",\"tenant\":\"acme\",\"room\":\"dm:a:b\","
                "\"user\":\"system\",\"id\":\"0123456789abcdef01234567\",\"reason\":\"spam\","
                "\"ts\":1," API_ORIGIN "}",
                MESSAGE_INBOUND_UPDATE, NULL, NULL);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("message_inbound");
    TCase *tc = tcase_create("inbound");
    tcase_add_test(tc, test_valid_send);
    tcase_add_test(tc, test_read_marks);
    tcase_add_test(tc, test_text_over_configured_limit);
    tcase_add_test(tc, test_text_over_protocol_limit_salvaged);
    tcase_add_test(tc, test_bad_send_with_origin_rejected);
    tcase_add_test(tc, test_dm_only_members);
    tcase_add_test(tc, test_invalid_records);
    tcase_add_test(tc, test_updates_classified);
    tcase_add_test(tc, test_system_and_notices);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
