/* End to end: tenants never see each other. Two tenants use the same room name: each gets
 * its own room (own seqs, own history, own deliveries), and a token cannot be turned into
 * access to the other tenant. Within a tenant, the token's rooms claim and the dm:A:B rule
 * decide who may join, read and write. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tools/client/client_frames.h"
#include "tests/support/util.h"

#define QUIET_MS 1000

typedef struct tenant {
    char id[96];
    char secret[64];
} tenant_t;

static tenant_t ta, tb;

/* Fresh tenants for every test (a checked fixture, so a failure fails that test). */
static void make_tenants(void)
{
    chat_test_tenant_create(ta.id, sizeof ta.id, ta.secret, sizeof ta.secret);
    chat_test_tenant_create(tb.id, sizeof tb.id, tb.secret, sizeof tb.secret);
}

static chat_tc_t *connect_as(const tenant_t *t, size_t gw, const char *user, const char *rooms)
{
    return chat_tc_connect_user(gw, t->id, t->secret, user, rooms);
}

/* Expects that c has received no msg with text (call after the quiet period: frames that
 * arrived are read, nothing is waited for). */
static void expect_no_msg_text(chat_tc_t *c, const char *text, const char *who)
{
    cJSON *m = chat_tc_wait_for(c, "msg", "text", text, 0);
    ck_assert_msg(m == NULL, "%s received \"%s\" of the other tenant", who, text);
}

/* The history of room as seen by c: its messages' texts, joined by '|'. */
static void history_texts(chat_tc_t *c, const char *room, char *out, size_t len)
{
    cJSON *h = chat_tc_history(c, room, 0, 100);
    size_t off = 0;
    out[0] = '\0';
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(h, "msgs"))
    {
        int n = snprintf(out + off, len - off, "%s%s", off ? "|" : "", chat_json_str(m, "text"));
        off += n > 0 && (size_t)n < len - off ? (size_t)n : 0;
    }
    cJSON_Delete(h);
}

START_TEST(test_same_room_name_is_two_rooms)
{
    char room[96];
    chat_test_unique(room, sizeof room, "shared");
    chat_tc_t *alice = connect_as(&ta, 0, "alice", NULL);
    chat_tc_t *bob = connect_as(&tb, 1, "bob", NULL);
    chat_tc_t *bob0 = connect_as(&tb, 0, "bob", NULL); /* B also on A's gateway */
    cJSON_Delete(chat_tc_join(alice, room, -1));
    ck_assert_int_eq(chat_tc_send(alice, room, "a1", "secret of A"), 1);
    ck_assert_int_eq(chat_tc_send(alice, room, "a2", "more of A"), 2);
    /* B joins "the same" room: it is B's own, empty one. */
    cJSON *j = chat_tc_join(bob, room, 0);
    ck_assert_int_eq(chat_json_int(j, "seq"), 0);
    cJSON_Delete(j);
    j = chat_tc_join(bob0, room, 0);
    ck_assert_int_eq(chat_json_int(j, "seq"), 0);
    cJSON_Delete(j);
    char texts[1024];
    history_texts(bob, room, texts, sizeof texts);
    ck_assert_str_eq(texts, "");
    /* B writes: seq 1 of B's room; A's room goes on at 3. */
    ck_assert_int_eq(chat_tc_send(bob, room, "a1", "secret of B"), 1);
    ck_assert_int_eq(chat_tc_send(alice, room, "a3", "third of A"), 3);
    chat_clock_sleep_ms(QUIET_MS); /* once for all four checks */
    expect_no_msg_text(alice, "secret of B", "alice");
    expect_no_msg_text(bob, "secret of A", "bob");
    expect_no_msg_text(bob, "third of A", "bob");
    expect_no_msg_text(bob0, "third of A", "bob on gateway 0");
    history_texts(alice, room, texts, sizeof texts);
    ck_assert_str_eq(texts, "secret of A|more of A|third of A");
    history_texts(bob, room, texts, sizeof texts);
    ck_assert_str_eq(texts, "secret of B");
    /* The joined frames' online lists stay within the tenant too. */
    chat_tc_t *alice2 = connect_as(&ta, 1, "alice2", NULL);
    j = chat_tc_join(alice2, room, -1);
    const cJSON *online = cJSON_GetObjectItemCaseSensitive(j, "online"), *u;
    ck_assert_msg(cJSON_IsArray(online), "joined without an online list");
    bool alice_online = false;
    cJSON_ArrayForEach(u, online)
    {
        ck_assert_msg(cJSON_IsString(u), "online holds a non-string");
        alice_online = alice_online || strcmp(u->valuestring, "alice") == 0;
        ck_assert_msg(strcmp(u->valuestring, "bob") != 0, "B's user is online in A's room");
    }
    /* The list is filled (A's alice is in the room), so bob's absence means something. */
    ck_assert_msg(alice_online, "alice, in the room, is not in its online list");
    cJSON_Delete(j);
    chat_tc_close(alice2);
    chat_tc_close(alice);
    chat_tc_close(bob);
    chat_tc_close(bob0);
}
END_TEST

/* Authenticating with token must fail with unauthorized and close 4001. */
static void expect_token_refused(const char *token, const char *what)
{
    chat_tc_t *c = chat_tc_open(chat_test_gateway_url(0));
    chat_tc_send_frame(c, chat_client_frame_auth(token));
    cJSON *e = chat_tc_wait(c, "error", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(e != NULL, "%s: no error", what);
    ck_assert_str_eq(chat_json_str(e, "code"), "unauthorized");
    cJSON_Delete(e);
    ck_assert_int_eq(chat_tc_wait_close(c, CHAT_TC_TIMEOUT_MS, NULL, 0), 4001);
    ck_assert_uint_eq(chat_tc_queued(c, "welcome"), 0);
    chat_tc_free(c);
}

START_TEST(test_token_cannot_cross_tenants)
{
    /* A token naming tenant A but signed by B's backend (B's secret) is worthless. */
    char *cross = chat_test_token(ta.id, tb.secret, "bob", NULL, 600);
    expect_token_refused(cross, "tid A signed with B's secret");
    free(cross);
    /* B's valid token yields a B session whatever it asks for. */
    chat_tc_t *bob = connect_as(&tb, 0, "bob", NULL);
    ck_assert_str_eq(chat_tc_user(bob), "bob");
    ck_assert_str_eq(chat_tc_tenant(bob), tb.id);
    chat_tc_close(bob);
}
END_TEST

/* Expects that c is refused room: join, send and history each get error forbidden
 * echoing their rid or cid. */
static void expect_forbidden(chat_tc_t *c, const char *room, const char *who)
{
    char what[256];
    snprintf(what, sizeof what, "%s joining %s", who, room);
    chat_tc_send_frame(c, chat_client_frame_join(room, -1, "fj"));
    cJSON *f = chat_tc_wait_for(c, NULL, "rid", "fj", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(f != NULL && chat_json_is(f, "error"), "%s: not refused", what);
    ck_assert_str_eq(chat_json_str(f, "code"), "forbidden");
    cJSON_Delete(f);
    ck_assert_uint_eq(chat_tc_queued(c, "joined"), 0);
    snprintf(what, sizeof what, "%s writing to %s", who, room);
    f = chat_tc_send_wait(c, room, "fs", "let me in", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(f != NULL && chat_json_is(f, "error"), "%s: not refused", what);
    ck_assert_str_eq(chat_json_str(f, "code"), "forbidden");
    cJSON_Delete(f);
    snprintf(what, sizeof what, "%s reading %s", who, room);
    chat_tc_send_frame(c, chat_client_frame_history(room, 0, 0, "fh"));
    f = chat_tc_wait_for(c, NULL, "rid", "fh", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(f != NULL && chat_json_is(f, "error"), "%s: not refused", what);
    ck_assert_str_eq(chat_json_str(f, "code"), "forbidden");
    cJSON_Delete(f);
}

START_TEST(test_rooms_claim)
{
    char r1[96], r2[96], claim[200];
    chat_test_unique(r1, sizeof r1, "allowed");
    chat_test_unique(r2, sizeof r2, "other");
    snprintf(claim, sizeof claim, "%s", r1);
    chat_tc_t *carol = connect_as(&ta, 0, "carol", claim);
    cJSON_Delete(chat_tc_join(carol, r1, -1));
    ck_assert_int_eq(chat_tc_send(carol, r1, "c1", "in my room"), 1);
    expect_forbidden(carol, r2, "carol (rooms claim without it)");
    /* An empty claim allows no room at all. */
    chat_tc_t *nobody = connect_as(&ta, 1, "nobody", "");
    expect_forbidden(nobody, r1, "a token with an empty rooms claim");
    /* Nothing of the refused frames reached r2. */
    chat_tc_t *dave = connect_as(&ta, 1, "dave", NULL);
    cJSON *j = chat_tc_join(dave, r2, 0);
    ck_assert_int_eq(chat_json_int(j, "seq"), 0);
    cJSON_Delete(j);
    chat_tc_close(carol);
    chat_tc_close(nobody);
    chat_tc_close(dave);
}
END_TEST

START_TEST(test_direct_rooms)
{
    const char *dm = "dm:alice:bob";
    chat_tc_t *alice = connect_as(&ta, 0, "alice", NULL);
    chat_tc_t *bob = connect_as(&ta, 1, "bob", NULL);
    chat_tc_t *carol = connect_as(&ta, 0, "carol", NULL);
    cJSON_Delete(chat_tc_join(alice, dm, -1));
    cJSON_Delete(chat_tc_join(bob, dm, -1));
    int64_t seq = chat_tc_send(alice, dm, "dm1", "just between us");
    cJSON *m = chat_tc_wait_for(bob, "msg", "room", dm, CHAT_TC_TIMEOUT_MS);
    ck_assert_ptr_nonnull(m);
    ck_assert_int_eq(chat_json_int(m, "seq"), seq);
    cJSON_Delete(m);
    expect_forbidden(carol, dm, "carol in alice and bob's dm");
    /* Member ids out of order do not name a valid direct room. */
    chat_tc_send_frame(alice, chat_client_frame_join("dm:bob:alice", -1, "unsorted"));
    cJSON *e = chat_tc_wait_for(alice, NULL, "rid", "unsorted", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(e != NULL && chat_json_is(e, "error"), "dm:bob:alice was accepted");
    const char *code = chat_json_str(e, "code");
    ck_assert_msg(strcmp(code, "forbidden") == 0 || strcmp(code, "bad_request") == 0,
                  "dm:bob:alice: %s", code);
    cJSON_Delete(e);
    /* The same dm name in tenant B is another room, closed to A's alice and open to B's. */
    chat_tc_t *b_alice = connect_as(&tb, 1, "alice", NULL);
    cJSON *j = chat_tc_join(b_alice, dm, 0);
    ck_assert_int_eq(chat_json_int(j, "seq"), 0);
    cJSON_Delete(j);
    cJSON *h = chat_tc_history(b_alice, dm, 0, 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(h, "msgs")), 0);
    ck_assert(!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "more")));
    cJSON_Delete(h);
    chat_tc_t *b_carol = connect_as(&tb, 0, "carol", NULL);
    expect_forbidden(b_carol, dm, "B's carol in B's dm:alice:bob");
    chat_tc_close(b_carol);
    chat_tc_close(alice);
    chat_tc_close(bob);
    chat_tc_close(carol);
    chat_tc_close(b_alice);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("tenancy");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, make_tenants, NULL);
    tcase_add_test(tc, test_same_room_name_is_two_rooms);
    tcase_add_test(tc, test_token_cannot_cross_tenants);
    tcase_add_test(tc, test_rooms_claim);
    tcase_add_test(tc, test_direct_rooms);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
