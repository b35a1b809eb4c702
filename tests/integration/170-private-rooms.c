/* End to end: private rooms, notices, blocks and the tenant's own sends, edits and deletes as
 * the server API makes them (docs/server-api.md), without the api service: the test writes the
 * `rooms`, `members` and `blocks` documents to MongoDB and produces the api's events to
 * chat.inbound itself (origin {gw: "api", conn}), then reads the answers from the api's Redis
 * reply lists. A non-member cannot join, page or send; a member can; a system message reaches
 * the members as a msg from "system"; a removed member's connections (on both gateways) get
 * `left` {reason: removed} and nothing of the room after it; a deleted room ends everyone's
 * subscription; blocked dm sends are refused; the tenant's delete carries its reason; a token
 * of the reserved user "system" is refused. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/events.h"
#include "common/redis.h"
#include "common/store.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"
#include "tools/client/client_frames.h"

#define QUIET_MS 1500
#define REMOVAL_MS 1000 /* a removed member is cut off within this */
#define CLOSE_UNAUTHORIZED 4001

static struct {
    chat_store_t *store;
    chat_bus_producer_t *producer;
    chat_redis_t *redis;
    const char *tenant;
    const char *secret;
    int api_conns; /* reply lists used so far */
} it;

static void setup(void)
{
    it.tenant = chat_test_demo_tenant();
    it.secret = chat_test_demo_secret();
    ck_assert_int_eq(chat_store_new(chat_test_stack_get("CHAT_MONGO_URI"), "it-170", &it.store),
                     CHAT_OK);
    chat_bus_producer_conf_t pc = {.brokers = chat_test_stack_get("CHAT_KAFKA_BROKERS"),
                                   .client_id = "it170",
                                   .linger_ms = 0,
                                   .connect_timeout_ms = 10000};
    ck_assert_int_eq(chat_bus_producer_new(&pc, &it.producer), CHAT_OK);
    ck_assert_int_eq(chat_redis_connect(chat_test_stack_get("CHAT_REDIS_URL"), 5000, &it.redis),
                     CHAT_OK);
}

static void teardown(void)
{
    chat_redis_free(it.redis);
    chat_bus_producer_destroy(it.producer);
    chat_store_destroy(it.store);
}

/* ---- MongoDB, as the api writes it ---- */

/* Replaces (upsert) the document with _id id in collection by doc (destroyed here). */
static void put_doc(const char *collection, const char *id, bson_t *doc)
{
    mongoc_client_t *client = chat_store_acquire(it.store);
    mongoc_collection_t *col = chat_store_collection(it.store, client, collection);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *opts = BCON_NEW("upsert", BCON_BOOL(true));
    bson_error_t error;
    bool ok = mongoc_collection_replace_one(col, filter, doc, opts, NULL, &error);
    ck_assert_msg(ok, "write of %s/%s failed: %s", collection, id, error.message);
    bson_destroy(opts);
    bson_destroy(filter);
    bson_destroy(doc);
    mongoc_collection_destroy(col);
    chat_store_release(it.store, client);
}

static void del_doc(const char *collection, const char *id)
{
    mongoc_client_t *client = chat_store_acquire(it.store);
    mongoc_collection_t *col = chat_store_collection(it.store, client, collection);
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_error_t error;
    ck_assert_msg(mongoc_collection_delete_one(col, filter, NULL, NULL, &error), "delete: %s",
                  error.message);
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    chat_store_release(it.store, client);
}

static void put_room(const char *room, bool deleted)
{
    char id[256];
    snprintf(id, sizeof id, "%s/%s", it.tenant, room);
    bson_t *doc =
        BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(it.tenant), "room", BCON_UTF8(room),
                 "kind", BCON_UTF8("private"), "created", BCON_INT64(chat_clock_wall_ms()));
    if (deleted)
        BSON_APPEND_BOOL(doc, "deleted", true);
    put_doc("rooms", id, doc);
}

static void member_id(char *buf, size_t len, const char *room, const char *user)
{
    snprintf(buf, len, "%s/%s/%s", it.tenant, room, user);
}

static void put_member(const char *room, const char *user)
{
    char id[320];
    member_id(id, sizeof id, room, user);
    put_doc("members", id,
            BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(it.tenant), "room", BCON_UTF8(room),
                     "user", BCON_UTF8(user), "added", BCON_INT64(chat_clock_wall_ms())));
}

static void del_member(const char *room, const char *user)
{
    char id[320];
    member_id(id, sizeof id, room, user);
    del_doc("members", id);
}

static void put_block(const char *user, const char *target)
{
    char id[256];
    snprintf(id, sizeof id, "%s/%s/%s", it.tenant, user, target);
    put_doc("blocks", id,
            BCON_NEW("_id", BCON_UTF8(id), "tenant", BCON_UTF8(it.tenant), "user", BCON_UTF8(user),
                     "target", BCON_UTF8(target), "created", BCON_INT64(chat_clock_wall_ms())));
}

/* ---- chat.inbound, as the api produces ---- */

/* A fresh request token of the api (its reply list's name) into conn. */
static void api_conn(char *conn, size_t len)
{
    char unique[48];
    chat_test_unique(unique, sizeof unique, "r");
    snprintf(conn, len, "%s-%d", unique, ++it.api_conns);
}

static void produce(const chat_event_t *ev)
{
    char *value = NULL, key[256];
    size_t len = 0;
    ck_assert_int_eq(chat_event_encode(ev, &value, &len), CHAT_OK);
    int keylen = chat_room_key(ev->tenant, ev->room, key, sizeof key);
    ck_assert_int_gt(keylen, 0);
    ck_assert_int_eq(chat_bus_produce(it.producer, "chat.inbound", CHAT_BUS_PARTITION_ANY, key,
                                      (size_t)keylen, value, len, NULL),
                     CHAT_OK);
    ck_assert_int_eq(chat_bus_producer_flush(it.producer, 10000), CHAT_OK);
    free(value);
}

/* A send by user (CHAT_SYSTEM_USER for a system message) with the api's origin conn;
 * notice/target NULL for a plain message. */
static void api_send(const char *room, const char *user, const char *cid, const char *text,
                     const char *notice, const char *target, const char *conn)
{
    chat_event_t ev = {.type = CHAT_EV_SEND,
                       .tenant = it.tenant,
                       .room = room,
                       .user = user,
                       .cid = cid,
                       .text = text,
                       .notice = notice,
                       .target = target,
                       .ts = chat_clock_wall_ms(),
                       .has_ts = true,
                       .origin_gw = CHAT_API_ORIGIN,
                       .origin_conn = conn};
    produce(&ev);
}

/* The next answer on the api's reply list of conn (BLPOP, up to 10 s); fails the test if
 * none comes. Also checks that the list expires. */
static cJSON *api_reply(const char *conn)
{
    char key[CHAT_API_REPLY_KEY_MAX];
    ck_assert_int_gt(chat_api_reply_key(conn, key, sizeof key), 0);
    redisReply *r = chat_redis_command(it.redis, NULL, "BLPOP %s 10", key);
    ck_assert_msg(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2, "no answer on %s",
                  key);
    cJSON *f = cJSON_Parse(r->element[1]->str);
    ck_assert_ptr_nonnull(f);
    freeReplyObject(r);
    return f;
}

/* ---- clients ---- */

static chat_tc_t *connect_user(size_t gw, const char *user)
{
    chat_tc_t *c =
        chat_tc_connect_user(gw % chat_test_gateway_count(), it.tenant, it.secret, user, NULL);
    chat_tc_ignore(c, "read");
    return c;
}

static void check_error(cJSON *f, const char *code, const char *message)
{
    ck_assert_msg(chat_json_is(f, "error"), "not an error: %s", chat_json_str(f, "type"));
    ck_assert_str_eq(chat_json_str(f, "code"), code);
    if (message != NULL)
        ck_assert_str_eq(chat_json_str(f, "message"), message);
    cJSON_Delete(f);
}

/* The answer to a send of text to room with cid: the ack or the error frame. */
static cJSON *send_answer(chat_tc_t *c, const char *room, const char *cid, const char *text)
{
    cJSON *f = chat_tc_send_wait(c, room, cid, text, CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(f != NULL, "no answer to send %s", cid);
    return f;
}

/* The next msg of room on c; fails the test if none comes within timeout_ms. */
static cJSON *expect_msg(chat_tc_t *c, const char *room, int timeout_ms)
{
    cJSON *f = chat_tc_wait_for(c, "msg", "room", room, timeout_ms);
    ck_assert_msg(f != NULL, "no msg of %s", room);
    return f;
}

/* ---- tests ---- */

/* A private room: a non-member's join and history are forbidden, so is a send without a join
 * (whether the gateway knows the room from a subscriber or reads it); a member joins, sends
 * and pages it; a deleted room is not found. */
START_TEST(test_private_room_access)
{
    char room[96], gone[96], alice[64], bob[64];
    chat_test_unique(room, sizeof room, "priv");
    chat_test_unique(gone, sizeof gone, "gone");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(bob, sizeof bob, "bob");
    put_room(room, false);
    put_member(room, alice);
    put_room(gone, true);
    put_member(gone, alice);

    chat_tc_t *b = connect_user(0, bob);
    /* nobody subscribed yet: the gateway reads the room's kind for the send */
    check_error(send_answer(b, room, "b0", "let me in"), "forbidden", "join the room first");
    check_error(chat_tc_ask(b, chat_client_frame_join(room, -1, "j1"), "j1"), "forbidden",
                "not a member");
    check_error(chat_tc_ask(b, chat_client_frame_history(room, 0, 10, "h1"), "h1"), "forbidden",
                "not a member");

    chat_tc_t *a = connect_user(0, alice);
    cJSON_Delete(chat_tc_join(a, room, -1));
    ck_assert_int_eq(chat_tc_send(a, room, "a1", "hello members"), 1);
    /* now the gateway knows the room from alice's subscription */
    check_error(send_answer(b, room, "b1", "still out"), "forbidden", "join the room first");
    chat_tc_t *b1 = connect_user(1, bob); /* the other gateway, if there are two */
    check_error(send_answer(b1, room, "b2", "out"), "forbidden", "join the room first");
    cJSON *h = chat_tc_history(a, room, 0, 10);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(h, "msgs")), 1);
    cJSON_Delete(h);
    /* alice on a connection that did not join: history through the membership check */
    chat_tc_t *a2 = connect_user(1, alice);
    h = chat_tc_history(a2, room, 0, 10);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(h, "msgs")), 1);
    cJSON_Delete(h);
    check_error(send_answer(a2, room, "a2", "not joined here"), "forbidden", "join the room first");
    /* reactions, edits, deletes and read marks follow the same rule: on gateway 0 the room is
     * known private from alice's subscription, on the other one its kind is read first */
    static const char any_id[] = "0123456789abcdef01234567";
    check_error(chat_tc_ask(b, chat_client_frame_react(room, any_id, "x", true, "r1"), "r1"),
                "forbidden", "join the room first");
    check_error(chat_tc_ask(b1, chat_client_frame_react(room, any_id, "x", true, "r2"), "r2"),
                "forbidden", "join the room first");
    check_error(chat_tc_ask(b1, chat_client_frame_delete(room, any_id, "d1"), "d1"), "forbidden",
                "join the room first");
    check_error(chat_tc_ask(b1, chat_client_frame_read(room, 1, "m1"), "m1"), "forbidden",
                "join the room first");

    check_error(chat_tc_ask(a, chat_client_frame_join(gone, -1, "j2"), "j2"), "not_found",
                "room not found");
    check_error(send_answer(a, gone, "a3", "anyone?"), "not_found", "room not found");

    /* a public room still works without a join */
    char pub[96];
    chat_test_unique(pub, sizeof pub, "pub");
    cJSON *ack = send_answer(b, pub, "b3", "public");
    ck_assert_msg(chat_json_is(ack, "ack"), "public send not acked");
    cJSON_Delete(ack);
    chat_tc_close(a2);
    chat_tc_close(b1);
    chat_tc_close(a);
    chat_tc_close(b);
}
END_TEST

/* A system message and a notice reach the members as msg frames from "system" (also in
 * history), and the api's reply list gets the ack a client would; a bot sends through the api
 * like any user. */
START_TEST(test_system_messages_and_api_replies)
{
    char room[96], alice[64], bob[64], conn[96];
    chat_test_unique(room, sizeof room, "sys");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(bob, sizeof bob, "bob");
    put_room(room, false);
    put_member(room, alice);
    chat_tc_t *a = connect_user(0, alice);
    cJSON_Delete(chat_tc_join(a, room, -1));

    api_conn(conn, sizeof conn);
    api_send(room, CHAT_SYSTEM_USER, "s1", "Maintenance at 22:00", NULL, NULL, conn);
    cJSON *m = expect_msg(a, room, CHAT_TC_TIMEOUT_MS);
    ck_assert_str_eq(chat_json_str(m, "from"), CHAT_SYSTEM_USER);
    ck_assert_str_eq(chat_json_str(m, "text"), "Maintenance at 22:00");
    int64_t seq = chat_json_int(m, "seq");
    const char *id = chat_json_str(m, "id");
    cJSON *ack = api_reply(conn);
    ck_assert_str_eq(chat_json_str(ack, "type"), "ack");
    ck_assert_str_eq(chat_json_str(ack, "cid"), "s1");
    ck_assert_str_eq(chat_json_str(ack, "room"), room);
    ck_assert_int_eq(chat_json_int(ack, "seq"), seq);
    ck_assert_str_eq(chat_json_str(ack, "id"), id);
    ck_assert_int_gt(chat_json_int(ack, "ts"), 0);
    cJSON_Delete(ack);
    cJSON_Delete(m);
    char key[CHAT_API_REPLY_KEY_MAX];
    chat_api_reply_key(conn, key, sizeof key);
    redisReply *ttl = chat_redis_command(it.redis, NULL, "TTL %s", key);
    ck_assert_ptr_nonnull(ttl);
    ck_assert_int_le(ttl->integer, CHAT_API_REPLY_TTL_S); /* -2: gone once popped */
    freeReplyObject(ttl);

    put_member(room, bob);
    api_conn(conn, sizeof conn);
    api_send(room, CHAT_SYSTEM_USER, "s2", "", "member_added", bob, conn);
    m = expect_msg(a, room, CHAT_TC_TIMEOUT_MS);
    ck_assert_str_eq(chat_json_str(m, "notice"), "member_added");
    ck_assert_str_eq(chat_json_str(m, "target"), bob);
    ck_assert_str_eq(chat_json_str(m, "text"), "");
    cJSON_Delete(m);
    cJSON_Delete(api_reply(conn));

    /* a bot's message through the api */
    api_conn(conn, sizeof conn);
    api_send(room, "helpbot", "bot1", "beep", NULL, NULL, conn);
    m = expect_msg(a, room, CHAT_TC_TIMEOUT_MS);
    ck_assert_str_eq(chat_json_str(m, "from"), "helpbot");
    cJSON_Delete(m);
    cJSON_Delete(api_reply(conn));

    /* a notice from anyone but "system" is refused, the api hears why */
    api_conn(conn, sizeof conn);
    api_send(room, "helpbot", "bot2", "", "member_added", bob, conn);
    cJSON *err = api_reply(conn);
    ck_assert_str_eq(chat_json_str(err, "type"), "error");
    ck_assert_str_eq(chat_json_str(err, "code"), "bad_request");
    ck_assert_str_eq(chat_json_str(err, "cid"), "bot2");
    cJSON_Delete(err);

    /* the new member pages the history: the notices are there */
    chat_tc_t *b = connect_user(1, bob);
    cJSON *h = chat_tc_history(b, room, 0, 10);
    cJSON *msgs = cJSON_GetObjectItemCaseSensitive(h, "msgs");
    ck_assert_int_eq(cJSON_GetArraySize(msgs), 3);
    ck_assert_str_eq(chat_json_str(cJSON_GetArrayItem(msgs, 1), "notice"), "member_added");
    ck_assert_str_eq(chat_json_str(cJSON_GetArrayItem(msgs, 1), "target"), bob);
    cJSON_Delete(h);
    /* and the join's replay */
    cJSON_Delete(chat_tc_join(b, room, 0));
    size_t n = chat_tc_collect_msgs(b, room, 3, NULL, CHAT_TC_TIMEOUT_MS);
    ck_assert_uint_eq(n, 3);
    chat_tc_close(b);
    chat_tc_close(a);
}
END_TEST

/* A removed member's two connections (on both gateways when the stack has two) get the notice,
 * then `left` {reason: removed} within REMOVAL_MS, and nothing of the room after it; the
 * others keep receiving; the removed member cannot join again. */
START_TEST(test_member_removed)
{
    char room[96], alice[64], bob[64], conn[96];
    chat_test_unique(room, sizeof room, "rm");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(bob, sizeof bob, "bob");
    put_room(room, false);
    put_member(room, alice);
    put_member(room, bob);
    chat_tc_t *a = connect_user(0, alice);
    chat_tc_t *b0 = connect_user(0, bob);
    chat_tc_t *b1 = connect_user(1, bob);
    cJSON_Delete(chat_tc_join(a, room, -1));
    cJSON_Delete(chat_tc_join(b0, room, -1));
    cJSON_Delete(chat_tc_join(b1, room, -1));
    ck_assert_int_eq(chat_tc_send(a, room, "a1", "before"), 1);
    cJSON_Delete(expect_msg(b0, room, CHAT_TC_TIMEOUT_MS));
    cJSON_Delete(expect_msg(b1, room, CHAT_TC_TIMEOUT_MS));

    del_member(room, bob);
    api_conn(conn, sizeof conn);
    int64_t t0 = chat_clock_mono_ms();
    api_send(room, CHAT_SYSTEM_USER, "rm1", "", "member_removed", bob, conn);
    chat_tc_t *bs[] = {b0, b1};
    for (size_t i = 0; i < 2; i++) {
        cJSON *m = expect_msg(bs[i], room, CHAT_TC_TIMEOUT_MS);
        ck_assert_str_eq(chat_json_str(m, "notice"), "member_removed");
        ck_assert_str_eq(chat_json_str(m, "target"), bob);
        cJSON_Delete(m);
        cJSON *left = chat_tc_wait_for(bs[i], "left", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(left != NULL, "connection %zu got no left", i);
        ck_assert_str_eq(chat_json_str(left, "reason"), "removed");
        cJSON_Delete(left);
        int64_t took = chat_clock_mono_ms() - t0;
        ck_assert_msg(took <= REMOVAL_MS, "left after %lld ms", (long long)took);
    }
    cJSON *m = chat_tc_wait_for(a, "msg", "notice", "member_removed", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(m != NULL, "the others got no notice");
    cJSON_Delete(m);
    chat_tc_drop(a, "msg");
    cJSON_Delete(api_reply(conn));
    ck_assert_ptr_null(chat_tc_wait_for(a, "left", "room", room, 0));

    ck_assert_int_eq(chat_tc_send(a, room, "a2", "after"), 3);
    m = expect_msg(a, room, CHAT_TC_TIMEOUT_MS);
    ck_assert_int_eq(chat_json_int(m, "seq"), 3);
    cJSON_Delete(m);
    for (size_t i = 0; i < 2; i++) {
        cJSON *none = chat_tc_wait_for(bs[i], "msg", "room", room, i == 0 ? QUIET_MS : 0);
        ck_assert_msg(none == NULL, "a removed member got seq %lld",
                      (long long)chat_json_int(none, "seq"));
    }
    check_error(chat_tc_ask(b0, chat_client_frame_join(room, -1, "j1"), "j1"), "forbidden",
                "not a member");
    check_error(send_answer(b1, room, "b9", "hello?"), "forbidden", "join the room first");
    chat_tc_close(b1);
    chat_tc_close(b0);
    chat_tc_close(a);
}
END_TEST

/* room_deleted ends every subscription with left {reason: deleted}; the room is not found
 * afterwards. */
START_TEST(test_room_deleted)
{
    char room[96], alice[64], bob[64], conn[96];
    chat_test_unique(room, sizeof room, "del");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(bob, sizeof bob, "bob");
    put_room(room, false);
    put_member(room, alice);
    put_member(room, bob);
    chat_tc_t *a = connect_user(0, alice);
    chat_tc_t *b = connect_user(1, bob);
    cJSON_Delete(chat_tc_join(a, room, -1));
    cJSON_Delete(chat_tc_join(b, room, -1));

    put_room(room, true);
    api_conn(conn, sizeof conn);
    api_send(room, CHAT_SYSTEM_USER, "d1", "", "room_deleted", NULL, conn);
    chat_tc_t *cs[] = {a, b};
    for (size_t i = 0; i < 2; i++) {
        cJSON *m = expect_msg(cs[i], room, CHAT_TC_TIMEOUT_MS);
        ck_assert_str_eq(chat_json_str(m, "notice"), "room_deleted");
        cJSON_Delete(m);
        cJSON *left = chat_tc_wait_for(cs[i], "left", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(left != NULL, "connection %zu got no left", i);
        ck_assert_str_eq(chat_json_str(left, "reason"), "deleted");
        cJSON_Delete(left);
    }
    cJSON_Delete(api_reply(conn));
    check_error(chat_tc_ask(a, chat_client_frame_join(room, -1, "j1"), "j1"), "not_found",
                "room not found");
    check_error(send_answer(b, room, "b1", "hello?"), "not_found", "room not found");
    chat_tc_close(b);
    chat_tc_close(a);
}
END_TEST

/* If bob blocked alice, neither writes in their dm room (forbidden "blocked"); others' dms are
 * not affected; a system message still goes in. */
START_TEST(test_dm_blocked)
{
    char alice[64], bob[64], carol[64], dm[160], dm2[160], conn[96];
    chat_test_unique(alice, sizeof alice, "a");
    chat_test_unique(bob, sizeof bob, "b");
    chat_test_unique(carol, sizeof carol, "c");
    snprintf(dm, sizeof dm, "dm:%s:%s", alice, bob);
    snprintf(dm2, sizeof dm2, "dm:%s:%s", alice, carol);
    chat_tc_t *a = connect_user(0, alice);
    chat_tc_t *b = connect_user(1, bob);
    ck_assert_int_eq(chat_tc_send(a, dm, "a1", "hi bob"), 1);
    put_block(bob, alice);
    /* the message service asks whether a tenant has any block at most every 2 s
     * (MESSAGE_BLOCKS_HINT_MS): a tenant's first block applies within that */
    chat_clock_sleep_ms(2200);
    check_error(send_answer(a, dm, "a2", "hi again"), "forbidden", "blocked");
    check_error(send_answer(b, dm, "b1", "go away"), "forbidden", "blocked");
    ck_assert_int_eq(chat_tc_send(a, dm2, "a3", "hi carol"), 1);
    api_conn(conn, sizeof conn);
    api_send(dm, CHAT_SYSTEM_USER, "s1", "a system note", NULL, NULL, conn);
    cJSON *ack = api_reply(conn);
    ck_assert_str_eq(chat_json_str(ack, "type"), "ack");
    ck_assert_int_eq(chat_json_int(ack, "seq"), 2);
    cJSON_Delete(ack);
    chat_tc_close(b);
    chat_tc_close(a);
}
END_TEST

/* The tenant ("system" from the api) deletes alice's message with a reason: the room gets the
 * update with the reason, the api's reply list the ack with the rid and useq. */
START_TEST(test_admin_delete)
{
    char room[96], alice[64], bob[64], conn[96];
    chat_test_unique(room, sizeof room, "mod");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(bob, sizeof bob, "bob");
    chat_tc_t *a = connect_user(0, alice);
    chat_tc_t *b = connect_user(1, bob);
    cJSON_Delete(chat_tc_join(a, room, -1));
    cJSON_Delete(chat_tc_join(b, room, -1));
    ck_assert_int_eq(chat_tc_send(a, room, "a1", "buy cheap pills"), 1);
    cJSON *m = expect_msg(b, room, CHAT_TC_TIMEOUT_MS);
    char id[32];
    snprintf(id, sizeof id, "%s", chat_json_str(m, "id"));
    cJSON_Delete(m);

    api_conn(conn, sizeof conn);
    chat_event_t del = {.type = CHAT_EV_DELETE,
                        .tenant = it.tenant,
                        .room = room,
                        .user = CHAT_SYSTEM_USER,
                        .id = id,
                        .rid = "del-1",
                        .reason = "spam",
                        .ts = chat_clock_wall_ms(),
                        .has_ts = true,
                        .origin_gw = CHAT_API_ORIGIN,
                        .origin_conn = conn};
    produce(&del);
    chat_tc_t *cs[] = {a, b};
    for (size_t i = 0; i < 2; i++) {
        cJSON *u = chat_tc_wait_for(cs[i], "update", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(u != NULL, "connection %zu got no update", i);
        ck_assert_str_eq(chat_json_str(u, "op"), "delete");
        ck_assert_str_eq(chat_json_str(u, "reason"), "spam");
        ck_assert_str_eq(chat_json_str(u, "user"), CHAT_SYSTEM_USER);
        ck_assert_ptr_null(chat_json_str(u, "text"));
        cJSON_Delete(u);
    }
    cJSON *ack = api_reply(conn);
    ck_assert_str_eq(chat_json_str(ack, "type"), "ack");
    ck_assert_str_eq(chat_json_str(ack, "rid"), "del-1");
    ck_assert_str_eq(chat_json_str(ack, "op"), "delete");
    ck_assert_int_eq(chat_json_int(ack, "seq"), 1);
    ck_assert_int_eq(chat_json_int(ack, "useq"), 1);
    cJSON_Delete(ack);
    /* a client cannot do the same to someone else's message */
    check_error(chat_tc_ask(b, chat_client_frame_delete(room, id, "d2"), "d2"), "forbidden", NULL);
    chat_tc_close(b);
    chat_tc_close(a);
}
END_TEST

/* A token whose sub is the reserved "system" is refused at auth. */
START_TEST(test_system_token_refused)
{
    char *token = chat_test_token(it.tenant, it.secret, CHAT_SYSTEM_USER, NULL, 300);
    chat_tc_t *c = chat_tc_open(chat_test_gateway_url(0));
    chat_tc_send_frame(c, chat_client_frame_auth(token));
    free(token);
    cJSON *e = chat_tc_wait(c, "error", CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(e != NULL, "no error for a system token");
    check_error(e, "unauthorized", "reserved user id");
    ck_assert_int_eq(chat_tc_wait_close(c, CHAT_TC_TIMEOUT_MS, NULL, 0), CLOSE_UNAUTHORIZED);
    chat_tc_free(c);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    mongoc_init();
    Suite *s = suite_create("private-rooms");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_private_room_access);
    tcase_add_test(tc, test_system_messages_and_api_replies);
    tcase_add_test(tc, test_member_removed);
    tcase_add_test(tc, test_room_deleted);
    tcase_add_test(tc, test_dm_blocked);
    tcase_add_test(tc, test_admin_delete);
    tcase_add_test(tc, test_system_token_refused);
    suite_add_tcase(s, tc);
    int rc = chat_test_suite_run(s, false);
    mongoc_cleanup();
    return rc;
}
