/* Unit tests of services/message/reads: a read beyond its room's latest seq at its place in
 * the room's order is rejected (messages the batch stored after it do not count), a user's
 * reads of one room collapse to the highest (the first of equal ones), and reads of other
 * users or rooms stay apart. */
#include <check.h>
#include <string.h>

#include "services/message/reads.h"
#include "tests/support/util.h"

#define R(room, user, seq, after)                                                                  \
    {                                                                                              \
        "t1", (room), (user), (seq), 100, (after)                                                  \
    }

START_TEST(test_beyond_latest_rejected)
{
    message_read_in_t in[] = {R("a", "u", 5, 0), R("a", "v", 6, 0), R("a", "w", 6, 1)};
    int64_t latest[] = {5, 5, 6};
    message_read_fate_t fate[3];
    message_read_mark_t marks[3];
    size_t nmarks = 9, mark_of[3];
    ck_assert_int_eq(message_reads_decide(in, latest, 3, fate, marks, &nmarks, mark_of), CHAT_OK);
    ck_assert_int_eq(fate[0], MESSAGE_READ_MARK);
    ck_assert_int_eq(fate[1], MESSAGE_READ_BEYOND);
    /* seq 6 was stored after w's read: at its place the room's latest was 5 */
    ck_assert_int_eq(fate[2], MESSAGE_READ_BEYOND);
    ck_assert_uint_eq(nmarks, 1);
    ck_assert_str_eq(marks[0].user, "u");
    ck_assert_int_eq(marks[0].seq, 5);
    ck_assert_uint_eq(mark_of[0], 0);
}
END_TEST

START_TEST(test_collapse_to_highest)
{
    message_read_in_t in[] = {R("a", "u", 3, 0), R("a", "u", 7, 0), R("a", "u", 4, 0),
                              R("b", "u", 2, 0), R("a", "v", 2, 0), R("b", "u", 2, 0)};
    int64_t latest[] = {9, 9, 9, 9, 9, 9};
    message_read_fate_t fate[6];
    message_read_mark_t marks[6];
    size_t nmarks = 0, mark_of[6];
    ck_assert_int_eq(message_reads_decide(in, latest, 6, fate, marks, &nmarks, mark_of), CHAT_OK);
    ck_assert_int_eq(fate[0], MESSAGE_READ_SUPERSEDED);
    ck_assert_int_eq(fate[1], MESSAGE_READ_MARK);
    ck_assert_int_eq(fate[2], MESSAGE_READ_SUPERSEDED);
    ck_assert_int_eq(fate[3], MESSAGE_READ_MARK);
    ck_assert_int_eq(fate[4], MESSAGE_READ_MARK);
    ck_assert_int_eq(fate[5], MESSAGE_READ_SUPERSEDED); /* equal: the first one is the mark */
    ck_assert_uint_eq(nmarks, 3);
    ck_assert_int_eq(marks[mark_of[1]].seq, 7);
    ck_assert_str_eq(marks[mark_of[3]].room, "b");
    ck_assert_str_eq(marks[mark_of[4]].user, "v");
    ck_assert_int_eq(marks[mark_of[1]].ts, 100);
}
END_TEST

START_TEST(test_empty)
{
    size_t nmarks = 5;
    ck_assert_int_eq(message_reads_decide(NULL, NULL, 0, NULL, NULL, &nmarks, NULL), CHAT_OK);
    ck_assert_uint_eq(nmarks, 0);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("message_reads");
    TCase *tc = tcase_create("reads");
    tcase_add_test(tc, test_beyond_latest_rejected);
    tcase_add_test(tc, test_collapse_to_highest);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
