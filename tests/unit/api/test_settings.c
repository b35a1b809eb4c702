/* Unit tests of services/api/settings: the api's typed view of a settings object (the document
 * itself is common/tenant_settings.c's, tested in tests/unit/common/test_tenant_settings.c). */
#include <check.h>

#include "common/tenant_settings.h"
#include "services/api/settings.h"
#include "tests/support/util.h"

START_TEST(test_view_of_defaults_and_merge)
{
    cJSON *s = chat_settings_defaults();
    api_settings_t t;
    api_settings_from_json(s, &t);
    ck_assert_int_eq(t.connections, 10000);
    ck_assert_int_eq(t.api_calls_per_s, 100);
    ck_assert_int_eq(t.members_per_room, 1000);
    ck_assert_int_eq(t.rooms, 10000);
    ck_assert(t.push_enabled);
    ck_assert_uint_eq(t.allowed_origins, 0);
    cJSON *p = cJSON_Parse("{\"limits\":{\"rooms\":3,\"messages_per_s\":7},\"push\":{\"enabled\":"
                           "false},\"allowed_origins\":[\"https://a.example\"]}");
    char error[200];
    ck_assert(chat_settings_merge(s, p, error, sizeof error));
    api_settings_from_json(s, &t);
    ck_assert_int_eq(t.rooms, 3);
    ck_assert_int_eq(t.messages_per_s, 7);
    ck_assert(!t.push_enabled);
    ck_assert_uint_eq(t.allowed_origins, 1);
    cJSON_Delete(p);
    cJSON_Delete(s);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("api_settings");
    TCase *tc = tcase_create("view");
    tcase_add_test(tc, test_view_of_defaults_and_merge);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
