/* Unit tests of services/api/moderation and rescan (their pure parts): a rule set's revision
 * and the message of a refused one, a review's body and its `by`, the flags list's state and
 * cursor positions, a flag and a rescan job as the tenant sees them, a rescan's body at a given
 * time (each refusal naming its field). */
#include <check.h>
#include <string.h>

#include "services/api/moderation.h"
#include "tests/support/util.h"

#define NOW 1765000000000LL
#define DAY_MS (24LL * 3600 * 1000)

START_TEST(test_rev_next)
{
    ck_assert_int_eq(api_mod_rules_rev_next(NOW, 0), NOW);
    ck_assert_int_eq(api_mod_rules_rev_next(NOW, NOW - 5), NOW);
    ck_assert_int_eq(api_mod_rules_rev_next(NOW, NOW), NOW + 1);           /* same millisecond */
    ck_assert_int_eq(api_mod_rules_rev_next(NOW, NOW + 1000), NOW + 1001); /* clock stepped back */
}
END_TEST

START_TEST(test_rules_error)
{
    char buf[256];
    api_mod_rules_error("blocklists[0].words[3]", "longer than 64 characters", buf, sizeof buf);
    ck_assert_str_eq(buf, "blocklists[0].words[3]: longer than 64 characters");
    api_mod_rules_error("", "must be an object", buf, sizeof buf);
    ck_assert_str_eq(buf, "the rule set: must be an object");
    api_mod_rules_error("regex[1].pattern", "", buf, sizeof buf);
    ck_assert_str_eq(buf, "regex[1].pattern: not valid");
}
END_TEST

/* Parses body (JSON) as a review: the result, and the reason in error when refused. */
static bool review(const char *body, api_mod_review_t *out, char *error, size_t len)
{
    cJSON *b = cJSON_Parse(body);
    ck_assert_ptr_nonnull(b);
    bool ok = api_mod_review_parse(b, out, error, len);
    if (ok && out->moderator != NULL) /* borrowed from the body: compared before it goes */
        ck_assert(strlen(out->moderator) > 0);
    cJSON_Delete(b);
    return ok;
}

START_TEST(test_review_parse)
{
    api_mod_review_t r;
    char error[160], by[300];
    ck_assert(review("{\"action\":\"remove\"}", &r, error, sizeof error));
    ck_assert(r.remove);
    ck_assert_ptr_null(r.moderator);
    api_mod_review_by(&r, by, sizeof by);
    ck_assert_str_eq(by, "moderator");
    ck_assert_str_eq(api_mod_review_state(&r), "removed");

    cJSON *b = cJSON_Parse("{\"action\":\"dismiss\",\"moderator\":\"ann\"}");
    ck_assert(api_mod_review_parse(b, &r, error, sizeof error));
    ck_assert(!r.remove);
    ck_assert_str_eq(r.moderator, "ann");
    api_mod_review_by(&r, by, sizeof by);
    ck_assert_str_eq(by, "moderator:ann");
    ck_assert_str_eq(api_mod_review_state(&r), "dismissed");
    cJSON_Delete(b);

    ck_assert(!review("{}", &r, error, sizeof error));
    ck_assert_str_eq(error, "missing field: action");
    ck_assert(!review("{\"action\":\"ban\"}", &r, error, sizeof error));
    ck_assert(strstr(error, "action") == error);
    ck_assert(!review("{\"action\":1}", &r, error, sizeof error));
    ck_assert(strstr(error, "action") == error);
    ck_assert(!review("{\"action\":\"remove\",\"moderator\":\"\"}", &r, error, sizeof error));
    ck_assert(strstr(error, "moderator") == error);
    ck_assert(
        !review("{\"action\":\"remove\",\"moderator\":\"a\\u0007b\"}", &r, error, sizeof error));
    ck_assert(strstr(error, "moderator") == error);
    char long_name[200];
    snprintf(long_name, sizeof long_name, "{\"action\":\"remove\",\"moderator\":\"%065d\"}", 0);
    ck_assert(!review(long_name, &r, error, sizeof error));
    snprintf(long_name, sizeof long_name, "{\"action\":\"remove\",\"moderator\":\"%064d\"}", 0);
    ck_assert(review(long_name, &r, error, sizeof error));
    /* 64 characters of four bytes each are 64 characters */
    char wide[400] = "{\"action\":\"remove\",\"moderator\":\"";
    for (int i = 0; i < 64; i++)
        strcat(wide, "\xf0\x9f\x98\x80");
    strcat(wide, "\"}");
    ck_assert(review(wide, &r, error, sizeof error));
}
END_TEST

START_TEST(test_flags_state_and_cursor)
{
    bool valid;
    ck_assert_str_eq(api_mod_flags_state(NULL, &valid), "pending");
    ck_assert(valid);
    ck_assert_str_eq(api_mod_flags_state("removed", &valid), "removed");
    ck_assert_str_eq(api_mod_flags_state("dismissed", &valid), "dismissed");
    ck_assert_ptr_null(api_mod_flags_state("all", &valid));
    ck_assert(!valid);
    ck_assert_ptr_null(api_mod_flags_state("", &valid));
    ck_assert(!valid);

    char raw[64], id[25];
    int64_t ts = 0;
    api_mod_flags_pos_format(NOW, "0123456789abcdef01234567", raw, sizeof raw);
    ck_assert_str_eq(raw, "1765000000000.0123456789abcdef01234567");
    ck_assert(api_mod_flags_pos_parse(raw, &ts, id));
    ck_assert_int_eq(ts, NOW);
    ck_assert_str_eq(id, "0123456789abcdef01234567");
    ck_assert(!api_mod_flags_pos_parse("x.0123456789abcdef01234567", &ts, id));
    ck_assert(!api_mod_flags_pos_parse(".0123456789abcdef01234567", &ts, id));
    ck_assert(!api_mod_flags_pos_parse("12.0123456789ABCDEF01234567", &ts, id));
    ck_assert(!api_mod_flags_pos_parse("12.0123", &ts, id));
    ck_assert(!api_mod_flags_pos_parse("12", &ts, id));
    ck_assert(!api_mod_flags_pos_parse("99999999999999999999.0123456789abcdef01234567", &ts, id));
    /* found by fuzzing (tests/fuzz, target api): 19 digits above INT64_MAX overflowed (UBSan),
     * and leading zeros, which format never writes, were taken */
    ck_assert(!api_mod_flags_pos_parse("9999999999999999999.0123456789abcdef01234567", &ts, id));
    ck_assert(api_mod_flags_pos_parse("9223372036854775807.0123456789abcdef01234567", &ts, id));
    ck_assert(ts == INT64_MAX);
    ck_assert(!api_mod_flags_pos_parse("9223372036854775808.0123456789abcdef01234567", &ts, id));
    ck_assert(!api_mod_flags_pos_parse("012.0123456789abcdef01234567", &ts, id));
    ck_assert(api_mod_flags_pos_parse("0.0123456789abcdef01234567", &ts, id));
    ck_assert_int_eq(ts, 0);
}
END_TEST

START_TEST(test_flag_json)
{
    bson_t *doc = BCON_NEW("_id", "aabbccddeeff001122334455", "tenant", "t", "room", "lobby", "msg",
                           "65f1aa00bb11cc22dd33ee44", "seq", BCON_INT64(7), "ver", BCON_INT64(0),
                           "from", "bob", "text", "some text", "rule", "profanity", "kind",
                           "blocklist", "state", "pending", "ts", BCON_INT64(NOW));
    cJSON *o = api_mod_flag_json(doc);
    ck_assert_ptr_nonnull(o);
    char *s = cJSON_PrintUnformatted(o);
    ck_assert_str_eq(s, "{\"id\":\"aabbccddeeff001122334455\",\"room\":\"lobby\","
                        "\"message\":\"65f1aa00bb11cc22dd33ee44\",\"seq\":7,\"from\":\"bob\","
                        "\"text\":\"some text\",\"rule\":\"profanity\",\"kind\":\"blocklist\","
                        "\"state\":\"pending\",\"ts\":1765000000000}");
    cJSON_free(s);
    cJSON_Delete(o);
    BSON_APPEND_UTF8(doc, "reviewed_by", "moderator:ann");
    BSON_APPEND_INT64(doc, "reviewed_at", NOW + 5);
    o = api_mod_flag_json(doc);
    ck_assert_ptr_nonnull(o);
    s = cJSON_PrintUnformatted(o);
    ck_assert_ptr_nonnull(strstr(s, ",\"reviewed_by\":\"moderator:ann\","
                                    "\"reviewed_at\":1765000000005}"));
    cJSON_free(s);
    cJSON_Delete(o);
    bson_destroy(doc);
    bson_t *broken = BCON_NEW("_id", "aabbccddeeff001122334455", "room", "lobby");
    ck_assert_ptr_null(api_mod_flag_json(broken));
    bson_destroy(broken);
}
END_TEST

START_TEST(test_kind_parse)
{
    chat_mod_kind_t k;
    ck_assert(api_mod_kind_parse("blocklist", &k));
    ck_assert_int_eq(k, CHAT_MOD_KIND_BLOCKLIST);
    ck_assert(api_mod_kind_parse("regex", &k));
    ck_assert_int_eq(k, CHAT_MOD_KIND_REGEX);
    ck_assert(api_mod_kind_parse("rate", &k));
    ck_assert_int_eq(k, CHAT_MOD_KIND_RATE);
    ck_assert(!api_mod_kind_parse("words", &k));
    ck_assert(!api_mod_kind_parse(NULL, &k));
}
END_TEST

/* Parses body (JSON) as a rescan at NOW. */
static bool rescan(const char *body, api_rescan_params_t *out, char *error, size_t len)
{
    cJSON *b = cJSON_Parse(body);
    ck_assert_ptr_nonnull(b);
    bool ok = api_rescan_params_parse(b, NOW, out, error, len);
    cJSON_Delete(b);
    return ok;
}

START_TEST(test_rescan_params)
{
    api_rescan_params_t p;
    char error[200], body[200];
    snprintf(body, sizeof body, "{\"since\":%lld}", NOW - 3600000);
    ck_assert(rescan(body, &p, error, sizeof error));
    ck_assert_ptr_null(p.room);
    ck_assert_int_eq(p.since, NOW - 3600000);
    ck_assert_int_eq(p.until, NOW); /* default: now */
    cJSON *b = cJSON_Parse("{\"room\":\"lobby\",\"since\":1764999000000,\"until\":1764999500000}");
    ck_assert(api_rescan_params_parse(b, NOW, &p, error, sizeof error));
    ck_assert_str_eq(p.room, "lobby");
    ck_assert_int_eq(p.since, 1764999000000LL);
    ck_assert_int_eq(p.until, 1764999500000LL);
    cJSON_Delete(b);
    snprintf(body, sizeof body, "{\"since\":%lld,\"until\":%lld}", NOW - 10, NOW + DAY_MS);
    ck_assert(rescan(body, &p, error, sizeof error));
    ck_assert_int_eq(p.until, NOW); /* a future until is now */
    snprintf(body, sizeof body, "{\"since\":%lld}", NOW - 7 * DAY_MS);
    ck_assert(rescan(body, &p, error, sizeof error)); /* exactly 7 days */

    ck_assert(!rescan("{}", &p, error, sizeof error));
    ck_assert_str_eq(error, "missing field: since");
    snprintf(body, sizeof body, "{\"since\":%lld}", NOW - 7 * DAY_MS - 1);
    ck_assert(!rescan(body, &p, error, sizeof error));
    ck_assert(strstr(error, "since") == error);
    snprintf(body, sizeof body, "{\"since\":%lld}", NOW + 1);
    ck_assert(!rescan(body, &p, error, sizeof error));
    ck_assert(strstr(error, "since") == error);
    ck_assert(!rescan("{\"since\":\"yesterday\"}", &p, error, sizeof error));
    ck_assert(strstr(error, "since") == error);
    snprintf(body, sizeof body, "{\"since\":%lld.5}", NOW - 10);
    ck_assert(!rescan(body, &p, error, sizeof error));
    snprintf(body, sizeof body, "{\"since\":%lld,\"until\":%lld}", NOW - 10, NOW - 11);
    ck_assert(!rescan(body, &p, error, sizeof error));
    ck_assert(strstr(error, "until") == error);
    snprintf(body, sizeof body, "{\"since\":%lld,\"room\":\"bad room\"}", NOW - 10);
    ck_assert(!rescan(body, &p, error, sizeof error));
    ck_assert(strstr(error, "room") == error);
    snprintf(body, sizeof body, "{\"since\":%lld,\"room\":5}", NOW - 10);
    ck_assert(!rescan(body, &p, error, sizeof error));
    ck_assert(strstr(error, "room") == error);
}
END_TEST

START_TEST(test_rescan_json)
{
    bson_t *queued =
        BCON_NEW("_id", "65f1aa00bb11cc22dd33ee44", "tenant", "t", "kind", "rescan", "state",
                 "queued", "params", "{", "since", BCON_INT64(NOW - 10), "until", BCON_INT64(NOW),
                 "}", "progress", "{", "done", BCON_INT64(0), "total", BCON_INT64(0), "}");
    cJSON *o = api_rescan_json(queued);
    char *s = cJSON_PrintUnformatted(o);
    ck_assert_str_eq(s, "{\"id\":\"65f1aa00bb11cc22dd33ee44\",\"state\":\"queued\",\"scanned\":0,"
                        "\"matched\":0,\"removed\":0,\"flagged\":0,\"since\":1764999999990,"
                        "\"until\":1765000000000}");
    cJSON_free(s);
    cJSON_Delete(o);
    bson_destroy(queued);
    bson_t *failed = BCON_NEW("_id", "65f1aa00bb11cc22dd33ee44", "state", "failed", "params", "{",
                              "room", "lobby", "since", BCON_INT64(1), "until", BCON_INT64(2), "}",
                              "counts", "{", "scanned", BCON_INT64(1000), "matched", BCON_INT64(3),
                              "removed", BCON_INT64(2), "flagged", BCON_INT64(1), "}", "error",
                              "messages could not be read", "owner", "api-0");
    o = api_rescan_json(failed);
    s = cJSON_PrintUnformatted(o);
    ck_assert_str_eq(s, "{\"id\":\"65f1aa00bb11cc22dd33ee44\",\"state\":\"failed\","
                        "\"scanned\":1000,\"matched\":3,\"removed\":2,\"flagged\":1,"
                        "\"room\":\"lobby\",\"since\":1,\"until\":2,"
                        "\"error\":\"messages could not be read\"}");
    cJSON_free(s);
    cJSON_Delete(o);
    bson_destroy(failed);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("api_moderation");
    TCase *tc = tcase_create("moderation");
    tcase_add_test(tc, test_rev_next);
    tcase_add_test(tc, test_rules_error);
    tcase_add_test(tc, test_review_parse);
    tcase_add_test(tc, test_flags_state_and_cursor);
    tcase_add_test(tc, test_flag_json);
    tcase_add_test(tc, test_kind_parse);
    tcase_add_test(tc, test_rescan_params);
    tcase_add_test(tc, test_rescan_json);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
