/* The gateway's keepalive, with a gateway of its own (index 15, idle ping after 1 s, hang-up
 * after 3 s): a client that answers pings (the test client does, while it reads) stays
 * connected through several idle periods; one that stops reading, and so answers nothing,
 * is dropped within the hang-up time and counted. Also: the auth deadline of a client that
 * never sends auth still closes 4001 with these deadlines (they replaced libwebsockets'
 * per-connection timers). */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "tests/support/chat.h"
#include "tests/support/spawn.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

#define GATEWAY_INDEX "15" /* a partition of chat.deliver the stack's gateways do not use */
#define WAIT_MS 30000

static pid_t gateway = -1;
static int ws_port, ops_port;
static char url[128];

static void gateway_start(void)
{
    static char bin[512], env_port[64], env_ops[64];
    snprintf(bin, sizeof bin, "%s/services/gateway/chat-gateway",
             chat_test_stack_get("CHAT_BUILD_DIR"));
    ws_port = chat_test_free_port();
    ops_port = chat_test_free_port();
    snprintf(env_port, sizeof env_port, "CHAT_GATEWAY_PORT=%d", ws_port);
    snprintf(env_ops, sizeof env_ops, "CHAT_OPS_PORT=%d", ops_port);
    snprintf(url, sizeof url, "ws://127.0.0.1:%d/v1/ws", ws_port);
    const char *const env[] = {"CHAT_GATEWAY_INDEX=" GATEWAY_INDEX,
                               "CHAT_GATEWAY_ADDR=127.0.0.1",
                               env_port,
                               "CHAT_OPS_ADDR=127.0.0.1",
                               env_ops,
                               "CHAT_GATEWAY_IDLE_PING=1s",
                               "CHAT_GATEWAY_IDLE_HANGUP=3s",
                               "CHAT_AUTH_TIMEOUT=2s",
                               NULL};
    const char *const argv[] = {bin, NULL};
    gateway = chat_test_spawn(argv, env, CHAT_TEST_SPAWN_INHERIT, CHAT_TEST_SPAWN_INHERIT);
    ck_assert_msg(chat_test_wait_ready(ops_port, WAIT_MS), "own gateway not ready");
}

static void gateway_stop(void)
{
    if (gateway > 0)
        chat_test_spawn_stop(gateway, SIGTERM, WAIT_MS);
    gateway = -1;
}

START_TEST(test_keepalive)
{
    gateway_start();
    char *alive_token =
        chat_test_token(chat_test_demo_tenant(), chat_test_demo_secret(), "alive", NULL, 3600);
    char *mute_token =
        chat_test_token(chat_test_demo_tenant(), chat_test_demo_secret(), "mute", NULL, 3600);
    chat_tc_t *alive = chat_tc_connect_token(url, alive_token);
    chat_tc_t *mute = chat_tc_connect_token(url, mute_token);
    free(alive_token);
    free(mute_token);
    /* alive reads (and so answers every ping) for longer than several idle periods. */
    int64_t until = chat_clock_mono_ms() + 6000;
    while (chat_clock_mono_ms() < until) {
        cJSON_Delete(chat_tc_wait(alive, NULL, 200));
        ck_assert_msg(!chat_tc_closed(alive), "a client answering pings was dropped (%d)",
                      chat_tc_close_code(alive));
    }
    /* mute did not read meanwhile: its pings went unanswered, so it was dropped. */
    int code = chat_tc_wait_close(mute, 2000, NULL, 0);
    ck_assert_msg(code == 1006, "the silent client: close %d, expected a dropped connection", code);
    ck_assert_uint_ge(chat_test_ops_metric(ops_port, "chat_gateway_idle_hangups_total"), 1);
    /* alive still works. */
    cJSON *pong = chat_tc_request(alive, "{\"type\":\"ping\",\"rid\":\"p1\"}", "p1", 5000);
    ck_assert_ptr_nonnull(pong);
    ck_assert(chat_json_is(pong, "pong"));
    cJSON_Delete(pong);
    chat_tc_close(alive);
    chat_tc_free(mute);

    /* No auth at all: closed 4001 after the auth deadline (2 s here). */
    chat_tc_t *silent = chat_tc_open(url);
    code = chat_tc_wait_close(silent, 6000, NULL, 0);
    ck_assert_int_eq(code, 4001);
    chat_tc_free(silent);
    gateway_stop();
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("gateway-keepalive");
    TCase *tc = tcase_create("keepalive");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, NULL, gateway_stop);
    tcase_add_test(tc, test_keepalive);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
