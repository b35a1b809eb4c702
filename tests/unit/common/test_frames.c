/* Unit tests of common/frames.c: the msg, ack and error client frames that more than one
 * service builds, byte for byte, and the events they refuse to build from. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/frames.h"
#include "common/log.h"
#include "common/names.h"
#include "tests/support/util.h"

#define ID "65f1c0ffee0123456789abcd"
#define TS INT64_C(1732406400123)
#define THUMBS "\xf0\x9f\x91\x8d"

/* ---- the msg frame ---- */

static char *frame_text(const chat_event_t *msg)
{
    cJSON *frame = chat_frame_msg_new(msg);
    ck_assert_ptr_nonnull(frame);
    char *text = cJSON_PrintUnformatted(frame);
    cJSON_Delete(frame);
    return text;
}

START_TEST(test_frame_msg)
{
    cJSON *reactions = cJSON_Parse("{\"" THUMBS "\":[\"alice\",\"bob\"],\"\xf0\x9f\x8e\x89\":[]}");
    ck_assert_ptr_nonnull(reactions);
    chat_event_t full = {.type = CHAT_EV_MSG,
                         .tenant = "acme",
                         .room = "general",
                         .seq = 42,
                         .has_seq = true,
                         .id = ID,
                         .user = "alice",
                         .name = "Alice",
                         .text = "hello",
                         .ts = TS,
                         .has_ts = true,
                         .cid = "c-0001",
                         .edited = TS + 1,
                         .has_edited = true,
                         .reactions = reactions,
                         .origin_gw = "gw-0",
                         .origin_conn = "c-17"};
    cJSON *frame = chat_frame_msg_new(&full);
    cJSON_Delete(reactions); /* the frame owns its copy of the reactions */
    char *text = cJSON_PrintUnformatted(frame);
    ck_assert_str_eq(text, "{\"type\":\"msg\",\"room\":\"general\",\"seq\":42,\"id\":\"" ID "\","
                           "\"from\":\"alice\",\"name\":\"Alice\",\"text\":\"hello\","
                           "\"ts\":1732406400123,\"cid\":\"c-0001\",\"edited\":1732406400124,"
                           "\"reactions\":{\"" THUMBS "\":[\"alice\",\"bob\"],"
                           "\"\xf0\x9f\x8e\x89\":[]}}");
    free(text);
    cJSON_Delete(frame);

    chat_event_t bare = {.type = CHAT_EV_MSG,
                         .room = "r",
                         .seq = 1,
                         .has_seq = true,
                         .id = ID,
                         .user = "u",
                         .text = "hi",
                         .ts = 0,
                         .has_ts = true};
    text = frame_text(&bare);
    ck_assert_str_eq(text, "{\"type\":\"msg\",\"room\":\"r\",\"seq\":1,\"id\":\"" ID
                           "\",\"from\":\"u\",\"text\":\"hi\",\"ts\":0}");
    free(text);
}
END_TEST

START_TEST(test_frame_msg_incomplete)
{
    chat_event_t bare = {.type = CHAT_EV_MSG,
                         .room = "r",
                         .seq = 1,
                         .has_seq = true,
                         .id = ID,
                         .user = "u",
                         .text = "hi",
                         .ts = 5,
                         .has_ts = true};
    ck_assert_ptr_null(chat_frame_msg_new(NULL));
    chat_event_t e = bare;
    e.type = CHAT_EV_SEND;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.text = NULL;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.has_seq = false;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.has_ts = false;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.user = NULL;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.room = NULL;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
    e = bare, e.id = NULL;
    ck_assert_ptr_null(chat_frame_msg_new(&e));
}
END_TEST

/* Prints frame compactly, deletes it and compares the bytes. */
static void expect_frame(cJSON *frame, const char *want);

/* A deleted message has no text (and must not be given one); a removed one shows why. */
START_TEST(test_frame_msg_gone)
{
    chat_event_t gone = {.type = CHAT_EV_MSG,
                         .room = "r",
                         .seq = 3,
                         .has_seq = true,
                         .id = ID,
                         .user = "u",
                         .ts = 5,
                         .has_ts = true,
                         .deleted = true,
                         .has_deleted = true};
    expect_frame(chat_frame_msg_new(&gone),
                 "{\"type\":\"msg\",\"room\":\"r\",\"seq\":3,\"id\":\"" ID
                 "\",\"from\":\"u\",\"ts\":5,\"deleted\":true}");
    chat_event_t removed = gone;
    removed.deleted = removed.has_deleted = false;
    removed.removed = removed.has_removed = true;
    removed.reason = "spam";
    expect_frame(chat_frame_msg_new(&removed),
                 "{\"type\":\"msg\",\"room\":\"r\",\"seq\":3,\"id\":\"" ID
                 "\",\"from\":\"u\",\"ts\":5,\"removed\":true,\"reason\":\"spam\"}");
}
END_TEST

/* The update frame carries the message's whole state after the change; the ack of an update
 * echoes the rid with op and useq, from the update event or from an ack event with an op. */
START_TEST(test_frame_update_and_its_ack)
{
    cJSON *reactions = cJSON_Parse("{\"" THUMBS "\":[\"bob\"]}");
    chat_event_t ev = {.type = CHAT_EV_UPDATE,
                       .tenant = "acme",
                       .room = "general",
                       .id = ID,
                       .seq = 42,
                       .has_seq = true,
                       .useq = 7,
                       .has_useq = true,
                       .op = "edit",
                       .text = "fixed",
                       .edited = TS,
                       .has_edited = true,
                       .reactions = reactions,
                       .user = "alice",
                       .rid = "e-1",
                       .ts = TS,
                       .has_ts = true,
                       .origin_gw = "0",
                       .origin_conn = "0.x.1"};
    expect_frame(chat_frame_update_new(&ev),
                 "{\"type\":\"update\",\"room\":\"general\",\"id\":\"" ID "\",\"seq\":42,"
                 "\"useq\":7,\"op\":\"edit\",\"text\":\"fixed\",\"edited\":1732406400123,"
                 "\"reactions\":{\"" THUMBS "\":[\"bob\"]},\"user\":\"alice\","
                 "\"ts\":1732406400123}");
    const char *ack = "{\"type\":\"ack\",\"rid\":\"e-1\",\"room\":\"general\",\"id\":\"" ID
                      "\",\"seq\":42,\"op\":\"edit\",\"useq\":7}";
    expect_frame(chat_frame_ack_new(&ev), ack);
    chat_event_t again = {.type = CHAT_EV_ACK,
                          .room = "general",
                          .id = ID,
                          .seq = 42,
                          .has_seq = true,
                          .useq = 7,
                          .has_useq = true,
                          .op = "edit",
                          .rid = "e-1"};
    expect_frame(chat_frame_ack_new(&again), ack);
    again.has_useq = false;
    again.rid = NULL;
    again.op = "react";
    expect_frame(chat_frame_ack_new(&again), "{\"type\":\"ack\",\"room\":\"general\",\"id\":\"" ID
                                             "\",\"seq\":42,\"op\":\"react\"}");
    chat_event_t del = ev;
    del.op = "delete";
    del.text = NULL;
    del.has_edited = false;
    del.reactions = NULL;
    del.deleted = del.has_deleted = true;
    del.has_ts = false;
    del.user = NULL;
    expect_frame(chat_frame_update_new(&del),
                 "{\"type\":\"update\",\"room\":\"general\",\"id\":\"" ID "\",\"seq\":42,"
                 "\"useq\":7,\"op\":\"delete\",\"deleted\":true}");
    chat_event_t e = ev;
    e.has_useq = false;
    ck_assert_ptr_null(chat_frame_update_new(&e));
    e = ev, e.type = CHAT_EV_MSG;
    ck_assert_ptr_null(chat_frame_update_new(&e));
    e = ev, e.op = NULL;
    ck_assert_ptr_null(chat_frame_update_new(&e));
    ck_assert_ptr_null(chat_frame_update_new(NULL));
    cJSON_Delete(reactions);
}
END_TEST

/* Prints frame compactly, deletes it and compares the bytes. */
static void expect_frame(cJSON *frame, const char *want)
{
    ck_assert_ptr_nonnull(frame);
    char *text = cJSON_PrintUnformatted(frame);
    ck_assert_str_eq(text, want);
    free(text);
    cJSON_Delete(frame);
}

/* The ack of a send, from the msg event or the ack of a resent cid: the same bytes, the
 * schema's member order, integers exact even at 2^53 - 1. */
START_TEST(test_frame_ack)
{
    chat_event_t ev = {.type = CHAT_EV_MSG,
                       .tenant = "acme",
                       .room = "general",
                       .user = "alice",
                       .text = "hi",
                       .cid = "c-1",
                       .id = ID,
                       .seq = CHAT_JSON_INT_MAX,
                       .has_seq = true,
                       .ts = TS,
                       .has_ts = true};
    const char *want = "{\"type\":\"ack\",\"cid\":\"c-1\",\"room\":\"general\","
                       "\"seq\":9007199254740991,\"id\":\"" ID "\",\"ts\":1732406400123}";
    expect_frame(chat_frame_ack_new(&ev), want);
    ev.type = CHAT_EV_ACK;
    expect_frame(chat_frame_ack_new(&ev), want);
    chat_event_t e = ev;
    e.type = CHAT_EV_SEND;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.cid = NULL;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.has_seq = false;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.has_ts = false;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.id = NULL;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    e = ev, e.room = NULL;
    ck_assert_ptr_null(chat_frame_ack_new(&e));
    ck_assert_ptr_null(chat_frame_ack_new(NULL));
}
END_TEST

START_TEST(test_frame_error)
{
    expect_frame(chat_frame_error_new("forbidden", "not a member", "r-1", "c-1"),
                 "{\"type\":\"error\",\"code\":\"forbidden\",\"message\":\"not a member\","
                 "\"rid\":\"r-1\",\"cid\":\"c-1\"}");
    expect_frame(chat_frame_error_new("internal", "retry", NULL, NULL),
                 "{\"type\":\"error\",\"code\":\"internal\",\"message\":\"retry\"}");
    expect_frame(
        chat_frame_error_new("too_large", "long", NULL, "c-2"),
        "{\"type\":\"error\",\"code\":\"too_large\",\"message\":\"long\",\"cid\":\"c-2\"}");
    ck_assert_ptr_null(chat_frame_error_new(NULL, "m", NULL, NULL));
    ck_assert_ptr_null(chat_frame_error_new("internal", NULL, NULL, NULL));
    ck_assert_ptr_null(chat_frame_error_new("", "m", NULL, NULL));
    ck_assert_ptr_null(chat_frame_error_new("internal", "", NULL, NULL));
}
END_TEST

static Suite *frames_suite(void)
{
    Suite *s = suite_create("frames");
    TCase *frames = tcase_create("frames");
    tcase_add_test(frames, test_frame_msg);
    tcase_add_test(frames, test_frame_msg_incomplete);
    tcase_add_test(frames, test_frame_ack);
    tcase_add_test(frames, test_frame_msg_gone);
    tcase_add_test(frames, test_frame_update_and_its_ack);
    tcase_add_test(frames, test_frame_error);
    suite_add_tcase(s, frames);
    return s;
}

int main(void)
{
    chat_log_set_level(CHAT_LOG_OFF); /* refusals are logged; expected here */
    return chat_test_suite_run(frames_suite(), false);
}
