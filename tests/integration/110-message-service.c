/* Integration test of the message service against the real stack (Kafka + FerretDB): it
 * starts its own chat-message (unique consumer group, free ops port), produces `send` events
 * to chat.inbound and checks chat.messages and MongoDB: gapless seqs in order, the original
 * ack for a resend, exactly-once storage across a kill -9 in the middle of a stream, rooms that
 * already hold messages continuing after them, and the replay of a batch half stored by a
 * crashed life.
 * Tenants and rooms are unique per run. The stack's own message service would consume the same
 * records and do the work first (leaving the service under test to find them stored), so it is
 * killed for the test and restarted afterwards; the tested copy's own metrics show that it
 * stored the messages itself. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/events.h"
#include "common/contract.h"
#include "tests/support/chat.h"
#include "tests/support/spawn.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

#define KILL_STREAM 300
#define STACK_SERVICE "message" /* the stack's own message service */
#define MAX_EVENTS 4096

typedef struct seen_event {
    chat_event_type_t type;
    char room[64];
    char cid[72];
    char id[32];
    char conn[72];
    int64_t seq;
} seen_event_t;

static struct {
    const char *brokers;
    const char *mongo_uri;
    const char *binary;
    char tenant[64];
    char group[96];
    char logdir[256];
    int lives;
    pid_t pid;
    int ops_port;
    chat_bus_producer_t *producer;
    chat_bus_consumer_t *consumer;
    bool consumer_assigned;
    seen_event_t *events;
    size_t nevents;
    mongoc_client_t *mongo;
} it;

/* ---- the service under test ---- */

static void log_path(char *buf, size_t len, int life)
{
    snprintf(buf, len, "%s/chat-message.%d.log", it.logdir, life);
}

static bool file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Starts a new life of chat-message and waits until it owns chat.inbound partitions. */
static void service_start(void)
{
    char path[512];
    log_path(path, sizeof path, ++it.lives);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ck_assert_msg(fd >= 0, "cannot create %s: %s", path, strerror(errno));
    char brokers[512], mongo_uri[512], port[32], group[128];
    snprintf(brokers, sizeof brokers, "CHAT_KAFKA_BROKERS=%s", it.brokers);
    snprintf(mongo_uri, sizeof mongo_uri, "CHAT_MONGO_URI=%s", it.mongo_uri);
    snprintf(port, sizeof port, "CHAT_OPS_PORT=%d", it.ops_port);
    snprintf(group, sizeof group, "CHAT_MESSAGE_GROUP=%s", it.group);
    /* The group has committed offsets (group_start_at_end); should one be missing, the end of
     * the partition is still better than the records of every other test. A short session lets
     * a restart take over from a killed life fast. */
    const char *const env[] = {brokers,
                               mongo_uri,
                               "CHAT_OPS_ADDR=127.0.0.1",
                               port,
                               group,
                               "CHAT_LOG_LEVEL=info",
                               "KAFKA_AUTO_OFFSET_RESET=latest",
                               "KAFKA_SESSION_TIMEOUT_MS=6000",
                               NULL};
    const char *const argv[] = {it.binary, NULL};
    it.pid = chat_test_spawn(argv, env, fd, fd);
    close(fd);
    int64_t deadline = chat_clock_mono_ms() + 60000;
    while (!file_contains(path, "\"partitions assigned\"")) {
        ck_assert_msg(!chat_test_spawn_exited(it.pid, NULL), "chat-message exited at start; see %s",
                      path);
        ck_assert_msg(chat_clock_mono_ms() < deadline,
                      "chat-message got no partitions in 60 s; see %s", path);
        chat_clock_sleep_ms(50);
    }
}

/* ---- Kafka ---- */

static void on_messages_rebalance(void *ud, bool assigned, const chat_bus_tp_t *tps, size_t n)
{
    (void)ud;
    (void)tps;
    if (assigned && n > 0)
        it.consumer_assigned = true;
}

/* Reads chat.messages for up to ms, keeping the events of this run's tenant. */
static void collect(int ms)
{
    chat_bus_record_t recs[256];
    int64_t deadline = chat_clock_mono_ms() + ms;
    do {
        size_t n = chat_bus_consumer_poll(it.consumer, recs, 256, 50);
        for (size_t i = 0; i < n; i++) {
            chat_event_t ev;
            if (chat_event_decode(recs[i].value, recs[i].len, &ev, NULL, 0) != CHAT_OK)
                continue;
            if (strcmp(ev.tenant, it.tenant) == 0 && it.nevents < MAX_EVENTS) {
                seen_event_t *s = &it.events[it.nevents++];
                memset(s, 0, sizeof *s);
                s->type = ev.type;
                s->seq = ev.has_seq ? ev.seq : 0;
                snprintf(s->room, sizeof s->room, "%s", ev.room);
                snprintf(s->cid, sizeof s->cid, "%s", ev.cid != NULL ? ev.cid : "");
                snprintf(s->id, sizeof s->id, "%s", ev.id != NULL ? ev.id : "");
                snprintf(s->conn, sizeof s->conn, "%s", ev.origin_conn ? ev.origin_conn : "");
            }
            chat_event_clear(&ev);
        }
        chat_bus_records_release(recs, n);
    } while (chat_clock_mono_ms() < deadline);
}

static void produce_send(const char *room, const char *cid, const char *text, const char *conn)
{
    chat_event_t ev = {.type = CHAT_EV_SEND,
                       .tenant = it.tenant,
                       .room = room,
                       .user = "alice",
                       .cid = cid,
                       .text = text,
                       .ts = 1,
                       .has_ts = true,
                       .origin_gw = "it110",
                       .origin_conn = conn};
    char *value = NULL, key[256];
    size_t len = 0;
    ck_assert_int_eq(chat_event_encode(&ev, &value, &len), CHAT_OK);
    int keylen = chat_room_key(it.tenant, room, key, sizeof key);
    ck_assert_int_gt(keylen, 0);
    ck_assert_int_eq(chat_bus_produce(it.producer, "chat.inbound", CHAT_BUS_PARTITION_ANY, key,
                                      (size_t)keylen, value, len, NULL),
                     CHAT_OK);
    free(value);
}

static void flush_sends(void)
{
    ck_assert_int_eq(chat_bus_producer_flush(it.producer, 10000), CHAT_OK);
}

/* Where the probe of each partition landed (delivery reports). */
typedef struct probe_offsets {
    int64_t *offsets;
    int partitions;
} probe_offsets_t;

static void on_probe_delivery(void *ud, void *opaque, chat_err_t err, const char *reason,
                              int32_t partition, int64_t offset)
{
    probe_offsets_t *po = ud;
    (void)opaque;
    (void)reason;
    if (err == CHAT_OK && partition >= 0 && partition < po->partitions)
        po->offsets[partition] = offset;
}

static void on_group_rebalance(void *ud, bool assigned, const chat_bus_tp_t *tps, size_t n)
{
    (void)tps;
    if (assigned && n > 0)
        *(bool *)ud = true;
}

/* Gives the service's new group committed offsets at the current end of every chat.inbound
 * partition, so that it starts there (the records of other tests are not ours) without the
 * race of "latest", which a new consumer resolves only when its fetchers start. The end is
 * learnt by producing one probe send (room probe-<p>) to each partition. */
static void group_start_at_end(void)
{
    int partitions = chat_bus_topic_partitions(it.brokers, "chat.inbound", 10000);
    ck_assert_int_gt(partitions, 0);
    probe_offsets_t po = {calloc((size_t)partitions, sizeof *po.offsets), partitions};
    for (int p = 0; p < partitions; p++)
        po.offsets[p] = -1;
    chat_bus_producer_t *producer;
    chat_bus_producer_conf_t pc = {.brokers = it.brokers,
                                   .client_id = "it110-probe",
                                   .on_delivery = on_probe_delivery,
                                   .ud = &po,
                                   .connect_timeout_ms = 10000};
    ck_assert_int_eq(chat_bus_producer_new(&pc, &producer), CHAT_OK);
    for (int p = 0; p < partitions; p++) {
        char room[32], key[256];
        snprintf(room, sizeof room, "probe-%d", p);
        chat_event_t ev = {.type = CHAT_EV_SEND,
                           .tenant = it.tenant,
                           .room = room,
                           .user = "probe",
                           .cid = "probe",
                           .text = "probe",
                           .ts = 1,
                           .has_ts = true,
                           .origin_gw = "it110",
                           .origin_conn = "probe"};
        char *value = NULL;
        size_t len = 0;
        ck_assert_int_eq(chat_event_encode(&ev, &value, &len), CHAT_OK);
        int keylen = chat_room_key(it.tenant, room, key, sizeof key);
        ck_assert_int_eq(
            chat_bus_produce(producer, "chat.inbound", p, key, (size_t)keylen, value, len, NULL),
            CHAT_OK);
        free(value);
    }
    ck_assert_int_eq(chat_bus_producer_flush(producer, 10000), CHAT_OK);
    chat_bus_producer_destroy(producer);

    bool assigned = false;
    static const char *const topics[] = {"chat.inbound", NULL};
    chat_bus_consumer_conf_t cc = {.brokers = it.brokers,
                                   .client_id = "it110-probe",
                                   .group_id = it.group,
                                   .topics = topics,
                                   .on_rebalance = on_group_rebalance,
                                   .ud = &assigned,
                                   .auto_offset_reset = "latest",
                                   .connect_timeout_ms = 10000};
    chat_bus_consumer_t *consumer;
    ck_assert_int_eq(chat_bus_consumer_new(&cc, &consumer), CHAT_OK);
    chat_bus_record_t recs[64];
    int64_t deadline = chat_clock_mono_ms() + 60000;
    while (!assigned) {
        ck_assert_msg(chat_clock_mono_ms() < deadline, "no chat.inbound partitions for the group");
        chat_bus_records_release(recs, chat_bus_consumer_poll(consumer, recs, 64, 100));
    }
    chat_bus_record_t *ends = calloc((size_t)partitions, sizeof *ends);
    for (int p = 0; p < partitions; p++) {
        ck_assert_msg(po.offsets[p] >= 0, "no delivery report for partition %d", p);
        ends[p] =
            (chat_bus_record_t){.topic = "chat.inbound", .partition = p, .offset = po.offsets[p]};
    }
    ck_assert_int_eq(chat_bus_consumer_commit(consumer, ends, (size_t)partitions, true), CHAT_OK);
    chat_bus_consumer_close(consumer);
    free(ends);
    free(po.offsets);
}

/* The msg event of room with cid (the first seen), or NULL. */
static const seen_event_t *find_msg(const char *room, const char *cid)
{
    for (size_t i = 0; i < it.nevents; i++)
        if (it.events[i].type == CHAT_EV_MSG && strcmp(it.events[i].room, room) == 0 &&
            strcmp(it.events[i].cid, cid) == 0)
            return &it.events[i];
    return NULL;
}

static size_t msgs_with_cid_prefix(const char *room, int n)
{
    size_t found = 0;
    for (int i = 1; i <= n; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "c%d", i);
        found += find_msg(room, cid) != NULL;
    }
    return found;
}

/* Waits until room has a msg for each of c1..cn. */
static void wait_msgs(const char *room, int n, int timeout_ms)
{
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    while (msgs_with_cid_prefix(room, n) < (size_t)n) {
        ck_assert_msg(chat_clock_mono_ms() < deadline, "room %s: %zu of %d messages published",
                      room, msgs_with_cid_prefix(room, n), n);
        collect(200);
    }
}

/* As a gateway subscription sees room: msg events, dropping seqs at or below the last one
 * shown. Asserts that it shows exactly 1..n in order. */
static void assert_live_order(const char *room, int n)
{
    int64_t last = 0;
    for (size_t i = 0; i < it.nevents; i++) {
        const seen_event_t *e = &it.events[i];
        if (e->type != CHAT_EV_MSG || strcmp(e->room, room) != 0 || e->seq <= last)
            continue;
        ck_assert_msg(e->seq == last + 1, "room %s: seq %lld after %lld", room, (long long)e->seq,
                      (long long)last);
        last = e->seq;
    }
    ck_assert_int_eq(last, n);
}

/* ---- MongoDB ---- */

typedef struct stored_msg {
    int64_t seq;
    char cid[72];
    char id[32];
    char src[40];
} stored_msg_t;

/* Reads room's documents in seq order into out (at most max); returns how many. */
static size_t stored(const char *room, stored_msg_t *out, size_t max)
{
    mongoc_collection_t *col = mongoc_client_get_collection(it.mongo, "chat", "messages");
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(it.tenant), "room", BCON_UTF8(room));
    bson_t *opts = BCON_NEW("sort", "{", "seq", BCON_INT32(1), "}");
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(col, filter, opts, NULL);
    const bson_t *doc;
    size_t n = 0;
    while (mongoc_cursor_next(cur, &doc)) {
        ck_assert_uint_lt(n, max);
        stored_msg_t *m = &out[n++];
        memset(m, 0, sizeof *m);
        bson_iter_t i;
        if (bson_iter_init_find(&i, doc, "seq"))
            m->seq = bson_iter_as_int64(&i);
        if (bson_iter_init_find(&i, doc, "cid") && BSON_ITER_HOLDS_UTF8(&i))
            snprintf(m->cid, sizeof m->cid, "%s", bson_iter_utf8(&i, NULL));
        if (bson_iter_init_find(&i, doc, "src") && BSON_ITER_HOLDS_UTF8(&i))
            snprintf(m->src, sizeof m->src, "%s", bson_iter_utf8(&i, NULL));
        if (bson_iter_init_find(&i, doc, "_id") && BSON_ITER_HOLDS_OID(&i))
            bson_oid_to_string(bson_iter_oid(&i), m->id);
    }
    bson_error_t error;
    ck_assert_msg(!mongoc_cursor_error(cur, &error), "mongo: %s", error.message);
    mongoc_cursor_destroy(cur);
    bson_destroy(filter);
    bson_destroy(opts);
    mongoc_collection_destroy(col);
    return n;
}

/* Asserts room holds c1..cn once each, with seqs 1..n in that order, each published. */
static void assert_stored_once(const char *room, int n, bool cid_order)
{
    stored_msg_t *docs = calloc((size_t)n + 16, sizeof *docs);
    size_t count = stored(room, docs, (size_t)n + 16);
    ck_assert_uint_eq(count, (size_t)n);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(docs[i].seq, i + 1);
        ck_assert_msg(docs[i].src[0] != '\0', "seq %d has no src", i + 1);
        if (cid_order) {
            char cid[16];
            snprintf(cid, sizeof cid, "c%d", i + 1);
            ck_assert_str_eq(docs[i].cid, cid);
        }
        bool published = false;
        for (size_t e = 0; e < it.nevents && !published; e++)
            published = it.events[e].type == CHAT_EV_MSG && strcmp(it.events[e].room, room) == 0 &&
                        it.events[e].seq == docs[i].seq && strcmp(it.events[e].id, docs[i].id) == 0;
        ck_assert_msg(published, "room %s: stored seq %lld (%s) never published", room,
                      (long long)docs[i].seq, docs[i].id);
    }
    for (int i = 0; i < n; i++) /* each cid once */
        for (int j = i + 1; j < n; j++)
            ck_assert_str_ne(docs[i].cid, docs[j].cid);
    free(docs);
}

/* ---- the service's own account of its work ---- */

/* Value of counter series in the /metrics of the running life (counted since its start). */
static uint64_t own_counter(const char *series)
{
    return chat_test_ops_metric(it.ops_port, series);
}

/* Waits until the running life counts at least min on series (the publication the test saw may
 * come a moment before the count); fails the test if it does not within 10 s. */
static void expect_own_count(const char *series, uint64_t min)
{
    int64_t deadline = chat_clock_mono_ms() + 10000;
    uint64_t v;
    while ((v = own_counter(series)) < min) {
        ck_assert_msg(chat_clock_mono_ms() < deadline,
                      "the service under test counts %llu on %s, not at least %llu: another "
                      "service did the work",
                      (unsigned long long)v, series, (unsigned long long)min);
        chat_clock_sleep_ms(100);
    }
}

/* ---- fixture ---- */

static void setup(void)
{
    chat_test_stack_load();
    if (chat_test_service_pid(STACK_SERVICE) > 0)
        chat_test_service_kill9(STACK_SERVICE);
    it.brokers = chat_test_stack_get("CHAT_KAFKA_BROKERS");
    it.mongo_uri = chat_test_stack_get("CHAT_MONGO_URI");
    static char binary[512];
    snprintf(binary, sizeof binary, "%s/services/message/chat-message",
             chat_test_stack_get("CHAT_BUILD_DIR"));
    it.binary = binary;
    ck_assert_msg(access(binary, X_OK) == 0, "%s is missing: build it first", binary);
    chat_test_unique(it.tenant, sizeof it.tenant, "it110");
    snprintf(it.group, sizeof it.group, "%s-message", it.tenant);
    snprintf(it.logdir, sizeof it.logdir, "%s/it110-%d", chat_test_stack_get("CHAT_STACK_DIR"),
             (int)getpid());
    mkdir(it.logdir, 0755);
    it.ops_port = chat_test_free_port();
    it.events = calloc(MAX_EVENTS, sizeof *it.events);

    mongoc_init();
    it.mongo = mongoc_client_new(it.mongo_uri);
    ck_assert_ptr_nonnull(it.mongo);

    chat_bus_producer_conf_t pc = {
        .brokers = it.brokers, .client_id = "it110", .linger_ms = 0, .connect_timeout_ms = 10000};
    ck_assert_int_eq(chat_bus_producer_new(&pc, &it.producer), CHAT_OK);
    static const char *const topics[] = {"chat.messages", NULL};
    char group[128];
    snprintf(group, sizeof group, "%s-reader", it.tenant);
    chat_bus_consumer_conf_t cc = {.brokers = it.brokers,
                                   .client_id = "it110",
                                   .group_id = group,
                                   .topics = topics,
                                   .on_rebalance = on_messages_rebalance,
                                   .auto_offset_reset = "latest",
                                   .connect_timeout_ms = 10000};
    ck_assert_int_eq(chat_bus_consumer_new(&cc, &it.consumer), CHAT_OK);
    int64_t deadline = chat_clock_mono_ms() + 60000;
    while (!it.consumer_assigned) {
        ck_assert_msg(chat_clock_mono_ms() < deadline, "chat.messages reader got no partitions");
        collect(100);
    }
    group_start_at_end();
    service_start();
}

static void teardown(void)
{
    if (it.pid > 0)
        chat_test_spawn_stop(it.pid, SIGKILL, -1);
    chat_bus_consumer_close(it.consumer);
    chat_bus_producer_destroy(it.producer);
    mongoc_client_destroy(it.mongo);
    free(it.events);
    /* Back for the tests that follow; it takes over the records of this test from its last
     * commit and finds them stored. */
    if (chat_test_service_pid(STACK_SERVICE) < 0)
        chat_test_stack_up();
    ck_assert_msg(chat_test_wait_ready(chat_test_ops_port_message(), 60000),
                  "the stack's message service is not ready again");
}

/* ---- tests ---- */

START_TEST(test_seq_gapless_in_order)
{
    const char *room = "gapless";
    for (int i = 1; i <= 20; i++) {
        char cid[16], text[32];
        snprintf(cid, sizeof cid, "c%d", i);
        snprintf(text, sizeof text, "message %d", i);
        produce_send(room, cid, text, "conn-1");
    }
    flush_sends();
    wait_msgs(room, 20, 30000);
    assert_live_order(room, 20);
    for (int i = 1; i <= 20; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "c%d", i);
        ck_assert_int_eq(find_msg(room, cid)->seq, i);
        ck_assert_str_eq(find_msg(room, cid)->conn, "conn-1");
    }
    assert_stored_once(room, 20, true);
    /* This process stored them: none was found stored by someone else. */
    expect_own_count("chat_message_stored_total", 20);
    ck_assert_uint_eq(own_counter("chat_message_republished_total"), 0);
}
END_TEST

START_TEST(test_resend_gets_original_ack)
{
    const char *room = "resend";
    produce_send(room, "c1", "first", "conn-a");
    flush_sends();
    wait_msgs(room, 1, 30000);
    const seen_event_t *orig = find_msg(room, "c1");
    seen_event_t first = *orig;

    produce_send(room, "c1", "first, again", "conn-b"); /* e.g. after a reconnect */
    flush_sends();
    const seen_event_t *ack = NULL;
    int64_t deadline = chat_clock_mono_ms() + 30000;
    while (ack == NULL) {
        ck_assert_msg(chat_clock_mono_ms() < deadline, "no ack for the resend");
        collect(200);
        for (size_t i = 0; i < it.nevents && ack == NULL; i++)
            if (it.events[i].type == CHAT_EV_ACK && strcmp(it.events[i].room, room) == 0 &&
                strcmp(it.events[i].conn, "conn-b") == 0)
                ack = &it.events[i];
    }
    ck_assert_int_eq(ack->seq, first.seq);
    ck_assert_str_eq(ack->id, first.id);
    ck_assert_str_eq(ack->cid, "c1");
    collect(500);
    for (size_t i = 0; i < it.nevents; i++) /* no second message */
        ck_assert(!(it.events[i].type == CHAT_EV_MSG && strcmp(it.events[i].room, room) == 0 &&
                    it.events[i].seq != first.seq));
    assert_stored_once(room, 1, true);
    /* The same life as the test before: its 20 and this one; the resend was its own lookup. */
    expect_own_count("chat_message_stored_total", 21);
    expect_own_count("chat_message_duplicates_total", 1);
    ck_assert_uint_eq(own_counter("chat_message_republished_total"), 0);
}
END_TEST

static void kill_and_restart(void)
{
    int status = chat_test_spawn_stop(it.pid, SIGKILL, -1);
    ck_assert_msg(status >= 0, "chat-message (pid %d) is no child to kill", (int)it.pid);
    ck_assert(WIFSIGNALED(status));
    service_start();
}

/* A stream of 300 sends; the service is killed with -9 once about a third of them were
 * published, restarted, and killed again at two thirds: the rest, and whatever a killed life
 * stored without committing (it depends on where the kill lands), must come out exactly
 * once, gapless. */
START_TEST(test_kill9_mid_stream)
{
    const char *room = "kill9";
    int kills = 0;
    for (int i = 1; i <= KILL_STREAM; i++) {
        char cid[16], text[32];
        snprintf(cid, sizeof cid, "c%d", i);
        snprintf(text, sizeof text, "stream %d", i);
        produce_send(room, cid, text, "conn-k");
        if (i % 30 != 0)
            continue;
        /* Bursts keep the service busy; the kill follows the publication that crosses the
         * threshold within milliseconds, so it often lands before that batch's commit. */
        flush_sends();
        for (int spin = 0; spin < 8 && kills < 2; spin++) {
            collect(2);
            if (msgs_with_cid_prefix(room, i) >= (size_t)(kills + 1) * KILL_STREAM / 3) {
                kill_and_restart();
                kills++;
                break;
            }
        }
    }
    flush_sends();
    /* If publishing lagged behind the stream, kill it while it is still catching up. */
    int64_t deadline = chat_clock_mono_ms() + 60000;
    while (kills < 2) {
        ck_assert_msg(chat_clock_mono_ms() < deadline, "the service does not publish");
        collect(2);
        if (msgs_with_cid_prefix(room, KILL_STREAM) >= (size_t)(kills + 1) * KILL_STREAM / 3) {
            kill_and_restart();
            kills++;
        }
    }
    wait_msgs(room, KILL_STREAM, 120000);
    collect(1000); /* late duplicates, if any, must not break the checks */
    assert_live_order(room, KILL_STREAM);
    assert_stored_once(room, KILL_STREAM, true);
}
END_TEST

/* SIGTERM to the running life; asserts a clean exit. */
static void service_stop(void)
{
    int status = chat_test_spawn_stop(it.pid, SIGTERM, -1);
    ck_assert_msg(status >= 0, "chat-message (pid %d) is no child to stop", (int)it.pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
}

/* Stores a message in MongoDB as the record src (or a previous owner) would have; writes its
 * id (hex) to id_out if not NULL. */
static void store_doc(const char *room, int64_t seq, const char *cid, const char *src, char *id_out)
{
    mongoc_collection_t *col = mongoc_client_get_collection(it.mongo, "chat", "messages");
    bson_oid_t oid;
    bson_oid_init(&oid, NULL);
    if (id_out != NULL)
        bson_oid_to_string(&oid, id_out);
    bson_t *doc =
        BCON_NEW("_id", BCON_OID(&oid), "tenant", BCON_UTF8(it.tenant), "room", BCON_UTF8(room),
                 "seq", BCON_INT64(seq), "from", BCON_UTF8("alice"), "text", BCON_UTF8("old"), "ts",
                 BCON_INT64(1), "cid", BCON_UTF8(cid), "src", BCON_UTF8(src));
    bson_error_t error;
    ck_assert_msg(mongoc_collection_insert_one(col, doc, NULL, NULL, &error), "mongo: %s",
                  error.message);
    bson_destroy(doc);
    mongoc_collection_destroy(col);
}

/* Rooms that already hold messages, touched for the first time together (the service is
 * stopped while the sends queue up, so its first polls see them at once): each continues after
 * its stored seq, and a resend queued between two new sends of a room gets the original's ack
 * while the room stays gapless. */
START_TEST(test_stored_rooms_first_touch_and_resend)
{
    enum { ROOMS = 6, NEW = 3 };
    service_stop();
    char rooms[ROOMS][16];
    for (int r = 0; r < ROOMS; r++) {
        snprintf(rooms[r], sizeof rooms[r], "stored-%d", r);
        for (int s = 1; s <= r + 1; s++) {
            char cid[16];
            snprintf(cid, sizeof cid, "old%d", s);
            store_doc(rooms[r], s, cid, "0:0", NULL);
        }
    }
    for (int i = 1; i <= NEW; i++) {
        for (int r = 0; r < ROOMS; r++) {
            char cid[16];
            snprintf(cid, sizeof cid, "c%d", i);
            produce_send(rooms[r], cid, "after the stored ones", "conn-s");
        }
        if (i == 1)
            produce_send(rooms[2], "old1", "resent", "conn-r");
    }
    flush_sends();
    service_start();
    for (int r = 0; r < ROOMS; r++) {
        wait_msgs(rooms[r], NEW, 30000);
        for (int i = 1; i <= NEW; i++) {
            char cid[16];
            snprintf(cid, sizeof cid, "c%d", i);
            ck_assert_int_eq(find_msg(rooms[r], cid)->seq, r + 1 + i);
        }
        stored_msg_t docs[16];
        size_t n = stored(rooms[r], docs, 16);
        ck_assert_uint_eq(n, (size_t)(r + 1 + NEW));
        for (size_t k = 0; k < n; k++)
            ck_assert_int_eq(docs[k].seq, (int64_t)k + 1);
    }
    const seen_event_t *ack = NULL;
    int64_t deadline = chat_clock_mono_ms() + 30000;
    while (ack == NULL) {
        for (size_t i = 0; i < it.nevents && ack == NULL; i++)
            if (it.events[i].type == CHAT_EV_ACK && strcmp(it.events[i].conn, "conn-r") == 0)
                ack = &it.events[i];
        if (ack == NULL) {
            ck_assert_msg(chat_clock_mono_ms() < deadline, "no ack for the resend");
            collect(200);
        }
    }
    ck_assert_str_eq(ack->room, rooms[2]);
    ck_assert_str_eq(ack->cid, "old1");
    ck_assert_int_eq(ack->seq, 1);
    /* The life started for this test stored the new sends and found the resend itself. */
    expect_own_count("chat_message_stored_total", ROOMS * NEW);
    expect_own_count("chat_message_duplicates_total", 1);
}
END_TEST

/* Where each produced record landed (delivery reports; opaque = 1 + its index). */
typedef struct landed {
    int32_t partition[8];
    int64_t offset[8];
} landed_t;

static void on_landed(void *ud, void *opaque, chat_err_t err, const char *reason, int32_t partition,
                      int64_t offset)
{
    landed_t *l = ud;
    (void)reason;
    size_t i = (size_t)(uintptr_t)opaque - 1;
    if (err == CHAT_OK && i < 8) {
        l->partition[i] = partition;
        l->offset[i] = offset;
    }
}

/* The state a kill -9 between insert and commit leaves: the first half of a batch's sends is
 * stored (with their records' src), nothing published or committed. The restarted service
 * publishes the stored half again with the original seqs and ids, and stores the rest after
 * it, each cid once. */
START_TEST(test_replay_of_a_stored_half)
{
    enum { SENDS = 6, STORED = 3 };
    const char *room = "replay";
    service_stop();
    landed_t l = {0};
    chat_bus_producer_t *producer;
    chat_bus_producer_conf_t pc = {.brokers = it.brokers,
                                   .client_id = "it110-replay",
                                   .on_delivery = on_landed,
                                   .ud = &l,
                                   .linger_ms = 0,
                                   .connect_timeout_ms = 10000};
    ck_assert_int_eq(chat_bus_producer_new(&pc, &producer), CHAT_OK);
    for (int i = 0; i < SENDS; i++) {
        char cid[16], key[256];
        snprintf(cid, sizeof cid, "c%d", i + 1);
        chat_event_t ev = {.type = CHAT_EV_SEND,
                           .tenant = it.tenant,
                           .room = room,
                           .user = "alice",
                           .cid = cid,
                           .text = "replayed",
                           .ts = 1,
                           .has_ts = true,
                           .origin_gw = "it110",
                           .origin_conn = "conn-p"};
        char *value = NULL;
        size_t len = 0;
        ck_assert_int_eq(chat_event_encode(&ev, &value, &len), CHAT_OK);
        int keylen = chat_room_key(it.tenant, room, key, sizeof key);
        ck_assert_int_eq(chat_bus_produce(producer, "chat.inbound", CHAT_BUS_PARTITION_ANY, key,
                                          (size_t)keylen, value, len, (void *)(uintptr_t)(i + 1)),
                         CHAT_OK);
        free(value);
    }
    ck_assert_int_eq(chat_bus_producer_flush(producer, 10000), CHAT_OK);
    chat_bus_producer_destroy(producer);
    char ids[STORED][32];
    for (int i = 0; i < STORED; i++) {
        char cid[16], src[48];
        snprintf(cid, sizeof cid, "c%d", i + 1);
        snprintf(src, sizeof src, "%d:%lld", (int)l.partition[i], (long long)l.offset[i]);
        store_doc(room, i + 1, cid, src, ids[i]);
    }
    service_start();
    wait_msgs(room, SENDS, 30000);
    for (int i = 0; i < SENDS; i++) {
        char cid[16];
        snprintf(cid, sizeof cid, "c%d", i + 1);
        const seen_event_t *m = find_msg(room, cid);
        ck_assert_int_eq(m->seq, i + 1);
        if (i < STORED)
            ck_assert_str_eq(m->id, ids[i]);
    }
    assert_stored_once(room, SENDS, true);
    /* This life republished the stored half from its records and stored the rest. */
    expect_own_count("chat_message_republished_total", STORED);
    expect_own_count("chat_message_stored_total", SENDS - STORED);
}
END_TEST

/* SIGTERM: exit 0 and no sanitizer report in the service's logs. */
START_TEST(test_clean_shutdown)
{
    int status = chat_test_spawn_stop(it.pid, SIGTERM, -1);
    ck_assert_msg(status >= 0, "chat-message (pid %d) is no child to stop", (int)it.pid);
    it.pid = 0;
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %d", status);
    for (int life = 1; life <= it.lives; life++) {
        char path[512];
        log_path(path, sizeof path, life);
        ck_assert_msg(!file_contains(path, "ERROR: AddressSanitizer") &&
                          !file_contains(path, "ERROR: LeakSanitizer") &&
                          !file_contains(path, "runtime error:"),
                      "sanitizer report in %s", path);
    }
    char path[512];
    log_path(path, sizeof path, it.lives);
    ck_assert(file_contains(path, "\"stopping\""));
}
END_TEST

int main(void)
{
    Suite *suite = suite_create("message_service");
    TCase *tc = tcase_create("message_service");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_seq_gapless_in_order);
    tcase_add_test(tc, test_resend_gets_original_ack);
    tcase_add_test(tc, test_kill9_mid_stream);
    tcase_add_test(tc, test_stored_rooms_first_touch_and_resend);
    tcase_add_test(tc, test_replay_of_a_stored_half);
    tcase_add_test(tc, test_clean_shutdown);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, true);
}
