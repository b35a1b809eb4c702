/* Unit tests of services/gateway/rooms: the subscription state machine of the join
 * protocol (pending subscriptions hold live deliveries, activation hands them over above
 * the last seq sent), the per-subscription seq filter, rejoin, generations unique across
 * subscriptions, leave/disconnect cleanup with the registration callbacks, tenant
 * separation, the bound on held deliveries, deliveries that skip one user (typing) and the
 * typing throttle per user and room. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "services/gateway/rooms.h"
#include "tests/support/util.h"

#define HELD_MAX 4
#define LOG_MAX 64

/* An owner (stands for a session): records what it was given. */
typedef struct owner {
    const char *name;
    gw_sub_t *subs;
    int64_t got[LOG_MAX]; /* seq of each delivered msg, -1 for other frames */
    size_t ngot;
    int overflows;
} owner_t;

typedef struct release {
    char tenant[32], room[32], user[32];
    bool room_empty, user_gone;
} release_t;

static release_t releases[LOG_MAX];
static size_t nreleases;

static void sink_deliver(void *ud, void *owner, gw_buf_t *buf, int64_t seq)
{
    (void)ud;
    owner_t *o = owner;
    ck_assert_uint_lt(o->ngot, LOG_MAX);
    o->got[o->ngot++] = seq > 0 ? seq : -1;
    gw_buf_unref(buf);
}

static void sink_overflow(void *ud, void *owner)
{
    (void)ud;
    ((owner_t *)owner)->overflows++;
}

static void sink_released(void *ud, const char *tenant, const char *room, const char *user,
                          bool room_empty, bool user_gone)
{
    (void)ud;
    release_t *r = &releases[nreleases++];
    snprintf(r->tenant, sizeof r->tenant, "%s", tenant);
    snprintf(r->room, sizeof r->room, "%s", room);
    snprintf(r->user, sizeof r->user, "%s", user);
    r->room_empty = room_empty;
    r->user_gone = user_gone;
}

static gw_rooms_t *rooms;
static gw_buf_t *frame;

static void setup(void)
{
    nreleases = 0;
    gw_rooms_sink_t sink = {sink_deliver, sink_overflow, sink_released, NULL};
    rooms = gw_rooms_new(HELD_MAX, &sink);
    ck_assert_ptr_nonnull(rooms);
    frame = gw_buf_new("{}", 2);
}

static void teardown(void)
{
    gw_rooms_free(rooms);
    gw_buf_unref(frame);
}

static void deliver(const char *tenant, const char *room, int64_t seq)
{
    gw_rooms_deliver(rooms, tenant, room, frame, seq);
}

static void assert_got(const owner_t *o, const int64_t *want, size_t n)
{
    ck_assert_msg(o->ngot == n, "%s got %zu frames, expected %zu", o->name, o->ngot, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(o->got[i] == want[i], "%s frame %zu: %lld, expected %lld", o->name, i,
                      (long long)o->got[i], (long long)want[i]);
}

START_TEST(test_pending_holds_then_activates)
{
    owner_t a = {.name = "a"};
    gw_sub_t *sub = gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice");
    ck_assert_ptr_nonnull(sub);
    ck_assert(!gw_sub_active(sub));
    deliver("t", "r", 5);
    deliver("t", "r", 0); /* e.g. typing */
    deliver("t", "r", 7);
    ck_assert_uint_eq(a.ngot, 0);
    ck_assert_uint_eq(gw_sub_held(sub), 3);
    /* The replay went up to 6: the held 5 is dropped, the typing and 7 go out in order. */
    gw_rooms_activate(rooms, sub, 6, 0);
    ck_assert(gw_sub_active(sub));
    ck_assert_int_eq(gw_sub_last_seq(sub), 7);
    ck_assert_uint_eq(gw_sub_held(sub), 0);
    assert_got(&a, (int64_t[]){-1, 7}, 2);
    gw_rooms_leave_all(rooms, &a.subs);
}
END_TEST

START_TEST(test_seq_filter_drops_duplicates)
{
    owner_t a = {.name = "a"};
    gw_sub_t *sub = gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice");
    gw_rooms_activate(rooms, sub, 10, 0);
    deliver("t", "r", 9);  /* replayed already */
    deliver("t", "r", 10); /* replayed already */
    deliver("t", "r", 11);
    deliver("t", "r", 11); /* redelivered chat.messages record */
    deliver("t", "r", 0);  /* frames without seq are never filtered */
    deliver("t", "r", 0);
    deliver("t", "r", 12);
    assert_got(&a, (int64_t[]){11, -1, -1, 12}, 4);
    gw_rooms_leave_all(rooms, &a.subs);
}
END_TEST

/* What a lapse's catch-up reads from (join.h): the lowest and highest seq and the lowest useq
 * the active subscriptions hold; pending ones and other rooms do not count; none: false. A
 * catch-up handed to every subscription gives each only what it lacks. */
START_TEST(test_marks_of_active_subscriptions)
{
    int64_t lo = -1, hi = -1, ulo = -1;
    ck_assert(!gw_rooms_marks(rooms, "t", "r", &lo, &hi, &ulo));
    owner_t a = {.name = "a"}, b = {.name = "b"}, c = {.name = "c"}, d = {.name = "d"};
    gw_sub_t *pending = gw_rooms_join(rooms, &c.subs, &c, "t", "r", "carol");
    ck_assert(!gw_rooms_marks(rooms, "t", "r", &lo, &hi, &ulo));
    gw_rooms_activate(rooms, gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice"), 12, 3);
    gw_rooms_activate(rooms, gw_rooms_join(rooms, &b.subs, &b, "t", "r", "bob"), 10, 5);
    gw_rooms_activate(rooms, gw_rooms_join(rooms, &d.subs, &d, "t", "other", "dave"), 2, 1);
    ck_assert(gw_rooms_marks(rooms, "t", "r", &lo, &hi, &ulo));
    ck_assert_int_eq(lo, 10);
    ck_assert_int_eq(hi, 12);
    ck_assert_int_eq(ulo, 3);
    ck_assert(!gw_sub_active(pending));
    for (int64_t seq = 11; seq <= 13; seq++) /* the catch-up from the lowest */
        deliver("t", "r", seq);
    assert_got(&a, (int64_t[]){13}, 1);
    assert_got(&b, (int64_t[]){11, 12, 13}, 3);
    gw_rooms_leave_all(rooms, &a.subs);
    gw_rooms_leave_all(rooms, &b.subs);
    gw_rooms_leave_all(rooms, &c.subs);
    gw_rooms_leave_all(rooms, &d.subs);
}
END_TEST

/* Updates (order -useq) are filtered on their useq the same way, independently of the seqs:
 * held ones at or below the useq the join read are dropped at activation, repeats after. */
START_TEST(test_useq_filter)
{
    owner_t a = {.name = "a"};
    gw_sub_t *sub = gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice");
    deliver("t", "r", -3); /* held: in the join's answer already */
    deliver("t", "r", -8);
    gw_rooms_activate(rooms, sub, 10, 5);
    ck_assert_int_eq(gw_sub_last_useq(sub), 8);
    deliver("t", "r", -8); /* redelivered */
    deliver("t", "r", 11);
    deliver("t", "r", -9);
    deliver("t", "r", 9); /* a msg below the seq filter: dropped, the useq filter untouched */
    deliver("t", "r", -9);
    deliver("t", "r", -10);
    assert_got(&a, (int64_t[]){-1, 11, -1, -1}, 4);
    ck_assert_int_eq(gw_sub_last_useq(sub), 10);
    ck_assert_int_eq(gw_sub_last_seq(sub), 11);
    gw_rooms_leave_all(rooms, &a.subs);
}
END_TEST

START_TEST(test_rooms_and_tenants_are_separate)
{
    owner_t a = {.name = "a"}, b = {.name = "b"};
    gw_rooms_activate(rooms, gw_rooms_join(rooms, &a.subs, &a, "acme", "general", "u"), 0, 0);
    gw_rooms_activate(rooms, gw_rooms_join(rooms, &b.subs, &b, "other", "general", "u"), 0, 0);
    deliver("acme", "general", 1);
    deliver("other", "general", 1);
    deliver("other", "general", 2);
    deliver("acme", "random", 3);
    assert_got(&a, (int64_t[]){1}, 1);
    assert_got(&b, (int64_t[]){1, 2}, 2);
    ck_assert_uint_eq(gw_rooms_count(rooms), 2);
    gw_rooms_leave_all(rooms, &a.subs);
    gw_rooms_leave_all(rooms, &b.subs);
    ck_assert_uint_eq(gw_rooms_count(rooms), 0);
}
END_TEST

START_TEST(test_rejoin_restarts_pending)
{
    owner_t a = {.name = "a"};
    gw_sub_t *sub = gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice");
    uint32_t gen1 = gw_sub_gen(sub);
    gw_rooms_activate(rooms, sub, 20, 0);
    /* Joining again reuses the subscription with a new generation, pending again. */
    gw_sub_t *again = gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice");
    ck_assert_ptr_eq(again, sub);
    ck_assert_uint_ne(gw_sub_gen(sub), gen1);
    ck_assert(!gw_sub_active(sub));
    deliver("t", "r", 21);
    ck_assert_uint_eq(a.ngot, 0);
    /* The new replay (since 15) went up to 21: the held 21 is a duplicate. */
    gw_rooms_activate(rooms, sub, 21, 0);
    ck_assert_uint_eq(a.ngot, 0);
    deliver("t", "r", 22);
    assert_got(&a, (int64_t[]){22}, 1);
    /* Still one subscription: one release when it goes. */
    gw_rooms_leave_all(rooms, &a.subs);
    ck_assert_uint_eq(nreleases, 1);
}
END_TEST

/* A subscription created after a leave never repeats a generation of the one before, nor
 * one of another owner's subscription. */
START_TEST(test_generations_unique_across_subscriptions)
{
    owner_t a = {.name = "a"}, b = {.name = "b"};
    uint32_t gen1 = gw_sub_gen(gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice"));
    gw_rooms_leave_all(rooms, &a.subs);
    uint32_t gen2 = gw_sub_gen(gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice"));
    uint32_t gen3 = gw_sub_gen(gw_rooms_join(rooms, &b.subs, &b, "t", "r", "bob"));
    ck_assert_uint_ne(gen2, gen1);
    ck_assert_uint_ne(gen3, gen1);
    ck_assert_uint_ne(gen3, gen2);
    gw_rooms_leave_all(rooms, &a.subs);
    gw_rooms_leave_all(rooms, &b.subs);
}
END_TEST

START_TEST(test_release_reports_room_and_user)
{
    owner_t a1 = {.name = "a1"}, a2 = {.name = "a2"}, b = {.name = "b"};
    gw_sub_t *s1 = gw_rooms_join(rooms, &a1.subs, &a1, "t", "r", "alice");
    gw_rooms_join(rooms, &a2.subs, &a2, "t", "r", "alice"); /* alice's second device */
    gw_rooms_join(rooms, &b.subs, &b, "t", "r", "bob");
    gw_rooms_join(rooms, &a1.subs, &a1, "t", "other", "alice");
    ck_assert_ptr_eq(gw_rooms_find(a1.subs, "r"), s1);
    ck_assert_ptr_null(gw_rooms_find(b.subs, "other"));

    gw_rooms_leave(rooms, &a1.subs, s1);
    ck_assert_uint_eq(nreleases, 1);
    ck_assert(!releases[0].room_empty && !releases[0].user_gone);
    ck_assert_ptr_null(gw_rooms_find(a1.subs, "r"));
    ck_assert_ptr_nonnull(gw_rooms_find(a1.subs, "other"));

    gw_rooms_leave_all(rooms, &a2.subs); /* alice's last socket in r */
    ck_assert_uint_eq(nreleases, 2);
    ck_assert_str_eq(releases[1].user, "alice");
    ck_assert(!releases[1].room_empty && releases[1].user_gone);

    gw_rooms_leave_all(rooms, &b.subs); /* the room's last socket */
    ck_assert_uint_eq(nreleases, 3);
    ck_assert(releases[2].room_empty && releases[2].user_gone);
    ck_assert_str_eq(releases[2].tenant, "t");
    ck_assert_str_eq(releases[2].room, "r");

    gw_rooms_leave_all(rooms, &a1.subs);
    ck_assert_uint_eq(nreleases, 4);
    ck_assert_str_eq(releases[3].room, "other");
    ck_assert(releases[3].room_empty);
    ck_assert_ptr_null(a1.subs);
    ck_assert_uint_eq(gw_rooms_count(rooms), 0);
    /* Deliveries to a room nobody follows go nowhere. */
    ck_assert_uint_eq(gw_rooms_deliver(rooms, "t", "r", frame, 1), 0);
}
END_TEST

START_TEST(test_leave_while_pending_frees_held)
{
    owner_t a = {.name = "a"};
    gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice");
    deliver("t", "r", 1);
    deliver("t", "r", 2);
    ck_assert_uint_eq(atomic_load(&frame->refs), 3); /* two held references */
    gw_rooms_leave_all(rooms, &a.subs);
    ck_assert_uint_eq(atomic_load(&frame->refs), 1);
    ck_assert_uint_eq(a.ngot, 0);
}
END_TEST

START_TEST(test_held_overflow_reported_once)
{
    owner_t a = {.name = "a"}, b = {.name = "b"};
    gw_sub_t *sa = gw_rooms_join(rooms, &a.subs, &a, "t", "r", "alice");
    gw_rooms_activate(rooms, gw_rooms_join(rooms, &b.subs, &b, "t", "r", "bob"), 0, 0);
    for (int64_t seq = 1; seq <= HELD_MAX + 3; seq++)
        deliver("t", "r", seq);
    ck_assert_int_eq(a.overflows, 1);
    ck_assert_uint_eq(gw_sub_held(sa), 0);
    ck_assert_uint_eq(b.ngot, HELD_MAX + 3); /* the active neighbour is unaffected */
    gw_rooms_leave_all(rooms, &a.subs);
    gw_rooms_leave_all(rooms, &b.subs);
}
END_TEST

typedef struct visit {
    int rooms;
    size_t users;
} visit_t;

static void visit_cb(const char *tenant, const char *room, const char *const *users, size_t nusers,
                     void *ud)
{
    visit_t *v = ud;
    ck_assert_str_eq(tenant, "t");
    ck_assert(strcmp(room, "r1") == 0 || strcmp(room, "r2") == 0);
    for (size_t i = 0; i < nusers; i++)
        ck_assert(strcmp(users[i], "alice") == 0 || strcmp(users[i], "bob") == 0);
    v->rooms++;
    v->users += nusers;
}

START_TEST(test_foreach_lists_distinct_users)
{
    owner_t a1 = {.name = "a1"}, a2 = {.name = "a2"}, b = {.name = "b"};
    gw_rooms_join(rooms, &a1.subs, &a1, "t", "r1", "alice");
    gw_rooms_join(rooms, &a2.subs, &a2, "t", "r1", "alice");
    gw_rooms_join(rooms, &b.subs, &b, "t", "r1", "bob");
    gw_rooms_join(rooms, &b.subs, &b, "t", "r2", "bob");
    visit_t v = {0};
    gw_rooms_foreach(rooms, visit_cb, &v);
    ck_assert_int_eq(v.rooms, 2);
    ck_assert_uint_eq(v.users, 3); /* r1: alice, bob; r2: bob */
    gw_rooms_leave_all(rooms, &a1.subs);
    gw_rooms_leave_all(rooms, &a2.subs);
    gw_rooms_leave_all(rooms, &b.subs);
}
END_TEST

/* A delivery with except_user skips every subscription of that user, held or active. */
START_TEST(test_deliver_except_user)
{
    owner_t a1 = {.name = "a1"}, a2 = {.name = "a2"}, b = {.name = "b"};
    gw_rooms_activate(rooms, gw_rooms_join(rooms, &a1.subs, &a1, "t", "r", "alice"), 0, 0);
    gw_sub_t *pending = gw_rooms_join(rooms, &a2.subs, &a2, "t", "r", "alice");
    gw_rooms_activate(rooms, gw_rooms_join(rooms, &b.subs, &b, "t", "r", "bob"), 0, 0);
    ck_assert_uint_eq(gw_rooms_deliver_except(rooms, "t", "r", frame, 0, "alice"), 1);
    ck_assert_uint_eq(gw_sub_held(pending), 0);
    ck_assert_uint_eq(gw_rooms_deliver_except(rooms, "t", "r", frame, 0, "carol"), 3);
    assert_got(&a1, (int64_t[]){-1}, 1);
    assert_got(&b, (int64_t[]){-1, -1}, 2);
    gw_rooms_leave_all(rooms, &a1.subs);
    gw_rooms_leave_all(rooms, &a2.subs);
    gw_rooms_leave_all(rooms, &b.subs);
}
END_TEST

/* One typing per interval per user and room, whichever of the user's connections sends it;
 * other users and rooms have their own; the user's last leave forgets it. */
START_TEST(test_typing_throttle)
{
    owner_t a1 = {.name = "a1"}, a2 = {.name = "a2"}, b = {.name = "b"};
    gw_sub_t *s1 = gw_rooms_join(rooms, &a1.subs, &a1, "t", "r", "alice");
    gw_sub_t *s2 = gw_rooms_join(rooms, &a2.subs, &a2, "t", "r", "alice");
    gw_sub_t *sb = gw_rooms_join(rooms, &b.subs, &b, "t", "r", "bob");
    gw_sub_t *other = gw_rooms_join(rooms, &a1.subs, &a1, "t", "r2", "alice");
    ck_assert(gw_rooms_typing_allow(s1, 1000, 2000));
    ck_assert(!gw_rooms_typing_allow(s2, 2999, 2000));
    ck_assert(gw_rooms_typing_allow(sb, 2999, 2000));
    ck_assert(gw_rooms_typing_allow(other, 2999, 2000));
    ck_assert(gw_rooms_typing_allow(s2, 3000, 2000));
    ck_assert(!gw_rooms_typing_allow(s1, 4000, 2000));
    gw_rooms_leave(rooms, &a1.subs, s1);
    ck_assert(!gw_rooms_typing_allow(s2, 4000, 2000)); /* alice is still there */
    gw_rooms_leave_all(rooms, &a2.subs);
    s2 = gw_rooms_join(rooms, &a2.subs, &a2, "t", "r", "alice");
    ck_assert(gw_rooms_typing_allow(s2, 4000, 2000));
    gw_rooms_leave_all(rooms, &a1.subs);
    gw_rooms_leave_all(rooms, &a2.subs);
    gw_rooms_leave_all(rooms, &b.subs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gateway_rooms");
    TCase *tc = tcase_create("rooms");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_pending_holds_then_activates);
    tcase_add_test(tc, test_seq_filter_drops_duplicates);
    tcase_add_test(tc, test_useq_filter);
    tcase_add_test(tc, test_marks_of_active_subscriptions);
    tcase_add_test(tc, test_rooms_and_tenants_are_separate);
    tcase_add_test(tc, test_rejoin_restarts_pending);
    tcase_add_test(tc, test_generations_unique_across_subscriptions);
    tcase_add_test(tc, test_release_reports_room_and_user);
    tcase_add_test(tc, test_leave_while_pending_frees_held);
    tcase_add_test(tc, test_held_overflow_reported_once);
    tcase_add_test(tc, test_foreach_lists_distinct_users);
    tcase_add_test(tc, test_deliver_except_user);
    tcase_add_test(tc, test_typing_throttle);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
