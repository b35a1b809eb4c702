/* Unit tests of services/api/webhooks (its pure parts): webhook bodies (urls under both egress
 * policies, event lists, enabled, descriptions; each refusal naming its field), endpoint ids,
 * the secrets of a rotation and those that still sign, an endpoint as the tenant sees it (no
 * secret), the test event and the list's cursor positions. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/notify_store.h"
#include "services/api/webhooks.h"
#include "tests/support/util.h"

#define NOW 1765000000000LL
#define DAY_MS (24LL * 3600 * 1000)

static const chat_egress_policy_t strict = {.allow_http = false, .allow_private = false};
static const chat_egress_policy_t local = {.allow_http = true, .allow_private = true};

/* api_webhook_parse of json (create or patch) under policy; error gets the reason. */
static bool parse(const char *json, bool create, const chat_egress_policy_t *policy,
                  api_webhook_input_t *in, char *error, size_t errlen)
{
    cJSON *body = cJSON_Parse(json);
    ck_assert_ptr_nonnull(body);
    error[0] = '\0';
    bool ok = api_webhook_parse(body, create, policy, in, error, errlen);
    cJSON_Delete(body); /* in's strings were borrowed from it: not read after this */
    return ok;
}

/* The refusal of json names field (its message starts with it). */
static void refused(const char *json, bool create, const chat_egress_policy_t *policy,
                    const char *field)
{
    api_webhook_input_t in;
    char error[300];
    ck_assert_msg(!parse(json, create, policy, &in, error, sizeof error), "accepted: %s", json);
    ck_assert_msg(strstr(error, field) != NULL, "%s: the error does not name %s: %s", json, field,
                  error);
}

START_TEST(test_parse_create)
{
    api_webhook_input_t in;
    char error[300];
    ck_assert(parse("{\"url\":\"https://hooks.example.com/in\",\"events\":[\"message.new\","
                    "\"user.offline_message\"]}",
                    true, &strict, &in, error, sizeof error));
    ck_assert_uint_eq(in.events, CHAT_WH_MESSAGE_NEW | CHAT_WH_USER_OFFLINE_MESSAGE);
    ck_assert(in.has_enabled && in.enabled); /* default true */
    ck_assert(!in.has_description);
    ck_assert(parse("{\"url\":\"https://h.example/x\",\"events\":[\"message.new\","
                    "\"message.updated\",\"message.removed\",\"room.member_added\","
                    "\"room.member_removed\",\"user.offline_message\"],\"enabled\":false,"
                    "\"description\":\"our backend\"}",
                    true, &strict, &in, error, sizeof error));
    ck_assert_uint_eq(in.events, CHAT_WH_EVENTS_ALL);
    ck_assert(in.has_enabled && !in.enabled);
    ck_assert(in.has_description);
    /* required on create */
    refused("{\"events\":[\"message.new\"]}", true, &strict, "url");
    refused("{\"url\":\"https://h.example/x\"}", true, &strict, "events");
    refused("[1]", true, &strict, "object");
}
END_TEST

START_TEST(test_parse_urls)
{
    api_webhook_input_t in;
    char error[300];
    const char *ev = ",\"events\":[\"message.new\"]}";
    char json[3000];
    /* plain http and loopback: only where the deployment allows them */
    snprintf(json, sizeof json, "{\"url\":\"http://127.0.0.1:9000/hook\"%s", ev);
    refused(json, true, &strict, "url");
    ck_assert(parse(json, true, &local, &in, error, sizeof error));
    snprintf(json, sizeof json, "{\"url\":\"https://10.1.2.3/hook\"%s", ev);
    refused(json, true, &strict, "url");
    snprintf(json, sizeof json, "{\"url\":\"https://localhost/hook\"%s", ev);
    refused(json, true, &strict, "url");
    /* never: not http(s), user info, no host, not a string, too long */
    snprintf(json, sizeof json, "{\"url\":\"ftp://h.example/x\"%s", ev);
    refused(json, true, &local, "url");
    snprintf(json, sizeof json, "{\"url\":\"https://user:pw@h.example/x\"%s", ev);
    refused(json, true, &local, "url");
    snprintf(json, sizeof json, "{\"url\":\"https://\"%s", ev);
    refused(json, true, &local, "url");
    snprintf(json, sizeof json, "{\"url\":\"not a url\"%s", ev);
    refused(json, true, &local, "url");
    snprintf(json, sizeof json, "{\"url\":42%s", ev);
    refused(json, true, &local, "url");
    char long_url[2100];
    memset(long_url, 'a', sizeof long_url - 1);
    long_url[sizeof long_url - 1] = '\0';
    memcpy(long_url, "https://h.example/", 18);
    snprintf(json, sizeof json, "{\"url\":\"%s\"%s", long_url, ev);
    refused(json, true, &strict, "url");
}
END_TEST

START_TEST(test_parse_events)
{
    refused("{\"url\":\"https://h.example/x\",\"events\":[]}", true, &strict, "events");
    refused("{\"url\":\"https://h.example/x\",\"events\":\"message.new\"}", true, &strict,
            "events");
    refused("{\"url\":\"https://h.example/x\",\"events\":[\"message.new\",\"message.sent\"]}", true,
            &strict, "events[1]");
    refused("{\"url\":\"https://h.example/x\",\"events\":[\"message.new\",\"message.new\"]}", true,
            &strict, "events[1]");
    refused("{\"url\":\"https://h.example/x\",\"events\":[7]}", true, &strict, "events[0]");
    refused("{\"url\":\"https://h.example/x\",\"events\":[\"webhook.test\"]}", true, &strict,
            "events[0]");
    /* seven entries: one is bound to repeat, but the count is refused first */
    refused("{\"url\":\"https://h.example/x\",\"events\":[\"message.new\",\"message.updated\","
            "\"message.removed\",\"room.member_added\",\"room.member_removed\","
            "\"user.offline_message\",\"message.new\"]}",
            true, &strict, "events must be an array of 1 to 6");
}
END_TEST

START_TEST(test_parse_patch_and_lengths)
{
    api_webhook_input_t in;
    char error[300];
    ck_assert(parse("{}", false, &strict, &in, error, sizeof error));
    ck_assert(in.url == NULL && in.events == 0 && !in.has_enabled && !in.has_description);
    ck_assert(
        parse("{\"enabled\":true,\"description\":null}", false, &strict, &in, error, sizeof error));
    ck_assert(in.has_enabled && in.enabled && in.has_description && in.description == NULL);
    refused("{\"enabled\":\"yes\"}", false, &strict, "enabled");
    refused("{\"events\":[]}", false, &strict, "events");
    refused("{\"url\":\"http://h.example/x\"}", false, &strict, "url");
    /* description: 256 characters (four-byte ones count once), not 257, no control chars */
    char json[2048], desc[1100];
    memset(desc, 'd', 256);
    desc[256] = '\0';
    snprintf(json, sizeof json, "{\"description\":\"%s\"}", desc);
    ck_assert(parse(json, false, &strict, &in, error, sizeof error));
    ck_assert_ptr_nonnull(in.description);
    desc[256] = 'd';
    desc[257] = '\0';
    snprintf(json, sizeof json, "{\"description\":\"%s\"}", desc);
    refused(json, false, &strict, "description");
    desc[0] = '\0';
    for (int i = 0; i < 256; i++)
        strcat(desc, "\xF0\x9F\x98\x80");
    snprintf(json, sizeof json, "{\"description\":\"%s\"}", desc);
    ck_assert(parse(json, false, &strict, &in, error, sizeof error));
    refused("{\"description\":\"a\\u0007b\"}", false, &strict, "description");
    refused("{\"description\":5}", false, &strict, "description");
}
END_TEST

START_TEST(test_ids)
{
    char a[API_WEBHOOK_ID_LEN + 1], b[API_WEBHOOK_ID_LEN + 1];
    ck_assert(api_webhook_id_new(a));
    ck_assert(api_webhook_id_new(b));
    ck_assert_uint_eq(strlen(a), 25);
    ck_assert(strncmp(a, "wh_", 3) == 0);
    ck_assert(api_webhook_id_valid(a));
    ck_assert_str_ne(a, b);
    ck_assert(api_webhook_id_valid("wh_abcdefghijKLMNOPQRST-_"));
    ck_assert(!api_webhook_id_valid("wh_abcdefghijKLMNOPQRST-"));   /* 21 characters */
    ck_assert(!api_webhook_id_valid("wh_abcdefghijKLMNOPQRST-_9")); /* 23 */
    ck_assert(!api_webhook_id_valid("xx_abcdefghijKLMNOPQRST-_"));
    ck_assert(!api_webhook_id_valid("wh_abcdefghijKLMNOPQRST+/"));
    ck_assert(!api_webhook_id_valid(NULL));
}
END_TEST

START_TEST(test_secrets)
{
    bson_t *doc = BCON_NEW("_id", "wh_x", "secrets", "[", "{", "secret", "whsec_new", "until",
                           BCON_NULL, "}", "]");
    /* the first rotation: the new secret, the old one for a day */
    bson_t out = BSON_INITIALIZER;
    ck_assert(api_webhook_secrets_rotated(doc, "whsec_newer", NOW, &out));
    bson_t *rotated = BCON_NEW("_id", "wh_x", "secrets", BCON_ARRAY(&out));
    bson_destroy(&out);
    const char *live[CHAT_WHSIGN_SECRETS_MAX];
    ck_assert_uint_eq(api_webhook_secrets_live(rotated, NOW, live), 2);
    ck_assert_str_eq(live[0], "whsec_newer");
    ck_assert_str_eq(live[1], "whsec_new");
    ck_assert_uint_eq(api_webhook_secrets_live(rotated, NOW + DAY_MS - 1, live), 2);
    ck_assert_uint_eq(api_webhook_secrets_live(rotated, NOW + DAY_MS, live), 1); /* expired */
    ck_assert_str_eq(live[0], "whsec_newer");
    /* a second rotation drops the oldest: never more than two */
    bson_t out2 = BSON_INITIALIZER;
    ck_assert(api_webhook_secrets_rotated(rotated, "whsec_newest", NOW + 1000, &out2));
    bson_t *again = BCON_NEW("secrets", BCON_ARRAY(&out2));
    bson_destroy(&out2);
    ck_assert_uint_eq(api_webhook_secrets_live(again, NOW + 1000, live), 2);
    ck_assert_str_eq(live[0], "whsec_newest");
    ck_assert_str_eq(live[1], "whsec_newer");
    int64_t until = 0;
    bson_iter_t it;
    ck_assert(bson_iter_init(&it, again) && bson_iter_find_descendant(&it, "secrets.1.until", &it));
    until = bson_iter_as_int64(&it);
    ck_assert_int_eq(until, NOW + 1000 + DAY_MS);
    ck_assert(bson_iter_init(&it, again) && !bson_iter_find_descendant(&it, "secrets.2", &it));
    /* an endpoint without secrets: only the new one */
    bson_t *none = BCON_NEW("_id", "wh_x");
    bson_t out3 = BSON_INITIALIZER;
    ck_assert(api_webhook_secrets_rotated(none, "whsec_only", NOW, &out3));
    bson_t *only = BCON_NEW("secrets", BCON_ARRAY(&out3));
    bson_destroy(&out3);
    ck_assert_uint_eq(api_webhook_secrets_live(only, NOW, live), 1);
    ck_assert_uint_eq(api_webhook_secrets_live(none, NOW, live), 0);
    bson_destroy(only);
    bson_destroy(none);
    bson_destroy(again);
    bson_destroy(rotated);
    bson_destroy(doc);
}
END_TEST

START_TEST(test_json)
{
    /* events in stored order come out in the fixed order; no secret ever */
    bson_t *doc = BCON_NEW(
        "_id", "wh_abcdefghijKLMNOPQRST-_", "tenant", "acme", "url", "https://h.example/x",
        "events", "[", "user.offline_message", "message.new", "]", "enabled", BCON_BOOL(false),
        "description", BCON_NULL, "secrets", "[", "{", "secret", "whsec_s", "until", BCON_NULL, "}",
        "]", "created", BCON_INT64(NOW), "updated", BCON_INT64(NOW + 5), "disabled_reason",
        "the endpoint answered 410", "failing_since", BCON_INT64(NOW + 1));
    cJSON *o = api_webhook_json(doc);
    char *s = cJSON_PrintUnformatted(o);
    ck_assert_str_eq(s, "{\"id\":\"wh_abcdefghijKLMNOPQRST-_\",\"url\":\"https://h.example/x\","
                        "\"events\":[\"message.new\",\"user.offline_message\"],\"enabled\":false,"
                        "\"description\":null,\"created\":1765000000000,"
                        "\"updated\":1765000000005,"
                        "\"disabled_reason\":\"the endpoint answered 410\","
                        "\"failing_since\":1765000000001}");
    ck_assert_ptr_null(strstr(s, "whsec"));
    cJSON_free(s);
    cJSON_Delete(o);
    bson_destroy(doc);
    /* a document without its timestamps is skipped */
    bson_t *bad = BCON_NEW("_id", "wh_x", "url", "https://h.example/x");
    ck_assert_ptr_null(api_webhook_json(bad));
    bson_destroy(bad);
}
END_TEST

START_TEST(test_test_body_and_cursor)
{
    char *body = api_webhook_test_body("acme", "wh_abcdefghijKLMNOPQRST-_", NOW);
    ck_assert_str_eq(body, "{\"type\":\"webhook.test\",\"tenant\":\"acme\","
                           "\"data\":{\"endpoint\":\"wh_abcdefghijKLMNOPQRST-_\"},"
                           "\"ts\":1765000000000}");
    free(body);
    char raw[64], id[API_WEBHOOK_ID_LEN + 1];
    int64_t created = 0;
    api_webhook_pos_format(NOW, "wh_abcdefghijKLMNOPQRST-_", raw, sizeof raw);
    ck_assert_str_eq(raw, "1765000000000.wh_abcdefghijKLMNOPQRST-_");
    ck_assert(api_webhook_pos_parse(raw, &created, id));
    ck_assert_int_eq(created, NOW);
    ck_assert_str_eq(id, "wh_abcdefghijKLMNOPQRST-_");
    ck_assert(!api_webhook_pos_parse(".wh_abcdefghijKLMNOPQRST-_", &created, id));
    ck_assert(!api_webhook_pos_parse("12x.wh_abcdefghijKLMNOPQRST-_", &created, id));
    ck_assert(!api_webhook_pos_parse("12.wh_short", &created, id));
    ck_assert(!api_webhook_pos_parse("12", &created, id));
    /* found by fuzzing (tests/fuzz, target api): leading zeros, which format never writes */
    ck_assert(!api_webhook_pos_parse("012.wh_abcdefghijKLMNOPQRST-_", &created, id));
    ck_assert(api_webhook_pos_parse("0.wh_abcdefghijKLMNOPQRST-_", &created, id));
    cJSON *ev = api_webhook_events_json(CHAT_WH_EVENTS_ALL);
    ck_assert_int_eq(cJSON_GetArraySize(ev), 6);
    cJSON_Delete(ev);
}
END_TEST

/* The label of chat_api_webhook_deliveries_total: ok on 2xx, retry where notify would retry
 * (no answer, 408, 429, 5xx), failed for any other status or a refused address. */
START_TEST(test_delivery_outcome)
{
    ck_assert_int_eq(api_webhook_outcome(200, false), API_WEBHOOK_OK);
    ck_assert_int_eq(api_webhook_outcome(204, false), API_WEBHOOK_OK);
    ck_assert_int_eq(api_webhook_outcome(0, false), API_WEBHOOK_RETRY);
    ck_assert_int_eq(api_webhook_outcome(408, false), API_WEBHOOK_RETRY);
    ck_assert_int_eq(api_webhook_outcome(429, false), API_WEBHOOK_RETRY);
    ck_assert_int_eq(api_webhook_outcome(500, false), API_WEBHOOK_RETRY);
    ck_assert_int_eq(api_webhook_outcome(503, false), API_WEBHOOK_RETRY);
    ck_assert_int_eq(api_webhook_outcome(301, false), API_WEBHOOK_FAILED);
    ck_assert_int_eq(api_webhook_outcome(400, false), API_WEBHOOK_FAILED);
    ck_assert_int_eq(api_webhook_outcome(404, false), API_WEBHOOK_FAILED);
    ck_assert_int_eq(api_webhook_outcome(410, false), API_WEBHOOK_FAILED);
    ck_assert_int_eq(api_webhook_outcome(0, true), API_WEBHOOK_FAILED);
    ck_assert_str_eq(api_webhook_outcome_names[API_WEBHOOK_OK], "ok");
    ck_assert_str_eq(api_webhook_outcome_names[API_WEBHOOK_RETRY], "retry");
    ck_assert_str_eq(api_webhook_outcome_names[API_WEBHOOK_FAILED], "failed");
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("api_webhooks");
    TCase *tc = tcase_create("webhooks");
    tcase_add_test(tc, test_parse_create);
    tcase_add_test(tc, test_parse_urls);
    tcase_add_test(tc, test_parse_events);
    tcase_add_test(tc, test_parse_patch_and_lengths);
    tcase_add_test(tc, test_ids);
    tcase_add_test(tc, test_secrets);
    tcase_add_test(tc, test_json);
    tcase_add_test(tc, test_test_body_and_cursor);
    tcase_add_test(tc, test_delivery_outcome);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
