/* Unit tests of what the api produces (services/api/inbound.c) without Kafka: request tokens
 * (unique, at most 64 printable characters, the instance id made safe) and the events built
 * by api_event_encode, which the shared codec must read as a send or edit of the api origin. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/contract.h"
#include "common/events.h"
#include "common/names.h"
#include "services/api/api.h"
#include "tests/support/util.h"

START_TEST(test_origin_conn)
{
    api_ctx_t ctx = {.instance = "api 0/\xc3\xa9-with-a-rather-long-instance-name-beyond-limits"};
    char a[CHAT_ORIGIN_CONN_MAX], b[CHAT_ORIGIN_CONN_MAX];
    api_origin_conn_new(&ctx, a, sizeof a);
    api_origin_conn_new(&ctx, b, sizeof b);
    ck_assert_str_ne(a, b);
    ck_assert(chat_name_cid_valid(a)); /* usable as a notice's cid and an edit's rid */
    ck_assert(chat_name_endpoint_valid(a));
    ck_assert_ptr_null(strchr(a, ' '));
    ck_assert_ptr_null(strchr(a, '/'));
    char key[CHAT_API_REPLY_KEY_MAX];
    ck_assert_int_gt(chat_api_reply_key(a, key, sizeof key), 0);
    /* the same prefix, a counter after it */
    const char *dash_a = strrchr(a, '-'), *dash_b = strrchr(b, '-');
    ck_assert_int_eq(dash_a - a, dash_b - b);
    ck_assert_int_eq(strncmp(a, b, (size_t)(dash_a - a)), 0);
    ck_assert_int_eq(atoll(dash_b + 1), atoll(dash_a + 1) + 1);
}
END_TEST

START_TEST(test_send_event_decodes)
{
    chat_event_t ev = {.type = CHAT_EV_SEND,
                       .tenant = "acme",
                       .room = "lobby",
                       .user = CHAT_SYSTEM_USER,
                       .cid = "c-1",
                       .text = "hello",
                       .origin_conn = "api-0.abc-1"};
    char *text = NULL;
    ck_assert_int_eq(api_event_encode(&ev, &text, NULL), CHAT_OK);
    chat_event_t out;
    char why[128] = "";
    ck_assert_msg(chat_event_decode(text, strlen(text), &out, why, sizeof why) == CHAT_OK, "%s",
                  why);
    ck_assert_int_eq(out.type, CHAT_EV_SEND);
    ck_assert_str_eq(out.tenant, "acme");
    ck_assert_str_eq(out.room, "lobby");
    ck_assert_str_eq(out.user, "system");
    ck_assert_str_eq(out.origin_gw, CHAT_API_ORIGIN);
    ck_assert_str_eq(out.origin_conn, "api-0.abc-1");
    ck_assert(chat_origin_is_api(out.origin_gw));
    ck_assert(out.has_ts && out.ts > 0);
    chat_event_clear(&out);
    free(text);
}
END_TEST

START_TEST(test_edit_event_decodes)
{
    chat_event_t ev = {.type = CHAT_EV_EDIT,
                       .tenant = "acme",
                       .room = "lobby",
                       .user = CHAT_SYSTEM_USER,
                       .id = "0123456789abcdef01234567",
                       .rid = "api-0.abc-2",
                       .text = "changed",
                       .origin_conn = "api-0.abc-2"};
    char *text = NULL;
    ck_assert_int_eq(api_event_encode(&ev, &text, NULL), CHAT_OK);
    chat_event_t out;
    char why[128] = "";
    ck_assert_msg(chat_event_decode(text, strlen(text), &out, why, sizeof why) == CHAT_OK, "%s",
                  why);
    ck_assert_int_eq(out.type, CHAT_EV_EDIT);
    ck_assert_str_eq(out.rid, "api-0.abc-2");
    ck_assert_str_eq(out.id, "0123456789abcdef01234567");
    chat_event_clear(&out);
    free(text);
}
END_TEST

static Suite *inbound_suite(void)
{
    Suite *s = suite_create("api_inbound");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_origin_conn);
    tcase_add_test(tc, test_send_event_decodes);
    tcase_add_test(tc, test_edit_event_decodes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return chat_test_suite_run(inbound_suite(), false);
}
