/* Unit tests of services/gateway/store_reads's I/O-free part and of the common/stored_msg it
 * reads through: a stored message document becomes the same msg frame live subscribers get
 * (id as 24 hex digits, optional fields only when present, no tenant/src leaking), incomplete
 * documents are refused, and the frames of a replay (read newest first) become entries in
 * ascending seq. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/stored_msg.h"
#include "services/gateway/store_reads.h"
#include "tests/support/util.h"

static bson_t *doc_basic(bson_oid_t *oid)
{
    bson_oid_init_from_string(oid, "65f1c0ffee0123456789abcd");
    return BCON_NEW("_id", BCON_OID(oid), "tenant", BCON_UTF8("acme"), "room", BCON_UTF8("general"),
                    "seq", BCON_INT64(42), "from", BCON_UTF8("alice"), "text", BCON_UTF8("hello"),
                    "ts", BCON_INT64(1732406400123LL), "cid", BCON_UTF8("c-1"), "src",
                    BCON_UTF8("3:17"));
}

START_TEST(test_msg_frame_basic)
{
    bson_oid_t oid;
    bson_t *doc = doc_basic(&oid);
    cJSON *f = chat_stored_msg_frame(doc);
    ck_assert_ptr_nonnull(f);
    char *text = cJSON_PrintUnformatted(f);
    ck_assert_str_eq(text, "{\"type\":\"msg\",\"room\":\"general\",\"seq\":42,"
                           "\"id\":\"65f1c0ffee0123456789abcd\",\"from\":\"alice\","
                           "\"text\":\"hello\",\"ts\":1732406400123,\"cid\":\"c-1\"}");
    free(text);
    cJSON_Delete(f);
    bson_destroy(doc);
}
END_TEST

START_TEST(test_msg_frame_optional_fields)
{
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "65f1c0ffee0123456789abcd");
    bson_t *doc = BCON_NEW(
        "_id", BCON_OID(&oid), "tenant", BCON_UTF8("acme"), "room", BCON_UTF8("general"), "seq",
        BCON_INT32(7), "from", BCON_UTF8("bob"), "name", BCON_UTF8("Bob"), "text", BCON_UTF8("x"),
        "ts", BCON_DATE_TIME(5), "cid", BCON_UTF8("c"), "edited", BCON_INT64(9), "reactions", "[",
        "{", "e", BCON_UTF8("+1"), "u", "[", BCON_UTF8("alice"), BCON_UTF8("carol"), "]", "}", "]");
    cJSON *f = chat_stored_msg_frame(doc);
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(cJSON_GetObjectItem(f, "name")->valuestring, "Bob");
    ck_assert_int_eq((int)cJSON_GetObjectItem(f, "seq")->valuedouble, 7);
    ck_assert_int_eq((int)cJSON_GetObjectItem(f, "ts")->valuedouble, 5);
    char *edited = cJSON_PrintUnformatted(cJSON_GetObjectItem(f, "edited"));
    ck_assert_str_eq(edited, "9");
    free(edited);
    cJSON *r = cJSON_GetObjectItem(cJSON_GetObjectItem(f, "reactions"), "+1");
    ck_assert_int_eq(cJSON_GetArraySize(r), 2);
    ck_assert_ptr_null(cJSON_GetObjectItem(f, "tenant"));
    cJSON_Delete(f);
    bson_destroy(doc);
}
END_TEST

/* A system notice keeps its notice and target, and its empty text, as the live frame does. */
START_TEST(test_msg_frame_notice)
{
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "65f1c0ffee0123456789abcd");
    bson_t *doc = BCON_NEW("_id", BCON_OID(&oid), "tenant", BCON_UTF8("acme"), "room",
                           BCON_UTF8("team"), "seq", BCON_INT64(3), "from", BCON_UTF8("system"),
                           "text", BCON_UTF8(""), "notice", BCON_UTF8("member_removed"), "target",
                           BCON_UTF8("carol"), "ts", BCON_INT64(5), "cid", BCON_UTF8("n-1"));
    cJSON *f = chat_stored_msg_frame(doc);
    ck_assert_ptr_nonnull(f);
    char *text = cJSON_PrintUnformatted(f);
    ck_assert_str_eq(text, "{\"type\":\"msg\",\"room\":\"team\",\"seq\":3,"
                           "\"id\":\"65f1c0ffee0123456789abcd\",\"from\":\"system\",\"text\":\"\","
                           "\"notice\":\"member_removed\",\"target\":\"carol\",\"ts\":5,"
                           "\"cid\":\"n-1\"}");
    free(text);
    cJSON_Delete(f);
    bson_destroy(doc);
}
END_TEST

/* A deleted message keeps no text; a changed one also makes an update frame with the op of
 * its last change; one that never changed does not. */
START_TEST(test_msg_and_update_frames_of_changed_messages)
{
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "65f1c0ffee0123456789abcd");
    bson_t *doc = BCON_NEW("_id", BCON_OID(&oid), "tenant", BCON_UTF8("acme"), "room",
                           BCON_UTF8("general"), "seq", BCON_INT64(7), "from", BCON_UTF8("bob"),
                           "ts", BCON_INT64(5), "cid", BCON_UTF8("c"), "deleted", BCON_BOOL(true),
                           "useq", BCON_INT64(12), "uop", BCON_UTF8("delete"));
    cJSON *f = chat_stored_msg_frame(doc);
    ck_assert_ptr_nonnull(f);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(f, "deleted")));
    ck_assert_ptr_null(cJSON_GetObjectItem(f, "text"));
    cJSON_Delete(f);
    f = chat_stored_update_frame(doc);
    ck_assert_ptr_nonnull(f);
    char *text = cJSON_PrintUnformatted(f);
    ck_assert_str_eq(text, "{\"type\":\"update\",\"room\":\"general\",\"id\":"
                           "\"65f1c0ffee0123456789abcd\",\"seq\":7,\"useq\":12,\"op\":\"delete\","
                           "\"deleted\":true}");
    free(text);
    cJSON_Delete(f);
    bson_destroy(doc);
    /* A react that took the last reaction away: reactions {} in its update frame. */
    doc = BCON_NEW("_id", BCON_OID(&oid), "room", BCON_UTF8("general"), "seq", BCON_INT64(7),
                   "from", BCON_UTF8("bob"), "text", BCON_UTF8("x"), "ts", BCON_INT64(5), "useq",
                   BCON_INT64(13), "uop", BCON_UTF8("react"));
    f = chat_stored_update_frame(doc);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(f, "reactions")), 0);
    ck_assert_str_eq(cJSON_GetObjectItem(f, "text")->valuestring, "x");
    cJSON_Delete(f);
    bson_destroy(doc);
    bson_t *plain = doc_basic(&oid);
    ck_assert_ptr_null(chat_stored_update_frame(plain));
    bson_destroy(plain);
}
END_TEST

START_TEST(test_msg_frame_incomplete)
{
    bson_oid_t oid;
    bson_t *doc = doc_basic(&oid);
    bson_t *no_seq = bson_new();
    bson_copy_to_excluding_noinit(doc, no_seq, "seq", NULL);
    ck_assert_ptr_null(chat_stored_msg_frame(no_seq));
    bson_t *no_id = bson_new();
    bson_copy_to_excluding_noinit(doc, no_id, "_id", NULL);
    ck_assert_ptr_null(chat_stored_msg_frame(no_id));
    bson_destroy(no_seq);
    bson_destroy(no_id);
    bson_destroy(doc);
}
END_TEST

/* n msg-like frames with seq from n down to 1 (the replay query's order). */
static cJSON *frames_newest_first(int n)
{
    cJSON *frames = cJSON_CreateArray();
    ck_assert_ptr_nonnull(frames);
    for (int seq = n; seq >= 1; seq--) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "type", "msg");
        cJSON_AddNumberToObject(f, "seq", seq);
        cJSON_AddItemToArray(frames, f);
    }
    return frames;
}

START_TEST(test_replay_entries_ascending)
{
    cJSON *frames = frames_newest_first(500);
    gw_outq_entry_t *entries = NULL;
    size_t n = 0;
    ck_assert_int_eq(gw_reads_replay_entries(frames, &entries, &n), CHAT_OK);
    ck_assert_uint_eq(n, 500);
    for (size_t i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "{\"type\":\"msg\",\"seq\":%zu}", i + 1);
        ck_assert_int_eq(entries[i].seq, (int64_t)i + 1);
        ck_assert_str_eq((const char *)gw_buf_payload(entries[i].buf), want);
        gw_buf_unref(entries[i].buf);
    }
    free(entries);
    cJSON_Delete(frames);

    frames = cJSON_CreateArray();
    ck_assert_int_eq(gw_reads_replay_entries(frames, &entries, &n), CHAT_OK);
    ck_assert_ptr_null(entries);
    ck_assert_uint_eq(n, 0);
    cJSON_Delete(frames);
}
END_TEST

/* A frame without seq fails the whole replay, and what was built is released (ASan). */
START_TEST(test_replay_entries_without_seq)
{
    cJSON *frames = frames_newest_first(3);
    cJSON_DeleteItemFromObject(cJSON_GetArrayItem(frames, 1), "seq");
    gw_outq_entry_t *entries = NULL;
    size_t n = 7;
    ck_assert_int_eq(gw_reads_replay_entries(frames, &entries, &n), CHAT_ERR_INVALID);
    ck_assert_ptr_null(entries);
    ck_assert_uint_eq(n, 0);
    cJSON_Delete(frames);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_store_reads");
    TCase *tc = tcase_create("store_reads");
    tcase_add_test(tc, test_msg_frame_basic);
    tcase_add_test(tc, test_msg_frame_optional_fields);
    tcase_add_test(tc, test_msg_frame_notice);
    tcase_add_test(tc, test_msg_frame_incomplete);
    tcase_add_test(tc, test_msg_and_update_frames_of_changed_messages);
    tcase_add_test(tc, test_replay_entries_ascending);
    tcase_add_test(tc, test_replay_entries_without_seq);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
