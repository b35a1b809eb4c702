/* Unit tests of common/array.c: growth, doubling, no-op when there is room, overflow. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/array.h"
#include "tests/support/util.h"

START_TEST(test_grows_and_keeps_contents)
{
    int *v = NULL;
    size_t cap = 0;
    for (int i = 0; i < 1000; i++) {
        int *grown = chat_array_grow(v, &cap, (size_t)i + 1, sizeof *v);
        ck_assert_ptr_nonnull(grown);
        v = grown;
        v[i] = i;
        ck_assert_uint_ge(cap, (size_t)i + 1);
    }
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(v[i], i);
    ck_assert_uint_eq(cap, 1024); /* 16 doubled: no more than twice what was needed */
    free(v);
}
END_TEST

START_TEST(test_room_left_is_a_no_op)
{
    size_t cap = 0;
    char *v = chat_array_grow(NULL, &cap, 1, 1);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(cap, 16);
    ck_assert_ptr_eq(chat_array_grow(v, &cap, 16, 1), v);
    ck_assert_uint_eq(cap, 16);
    char *big = chat_array_grow(v, &cap, 100, 1); /* several doublings at once */
    ck_assert_ptr_nonnull(big);
    ck_assert_uint_eq(cap, 128);
    free(big);
}
END_TEST

START_TEST(test_overflow_refused_and_unchanged)
{
    size_t cap = 0;
    long *v = chat_array_grow(NULL, &cap, 4, sizeof *v);
    ck_assert_ptr_nonnull(v);
    ck_assert_ptr_null(chat_array_grow(v, &cap, SIZE_MAX / 4, sizeof *v));
    ck_assert_ptr_null(chat_array_grow(v, &cap, SIZE_MAX, 1));
    ck_assert_uint_eq(cap, 16);
    v[15] = 7; /* still the caller's, still usable */
    free(v);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("array");
    TCase *tc = tcase_create("grow");
    tcase_add_test(tc, test_grows_and_keeps_contents);
    tcase_add_test(tc, test_room_left_is_a_no_op);
    tcase_add_test(tc, test_overflow_refused_and_unchanged);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
