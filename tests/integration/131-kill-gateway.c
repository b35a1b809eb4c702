/* Fault: kill -9 of gateway 0 while its clients chat with clients of gateway 1. Its
 * clients reconnect to gateway 1 and join with since (the last seq they hold): they miss
 * nothing that was sent meanwhile, get nothing twice, and traffic sent while they rejoin
 * arrives too. Gateway 0 is restarted with scripts/up for the tests that follow. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tools/client/client_frames.h"

#define SERVICE "60-gateway-0"
#define QUIET_MS 1000

static const char *tenant, *secret;
static char room[96];

/* Restores gateway 0 if a test left it dead (runs even when the test failed). */
static void restore_gateway(void)
{
    if (chat_test_service_pid(SERVICE) < 0)
        chat_test_stack_up();
    ck_assert_msg(chat_test_wait_ready(chat_test_ops_port_gateway(0), 60000),
                  "gateway 0 is not ready again");
}

static chat_tc_t *connect_user(size_t gw, const char *user)
{
    chat_tc_t *c = chat_tc_connect(chat_test_gateway_url(gw), tenant, secret, user, NULL);
    chat_tc_ignore(c, "presence");
    return c;
}

/* Text of seq n in this test's room. */
static void text_of(char *buf, size_t len, int64_t n)
{
    snprintf(buf, len, "%s no. %lld", room, (long long)n);
}

/* Sends messages from..to from c without waiting for acks (the acks are checked by
 * await_acks). */
static void send_range(chat_tc_t *c, int64_t from, int64_t to)
{
    for (int64_t n = from; n <= to; n++) {
        char cid[32], text[160];
        snprintf(cid, sizeof cid, "n%lld", (long long)n);
        text_of(text, sizeof text, n);
        chat_tc_send_frame(c, chat_client_frame_send(room, cid, text));
    }
}

/* Waits for the acks of from..to: message n must have seq n (one sender, in order). */
static void await_acks(chat_tc_t *c, int64_t from, int64_t to)
{
    for (int64_t n = from; n <= to; n++) {
        char cid[32];
        snprintf(cid, sizeof cid, "n%lld", (long long)n);
        cJSON *ack = chat_tc_expect_ack(c, cid, CHAT_TC_TIMEOUT_MS);
        ck_assert_int_eq(chat_json_int(ack, "seq"), n);
        cJSON_Delete(ack);
    }
}

/* Expects msgs from..to on c, in order, each once. */
static void expect_msgs(chat_tc_t *c, const char *who, int64_t from, int64_t to)
{
    for (int64_t n = from; n <= to; n++) {
        cJSON *m = chat_tc_wait_for(c, "msg", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(m != NULL, "%s: msg %lld missing", who, (long long)n);
        char text[160];
        text_of(text, sizeof text, n);
        ck_assert_msg(chat_json_int(m, "seq") == n, "%s: seq %lld where %lld was due", who,
                      (long long)chat_json_int(m, "seq"), (long long)n);
        ck_assert_str_eq(chat_json_str(m, "text"), text);
        cJSON_Delete(m);
    }
}

static void expect_quiet(chat_tc_t *c, const char *who)
{
    cJSON *m = chat_tc_wait_for(c, "msg", "room", room, QUIET_MS);
    ck_assert_msg(m == NULL, "%s: extra msg seq %lld", who, (long long)chat_json_int(m, "seq"));
}

START_TEST(test_kill_gateway_clients_resume_elsewhere)
{
    chat_test_unique(room, sizeof room, "gwcrash");
    char bob_user[64], alice_user[64], carol_user[64];
    chat_test_unique(bob_user, sizeof bob_user, "bob");
    chat_test_unique(alice_user, sizeof alice_user, "alice");
    chat_test_unique(carol_user, sizeof carol_user, "carol");
    chat_tc_t *bob = connect_user(1, bob_user);
    chat_tc_t *alice = connect_user(0, alice_user);
    chat_tc_t *carol = connect_user(0, carol_user);
    cJSON_Delete(chat_tc_join(bob, room, -1));
    cJSON_Delete(chat_tc_join(alice, room, -1));
    cJSON_Delete(chat_tc_join(carol, room, -1));
    send_range(bob, 1, 10);
    await_acks(bob, 1, 10);
    expect_msgs(alice, "alice before the crash", 1, 10);
    expect_msgs(carol, "carol before the crash", 1, 10);

    chat_test_service_kill9(SERVICE);
    int code = chat_tc_wait_close(alice, CHAT_TC_TIMEOUT_MS, NULL, 0);
    ck_assert_msg(code == 1006, "alice's connection: close code %d, expected a lost one", code);
    ck_assert_int_eq(chat_tc_wait_close(carol, CHAT_TC_TIMEOUT_MS, NULL, 0), 1006);
    chat_tc_free(alice);
    chat_tc_free(carol);

    /* Traffic goes on while they are away. */
    send_range(bob, 11, 25);
    await_acks(bob, 11, 25);

    /* alice comes back on gateway 1 with the last seq she holds. */
    alice = connect_user(1, alice_user);
    cJSON *j = chat_tc_join(alice, room, 10);
    ck_assert_int_eq(chat_json_int(j, "seq"), 25);
    cJSON_Delete(j);
    expect_msgs(alice, "alice's replay", 11, 25);

    /* carol rejoins while bob is sending: some of 26..40 are stored before her join's
     * read, some after; each must arrive exactly once either way. */
    send_range(bob, 26, 32);
    carol = connect_user(1, carol_user);
    cJSON_Delete(chat_tc_join(carol, room, 10));
    send_range(bob, 33, 40);
    await_acks(bob, 26, 40);
    expect_msgs(carol, "carol's replay and live", 11, 40);
    expect_msgs(alice, "alice live", 26, 40);
    expect_quiet(carol, "carol");
    expect_quiet(alice, "alice");

    /* Gateway 0 comes back and serves again. */
    chat_test_stack_up();
    ck_assert(chat_test_wait_ready(chat_test_ops_port_gateway(0), 60000));
    char dave_user[64];
    chat_test_unique(dave_user, sizeof dave_user, "dave");
    chat_tc_t *dave = connect_user(0, dave_user);
    j = chat_tc_join(dave, room, 0);
    ck_assert_int_eq(chat_json_int(j, "seq"), 40);
    cJSON_Delete(j);
    expect_msgs(dave, "dave on the restarted gateway", 1, 40);
    send_range(dave, 41, 41);
    await_acks(dave, 41, 41);
    expect_msgs(alice, "alice from the restarted gateway", 41, 41);
    expect_msgs(bob, "bob", 1, 41);
    expect_quiet(bob, "bob");
    chat_tc_close(dave);
    chat_tc_close(alice);
    chat_tc_close(carol);
    chat_tc_close(bob);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    tenant = chat_test_demo_tenant();
    secret = chat_test_demo_secret();
    Suite *s = suite_create("kill-gateway");
    TCase *tc = tcase_create("fault");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, NULL, restore_gateway);
    tcase_add_test(tc, test_kill_gateway_clients_resume_elsewhere);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
