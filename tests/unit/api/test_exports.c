/* Unit tests of services/api/exports: a stored message as its export line (plain, edited with
 * reactions, deleted, removed, a notice, an ObjectId or string id, missing fields) and the
 * params of POST /v1/exports. */
#include <check.h>
#include <string.h>

#include "common/json.h"
#include "services/api/exports.h"
#include "tests/support/util.h"

/* The line of doc printed compactly (caller frees), NULL if there is none. */
static char *line_of(const bson_t *doc)
{
    cJSON *line = api_export_line(doc);
    if (line == NULL)
        return NULL;
    char *s = cJSON_PrintUnformatted(line);
    cJSON_Delete(line);
    return s;
}

START_TEST(test_plain_message)
{
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "65f1aa00bb11cc22dd33ee44");
    bson_t *doc = BCON_NEW("_id", BCON_OID(&oid), "tenant", "t", "room", "lobby", "seq",
                           BCON_INT64(7), "from", "alice", "name", "Alice", "text", "hi \"you\"",
                           "ts", BCON_INT64(1700000000123), "cid", "c1", "src", "0:1");
    char *s = line_of(doc);
    ck_assert_str_eq(s, "{\"room\":\"lobby\",\"seq\":7,\"id\":\"65f1aa00bb11cc22dd33ee44\","
                        "\"from\":\"alice\",\"name\":\"Alice\",\"text\":\"hi \\\"you\\\"\","
                        "\"ts\":1700000000123}");
    cJSON_free(s);
    bson_destroy(doc);
}
END_TEST

START_TEST(test_edited_with_reactions)
{
    bson_t *doc = BCON_NEW("_id", "65f1aa00bb11cc22dd33ee45", "room", "r", "seq", BCON_INT32(2),
                           "from", "bob", "text", "fixed", "ts", BCON_INT64(10), "edited",
                           BCON_INT64(20), "reactions", "[", "{", "e", "👍", "u", "[", "alice",
                           "carol", "]", "}", "]", "useq", BCON_INT64(3), "uop", "react");
    char *s = line_of(doc);
    ck_assert_str_eq(s, "{\"room\":\"r\",\"seq\":2,\"id\":\"65f1aa00bb11cc22dd33ee45\","
                        "\"from\":\"bob\",\"text\":\"fixed\",\"ts\":10,\"edited\":20,"
                        "\"reactions\":{\"👍\":[\"alice\",\"carol\"]}}");
    cJSON_free(s);
    bson_destroy(doc);
}
END_TEST

START_TEST(test_deleted_and_removed_have_no_text)
{
    bson_t *deleted = BCON_NEW("_id", "65f1aa00bb11cc22dd33ee46", "room", "r", "seq", BCON_INT64(3),
                               "from", "bob", "ts", BCON_INT64(10), "deleted", BCON_BOOL(true),
                               "reactions", "[", "{", "e", "x", "u", "[", "a", "]", "}", "]");
    char *s = line_of(deleted);
    ck_assert_str_eq(s, "{\"room\":\"r\",\"seq\":3,\"id\":\"65f1aa00bb11cc22dd33ee46\","
                        "\"from\":\"bob\",\"deleted\":true,\"ts\":10}");
    cJSON_free(s);
    bson_t *removed =
        BCON_NEW("_id", "65f1aa00bb11cc22dd33ee47", "room", "r", "seq", BCON_INT64(4), "from",
                 "bob", "text", "spam", "ts", BCON_INT64(11), "removed", BCON_BOOL(true));
    s = line_of(removed);
    ck_assert_ptr_null(strstr(s, "spam"));
    ck_assert_ptr_nonnull(strstr(s, "\"removed\":true"));
    cJSON_free(s);
    bson_destroy(deleted);
    bson_destroy(removed);
}
END_TEST

START_TEST(test_notice)
{
    bson_t *doc = BCON_NEW("_id", "65f1aa00bb11cc22dd33ee48", "room", "team", "seq", BCON_INT64(1),
                           "from", "system", "text", "", "ts", BCON_INT64(5), "notice",
                           "member_added", "target", "dave");
    char *s = line_of(doc);
    ck_assert_str_eq(s, "{\"room\":\"team\",\"seq\":1,\"id\":\"65f1aa00bb11cc22dd33ee48\","
                        "\"from\":\"system\",\"text\":\"\",\"ts\":5,\"notice\":\"member_added\","
                        "\"target\":\"dave\"}");
    cJSON_free(s);
    bson_destroy(doc);
}
END_TEST

START_TEST(test_missing_fields)
{
    bson_t *no_seq =
        BCON_NEW("_id", "65f1aa00bb11cc22dd33ee49", "room", "r", "from", "a", "ts", BCON_INT64(1));
    bson_t *bad_id = BCON_NEW("_id", "nothex", "room", "r", "seq", BCON_INT64(1), "from", "a", "ts",
                              BCON_INT64(1));
    bson_t *no_from = BCON_NEW("_id", "65f1aa00bb11cc22dd33ee49", "room", "r", "seq", BCON_INT64(1),
                               "ts", BCON_INT64(1));
    ck_assert_ptr_null(api_export_line(no_seq));
    ck_assert_ptr_null(api_export_line(bad_id));
    ck_assert_ptr_null(api_export_line(no_from));
    bson_destroy(no_seq);
    bson_destroy(bad_id);
    bson_destroy(no_from);
}
END_TEST

/* Parses json as a body; true if the params are accepted. */
static bool params_ok(const char *json, api_export_params_t *p, char *error, size_t len)
{
    cJSON *body = json != NULL ? cJSON_Parse(json) : NULL;
    bool ok = api_export_params_parse(body, p, error, len);
    if (ok && p->room != NULL) /* keep the room past the body */
        p->room = strcmp(p->room, "lobby") == 0 ? "lobby" : "other";
    cJSON_Delete(body);
    return ok;
}

START_TEST(test_params)
{
    api_export_params_t p;
    char error[128];
    ck_assert(params_ok(NULL, &p, error, sizeof error));
    ck_assert_ptr_null(p.room);
    ck_assert_int_eq(p.from, 0);
    ck_assert_int_eq(p.to, 0);
    ck_assert(params_ok("{\"room\":\"lobby\",\"from\":5,\"to\":9}", &p, error, sizeof error));
    ck_assert_str_eq(p.room, "lobby");
    ck_assert_int_eq(p.from, 5);
    ck_assert_int_eq(p.to, 9);
    ck_assert(!params_ok("{\"room\":\"no spaces\"}", &p, error, sizeof error));
    ck_assert_ptr_nonnull(strstr(error, "room"));
    ck_assert(!params_ok("{\"from\":-1}", &p, error, sizeof error));
    ck_assert_ptr_nonnull(strstr(error, "from"));
    ck_assert(!params_ok("{\"from\":1.5}", &p, error, sizeof error));
    ck_assert(!params_ok("{\"to\":\"x\"}", &p, error, sizeof error));
    ck_assert_ptr_nonnull(strstr(error, "to"));
    ck_assert(!params_ok("{\"from\":9,\"to\":9}", &p, error, sizeof error));
    ck_assert(!params_ok("[]", &p, error, sizeof error));
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("api_exports");
    TCase *tc = tcase_create("exports");
    tcase_add_test(tc, test_plain_message);
    tcase_add_test(tc, test_edited_with_reactions);
    tcase_add_test(tc, test_deleted_and_removed_have_no_text);
    tcase_add_test(tc, test_notice);
    tcase_add_test(tc, test_missing_fields);
    tcase_add_test(tc, test_params);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
