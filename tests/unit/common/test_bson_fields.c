/* Unit tests of common/bson_fields: each reader accepts exactly the types it names and treats
 * any other type, or a missing key, as absent. */
#include <check.h>

#include "common/bson_fields.h"
#include "tests/support/util.h"

/* A document with one field of each type the readers meet. */
static bson_t *sample(void)
{
    bson_t *doc = bson_new();
    BSON_APPEND_UTF8(doc, "s", "text");
    BSON_APPEND_BOOL(doc, "t", true);
    BSON_APPEND_BOOL(doc, "f", false);
    BSON_APPEND_INT32(doc, "i32", -7);
    BSON_APPEND_INT64(doc, "i64", INT64_C(1) << 40);
    BSON_APPEND_DOUBLE(doc, "d", 3.9);
    BSON_APPEND_DATE_TIME(doc, "date", 1700000000123);
    return doc;
}

START_TEST(test_str)
{
    bson_t *doc = sample();
    ck_assert_str_eq(chat_bson_str(doc, "s"), "text");
    ck_assert_ptr_null(chat_bson_str(doc, "i32"));
    ck_assert_ptr_null(chat_bson_str(doc, "missing"));
    bson_destroy(doc);
}
END_TEST

START_TEST(test_true)
{
    bson_t *doc = sample();
    ck_assert(chat_bson_true(doc, "t"));
    ck_assert(!chat_bson_true(doc, "f"));
    ck_assert(!chat_bson_true(doc, "i32"));
    ck_assert(!chat_bson_true(doc, "missing"));
    bson_destroy(doc);
}
END_TEST

START_TEST(test_int64)
{
    bson_t *doc = sample();
    int64_t v = 99;
    ck_assert(chat_bson_int64(doc, "i32", &v));
    ck_assert_int_eq(v, -7);
    ck_assert(chat_bson_int64(doc, "i64", &v));
    ck_assert_int_eq(v, INT64_C(1) << 40);
    v = 99;
    ck_assert(!chat_bson_int64(doc, "d", &v));
    ck_assert(!chat_bson_int64(doc, "date", &v));
    ck_assert(!chat_bson_int64(doc, "s", &v));
    ck_assert(!chat_bson_int64(doc, "missing", &v));
    ck_assert_int_eq(v, 99);
    ck_assert_int_eq(chat_bson_int64_or(doc, "i32", 5), -7);
    ck_assert_int_eq(chat_bson_int64_or(doc, "d", 5), 5);
    ck_assert_int_eq(chat_bson_int64_or(doc, "missing", 5), 5);
    bson_destroy(doc);
}
END_TEST

START_TEST(test_number)
{
    bson_t *doc = sample();
    ck_assert_int_eq(chat_bson_number_or(doc, "i32", 5), -7);
    ck_assert_int_eq(chat_bson_number_or(doc, "i64", 5), INT64_C(1) << 40);
    ck_assert_int_eq(chat_bson_number_or(doc, "d", 5), 3);
    ck_assert_int_eq(chat_bson_number_or(doc, "date", 5), 5);
    ck_assert_int_eq(chat_bson_number_or(doc, "s", 5), 5);
    ck_assert_int_eq(chat_bson_number_or(doc, "missing", 5), 5);
    bson_destroy(doc);
}
END_TEST

START_TEST(test_number_or_date)
{
    bson_t *doc = sample();
    int64_t v = 99;
    ck_assert(chat_bson_number_or_date(doc, "i32", &v));
    ck_assert_int_eq(v, -7);
    ck_assert(chat_bson_number_or_date(doc, "d", &v));
    ck_assert_int_eq(v, 3);
    ck_assert(chat_bson_number_or_date(doc, "date", &v));
    ck_assert_int_eq(v, 1700000000123);
    v = 99;
    ck_assert(!chat_bson_number_or_date(doc, "s", &v));
    ck_assert(!chat_bson_number_or_date(doc, "t", &v));
    ck_assert(!chat_bson_number_or_date(doc, "missing", &v));
    ck_assert_int_eq(v, 99);
    bson_destroy(doc);
}
END_TEST

START_TEST(test_message_id)
{
    char id[25];
    bson_t *doc = BCON_NEW("_id", BCON_UTF8("65f1c0ffee0123456789abcd"));
    ck_assert(chat_bson_message_id(doc, id));
    ck_assert_str_eq(id, "65f1c0ffee0123456789abcd");
    bson_destroy(doc);
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "65f1c0ffee0123456789abce");
    doc = BCON_NEW("_id", BCON_OID(&oid));
    ck_assert(chat_bson_message_id(doc, id));
    ck_assert_str_eq(id, "65f1c0ffee0123456789abce");
    bson_destroy(doc);
    doc = BCON_NEW("_id", BCON_UTF8("65F1C0FFEE0123456789ABCD")); /* not lowercase */
    ck_assert(!chat_bson_message_id(doc, id));
    bson_destroy(doc);
    doc = BCON_NEW("_id", BCON_INT32(7));
    ck_assert(!chat_bson_message_id(doc, id));
    bson_destroy(doc);
    doc = bson_new();
    ck_assert(!chat_bson_message_id(doc, id));
    bson_destroy(doc);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("common_bson_fields");
    TCase *tc = tcase_create("bson_fields");
    tcase_add_test(tc, test_str);
    tcase_add_test(tc, test_true);
    tcase_add_test(tc, test_int64);
    tcase_add_test(tc, test_number);
    tcase_add_test(tc, test_number_or_date);
    tcase_add_test(tc, test_message_id);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
