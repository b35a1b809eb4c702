/* Unit tests of common/hash.h: FNV-1a 64 as published (the reference test vectors), and
 * that hashing in pieces equals hashing the whole string. */
#include <check.h>
#include <stdlib.h>

#include "common/hash.h"
#include "tests/support/util.h"

START_TEST(test_reference_vectors)
{
    ck_assert_uint_eq(chat_hash(""), UINT64_C(0xcbf29ce484222325));
    ck_assert_uint_eq(chat_hash("a"), UINT64_C(0xaf63dc4c8601ec8c));
    ck_assert_uint_eq(chat_hash("foobar"), UINT64_C(0x85944171f73967e8));
    ck_assert_uint_eq(CHAT_HASH_INIT, UINT64_C(0xcbf29ce484222325));
}
END_TEST

START_TEST(test_pieces)
{
    uint64_t h =
        chat_hash_str(chat_hash_byte(chat_hash_str(CHAT_HASH_INIT, "acme"), '/'), "general");
    ck_assert_uint_eq(h, chat_hash("acme/general"));
    ck_assert_uint_ne(chat_hash("acme/general"), chat_hash("acme/random"));
    /* bytes above 0x7f (UTF-8) count as unsigned */
    ck_assert_uint_eq(chat_hash("\xc3\xa9"),
                      chat_hash_byte(chat_hash_byte(CHAT_HASH_INIT, 0xc3), 0xa9));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("hash");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_reference_vectors);
    tcase_add_test(tc, test_pieces);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
