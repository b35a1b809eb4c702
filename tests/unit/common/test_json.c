/* Unit tests of common/json.c, the helpers the codecs share: exact parsing of one value,
 * member tables (unknown and repeated keys refused), exact integers both ways, printing and
 * the reasons written into a caller's buffer. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/names.h"
#include "tests/support/util.h"

START_TEST(test_fail_writes_reason)
{
    char why[16];
    ck_assert_int_eq(chat_json_fail(why, sizeof why, "field '%s'", "x"), CHAT_ERR_INVALID);
    ck_assert_str_eq(why, "field 'x'");
    ck_assert_int_eq(chat_json_fail(why, 6, "%s", "truncated"), CHAT_ERR_INVALID);
    ck_assert_str_eq(why, "trunc");
    ck_assert_int_eq(chat_json_fail(NULL, 0, "nowhere"), CHAT_ERR_INVALID);
}
END_TEST

START_TEST(test_parse_exact)
{
    char why[64] = "";
    const char text[] = "{\"a\":1} \n\t";
    cJSON *root = chat_json_parse_exact(text, strlen(text), why, sizeof why);
    ck_assert_ptr_nonnull(root);
    cJSON_Delete(root);
    /* Only len bytes count: the rest of the buffer is not read. */
    const char prefix[] = "[1,2]garbage";
    root = chat_json_parse_exact(prefix, 5, why, sizeof why);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(cJSON_GetArraySize(root), 2);
    cJSON_Delete(root);
    ck_assert_ptr_null(chat_json_parse_exact(prefix, strlen(prefix), why, sizeof why));
    ck_assert_str_eq(why, "data after the JSON value");
    ck_assert_ptr_null(chat_json_parse_exact("{} {}", 5, why, sizeof why));
    ck_assert_str_eq(why, "data after the JSON value");
    ck_assert_ptr_null(chat_json_parse_exact("{\"a\":", 5, why, sizeof why));
    ck_assert_str_eq(why, "not JSON");
    ck_assert_ptr_null(chat_json_parse_exact("", 0, why, sizeof why));
    ck_assert_str_eq(why, "empty record");
    ck_assert_ptr_null(chat_json_parse_exact(NULL, 3, NULL, 0));
}
END_TEST

typedef struct row {
    const char *key;
    int other;
} row_t;

START_TEST(test_map_members)
{
    static const row_t rows[] = {{"a", 1}, {"b", 2}, {"c", 3}};
    static const char *const keys[] = {"x", "y"};
    cJSON *slots[3];
    char why[64] = "";
    cJSON *obj = cJSON_Parse("{\"c\":3,\"a\":1}");
    ck_assert_int_eq(chat_json_map_members(obj, rows, sizeof rows[0], 3, slots, "t", why, 64),
                     CHAT_OK);
    ck_assert_int_eq(slots[0]->valueint, 1);
    ck_assert_ptr_null(slots[1]);
    ck_assert_int_eq(slots[2]->valueint, 3);
    cJSON_Delete(obj);

    obj = cJSON_Parse("{\"y\":true}");
    ck_assert_int_eq(chat_json_map_members(obj, keys, sizeof keys[0], 2, slots, "t", why, 64),
                     CHAT_OK);
    ck_assert_ptr_null(slots[0]);
    ck_assert(cJSON_IsTrue(slots[1]));
    cJSON_Delete(obj);

    obj = cJSON_Parse("{\"a\":1,\"d\":4}");
    ck_assert_int_eq(chat_json_map_members(obj, rows, sizeof rows[0], 3, slots, "t", why, 64),
                     CHAT_ERR_INVALID);
    ck_assert_str_eq(why, "t: unknown field 'd'");
    cJSON_Delete(obj);

    obj = cJSON_Parse("{\"b\":1,\"b\":2}");
    ck_assert_int_eq(chat_json_map_members(obj, rows, sizeof rows[0], 3, slots, "u", why, 64),
                     CHAT_ERR_INVALID);
    ck_assert_str_eq(why, "u: repeated field 'b'");
    cJSON_Delete(obj);
}
END_TEST

START_TEST(test_read_int)
{
    static const struct {
        const char *text;
        bool ok;
        int64_t v;
    } cases[] = {
        {"0", true, 0},
        {"-7", true, -7},
        {"9007199254740991", true, CHAT_JSON_INT_MAX},
        {"-9007199254740991", true, -CHAT_JSON_INT_MAX},
        {"9007199254740992", false, 0},
        {"1.5", false, 0},
        {"1e3", true, 1000},
        {"\"1\"", false, 0},
        {"true", false, 0},
        {"null", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cJSON *item = cJSON_Parse(cases[i].text);
        ck_assert_ptr_nonnull(item);
        int64_t v = -12345;
        ck_assert_msg(chat_json_read_int(item, &v) == cases[i].ok, "%s", cases[i].text);
        if (cases[i].ok)
            ck_assert_msg(v == cases[i].v, "%s", cases[i].text);
        else
            ck_assert_msg(v == -12345, "%s: output written on failure", cases[i].text);
        cJSON_Delete(item);
    }
    ck_assert(!chat_json_read_int(NULL, NULL));
}
END_TEST

/* Integers go out as their digits, however large, and print() hands over the text. */
START_TEST(test_add_int_and_print)
{
    cJSON *obj = cJSON_CreateObject();
    ck_assert(chat_json_add_int(obj, "max", CHAT_JSON_INT_MAX));
    ck_assert(chat_json_add_int(obj, "big", INT64_MAX));
    ck_assert(chat_json_add_int(obj, "neg", -42));
    char *out = NULL;
    size_t len = 0;
    ck_assert_int_eq(chat_json_print(obj, &out, &len), CHAT_OK);
    ck_assert_str_eq(out, "{\"max\":9007199254740991,\"big\":9223372036854775807,\"neg\":-42}");
    ck_assert_uint_eq(len, strlen(out));
    free(out);
    ck_assert_int_eq(chat_json_print(cJSON_CreateArray(), &out, NULL), CHAT_OK);
    ck_assert_str_eq(out, "[]");
    free(out);
}
END_TEST

/* The in-place reader: strings as written with an escape flag, values skipped with their
 * syntax checked, escapes resolved to UTF-8 (surrogate pairs included, lone ones and NUL
 * refused). */
START_TEST(test_cursor)
{
    const char *text = " { \"a\\u00e9\" : [1, -0.5e+2, \"x\\\"}\", {\"k\":null}], \"b\":true } ";
    chat_json_cur_t c = {text, text + strlen(text)};
    ck_assert(chat_json_cur_take(&c, '{'));
    const char *s;
    size_t len;
    bool esc;
    ck_assert(chat_json_cur_string(&c, &s, &len, &esc));
    ck_assert(esc);
    ck_assert_uint_eq(len, 7);
    char out[16];
    size_t n = chat_json_unescape(s, len, out);
    ck_assert_uint_eq(n, 3);
    ck_assert(memcmp(out, "a\xc3\xa9", 3) == 0);
    ck_assert(chat_json_cur_take(&c, ':'));
    ck_assert(chat_json_cur_skip(&c, 8));
    ck_assert(chat_json_cur_take(&c, ','));
    ck_assert(chat_json_cur_string(&c, &s, &len, &esc));
    ck_assert(!esc && len == 1 && s[0] == 'b');
    ck_assert(chat_json_cur_take(&c, ':'));
    ck_assert(chat_json_cur_skip(&c, 0));
    ck_assert(chat_json_cur_take(&c, '}'));
    ck_assert_int_eq(chat_json_cur_peek(&c), '\0');

    const char *bad[] = {"[1,]", "{\"a\"}", "\"\\x\"", "\"a\x01\"", "01",    "-",
                         "1.",   "nul",     "[[1]]",   "\"\\u12\"", "\"open"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        chat_json_cur_t b = {bad[i], bad[i] + strlen(bad[i])};
        int depth = i == 8 ? 1 : 8; /* [[1]] is two levels deep */
        ck_assert_msg(!chat_json_cur_skip(&b, depth) || b.p != b.end, "accepted %s", bad[i]);
    }
    ck_assert_uint_eq(chat_json_unescape("\\ud83d\\udc4d", 12, out), 4);
    ck_assert(memcmp(out, "\xf0\x9f\x91\x8d", 4) == 0);
    ck_assert_uint_eq(chat_json_unescape("\\n\\t\\/", 6, out), 3);
    ck_assert(memcmp(out, "\n\t/", 3) == 0);
    ck_assert_uint_eq(chat_json_unescape("\\ud83d", 6, out), SIZE_MAX);
    ck_assert_uint_eq(chat_json_unescape("\\udc4d", 6, out), SIZE_MAX);
    ck_assert_uint_eq(chat_json_unescape("\\u0000", 6, out), SIZE_MAX);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_fail_writes_reason);
    tcase_add_test(tc, test_parse_exact);
    tcase_add_test(tc, test_map_members);
    tcase_add_test(tc, test_read_int);
    tcase_add_test(tc, test_add_int_and_print);
    tcase_add_test(tc, test_cursor);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
