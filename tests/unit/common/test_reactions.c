/* Unit tests of common/reactions.c: adding and removing one user's emoji (order kept, empty
 * emoji gone, the distinct-emoji bound), and the MongoDB array form both ways. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/reactions.h"
#include "tests/support/util.h"

#define THUMBS "\xf0\x9f\x91\x8d"

static void expect_json(const cJSON *o, const char *want)
{
    char *got = cJSON_PrintUnformatted(o);
    ck_assert_str_eq(got, want);
    free(got);
}

START_TEST(test_apply_add_remove_order)
{
    cJSON *r = cJSON_CreateObject();
    ck_assert_int_eq(chat_reactions_apply(r, THUMBS, "bob", true, 20), CHAT_REACTIONS_CHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, "x", "carol", true, 20), CHAT_REACTIONS_CHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, THUMBS, "alice", true, 20), CHAT_REACTIONS_CHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, THUMBS, "bob", true, 20), CHAT_REACTIONS_UNCHANGED);
    expect_json(r, "{\"" THUMBS "\":[\"bob\",\"alice\"],\"x\":[\"carol\"]}");
    ck_assert_int_eq(chat_reactions_apply(r, THUMBS, "bob", false, 20), CHAT_REACTIONS_CHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, THUMBS, "bob", false, 20), CHAT_REACTIONS_UNCHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, "y", "bob", false, 20), CHAT_REACTIONS_UNCHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, "x", "carol", false, 20), CHAT_REACTIONS_CHANGED);
    expect_json(r, "{\"" THUMBS "\":[\"alice\"]}");
    ck_assert_int_eq(chat_reactions_apply(r, THUMBS, "alice", false, 20), CHAT_REACTIONS_CHANGED);
    expect_json(r, "{}");
    cJSON_Delete(r);
}
END_TEST

START_TEST(test_apply_distinct_bound)
{
    cJSON *r = cJSON_CreateObject();
    ck_assert_int_eq(chat_reactions_apply(r, "a", "u", true, 2), CHAT_REACTIONS_CHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, "b", "u", true, 2), CHAT_REACTIONS_CHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, "c", "u", true, 2), CHAT_REACTIONS_TOO_MANY);
    /* An emoji already there still takes more users; a freed place takes a new emoji. */
    ck_assert_int_eq(chat_reactions_apply(r, "a", "v", true, 2), CHAT_REACTIONS_CHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, "b", "u", false, 2), CHAT_REACTIONS_CHANGED);
    ck_assert_int_eq(chat_reactions_apply(r, "c", "u", true, 2), CHAT_REACTIONS_CHANGED);
    expect_json(r, "{\"a\":[\"u\",\"v\"],\"c\":[\"u\"]}");
    cJSON_Delete(r);
}
END_TEST

START_TEST(test_bson_round_trip)
{
    cJSON *r = cJSON_Parse("{\"" THUMBS "\":[\"bob\",\"alice\"],\"a.b\":[\"c\"],\"$x\":[\"d\"]}");
    ck_assert_ptr_nonnull(r);
    bson_t doc = BSON_INITIALIZER;
    ck_assert(chat_reactions_to_bson(&doc, "reactions", r));
    char *json = bson_as_relaxed_extended_json(&doc, NULL);
    ck_assert_str_eq(json, "{ \"reactions\" : [ { \"e\" : \"" THUMBS
                           "\", \"u\" : [ \"bob\", \"alice\" ] }, { \"e\" : \"a.b\", \"u\" : [ "
                           "\"c\" ] }, { \"e\" : \"$x\", \"u\" : [ \"d\" ] } ] }");
    bson_free(json);
    bson_iter_t it;
    ck_assert(bson_iter_init_find(&it, &doc, "reactions"));
    cJSON *back = chat_reactions_from_bson(&it);
    ck_assert(cJSON_Compare(back, r, true));
    cJSON_Delete(back);
    bson_destroy(&doc);
    /* Malformed entries are skipped; a non-array is refused. */
    bson_t *bad =
        BCON_NEW("r", "[", "{", "e", BCON_UTF8("ok"), "u", "[", BCON_UTF8("u"), "]", "}", "{", "u",
                 "[", BCON_UTF8("u"), "]", "}", BCON_INT32(3), "]", "n", BCON_INT32(1));
    ck_assert(bson_iter_init_find(&it, bad, "r"));
    back = chat_reactions_from_bson(&it);
    expect_json(back, "{\"ok\":[\"u\"]}");
    cJSON_Delete(back);
    ck_assert(bson_iter_init_find(&it, bad, "n"));
    ck_assert_ptr_null(chat_reactions_from_bson(&it));
    bson_destroy(bad);
    cJSON_Delete(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reactions");
    TCase *tc = tcase_create("reactions");
    tcase_add_test(tc, test_apply_add_remove_order);
    tcase_add_test(tc, test_apply_distinct_bound);
    tcase_add_test(tc, test_bson_round_trip);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
