/* Unit tests of common/tenant_settings: the defaults, a PATCH's validation (each bad field
 * named, nothing changed on failure) and merge, origins and email addresses, the typed view. */
#include <check.h>
#include <string.h>

#include "common/json.h"
#include "common/tenant_settings.h"
#include "tests/support/util.h"

/* Merges patch (JSON) into a copy of the defaults; returns the result (caller deletes) or
 * NULL with error set. */
static cJSON *merged(const char *patch, char *error, size_t len)
{
    cJSON *s = chat_settings_defaults(), *p = cJSON_Parse(patch);
    ck_assert_ptr_nonnull(s);
    ck_assert_ptr_nonnull(p);
    char *before = cJSON_PrintUnformatted(s);
    bool ok = chat_settings_merge(s, p, error, len);
    if (!ok) { /* unchanged on failure */
        char *after = cJSON_PrintUnformatted(s);
        ck_assert_str_eq(before, after);
        cJSON_free(after);
        cJSON_Delete(s);
        s = NULL;
    }
    cJSON_free(before);
    cJSON_Delete(p);
    return s;
}

START_TEST(test_defaults)
{
    cJSON *d = chat_settings_defaults();
    char *s = cJSON_PrintUnformatted(d);
    ck_assert_str_eq(s, "{\"allowed_origins\":[],\"limits\":{\"connections\":10000,"
                        "\"messages_per_s\":1000,\"api_calls_per_s\":100,"
                        "\"members_per_room\":1000,\"rooms\":10000},\"push\":{\"enabled\":true},"
                        "\"email\":{\"from\":null,\"digest_delay_s\":600}}");
    chat_settings_policy_t t;
    ck_assert_int_eq(chat_settings_policy_from_json(d, &t), CHAT_OK);
    ck_assert_int_eq(t.limits.connections, 10000);
    ck_assert_int_eq(t.limits.api_calls_per_s, 100);
    ck_assert_int_eq(t.limits.members_per_room, 1000);
    ck_assert_int_eq(t.limits.rooms, 10000);
    ck_assert_uint_eq(t.norigins, 0);
    /* an empty list: any origin; no Origin header: not a browser, allowed */
    ck_assert(chat_settings_origin_allowed(&t, "https://evil.example"));
    ck_assert(chat_settings_origin_allowed(&t, NULL));
    chat_settings_policy_clear(&t);
    cJSON_free(s);
    cJSON_Delete(d);
}
END_TEST

START_TEST(test_merge)
{
    char error[200];
    cJSON *s = merged("{\"limits\":{\"connections\":50},\"push\":{\"enabled\":false},"
                      "\"allowed_origins\":[\"https://app.example.com\",\"http://localhost:3000\"],"
                      "\"email\":{\"from\":\"noreply@example.com\"}}",
                      error, sizeof error);
    ck_assert_ptr_nonnull(s);
    chat_settings_policy_t t;
    ck_assert_int_eq(chat_settings_policy_from_json(s, &t), CHAT_OK);
    ck_assert_int_eq(t.limits.connections, 50);
    ck_assert_int_eq(t.limits.messages_per_s, 1000); /* untouched fields keep their values */
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "push"), "enabled")));
    ck_assert_uint_eq(t.norigins, 2);
    ck_assert(chat_settings_origin_allowed(&t, "https://app.example.com"));
    ck_assert(chat_settings_origin_allowed(&t, "HTTP://LOCALHOST:3000")); /* without case */
    ck_assert(!chat_settings_origin_allowed(&t, "https://evil.example"));
    ck_assert(!chat_settings_origin_allowed(&t, "https://app.example.com:8443"));
    ck_assert(!chat_settings_origin_allowed(&t, "null")); /* a sandboxed page */
    ck_assert(chat_settings_origin_allowed(&t, NULL));
    chat_settings_policy_clear(&t);
    const cJSON *email = cJSON_GetObjectItem(s, "email");
    ck_assert_str_eq(cJSON_GetObjectItem(email, "from")->valuestring, "noreply@example.com");
    int64_t delay = 0;
    ck_assert(chat_json_read_int(cJSON_GetObjectItem(email, "digest_delay_s"), &delay));
    ck_assert_int_eq(delay, 600);
    /* a second patch replaces the origins, clears from */
    cJSON *p = cJSON_Parse("{\"allowed_origins\":[],\"email\":{\"from\":null}}");
    ck_assert(chat_settings_merge(s, p, error, sizeof error));
    ck_assert_int_eq(chat_settings_policy_from_json(s, &t), CHAT_OK);
    ck_assert_uint_eq(t.norigins, 0);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(s, "email"), "from")));
    ck_assert_int_eq(t.limits.connections, 50);
    chat_settings_policy_clear(&t);
    cJSON_Delete(p);
    cJSON_Delete(s);
}
END_TEST

/* A PATCH merges into what the tenant set, which may be nothing yet: every part is added. */
START_TEST(test_merge_into_nothing)
{
    char error[200];
    cJSON *stored = cJSON_CreateObject();
    cJSON *p = cJSON_Parse("{\"allowed_origins\":[\"https://a.example\"],"
                           "\"limits\":{\"connections\":5}}");
    ck_assert(chat_settings_merge(stored, p, error, sizeof error));
    char *s = cJSON_PrintUnformatted(stored);
    ck_assert_str_eq(s, "{\"allowed_origins\":[\"https://a.example\"],"
                        "\"limits\":{\"connections\":5}}");
    cJSON_free(s);
    cJSON_Delete(p);
    cJSON_Delete(stored);
}
END_TEST

START_TEST(test_refusals_name_the_field)
{
    static const struct {
        const char *patch, *names;
    } cases[] = {
        {"{\"colour\":1}", "colour"},
        {"{\"limits\":{\"sockets\":1}}", "limits.sockets"},
        {"{\"limits\":{\"connections\":0}}", "limits.connections"},
        {"{\"limits\":{\"connections\":1000001}}", "limits.connections"},
        {"{\"limits\":{\"messages_per_s\":1.5}}", "limits.messages_per_s"},
        {"{\"limits\":{\"api_calls_per_s\":\"9\"}}", "limits.api_calls_per_s"},
        {"{\"limits\":[]}", "limits"},
        {"{\"push\":{\"enabled\":1}}", "push.enabled"},
        {"{\"push\":{\"x\":true}}", "push.x"},
        {"{\"email\":{\"from\":\"not an address\"}}", "email.from"},
        {"{\"email\":{\"digest_delay_s\":5}}", "email.digest_delay_s"},
        {"{\"allowed_origins\":\"https://a.example\"}", "allowed_origins"},
        {"{\"allowed_origins\":[\"https://a.example/\"]}", "allowed_origins[0]"},
        {"{\"allowed_origins\":[\"https://ok.example\",7]}", "allowed_origins[1]"},
        /* a valid part does not get in when another part is bad */
        {"{\"push\":{\"enabled\":true},\"limits\":{\"connections\":-3}}", "limits.connections"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char error[200] = "";
        cJSON *s = merged(cases[i].patch, error, sizeof error);
        ck_assert_msg(s == NULL, "accepted: %s", cases[i].patch);
        ck_assert_msg(strstr(error, cases[i].names) != NULL, "%s: '%s' does not name %s",
                      cases[i].patch, error, cases[i].names);
    }
}
END_TEST

START_TEST(test_origins)
{
    const char *good[] = {"https://example.com",   "http://localhost:3000",
                          "https://a-b.c.example", "http://127.0.0.1:8080",
                          "https://[::1]:443",     "capacitor://localhost"};
    const char *bad[] = {"",
                         "example.com",
                         "https://",
                         "https://example.com/",
                         "https://example.com/path",
                         "https://Example.com",
                         "HTTPS://example.com",
                         "https://example.com:0",
                         "https://example.com:65536",
                         "https://example.com:",
                         "https://exa mple.com",
                         "https://.example.com",
                         "https://example..com",
                         "https://user@example.com",
                         "*"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ck_assert_msg(chat_settings_origin_valid(good[i]), "refused %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(!chat_settings_origin_valid(bad[i]), "accepted %s", bad[i]);
}
END_TEST

START_TEST(test_emails)
{
    ck_assert(chat_settings_email_valid("noreply@example.com"));
    ck_assert(chat_settings_email_valid("a.b+tag@mail.example.org"));
    ck_assert(!chat_settings_email_valid("example.com"));
    ck_assert(!chat_settings_email_valid("@example.com"));
    ck_assert(!chat_settings_email_valid("a@b"));
    ck_assert(!chat_settings_email_valid("a@@example.com"));
    ck_assert(!chat_settings_email_valid("a b@example.com"));
    ck_assert(!chat_settings_email_valid("Name <a@example.com>"));
    ck_assert(!chat_settings_email_valid("a@example.com."));
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("tenant_settings");
    TCase *tc = tcase_create("settings");
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_merge);
    tcase_add_test(tc, test_merge_into_nothing);
    tcase_add_test(tc, test_refusals_name_the_field);
    tcase_add_test(tc, test_origins);
    tcase_add_test(tc, test_emails);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
