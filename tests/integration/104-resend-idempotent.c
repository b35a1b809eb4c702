/* End to end: a resent cid is answered with the original ack and stores nothing, whether
 * it is resent on the same connection or after a reconnect through the other gateway; no
 * seq is used up by resends, and cids are per sender. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tools/client/client_frames.h"
#include "tests/support/util.h"

#define QUIET_MS 1000

/* Checks that ack (an ack frame, or NULL) repeats want: the same seq, id and ts, for cid in
 * room. Frees ack. */
static void check_same_ack(cJSON *ack, const char *room, const char *cid, const cJSON *want,
                           const char *what)
{
    ck_assert_msg(ack != NULL && chat_json_is(ack, "ack"), "%s: no ack", what);
    ck_assert_msg(chat_json_int(ack, "seq") == chat_json_int(want, "seq"),
                  "%s: seq %lld instead of the original %lld", what,
                  (long long)chat_json_int(ack, "seq"), (long long)chat_json_int(want, "seq"));
    ck_assert_str_eq(chat_json_str(ack, "id"), chat_json_str(want, "id"));
    ck_assert_msg(chat_json_int(ack, "ts") == chat_json_int(want, "ts"),
                  "%s: ts %lld instead of the original %lld", what,
                  (long long)chat_json_int(ack, "ts"), (long long)chat_json_int(want, "ts"));
    ck_assert_str_eq(chat_json_str(ack, "cid"), cid);
    ck_assert_str_eq(chat_json_str(ack, "room"), room);
    cJSON_Delete(ack);
}

/* Sends (room, cid, text) and expects an ack equal to want (seq, id and ts). */
static void expect_same_ack(chat_tc_t *c, const char *room, const char *cid, const char *text,
                            const cJSON *want, const char *what)
{
    check_same_ack(chat_tc_send_wait(c, room, cid, text, CHAT_TC_TIMEOUT_MS), room, cid, want,
                   what);
}

/* Expects observer to get exactly the msgs with the texts given, in order, then nothing. */
static void expect_msgs(chat_tc_t *observer, const char *room, const char *const *texts, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *m = chat_tc_wait_for(observer, "msg", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(m != NULL, "msg \"%s\" missing", texts[i]);
        ck_assert_int_eq(chat_json_int(m, "seq"), (int64_t)i + 1);
        ck_assert_str_eq(chat_json_str(m, "text"), texts[i]);
        cJSON_Delete(m);
    }
    cJSON *extra = chat_tc_wait_for(observer, "msg", "room", room, QUIET_MS);
    ck_assert_msg(extra == NULL, "a resend was delivered as a new msg: \"%s\" seq %lld",
                  chat_json_str(extra, "text"), (long long)chat_json_int(extra, "seq"));
}

START_TEST(test_resend_gets_original_ack)
{
    char room[96], alice[64], bob[64];
    chat_test_unique(room, sizeof room, "resend");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(bob, sizeof bob, "bob");
    chat_tc_t *observer = chat_tc_connect_demo(1, bob);
    cJSON_Delete(chat_tc_join(observer, room, -1));
    chat_tc_t *a = chat_tc_connect_demo(0, alice);

    cJSON *first = chat_tc_send_wait(a, room, "x-1", "first", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(first != NULL && chat_json_is(first, "ack"), "first send not acked");
    ck_assert_int_eq(chat_json_int(first, "seq"), 1);
    ck_assert_int_gt(chat_json_int(first, "ts"), 0); /* so that comparing ts means something */
    /* Same connection: same text, then another text under the same cid. */
    expect_same_ack(a, room, "x-1", "first", first, "resend on the same connection");
    expect_same_ack(a, room, "x-1", "changed my mind", first, "resend with another text");
    /* Two resends in a row, without waiting in between. */
    chat_tc_send_frame(a, chat_client_frame_send(room, "x-1", "first"));
    expect_same_ack(a, room, "x-1", "first", first, "resend while a resend is in flight");
    check_same_ack(chat_tc_expect_ack(a, "x-1", CHAT_TC_TIMEOUT_MS), room, "x-1", first,
                   "the other of two resends in a row");
    /* A new cid takes the next seq: resends used none. */
    ck_assert_int_eq(chat_tc_send(a, room, "x-2", "second"), 2);

    /* The connection drops; alice resends from the other gateway. */
    chat_tc_free(a);
    a = chat_tc_connect_demo(1, alice);
    expect_same_ack(a, room, "x-1", "first", first, "resend after reconnecting elsewhere");
    ck_assert_int_eq(chat_tc_send(a, room, "x-2", "second"), 2);
    /* Cids are per sender: bob's x-1 is a message of its own. */
    ck_assert_int_eq(chat_tc_send(observer, room, "x-1", "bob's first"), 3);
    ck_assert_int_eq(chat_tc_send(a, room, "x-3", "third"), 4);

    static const char *const texts[] = {"first", "second", "bob's first", "third"};
    expect_msgs(observer, room, texts, 4);
    cJSON *h = chat_tc_history(observer, room, 0, 100);
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(h, "msgs");
    ck_assert_int_eq(cJSON_GetArraySize(msgs), 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(chat_json_str(cJSON_GetArrayItem(msgs, i), "text"), texts[i]);
        ck_assert_int_eq(chat_json_int(cJSON_GetArrayItem(msgs, i), "seq"), i + 1);
    }
    ck_assert_str_eq(chat_json_str(cJSON_GetArrayItem(msgs, 0), "id"), chat_json_str(first, "id"));
    cJSON_Delete(h);
    cJSON_Delete(first);
    chat_tc_close(a);
    chat_tc_close(observer);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("resend-idempotent");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_resend_gets_original_ack);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
