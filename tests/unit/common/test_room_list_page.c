/* Unit tests of common/room_list_page: the order (activity descending, then room),
 * paging with limit and cursor to the end without repeats, a cursor that outlived its room's
 * position, and cursors that are not valid. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "common/room_list_page.h"
#include "tests/support/util.h"

START_TEST(test_order)
{
    chat_room_rank_t r[] = {{"b", 5}, {"a", 5}, {"c", 9}, {"dm:x:y", 1}};
    chat_room_page_sort(r, 4);
    ck_assert_str_eq(r[0].room, "c");
    ck_assert_str_eq(r[1].room, "a");
    ck_assert_str_eq(r[2].room, "b");
    ck_assert_str_eq(r[3].room, "dm:x:y");
}
END_TEST

START_TEST(test_pages_cover_all_once)
{
    chat_room_rank_t r[7];
    char names[7][8];
    for (int i = 0; i < 7; i++) {
        snprintf(names[i], sizeof names[i], "r%d", i);
        r[i] = (chat_room_rank_t){names[i], i % 3 == 0 ? 100 : 50 + i};
    }
    chat_room_page_sort(r, 7);
    char cursor[CHAT_ROOM_CURSOR_MAX];
    const char *cur = NULL;
    size_t seen = 0, first, count;
    bool more = true;
    while (more) {
        ck_assert(chat_room_page_select(r, 7, cur, 3, &first, &count, &more));
        ck_assert_uint_eq(first, seen);
        seen += count;
        if (more) {
            chat_room_page_cursor_make(&r[first + count - 1], cursor, sizeof cursor);
            ck_assert(chat_room_page_cursor_valid(cursor));
            cur = cursor;
        }
    }
    ck_assert_uint_eq(seen, 7);
    /* a limit covering everything: one page */
    ck_assert(chat_room_page_select(r, 7, NULL, 50, &first, &count, &more));
    ck_assert_uint_eq(count, 7);
    ck_assert(!more);
}
END_TEST

START_TEST(test_cursor_is_a_position)
{
    chat_room_rank_t r[] = {{"a", 30}, {"b", 20}, {"c", 10}};
    size_t first, count;
    bool more;
    /* "b" moved (now at 20, the cursor says 25): the page continues after where 25/b sorts */
    ck_assert(chat_room_page_select(r, 3, "25.b", 10, &first, &count, &more));
    ck_assert_uint_eq(first, 1);
    ck_assert_uint_eq(count, 2);
    ck_assert(chat_room_page_select(r, 3, "20.b", 10, &first, &count, &more));
    ck_assert_uint_eq(first, 2);
    ck_assert(chat_room_page_select(r, 3, "0.zzz", 10, &first, &count, &more));
    ck_assert_uint_eq(count, 0);
    ck_assert(!more);
}
END_TEST

START_TEST(test_bad_cursors)
{
    static const char *const bad[] = {
        "", ".a", "12", "12.", "x.a", "01.a", "1.a b", "12345678901234567890.a", "-1.a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t first, count;
        bool more;
        chat_room_rank_t r[] = {{"a", 1}};
        ck_assert_msg(!chat_room_page_cursor_valid(bad[i]), "%s", bad[i]);
        ck_assert(!chat_room_page_select(r, 1, bad[i], 10, &first, &count, &more));
    }
    ck_assert(chat_room_page_cursor_valid("0.a"));
    ck_assert(chat_room_page_cursor_valid("1732406400123.dm:alice:bob"));
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("common_room_list_page");
    TCase *tc = tcase_create("room_list_page");
    tcase_add_test(tc, test_order);
    tcase_add_test(tc, test_pages_cover_all_once);
    tcase_add_test(tc, test_cursor_is_a_position);
    tcase_add_test(tc, test_bad_cursors);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
