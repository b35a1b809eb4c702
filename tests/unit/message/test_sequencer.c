/* Unit tests of services/message/sequencer: first touch loads from the store (once), next
 * increments, observe only raises, a failed load remembers nothing, a revoke forgets exactly
 * the rooms of the revoked partitions, trim drops the least recently touched rooms. */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "services/message/sequencer.h"

/* A fake store: every room's highest seq is `highest`, loads are counted per call. */
typedef struct fake_loader {
    int64_t highest;
    int calls;
    chat_err_t fail; /* returned instead of loading when not CHAT_OK */
    char last_room[64];
} fake_loader_t;

static chat_err_t fake_load(void *ctx, const char *tenant, const char *room, int64_t *highest)
{
    fake_loader_t *f = ctx;
    (void)tenant;
    f->calls++;
    snprintf(f->last_room, sizeof f->last_room, "%s", room);
    if (f->fail != CHAT_OK)
        return f->fail;
    *highest = f->highest;
    return CHAT_OK;
}

static int64_t last_of(message_sequencer_t *s, const char *room, int32_t partition)
{
    int64_t last = -1;
    ck_assert_int_eq(message_sequencer_last(s, "t1", room, partition, &last), CHAT_OK);
    return last;
}

START_TEST(test_first_touch_loads_once)
{
    fake_loader_t f = {.highest = 7};
    message_sequencer_t *s = message_sequencer_new(fake_load, &f, 100);
    ck_assert_int_eq(last_of(s, "general", 0), 7);
    ck_assert_int_eq(f.calls, 1);
    ck_assert_str_eq(f.last_room, "general");
    ck_assert_int_eq(last_of(s, "general", 0), 7);
    ck_assert_int_eq(f.calls, 1);
    /* Same room name in another tenant is another room. */
    int64_t other = -1;
    ck_assert_int_eq(message_sequencer_last(s, "t2", "general", 0, &other), CHAT_OK);
    ck_assert_int_eq(f.calls, 2);
    ck_assert_uint_eq(message_sequencer_rooms(s), 2);
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_next_increments_and_observe_raises)
{
    fake_loader_t f = {.highest = 41};
    message_sequencer_t *s = message_sequencer_new(fake_load, &f, 100);
    ck_assert_int_eq(message_sequencer_next(s, "t1", "r"), 0); /* not touched yet */
    last_of(s, "r", 3);
    ck_assert_int_eq(message_sequencer_next(s, "t1", "r"), 42);
    ck_assert_int_eq(message_sequencer_next(s, "t1", "r"), 43);
    ck_assert_int_eq(last_of(s, "r", 3), 43);
    message_sequencer_observe(s, "t1", "r", 10); /* lower: ignored */
    ck_assert_int_eq(last_of(s, "r", 3), 43);
    message_sequencer_observe(s, "t1", "r", 50);
    ck_assert_int_eq(message_sequencer_next(s, "t1", "r"), 51);
    ck_assert_int_eq(f.calls, 1);
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_failed_load_remembers_nothing)
{
    fake_loader_t f = {.highest = 5, .fail = CHAT_ERR_TIMEOUT};
    message_sequencer_t *s = message_sequencer_new(fake_load, &f, 100);
    int64_t last = -1;
    ck_assert_int_eq(message_sequencer_last(s, "t1", "r", 0, &last), CHAT_ERR_TIMEOUT);
    ck_assert_uint_eq(message_sequencer_rooms(s), 0);
    ck_assert_int_eq(message_sequencer_next(s, "t1", "r"), 0);
    f.fail = CHAT_OK;
    ck_assert_int_eq(last_of(s, "r", 0), 5);
    ck_assert_int_eq(f.calls, 2);
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_revoke_forgets_only_revoked_partitions)
{
    fake_loader_t f = {.highest = 0};
    message_sequencer_t *s = message_sequencer_new(fake_load, &f, 100);
    const int32_t parts[] = {0, 1, 2};
    ck_assert_int_eq(message_sequencer_assign(s, parts, 3), CHAT_OK);
    ck_assert(message_sequencer_owns(s, 1));
    ck_assert(!message_sequencer_owns(s, 3));
    last_of(s, "a", 0);
    last_of(s, "b", 1);
    last_of(s, "b2", 1);
    last_of(s, "c", 2);
    message_sequencer_next(s, "t1", "a"); /* a: 1 */
    message_sequencer_next(s, "t1", "b"); /* b: 1 */
    ck_assert_int_eq(f.calls, 4);

    const int32_t revoked[] = {1};
    message_sequencer_revoke(s, revoked, 1);
    ck_assert(!message_sequencer_owns(s, 1));
    ck_assert(message_sequencer_owns(s, 0));
    ck_assert(message_sequencer_owns(s, 2));
    ck_assert_uint_eq(message_sequencer_rooms(s), 2);
    ck_assert_int_eq(last_of(s, "a", 0), 1); /* kept, no load */
    ck_assert_int_eq(last_of(s, "c", 2), 0);
    ck_assert_int_eq(f.calls, 4);
    ck_assert_int_eq(last_of(s, "b", 1), 0); /* forgotten: loaded again */
    ck_assert_int_eq(f.calls, 5);
    ck_assert_str_eq(f.last_room, "b");
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_forget_and_trim)
{
    fake_loader_t f = {.highest = 3};
    message_sequencer_t *s = message_sequencer_new(fake_load, &f, 2);
    last_of(s, "a", 0);
    last_of(s, "b", 0);
    last_of(s, "c", 0);
    last_of(s, "a", 0); /* a is now the most recent, b the oldest */
    ck_assert_uint_eq(message_sequencer_rooms(s), 3);
    message_sequencer_trim(s);
    ck_assert_uint_eq(message_sequencer_rooms(s), 2);
    int calls = f.calls;
    last_of(s, "a", 0);
    last_of(s, "c", 0);
    ck_assert_int_eq(f.calls, calls);
    last_of(s, "b", 0);
    ck_assert_int_eq(f.calls, calls + 1);

    message_sequencer_forget(s, "t1", "c");
    last_of(s, "c", 0);
    ck_assert_int_eq(f.calls, calls + 2);
    message_sequencer_destroy(s);
}
END_TEST

START_TEST(test_many_rooms)
{
    fake_loader_t f = {.highest = 0};
    message_sequencer_t *s = message_sequencer_new(fake_load, &f, 100000);
    char room[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(room, sizeof room, "room-%d", i);
        last_of(s, room, i % 7);
        for (int k = 0; k <= i % 3; k++)
            message_sequencer_next(s, "t1", room);
    }
    ck_assert_uint_eq(message_sequencer_rooms(s), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(room, sizeof room, "room-%d", i);
        ck_assert_int_eq(last_of(s, room, i % 7), i % 3 + 1);
    }
    ck_assert_int_eq(f.calls, 5000);
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
    fake_loader_t f = {.highest = 0};
    message_sequencer_t *s = message_sequencer_new(fake_load, &f, 10);
    char room[300];
    memset(room, 'r', sizeof room - 1);
    room[sizeof room - 1] = '\0';
    int64_t last;
    ck_assert_int_eq(message_sequencer_last(s, "t1", room, 0, &last), CHAT_ERR_INVALID);
    ck_assert_int_eq(f.calls, 0);
    message_sequencer_destroy(s);
    message_sequencer_destroy(NULL);
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("message_sequencer");
    TCase *tc = tcase_create("sequencer");
    tcase_add_test(tc, test_first_touch_loads_once);
    tcase_add_test(tc, test_next_increments_and_observe_raises);
    tcase_add_test(tc, test_failed_load_remembers_nothing);
    tcase_add_test(tc, test_revoke_forgets_only_revoked_partitions);
    tcase_add_test(tc, test_forget_and_trim);
    tcase_add_test(tc, test_many_rooms);
    tcase_add_test(tc, test_key_too_long);
    suite_add_tcase(suite, tc);
    SRunner *sr = srunner_create(suite);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
