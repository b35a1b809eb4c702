/* Unit tests of common/strmap: put/get/replace/remove, growth past many
 * entries, iteration, clearing, and that keys are copied. */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/strmap.h"
#include "tests/support/util.h"

START_TEST(test_put_get_remove)
{
    chat_strmap_t *m = chat_strmap_new();
    ck_assert_ptr_nonnull(m);
    int a = 1, b = 2;
    char key[16] = "alpha";
    ck_assert(chat_strmap_put(m, key, &a));
    strcpy(key, "zzzzz"); /* the map keeps its own copy */
    ck_assert_ptr_eq(chat_strmap_get(m, "alpha"), &a);
    ck_assert_ptr_null(chat_strmap_get(m, "zzzzz"));
    ck_assert(chat_strmap_put(m, "alpha", &b));
    ck_assert_ptr_eq(chat_strmap_get(m, "alpha"), &b);
    ck_assert_uint_eq(chat_strmap_count(m), 1);
    ck_assert_ptr_eq(chat_strmap_remove(m, "alpha"), &b);
    ck_assert_ptr_null(chat_strmap_remove(m, "alpha"));
    ck_assert_uint_eq(chat_strmap_count(m), 0);
    chat_strmap_free(m);
    chat_strmap_free(NULL);
}
END_TEST

static void sum_cb(const char *key, void *value, void *ud)
{
    (void)key;
    *(uintptr_t *)ud += (uintptr_t)value;
}

START_TEST(test_many_entries)
{
    chat_strmap_t *m = chat_strmap_new();
    char key[32];
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof key, "tenant/room-%lu", (unsigned long)i);
        ck_assert(chat_strmap_put(m, key, (void *)i));
    }
    ck_assert_uint_eq(chat_strmap_count(m), 5000);
    for (uintptr_t i = 1; i <= 5000; i += 7) {
        snprintf(key, sizeof key, "tenant/room-%lu", (unsigned long)i);
        ck_assert_ptr_eq(chat_strmap_get(m, key), (void *)i);
    }
    uintptr_t sum = 0;
    chat_strmap_foreach(m, sum_cb, &sum);
    ck_assert_uint_eq(sum, 5000u * 5001u / 2u);
    for (uintptr_t i = 1; i <= 5000; i += 2) {
        snprintf(key, sizeof key, "tenant/room-%lu", (unsigned long)i);
        ck_assert_ptr_eq(chat_strmap_remove(m, key), (void *)i);
    }
    ck_assert_uint_eq(chat_strmap_count(m), 2500);
    ck_assert_ptr_null(chat_strmap_get(m, "tenant/room-1"));
    ck_assert_ptr_eq(chat_strmap_get(m, "tenant/room-2"), (void *)2);
    chat_strmap_free(m);
}
END_TEST

START_TEST(test_clear_keeps_map_usable)
{
    chat_strmap_t *m = chat_strmap_new();
    char key[32];
    for (uintptr_t i = 1; i <= 100; i++) {
        snprintf(key, sizeof key, "k%lu", (unsigned long)i);
        ck_assert(chat_strmap_put(m, key, (void *)i));
    }
    chat_strmap_clear(m);
    ck_assert_uint_eq(chat_strmap_count(m), 0);
    ck_assert_ptr_null(chat_strmap_get(m, "k1"));
    uintptr_t sum = 0;
    chat_strmap_foreach(m, sum_cb, &sum);
    ck_assert_uint_eq(sum, 0);
    ck_assert(chat_strmap_put(m, "k1", (void *)7));
    ck_assert_ptr_eq(chat_strmap_get(m, "k1"), (void *)7);
    ck_assert_uint_eq(chat_strmap_count(m), 1);
    chat_strmap_clear(m);
    chat_strmap_clear(m);
    chat_strmap_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("common_strmap");
    TCase *tc = tcase_create("strmap");
    tcase_add_test(tc, test_put_get_remove);
    tcase_add_test(tc, test_many_entries);
    tcase_add_test(tc, test_clear_keeps_map_usable);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
