/* Unit tests of common/unread's pure part: which msg frames count as unread (others'
 * messages, not deleted, not removed), and when a recent-history snapshot answers the count
 * exactly (trusted, holding every seq above the mark up to the latest). */
#include <check.h>
#include <string.h>

#include "common/unread.h"
#include "tests/support/util.h"

#define FRAME(seq, from, extra)                                                                    \
    "{\"type\":\"msg\",\"room\":\"r\",\"seq\":" #seq ",\"id\":\"65f1c0ffee0123456789abcd\","       \
    "\"from\":\"" from "\",\"text\":\"x\",\"ts\":1" extra "}"

static chat_recent_entry_t entry(int64_t seq, const char *frame)
{
    return (chat_recent_entry_t){.seq = seq, .frame = frame, .len = strlen(frame)};
}

START_TEST(test_frame_counts)
{
    const char *mine = FRAME(1, "me", ""), *theirs = FRAME(2, "you", "");
    const char *deleted = FRAME(3, "you", ",\"deleted\":true");
    const char *removed = FRAME(4, "you", ",\"removed\":true,\"reason\":\"spam\"");
    ck_assert(!chat_unread_frame_counts(mine, strlen(mine), "me"));
    ck_assert(chat_unread_frame_counts(theirs, strlen(theirs), "me"));
    ck_assert(!chat_unread_frame_counts(deleted, strlen(deleted), "me"));
    ck_assert(!chat_unread_frame_counts(removed, strlen(removed), "me"));
}
END_TEST

START_TEST(test_decide)
{
    chat_recent_entry_t e[] = {entry(5, FRAME(5, "you", "")), entry(4, FRAME(4, "me", "")),
                               entry(3, FRAME(3, "you", ",\"deleted\":true")),
                               entry(2, FRAME(2, "you", ""))};
    chat_recent_view_t v = {
        .exists = true, .marker = "run", .run_id = "run", .top = 5, .entries = e, .n = 4};
    int64_t unread = -1;
    ck_assert_int_eq(chat_unread_decide(&v, 1, 5, "me", &unread), CHAT_RECENT_HIT);
    ck_assert_int_eq(unread, 2);
    ck_assert_int_eq(chat_unread_decide(&v, 3, 5, "me", &unread), CHAT_RECENT_HIT);
    ck_assert_int_eq(unread, 1);
    /* seq 1 is not held: a gap */
    ck_assert_int_eq(chat_unread_decide(&v, 0, 5, "me", &unread), CHAT_RECENT_GAP);
    /* a latest the set does not reach */
    ck_assert_int_eq(chat_unread_decide(&v, 1, 6, "me", &unread), CHAT_RECENT_GAP);
    v.marker = "other";
    ck_assert_int_eq(chat_unread_decide(&v, 1, 5, "me", &unread), CHAT_RECENT_UNTRUSTED);
    v.exists = false;
    ck_assert_int_eq(chat_unread_decide(&v, 1, 5, "me", &unread), CHAT_RECENT_MISS);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("common_unread");
    TCase *tc = tcase_create("unread");
    tcase_add_test(tc, test_frame_counts);
    tcase_add_test(tc, test_decide);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
