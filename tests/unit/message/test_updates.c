/* Unit tests of services/message/updates.c: the rules of edit, delete, react and moderation's
 * removal (a verdict) against a stored message, the state after a change, request keys and
 * record copies. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/reactions.h"
#include "services/message/updates.h"
#include "tests/support/util.h"

#define ID "65f1c0ffee0123456789abcd"
#define NOW INT64_C(1732406400999)

static message_doc_t stored(void)
{
    message_doc_t d = {.tenant = "acme",
                       .room = "r",
                       .from = "alice",
                       .text = "hello",
                       .cid = "c-1",
                       .seq = 4,
                       .ts = 1};
    memcpy(d.id, ID, sizeof d.id);
    return d;
}

static chat_event_t request(chat_event_type_t type, const char *user)
{
    return (chat_event_t){.type = type,
                          .tenant = "acme",
                          .room = "r",
                          .user = user,
                          .id = ID,
                          .text = type == CHAT_EV_EDIT ? "hello, fixed" : NULL,
                          .emoji = type == CHAT_EV_REACT ? "x" : NULL,
                          .on = true,
                          .has_on = type == CHAT_EV_REACT};
}

START_TEST(test_edit_and_delete_by_the_author_only)
{
    message_doc_t msg = stored();
    message_update_rec_t rec;
    const char *why;
    chat_event_t ev = request(CHAT_EV_EDIT, "bob");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_FORBIDDEN);
    ck_assert_ptr_nonnull(why);
    ev = request(CHAT_EV_DELETE, "bob");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_FORBIDDEN);

    ev = request(CHAT_EV_EDIT, "alice");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_CHANGE);
    ck_assert_str_eq(rec.op, "edit");
    ck_assert_str_eq(rec.id, ID);
    ck_assert_str_eq(rec.text, "hello, fixed");
    ck_assert_int_eq(rec.edited, NOW);
    ck_assert_int_eq(rec.seq, 4);
    ck_assert(!rec.deleted);
    message_update_rec_clear(&rec);

    ev = request(CHAT_EV_DELETE, "alice");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_CHANGE);
    ck_assert(rec.deleted);
    ck_assert_ptr_null(rec.text);
    ck_assert_ptr_null(rec.reactions);
    ck_assert_int_eq(rec.edited, 0);
    message_update_rec_clear(&rec);
}
END_TEST

START_TEST(test_deleted_message)
{
    message_doc_t msg = stored();
    msg.text = NULL;
    msg.deleted = true;
    message_update_rec_t rec;
    const char *why;
    chat_event_t ev = request(CHAT_EV_EDIT, "alice");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOT_FOUND);
    ev = request(CHAT_EV_REACT, "bob");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOT_FOUND);
    ev = request(CHAT_EV_DELETE, "alice");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOOP);
    ev = request(CHAT_EV_DELETE, "bob");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_FORBIDDEN);
}
END_TEST

START_TEST(test_react_by_anyone)
{
    message_doc_t msg = stored();
    msg.edited = 77;
    msg.reactions = cJSON_Parse("{\"x\":[\"alice\"]}");
    message_update_rec_t rec;
    const char *why;
    chat_event_t ev = request(CHAT_EV_REACT, "bob");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_CHANGE);
    ck_assert_str_eq(rec.op, "react");
    ck_assert_str_eq(rec.text, "hello"); /* the whole state after the change */
    ck_assert_int_eq(rec.edited, 77);
    char *r = cJSON_PrintUnformatted(rec.reactions);
    ck_assert_str_eq(r, "{\"x\":[\"alice\",\"bob\"]}");
    free(r);
    message_update_rec_clear(&rec);
    /* The stored message is not touched. */
    r = cJSON_PrintUnformatted(msg.reactions);
    ck_assert_str_eq(r, "{\"x\":[\"alice\"]}");
    free(r);

    ev = request(CHAT_EV_REACT, "alice");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOOP);
    ev.on = false;
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_CHANGE);
    ck_assert_ptr_null(rec.reactions); /* the last reaction gone: none left */
    message_update_rec_clear(&rec);
    cJSON_Delete(msg.reactions);

    /* The 21st distinct emoji. */
    msg.reactions = cJSON_CreateObject();
    for (int i = 0; i < CHAT_REACTIONS_MAX_EMOJI; i++) {
        char e[8];
        snprintf(e, sizeof e, "e%d", i);
        ck_assert_int_eq(chat_reactions_apply(msg.reactions, e, "u", true, 100),
                         CHAT_REACTIONS_CHANGED);
    }
    ev = request(CHAT_EV_REACT, "bob");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_TOO_MANY);
    ck_assert_ptr_nonnull(why);
    ev.emoji = "e3";
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_CHANGE);
    message_update_rec_clear(&rec);
    cJSON_Delete(msg.reactions);
}
END_TEST

START_TEST(test_req_key_and_copy)
{
    char key[MESSAGE_UPDATE_REQ_MAX];
    chat_event_t ev = request(CHAT_EV_DELETE, "alice");
    message_update_req_key(&ev, "3:17", key, sizeof key);
    ck_assert_str_eq(key, "src:3:17");
    ev.rid = "0123456789012345678901234567890123456789012345678901234567890123";
    message_update_req_key(&ev, "3:17", key, sizeof key);
    ck_assert_str_eq(key, "rid:0123456789012345678901234567890123456789012345678901234567890123");

    message_update_rec_t a = {.tenant = strdup("acme"),
                              .room = strdup("r"),
                              .op = strdup("react"),
                              .useq = 5,
                              .reactions = cJSON_Parse("{\"x\":[\"u\"]}")};
    message_update_rec_t b;
    ck_assert_int_eq(message_update_rec_copy(&b, &a), CHAT_OK);
    ck_assert_str_eq(b.tenant, "acme");
    ck_assert_ptr_ne(b.tenant, a.tenant);
    ck_assert_ptr_null(b.text);
    ck_assert_int_eq(b.useq, 5);
    ck_assert(cJSON_Compare(a.reactions, b.reactions, true));
    message_update_rec_clear(&a);
    message_update_rec_clear(&b);
    message_update_rec_clear(NULL);
    ck_assert_str_eq(message_update_op(CHAT_EV_REACT), "react");
    ck_assert_ptr_null(message_update_op(CHAT_EV_SEND));
}
END_TEST

/* A verdict {action remove} from moderation (no user, no origin). */
static chat_event_t verdict(const char *reason)
{
    return (chat_event_t){.type = CHAT_EV_VERDICT,
                          .tenant = "acme",
                          .room = "r",
                          .id = ID,
                          .seq = 4,
                          .has_seq = true,
                          .action = "remove",
                          .reason = reason};
}

START_TEST(test_verdict_removes_once)
{
    message_doc_t msg = stored();
    msg.edited = 77;
    msg.reactions = cJSON_Parse("{\"x\":[\"bob\"]}");
    message_update_rec_t rec;
    const char *why;
    chat_event_t ev = verdict("profanity");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_CHANGE);
    ck_assert_str_eq(rec.op, "moderate");
    ck_assert_str_eq(rec.id, ID);
    ck_assert_int_eq(rec.seq, 4);
    ck_assert_int_eq(rec.ts, NOW);
    ck_assert(rec.removed);
    ck_assert_str_eq(rec.reason, "profanity");
    /* Nothing of the content is left: no text, no edit mark, no reactions. */
    ck_assert_ptr_null(rec.text);
    ck_assert_int_eq(rec.edited, 0);
    ck_assert_ptr_null(rec.reactions);
    ck_assert(!rec.deleted);
    message_update_rec_clear(&rec);
    cJSON_Delete(msg.reactions);
    msg.reactions = NULL;

    /* Already removed (a replayed verdict, a rescan, a review): nothing changes. */
    msg.text = NULL;
    msg.edited = 0;
    msg.removed = true;
    msg.reason = "profanity";
    ev = verdict("spam");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOOP);
    ck_assert_ptr_null(rec.op);
    ck_assert_ptr_null(rec.reason);

    /* A deleted message is gone already. */
    msg = stored();
    msg.text = NULL;
    msg.deleted = true;
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOOP);
}
END_TEST

/* After a removal: edit and react are refused as for a deleted message, with their own reason;
 * the author's delete changes nothing; someone else's is still forbidden. */
START_TEST(test_removed_message_refuses_changes)
{
    message_doc_t msg = stored();
    msg.text = NULL;
    msg.removed = true;
    msg.reason = "spam";
    message_update_rec_t rec;
    const char *why;
    chat_event_t ev = request(CHAT_EV_EDIT, "alice");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOT_FOUND);
    ck_assert_str_eq(why, "the message was removed");
    ev = request(CHAT_EV_EDIT, "system");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOT_FOUND);
    ev = request(CHAT_EV_REACT, "bob");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOT_FOUND);
    ck_assert_str_eq(why, "the message was removed");
    ev = request(CHAT_EV_DELETE, "alice");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_NOOP);
    ck_assert_ptr_null(rec.op);
    ev = request(CHAT_EV_DELETE, "bob");
    ck_assert_int_eq(message_update_decide(&ev, &msg, NOW, &rec, &why), MESSAGE_UPDATE_FORBIDDEN);
}
END_TEST

/* Every verdict about a message has the message's request key, whatever record carries it. */
START_TEST(test_verdict_req_key)
{
    char key[MESSAGE_UPDATE_REQ_MAX];
    chat_event_t ev = verdict("spam");
    message_update_req_key(&ev, "mod:3:17", key, sizeof key);
    ck_assert_str_eq(key, "mod:" ID);
    message_update_req_key(&ev, "mod:5:99", key, sizeof key);
    ck_assert_str_eq(key, "mod:" ID);
    ck_assert_str_eq(message_update_op(CHAT_EV_VERDICT), "moderate");

    message_update_rec_t a = {.op = strdup("moderate"), .removed = true, .reason = strdup("x")};
    message_update_rec_t b;
    ck_assert_int_eq(message_update_rec_copy(&b, &a), CHAT_OK);
    ck_assert(b.removed);
    ck_assert_str_eq(b.reason, "x");
    ck_assert_ptr_ne(b.reason, a.reason);
    message_update_rec_clear(&a);
    message_update_rec_clear(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("message_updates");
    TCase *tc = tcase_create("updates");
    tcase_add_test(tc, test_edit_and_delete_by_the_author_only);
    tcase_add_test(tc, test_deleted_message);
    tcase_add_test(tc, test_react_by_anyone);
    tcase_add_test(tc, test_req_key_and_copy);
    tcase_add_test(tc, test_verdict_removes_once);
    tcase_add_test(tc, test_removed_message_refuses_changes);
    tcase_add_test(tc, test_verdict_req_key);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
