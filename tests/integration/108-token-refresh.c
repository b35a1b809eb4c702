/* Token refresh on an open connection (PROTOCOL v1.1 "Push subscriptions, token refresh,
 * generic answers"), against the stack's gateways, MongoDB and Kafka:
 * - a connection authenticated with a short-lived token refreshes with a long-lived one of
 *   the same user: ok {rid}; the connection goes on with the new token's claims (its name is
 *   in the messages it sends, its rooms claim decides the joins) and still joins, sends and
 *   gets acks;
 * - a token signed with another secret, an expired one, one of an unknown tenant, one of
 *   another user and one of another tenant (whose secret the gateway must look up on an auth
 *   worker) are error unauthorized with the rid, and the connection keeps its claims and works;
 * - before auth, refresh is refused like any first frame that is not auth (close 4001). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"
#include "tools/client/chat_token.h"
#include "tools/client/client_frames.h"

#define WAIT_MS 10000

static struct {
    const char *tenant;
    const char *secret;
    unsigned rid;
} it;

static void setup(void)
{
    it.tenant = chat_test_demo_tenant();
    it.secret = chat_test_demo_secret();
}

/* A fresh rid "t<n>" into buf. */
static const char *next_rid(char *buf, size_t len)
{
    snprintf(buf, len, "t%u", ++it.rid);
    return buf;
}

/* A token of tenant (signed with secret) for user with display name and rooms claim ("a,b";
 * NULL: none), valid for ttl_s seconds (negative: expired). Caller frees. */
static char *token(const char *tenant, const char *secret, const char *user, const char *name,
                   const char *rooms, int64_t ttl_s)
{
    chat_token_spec_t spec = {.tenant = tenant,
                              .secret = secret,
                              .user = user,
                              .name = name,
                              .rooms = rooms,
                              .ttl_s = ttl_s};
    char *tok = NULL;
    chat_err_t rc = chat_token_mint(&spec, &tok);
    ck_assert_msg(rc == CHAT_OK, "minting a token for %s/%s: %s", tenant, user, chat_err_str(rc));
    return tok;
}

/* Connects to gateway gw with tok; returns the client and welcome.exp in *exp. */
static chat_tc_t *connect_with(size_t gw, const char *tok, int64_t *exp)
{
    chat_tc_t *c = chat_tc_open(chat_test_gateway_url(gw));
    chat_tc_ignore(c, "presence");
    chat_tc_send_frame(c, chat_client_frame_auth(tok));
    cJSON *w = chat_tc_expect(c, "welcome", WAIT_MS);
    *exp = chat_json_int(w, "exp");
    cJSON_Delete(w);
    return c;
}

/* Sends refresh with tok and returns the answer about its rid (caller frees). */
static cJSON *refresh(chat_tc_t *c, const char *tok, char *rid, size_t rid_len)
{
    next_rid(rid, rid_len);
    cJSON *a = chat_tc_ask(c, chat_client_frame_refresh(tok, rid), rid);
    ck_assert_str_eq(chat_json_str(a, "rid"), rid);
    return a;
}

static void refresh_ok(chat_tc_t *c, const char *tok)
{
    char rid[16];
    cJSON *a = refresh(c, tok, rid, sizeof rid);
    ck_assert_msg(chat_json_is(a, "ok"), "refresh %s: %s %s %s", rid, chat_json_str(a, "type"),
                  chat_json_str(a, "code"), chat_json_str(a, "message"));
    cJSON_Delete(a);
}

/* Expects error unauthorized about the refresh with tok; its message must contain want. */
static void refresh_refused(chat_tc_t *c, const char *tok, const char *want)
{
    char rid[16];
    cJSON *a = refresh(c, tok, rid, sizeof rid);
    ck_assert_msg(chat_json_is(a, "error"), "refresh %s answered %s", rid,
                  chat_json_str(a, "type"));
    ck_assert_str_eq(chat_json_str(a, "code"), "unauthorized");
    const char *m = chat_json_str(a, "message");
    ck_assert_msg(m != NULL && strstr(m, want) != NULL, "refresh %s: message \"%s\", want \"%s\"",
                  rid, m != NULL ? m : "", want);
    cJSON_Delete(a);
}

/* Sends text to room as cid, expects the ack, and returns the name of the msg frame the
 * connection gets of it ("" if none) in name. */
static void post_and_read_name(chat_tc_t *c, const char *room, const char *cid, char *name,
                               size_t len)
{
    chat_tc_sent_t sent = chat_tc_post(c, room, cid, cid);
    ck_assert_int_gt(sent.seq, 0);
    cJSON *m = chat_tc_wait_for(c, "msg", "cid", cid, WAIT_MS);
    ck_assert_msg(m != NULL, "no msg of %s", cid);
    ck_assert_int_eq(chat_json_int(m, "seq"), sent.seq);
    const char *n = chat_json_str(m, "name");
    snprintf(name, len, "%s", n != NULL ? n : "");
    cJSON_Delete(m);
}

/* The connection still works: a ping is answered. */
static void expect_alive(chat_tc_t *c)
{
    char rid[16];
    next_rid(rid, sizeof rid);
    cJSON *p = chat_tc_ask(c, chat_client_frame_ping(rid), rid);
    ck_assert_msg(chat_json_is(p, "pong"), "ping %s answered %s", rid, chat_json_str(p, "type"));
    cJSON_Delete(p);
    ck_assert(!chat_tc_closed(c));
}

/* A 30 s token is refreshed with a 1 h one: ok, and the connection goes on under the new
 * claims (name, rooms) on every gateway. */
START_TEST(test_refresh_ok)
{
    for (size_t gw = 0; gw < chat_test_gateway_count(); gw++) {
        char user[64], room_a[96], room_b[96], rooms[200], cid[96], name[160], rid[16];
        chat_test_unique(user, sizeof user, "refresh-u");
        chat_test_unique(room_a, sizeof room_a, "refresh-a");
        chat_test_unique(room_b, sizeof room_b, "refresh-b");
        char *short_tok = token(it.tenant, it.secret, user, "Finn", room_a, 30);
        int64_t exp = 0;
        chat_tc_t *c = connect_with(gw, short_tok, &exp);
        ck_assert_msg(exp > 0 && exp - (chat_clock_wall_ms() / 1000) <= 30, "welcome exp %lld",
                      (long long)exp);
        cJSON *j = chat_tc_join(c, room_a, -1);
        cJSON_Delete(j);
        snprintf(cid, sizeof cid, "%s-1", user);
        post_and_read_name(c, room_a, cid, name, sizeof name);
        ck_assert_str_eq(name, "Finn");
        /* the short token does not allow room_b */
        next_rid(rid, sizeof rid);
        cJSON *e = chat_tc_ask(c, chat_client_frame_join(room_b, -1, rid), rid);
        ck_assert_msg(chat_json_is(e, "error"), "join of %s answered %s", room_b,
                      chat_json_str(e, "type"));
        ck_assert_str_eq(chat_json_str(e, "code"), "forbidden");
        cJSON_Delete(e);

        snprintf(rooms, sizeof rooms, "%s,%s", room_a, room_b);
        char *long_tok = token(it.tenant, it.secret, user, "Finn Again", rooms, 3600);
        refresh_ok(c, long_tok);

        /* the new claims: the new name on messages, room_b may be joined */
        snprintf(cid, sizeof cid, "%s-2", user);
        post_and_read_name(c, room_a, cid, name, sizeof name);
        ck_assert_str_eq(name, "Finn Again");
        j = chat_tc_join(c, room_b, -1);
        ck_assert_int_eq(chat_json_int(j, "seq"), 0);
        cJSON_Delete(j);
        snprintf(cid, sizeof cid, "%s-3", user);
        post_and_read_name(c, room_b, cid, name, sizeof name);
        ck_assert_str_eq(name, "Finn Again");
        /* and again: a connection refreshes as often as its tokens run out */
        char *third = token(it.tenant, it.secret, user, "Finn", rooms, 7200);
        refresh_ok(c, third);
        ck_assert(!chat_tc_closed(c));
        chat_tc_close(c);
        free(third);
        free(long_tok);
        free(short_tok);
    }
}
END_TEST

/* Tokens the gateway must not take: unauthorized with the rid, the connection open with its
 * old claims (its name stays on the messages it sends). */
START_TEST(test_refresh_refused_keeps_connection)
{
    char user[64], room[96], cid[96], name[160], other[64];
    chat_test_unique(user, sizeof user, "refresh-r");
    chat_test_unique(room, sizeof room, "refresh-r");
    chat_test_unique(other, sizeof other, "refresh-o");
    char *tok = token(it.tenant, it.secret, user, "Rita", NULL, 30);
    int64_t exp = 0;
    chat_tc_t *c = connect_with(0, tok, &exp);
    cJSON *j = chat_tc_join(c, room, -1);
    cJSON_Delete(j);

    char *forged = token(it.tenant, "not-the-tenant-secret", user, "Mallory", NULL, 3600);
    refresh_refused(c, forged, "bad signature");
    expect_alive(c);
    char *expired = token(it.tenant, it.secret, user, "Rita", NULL, -60);
    refresh_refused(c, expired, "expired");
    char *unknown = token("no-such-tenant-refresh", it.secret, user, "Rita", NULL, 3600);
    refresh_refused(c, unknown, "unknown tenant");
    char *bob = token(it.tenant, it.secret, other, "Bob", NULL, 3600);
    refresh_refused(c, bob, "token is for another user");
    expect_alive(c);

    snprintf(cid, sizeof cid, "%s-1", user);
    post_and_read_name(c, room, cid, name, sizeof name);
    ck_assert_str_eq(name, "Rita");
    chat_tc_close(c);
    free(bob);
    free(unknown);
    free(expired);
    free(forged);
    free(tok);
}
END_TEST

/* A valid token of the same user id in another tenant: its secret is not cached on the
 * gateway, so an auth worker looks it up; refused all the same, and the connection stays. */
START_TEST(test_refresh_other_tenant)
{
    char tenant[96], secret[64], user[64], room[96], cid[96], name[160];
    chat_test_tenant_create(tenant, sizeof tenant, secret, sizeof secret);
    chat_test_unique(user, sizeof user, "refresh-t");
    chat_test_unique(room, sizeof room, "refresh-t");
    char *tok = token(it.tenant, it.secret, user, "Tess", NULL, 3600);
    int64_t exp = 0;
    size_t gw = chat_test_gateway_count() - 1;
    chat_tc_t *c = connect_with(gw, tok, &exp);
    char *theirs = token(tenant, secret, user, "Tess", NULL, 3600);
    refresh_refused(c, theirs, "token is for another tenant");
    cJSON *j = chat_tc_join(c, room, -1);
    cJSON_Delete(j);
    snprintf(cid, sizeof cid, "%s-1", user);
    post_and_read_name(c, room, cid, name, sizeof name);
    ck_assert_str_eq(name, "Tess");
    chat_tc_close(c);
    free(theirs);
    free(tok);
}
END_TEST

/* Before auth, refresh is one more frame that is not auth: unauthorized and close 4001. */
START_TEST(test_refresh_before_auth)
{
    char user[64], rid[16];
    chat_test_unique(user, sizeof user, "refresh-b");
    char *tok = token(it.tenant, it.secret, user, NULL, NULL, 3600);
    chat_tc_t *c = chat_tc_open(chat_test_gateway_url(0));
    chat_tc_send_frame(c, chat_client_frame_refresh(tok, next_rid(rid, sizeof rid)));
    cJSON *e = chat_tc_expect(c, "error", WAIT_MS);
    ck_assert_str_eq(chat_json_str(e, "code"), "unauthorized");
    ck_assert_str_eq(chat_json_str(e, "message"), "the first frame must be auth");
    cJSON_Delete(e);
    ck_assert_int_eq(chat_tc_wait_close(c, WAIT_MS, NULL, 0), 4001);
    chat_tc_free(c);
    free(tok);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("token-refresh");
    TCase *tc = tcase_create("refresh");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_refresh_ok);
    tcase_add_test(tc, test_refresh_refused_keeps_connection);
    tcase_add_test(tc, test_refresh_other_tenant);
    tcase_add_test(tc, test_refresh_before_auth);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
