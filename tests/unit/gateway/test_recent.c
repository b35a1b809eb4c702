/* Unit tests of services/gateway/recent, its decisions: when one snapshot of a room's recent
 * history answers a join (latest, the replay after since) or a history page (the page, more)
 * exactly as MongoDB would, and why not otherwise: no key (miss), a marker that is not the
 * run_id of the server answering (untrusted), a hole, a trimmed or duplicated seq (gap). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/gateway/recent.h"
#include "tests/support/util.h"

#define RUN_ID "4c7a8c1e0f2b3d4a5e6f708192a3b4c5d6e7f809"
#define MAX_ENTRIES 256

static chat_recent_entry_t entries[MAX_ENTRIES];

/* A trusted view of a room whose set tops at top, with the entries hi, hi - 1, ..., lo
 * (newest first, as the range query returns them); none if hi < lo. */
static chat_recent_view_t view(int64_t top, int64_t hi, int64_t lo)
{
    size_t n = 0;
    for (int64_t s = hi; s >= lo && hi >= 1; s--) {
        ck_assert_uint_lt(n, MAX_ENTRIES);
        entries[n++] = (chat_recent_entry_t){.seq = s, .frame = "{}", .len = 2};
    }
    return (chat_recent_view_t){
        .exists = true, .marker = RUN_ID, .run_id = RUN_ID, .top = top, .entries = entries, .n = n};
}

/* Runs the join decision; *count is left at 999 unless HIT. */
static chat_recent_result_t join(const chat_recent_view_t *v, bool has_since, int64_t since,
                                 size_t replay_max, int64_t *latest, size_t *count)
{
    *latest = -1;
    *count = 999;
    return gw_recent_decide_join(v, has_since, since, replay_max, latest, count);
}

START_TEST(test_cold_and_untrusted)
{
    int64_t latest;
    size_t count;
    bool more;
    chat_recent_view_t v = view(10, 10, 1);
    v.exists = false;
    ck_assert_int_eq(join(&v, true, 5, 500, &latest, &count), CHAT_RECENT_MISS);
    ck_assert_int_eq(gw_recent_decide_page(&v, 0, 50, &count, &more), CHAT_RECENT_MISS);

    v = view(10, 10, 1);
    v.marker = NULL; /* no marker at all (or several) */
    ck_assert_int_eq(join(&v, false, 0, 500, &latest, &count), CHAT_RECENT_UNTRUSTED);
    v.marker = "0000000000000000000000000000000000000000"; /* another server's life */
    ck_assert_int_eq(join(&v, true, 5, 500, &latest, &count), CHAT_RECENT_UNTRUSTED);
    ck_assert_int_eq(gw_recent_decide_page(&v, 0, 50, &count, &more), CHAT_RECENT_UNTRUSTED);
    /* A server that tells no run_id vouches for nothing, even an empty marker. */
    v.marker = "";
    v.run_id = "";
    ck_assert_int_eq(join(&v, false, 0, 500, &latest, &count), CHAT_RECENT_UNTRUSTED);
    ck_assert_int_eq(latest, -1);
    ck_assert_uint_eq(count, 999);
}
END_TEST

/* Only the marker: a room known to hold no message. */
START_TEST(test_empty_room)
{
    int64_t latest;
    size_t count;
    bool more = true;
    chat_recent_view_t v = view(0, 0, 1);
    ck_assert_int_eq(join(&v, false, 0, 500, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_int_eq(latest, 0);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(join(&v, true, 0, 500, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(join(&v, true, 7, 500, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_int_eq(latest, 0);
    ck_assert_int_eq(gw_recent_decide_page(&v, 0, 50, &count, &more), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 0);
    ck_assert(!more);
}
END_TEST

START_TEST(test_join_without_since_needs_only_top)
{
    int64_t latest;
    size_t count;
    chat_recent_view_t v = view(1234, 0, 1); /* no entries asked for */
    ck_assert_int_eq(join(&v, false, 0, 500, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_int_eq(latest, 1234);
    ck_assert_uint_eq(count, 0);
}
END_TEST

/* top <= since: nothing was missed (a client may even hold a since above top). */
START_TEST(test_join_nothing_missed)
{
    int64_t latest;
    size_t count;
    chat_recent_view_t v = view(40, 0, 1);
    ck_assert_int_eq(join(&v, true, 40, 500, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_int_eq(latest, 40);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(join(&v, true, 99, 500, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_int_eq(latest, 40);
    ck_assert_uint_eq(count, 0);
}
END_TEST

START_TEST(test_join_replays_what_was_missed)
{
    int64_t latest;
    size_t count;
    chat_recent_view_t v = view(35, 35, 11);
    ck_assert_int_eq(join(&v, true, 10, 500, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_int_eq(latest, 35);
    ck_assert_uint_eq(count, 25);
    /* since 0: everything, down to seq 1. */
    v = view(38, 38, 1);
    ck_assert_int_eq(join(&v, true, 0, 500, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 38);
    /* A replay of 0 messages needs no entry. */
    v = view(38, 0, 1);
    ck_assert_int_eq(join(&v, true, 3, 0, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 0);
    ck_assert_int_eq(latest, 38);
}
END_TEST

/* More missed than a replay holds: the newest replay_max, which the set must hold; what lies
 * below them does not matter (the client pages it with history). */
START_TEST(test_join_beyond_replay_max)
{
    int64_t latest;
    size_t count;
    chat_recent_view_t v = view(620, 620, 421); /* the query's LIMIT: 200 entries */
    ck_assert_int_eq(join(&v, true, 50, 200, &latest, &count), CHAT_RECENT_HIT);
    ck_assert_int_eq(latest, 620);
    ck_assert_uint_eq(count, 200);
    ck_assert_int_eq(entries[count - 1].seq, 421);
    /* The set was trimmed above the newest 200: it cannot answer. */
    v = view(620, 620, 500);
    ck_assert_int_eq(join(&v, true, 50, 200, &latest, &count), CHAT_RECENT_GAP);
}
END_TEST

START_TEST(test_join_gaps)
{
    int64_t latest;
    size_t count;
    /* Trimmed: the set starts above since + 1. */
    chat_recent_view_t v = view(100, 100, 20);
    ck_assert_int_eq(join(&v, true, 10, 500, &latest, &count), CHAT_RECENT_GAP);
    /* A hole (writes lost by a restarted Redis, then newer ones written with a new marker). */
    v = view(30, 30, 11);
    entries[5].seq = 24; /* 30..26, then 24 */
    for (size_t i = 6; i < v.n; i++)
        entries[i].seq = 30 - (int64_t)i - 1;
    v.n--; /* down to 11 */
    ck_assert_int_eq(join(&v, true, 10, 500, &latest, &count), CHAT_RECENT_GAP);
    /* A seq with two members (bytes that changed): not one message each. */
    v = view(20, 20, 11);
    entries[3].seq = entries[2].seq;
    ck_assert_int_eq(join(&v, true, 10, 500, &latest, &count), CHAT_RECENT_GAP);
    /* The entries do not start at the top. */
    v = view(21, 20, 11);
    ck_assert_int_eq(join(&v, true, 10, 500, &latest, &count), CHAT_RECENT_GAP);
    ck_assert_int_eq(latest, -1);
}
END_TEST

START_TEST(test_page_first_and_more)
{
    size_t count = 0;
    bool more = false;
    /* The first page of 120 messages, limit 50: 51 entries asked for, 50 given, more. */
    chat_recent_view_t v = view(120, 120, 70);
    ck_assert_int_eq(gw_recent_decide_page(&v, 0, 50, &count, &more), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 50);
    ck_assert(more);
    /* The last page, down to seq 1: no more. */
    v = view(120, 20, 1);
    ck_assert_int_eq(gw_recent_decide_page(&v, 21, 50, &count, &more), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 20);
    ck_assert(!more);
    /* limit + 1 down to seq 1 exactly: a full page and one older message. */
    v = view(120, 51, 1);
    ck_assert_int_eq(gw_recent_decide_page(&v, 52, 50, &count, &more), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 50);
    ck_assert(more);
    /* limit down to seq 1 exactly: the last page. */
    v = view(120, 50, 1);
    ck_assert_int_eq(gw_recent_decide_page(&v, 51, 50, &count, &more), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 50);
    ck_assert(!more);
}
END_TEST

START_TEST(test_page_before_edges)
{
    size_t count = 7;
    bool more = true;
    /* before 1: nothing below. */
    chat_recent_view_t v = view(120, 0, 1);
    ck_assert_int_eq(gw_recent_decide_page(&v, 1, 10, &count, &more), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 0);
    ck_assert(!more);
    /* before above the top: the newest, as MongoDB's seq < before would. */
    v = view(120, 120, 91);
    ck_assert_int_eq(gw_recent_decide_page(&v, 1000, 29, &count, &more), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 29);
    ck_assert(more);
    /* A page in the middle of the set. */
    v = view(120, 70, 20);
    ck_assert_int_eq(gw_recent_decide_page(&v, 71, 50, &count, &more), CHAT_RECENT_HIT);
    ck_assert_uint_eq(count, 50);
    ck_assert(more);
}
END_TEST

START_TEST(test_page_gaps)
{
    size_t count = 7;
    bool more = true;
    /* The set was trimmed: the page goes below what it holds. */
    chat_recent_view_t v = view(600, 100, 101);
    ck_assert_int_eq(gw_recent_decide_page(&v, 101, 50, &count, &more), CHAT_RECENT_GAP);
    v = view(600, 100, 60);
    ck_assert_int_eq(gw_recent_decide_page(&v, 101, 50, &count, &more), CHAT_RECENT_GAP);
    /* The message just below before is missing. */
    v = view(600, 98, 40);
    ck_assert_int_eq(gw_recent_decide_page(&v, 100, 50, &count, &more), CHAT_RECENT_GAP);
    /* A hole inside the page. */
    v = view(120, 120, 70);
    entries[10].seq = entries[11].seq;
    ck_assert_int_eq(gw_recent_decide_page(&v, 0, 50, &count, &more), CHAT_RECENT_GAP);
    ck_assert_uint_eq(count, 7);
}
END_TEST

START_TEST(test_result_names)
{
    ck_assert_str_eq(chat_recent_result_name(CHAT_RECENT_HIT), "hit");
    ck_assert_str_eq(chat_recent_result_name(CHAT_RECENT_MISS), "miss");
    ck_assert_str_eq(chat_recent_result_name(CHAT_RECENT_UNTRUSTED), "untrusted");
    ck_assert_str_eq(chat_recent_result_name(CHAT_RECENT_GAP), "gap");
    ck_assert_str_eq(chat_recent_result_name(CHAT_RECENT_ERROR), "error");
    ck_assert_str_eq(gw_recent_fill_result_name(GW_RECENT_FILL_RACED), "raced");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_recent");
    TCase *tc = tcase_create("decide");
    tcase_add_test(tc, test_cold_and_untrusted);
    tcase_add_test(tc, test_empty_room);
    tcase_add_test(tc, test_join_without_since_needs_only_top);
    tcase_add_test(tc, test_join_nothing_missed);
    tcase_add_test(tc, test_join_replays_what_was_missed);
    tcase_add_test(tc, test_join_beyond_replay_max);
    tcase_add_test(tc, test_join_gaps);
    tcase_add_test(tc, test_page_first_and_more);
    tcase_add_test(tc, test_page_before_edges);
    tcase_add_test(tc, test_page_gaps);
    tcase_add_test(tc, test_result_names);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
