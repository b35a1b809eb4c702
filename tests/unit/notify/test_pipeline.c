/* Unit tests of the notify pipeline's pure parts: what counts as a mention, and the webhook
 * body and identity of each kind of chat.messages event (the identity is what the webhook-id
 * is derived from, so a replay must give the same one and different events different ones).
 * The pipeline against Kafka, MongoDB and Redis is covered by tests/integration/198-notify.py. */
#include <check.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/events.h"
#include "common/notify_store.h"
#include "services/notify/pipeline.h"
#include "tests/support/util.h"

START_TEST(test_mentions)
{
    ck_assert(nf_mentions("hi @bob, look", "bob"));
    ck_assert(nf_mentions("@bob", "bob"));
    ck_assert(nf_mentions("ping (@bob)", "bob"));
    ck_assert(!nf_mentions("hi @bobby", "bob"));            /* another user */
    ck_assert(!nf_mentions("mail bob@bob.example", "bob")); /* inside an address */
    ck_assert(!nf_mentions("hi bob", "bob"));
    ck_assert(!nf_mentions("@bo", "bob"));
    ck_assert(nf_mentions("x @a.b-c_d y", "a.b-c_d"));
    ck_assert(!nf_mentions("x @a.b-c_de", "a.b-c_d"));
    ck_assert(!nf_mentions(NULL, "bob"));
    ck_assert(!nf_mentions("@", ""));
}
END_TEST

static chat_event_t msg(void)
{
    return (chat_event_t){.type = CHAT_EV_MSG,
                          .tenant = "acme",
                          .room = "lobby",
                          .user = "alice",
                          .id = "65a1b2c3d4e5f60718293a4b",
                          .text = "hello",
                          .seq = 42,
                          .has_seq = true,
                          .ts = 1700000000000,
                          .has_ts = true};
}

/* The parsed body of ev's webhook; checks its envelope. */
static cJSON *body_of(const chat_event_t *ev, const char *to, unsigned want_type,
                      const char *want_identity)
{
    unsigned type = 0;
    char identity[320];
    char *body = nf_webhook_body(ev, to, &type, identity, sizeof identity);
    ck_assert_ptr_nonnull(body);
    ck_assert_uint_eq(type, want_type);
    ck_assert_str_eq(identity, want_identity);
    cJSON *j = cJSON_Parse(body);
    free(body);
    ck_assert_ptr_nonnull(j);
    ck_assert_str_eq(cJSON_GetObjectItem(j, "type")->valuestring, chat_webhook_event_name(type));
    ck_assert_str_eq(cJSON_GetObjectItem(j, "tenant")->valuestring, "acme");
    ck_assert_int_eq((long long)cJSON_GetObjectItem(j, "ts")->valuedouble, 1700000000000LL);
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(j, "data")));
    return j;
}

START_TEST(test_message_new)
{
    chat_event_t ev = msg();
    cJSON *j = body_of(&ev, NULL, CHAT_WH_MESSAGE_NEW, "acme/message.new/lobby/42");
    cJSON *data = cJSON_GetObjectItem(j, "data");
    ck_assert_str_eq(cJSON_GetObjectItem(data, "text")->valuestring, "hello");
    ck_assert_str_eq(cJSON_GetObjectItem(data, "from")->valuestring, "alice");
    ck_assert_int_eq(cJSON_GetObjectItem(data, "seq")->valueint, 42);
    ck_assert_ptr_null(cJSON_GetObjectItem(data, "type")); /* the envelope has the type */
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_offline_message)
{
    chat_event_t ev = msg();
    cJSON *j =
        body_of(&ev, "bob", CHAT_WH_USER_OFFLINE_MESSAGE, "acme/user.offline_message/lobby/42/bob");
    cJSON *data = cJSON_GetObjectItem(j, "data");
    ck_assert_str_eq(cJSON_GetObjectItem(data, "user")->valuestring, "bob");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(data, "message"), "text")->valuestring,
                     "hello");
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_member_notices)
{
    chat_event_t ev = msg();
    ev.user = "system";
    ev.notice = "member_added";
    ev.target = "carol";
    ev.text = "carol joined";
    cJSON *j = body_of(&ev, NULL, CHAT_WH_ROOM_MEMBER_ADDED, "acme/room.member_added/lobby/42");
    cJSON *data = cJSON_GetObjectItem(j, "data");
    ck_assert_str_eq(cJSON_GetObjectItem(data, "user")->valuestring, "carol");
    ck_assert_str_eq(cJSON_GetObjectItem(data, "room")->valuestring, "lobby");
    cJSON_Delete(j);
    ev.notice = "member_removed";
    j = body_of(&ev, NULL, CHAT_WH_ROOM_MEMBER_REMOVED, "acme/room.member_removed/lobby/42");
    cJSON_Delete(j);
    /* another notice is a new (system) message */
    ev.notice = "room_renamed";
    ev.target = NULL;
    j = body_of(&ev, NULL, CHAT_WH_MESSAGE_NEW, "acme/message.new/lobby/42");
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_updates)
{
    chat_event_t ev = msg();
    ev.type = CHAT_EV_UPDATE;
    ev.op = "edit";
    ev.text = "hello again";
    ev.useq = 7;
    ev.has_useq = true;
    cJSON *j = body_of(&ev, NULL, CHAT_WH_MESSAGE_UPDATED, "acme/message.updated/lobby/u7");
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "data"), "op")->valuestring,
                     "edit");
    cJSON_Delete(j);
    ev.op = "moderate";
    ev.text = NULL;
    ev.removed = true;
    ev.has_removed = true;
    ev.reason = "profanity";
    ev.useq = 8;
    j = body_of(&ev, NULL, CHAT_WH_MESSAGE_REMOVED, "acme/message.removed/lobby/u8");
    cJSON *data = cJSON_GetObjectItem(j, "data");
    ck_assert_str_eq(cJSON_GetObjectItem(data, "reason")->valuestring, "profanity");
    ck_assert_ptr_null(cJSON_GetObjectItem(data, "text"));
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_no_webhook)
{
    chat_event_t ev = msg();
    ev.type = CHAT_EV_READ;
    unsigned type = 99;
    char identity[320];
    ck_assert_ptr_null(nf_webhook_body(&ev, NULL, &type, identity, sizeof identity));
    ck_assert_uint_eq(type, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("notify_pipeline");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_mentions);
    tcase_add_test(tc, test_message_new);
    tcase_add_test(tc, test_offline_message);
    tcase_add_test(tc, test_member_notices);
    tcase_add_test(tc, test_updates);
    tcase_add_test(tc, test_no_webhook);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
