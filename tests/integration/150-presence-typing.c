/* Presence and typing (issue 8, protocol v1.1) across the stack's two gateways:
 * - the registry's scripts on the stack's Redis, for two gateway ids: a user's first member
 *   in a room is "online", further ones (other gateways) are not, only the last one out is
 *   "offline"; expired members are removed by the next join or heartbeat, which tells whose
 *   last member went;
 * - one user with three tabs on two gateways: the others get `presence` online once (first
 *   tab) and offline once (last tab closed); `joined.online` lists who is online;
 * - typing reaches the others in the room (any gateway), not the typer's own tabs, at most
 *   once per 2 s per user and room (extra ones dropped, counted); typing in a room not joined
 *   is answered `error forbidden`;
 * - a gateway of its own (index 14) killed with -9: its user goes offline for the others
 *   within 30 s. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/redis.h"
#include "services/gateway/registry.h"
#include "tests/support/chat.h"
#include "tests/support/spawn.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"
#include "tools/client/client_frames.h"

#define OWN_GATEWAY_INDEX "14" /* a partition of chat.deliver the stack's gateways do not use */
#define WAIT_MS 30000
#define QUIET_MS 1500 /* how long "nothing more arrives" is watched */
#define OFFLINE_WITHIN_MS 30000

/* ---- the scripts, straight on Redis ---- */

static char heard[2048];

static void heard_changed(void *ud, const char *tenant, const char *room, const char *user,
                          bool online, bool expired)
{
    (void)ud;
    (void)tenant;
    (void)room;
    size_t n = strlen(heard);
    snprintf(heard + n, sizeof heard - n, "%s %s%s;", user, online ? "on" : "off",
             expired ? " expired" : "");
}

static const gw_registry_presence_t listener = {.changed = heard_changed};

/* Joins user through gateway gw at now_ms with a 10 s TTL; returns what was heard. */
static const char *join_at(chat_redis_t *r, const char *gw, const char *room, const char *user,
                           int64_t now_ms, size_t *nonline)
{
    heard[0] = '\0';
    char **users = NULL;
    size_t n = 0;
    ck_assert_int_eq(
        gw_registry_join(r, gw, now_ms, 10000, "it", room, user, &users, &n, &listener), CHAT_OK);
    gw_registry_users_free(users, n);
    if (nonline != NULL)
        *nonline = n;
    return heard;
}

static const char *release(chat_redis_t *r, const char *gw, const char *room, const char *user)
{
    heard[0] = '\0';
    ck_assert_int_eq(gw_registry_release(r, gw, "it", room, user, false, true, &listener), CHAT_OK);
    return heard;
}

START_TEST(test_scripts_first_and_last_across_gateways)
{
    chat_redis_t *r = NULL;
    ck_assert_int_eq(chat_redis_connect(chat_test_stack_get("CHAT_REDIS_URL"), 5000, &r), CHAT_OK);
    char room[96];
    chat_test_unique(room, sizeof room, "it-pres-scripts");
    int64_t now = chat_clock_wall_ms();
    size_t n = 0;
    ck_assert_str_eq(join_at(r, "90", room, "alice", now, &n), "alice on;");
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(join_at(r, "90", room, "alice", now, NULL), ""); /* another tab, same gw */
    ck_assert_str_eq(join_at(r, "91", room, "alice", now, &n), "");   /* another gateway */
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(join_at(r, "91", room, "bob", now, &n), "bob on;");
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(release(r, "90", room, "alice"), "");
    ck_assert_str_eq(release(r, "90", room, "alice"), ""); /* not there any more: no change */
    ck_assert_str_eq(release(r, "91", room, "alice"), "alice off;");

    /* Gateway 90 holds carol and stops refreshing: 11 s later (TTL 10 s) a heartbeat of
     * gateway 91 removes her member and tells that she went offline; bob's own member, which
     * the heartbeat refreshes, stays. */
    ck_assert_str_eq(join_at(r, "90", room, "carol", now, NULL), "carol on;");
    heard[0] = '\0';
    const char *const users[] = {"bob"};
    const gw_registry_room_t rooms[] = {
        {.tenant = "it", .room = room, .users = users, .nusers = 1}};
    bool lapsed = false;
    ck_assert_int_eq(gw_registry_refresh(r, "91", now + 11000, 10000, rooms, 1, &listener, &lapsed),
                     CHAT_OK);
    ck_assert_str_eq(heard, "carol off expired;");
    ck_assert(lapsed); /* 91 itself had expired at +10 s: its heartbeat came late */
    heard[0] = '\0';
    ck_assert_int_eq(gw_registry_refresh(r, "91", now + 11500, 10000, rooms, 1, &listener, &lapsed),
                     CHAT_OK);
    ck_assert(!lapsed); /* in time */
    ck_assert_str_eq(heard, "");
    /* A gateway that comes back after its member expired: its refresh brings the user back. */
    heard[0] = '\0';
    const char *const carol[] = {"carol"};
    const gw_registry_room_t again[] = {
        {.tenant = "it", .room = room, .users = carol, .nusers = 1}};
    ck_assert_int_eq(gw_registry_refresh(r, "90", now + 12000, 10000, again, 1, &listener, &lapsed),
                     CHAT_OK);
    ck_assert_str_eq(heard, "carol on;");
    ck_assert(lapsed);
    /* A join also sweeps: 25 s on, bob (refreshed at +11 s) and carol (+12 s) expired. */
    ck_assert_str_eq(join_at(r, "92", room, "dave", now + 25000, &n),
                     "dave on;bob off expired;carol off expired;");
    ck_assert_uint_eq(n, 1);
    /* Shutdown removal: dave's last member. */
    heard[0] = '\0';
    const char *const dave[] = {"dave"};
    const gw_registry_room_t last[] = {{.tenant = "it", .room = room, .users = dave, .nusers = 1}};
    ck_assert_int_eq(gw_registry_remove(r, "92", last, 1, &listener), CHAT_OK);
    ck_assert_str_eq(heard, "dave off;");
    chat_redis_free(r);
}
END_TEST

/* ---- through the stack ---- */

/* The next presence frame about user (queued or arriving within timeout_ms), or NULL. */
static cJSON *presence_of(chat_tc_t *c, const char *user, int timeout_ms)
{
    return chat_tc_wait_for(c, "presence", "user", user, timeout_ms);
}

static void expect_presence(chat_tc_t *c, const char *room, const char *user, bool online,
                            int timeout_ms)
{
    cJSON *f = presence_of(c, user, timeout_ms);
    ck_assert_msg(f != NULL, "%s: no presence of %s (%s)", chat_tc_user(c), user,
                  online ? "online" : "offline");
    ck_assert_str_eq(chat_json_str(f, "room"), room);
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(f, "online");
    ck_assert_msg(cJSON_IsBool(o) && cJSON_IsTrue(o) == online, "%s: presence of %s is not %s",
                  chat_tc_user(c), user, online ? "online" : "offline");
    cJSON_Delete(f);
}

static void expect_no_presence(chat_tc_t *c, const char *user, int timeout_ms)
{
    cJSON *f = presence_of(c, user, timeout_ms);
    if (f != NULL) {
        char *text = cJSON_PrintUnformatted(f);
        cJSON_Delete(f);
        ck_abort_msg("%s: unexpected %s", chat_tc_user(c), text);
    }
}

static bool online_lists(const cJSON *joined, const char *user)
{
    const cJSON *online = cJSON_GetObjectItemCaseSensitive(joined, "online");
    const cJSON *u;
    cJSON_ArrayForEach(u, online)
    {
        if (cJSON_IsString(u) && strcmp(u->valuestring, user) == 0)
            return true;
    }
    return false;
}

static chat_tc_t *connect_to(size_t gw, const char *user)
{
    return chat_tc_connect(chat_test_gateway_url(gw), chat_test_demo_tenant(),
                           chat_test_demo_secret(), user, NULL);
}

START_TEST(test_presence_first_in_last_out)
{
    char room[96], alice[64], obs_user[64];
    chat_test_unique(room, sizeof room, "it-pres");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(obs_user, sizeof obs_user, "obs");
    chat_tc_t *obs = connect_to(1, obs_user);
    cJSON_Delete(chat_tc_join(obs, room, -1));

    chat_tc_t *tab1 = connect_to(0, alice);
    cJSON *joined = chat_tc_join(tab1, room, -1);
    ck_assert(online_lists(joined, alice));
    ck_assert(online_lists(joined, obs_user));
    cJSON_Delete(joined);
    expect_presence(obs, room, alice, true, CHAT_TC_TIMEOUT_MS);

    chat_tc_t *tab2 = connect_to(1, alice);
    cJSON_Delete(chat_tc_join(tab2, room, -1));
    chat_tc_t *tab3 = connect_to(0, alice);
    cJSON_Delete(chat_tc_join(tab3, room, -1));
    expect_no_presence(obs, alice, QUIET_MS); /* more tabs: still one online user */

    chat_tc_close(tab1);
    chat_tc_close(tab2);
    expect_no_presence(obs, alice, QUIET_MS); /* tab3 is still there */
    chat_tc_t *late_user = connect_to(0, "late");
    joined = chat_tc_join(late_user, room, -1);
    ck_assert(online_lists(joined, alice));
    cJSON_Delete(joined);
    chat_tc_close(late_user);

    chat_tc_close(tab3);
    expect_presence(obs, room, alice, false, CHAT_TC_TIMEOUT_MS);
    expect_no_presence(obs, alice, QUIET_MS);
    chat_tc_close(obs);
}
END_TEST

/* The next typing frame about user in c's queue or arriving within timeout_ms, or NULL. */
static cJSON *typing_of(chat_tc_t *c, const char *user, int timeout_ms)
{
    return chat_tc_wait_for(c, "typing", "user", user, timeout_ms);
}

static void send_typing(chat_tc_t *c, const char *room)
{
    chat_tc_send_frame(c, chat_client_frame_typing(room, NULL));
}

START_TEST(test_typing_to_others_throttled)
{
    char room[96], alice[64], bob[64], carol[64];
    chat_test_unique(room, sizeof room, "it-typing");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(bob, sizeof bob, "bob");
    chat_test_unique(carol, sizeof carol, "carol");
    chat_tc_t *a0 = connect_to(0, alice), *a1 = connect_to(1, alice);
    chat_tc_t *b = connect_to(1, bob), *c = connect_to(0, carol);
    chat_tc_ignore(a0, "presence");
    chat_tc_ignore(a1, "presence");
    chat_tc_ignore(b, "presence");
    chat_tc_ignore(c, "presence");
    chat_tc_t *all[] = {a0, a1, b, c};
    for (size_t i = 0; i < 4; i++)
        cJSON_Delete(chat_tc_join(all[i], room, -1));

    /* Not joined: forbidden, with the rid echoed. */
    char frame[256];
    snprintf(frame, sizeof frame, "{\"type\":\"typing\",\"room\":\"%s-other\",\"rid\":\"t1\"}",
             room);
    cJSON *err = chat_tc_request(a0, frame, "t1", CHAT_TC_TIMEOUT_MS);
    ck_assert_ptr_nonnull(err);
    ck_assert(chat_json_is(err, "error"));
    ck_assert_str_eq(chat_json_str(err, "code"), "forbidden");
    cJSON_Delete(err);

    int ops0 = chat_test_ops_port_gateway(0);
    uint64_t throttled0 =
        chat_test_ops_metric(ops0, "chat_gateway_typing_total{result=\"throttled\"}");
    /* Three typings within the 2 s: one goes out, to bob (gateway 1) and carol (gateway 0). */
    send_typing(a0, room);
    send_typing(a0, room);
    send_typing(a0, room);
    chat_tc_t *others[] = {b, c};
    for (size_t i = 0; i < 2; i++) {
        cJSON *t = typing_of(others[i], alice, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(t != NULL, "%s got no typing", chat_tc_user(others[i]));
        ck_assert_str_eq(chat_json_str(t, "room"), room);
        cJSON_Delete(t);
    }
    int64_t first_at = chat_clock_mono_ms();
    for (size_t i = 0; i < 2; i++) {
        cJSON *extra = typing_of(others[i], alice, QUIET_MS);
        ck_assert_msg(extra == NULL, "%s got a second typing within 2 s", chat_tc_user(others[i]));
    }
    /* Never to the typer's own tabs, on either gateway. */
    ck_assert_ptr_null(typing_of(a0, alice, 0));
    ck_assert_ptr_null(typing_of(a1, alice, 0));
    ck_assert_uint_ge(
        chat_test_ops_metric(ops0, "chat_gateway_typing_total{result=\"throttled\"}") - throttled0,
        2);

    /* 2 s after the first one the next goes out again. */
    while (chat_clock_mono_ms() - first_at < 2200)
        chat_clock_sleep_ms(50);
    send_typing(a0, room);
    cJSON *t = typing_of(b, alice, CHAT_TC_TIMEOUT_MS);
    ck_assert_ptr_nonnull(t);
    cJSON_Delete(t);
    ck_assert_ptr_null(typing_of(a1, alice, QUIET_MS));
    for (size_t i = 0; i < 4; i++)
        chat_tc_close(all[i]);
}
END_TEST

/* ---- a gateway of its own, killed ---- */

static pid_t gateway = -1;

static void own_gateway_start(char *url, size_t len)
{
    static char bin[512], env_port[64], env_ops[64];
    snprintf(bin, sizeof bin, "%s/services/gateway/chat-gateway",
             chat_test_stack_get("CHAT_BUILD_DIR"));
    int ws_port = chat_test_free_port(), ops_port = chat_test_free_port();
    snprintf(env_port, sizeof env_port, "CHAT_GATEWAY_PORT=%d", ws_port);
    snprintf(env_ops, sizeof env_ops, "CHAT_OPS_PORT=%d", ops_port);
    snprintf(url, len, "ws://127.0.0.1:%d/v1/ws", ws_port);
    const char *const env[] = {"CHAT_GATEWAY_INDEX=" OWN_GATEWAY_INDEX,
                               "CHAT_GATEWAY_ADDR=127.0.0.1",
                               env_port,
                               "CHAT_OPS_ADDR=127.0.0.1",
                               env_ops,
                               NULL};
    const char *const argv[] = {bin, NULL};
    gateway = chat_test_spawn(argv, env, CHAT_TEST_SPAWN_INHERIT, CHAT_TEST_SPAWN_INHERIT);
    ck_assert_msg(chat_test_wait_ready(ops_port, WAIT_MS), "own gateway not ready");
}

/* Kills the own gateway if a test left it running (also when the test failed). */
static void own_gateway_stop(void)
{
    if (gateway > 0)
        chat_test_spawn_stop(gateway, SIGKILL, WAIT_MS);
    gateway = -1;
}

START_TEST(test_killed_gateway_users_go_offline)
{
    char url[128], room[96], carol[64], obs_user[64];
    own_gateway_start(url, sizeof url);
    chat_test_unique(room, sizeof room, "it-pres-kill");
    chat_test_unique(carol, sizeof carol, "carol");
    chat_test_unique(obs_user, sizeof obs_user, "obs");
    chat_tc_t *obs = connect_to(1, obs_user);
    cJSON_Delete(chat_tc_join(obs, room, -1));
    chat_tc_t *victim =
        chat_tc_connect(url, chat_test_demo_tenant(), chat_test_demo_secret(), carol, NULL);
    cJSON_Delete(chat_tc_join(victim, room, -1));
    expect_presence(obs, room, carol, true, CHAT_TC_TIMEOUT_MS);

    ck_assert_int_eq(chat_test_spawn_stop(gateway, SIGKILL, WAIT_MS) & 0x7f, SIGKILL);
    gateway = -1;
    int64_t killed_at = chat_clock_mono_ms();
    expect_presence(obs, room, carol, false, OFFLINE_WITHIN_MS + 5000);
    int64_t took = chat_clock_mono_ms() - killed_at;
    printf("150: offline %lld ms after the kill\n", (long long)took);
    ck_assert_msg(took <= OFFLINE_WITHIN_MS, "offline only %lld ms after the kill",
                  (long long)took);
    /* Whoever joins now does not see carol online. */
    chat_tc_t *late_user = connect_to(0, "late");
    cJSON *joined = chat_tc_join(late_user, room, -1);
    ck_assert(!online_lists(joined, carol));
    cJSON_Delete(joined);
    chat_tc_close(late_user);
    chat_tc_free(victim);
    chat_tc_close(obs);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("presence_typing");
    TCase *tc = tcase_create("presence_typing");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, NULL, own_gateway_stop);
    tcase_add_test(tc, test_scripts_first_and_last_across_gateways);
    tcase_add_test(tc, test_presence_first_in_last_out);
    tcase_add_test(tc, test_typing_to_others_throttled);
    tcase_add_test(tc, test_killed_gateway_users_go_offline);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
