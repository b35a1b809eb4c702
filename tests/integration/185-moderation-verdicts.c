/* End to end: moderation's verdicts and mutes in the message service. The test produces the
 * verdicts to chat.moderation itself, as the moderation service would (the topic is the
 * contract), and sets mutes in Redis with common/mutes. A removal reaches the online clients
 * of both gateways as an update {op moderate, removed, reason, useq}; history shows the message
 * removed without its text; a client that was offline gets it by resuming with since and
 * usince; the same verdict again, a rescan's and a moderator's, leave exactly one useq and
 * one update record; a verdict about an unknown message takes no useq; the removed message
 * refuses edit and react; a muted user's send is answered error forbidden "muted", nothing is
 * stored, and sends work again once the mute ended; the service refuses to start when
 * chat.moderation's partitions are not chat.inbound's. */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/contract.h"
#include "common/events.h"
#include "common/mutes.h"
#include "common/redis.h"
#include "common/store.h"
#include "tests/support/chat.h"
#include "tests/support/spawn.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"
#include "tools/client/client_frames.h"

#define QUIET_MS 1500
/* The message service trusts "this tenant has no mute" this long (MESSAGE_MUTES_HINT_MS of
 * services/message/pipeline.h): a tenant's first mute refuses sends within it. */
#define MUTES_HINT_MS 1000
#define MUTE_MS 4000 /* the test's short mute */

static struct {
    chat_store_t *store;
    chat_bus_producer_t *producer;
    chat_redis_t *redis;
    const char *tenant;
    const char *secret;
} it;

static void setup(void)
{
    it.tenant = chat_test_demo_tenant();
    it.secret = chat_test_demo_secret();
    ck_assert_int_eq(chat_store_new(chat_test_stack_get("CHAT_MONGO_URI"), "it-185", &it.store),
                     CHAT_OK);
    chat_bus_producer_conf_t pc = {.brokers = chat_test_stack_get("CHAT_KAFKA_BROKERS"),
                                   .client_id = "it185",
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

/* ---- moderation's side ---- */

/* Produces a verdict about message id (seq) of room to chat.moderation, keyed tenant/room as
 * moderation keys it, and waits for its delivery. */
static void produce_verdict(const char *room, const char *id, int64_t seq, const char *action,
                            const char *reason)
{
    chat_event_t ev = {.type = CHAT_EV_VERDICT,
                       .tenant = it.tenant,
                       .room = room,
                       .id = id,
                       .seq = seq,
                       .has_seq = true,
                       .action = action,
                       .reason = reason,
                       .rule = "it-185",
                       .ts = chat_clock_wall_ms(),
                       .has_ts = true};
    char *value = NULL, key[CHAT_ROOM_KEY_MAX];
    size_t len = 0;
    ck_assert_int_eq(chat_event_encode(&ev, &value, &len), CHAT_OK);
    int keylen = chat_room_key(it.tenant, room, key, sizeof key);
    ck_assert_int_gt(keylen, 0);
    ck_assert_int_eq(chat_bus_produce(it.producer, CHAT_TOPIC_MODERATION, CHAT_BUS_PARTITION_ANY,
                                      key, (size_t)keylen, value, len, NULL),
                     CHAT_OK);
    ck_assert_int_eq(chat_bus_producer_flush(it.producer, 10000), CHAT_OK);
    free(value);
}

/* ---- MongoDB ---- */

/* Calls each on every document of collection matching filter (destroyed here); returns how
 * many there were. */
static int find_each(const char *collection, bson_t *filter, void (*each)(const bson_t *doc))
{
    mongoc_client_t *client = chat_store_acquire(it.store);
    mongoc_collection_t *col = chat_store_collection(it.store, client, collection);
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, NULL, NULL);
    const bson_t *doc;
    int n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        if (each != NULL)
            each(doc);
        n++;
    }
    bson_error_t error;
    ck_assert_msg(!mongoc_cursor_error(cur, &error), "find in %s: %s", collection, error.message);
    mongoc_cursor_destroy(cur);
    mongoc_collection_destroy(col);
    chat_store_release(it.store, client);
    bson_destroy(filter);
    return n;
}

/* The `updates` records of message id in room. */
static int update_records(const char *room, const char *id)
{
    return find_each(
        "updates",
        BCON_NEW("tenant", BCON_UTF8(it.tenant), "room", BCON_UTF8(room), "id", BCON_UTF8(id)),
        NULL);
}

/* A removed message's document: removed, a reason, no text, op moderate. */
static void check_removed_doc(const bson_t *doc)
{
    bson_iter_t i;
    ck_assert(bson_iter_init_find(&i, doc, "removed") && BSON_ITER_HOLDS_BOOL(&i) &&
              bson_iter_bool(&i));
    ck_assert(bson_iter_init_find(&i, doc, "reason") && BSON_ITER_HOLDS_UTF8(&i));
    ck_assert_str_eq(bson_iter_utf8(&i, NULL), "profanity");
    ck_assert(!bson_iter_init_find(&i, doc, "text"));
    ck_assert(bson_iter_init_find(&i, doc, "uop") && BSON_ITER_HOLDS_UTF8(&i));
    ck_assert_str_eq(bson_iter_utf8(&i, NULL), "moderate");
}

/* ---- clients ---- */

static void check_error(cJSON *f, const char *code, const char *message)
{
    char *txt = cJSON_PrintUnformatted(f);
    ck_assert_msg(chat_json_is(f, "error"), "not an error: %s", txt);
    ck_assert_str_eq(chat_json_str(f, "code"), code);
    ck_assert_str_eq(chat_json_str(f, "message"), message);
    free(txt);
    cJSON_Delete(f);
}

/* Joins room with since and usince and returns the joined frame; the replayed msg and update
 * frames follow in the queue. */
static cJSON *join_resume(chat_tc_t *c, const char *room, int64_t since, int64_t usince)
{
    static unsigned n;
    char rid[32], frame[512];
    snprintf(rid, sizeof rid, "j-%u", ++n);
    snprintf(frame, sizeof frame,
             "{\"type\":\"join\",\"room\":\"%s\",\"since\":%lld,\"usince\":%lld,\"rid\":\"%s\"}",
             room, (long long)since, (long long)usince, rid);
    cJSON *j = chat_tc_request(c, frame, rid, CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(chat_json_is(j, "joined"), "join with usince not answered joined");
    return j;
}

/* Checks an update frame of the removal of message m: op moderate, removed, the reason, useq,
 * no text, no user (moderation is nobody). */
static void check_removal(const cJSON *u, const chat_tc_sent_t *m, int64_t useq)
{
    char *txt = cJSON_PrintUnformatted(u);
    ck_assert_msg(chat_json_is(u, "update"), "not an update: %s", txt);
    ck_assert_str_eq(chat_json_str(u, "op"), "moderate");
    ck_assert_str_eq(chat_json_str(u, "id"), m->id);
    ck_assert_int_eq(chat_json_int(u, "seq"), m->seq);
    ck_assert_int_eq(chat_json_int(u, "useq"), useq);
    ck_assert_msg(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(u, "removed")), "%s", txt);
    ck_assert_str_eq(chat_json_str(u, "reason"), "profanity");
    ck_assert_ptr_null(chat_json_str(u, "text"));
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(u, "user"));
    free(txt);
}

/* The msgs of a history frame: the one with seq, NULL if absent. */
static const cJSON *history_msg(const cJSON *h, int64_t seq)
{
    const cJSON *m;
    cJSON_ArrayForEach(m, cJSON_GetObjectItemCaseSensitive(h, "msgs"))
    {
        if (chat_json_int(m, "seq") == seq)
            return m;
    }
    return NULL;
}

static uint64_t message_metric(const char *series)
{
    return chat_test_ops_metric(chat_test_ops_port_message(), series);
}

/* ---- tests ---- */

START_TEST(test_removal)
{
    char room[96], alice[64], bob[64], carol[64];
    chat_test_unique(room, sizeof room, "mod");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_test_unique(bob, sizeof bob, "bob");
    chat_test_unique(carol, sizeof carol, "carol");
    uint64_t removals0 = message_metric("chat_message_moderation_removals_total");
    uint64_t observed0 = message_metric("chat_message_moderation_seconds_count");
    chat_tc_t *a = chat_tc_connect_demo(0, alice);
    chat_tc_t *b = chat_tc_connect_demo(1 % chat_test_gateway_count(), bob);
    chat_tc_t *c = chat_tc_connect_demo(1 % chat_test_gateway_count(), carol);
    cJSON_Delete(chat_tc_join(a, room, -1));
    cJSON_Delete(chat_tc_join(b, room, -1));
    cJSON_Delete(chat_tc_join(c, room, -1));
    chat_tc_sent_t m1 = chat_tc_post(a, room, "c1", "a very bad word");
    chat_tc_sent_t m2 = chat_tc_post(a, room, "c2", "fine");
    /* carol saw both and goes offline */
    ck_assert_uint_eq(chat_tc_collect_msgs(c, room, 2, NULL, CHAT_TC_TIMEOUT_MS), 2);
    chat_tc_close(c);

    int64_t start = chat_clock_mono_ms();
    produce_verdict(room, m1.id, m1.seq, "remove", "profanity");
    chat_tc_t *both[] = {a, b};
    for (size_t k = 0; k < 2; k++) {
        cJSON *u = chat_tc_wait_for(both[k], "update", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(u != NULL, "client %zu got no removal", k);
        check_removal(u, &m1, 1);
        cJSON_Delete(u);
    }
    printf("removal delivered %lld ms after the verdict was produced\n",
           (long long)(chat_clock_mono_ms() - start));

    /* history: removed, no text; the other message untouched */
    cJSON *h = chat_tc_history(b, room, 0, 0);
    const cJSON *h1 = history_msg(h, m1.seq), *h2 = history_msg(h, m2.seq);
    ck_assert_ptr_nonnull(h1);
    ck_assert_ptr_nonnull(h2);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h1, "removed")));
    ck_assert_str_eq(chat_json_str(h1, "reason"), "profanity");
    ck_assert_ptr_null(chat_json_str(h1, "text"));
    ck_assert_str_eq(chat_json_str(h2, "text"), "fine");
    cJSON_Delete(h);
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, m1.id);
    ck_assert_int_eq(find_each("messages", BCON_NEW("_id", BCON_OID(&oid)), check_removed_doc), 1);

    /* carol comes back: since and usince give her the removal */
    c = chat_tc_connect_demo(0, carol);
    cJSON *j = join_resume(c, room, m2.seq, 0);
    ck_assert_int_eq(chat_json_int(j, "useq"), 1);
    cJSON_Delete(j);
    cJSON *u = chat_tc_wait_for(c, "update", "room", room, CHAT_TC_TIMEOUT_MS);
    ck_assert_msg(u != NULL, "the resume brought no removal");
    check_removal(u, &m1, 1);
    cJSON_Delete(u);
    chat_tc_close(c);

    /* the same verdict 3 times more (a replay, a rescan, a moderator's review): still one */
    produce_verdict(room, m1.id, m1.seq, "remove", "profanity");
    produce_verdict(room, m1.id, m1.seq, "remove", "rescan");
    produce_verdict(room, m1.id, m1.seq, "remove", "moderator");
    /* an unknown message, then a removal of m2 on the same partition (same key): it takes
     * useq 2, so nothing before it took one */
    produce_verdict(room, "65f1c0ffee0123456789abcd", 1, "remove", "profanity");
    produce_verdict(room, m2.id, m2.seq, "flag", "maybe");
    produce_verdict(room, m2.id, m2.seq, "remove", "profanity");
    for (size_t k = 0; k < 2; k++) {
        u = chat_tc_wait_for(both[k], "update", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(u != NULL, "client %zu got no removal of m2", k);
        check_removal(u, &m2, 2);
        cJSON_Delete(u);
        ck_assert_ptr_null(chat_tc_wait(both[k], "update", QUIET_MS));
    }
    ck_assert_int_eq(update_records(room, m1.id), 1);
    ck_assert_int_eq(update_records(room, m2.id), 1);
    c = chat_tc_connect_demo(1 % chat_test_gateway_count(), carol);
    j = join_resume(c, room, m2.seq, 0);
    ck_assert_int_eq(chat_json_int(j, "useq"), 2);
    cJSON_Delete(j);
    for (int64_t useq = 1; useq <= 2; useq++) {
        u = chat_tc_wait_for(c, "update", "room", room, CHAT_TC_TIMEOUT_MS);
        ck_assert_msg(u != NULL, "resume: no update %lld", (long long)useq);
        check_removal(u, useq == 1 ? &m1 : &m2, useq);
        cJSON_Delete(u);
    }
    ck_assert_ptr_null(chat_tc_wait(c, "update", QUIET_MS));
    chat_tc_close(c);

    /* the removed message refuses edit and react; its author's delete changes nothing */
    check_error(chat_tc_ask(a, chat_client_frame_edit(room, m1.id, "clean now", "e1"), "e1"),
                "not_found", "the message was removed");
    check_error(chat_tc_ask(b, chat_client_frame_react(room, m1.id, "x", true, "r1"), "r1"),
                "not_found", "the message was removed");
    cJSON *ack = chat_tc_ask(a, chat_client_frame_delete(room, m1.id, "d1"), "d1");
    ck_assert_msg(chat_json_is(ack, "ack"), "delete of a removed message not acked");
    ck_assert_int_eq(chat_json_int(ack, "useq"), 1);
    cJSON_Delete(ack);
    ck_assert_int_eq(update_records(room, m1.id), 1);

    ck_assert_uint_ge(message_metric("chat_message_moderation_removals_total") - removals0, 2);
    ck_assert_uint_ge(message_metric("chat_message_moderation_seconds_count") - observed0, 2);
    chat_tc_close(a);
    chat_tc_close(b);
}
END_TEST

/* Messages of tenant/room from user in MongoDB. */
static int messages_from(const char *tenant, const char *room, const char *user)
{
    return find_each(
        "messages",
        BCON_NEW("tenant", BCON_UTF8(tenant), "room", BCON_UTF8(room), "from", BCON_UTF8(user)),
        NULL);
}

/* A muted user (a tenant of its own, so that its mutes hash is the test's alone) is answered
 * error forbidden "muted" with the send's cid, nothing is stored and nobody gets it; the
 * others send as before and the muted user still reads; a shorter mute set afterwards does
 * not shorten it; once it ended the user sends again and the hash is gone. */
START_TEST(test_mute)
{
    char tenant[64], secret[64], room[96], mallory[64], alice[64], key[160];
    chat_test_tenant_create(tenant, sizeof tenant, secret, sizeof secret);
    chat_test_unique(room, sizeof room, "muted");
    chat_test_unique(mallory, sizeof mallory, "mallory");
    chat_test_unique(alice, sizeof alice, "alice");
    chat_tc_t *m = chat_tc_connect_user(0, tenant, secret, mallory, NULL);
    chat_tc_t *a = chat_tc_connect_user(1 % chat_test_gateway_count(), tenant, secret, alice, NULL);
    cJSON_Delete(chat_tc_join(m, room, -1));
    cJSON_Delete(chat_tc_join(a, room, -1));
    chat_tc_post(m, room, "before", "hello");
    ck_assert_uint_eq(chat_tc_collect_msgs(a, room, 1, NULL, CHAT_TC_TIMEOUT_MS), 1);
    ck_assert_uint_eq(chat_tc_collect_msgs(m, room, 1, NULL, CHAT_TC_TIMEOUT_MS), 1);

    int64_t until = chat_clock_wall_ms() + MUTE_MS;
    ck_assert_int_eq(chat_mute_set(it.redis, tenant, mallory, until), CHAT_OK);
    ck_assert_int_eq(chat_mute_set(it.redis, tenant, mallory, until - 2000), CHAT_OK);
    ck_assert_int_gt(chat_mute_key(tenant, key, sizeof key), 0);
    redisReply *r = chat_redis_command(it.redis, NULL, "HGET %s %s", key, mallory);
    ck_assert(r != NULL && r->type == REDIS_REPLY_STRING);
    ck_assert_int_eq(strtoll(r->str, NULL, 10), until);
    freeReplyObject(r);
    r = chat_redis_command(it.redis, NULL, "PTTL %s", key);
    ck_assert(r != NULL && r->type == REDIS_REPLY_INTEGER);
    ck_assert_int_gt(r->integer, 0);
    ck_assert_int_le(r->integer, MUTE_MS);
    freeReplyObject(r);
    bool muted[2] = {false, true};
    const char *users[] = {mallory, alice};
    ck_assert_int_eq(chat_mute_check(it.redis, tenant, users, 2, chat_clock_wall_ms(), muted),
                     CHAT_OK);
    ck_assert(muted[0] && !muted[1]);
    chat_clock_sleep_ms(MUTES_HINT_MS + 200);

    uint64_t refused0 = message_metric("chat_message_muted_sends_total");
    cJSON *f = chat_tc_send_wait(m, room, "m1", "spam spam", CHAT_TC_TIMEOUT_MS);
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(chat_json_str(f, "cid"), "m1");
    check_error(f, "forbidden", "muted");
    ck_assert_int_eq(message_metric("chat_message_muted_sends_total") - refused0, 1);
    /* alice still talks, mallory still reads; mallory's send reached nobody */
    chat_tc_post(a, room, "a1", "calm down");
    cJSON *msg = chat_tc_wait_for(m, "msg", "room", room, CHAT_TC_TIMEOUT_MS);
    ck_assert_ptr_nonnull(msg);
    ck_assert_str_eq(chat_json_str(msg, "text"), "calm down");
    cJSON_Delete(msg);
    msg = chat_tc_wait_for(a, "msg", "from", mallory, QUIET_MS);
    ck_assert_msg(msg == NULL, "a muted user's message was delivered");
    ck_assert_int_eq(messages_from(tenant, room, mallory), 1);

    /* the mute ends: mallory sends again; the hash expired with it */
    int64_t wait = until - chat_clock_wall_ms() + 200;
    if (wait > 0)
        chat_clock_sleep_ms(wait);
    chat_tc_post(m, room, "m2", "sorry");
    ck_assert_int_eq(messages_from(tenant, room, mallory), 2);
    r = chat_redis_command(it.redis, NULL, "EXISTS %s", key);
    ck_assert(r != NULL && r->type == REDIS_REPLY_INTEGER);
    ck_assert_int_eq(r->integer, 0);
    freeReplyObject(r);
    chat_tc_close(m);
    chat_tc_close(a);
}
END_TEST

/* With a chat.moderation of other partitions than chat.inbound's, a room's verdicts could reach
 * another process than its sequencer: the service refuses to start, naming the variable. */
START_TEST(test_start_refused_on_partition_mismatch)
{
    char topic[96], group[96], logpath[256], bin[1024];
    chat_test_unique(topic, sizeof topic, "it185-moderation");
    chat_test_unique(group, sizeof group, "it185");
    const char *brokers = chat_test_stack_get("CHAT_KAFKA_BROKERS");
    int inbound = chat_bus_topic_partitions(brokers, CHAT_TOPIC_INBOUND, 10000);
    ck_assert_int_gt(inbound, 0);
    chat_bus_topic_spec_t spec = {.name = topic, .partitions = inbound + 1, .replication = -1};
    ck_assert_int_eq(chat_bus_topics_ensure(brokers, &spec, 1, 10000), CHAT_OK);
    snprintf(bin, sizeof bin, "%s/services/message/chat-message",
             chat_test_stack_get("CHAT_BUILD_DIR"));
    snprintf(logpath, sizeof logpath, "%s/it185-refused-%d.log",
             getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp", (int)getpid());
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    char topic_var[160], group_var[160];
    snprintf(topic_var, sizeof topic_var, "CHAT_TOPIC_MODERATION=%s", topic);
    snprintf(group_var, sizeof group_var, "CHAT_MESSAGE_GROUP=%s", group);
    const char *const argv[] = {bin, NULL};
    const char *const env[] = {topic_var, group_var, "CHAT_OPS_PORT=0", "CHAT_CONNECT_TIMEOUT=10s",
                               NULL};
    pid_t pid = chat_test_spawn(argv, env, fd, fd);
    close(fd);
    int status = chat_test_spawn_wait(pid, 60000);
    ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) != 0,
                  "chat-message started with a mismatched chat.moderation (status %d)", status);
    FILE *log = fopen(logpath, "r");
    ck_assert_ptr_nonnull(log);
    char line[4096];
    bool named = false;
    while (!named && fgets(line, sizeof line, log) != NULL)
        named = strstr(line, "\"level\":\"error\"") != NULL &&
                strstr(line, "\"var\":\"CHAT_TOPIC_MODERATION\"") != NULL;
    fclose(log);
    unlink(logpath);
    ck_assert_msg(named, "no error line naming CHAT_TOPIC_MODERATION");
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    mongoc_init();
    Suite *s = suite_create("moderation-verdicts");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_removal);
    tcase_add_test(tc, test_mute);
    tcase_add_test(tc, test_start_refused_on_partition_mismatch);
    suite_add_tcase(s, tc);
    int rc = chat_test_suite_run(s, false);
    mongoc_cleanup();
    return rc;
}
