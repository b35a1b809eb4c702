/* Unit tests of common/log: every line is one valid JSON object (checked with cJSON), levels
 * filter, strings are escaped, field types map to JSON types, and an oversized line is cut
 * but stays valid JSON with "truncated":true. Output is captured through a pipe. */
#include <check.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "tests/support/util.h"

/* The logger's line buffer (log.c LOG_LINE_MAX): no line may be longer. */
#define LINE_MAX_BYTES 8192

static int capture[2] = {-1, -1};

static void capture_setup(void)
{
    ck_assert_int_eq(pipe(capture), 0);
    ck_assert_int_eq(fcntl(capture[0], F_SETFL, O_NONBLOCK), 0);
    chat_log_init("logtest", CHAT_LOG_DEBUG);
    chat_log_set_fd(capture[1]);
}

static void capture_teardown(void)
{
    chat_log_set_fd(2);
    close(capture[0]);
    close(capture[1]);
}

/* Everything logged since the last call, NUL-terminated (malloc'd). */
static char *captured(void)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    for (;;) {
        ssize_t n = read(capture[0], buf + len, cap - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        ck_assert_uint_lt(len, cap);
    }
    buf[len] = '\0';
    return buf;
}

/* Exactly one line was logged: returns it parsed (caller deletes); *raw gets the text. */
static cJSON *one_line(char **raw)
{
    char *text = captured();
    size_t len = strlen(text);
    ck_assert_msg(len > 0, "nothing was logged");
    ck_assert_msg(text[len - 1] == '\n', "line does not end with a newline");
    ck_assert_msg(strchr(text, '\n') == text + len - 1, "more than one line: %s", text);
    ck_assert_uint_le(len, LINE_MAX_BYTES);
    cJSON *json = cJSON_Parse(text);
    ck_assert_msg(json != NULL, "not JSON: %s", text);
    ck_assert(cJSON_IsObject(json));
    if (raw != NULL)
        *raw = text;
    else
        free(text);
    return json;
}

static const char *str_field(const cJSON *json, const char *key)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(json, key);
    ck_assert_msg(cJSON_IsString(item), "\"%s\" is not a string", key);
    return item->valuestring;
}

static void assert_nothing_logged(void)
{
    char *text = captured();
    ck_assert_msg(text[0] == '\0', "unexpected output: %s", text);
    free(text);
}

START_TEST(test_line_shape)
{
    chat_log_info("consumer assigned", CHAT_F_STR("topic", "chat.inbound"),
                  CHAT_F_INT("partitions", 4));
    cJSON *json = one_line(NULL);
    const char *ts = str_field(json, "ts");
    /* 2026-11-24T10:00:00.123Z */
    ck_assert_uint_eq(strlen(ts), 24);
    ck_assert_int_eq(ts[10], 'T');
    ck_assert_int_eq(ts[19], '.');
    ck_assert_int_eq(ts[23], 'Z');
    ck_assert_str_eq(str_field(json, "level"), "info");
    ck_assert_str_eq(str_field(json, "svc"), "logtest");
    ck_assert_str_eq(str_field(json, "msg"), "consumer assigned");
    ck_assert_str_eq(str_field(json, "topic"), "chat.inbound");
    ck_assert_int_eq(cJSON_GetObjectItem(json, "partitions")->valueint, 4);
    ck_assert(cJSON_GetObjectItem(json, "truncated") == NULL);
    cJSON_Delete(json);
}
END_TEST

START_TEST(test_field_types)
{
    chat_log_warn("types", CHAT_F_STR("s", "text"), CHAT_F_STR("null_s", NULL),
                  CHAT_F_INT("i", -1234567890123LL), CHAT_F_DBL("d", 2.5), CHAT_F_DBL("nan", NAN),
                  CHAT_F_DBL("inf", INFINITY), CHAT_F_BOOL("t", true), CHAT_F_BOOL("f", false),
                  CHAT_F_ERR(CHAT_ERR_TIMEOUT));
    cJSON *json = one_line(NULL);
    ck_assert_str_eq(str_field(json, "level"), "warn");
    ck_assert_str_eq(str_field(json, "s"), "text");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(json, "null_s")));
    const cJSON *i = cJSON_GetObjectItem(json, "i");
    ck_assert(cJSON_IsNumber(i));
    ck_assert(i->valuedouble == -1234567890123.0);
    const cJSON *d = cJSON_GetObjectItem(json, "d");
    ck_assert(cJSON_IsNumber(d));
    ck_assert(d->valuedouble == 2.5);
    /* JSON has no NaN or Infinity. */
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(json, "nan")));
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(json, "inf")));
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(json, "t")));
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(json, "f")));
    ck_assert_str_eq(str_field(json, "err"), "timeout");
    cJSON_Delete(json);
}
END_TEST

START_TEST(test_level_filter)
{
    chat_log_set_level(CHAT_LOG_WARN);
    ck_assert(!chat_log_enabled(CHAT_LOG_DEBUG));
    ck_assert(!chat_log_enabled(CHAT_LOG_INFO));
    ck_assert(chat_log_enabled(CHAT_LOG_WARN));
    ck_assert(chat_log_enabled(CHAT_LOG_ERROR));
    chat_log_debug("hidden debug");
    chat_log_info("hidden info", CHAT_F_INT("n", 1));
    assert_nothing_logged();

    chat_log_error("shown", CHAT_F_INT("n", 2));
    cJSON *json = one_line(NULL);
    ck_assert_str_eq(str_field(json, "level"), "error");
    ck_assert_str_eq(str_field(json, "msg"), "shown");
    cJSON_Delete(json);

    chat_log_set_level(CHAT_LOG_OFF);
    ck_assert(!chat_log_enabled(CHAT_LOG_ERROR));
    chat_log_error("hidden error");
    assert_nothing_logged();

    chat_log_set_level(CHAT_LOG_DEBUG);
    chat_log_debug("debug now shown");
    json = one_line(NULL);
    ck_assert_str_eq(str_field(json, "level"), "debug");
    cJSON_Delete(json);
}
END_TEST

START_TEST(test_level_parse)
{
    static const struct {
        const char *name;
        chat_log_level_t level;
    } good[] = {{"debug", CHAT_LOG_DEBUG}, {"info", CHAT_LOG_INFO}, {"warn", CHAT_LOG_WARN},
                {"error", CHAT_LOG_ERROR}, {"off", CHAT_LOG_OFF},   {"WARN", CHAT_LOG_WARN},
                {"Info", CHAT_LOG_INFO}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        chat_log_level_t level = CHAT_LOG_OFF;
        ck_assert_int_eq(chat_log_level_parse(good[i].name, &level), CHAT_OK);
        ck_assert_int_eq(level, good[i].level);
    }
    const char *bad[] = {"verbose", "", "warning", "info ", NULL};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chat_log_level_t level = CHAT_LOG_INFO;
        ck_assert_int_eq(chat_log_level_parse(bad[i], &level), CHAT_ERR_INVALID);
        ck_assert_int_eq(level, CHAT_LOG_INFO);
    }
}
END_TEST

START_TEST(test_escaping)
{
    const char *nasty = "quote\" backslash\\ newline\n cr\r tab\t ctl\x01\x1f end \xc3\xa9";
    chat_log_info(nasty, CHAT_F_STR("value", nasty), CHAT_F_STR("key\"\n", "k"));
    char *raw = NULL;
    cJSON *json = one_line(&raw);
    /* The strings survive the round trip exactly. */
    ck_assert_str_eq(str_field(json, "msg"), nasty);
    ck_assert_str_eq(str_field(json, "value"), nasty);
    ck_assert_str_eq(str_field(json, "key\"\n"), "k");
    ck_assert_ptr_nonnull(strstr(raw, "\\u0001"));
    ck_assert_ptr_nonnull(strstr(raw, "\\u001f"));
    ck_assert_ptr_nonnull(strstr(raw, "\\\""));
    ck_assert_ptr_nonnull(strstr(raw, "\\n"));
    ck_assert_ptr_nonnull(strstr(raw, "\xc3\xa9")); /* UTF-8 passes through */
    cJSON_Delete(json);
    free(raw);
}
END_TEST

/* A value of n copies of c, logged with a field after it; returns the parsed line. */
static cJSON *log_huge(char c, size_t n)
{
    char *big = malloc(n + 1);
    ck_assert_ptr_nonnull(big);
    memset(big, c, n);
    big[n] = '\0';
    chat_log_info("huge", CHAT_F_STR("big", big), CHAT_F_INT("after", 7));
    free(big);
    cJSON *json = one_line(NULL);
    ck_assert_str_eq(str_field(json, "msg"), "huge");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(json, "truncated")));
    return json;
}

START_TEST(test_truncation_plain)
{
    cJSON *json = log_huge('x', 20000);
    const char *big = str_field(json, "big");
    size_t len = strlen(big);
    ck_assert_uint_gt(len, 1000);
    ck_assert_uint_lt(len, 20000);
    ck_assert_uint_eq(strspn(big, "x"), len);
    cJSON_Delete(json);
}
END_TEST

START_TEST(test_truncation_escaped)
{
    /* Escapes make the JSON longer than the input: cuts must not split an escape. */
    const char chars[] = {'"', '\\', '\n', '\x01'};
    for (size_t i = 0; i < sizeof chars; i++) {
        cJSON *json = log_huge(chars[i], 9000);
        const char *big = str_field(json, "big");
        ck_assert_uint_gt(strlen(big), 100);
        ck_assert_uint_eq(strspn(big, (char[]){chars[i], '\0'}), strlen(big));
        cJSON_Delete(json);
    }
}
END_TEST

START_TEST(test_fields_array)
{
    chat_log_field_t f[70];
    char keys[70][8];
    for (int i = 0; i < 70; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        f[i] = CHAT_F_INT(keys[i], i);
    }
    f[3] = CHAT_F_END; /* skipped, not an end: the count says where the array ends */
    errno = EAGAIN;
    chat_log_fields(CHAT_LOG_INFO, "many", f, 70);
    ck_assert_int_eq(errno, EAGAIN);
    cJSON *json = one_line(NULL);
    ck_assert_str_eq(str_field(json, "msg"), "many");
    ck_assert_int_eq(cJSON_GetObjectItem(json, "k0")->valueint, 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(json, "k3"));
    ck_assert_int_eq(cJSON_GetObjectItem(json, "k69")->valueint, 69);
    cJSON_Delete(json);

    chat_log_set_level(CHAT_LOG_WARN);
    chat_log_fields(CHAT_LOG_INFO, "filtered", f, 70);
    assert_nothing_logged();
    chat_log_fields(CHAT_LOG_ERROR, "none", NULL, 0);
    json = one_line(NULL);
    ck_assert_str_eq(str_field(json, "level"), "error");
    cJSON_Delete(json);
}
END_TEST

START_TEST(test_errno_preserved)
{
    errno = ENOENT;
    chat_log_info("keeps errno");
    ck_assert_int_eq(errno, ENOENT);
    cJSON_Delete(one_line(NULL));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, capture_setup, capture_teardown);
    tcase_add_test(tc, test_line_shape);
    tcase_add_test(tc, test_field_types);
    tcase_add_test(tc, test_level_filter);
    tcase_add_test(tc, test_level_parse);
    tcase_add_test(tc, test_escaping);
    tcase_add_test(tc, test_truncation_plain);
    tcase_add_test(tc, test_truncation_escaped);
    tcase_add_test(tc, test_fields_array);
    tcase_add_test(tc, test_errno_preserved);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
