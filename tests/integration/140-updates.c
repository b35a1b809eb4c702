/* End to end: edits, deletes and reactions. Every subscriber sees each change as an update
 * frame in useq order (1, 2, 3... per room); the actor gets an ack with the useq; the rules
 * (author only, unknown ids, emoji length, 20 distinct emoji) answer with errors echoing the
 * rid; sending the same request again is answered with the original useq and changes nothing;
 * history shows messages in their current state; and a client that missed changes and
 * messages resumes with since and usince to exactly the server's state. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tools/client/client_frames.h"
#include "tests/support/util.h"

#define QUIET_MS 700
#define THUMBS "\xf0\x9f\x91\x8d"
#define PARTY "\xf0\x9f\x8e\x89"
/* Sends text to room and returns the message's id and seq from the ack. */
/* Sends frame (an edit, delete or react with rid; freed) and returns the answer about rid:
 * its ack or error (caller frees). */
/* The request must be acknowledged: returns the ack's useq (-1 if it has none). */
static int64_t expect_ack(chat_tc_t *c, char *frame, const char *rid, const char *op)
{
    cJSON *f = chat_tc_ask(c, frame, rid);
    char *txt = cJSON_PrintUnformatted(f);
    ck_assert_msg(chat_json_is(f, "ack"), "%s answered %s", rid, txt);
    ck_assert_str_eq(chat_json_str(f, "op"), op);
    int64_t useq = chat_json_int(f, "useq");
    free(txt);
    cJSON_Delete(f);
    return useq;
}

/* The request must be refused with code. */
static void expect_error(chat_tc_t *c, char *frame, const char *rid, const char *code)
{
    cJSON *f = chat_tc_ask(c, frame, rid);
    char *txt = cJSON_PrintUnformatted(f);
    ck_assert_msg(chat_json_is(f, "error") && strcmp(chat_json_str(f, "code"), code) == 0,
                  "%s answered %s, not error %s", rid, txt, code);
    free(txt);
    cJSON_Delete(f);
}

/* The next update frame of room (fails after the timeout). */
static cJSON *next_update(chat_tc_t *c, const char *room)
{
    cJSON *u = chat_tc_wait_for(c, "update", "room", room, CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(u != NULL, "no update frame in %s", room);
    return u;
}

/* Joins room with since and usince (rid "j-<n>") and returns the joined frame. */
static cJSON *join_resume(chat_tc_t *c, const char *room, int64_t since, int64_t usince)
{
    static unsigned n;
    char rid[32], frame[512];
    snprintf(rid, sizeof rid, "j-%u", ++n);
    snprintf(frame, sizeof frame,
             "{\"type\":\"join\",\"room\":\"%s\",\"since\":%lld,\"usince\":%lld,\"rid\":\"%s\"}",
             room, (long long)since, (long long)usince, rid);
    cJSON *j = chat_tc_request(c, frame, rid, CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(chat_json_is(j, "joined"), "join with usince not answered joined");
    return j;
}

/* The reactions of a frame: its "reactions" object, NULL if absent or empty. */
static const cJSON *reactions_of(const cJSON *f)
{
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(f, "reactions");
    return cJSON_IsObject(r) && r->child != NULL ? r : NULL;
}

/* Two users of one fresh room: alice on gateway 0 and bob on gateway 1, both joined; returns
 * alice's joined frame (the caller deletes it). */
typedef struct pair {
    char room[96], alice[64], bob[64];
    chat_tc_t *a, *b;
} pair_t;

static cJSON *pair_join(pair_t *p, const char *prefix)
{
    chat_test_unique(p->room, sizeof p->room, prefix);
    chat_test_unique(p->alice, sizeof p->alice, "alice");
    chat_test_unique(p->bob, sizeof p->bob, "bob");
    p->a = chat_tc_connect_demo(0, p->alice);
    p->b = chat_tc_connect_demo(1, p->bob);
    cJSON *j = chat_tc_join(p->a, p->room, -1);
    cJSON_Delete(chat_tc_join(p->b, p->room, -1));
    return j;
}

START_TEST(test_changes_seen_in_useq_order)
{
    pair_t p;
    cJSON *j = pair_join(&p, "upd");
    ck_assert_int_eq(chat_json_int(j, "useq"), 0);
    cJSON_Delete(j);
    const char *room = p.room, *alice = p.alice, *bob = p.bob;
    chat_tc_t *a = p.a, *b = p.b;
    chat_tc_sent_t m1 = chat_tc_post(a, room, "c1", "first");
    chat_tc_sent_t m2 = chat_tc_post(a, room, "c2", "second");

    ck_assert_int_eq(
        expect_ack(a, chat_client_frame_edit(room, m1.id, "first, fixed", "e1"), "e1", "edit"), 1);
    ck_assert_int_eq(
        expect_ack(b, chat_client_frame_react(room, m1.id, THUMBS, true, "r1"), "r1", "react"), 2);
    ck_assert_int_eq(expect_ack(a, chat_client_frame_delete(room, m2.id, "d1"), "d1", "delete"), 3);
    ck_assert_int_eq(
        expect_ack(b, chat_client_frame_react(room, m1.id, PARTY, true, "r2"), "r2", "react"), 4);
    ck_assert_int_eq(
        expect_ack(a, chat_client_frame_react(room, m1.id, THUMBS, true, "r3"), "r3", "react"), 5);
    ck_assert_int_eq(
        expect_ack(b, chat_client_frame_react(room, m1.id, THUMBS, false, "r4"), "r4", "react"), 6);

    chat_tc_t *both[] = {a, b};
    for (size_t k = 0; k < 2; k++) {
        for (int64_t useq = 1; useq <= 6; useq++) {
            cJSON *u = next_update(both[k], room);
            ck_assert_int_eq(chat_json_int(u, "useq"), useq);
            const char *id = chat_json_str(u, "id");
            ck_assert_str_eq(id, useq == 3 ? m2.id : m1.id);
            ck_assert_int_eq(chat_json_int(u, "seq"), useq == 3 ? m2.seq : m1.seq);
            if (useq == 1) {
                ck_assert_str_eq(chat_json_str(u, "op"), "edit");
                ck_assert_str_eq(chat_json_str(u, "text"), "first, fixed");
                ck_assert_int_gt(chat_json_int(u, "edited"), 0);
            } else if (useq == 3) {
                ck_assert_str_eq(chat_json_str(u, "op"), "delete");
                ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(u, "deleted")));
                ck_assert_ptr_null(chat_json_str(u, "text"));
            } else {
                ck_assert_str_eq(chat_json_str(u, "op"), "react");
                ck_assert_str_eq(chat_json_str(u, "text"), "first, fixed");
            }
            if (useq == 6) {
                /* bob's thumbs went, alice's stayed; the party emoji came second */
                cJSON *want = cJSON_Parse("{\"" THUMBS "\":[\"x\"],\"" PARTY "\":[\"y\"]}");
                cJSON_ReplaceItemInArray(cJSON_GetObjectItem(want, THUMBS), 0,
                                         cJSON_CreateString(alice));
                cJSON_ReplaceItemInArray(cJSON_GetObjectItem(want, PARTY), 0,
                                         cJSON_CreateString(bob));
                ck_assert_msg(cJSON_Compare(reactions_of(u), want, true), "reactions after 6");
                cJSON_Delete(want);
            }
            cJSON_Delete(u);
        }
        ck_assert_ptr_null(chat_tc_wait(both[k], "update", QUIET_MS));
    }
    /* A join without since tells the room's latest useq. */
    chat_tc_t *c = chat_tc_connect_demo(1, bob);
    j = chat_tc_join(c, room, -1);
    ck_assert_int_eq(chat_json_int(j, "useq"), 6);
    cJSON_Delete(j);
    chat_tc_close(c);
    chat_tc_close(a);
    chat_tc_close(b);
}
END_TEST

START_TEST(test_refusals)
{
    pair_t p;
    cJSON_Delete(pair_join(&p, "upd-no"));
    const char *room = p.room;
    chat_tc_t *a = p.a, *b = p.b;
    chat_tc_sent_t m = chat_tc_post(a, room, "c1", "alice's");

    expect_error(b, chat_client_frame_edit(room, m.id, "bob was here", "x1"), "x1", "forbidden");
    expect_error(b, chat_client_frame_delete(room, m.id, "x2"), "x2", "forbidden");
    expect_error(a, chat_client_frame_edit(room, "65f1c0ffee0123456789abcd", "t", "x3"), "x3",
                 "not_found");
    expect_error(b, chat_client_frame_react(room, "65f1c0ffee0123456789abcd", THUMBS, true, "x4"),
                 "x4", "not_found");
    char long_emoji[64];
    memset(long_emoji, 'e', 33);
    long_emoji[33] = '\0';
    expect_error(b, chat_client_frame_react(room, m.id, long_emoji, true, "x5"), "x5",
                 "bad_request");
    /* 20 distinct emoji fit; the 21st is refused (bad_request), an existing one still goes. */
    for (int i = 0; i < 20; i++) {
        char emoji[8], rid[16];
        snprintf(emoji, sizeof emoji, "e%d", i);
        snprintf(rid, sizeof rid, "ok-%d", i);
        ck_assert_int_eq(expect_ack(i % 2 ? a : b,
                                    chat_client_frame_react(room, m.id, emoji, true, rid), rid,
                                    "react"),
                         i + 1);
    }
    expect_error(a, chat_client_frame_react(room, m.id, "e20", true, "x6"), "x6", "bad_request");
    ck_assert_int_eq(
        expect_ack(a, chat_client_frame_react(room, m.id, "e0", true, "x7"), "x7", "react"), 21);
    /* A reaction that is already there (or not there) changes nothing: acked with the
     * message's last useq, no new one. */
    ck_assert_int_eq(
        expect_ack(a, chat_client_frame_react(room, m.id, "e0", true, "x8"), "x8", "react"), 21);
    ck_assert_int_eq(
        expect_ack(a, chat_client_frame_react(room, m.id, "e4", false, "x9"), "x9", "react"), 21);
    /* A deleted message: no more edits or reactions. */
    ck_assert_int_eq(expect_ack(a, chat_client_frame_delete(room, m.id, "x10"), "x10", "delete"),
                     22);
    expect_error(a, chat_client_frame_edit(room, m.id, "back", "x11"), "x11", "not_found");
    expect_error(b, chat_client_frame_react(room, m.id, THUMBS, true, "x12"), "x12", "not_found");
    for (int64_t useq = 1; useq <= 22; useq++) {
        cJSON *u = next_update(b, room);
        ck_assert_int_eq(chat_json_int(u, "useq"), useq);
        cJSON_Delete(u);
    }
    ck_assert_ptr_null(chat_tc_wait(b, "update", QUIET_MS));
    chat_tc_close(a);
    chat_tc_close(b);
}
END_TEST

START_TEST(test_resend_is_idempotent)
{
    pair_t p;
    cJSON_Delete(pair_join(&p, "upd-again"));
    const char *room = p.room, *alice = p.alice;
    chat_tc_t *a = p.a, *b = p.b;
    chat_tc_sent_t m = chat_tc_post(a, room, "c1", "one");
    ck_assert_int_eq(
        expect_ack(a, chat_client_frame_edit(room, m.id, "one, fixed", "e1"), "e1", "edit"), 1);
    ck_assert_int_eq(
        expect_ack(b, chat_client_frame_react(room, m.id, THUMBS, true, "r1"), "r1", "react"), 2);
    /* The same requests again, from another connection of the same users: the original
     * answers, no new useq, no update. */
    chat_tc_t *a2 = chat_tc_connect_demo(1, alice);
    ck_assert_int_eq(
        expect_ack(a2, chat_client_frame_edit(room, m.id, "one, fixed", "e1"), "e1", "edit"), 1);
    ck_assert_int_eq(
        expect_ack(b, chat_client_frame_react(room, m.id, THUMBS, true, "r1"), "r1", "react"), 2);
    /* Even a resend of the reaction after it was taken back is the original answer. */
    ck_assert_int_eq(
        expect_ack(b, chat_client_frame_react(room, m.id, THUMBS, false, "r2"), "r2", "react"), 3);
    ck_assert_int_eq(
        expect_ack(b, chat_client_frame_react(room, m.id, THUMBS, true, "r1"), "r1", "react"), 2);
    for (int64_t useq = 1; useq <= 3; useq++) {
        cJSON *u = next_update(a, room);
        ck_assert_int_eq(chat_json_int(u, "useq"), useq);
        cJSON_Delete(u);
    }
    ck_assert_ptr_null(chat_tc_wait(a, "update", QUIET_MS));
    cJSON *h = chat_tc_history(b, room, 0, 10);
    cJSON *msg = cJSON_GetArrayItem(cJSON_GetObjectItem(h, "msgs"), 0);
    ck_assert_str_eq(chat_json_str(msg, "text"), "one, fixed");
    ck_assert_ptr_null(reactions_of(msg));
    cJSON_Delete(h);
    chat_tc_close(a2);
    chat_tc_close(a);
    chat_tc_close(b);
}
END_TEST

/* The state a client holds of one message: its last msg or update frame's text, edited,
 * deleted and reactions. */
typedef struct held {
    char id[32];
    cJSON *state;
} held_t;

#define HELD_MAX 32

static cJSON *state_of(const cJSON *frame)
{
    cJSON *s = cJSON_CreateObject();
    static const char *const keys[] = {"text", "edited", "deleted", "removed"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(frame, keys[i]);
        if (v != NULL)
            cJSON_AddItemToObject(s, keys[i], cJSON_Duplicate(v, true));
    }
    const cJSON *r = reactions_of(frame);
    if (r != NULL)
        cJSON_AddItemToObject(s, "reactions", cJSON_Duplicate(r, true));
    return s;
}

/* Takes a msg or update frame into what the client holds. */
static void hold(held_t *held, size_t *n, const cJSON *frame)
{
    const char *id = chat_json_str(frame, "id");
    ck_assert_ptr_nonnull(id);
    size_t i = 0;
    while (i < *n && strcmp(held[i].id, id) != 0)
        i++;
    if (i == *n) {
        ck_assert_uint_lt(*n, HELD_MAX);
        snprintf(held[i].id, sizeof held[i].id, "%s", id);
        held[i].state = NULL;
        (*n)++;
    }
    cJSON_Delete(held[i].state);
    held[i].state = state_of(frame);
}

START_TEST(test_resume_with_usince)
{
    pair_t p;
    cJSON_Delete(pair_join(&p, "upd-resume"));
    const char *room = p.room, *bob = p.bob;
    chat_tc_t *a = p.a, *b = p.b;
    chat_tc_sent_t m[12];
    for (int i = 1; i <= 6; i++) {
        char cid[16], text[32];
        snprintf(cid, sizeof cid, "c%d", i);
        snprintf(text, sizeof text, "message %d", i);
        m[i] = chat_tc_post(a, room, cid, text);
    }
    ck_assert_int_eq(
        expect_ack(a, chat_client_frame_react(room, m[1].id, PARTY, true, "r0"), "r0", "react"), 1);
    /* What bob holds: every message and change so far, live. */
    held_t held[HELD_MAX];
    size_t nheld = 0;
    for (int i = 1; i <= 6; i++) {
        cJSON *f = chat_tc_wait_for(b, "msg", "id", m[i].id, CHAT_TC_TIMEOUT_MS);
        ck_assert_ptr_nonnull(f);
        hold(held, &nheld, f);
        cJSON_Delete(f);
    }
    cJSON *u = next_update(b, room);
    hold(held, &nheld, u);
    int64_t since = 6, usince = chat_json_int(u, "useq");
    cJSON_Delete(u);
    chat_tc_free(b); /* gone without a word */

    /* Missed: 3 edits (one of a message bob never got), 2 reactions, 1 delete, 5 messages. */
    for (int i = 7; i <= 11; i++) {
        char cid[16], text[32];
        snprintf(cid, sizeof cid, "c%d", i);
        snprintf(text, sizeof text, "message %d", i);
        m[i] = chat_tc_post(a, room, cid, text);
    }
    expect_ack(a, chat_client_frame_edit(room, m[1].id, "message 1, fixed", "e1"), "e1", "edit");
    expect_ack(a, chat_client_frame_edit(room, m[2].id, "message 2, fixed", "e2"), "e2", "edit");
    expect_ack(a, chat_client_frame_edit(room, m[8].id, "message 8, fixed", "e3"), "e3", "edit");
    expect_ack(a, chat_client_frame_react(room, m[3].id, THUMBS, true, "r1"), "r1", "react");
    expect_ack(a, chat_client_frame_react(room, m[1].id, THUMBS, true, "r2"), "r2", "react");
    int64_t last = expect_ack(a, chat_client_frame_delete(room, m[4].id, "d1"), "d1", "delete");
    ck_assert_int_eq(last, usince + 6);

    b = chat_tc_connect_demo(0, bob);
    cJSON *j = join_resume(b, room, since, usince);
    ck_assert_int_eq(chat_json_int(j, "seq"), 11);
    ck_assert_int_eq(chat_json_int(j, "useq"), last);
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(j, "stale"));
    cJSON_Delete(j);
    /* The 5 new messages in their current state, then one update per changed old one (1, 2,
     * 3, 4: message 1 changed twice, it comes once), in useq order. */
    for (int i = 7; i <= 11; i++) {
        cJSON *f = chat_tc_wait(b, NULL, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(chat_json_is(f, "msg"), "expected the replay of message %d", i);
        ck_assert_int_eq(chat_json_int(f, "seq"), i);
        hold(held, &nheld, f);
        cJSON_Delete(f);
    }
    int64_t prev = usince;
    for (int k = 0; k < 4; k++) {
        cJSON *f = chat_tc_wait(b, NULL, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(chat_json_is(f, "update"), "expected update %d of the resume", k);
        ck_assert_int_gt(chat_json_int(f, "useq"), prev);
        ck_assert_int_le(chat_json_int(f, "seq"), since);
        prev = chat_json_int(f, "useq");
        hold(held, &nheld, f);
        cJSON_Delete(f);
    }
    ck_assert_ptr_null(chat_tc_wait(b, "update", QUIET_MS));
    ck_assert_ptr_null(chat_tc_wait(b, "msg", 1));

    /* Exactly the server's state: compared with history, message by message. */
    cJSON *h = chat_tc_history(b, room, 0, 50);
    const cJSON *msgs = cJSON_GetObjectItem(h, "msgs");
    ck_assert_int_eq(cJSON_GetArraySize(msgs), 11);
    ck_assert_uint_eq(nheld, 11);
    const cJSON *msg;
    cJSON_ArrayForEach(msg, msgs)
    {
        size_t i = 0;
        while (i < nheld && strcmp(held[i].id, chat_json_str(msg, "id")) != 0)
            i++;
        ck_assert_uint_lt(i, nheld);
        cJSON *want = state_of(msg);
        char *w = cJSON_PrintUnformatted(want), *g = cJSON_PrintUnformatted(held[i].state);
        ck_assert_msg(cJSON_Compare(want, held[i].state, true), "seq %lld: server %s, client %s",
                      (long long)chat_json_int(msg, "seq"), w, g);
        free(w);
        free(g);
        cJSON_Delete(want);
    }
    /* Spot checks of what history shows. */
    const cJSON *m4 = cJSON_GetArrayItem(msgs, 3);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m4, "deleted")));
    ck_assert_ptr_null(chat_json_str(m4, "text"));
    const cJSON *m1 = cJSON_GetArrayItem(msgs, 0);
    ck_assert_str_eq(chat_json_str(m1, "text"), "message 1, fixed");
    ck_assert_int_gt(chat_json_int(m1, "edited"), 0);
    ck_assert_int_eq(cJSON_GetArraySize(reactions_of(m1)), 2);
    ck_assert_str_eq(chat_json_str(cJSON_GetArrayItem(msgs, 7), "text"), "message 8, fixed");
    cJSON_Delete(h);
    for (size_t i = 0; i < nheld; i++)
        cJSON_Delete(held[i].state);

    /* Nothing missed: a resume at the latest useq replays no update. */
    chat_tc_t *c = chat_tc_connect_demo(1, bob);
    j = join_resume(c, room, 11, last);
    ck_assert_int_eq(chat_json_int(j, "useq"), last);
    cJSON_Delete(j);
    ck_assert_ptr_null(chat_tc_wait(c, "update", QUIET_MS));
    chat_tc_close(c);
    chat_tc_close(a);
    chat_tc_close(b);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("updates");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_changes_seen_in_useq_order);
    tcase_add_test(tc, test_refusals);
    tcase_add_test(tc, test_resend_is_idempotent);
    tcase_add_test(tc, test_resume_with_usince);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
