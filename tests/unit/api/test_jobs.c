/* Unit tests of services/api/jobs: a job document as the tenant sees it in each state (queued,
 * running with progress, done with its path, failed with its error; what the runner keeps for
 * itself left out) and job ids. */
#include <check.h>
#include <string.h>

#include "services/api/jobs.h"
#include "tests/support/util.h"

static char *json_of(const bson_t *doc)
{
    cJSON *o = api_job_json(doc);
    ck_assert_ptr_nonnull(o);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

START_TEST(test_states)
{
    bson_t *queued =
        BCON_NEW("_id", "65f1aa00bb11cc22dd33ee44", "tenant", "t", "kind", "export", "state",
                 "queued", "params", "{", "room", "r", "}", "progress", "{", "done", BCON_INT64(0),
                 "total", BCON_INT64(0), "}", "created", BCON_INT64(100), "updated",
                 BCON_INT64(100), "lease_until", BCON_INT64(0));
    char *s = json_of(queued);
    ck_assert_str_eq(s, "{\"id\":\"65f1aa00bb11cc22dd33ee44\",\"state\":\"queued\","
                        "\"progress\":{\"done\":0,\"total\":0},\"created\":100,\"updated\":100}");
    cJSON_free(s);
    bson_t *running =
        BCON_NEW("_id", "65f1aa00bb11cc22dd33ee44", "tenant", "t", "state", "running", "owner",
                 "api-0", "lease_until", BCON_INT64(999), "progress", "{", "done", BCON_INT32(1000),
                 "total", BCON_INT64(2500), "}", "created", BCON_INT64(100), "updated",
                 BCON_INT64(200), "attempts", BCON_INT32(2));
    s = json_of(running);
    ck_assert_str_eq(s, "{\"id\":\"65f1aa00bb11cc22dd33ee44\",\"state\":\"running\","
                        "\"progress\":{\"done\":1000,\"total\":2500},\"created\":100,"
                        "\"updated\":200}");
    cJSON_free(s);
    bson_t *done =
        BCON_NEW("_id", "65f1aa00bb11cc22dd33ee44", "state", "done", "path",
                 "t/65f1aa00bb11cc22dd33ee44.jsonl", "progress", "{", "done", BCON_INT64(3),
                 "total", BCON_INT64(3), "}", "created", BCON_INT64(1), "updated", BCON_INT64(2));
    s = json_of(done);
    ck_assert_ptr_nonnull(strstr(s, "\"path\":\"t/65f1aa00bb11cc22dd33ee44.jsonl\""));
    ck_assert_ptr_null(strstr(s, "error"));
    cJSON_free(s);
    bson_t *failed = BCON_NEW("_id", "65f1aa00bb11cc22dd33ee44", "state", "failed", "error",
                              "disk full", "created", BCON_INT64(1), "updated", BCON_INT64(2));
    s = json_of(failed);
    ck_assert_str_eq(s, "{\"id\":\"65f1aa00bb11cc22dd33ee44\",\"state\":\"failed\","
                        "\"progress\":{\"done\":0,\"total\":0},\"error\":\"disk full\","
                        "\"created\":1,\"updated\":2}");
    cJSON_free(s);
    bson_destroy(queued);
    bson_destroy(running);
    bson_destroy(done);
    bson_destroy(failed);
}
END_TEST

START_TEST(test_ids)
{
    ck_assert(api_job_id_valid("65f1aa00bb11cc22dd33ee44"));
    ck_assert(!api_job_id_valid("65F1AA00BB11CC22DD33EE44"));
    ck_assert(!api_job_id_valid("65f1aa00bb11cc22dd33ee4"));
    ck_assert(!api_job_id_valid("65f1aa00bb11cc22dd33ee44a"));
    ck_assert(!api_job_id_valid("65f1aa00bb11cc22dd33ee4g"));
    ck_assert(!api_job_id_valid(""));
    ck_assert(!api_job_id_valid(NULL));
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("api_jobs");
    TCase *tc = tcase_create("jobs");
    tcase_add_test(tc, test_states);
    tcase_add_test(tc, test_ids);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
