/* Unit tests of services/gateway/demo: when the demo is on, the users it accepts, its tokens
 * (verified with common/jwt against the secret: tid, sub, name, exp) and its gateway list. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "common/jwt.h"
#include "services/gateway/demo.h"
#include "tests/support/util.h"

#define SECRET "demo-secret-for-tests"
#define NOW 1800000000

START_TEST(test_off_without_both_variables)
{
    gw_demo_t *d = (gw_demo_t *)0x1;
    ck_assert_int_eq(gw_demo_new("", "", "", &d), CHAT_OK);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(gw_demo_new("demo", "", "", &d), CHAT_OK);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(gw_demo_new("", SECRET, "", &d), CHAT_OK);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(gw_demo_new(NULL, NULL, NULL, &d), CHAT_OK);
    ck_assert_ptr_null(d);
    gw_demo_free(NULL);
}
END_TEST

START_TEST(test_bad_settings)
{
    gw_demo_t *d = NULL;
    ck_assert_int_eq(gw_demo_new("not a tenant", SECRET, "", &d), CHAT_ERR_CONFIG);
    ck_assert_ptr_null(d);
    const char *bad[] = {"http://h/v1/ws", "ws://",          "ws://a,", ",ws://a",
                         "ws://a b",       "ws://a,,ws://b", " ",       "wss:/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(gw_demo_new("demo", SECRET, bad[i], &d), CHAT_ERR_CONFIG);
        ck_assert_ptr_null(d);
    }
}
END_TEST

START_TEST(test_user_names)
{
    ck_assert(gw_demo_user_valid("alice"));
    ck_assert(gw_demo_user_valid("b0b_-"));
    ck_assert(gw_demo_user_valid("abcdefghijklmnopqrstuvwxyz012345")); /* 32 */
    ck_assert(!gw_demo_user_valid("abcdefghijklmnopqrstuvwxyz0123456"));
    ck_assert(!gw_demo_user_valid(""));
    ck_assert(!gw_demo_user_valid(NULL));
    ck_assert(!gw_demo_user_valid("Alice"));
    ck_assert(!gw_demo_user_valid("al ice"));
    ck_assert(!gw_demo_user_valid("../x"));
    ck_assert(!gw_demo_user_valid("al.ice"));
    ck_assert(!gw_demo_user_valid("\xc3\xa9"));
}
END_TEST

START_TEST(test_token)
{
    gw_demo_t *d = NULL;
    ck_assert_int_eq(gw_demo_new("demo", SECRET, "", &d), CHAT_OK);
    ck_assert_ptr_nonnull(d);
    char *json = NULL;
    size_t len = 0;
    ck_assert_int_eq(gw_demo_token_json(d, "alice", NOW, &json, &len), CHAT_OK);
    ck_assert_uint_eq(len, strlen(json));
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cJSON_GetArraySize(root), 4);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "user")->valuestring, "alice");
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "tenant")->valuestring, "demo");
    ck_assert_int_eq((int64_t)cJSON_GetObjectItemCaseSensitive(root, "exp")->valuedouble,
                     NOW + 3600);
    const char *token = cJSON_GetObjectItemCaseSensitive(root, "token")->valuestring;
    chat_jwt_claims_t c;
    char why[128];
    ck_assert_int_eq(chat_jwt_verify(token, SECRET, strlen(SECRET), NOW, 0, &c, why, sizeof why),
                     CHAT_OK);
    ck_assert_str_eq(c.tenant, "demo");
    ck_assert_str_eq(c.user, "alice");
    ck_assert_str_eq(c.name, "Alice");
    ck_assert_int_eq(c.exp, NOW + 3600);
    ck_assert(!c.has_rooms);
    chat_jwt_claims_clear(&c);
    ck_assert_int_eq(chat_jwt_verify(token, "other", 5, NOW, 0, &c, why, sizeof why),
                     CHAT_ERR_UNAUTHORIZED);
    ck_assert_int_eq(
        chat_jwt_verify(token, SECRET, strlen(SECRET), NOW + 3601, 0, &c, why, sizeof why),
        CHAT_ERR_UNAUTHORIZED);
    cJSON_Delete(root);
    free(json);

    ck_assert_int_eq(gw_demo_token_json(d, "_x", NOW, &json, &len), CHAT_OK);
    root = cJSON_Parse(json);
    token = cJSON_GetObjectItemCaseSensitive(root, "token")->valuestring;
    ck_assert_int_eq(chat_jwt_verify(token, SECRET, strlen(SECRET), NOW, 0, &c, why, sizeof why),
                     CHAT_OK);
    ck_assert_str_eq(c.name, "_x"); /* only a letter is capitalised */
    chat_jwt_claims_clear(&c);
    cJSON_Delete(root);
    free(json);

    json = (char *)0x1;
    ck_assert_int_eq(gw_demo_token_json(d, "Alice", NOW, &json, &len), CHAT_ERR_INVALID);
    ck_assert_ptr_null(json);
    gw_demo_free(d);
}
END_TEST

/* The gateways array of d's config for host as a comma-joined string (caller frees). */
static char *config_gateways(const gw_demo_t *d, const char *host)
{
    char *json = NULL;
    size_t len = 0;
    ck_assert_int_eq(gw_demo_config_json(d, host, "127.0.0.1:7410", &json, &len), CHAT_OK);
    cJSON *root = cJSON_Parse(json);
    ck_assert_ptr_nonnull(root);
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(root, "tenant")->valuestring, "demo");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "gateways");
    ck_assert(cJSON_IsArray(list));
    char *out = calloc(1, 4096);
    const cJSON *it;
    cJSON_ArrayForEach(it, list)
    {
        if (out[0] != '\0')
            strcat(out, ",");
        strcat(out, it->valuestring);
    }
    cJSON_Delete(root);
    free(json);
    return out;
}

START_TEST(test_config)
{
    gw_demo_t *d = NULL;
    ck_assert_int_eq(gw_demo_new("demo", SECRET, "", &d), CHAT_OK);
    char *g = config_gateways(d, "localhost:8410");
    ck_assert_str_eq(g, "ws://localhost:8410/v1/ws");
    free(g);
    g = config_gateways(d, NULL);
    ck_assert_str_eq(g, "ws://127.0.0.1:7410/v1/ws");
    free(g);
    g = config_gateways(d, "evil\"/x"); /* not a host: the gateway's own address */
    ck_assert_str_eq(g, "ws://127.0.0.1:7410/v1/ws");
    free(g);
    gw_demo_free(d);

    ck_assert_int_eq(gw_demo_new("demo", SECRET, " ws://a:1/v1/ws , wss://b/v1/ws", &d), CHAT_OK);
    g = config_gateways(d, "localhost:8410");
    ck_assert_str_eq(g, "ws://a:1/v1/ws,wss://b/v1/ws");
    free(g);
    gw_demo_free(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_demo");
    TCase *tc = tcase_create("demo");
    tcase_add_test(tc, test_off_without_both_variables);
    tcase_add_test(tc, test_bad_settings);
    tcase_add_test(tc, test_user_names);
    tcase_add_test(tc, test_token);
    tcase_add_test(tc, test_config);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
