/* Unit tests of common/err: every code has a distinct name and description, and values
 * outside the enum map to the documented fallbacks instead of reading past the table. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "tests/support/util.h"

static const struct {
    chat_err_t err;
    const char *name;
    const char *text;
} expected[] = {
    {CHAT_OK, "ok", "success"},
    {CHAT_ERR_INVALID, "invalid", "invalid argument or malformed input"},
    {CHAT_ERR_NOMEM, "nomem", "out of memory"},
    {CHAT_ERR_IO, "io", "input/output error"},
    {CHAT_ERR_CONFIG, "config", "bad configuration value"},
    {CHAT_ERR_KAFKA, "kafka", "Kafka failure"},
    {CHAT_ERR_MONGO, "mongo", "MongoDB failure"},
    {CHAT_ERR_REDIS, "redis", "Redis failure"},
    {CHAT_ERR_DUPLICATE, "duplicate", "duplicate key"},
    {CHAT_ERR_NOT_FOUND, "not_found", "not found"},
    {CHAT_ERR_TIMEOUT, "timeout", "timed out"},
    {CHAT_ERR_UNAUTHORIZED, "unauthorized", "unauthorized"},
    {CHAT_ERR_FORBIDDEN, "forbidden", "forbidden"},
    {CHAT_ERR_TOO_LARGE, "too_large", "over the size limit"},
    {CHAT_ERR_STOPPED, "stopped", "stopped before it was done"},
};

#define NEXPECTED (sizeof expected / sizeof expected[0])

START_TEST(test_every_code_listed)
{
    /* A new code added to the enum must be added here (and to err.c). */
    ck_assert_uint_eq(NEXPECTED, CHAT_ERR__COUNT);
    for (size_t i = 0; i < NEXPECTED; i++)
        ck_assert_int_eq(expected[i].err, (int)i);
}
END_TEST

START_TEST(test_names_and_strings)
{
    for (size_t i = 0; i < NEXPECTED; i++) {
        ck_assert_str_eq(chat_err_name(expected[i].err), expected[i].name);
        ck_assert_str_eq(chat_err_str(expected[i].err), expected[i].text);
    }
}
END_TEST

START_TEST(test_names_unique_snake_case)
{
    for (int i = 0; i < CHAT_ERR__COUNT; i++) {
        const char *name = chat_err_name((chat_err_t)i);
        ck_assert_ptr_nonnull(name);
        ck_assert_uint_gt(strlen(name), 0);
        ck_assert_msg(strspn(name, "abcdefghijklmnopqrstuvwxyz_") == strlen(name),
                      "name \"%s\" is not snake_case", name);
        ck_assert_uint_gt(strlen(chat_err_str((chat_err_t)i)), 0);
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(name, chat_err_name((chat_err_t)j));
            ck_assert_str_ne(chat_err_str((chat_err_t)i), chat_err_str((chat_err_t)j));
        }
    }
}
END_TEST

START_TEST(test_out_of_range)
{
    const chat_err_t bad[] = {CHAT_ERR__COUNT, (chat_err_t)(CHAT_ERR__COUNT + 1), (chat_err_t)1000,
                              (chat_err_t)-1};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_str_eq(chat_err_name(bad[i]), "unknown");
        ck_assert_str_eq(chat_err_str(bad[i]), "unknown error");
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_every_code_listed);
    tcase_add_test(tc, test_names_and_strings);
    tcase_add_test(tc, test_names_unique_snake_case);
    tcase_add_test(tc, test_out_of_range);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
