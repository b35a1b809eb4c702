/* End to end: history pages backwards by seq (limit, before, more, the default limit and
 * the limit bounds), and join with since replays exactly what a client missed: in order,
 * nothing twice; beyond 500 missed messages the newest 500 come as replay and history
 * gives the rest, so that nothing is missing overall. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tools/client/client_frames.h"
#include "tests/support/util.h"

#define QUIET_MS 500
#define REPLAY_MAX 500
#define SENDERS 4 /* parallel connections fill a room faster than one rate-limited one */

/* The text of each seq of the test's current room, learnt from the acks. */
#define MAX_SEQ 700
static char seq_text[MAX_SEQ + 1][128];
static int64_t room_latest;

static void room_reset(void)
{
    memset(seq_text, 0, sizeof seq_text);
    room_latest = 0;
}

/* The text of fill_room's message i: the room and a number unique in the run. */
static unsigned long fill_counter;

static void fill_text(size_t i, char *buf, size_t len, void *ud)
{
    snprintf(buf, len, "%s text %lu", (const char *)ud, fill_counter + 1 + i);
}

/* Sends n more messages to room, pipelined over SENDERS connections of one user on
 * gateway 0 (each paced under the rate limit), and records the text of every seq from the
 * acks. The room must get exactly the seqs after the previous latest: nobody else writes. */
static void fill_room(const char *room, int64_t n)
{
    int64_t *seqs = calloc((size_t)n, sizeof *seqs);
    ck_assert_ptr_nonnull(seqs);
    chat_tc_fill_room(0, room, (size_t)n, SENDERS, fill_text, (void *)room, seqs);
    for (int64_t i = 0; i < n; i++) {
        int64_t seq = seqs[i];
        ck_assert_msg(seq > room_latest && seq <= room_latest + n && seq <= MAX_SEQ &&
                          seq_text[seq][0] == '\0',
                      "ack with seq %lld after %lld", (long long)seq, (long long)room_latest);
        fill_text((size_t)i, seq_text[seq], sizeof seq_text[seq], (void *)room);
    }
    fill_counter += (unsigned long)n;
    room_latest += n;
    free(seqs);
}

/* Checks that h (a history frame) holds seqs lo..hi ascending with their texts, and more. */
static void check_page(cJSON *h, const char *room, int64_t lo, int64_t hi, bool more)
{
    ck_assert_str_eq(chat_json_str(h, "room"), room);
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(h, "msgs");
    ck_assert_msg(cJSON_GetArraySize(msgs) == hi - lo + 1, "page has %d msgs, expected %lld..%lld",
                  cJSON_GetArraySize(msgs), (long long)lo, (long long)hi);
    int64_t want = lo;
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs)
    {
        ck_assert_int_eq(chat_json_int(m, "seq"), want);
        ck_assert_str_eq(chat_json_str(m, "text"), seq_text[want]);
        ck_assert_str_eq(chat_json_str(m, "room"), room);
        want++;
    }
    ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "more")) == more,
                  "more should be %d for %lld..%lld", more, (long long)lo, (long long)hi);
    cJSON_Delete(h);
}

/* Sends a history frame as given and expects error bad_request echoing rid. */
static void expect_bad_history(chat_tc_t *c, const char *frame, const char *rid)
{
    cJSON *f = chat_tc_request(c, frame, rid, CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(f != NULL, "no answer to %s", frame);
    ck_assert_msg(chat_json_is(f, "error"), "%s was answered with %s", frame,
                  chat_json_str(f, "type"));
    ck_assert_str_eq(chat_json_str(f, "code"), "bad_request");
    cJSON_Delete(f);
}

START_TEST(test_history_paging)
{
    char room[96], user[64];
    chat_test_unique(room, sizeof room, "hist");
    chat_test_unique(user, sizeof user, "reader");
    fill_room(room, 120);
    chat_tc_t *c = chat_tc_connect_demo(1, user);
    /* Newest first page, default limit 50; history needs no join. */
    check_page(chat_tc_history(c, room, 0, 0), room, 71, 120, true);
    check_page(chat_tc_history(c, room, 71, 0), room, 21, 70, true);
    check_page(chat_tc_history(c, room, 21, 0), room, 1, 20, false);
    check_page(chat_tc_history(c, room, 0, 100), room, 21, 120, true);
    check_page(chat_tc_history(c, room, 0, 1), room, 120, 120, true);
    check_page(chat_tc_history(c, room, 2, 100), room, 1, 1, false);
    check_page(chat_tc_history(c, room, 1, 10), room, 1, 0, false);
    check_page(chat_tc_history(c, room, 1000, 30), room, 91, 120, true);
    /* An empty room has an empty history. */
    char empty[96];
    chat_test_unique(empty, sizeof empty, "empty");
    check_page(chat_tc_history(c, empty, 0, 0), empty, 1, 0, false);
    /* Limits outside 1-100 are refused. */
    char frame[512];
    snprintf(frame, sizeof frame,
             "{\"type\":\"history\",\"room\":\"%s\",\"limit\":0,\"rid\":\"lim0\"}", room);
    expect_bad_history(c, frame, "lim0");
    snprintf(frame, sizeof frame,
             "{\"type\":\"history\",\"room\":\"%s\",\"limit\":101,\"rid\":\"lim101\"}", room);
    expect_bad_history(c, frame, "lim101");
    snprintf(frame, sizeof frame,
             "{\"type\":\"history\",\"room\":\"%s\",\"limit\":\"5\",\"rid\":\"limstr\"}", room);
    expect_bad_history(c, frame, "limstr");
    snprintf(frame, sizeof frame,
             "{\"type\":\"history\",\"room\":\"%s\",\"before\":0,\"rid\":\"before0\"}", room);
    expect_bad_history(c, frame, "before0");
    chat_tc_close(c);
}
END_TEST

/* Expects the msgs lo..hi of room on c in order, then nothing more for QUIET_MS. */
static void expect_replay(chat_tc_t *c, const char *room, int64_t lo, int64_t hi)
{
    for (int64_t want = lo; want <= hi; want++) {
        cJSON *m = chat_tc_wait_for(c, "msg", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(m != NULL, "msg %lld of %lld..%lld missing", (long long)want, (long long)lo,
                      (long long)hi);
        ck_assert_msg(chat_json_int(m, "seq") == want, "got seq %lld, expected %lld",
                      (long long)chat_json_int(m, "seq"), (long long)want);
        ck_assert_str_eq(chat_json_str(m, "text"), seq_text[want]);
        cJSON_Delete(m);
    }
    cJSON *extra = chat_tc_wait_for(c, "msg", "room", room, QUIET_MS);
    ck_assert_msg(extra == NULL, "unexpected msg seq %lld after the replay",
                  (long long)chat_json_int(extra, "seq"));
}

START_TEST(test_join_since_replays_missed)
{
    char room[96], user[64];
    chat_test_unique(room, sizeof room, "resume");
    chat_test_unique(user, sizeof user, "mobile");
    chat_tc_t *c = chat_tc_connect_demo(1, user);
    cJSON_Delete(chat_tc_join(c, room, -1));
    fill_room(room, 10);
    expect_replay(c, room, 1, 10);
    chat_tc_free(c); /* drops without a goodbye, as a phone losing its network */
    fill_room(room, 25);
    /* Back on the other gateway with the last seq it holds. */
    c = chat_tc_connect_demo(0, user);
    cJSON *j = chat_tc_join(c, room, 10);
    ck_assert_int_eq(chat_json_int(j, "seq"), 35);
    cJSON_Delete(j);
    expect_replay(c, room, 11, 35);
    /* Live traffic continues after the replay without a gap. */
    fill_room(room, 3);
    expect_replay(c, room, 36, 38);
    chat_tc_close(c);
    /* since = latest replays nothing; since 0 replays everything. */
    c = chat_tc_connect_demo(1, user);
    cJSON_Delete(chat_tc_join(c, room, 38));
    expect_replay(c, room, 1, 0);
    chat_tc_close(c);
    c = chat_tc_connect_demo(1, user);
    cJSON_Delete(chat_tc_join(c, room, 0));
    expect_replay(c, room, 1, 38);
    chat_tc_close(c);
}
END_TEST

START_TEST(test_resume_beyond_replay_limit)
{
    char room[96], user[64];
    chat_test_unique(room, sizeof room, "gap");
    chat_test_unique(user, sizeof user, "away");
    const int64_t held = 50, total = 620;
    fill_room(room, total);
    chat_tc_t *c = chat_tc_connect_demo(0, user);
    cJSON *j = chat_tc_join(c, room, held);
    ck_assert_int_eq(chat_json_int(j, "seq"), total);
    cJSON_Delete(j);
    /* The newest 500 come as replay... */
    int64_t first_replayed = total - REPLAY_MAX + 1;
    expect_replay(c, room, first_replayed, total);
    /* ...and history pages back from the first replayed seq to the one held. */
    static bool paged[MAX_SEQ + 1];
    memset(paged, 0, sizeof paged);
    int64_t before = first_replayed, got_back = 0;
    while (before > held + 1) {
        cJSON *h = chat_tc_history(c, room, before, 100);
        cJSON *msgs = cJSON_GetObjectItemCaseSensitive(h, "msgs");
        int n = cJSON_GetArraySize(msgs);
        ck_assert_int_gt(n, 0);
        /* The missed messages the pages actually hold, each counted once. */
        const cJSON *m;
        cJSON_ArrayForEach(m, msgs)
        {
            int64_t seq = chat_json_int(m, "seq");
            if (seq > held && seq < first_replayed && seq <= MAX_SEQ && !paged[seq]) {
                paged[seq] = true;
                got_back++;
            }
        }
        int64_t lo = chat_json_int(cJSON_GetArrayItem(msgs, 0), "seq");
        ck_assert_int_eq(chat_json_int(cJSON_GetArrayItem(msgs, n - 1), "seq"), before - 1);
        check_page(h, room, lo, before - 1, lo > 1);
        before = lo;
    }
    /* Replay and history together hold every message after the one held. */
    ck_assert_int_eq(got_back + REPLAY_MAX, total - held);
    chat_tc_close(c);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("history-resume");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, room_reset, NULL);
    tcase_add_test(tc, test_history_paging);
    tcase_add_test(tc, test_join_since_replays_missed);
    tcase_add_test(tc, test_resume_beyond_replay_limit);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
