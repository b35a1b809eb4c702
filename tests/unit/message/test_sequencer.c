/* Unit tests of services/message/sequencer: get knows only rooms that were set, set adds or
 * updates, a revoke forgets exactly the rooms of the revoked partitions, forget and trim drop
 * rooms (trim the least recently used), names too long for a key are refused; a batch's plan
 * hands out consecutive seqs after what is known taken, starts again from there, and ends
 * remembered (stored) or forgotten (failed). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "services/message/sequencer.h"
#include "tests/support/util.h"

/* The room's last seq, or -1 if the sequencer does not remember it. */
static int64_t last_of(message_sequencer_t *s, const char *room)
{
    int64_t last = -1;
    return message_sequencer_get(s, "t1", room, &last) ? last : -1;
}

static void set(message_sequencer_t *s, const char *room, int32_t partition, int64_t last)
{
    ck_assert_int_eq(message_sequencer_set(s, "t1", room, partition, last), CHAT_OK);
}

START_TEST(test_get_knows_only_set_rooms)
{
    message_sequencer_t *s = message_sequencer_new(100);
    ck_assert_int_eq(last_of(s, "general"), -1);
    set(s, "general", 0, 7);
    ck_assert_int_eq(last_of(s, "general"), 7);
    /* Same room name in another tenant is another room. */
    int64_t other = -1;
    ck_assert(!message_sequencer_get(s, "t2", "general", &other));
    ck_assert_int_eq(other, -1);
    ck_assert_int_eq(message_sequencer_set(s, "t2", "general", 0, 3), CHAT_OK);
    ck_assert(message_sequencer_get(s, "t2", "general", &other));
    ck_assert_int_eq(other, 3);
    ck_assert_int_eq(last_of(s, "general"), 7);
    ck_assert_uint_eq(message_sequencer_rooms(s), 2);
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_set_updates)
{
    message_sequencer_t *s = message_sequencer_new(100);
    set(s, "r", 3, 41);
    set(s, "r", 3, 43);
    ck_assert_int_eq(last_of(s, "r"), 43);
    set(s, "r", 3, 10); /* what was stored is the truth, even lower (a reload) */
    ck_assert_int_eq(last_of(s, "r"), 10);
    ck_assert_uint_eq(message_sequencer_rooms(s), 1);
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_revoke_forgets_only_revoked_partitions)
{
    message_sequencer_t *s = message_sequencer_new(100);
    const int32_t parts[] = {0, 1, 2};
    ck_assert_int_eq(message_sequencer_assign(s, parts, 3), CHAT_OK);
    ck_assert_int_eq(message_sequencer_assign(s, parts, 1), CHAT_OK); /* again: no-op */
    ck_assert(message_sequencer_owns(s, 1));
    ck_assert(!message_sequencer_owns(s, 3));
    set(s, "a", 0, 1);
    set(s, "b", 1, 1);
    set(s, "b2", 1, 0);
    set(s, "c", 2, 0);

    const int32_t revoked[] = {1};
    message_sequencer_revoke(s, revoked, 1);
    ck_assert(!message_sequencer_owns(s, 1));
    ck_assert(message_sequencer_owns(s, 0));
    ck_assert(message_sequencer_owns(s, 2));
    ck_assert_uint_eq(message_sequencer_rooms(s), 2);
    ck_assert_int_eq(last_of(s, "a"), 1);
    ck_assert_int_eq(last_of(s, "c"), 0);
    ck_assert_int_eq(last_of(s, "b"), -1);
    ck_assert_int_eq(last_of(s, "b2"), -1);
    message_sequencer_destroy(s);
}
END_TEST

/* A room set again through another partition is forgotten with that partition. */
START_TEST(test_set_moves_partition)
{
    message_sequencer_t *s = message_sequencer_new(100);
    set(s, "a", 0, 5);
    set(s, "a", 1, 6);
    const int32_t revoked[] = {0};
    message_sequencer_revoke(s, revoked, 1);
    ck_assert_int_eq(last_of(s, "a"), 6);
    const int32_t revoked1[] = {1};
    message_sequencer_revoke(s, revoked1, 1);
    ck_assert_int_eq(last_of(s, "a"), -1);
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_forget_and_trim)
{
    message_sequencer_t *s = message_sequencer_new(2);
    set(s, "a", 0, 1);
    set(s, "b", 0, 2);
    set(s, "c", 0, 3);
    ck_assert_int_eq(last_of(s, "a"), 1); /* a is now the most recent, b the oldest */
    ck_assert_uint_eq(message_sequencer_rooms(s), 3);
    message_sequencer_trim(s);
    ck_assert_uint_eq(message_sequencer_rooms(s), 2);
    ck_assert_int_eq(last_of(s, "b"), -1);
    ck_assert_int_eq(last_of(s, "a"), 1);
    ck_assert_int_eq(last_of(s, "c"), 3);

    message_sequencer_forget(s, "t1", "c");
    message_sequencer_forget(s, "t1", "nope"); /* unknown: nothing happens */
    ck_assert_int_eq(last_of(s, "c"), -1);
    ck_assert_uint_eq(message_sequencer_rooms(s), 1);
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_many_rooms)
{
    message_sequencer_t *s = message_sequencer_new(100000);
    char room[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(room, sizeof room, "room-%d", i);
        set(s, room, i % 7, i % 3 + 1);
    }
    ck_assert_uint_eq(message_sequencer_rooms(s), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(room, sizeof room, "room-%d", i);
        ck_assert_int_eq(last_of(s, room), i % 3 + 1);
    }
    const int32_t revoked[] = {0, 6};
    message_sequencer_revoke(s, revoked, 2);
    size_t expected = 0;
    for (int i = 0; i < 5000; i++)
        expected += (i % 7 != 0 && i % 7 != 6);
    ck_assert_uint_eq(message_sequencer_rooms(s), expected);
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_key_too_long)
{
    message_sequencer_t *s = message_sequencer_new(10);
    char room[300];
    memset(room, 'r', sizeof room - 1);
    room[sizeof room - 1] = '\0';
    ck_assert_int_eq(message_sequencer_set(s, "t1", room, 0, 1), CHAT_ERR_INVALID);
    int64_t last = -1;
    ck_assert(!message_sequencer_get(s, "t1", room, &last));
    ck_assert_uint_eq(message_sequencer_rooms(s), 0);
    message_sequencer_destroy(s);
    message_sequencer_destroy(NULL);
}
END_TEST

START_TEST(test_plan_assigns_consecutive_seqs)
{
    message_sequencer_t *s = message_sequencer_new(100);
    message_seq_plan_t plan;
    /* Unknown room: the caller loads it; an empty room starts at 1. */
    ck_assert(!message_sequencer_plan_begin(s, "t1", "r", &plan));
    message_seq_plan_taken(&plan, 0);
    message_seq_plan_restart(&plan);
    ck_assert_int_eq(message_seq_plan_next(&plan), 1);
    ck_assert_int_eq(message_seq_plan_next(&plan), 2);
    ck_assert_int_eq(message_seq_plan_next(&plan), 3);
    /* Only 1 and 2 were stored; another writer is found to hold 5: plan again after 5. */
    message_seq_plan_taken(&plan, 1);
    message_seq_plan_taken(&plan, 2);
    message_seq_plan_taken(&plan, 5);
    message_seq_plan_taken(&plan, 4); /* lower: what is taken never goes down */
    message_seq_plan_restart(&plan);
    ck_assert_int_eq(message_seq_plan_next(&plan), 6);
    message_seq_plan_taken(&plan, 6);
    message_sequencer_plan_end(s, "t1", "r", 3, &plan, true);
    ck_assert_int_eq(last_of(s, "r"), 6);

    /* Remembered: the next batch plans without loading. */
    ck_assert(message_sequencer_plan_begin(s, "t1", "r", &plan));
    ck_assert_int_eq(message_seq_plan_next(&plan), 7);
    message_seq_plan_taken(&plan, 7);
    /* The batch failed: the room is forgotten, whatever the plan says. */
    message_sequencer_plan_end(s, "t1", "r", 3, &plan, false);
    ck_assert_int_eq(last_of(s, "r"), -1);
    ck_assert(!message_sequencer_plan_begin(s, "t1", "r", &plan));

    /* A plan ended as stored is remembered under its partition. */
    message_seq_plan_taken(&plan, 9);
    message_sequencer_plan_end(s, "t1", "r", 4, &plan, true);
    const int32_t revoked[] = {4};
    message_sequencer_revoke(s, revoked, 1);
    ck_assert_int_eq(last_of(s, "r"), -1);
    message_sequencer_destroy(s);
}
END_TEST

/* A room's useq is remembered beside its seq, each known without the other, and forgotten
 * with it (revoke, forget). */
START_TEST(test_useq_beside_seq)
{
    message_sequencer_t *s = message_sequencer_new(10);
    const int32_t parts[] = {1, 2};
    ck_assert_int_eq(message_sequencer_assign(s, parts, 2), CHAT_OK);
    int64_t v = -1;
    ck_assert(!message_sequencer_useq_get(s, "t", "r", &v));
    ck_assert_int_eq(message_sequencer_useq_set(s, "t", "r", 1, 7), CHAT_OK);
    ck_assert(message_sequencer_useq_get(s, "t", "r", &v));
    ck_assert_int_eq(v, 7);
    /* The seq of a room known only by its useq must still be loaded. */
    ck_assert(!message_sequencer_get(s, "t", "r", &v));
    ck_assert_int_eq(message_sequencer_set(s, "t", "r", 1, 40), CHAT_OK);
    ck_assert(message_sequencer_get(s, "t", "r", &v));
    ck_assert_int_eq(v, 40);
    ck_assert(message_sequencer_useq_get(s, "t", "r", &v));
    ck_assert_int_eq(v, 7);
    ck_assert_uint_eq(message_sequencer_rooms(s), 1);
    /* And the other way round. */
    ck_assert_int_eq(message_sequencer_set(s, "t", "q", 2, 3), CHAT_OK);
    ck_assert(!message_sequencer_useq_get(s, "t", "q", &v));
    const int32_t revoked[] = {1};
    message_sequencer_revoke(s, revoked, 1);
    ck_assert(!message_sequencer_useq_get(s, "t", "r", &v));
    ck_assert(!message_sequencer_get(s, "t", "r", &v));
    ck_assert_int_eq(message_sequencer_useq_set(s, "t", "q", 2, 9), CHAT_OK);
    message_sequencer_forget(s, "t", "q");
    ck_assert(!message_sequencer_useq_get(s, "t", "q", &v));
    message_sequencer_destroy(s);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("message_sequencer");
    TCase *tc = tcase_create("sequencer");
    tcase_add_test(tc, test_get_knows_only_set_rooms);
    tcase_add_test(tc, test_set_updates);
    tcase_add_test(tc, test_revoke_forgets_only_revoked_partitions);
    tcase_add_test(tc, test_set_moves_partition);
    tcase_add_test(tc, test_forget_and_trim);
    tcase_add_test(tc, test_many_rooms);
    tcase_add_test(tc, test_key_too_long);
    tcase_add_test(tc, test_plan_assigns_consecutive_seqs);
    tcase_add_test(tc, test_useq_beside_seq);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, false);
}
