/* Unit tests of tools/client/client_frames: the frames a client builds (fields, optional
 * parts left out, escaping) and the readable lines chat-cli prints for server frames. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "tools/client/client_frames.h"
#include "tests/support/util.h"

/* Compares a built frame with the expected JSON text and frees it. */
static void expect_frame(char *got, const char *want)
{
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_builders)
{
    expect_frame(chat_client_frame_auth("a.b.c"), "{\"type\":\"auth\",\"token\":\"a.b.c\"}");
    expect_frame(chat_client_frame_join("general", -1, NULL),
                 "{\"type\":\"join\",\"room\":\"general\"}");
    expect_frame(chat_client_frame_join("general", 0, "j1"),
                 "{\"type\":\"join\",\"room\":\"general\",\"since\":0,\"rid\":\"j1\"}");
    expect_frame(chat_client_frame_join("r", 123456789012, NULL),
                 "{\"type\":\"join\",\"room\":\"r\",\"since\":123456789012}");
    expect_frame(chat_client_frame_leave("r", NULL), "{\"type\":\"leave\",\"room\":\"r\"}");
    expect_frame(chat_client_frame_send("r", "c-1", "say \"hi\"\n\\"),
                 "{\"type\":\"send\",\"room\":\"r\",\"cid\":\"c-1\",\"text\":\"say "
                 "\\\"hi\\\"\\n\\\\\"}");
    expect_frame(chat_client_frame_history("r", 0, 0, "h1"),
                 "{\"type\":\"history\",\"room\":\"r\",\"rid\":\"h1\"}");
    expect_frame(chat_client_frame_history("r", 51, 10, "h2"),
                 "{\"type\":\"history\",\"room\":\"r\",\"before\":51,\"limit\":10,\"rid\":\"h2\"}");
    expect_frame(chat_client_frame_ping(NULL), "{\"type\":\"ping\"}");
    expect_frame(
        chat_client_frame_edit("r", "i1", "new", "e1"),
        "{\"type\":\"edit\",\"room\":\"r\",\"id\":\"i1\",\"text\":\"new\",\"rid\":\"e1\"}");
    expect_frame(chat_client_frame_delete("r", "i1", NULL),
                 "{\"type\":\"delete\",\"room\":\"r\",\"id\":\"i1\"}");
    expect_frame(chat_client_frame_react("r", "i1", "x", false, "x1"),
                 "{\"type\":\"react\",\"room\":\"r\",\"id\":\"i1\",\"emoji\":\"x\",\"on\":false,"
                 "\"rid\":\"x1\"}");
    expect_frame(chat_client_frame_typing("r", NULL), "{\"type\":\"typing\",\"room\":\"r\"}");
    expect_frame(chat_client_frame_read("r", 7, NULL),
                 "{\"type\":\"read\",\"room\":\"r\",\"seq\":7}");
    expect_frame(chat_client_frame_rooms(0, NULL, "l1"), "{\"type\":\"rooms\",\"rid\":\"l1\"}");
    expect_frame(chat_client_frame_rooms(20, "5.r", "l2"),
                 "{\"type\":\"rooms\",\"limit\":20,\"cursor\":\"5.r\",\"rid\":\"l2\"}");
    expect_frame(chat_client_frame_push_subscribe("https://p.example/x", "BA", "QQ", "p1"),
                 "{\"type\":\"push_subscribe\",\"endpoint\":\"https://p.example/x\","
                 "\"keys\":{\"p256dh\":\"BA\",\"auth\":\"QQ\"},\"rid\":\"p1\"}");
    expect_frame(chat_client_frame_push_unsubscribe("https://p.example/x", "p2"),
                 "{\"type\":\"push_unsubscribe\",\"endpoint\":\"https://p.example/x\","
                 "\"rid\":\"p2\"}");
    expect_frame(chat_client_frame_push_prefs(NULL, "none", "p3"),
                 "{\"type\":\"push_prefs\",\"mode\":\"none\",\"rid\":\"p3\"}");
    expect_frame(chat_client_frame_push_prefs("r", "all", "p4"),
                 "{\"type\":\"push_prefs\",\"room\":\"r\",\"mode\":\"all\",\"rid\":\"p4\"}");
    expect_frame(chat_client_frame_refresh("h.p.s", "t1"),
                 "{\"type\":\"refresh\",\"token\":\"h.p.s\",\"rid\":\"t1\"}");
}
END_TEST

/* Renders json and compares with want. */
static void expect_render(const char *json, const char *want)
{
    char *got = chat_client_render(json, strlen(json));
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_render_message_path)
{
    expect_render(
        "{\"type\":\"msg\",\"room\":\"general\",\"seq\":7,\"id\":\"x\",\"from\":\"alice\","
        "\"text\":\"hello\\nworld\\t!\",\"ts\":1}",
        "[general #7] alice: hello\\nworld\\t! (id x)");
    expect_render("{\"type\":\"msg\",\"room\":\"r\",\"seq\":2,\"from\":\"bob\",\"text\":\"x\","
                  "\"edited\":true}",
                  "[r #2] bob: x (edited)");
    expect_render(
        "{\"type\":\"ack\",\"cid\":\"42-1\",\"room\":\"r\",\"seq\":9,\"id\":\"x\",\"ts\":1}",
        "ack 42-1 -> #9 (id x)");
    expect_render("{\"type\":\"error\",\"code\":\"too_large\",\"message\":\"text over 4000\","
                  "\"cid\":\"c9\"}",
                  "error too_large: text over 4000 (cid c9)");
    expect_render("{\"type\":\"error\",\"code\":\"bad_request\",\"message\":\"m\",\"rid\":\"h1\"}",
                  "error bad_request: m (rid h1)");
    expect_render("{\"type\":\"ok\",\"rid\":\"push-3\"}", "ok (rid push-3)");
}
END_TEST

START_TEST(test_render_session_frames)
{
    expect_render(
        "{\"type\":\"welcome\",\"user\":\"alice\",\"tenant\":\"acme\",\"session\":\"0.ab.1\"}",
        "welcome alice of tenant acme (session 0.ab.1)");
    expect_render(
        "{\"type\":\"joined\",\"room\":\"r\",\"seq\":5,\"unread\":2,\"online\":[\"a\",\"b\"]}",
        "joined r: latest #5, 2 unread, online: a, b");
    expect_render("{\"type\":\"joined\",\"room\":\"r\",\"seq\":0,\"unread\":0,\"online\":[]}",
                  "joined r: latest #0, 0 unread, online: -");
    expect_render("{\"type\":\"left\",\"room\":\"r\"}", "left r");
    expect_render("{\"type\":\"pong\"}", "pong");
    expect_render("{\"type\":\"presence\",\"room\":\"r\",\"user\":\"bob\",\"online\":false}",
                  "* bob is offline in r");
    expect_render("{\"type\":\"typing\",\"room\":\"r\",\"user\":\"bob\"}", "* bob is typing in r");
    expect_render("{\"type\":\"typing\",\"room\":\"r\",\"user\":\"bob\",\"name\":\"Bob B.\"}",
                  "* bob (Bob B.) is typing in r");
    expect_render("{\"type\":\"read\",\"room\":\"r\",\"user\":\"bob\",\"seq\":3}",
                  "* bob read r up to #3");
    expect_render(
        "{\"type\":\"update\",\"room\":\"r\",\"id\":\"i1\",\"op\":\"edit\",\"text\":\"t\"}",
        "[r] i1 edit: t");
}
END_TEST

START_TEST(test_render_updates)
{
    expect_render(
        "{\"type\":\"update\",\"room\":\"r\",\"id\":\"i1\",\"seq\":4,\"useq\":9,"
        "\"op\":\"react\",\"text\":\"hi\",\"edited\":5,\"reactions\":{\"x\":[\"a\",\"b\"]},"
        "\"user\":\"b\",\"ts\":1}",
        "[r #4] i1 react by b: hi (edited) [x a,b] (useq 9)");
    expect_render("{\"type\":\"update\",\"room\":\"r\",\"id\":\"i1\",\"seq\":4,\"useq\":10,"
                  "\"op\":\"delete\",\"deleted\":true}",
                  "[r #4] i1 delete: (deleted) (useq 10)");
    expect_render("{\"type\":\"msg\",\"room\":\"r\",\"seq\":4,\"id\":\"i1\",\"from\":\"a\","
                  "\"ts\":1,\"deleted\":true}",
                  "[r #4] a: (deleted) (id i1)");
    expect_render("{\"type\":\"ack\",\"rid\":\"edit-1\",\"room\":\"r\",\"id\":\"i1\",\"seq\":4,"
                  "\"op\":\"edit\",\"useq\":11}",
                  "ack edit-1: edit #4 (useq 11)");
    expect_render("{\"type\":\"joined\",\"room\":\"r\",\"seq\":5,\"useq\":3,\"stale\":true,"
                  "\"unread\":0,\"online\":[]}",
                  "joined r: latest #5 (useq 3, stale), 0 unread, online: -");
}
END_TEST

/* System notices read as sentences, left says why the server ended it, a delete's reason. */
START_TEST(test_render_notices)
{
    expect_render("{\"type\":\"msg\",\"room\":\"team\",\"seq\":5,\"id\":\"i5\","
                  "\"from\":\"system\",\"text\":\"\",\"notice\":\"member_added\","
                  "\"target\":\"bob\",\"ts\":1}",
                  "[team #5] * bob was added to team (id i5)");
    expect_render("{\"type\":\"msg\",\"room\":\"team\",\"seq\":6,\"from\":\"system\","
                  "\"text\":\"\",\"notice\":\"member_removed\",\"target\":\"carol\",\"ts\":1}",
                  "[team #6] * carol was removed");
    expect_render("{\"type\":\"msg\",\"room\":\"team\",\"seq\":7,\"from\":\"system\","
                  "\"text\":\"Rockets\",\"notice\":\"room_renamed\",\"ts\":1}",
                  "[team #7] * room renamed to Rockets");
    expect_render("{\"type\":\"msg\",\"room\":\"team\",\"seq\":8,\"from\":\"system\","
                  "\"text\":\"\",\"notice\":\"room_deleted\",\"ts\":1}",
                  "[team #8] * room deleted");
    expect_render("{\"type\":\"msg\",\"room\":\"team\",\"seq\":9,\"from\":\"system\","
                  "\"text\":\"Maintenance\",\"ts\":1}",
                  "[team #9] system: Maintenance");
    expect_render("{\"type\":\"left\",\"room\":\"team\",\"reason\":\"removed\"}",
                  "left team (you were removed)");
    expect_render("{\"type\":\"left\",\"room\":\"team\",\"reason\":\"deleted\"}",
                  "left team (the room was deleted)");
    expect_render("{\"type\":\"update\",\"room\":\"r\",\"id\":\"i1\",\"seq\":4,\"useq\":10,"
                  "\"op\":\"delete\",\"deleted\":true,\"reason\":\"spam\",\"user\":\"system\"}",
                  "[r #4] i1 delete by system: (deleted: spam) (useq 10)");
}
END_TEST

START_TEST(test_render_history_lines)
{
    expect_render("{\"type\":\"history\",\"rid\":\"h1\",\"room\":\"r\",\"more\":true,\"msgs\":["
                  "{\"type\":\"msg\",\"room\":\"r\",\"seq\":1,\"from\":\"a\",\"text\":\"one\"},"
                  "{\"type\":\"msg\",\"room\":\"r\",\"seq\":2,\"from\":\"b\",\"text\":\"two\"}]}",
                  "history r: 2 messages, more before (rid h1)\n[r #1] a: one\n[r #2] b: two");
    expect_render("{\"type\":\"history\",\"rid\":\"h2\",\"room\":\"r\",\"more\":false,\"msgs\":[]}",
                  "history r: 0 messages (rid h2)");
}
END_TEST

START_TEST(test_render_rooms)
{
    expect_render(
        "{\"type\":\"rooms\",\"rid\":\"l1\",\"rooms\":[{\"room\":\"r\",\"kind\":\"public\","
        "\"seq\":5,\"useq\":0,\"read\":3,\"unread\":2,\"last\":{\"type\":\"msg\",\"room\":"
        "\"r\",\"seq\":5,\"from\":\"bob\",\"text\":\"hi\"}},{\"room\":\"dm:a:b\",\"kind\":"
        "\"dm\",\"seq\":0,\"useq\":0,\"read\":0,\"unread\":0}],\"next\":\"1.dm:a:b\"}",
        "rooms: 2 (rid l1)\n  r (public) #5 [2 unread] bob: hi\n  dm:a:b (dm) #0\n"
        "  more: /rooms 1.dm:a:b");
    expect_render("{\"type\":\"read\",\"room\":\"r\",\"user\":\"bob\",\"seq\":4}",
                  "* bob read r up to #4");
}
END_TEST

START_TEST(test_render_unknown_and_garbage)
{
    expect_render("{\"type\":\"surprise\",\"x\":1}", "{\"type\":\"surprise\",\"x\":1}");
    expect_render("not json\nat all", "not json\\nat all");
    expect_render("[1,2]", "[1,2]");
    expect_render("{\"type\":3}", "{\"type\":3}");
    expect_render("", "");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("client_frames");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_builders);
    tcase_add_test(tc, test_render_message_path);
    tcase_add_test(tc, test_render_session_frames);
    tcase_add_test(tc, test_render_notices);
    tcase_add_test(tc, test_render_updates);
    tcase_add_test(tc, test_render_history_lines);
    tcase_add_test(tc, test_render_rooms);
    tcase_add_test(tc, test_render_unknown_and_garbage);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
