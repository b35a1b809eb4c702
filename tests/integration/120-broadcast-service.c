/* Integration test of chat-broadcast against the stack's Kafka and Redis: the test starts
 * the service on its own topics (so the stack's own broadcast service never sees these
 * records), registers gateways in Redis, produces msg/ack/reject events and reads every
 * partition of the deliver topic to check which gateway got which items, in order. Also:
 * start-up failures name their variable, and SIGTERM exits 0 (no leak under ASan). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/redis.h"
#include "tests/support/spawn.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

#define GATEWAYS 4 /* partitions of the test's deliver topic */
#define WAIT_MS 30000
#define QUIET_MS 2000 /* how long to keep reading for items that should not come */
#define MAX_ITEMS 64

static const char *brokers;
static const char *redis_url;
static char bin[1024];
static char messages_topic[128];
static char deliver_topic[128];
static char events_topic[128]; /* its own, empty: the stack's typing and presence stay out */
static char tenant[64];
static char other_tenant[64];
static char room[64];
static char expired_room[64];
static pid_t service = -1;
static int ops_port;
static chat_redis_t *redis;
static chat_bus_producer_t *producer;

/* Starts the service with the test's environment, CHAT_OPS_ADDR=127.0.0.1 and
 * CHAT_LOG_LEVEL=info, and env ("NAME=value", NULL-terminated; it overrides those two); stderr
 * goes to stderr_fd (CHAT_TEST_SPAWN_INHERIT: the test's). */
static pid_t spawn(const char *const *env, int stderr_fd)
{
    const char *full[16] = {"CHAT_OPS_ADDR=127.0.0.1", "CHAT_LOG_LEVEL=info"};
    size_t n = 2;
    for (; env != NULL && *env != NULL; env++) {
        ck_assert_uint_lt(n, sizeof full / sizeof full[0] - 1);
        full[n++] = *env;
    }
    full[n] = NULL;
    const char *const argv[] = {bin, NULL};
    return chat_test_spawn(argv, full, CHAT_TEST_SPAWN_INHERIT, stderr_fd);
}

/* Runs the service expecting a start-up failure; returns its stderr (static buffer, cut
 * at 64 KiB: a failed assertion must not leak it). */
static char *run_failing(const char *const *env, int *status)
{
    static char text[1 << 16];
    char path[] = "/tmp/chat-it-broadcast-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    unlink(path);
    pid_t pid = spawn(env, fd);
    *status = chat_test_spawn_wait(pid, WAIT_MS);
    ssize_t n = pread(fd, text, sizeof text - 1, 0);
    close(fd);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

static void redis_cmd(const char *fmt, ...)
{
    char cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    chat_err_t err;
    /* No argument contains a space (unique names, numbers): split the text at spaces. */
    const char *argv[8];
    size_t argvlen[8];
    int argc = 0;
    for (char *tok = strtok(cmd, " "); tok != NULL && argc < 8; tok = strtok(NULL, " ")) {
        argv[argc] = tok;
        argvlen[argc++] = strlen(tok);
    }
    redisReply *reply = chat_redis_command_argv(redis, &err, argc, argv, argvlen);
    ck_assert_msg(reply != NULL, "redis %s failed: %s", argv[0], chat_err_name(err));
    freeReplyObject(reply);
}

/* Registers gateway gw as a follower of tenant/room until expires_ms. */
static void follow(const char *t, const char *r, int gw, int64_t expires_ms)
{
    redis_cmd("ZADD chat:room:{%s/%s}:gws %lld %d", t, r, (long long)expires_ms, gw);
}

static void produce(const char *r, const char *json)
{
    char key[192];
    snprintf(key, sizeof key, "%s/%s", tenant, r);
    ck_assert_int_eq(chat_bus_produce(producer, messages_topic, CHAT_BUS_PARTITION_ANY, key,
                                      strlen(key), json, strlen(json), NULL),
                     CHAT_OK);
}

/* A msg event of the test tenant; gw NULL: no origin. */
static void produce_msg(const char *r, int seq, const char *gw, const char *conn)
{
    char origin[160] = "", json[1024];
    if (gw != NULL)
        snprintf(origin, sizeof origin, ",\"origin\":{\"gw\":\"%s\",\"conn\":\"%s\"}", gw, conn);
    snprintf(json, sizeof json,
             "{\"v\":1,\"type\":\"msg\",\"tenant\":\"%s\",\"room\":\"%s\",\"seq\":%d,"
             "\"id\":\"65f1c0ffee0123456789ab%02x\",\"from\":\"alice\",\"text\":\"text %d\","
             "\"ts\":%lld,\"cid\":\"c-%d\"%s}",
             tenant, r, seq, seq, seq, (long long)chat_clock_wall_ms(), seq, origin);
    produce(r, json);
}

static void produce_ack(const char *r, int seq, const char *gw, const char *conn)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"v\":1,\"type\":\"ack\",\"tenant\":\"%s\",\"room\":\"%s\",\"seq\":%d,"
             "\"id\":\"65f1c0ffee0123456789ab%02x\",\"ts\":%lld,\"cid\":\"c-%d\","
             "\"origin\":{\"gw\":\"%s\",\"conn\":\"%s\"}}",
             tenant, r, seq, seq, (long long)chat_clock_wall_ms(), seq, gw, conn);
    produce(r, json);
}

static void flush(void)
{
    ck_assert_int_eq(chat_bus_producer_flush(producer, WAIT_MS), CHAT_OK);
}

/* ---- reading chat.deliver ---- */

/* Items of the test tenant seen on each gateway's partition, as one-line signatures. */
typedef struct seen {
    char item[GATEWAYS][MAX_ITEMS][192];
    int n[GATEWAYS];
} seen_t;

static chat_bus_consumer_t *deliver_readers[GATEWAYS];
/* Static, not malloc'd: a failed assertion leaves the test without running its frees. */
static seen_t seen;

static const char *jstr(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : "-";
}

/* "msg <room> seq=<n>", "ack <room> cid=.. seq=.. conn=..", "error <room> code=.. cid=..
 * conn=..". Checks what every item must satisfy on the way. */
static void item_signature(const cJSON *item, char *out, size_t len)
{
    const cJSON *frame = cJSON_GetObjectItemCaseSensitive(item, "frame");
    const cJSON *conns = cJSON_GetObjectItemCaseSensitive(item, "conns");
    const cJSON *seq = cJSON_GetObjectItemCaseSensitive(item, "seq");
    const char *type = jstr(frame, "type");
    if (strcmp(type, "error") != 0) /* error frames carry no room */
        ck_assert_str_eq(jstr(frame, "room"), jstr(item, "room"));
    if (strcmp(type, "msg") == 0) {
        ck_assert_msg(conns == NULL, "msg item with conns");
        ck_assert(cJSON_IsNumber(seq));
        ck_assert_int_eq(seq->valueint, cJSON_GetObjectItemCaseSensitive(frame, "seq")->valueint);
        snprintf(out, len, "msg %s seq=%d text=%s", jstr(item, "room"), seq->valueint,
                 jstr(frame, "text"));
        return;
    }
    ck_assert_msg(cJSON_GetArraySize(conns) == 1, "%s item without one conn", type);
    const char *conn = cJSON_GetArrayItem(conns, 0)->valuestring;
    if (strcmp(type, "ack") == 0)
        snprintf(out, len, "ack %s cid=%s seq=%d conn=%s", jstr(item, "room"), jstr(frame, "cid"),
                 cJSON_GetObjectItemCaseSensitive(frame, "seq")->valueint, conn);
    else
        snprintf(out, len, "%s %s code=%s cid=%s conn=%s", type, jstr(item, "room"),
                 jstr(frame, "code"), jstr(frame, "cid"), conn);
}

/* Reads what is available on every partition into s (items of the test tenant only). */
static void deliver_poll(seen_t *s, int timeout_ms)
{
    for (int gw = 0; gw < GATEWAYS; gw++) {
        chat_bus_record_t recs[32];
        size_t n = chat_bus_consumer_poll(deliver_readers[gw], recs, 32, timeout_ms / GATEWAYS);
        for (size_t i = 0; i < n; i++) {
            ck_assert_int_eq(recs[i].partition, gw);
            cJSON *root = cJSON_ParseWithLength(recs[i].value, recs[i].len);
            ck_assert_ptr_nonnull(root);
            ck_assert_str_eq(jstr(root, "type"), "deliver");
            const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "items");
            for (const cJSON *it = items != NULL ? items->child : NULL; it; it = it->next) {
                if (strcmp(jstr(it, "tenant"), tenant) != 0)
                    continue;
                ck_assert_int_lt(s->n[gw], MAX_ITEMS);
                item_signature(it, s->item[gw][s->n[gw]], sizeof s->item[gw][0]);
                s->n[gw]++;
            }
            cJSON_Delete(root);
        }
        chat_bus_records_release(recs, n);
    }
}

static int seen_total(const seen_t *s)
{
    int total = 0;
    for (int gw = 0; gw < GATEWAYS; gw++)
        total += s->n[gw];
    return total;
}

/* Reads until total items arrived (or WAIT_MS), then quiet_ms more for items that must not
 * come (QUIET_MS where the check is that nothing more arrives; 0 where the exact count is what
 * is waited for: then one pass takes only what has already arrived). */
static void deliver_collect(seen_t *s, int total, int quiet_ms)
{
    memset(s, 0, sizeof *s);
    int64_t deadline = chat_clock_mono_ms() + WAIT_MS;
    while (seen_total(s) < total && chat_clock_mono_ms() < deadline)
        deliver_poll(s, 400);
    int64_t quiet = chat_clock_mono_ms() + quiet_ms;
    do
        deliver_poll(s, quiet_ms > 0 ? 400 : 0);
    while (chat_clock_mono_ms() < quiet);
}

/* Checks that gateway gw got exactly expected (NULL-terminated) among its items of room r,
 * in this order. Items of other rooms are checked by their own call. */
static void expect_items(const seen_t *s, int gw, const char *r, const char *const *expected)
{
    char prefix_msg[96];
    int k = 0;
    for (int i = 0; i < s->n[gw]; i++) {
        const char *sig = s->item[gw][i];
        const char *space = strchr(sig, ' ');
        snprintf(prefix_msg, sizeof prefix_msg, "%s", space != NULL ? space + 1 : "");
        size_t rl = strlen(r);
        if (strncmp(prefix_msg, r, rl) != 0 || prefix_msg[rl] != ' ')
            continue;
        ck_assert_msg(expected[k] != NULL, "gateway %d, room %s: unexpected item \"%s\"", gw, r,
                      sig);
        ck_assert_msg(strcmp(sig, expected[k]) == 0,
                      "gateway %d, room %s, item %d: \"%s\", "
                      "expected \"%s\"",
                      gw, r, k, sig, expected[k]);
        k++;
    }
    ck_assert_msg(expected[k] == NULL, "gateway %d, room %s: missing \"%s\"", gw, r, expected[k]);
}

/* ---- fixture: topics, the service, clients ---- */

static void stack_setup(void)
{
    chat_test_stack_load();
    brokers = chat_test_stack_get("CHAT_KAFKA_BROKERS");
    redis_url = chat_test_stack_get("CHAT_REDIS_URL");
    snprintf(bin, sizeof bin, "%s/services/broadcast/chat-broadcast",
             chat_test_stack_get("CHAT_BUILD_DIR"));
}

/* Fresh topics, names and clients: the test's producer, a reader per deliver partition
 * (from the beginning: the topic is new) and a Redis client on url. */
static void clients_setup(const char *url)
{
    chat_test_unique(messages_topic, sizeof messages_topic, "it-bc-messages");
    chat_test_unique(deliver_topic, sizeof deliver_topic, "it-bc-deliver");
    chat_test_unique(events_topic, sizeof events_topic, "it-bc-events");
    chat_test_unique(tenant, sizeof tenant, "bc");
    chat_test_unique(other_tenant, sizeof other_tenant, "bc-other");
    chat_test_unique(room, sizeof room, "room");
    chat_test_unique(expired_room, sizeof expired_room, "expired");
    chat_bus_topic_spec_t specs[] = {
        {.name = messages_topic, .partitions = 3, .replication = -1},
        {.name = deliver_topic, .partitions = GATEWAYS, .replication = -1},
        {.name = events_topic, .partitions = 3, .replication = -1},
    };
    ck_assert_int_eq(chat_bus_topics_ensure(brokers, specs, 3, WAIT_MS), CHAT_OK);
    ck_assert_int_eq(chat_redis_connect(url, 5000, &redis), CHAT_OK);
    chat_bus_producer_conf_t pc = {
        .brokers = brokers, .client_id = "it-broadcast", .connect_timeout_ms = WAIT_MS};
    ck_assert_int_eq(chat_bus_producer_new(&pc, &producer), CHAT_OK);
    for (int gw = 0; gw < GATEWAYS; gw++) {
        chat_bus_consumer_conf_t cc = {.brokers = brokers,
                                       .client_id = "it-broadcast-reader",
                                       .assign_topic = deliver_topic,
                                       .assign_partition = gw,
                                       .assign_offset = CHAT_BUS_OFFSET_BEGINNING,
                                       .connect_timeout_ms = WAIT_MS};
        ck_assert_int_eq(chat_bus_consumer_new(&cc, &deliver_readers[gw]), CHAT_OK);
    }
}

/* /readyz status of the service (0: no answer), its body in reason. */
static int readyz(char *reason, size_t len)
{
    chat_test_http_reply_t r;
    reason[0] = '\0';
    if (!chat_test_http_request(ops_port, "GET", "/readyz", 5000, &r))
        return 0;
    snprintf(reason, len, "%s", r.body);
    int status = r.status;
    chat_test_http_reply_free(&r);
    return status;
}

/* Starts chat-broadcast on the test's topics, a new group and a free ops port, with Redis
 * at url, and waits until it is ready. */
static void service_start(const char *url)
{
    static char env_brokers[256], env_redis[256], env_port[64], env_group[160], env_in[192],
        env_out[192], env_events[192];
    char group[128];
    chat_test_unique(group, sizeof group, "it-bc-group");
    ops_port = chat_test_free_port();
    snprintf(env_brokers, sizeof env_brokers, "CHAT_KAFKA_BROKERS=%s", brokers);
    snprintf(env_redis, sizeof env_redis, "CHAT_REDIS_URL=%s", url);
    snprintf(env_port, sizeof env_port, "CHAT_OPS_PORT=%d", ops_port);
    snprintf(env_group, sizeof env_group, "CHAT_BROADCAST_GROUP=%s", group);
    snprintf(env_in, sizeof env_in, "CHAT_TOPIC_MESSAGES=%s", messages_topic);
    snprintf(env_out, sizeof env_out, "CHAT_TOPIC_DELIVER=%s", deliver_topic);
    snprintf(env_events, sizeof env_events, "CHAT_TOPIC_EVENTS=%s", events_topic);
    /* A short Redis command timeout keeps the outage test quick. */
    const char *env[] = {env_brokers, env_redis, env_port,   env_group,
                         env_in,      env_out,   env_events, "CHAT_CONNECT_TIMEOUT=2s",
                         NULL};
    service = spawn(env, CHAT_TEST_SPAWN_INHERIT);
    char body[256];
    int64_t deadline = chat_clock_mono_ms() + 60000;
    while (readyz(body, sizeof body) != 200) {
        ck_assert_msg(!chat_test_spawn_exited(service, NULL), "chat-broadcast exited at start");
        ck_assert_msg(chat_clock_mono_ms() < deadline, "chat-broadcast not ready: %s", body);
        chat_clock_sleep_ms(100);
    }
}

/* SIGTERM; returns the exit status (CHAT_TEST_SPAWN_TIMEOUT: did not stop in time and was
 * killed). */
static int service_stop(void)
{
    int status = 0;
    if (service > 0) {
        status = chat_test_spawn_stop(service, SIGTERM, WAIT_MS);
        service = -1;
    }
    return status;
}

static void expect_clean_exit(int status)
{
    ck_assert_msg(status != CHAT_TEST_SPAWN_TIMEOUT, "chat-broadcast did not stop within %d ms",
                  WAIT_MS);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "chat-broadcast exit status %d (ASan reports a leak with 23)",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
}

static void clients_teardown(void)
{
    for (int gw = 0; gw < GATEWAYS; gw++) {
        chat_bus_consumer_close(deliver_readers[gw]);
        deliver_readers[gw] = NULL;
    }
    chat_bus_producer_destroy(producer);
    producer = NULL;
    chat_redis_free(redis);
    redis = NULL;
}

static void service_setup(void)
{
    stack_setup();
    clients_setup(redis_url);
    service_start(redis_url);
}

static void service_teardown(void)
{
    service_stop();
    clients_teardown();
}

/* ---- a Redis of the test's own, to take down and bring back ---- */

static pid_t private_redis = -1;
static int private_redis_port;
static char private_redis_dir[64];
static char private_redis_url[64];

/* Starts redis-server on private_redis_port with an fsync'd append-only file, so what was
 * registered survives a kill -9, and waits until it answers. */
static void private_redis_start(void)
{
    char port[16];
    snprintf(port, sizeof port, "%d", private_redis_port);
    const char *server = getenv("REDIS_SERVER") != NULL ? getenv("REDIS_SERVER") : "redis-server";
    const char *const argv[] = {server,  "--port",          port,     "--bind", "127.0.0.1",
                                "--dir", private_redis_dir, "--save", "",       "--appendonly",
                                "yes",   "--appendfsync",   "always", NULL};
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(devnull, 0);
    pid_t pid = chat_test_spawn(argv, NULL, devnull, CHAT_TEST_SPAWN_INHERIT);
    close(devnull);
    private_redis = pid;
    int64_t deadline = chat_clock_mono_ms() + WAIT_MS;
    for (;;) {
        chat_redis_t *probe = NULL;
        if (chat_redis_connect(private_redis_url, 1000, &probe) == CHAT_OK &&
            chat_redis_ping(probe) == CHAT_OK) {
            chat_redis_free(probe);
            return;
        }
        chat_redis_free(probe);
        ck_assert_msg(!chat_test_spawn_exited(pid, NULL), "redis-server exited");
        ck_assert_msg(chat_clock_mono_ms() < deadline, "redis-server did not start");
        chat_clock_sleep_ms(100);
    }
}

static void private_redis_kill(void)
{
    if (private_redis > 0) {
        chat_test_spawn_stop(private_redis, SIGKILL, -1);
        private_redis = -1;
    }
}

static void outage_setup(void)
{
    stack_setup();
    snprintf(private_redis_dir, sizeof private_redis_dir, "/tmp/chat-it-bc-redis-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(private_redis_dir));
    private_redis_port = chat_test_free_port();
    snprintf(private_redis_url, sizeof private_redis_url, "redis://127.0.0.1:%d/0",
             private_redis_port);
    private_redis_start();
    clients_setup(private_redis_url);
    service_start(private_redis_url);
}

static void outage_teardown(void)
{
    service_stop();
    clients_teardown();
    private_redis_kill();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", private_redis_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", private_redis_dir);
}

/* ---- tests ---- */

START_TEST(test_routing)
{
    int64_t now = chat_clock_wall_ms();
    follow(tenant, room, 1, now + 600000);
    follow(tenant, room, 3, now + 600000);
    follow(tenant, room, 2, now - 1000); /* expired: gets nothing */
    follow(tenant, expired_room, 2, now - 1000);
    /* Same room name in another tenant: gateway 0 must not get this tenant's messages. */
    follow(other_tenant, room, 0, now + 600000);

    produce_msg(room, 1, "0", "0.t.1"); /* sender on gateway 0, which does not follow */
    produce_msg(room, 2, "1", "1.t.1"); /* sender on gateway 1, which follows */
    produce_ack(room, 1, "3", "3.t.9"); /* a resent cid: the original ack, to that conn */
    char json[512];
    snprintf(json, sizeof json,
             "{\"v\":1,\"type\":\"reject\",\"tenant\":\"%s\",\"room\":\"%s\","
             "\"code\":\"too_large\",\"message\":\"text over 4000 characters\","
             "\"cid\":\"c-3\",\"origin\":{\"gw\":\"1\",\"conn\":\"1.t.1\"}}",
             tenant, room);
    produce(room, json);
    produce(room, "this is not JSON");
    /* A valid event of a type broadcast does not route from chat.messages. */
    snprintf(json, sizeof json,
             "{\"v\":1,\"type\":\"verdict\",\"tenant\":\"%s\",\"room\":\"%s\","
             "\"id\":\"65f1c0ffee0123456789abcd\",\"seq\":1,\"action\":\"remove\","
             "\"reason\":\"banned word\",\"ts\":1}",
             tenant, room);
    produce(room, json);
    produce_msg(room, 3, "9", "9.t.1"); /* origin outside the 4 gateways: no ack */
    produce_msg(expired_room, 1, "0", "0.t.1");
    flush();

    seen_t *s = &seen;
    /* No quiet window: the deliveries counted in the metrics below must be exactly these. */
    deliver_collect(s, 2 + 5 + 4, 0);
    const char *const gw0_room[] = {"ack ROOM cid=c-1 seq=1 conn=0.t.1", NULL};
    const char *const gw0_expired[] = {"ack EXPIRED cid=c-1 seq=1 conn=0.t.1", NULL};
    const char *const gw1[] = {
        "msg ROOM seq=1 text=text 1",        "msg ROOM seq=2 text=text 2",
        "ack ROOM cid=c-2 seq=2 conn=1.t.1", "error ROOM code=too_large cid=c-3 conn=1.t.1",
        "msg ROOM seq=3 text=text 3",        NULL};
    const char *const gw3[] = {"msg ROOM seq=1 text=text 1", "msg ROOM seq=2 text=text 2",
                               "ack ROOM cid=c-1 seq=1 conn=3.t.9", "msg ROOM seq=3 text=text 3",
                               NULL};
    const char *const none[] = {NULL};
    /* The expectations name the room as ROOM / EXPIRED: substitute the unique names. */
    char buf[4][8][192];
    const char *const *tables[] = {gw0_room, gw0_expired, gw1, gw3};
    const char *resolved[4][8];
    for (int t = 0; t < 4; t++) {
        int i = 0;
        for (; tables[t][i] != NULL; i++) {
            const char *e = tables[t][i];
            const char *mark = strstr(e, "ROOM") != NULL ? "ROOM" : "EXPIRED";
            const char *at = strstr(e, mark);
            snprintf(buf[t][i], sizeof buf[t][i], "%.*s%s%s", (int)(at - e), e,
                     strcmp(mark, "ROOM") == 0 ? room : expired_room, at + strlen(mark));
            resolved[t][i] = buf[t][i];
        }
        resolved[t][i] = NULL;
    }
    expect_items(s, 0, room, resolved[0]);
    expect_items(s, 0, expired_room, resolved[1]);
    expect_items(s, 1, room, resolved[2]);
    expect_items(s, 3, room, resolved[3]);
    expect_items(s, 1, expired_room, none);
    expect_items(s, 3, expired_room, none);
    ck_assert_msg(s->n[2] == 0, "gateway 2 (expired registrations) got %d items, first: %s",
                  s->n[2], s->item[2][0]);
    ck_assert_int_eq(seen_total(s), 11);

    /* Counted once the batch is done: poll the metrics for a moment. */
    static const struct {
        const char *series;
        uint64_t want;
    } counts[] = {
        {"chat_broadcast_invalid_records_total", 1},
        {"chat_broadcast_skipped_total{reason=\"unknown_gateway\"}", 1},
        {"chat_broadcast_skipped_total{reason=\"unhandled_type\"}", 1},
        {"chat_broadcast_deliveries_total{frame=\"msg\"}", 6},
        {"chat_broadcast_deliveries_total{frame=\"ack\"}", 4},
        {"chat_broadcast_deliveries_total{frame=\"error\"}", 1},
    };
    size_t ncounts = sizeof counts / sizeof counts[0], matching = 0;
    uint64_t got[sizeof counts / sizeof counts[0]] = {0};
    int64_t deadline = chat_clock_mono_ms() + 10000;
    for (;;) {
        matching = 0;
        for (size_t i = 0; i < ncounts; i++) {
            got[i] = chat_test_ops_metric(ops_port, counts[i].series);
            matching += got[i] == counts[i].want;
        }
        if (matching == ncounts || chat_clock_mono_ms() >= deadline)
            break;
        chat_clock_sleep_ms(100);
    }
    for (size_t i = 0; i < ncounts; i++)
        ck_assert_msg(got[i] == counts[i].want,
                      "metrics do not show the batch: %s is %llu, not %llu", counts[i].series,
                      (unsigned long long)got[i], (unsigned long long)counts[i].want);
}
END_TEST

START_TEST(test_registration_seen_by_next_batch)
{
    /* Redis is read per batch: a gateway that registers now gets the very next message. */
    char r[64];
    chat_test_unique(r, sizeof r, "late");
    follow(tenant, r, 1, chat_clock_wall_ms() + 600000);
    produce_msg(r, 1, NULL, NULL);
    flush();
    seen_t *s = &seen;
    /* No quiet window: a wrong delivery of this msg would still be read by the next collect. */
    deliver_collect(s, 1, 0);
    ck_assert_int_eq(s->n[1], 1);
    ck_assert_int_eq(s->n[2], 0);

    follow(tenant, r, 2, chat_clock_wall_ms() + 600000);
    produce_msg(r, 2, NULL, NULL);
    flush();
    deliver_collect(s, 2, QUIET_MS); /* gateways 0 and 3 never followed r: nothing for them */
    ck_assert_int_eq(s->n[1], 1);
    ck_assert_int_eq(s->n[2], 1);
    char expected[192];
    snprintf(expected, sizeof expected, "msg %s seq=2 text=text 2", r);
    ck_assert_str_eq(s->item[1][0], expected);
    ck_assert_str_eq(s->item[2][0], expected);
    ck_assert_int_eq(s->n[0] + s->n[3], 0);
}
END_TEST

START_TEST(test_sigterm_exits_cleanly)
{
    expect_clean_exit(service_stop());
}
END_TEST

START_TEST(test_redis_outage_retried)
{
    /* Redis goes away: the batch waits (not skipped, not committed), /readyz says so, and
     * once Redis is back the message reaches its gateway. */
    follow(tenant, room, 1, chat_clock_wall_ms() + 600000);
    produce_msg(room, 1, NULL, NULL);
    flush();
    deliver_collect(&seen, 1, 0);
    ck_assert_int_eq(seen.n[1], 1);

    private_redis_kill();
    produce_msg(room, 2, NULL, NULL);
    flush();
    char reason[256];
    int64_t deadline = chat_clock_mono_ms() + WAIT_MS;
    while (readyz(reason, sizeof reason) != 503) {
        ck_assert_msg(chat_clock_mono_ms() < deadline, "/readyz still ready with Redis down");
        chat_clock_sleep_ms(100);
    }
    ck_assert_msg(strstr(reason, "redis") != NULL, "/readyz reason: %s", reason);
    deliver_collect(&seen, 0, QUIET_MS); /* nothing while Redis is down */
    ck_assert_int_eq(seen_total(&seen), 0);

    private_redis_start();
    deliver_collect(&seen, 1, QUIET_MS); /* the retried batch must not come twice */
    ck_assert_int_eq(seen.n[1], 1);
    char expected[192];
    snprintf(expected, sizeof expected, "msg %s seq=2 text=text 2", room);
    ck_assert_str_eq(seen.item[1][0], expected);
    ck_assert_int_eq(seen_total(&seen), 1);
    ck_assert_int_eq(readyz(reason, sizeof reason), 200);
    expect_clean_exit(service_stop());
}
END_TEST

/* ---- start-up failures ---- */

static void expect_startup_failure(const char *const *env, const char *var)
{
    int status;
    char *log = run_failing(env, &status);
    ck_assert_msg(status != CHAT_TEST_SPAWN_TIMEOUT, "still running after %d ms", WAIT_MS);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) != 0, "exit status 0:\n%s", log);
    char needle[96];
    snprintf(needle, sizeof needle, "\"var\":\"%s\"", var);
    ck_assert_msg(strstr(log, needle) != NULL, "no %s in:\n%s", needle, log);
}

START_TEST(test_unreachable_redis)
{
    static char env_brokers[256], env_redis[64], env_port[64];
    snprintf(env_brokers, sizeof env_brokers, "CHAT_KAFKA_BROKERS=%s", brokers);
    snprintf(env_redis, sizeof env_redis, "CHAT_REDIS_URL=redis://127.0.0.1:%d/0",
             chat_test_free_port());
    snprintf(env_port, sizeof env_port, "CHAT_OPS_PORT=%d", chat_test_free_port());
    const char *env[] = {env_brokers, env_redis, env_port, "CHAT_CONNECT_TIMEOUT=1s", NULL};
    expect_startup_failure(env, "CHAT_REDIS_URL");
}
END_TEST

START_TEST(test_unreachable_kafka)
{
    static char env_brokers[64], env_redis[256], env_port[64];
    snprintf(env_brokers, sizeof env_brokers, "CHAT_KAFKA_BROKERS=127.0.0.1:%d",
             chat_test_free_port());
    snprintf(env_redis, sizeof env_redis, "CHAT_REDIS_URL=%s", redis_url);
    snprintf(env_port, sizeof env_port, "CHAT_OPS_PORT=%d", chat_test_free_port());
    const char *env[] = {env_brokers, env_redis, env_port, "CHAT_CONNECT_TIMEOUT=1s", NULL};
    expect_startup_failure(env, "CHAT_KAFKA_BROKERS");
}
END_TEST

START_TEST(test_missing_deliver_topic)
{
    static char env_brokers[256], env_redis[256], env_port[64], env_out[192];
    char missing[128];
    chat_test_unique(missing, sizeof missing, "it-bc-missing");
    snprintf(env_brokers, sizeof env_brokers, "CHAT_KAFKA_BROKERS=%s", brokers);
    snprintf(env_redis, sizeof env_redis, "CHAT_REDIS_URL=%s", redis_url);
    snprintf(env_port, sizeof env_port, "CHAT_OPS_PORT=%d", chat_test_free_port());
    snprintf(env_out, sizeof env_out, "CHAT_TOPIC_DELIVER=%s", missing);
    const char *env[] = {env_brokers, env_redis, env_port, env_out, "CHAT_CONNECT_TIMEOUT=2s",
                         NULL};
    expect_startup_failure(env, "CHAT_TOPIC_DELIVER");
}
END_TEST

START_TEST(test_bad_batch_size)
{
    const char *env[] = {"CHAT_BROADCAST_BATCH=0", NULL};
    expect_startup_failure(env, "CHAT_BROADCAST_BATCH");
}
END_TEST

static Suite *broadcast_suite(void)
{
    Suite *s = suite_create("broadcast_service");
    TCase *tc = tcase_create("service");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, service_setup, service_teardown);
    tcase_add_test(tc, test_routing);
    tcase_add_test(tc, test_registration_seen_by_next_batch);
    tcase_add_test(tc, test_sigterm_exits_cleanly); /* last: stops the service */
    suite_add_tcase(s, tc);
    TCase *to = tcase_create("redis_outage");
    tcase_set_timeout(to, 300);
    tcase_add_unchecked_fixture(to, outage_setup, outage_teardown);
    tcase_add_test(to, test_redis_outage_retried);
    suite_add_tcase(s, to);
    TCase *tf = tcase_create("startup");
    tcase_set_timeout(tf, 120);
    tcase_add_unchecked_fixture(tf, stack_setup, NULL);
    tcase_add_test(tf, test_unreachable_redis);
    tcase_add_test(tf, test_unreachable_kafka);
    tcase_add_test(tf, test_missing_deliver_topic);
    tcase_add_test(tf, test_bad_batch_size);
    suite_add_tcase(s, tf);
    return s;
}

int main(void)
{
    return chat_test_suite_run(broadcast_suite(), true);
}
