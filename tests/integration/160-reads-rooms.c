/* End to end: read marks and the room list. Two devices of one user: a read on one reaches
 * the other (and the room), and the next join shows the mark and the unread count dropped; a
 * lower mark is ignored (no event), a mark beyond the room's latest seq is bad_request; unread
 * counts only the others' messages. rooms lists a user's rooms by activity, pages with limit
 * and cursor, lists a dm for both of its members, forgets a room the user left, and refuses a
 * cursor it did not make. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"
#include "tools/client/client_frames.h"

#define QUIET_MS 1500

static void send_read(chat_tc_t *c, const char *room, int64_t seq)
{
    chat_tc_send_frame(c, chat_client_frame_read(room, seq, NULL));
}

/* Sends frame (a client_frames.h builder's, freed here) and returns the answer to rid. */
static cJSON *request(chat_tc_t *c, char *frame, const char *rid)
{
    ck_assert_ptr_nonnull(frame);
    cJSON *f = chat_tc_request(c, frame, rid, CHAT_TC_TIMEOUT_MS);
    free(frame);
    return f;
}

/* The next read frame of room on c (fails the test if none comes). */
static cJSON *expect_read(chat_tc_t *c, const char *room)
{
    cJSON *f = chat_tc_wait_for(c, "read", "room", room, CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(f != NULL, "no read frame for %s", room);
    return f;
}

static void check_read(cJSON *f, const char *room, const char *user, int64_t seq)
{
    ck_assert_str_eq(chat_json_str(f, "room"), room);
    ck_assert_str_eq(chat_json_str(f, "user"), user);
    ck_assert_int_eq(chat_json_int(f, "seq"), seq);
    cJSON_Delete(f);
}

START_TEST(test_read_marks)
{
    char room[96], me[64], other[64], fresh[64];
    chat_test_unique(room, sizeof room, "reads");
    chat_test_unique(me, sizeof me, "me");
    chat_test_unique(other, sizeof other, "other");
    chat_test_unique(fresh, sizeof fresh, "fresh");
    chat_tc_t *d1 = chat_tc_connect_demo(0, me);
    chat_tc_t *d2 = chat_tc_connect_demo(1, me);
    chat_tc_t *o = chat_tc_connect_demo(0, other);
    cJSON_Delete(chat_tc_join(d1, room, -1));
    cJSON_Delete(chat_tc_join(d2, room, -1));
    cJSON_Delete(chat_tc_join(o, room, -1));
    ck_assert_int_eq(chat_tc_send(o, room, "o1", "one"), 1);
    ck_assert_int_eq(chat_tc_send(o, room, "o2", "two"), 2);
    ck_assert_int_eq(chat_tc_send(o, room, "o3", "three"), 3);
    ck_assert_int_eq(chat_tc_send(d1, room, "m4", "mine"), 4);
    ck_assert_int_eq(chat_tc_send(o, room, "o5", "five"), 5);

    /* Read on device 1: everyone in the room hears it, device 2 and the reader included. */
    send_read(d1, room, 3);
    check_read(expect_read(d2, room), room, me, 3);
    check_read(expect_read(d1, room), room, me, 3);
    check_read(expect_read(o, room), room, me, 3);

    /* Device 2 joins again: its mark, and unread = the others' messages above it (5). */
    cJSON *j = chat_tc_join(d2, room, 5);
    ck_assert_int_eq(chat_json_int(j, "seq"), 5);
    ck_assert_int_eq(chat_json_int(j, "read"), 3);
    ck_assert_int_eq(chat_json_int(j, "unread"), 1);
    cJSON_Delete(j);

    /* A lower mark is ignored: no read frame; the next higher one comes. */
    send_read(d1, room, 2);
    send_read(d1, room, 5);
    check_read(expect_read(d2, room), room, me, 5);
    j = chat_tc_join(d2, room, 5);
    ck_assert_int_eq(chat_json_int(j, "read"), 5);
    ck_assert_int_eq(chat_json_int(j, "unread"), 0);
    cJSON_Delete(j);

    /* Beyond the room's latest seq: bad_request with the rid, and no read frame. */
    cJSON *e = request(d1, chat_client_frame_read(room, 6, "far"), "far");
    ck_assert_msg(e != NULL && chat_json_is(e, "error"), "no error for a read beyond the latest");
    ck_assert_str_eq(chat_json_str(e, "code"), "bad_request");
    cJSON_Delete(e);
    cJSON *none = chat_tc_wait_for(d2, "read", "room", room, QUIET_MS);
    ck_assert_msg(none == NULL, "a read frame for a refused mark");

    /* unread counts only the others' messages: without a mark, the other user (who sent 1-3
     * and 5) has one, a user who never wrote has all five. */
    j = chat_tc_join(o, room, -1);
    ck_assert_int_eq(chat_json_int(j, "read"), 0);
    ck_assert_int_eq(chat_json_int(j, "unread"), 1); /* only seq 4 is someone else's */
    cJSON_Delete(j);
    chat_tc_t *f = chat_tc_connect_demo(1, fresh);
    j = chat_tc_join(f, room, -1);
    ck_assert_int_eq(chat_json_int(j, "unread"), 5);
    cJSON_Delete(j);
    chat_tc_close(f);
    chat_tc_close(o);
    chat_tc_close(d2);
    chat_tc_close(d1);
}
END_TEST

/* Sends rooms and returns the answer (fails the test on anything else). */
static cJSON *rooms(chat_tc_t *c, int limit, const char *cursor, const char *rid)
{
    cJSON *f = request(c, chat_client_frame_rooms(limit, cursor, rid), rid);
    ck_assert_msg(f != NULL && chat_json_is(f, "rooms"), "no rooms answer to %s", rid);
    return f;
}

static const cJSON *entry(const cJSON *f, int i)
{
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(f, "rooms"), i);
    ck_assert_ptr_nonnull(e);
    return e;
}

static int count(const cJSON *f)
{
    return cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(f, "rooms"));
}

START_TEST(test_rooms_list)
{
    char a[64], b[64], r1[96], r2[96], r3[96], dm[160];
    chat_test_unique(a, sizeof a, "a");
    chat_test_unique(b, sizeof b, "b");
    chat_test_unique(r1, sizeof r1, "r1");
    chat_test_unique(r2, sizeof r2, "r2");
    chat_test_unique(r3, sizeof r3, "r3");
    snprintf(dm, sizeof dm, "dm:%s:%s", strcmp(a, b) < 0 ? a : b, strcmp(a, b) < 0 ? b : a);
    chat_tc_t *ca = chat_tc_connect_demo(0, a);
    chat_tc_t *cb = chat_tc_connect_demo(1, b);
    /* a joins r3, r2, r1 (r3 never gets a message: its activity is a's join) */
    cJSON_Delete(chat_tc_join(ca, r3, -1));
    cJSON_Delete(chat_tc_join(ca, r2, -1));
    cJSON_Delete(chat_tc_join(ca, r1, -1));
    usleep(20000);
    /* activity: r2, then r1, then the dm (b opens it; a never joins it) */
    chat_tc_send(cb, r2, "b1", "in r2");
    chat_tc_send(cb, r2, "b2", "in r2 again");
    usleep(20000);
    chat_tc_send(cb, r1, "b3", "in r1");
    usleep(20000);
    cJSON_Delete(chat_tc_join(cb, dm, -1));
    chat_tc_send(cb, dm, "b4", "hi a");
    /* a read r1 up to its message: no unread there */
    send_read(ca, r1, 1);
    check_read(expect_read(ca, r1), r1, a, 1);

    const char *from_redis = "chat_gateway_unread_counts_total{source=\"redis\"}";
    uint64_t redis_counts = chat_test_ops_metric(chat_test_ops_port_gateway(0), from_redis);
    cJSON *f = rooms(ca, 0, NULL, "all");
    ck_assert_int_eq(count(f), 4);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(f, "next"));
    char r1_last_id[32] = "";
    const char *order[] = {dm, r1, r2, r3};
    const int64_t seq[] = {1, 1, 2, 0}, unread[] = {1, 0, 2, 0}, read[] = {0, 1, 0, 0};
    for (int i = 0; i < 4; i++) {
        const cJSON *e = entry(f, i);
        ck_assert_str_eq(chat_json_str(e, "room"), order[i]);
        ck_assert_str_eq(chat_json_str(e, "kind"), i == 0 ? "dm" : "public");
        ck_assert_int_eq(chat_json_int(e, "seq"), seq[i]);
        ck_assert_int_eq(chat_json_int(e, "useq"), 0);
        ck_assert_int_eq(chat_json_int(e, "read"), read[i]);
        ck_assert_int_eq(chat_json_int(e, "unread"), unread[i]);
        const cJSON *last = cJSON_GetObjectItemCaseSensitive(e, "last");
        if (seq[i] == 0) {
            ck_assert_ptr_null(last);
        } else {
            ck_assert_str_eq(chat_json_str(last, "type"), "msg");
            ck_assert_int_eq(chat_json_int(last, "seq"), seq[i]);
            ck_assert_str_eq(chat_json_str(last, "from"), b);
            if (i == 1)
                snprintf(r1_last_id, sizeof r1_last_id, "%s", chat_json_str(last, "id"));
        }
    }
    cJSON_Delete(f);
    /* the recent histories answered the page's two unread counts (dm and r2) */
    ck_assert_uint_eq(chat_test_ops_metric(chat_test_ops_port_gateway(0), from_redis),
                      redis_counts + 2);

    /* Pages of 3, then the rest through the cursor. */
    f = rooms(ca, 3, NULL, "p1");
    ck_assert_int_eq(count(f), 3);
    ck_assert_str_eq(chat_json_str(entry(f, 2), "room"), r2);
    const char *next = chat_json_str(f, "next");
    ck_assert_ptr_nonnull(next);
    cJSON *g = rooms(ca, 3, next, "p2");
    ck_assert_int_eq(count(g), 1);
    ck_assert_str_eq(chat_json_str(entry(g, 0), "room"), r3);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(g, "next"));
    cJSON_Delete(g);
    cJSON_Delete(f);

    /* The dm is b's too (b joined it; r1 and r2 are not b's rooms: b only sent there). */
    f = rooms(cb, 0, NULL, "b");
    ck_assert_int_eq(count(f), 1);
    ck_assert_str_eq(chat_json_str(entry(f, 0), "room"), dm);
    ck_assert_int_eq(chat_json_int(entry(f, 0), "unread"), 0);
    cJSON_Delete(f);

    /* An edit of a room's last message shows in the list: its new text, and the room's useq. */
    cJSON *ack = request(cb, chat_client_frame_edit(r1, r1_last_id, "in r1, edited", "e1"), "e1");
    ck_assert_ptr_nonnull(ack);
    ck_assert_str_eq(chat_json_str(ack, "type"), "ack");
    cJSON_Delete(ack);
    f = rooms(ca, 0, NULL, "after-edit");
    const cJSON *e1 = entry(f, 1);
    ck_assert_str_eq(chat_json_str(e1, "room"), r1);
    ck_assert_int_eq(chat_json_int(e1, "useq"), 1);
    ck_assert_str_eq(chat_json_str(cJSON_GetObjectItemCaseSensitive(e1, "last"), "text"),
                     "in r1, edited");
    cJSON_Delete(f);

    /* Leaving r2 takes it off a's list (the index is written on a worker: poll briefly). */
    char frame[256];
    snprintf(frame, sizeof frame, "{\"type\":\"leave\",\"room\":\"%s\"}", r2);
    chat_tc_send_text(ca, frame);
    cJSON_Delete(chat_tc_expect(ca, "left", CHAT_TC_TIMEOUT_MS));
    int left = 0;
    for (int attempt = 0; attempt < 50 && left != 3; attempt++) {
        f = rooms(ca, 0, NULL, "after-leave");
        left = count(f);
        cJSON_Delete(f);
        if (left != 3)
            usleep(100000);
    }
    ck_assert_int_eq(left, 3);

    /* A cursor the gateway did not make. */
    cJSON *e = chat_tc_request(ca, "{\"type\":\"rooms\",\"rid\":\"bad\",\"cursor\":\"nope\"}",
                               "bad", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(e != NULL && chat_json_is(e, "error"), "a bad cursor was accepted");
    ck_assert_str_eq(chat_json_str(e, "code"), "bad_request");
    cJSON_Delete(e);
    chat_tc_close(ca);
    chat_tc_close(cb);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("reads-rooms");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_read_marks);
    tcase_add_test(tc, test_rooms_list);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
