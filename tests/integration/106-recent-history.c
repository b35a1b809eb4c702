/* End to end: the recent history of rooms in Redis (docs/message-path.md). Joins, resumes and
 * history pages answered from it are byte for byte what MongoDB's answers are (the test makes
 * the same requests once with a trusted set and once with a bogus marker, which sends them to
 * MongoDB); a resume or a page beyond the cached range, a cold room (key deleted) and an
 * untrusted set are answered from MongoDB, exactly, and refilled; a room without messages is
 * remembered as such; the gateway's metrics tell hits from misses. Below the service level:
 * the write transaction (marker, replaced seqs, bound, expiry), a fill that gives way to a
 * write made after its WATCH, and a Redis server restarted from its append-only file, whose
 * new run_id makes what it kept untrusted. */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/contract.h"
#include "common/recent.h"
#include "common/redis.h"
#include "services/gateway/recent.h"
#include "tests/support/chat.h"
#include "tests/support/spawn.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"
#include "tools/client/client_frames.h"

#define SENDERS 4
#define QUIET_MS 300
#define MAX_FRAMES 128
#define BOGUS_RUN_ID "0000000000000000000000000000000000000000"

static chat_redis_t *redis; /* the stack's Redis */

static void setup(void)
{
    chat_test_stack_load();
    ck_assert_int_eq(chat_redis_connect(chat_test_stack_get("CHAT_REDIS_URL"), 5000, &redis),
                     CHAT_OK);
}

static void teardown(void)
{
    chat_redis_free(redis);
    redis = NULL;
}

/* ---- the room's set, seen from Redis ---- */

static void room_key(const char *room, char *key, size_t len)
{
    ck_assert_int_gt(chat_recent_key(chat_test_demo_tenant(), room, key, len), 0);
}

static long long redis_int(const char *fmt, const char *key)
{
    chat_err_t err;
    redisReply *reply = chat_redis_command(redis, &err, fmt, key);
    ck_assert_msg(reply != NULL && reply->type == REDIS_REPLY_INTEGER, "%s failed", fmt);
    long long v = reply->integer;
    freeReplyObject(reply);
    return v;
}

static void redis_do(const char *fmt, const char *key, const char *arg)
{
    chat_err_t err;
    redisReply *reply = chat_redis_command(redis, &err, fmt, key, arg);
    ck_assert_msg(reply != NULL, "%s failed", fmt);
    freeReplyObject(reply);
}

static void redis_del(const char *key)
{
    chat_err_t err;
    redisReply *reply = chat_redis_command(redis, &err, "DEL %s", key);
    ck_assert_ptr_nonnull(reply);
    freeReplyObject(reply);
}

/* The members of the set at score 0 must be exactly one: the current server's run_id. */
static void assert_marker_current(const char *key)
{
    const char *run_id = NULL;
    ck_assert_int_eq(chat_redis_run_id(redis, &run_id), CHAT_OK);
    ck_assert_uint_eq(strlen(run_id), 40);
    char want[64];
    snprintf(want, sizeof want, "%s", run_id);
    chat_err_t err;
    redisReply *reply = chat_redis_command(redis, &err, "ZRANGEBYSCORE %s 0 0", key);
    ck_assert_ptr_nonnull(reply);
    ck_assert_uint_eq(reply->elements, 1);
    ck_assert_str_eq(reply->element[0]->str, want);
    freeReplyObject(reply);
}

/* Replaces the marker with one no server has: the set is not trusted any more. */
static void marker_bogus(const char *key)
{
    redis_do("ZREMRANGEBYSCORE %s %s 0", key, "0");
    redis_do("ZADD %s 0 %s", key, BOGUS_RUN_ID);
}

/* ---- the stack's clients ---- */

/* Texts that need escaping, and non-ASCII: the bytes must survive every path. */
static void fill_text(size_t i, char *buf, size_t len, void *ud)
{
    (void)ud;
    snprintf(buf, len, "m %zu \"q\" \\ caf\xc3\xa9 \xf0\x9f\x98\x80 \t", i);
}

/* Sends n messages to room and waits for every ack: then each message is stored, in the
 * recent history and published. */
static void fill_room(const char *room, int n)
{
    chat_tc_fill_room(0, room, (size_t)n, SENDERS, fill_text, NULL, NULL);
}

/* A fresh room of the demo tenant holding n messages, the key of its recent history and a
 * fresh reader's name. */
static void room_filled(const char *prefix, int n, char room[96], char user[64],
                        char key[CHAT_RECENT_KEY_MAX])
{
    chat_test_unique(room, 96, prefix);
    chat_test_unique(user, 64, "reader");
    room_key(room, key, CHAT_RECENT_KEY_MAX);
    fill_room(room, n);
}

typedef struct raw_frames {
    char *f[MAX_FRAMES];
    size_t n;
} raw_frames_t;

static void raw_clear(raw_frames_t *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->f[i]);
    r->n = 0;
}

/* Sends text on c and collects the next n text frames exactly as they arrive, then checks
 * that nothing more comes for QUIET_MS. */
static void raw_request(chat_tc_t *c, const char *text, size_t n, raw_frames_t *out)
{
    out->n = 0;
    chat_tc_send_text(c, text);
    for (size_t i = 0; i <= n; i++) {
        chat_ws_msg_t m = {0};
        int timeout = i < n ? CHAT_TC_TIMEOUT_MS : QUIET_MS;
        chat_err_t err = chat_ws_recv(chat_tc_ws(c), timeout, &m);
        if (i == n) {
            ck_assert_msg(err != CHAT_OK, "frame after the %zu expected: %s", n, m.data);
            chat_ws_msg_clear(&m);
            return;
        }
        ck_assert_msg(err == CHAT_OK && m.opcode == CHAT_WS_OP_TEXT,
                      "frame %zu of %zu missing after %s", i, n, text);
        ck_assert_uint_lt(out->n, MAX_FRAMES);
        out->f[out->n++] = m.data;
        m.data = NULL;
        chat_ws_msg_clear(&m);
    }
}

static void raw_join(chat_tc_t *c, const char *room, int64_t since, size_t replayed,
                     raw_frames_t *out)
{
    char *frame = chat_client_frame_join(room, since, NULL);
    raw_request(c, frame, 1 + replayed, out);
    free(frame);
}

static void raw_history(chat_tc_t *c, const char *room, int64_t before, int64_t limit,
                        raw_frames_t *out)
{
    char *frame = chat_client_frame_history(room, before, limit, "h");
    raw_request(c, frame, 1, out);
    free(frame);
}

/* Checks a join's frames: joined with seq latest, then msgs lo..hi in order. */
static void check_join(const raw_frames_t *r, int64_t latest, int64_t lo, int64_t hi)
{
    ck_assert_uint_eq(r->n, (size_t)(1 + hi - lo + 1));
    cJSON *j = cJSON_Parse(r->f[0]);
    ck_assert(chat_json_is(j, "joined"));
    ck_assert_int_eq(chat_json_int(j, "seq"), latest);
    cJSON_Delete(j);
    for (int64_t s = lo; s <= hi; s++) {
        cJSON *m = cJSON_Parse(r->f[1 + s - lo]);
        ck_assert(chat_json_is(m, "msg"));
        ck_assert_int_eq(chat_json_int(m, "seq"), s);
        cJSON_Delete(m);
    }
}

static void assert_same_frames(const raw_frames_t *a, const raw_frames_t *b)
{
    ck_assert_uint_eq(a->n, b->n);
    for (size_t i = 0; i < a->n; i++)
        ck_assert_msg(strcmp(a->f[i], b->f[i]) == 0, "frame %zu differs:\n%s\n%s", i, a->f[i],
                      b->f[i]);
}

/* The gateway 0 counter of recent-history reads of op with result. */
static uint64_t reads(const char *op, const char *result)
{
    char series[128];
    snprintf(series, sizeof series, "chat_gateway_recent_reads_total{op=\"%s\",result=\"%s\"}", op,
             result);
    return chat_test_ops_metric(chat_test_ops_port_gateway(0), series);
}

/* ---- tests through the stack ---- */

/* The same joins and history pages from the recent history and from MongoDB (bogus marker):
 * the same bytes; the fill after the MongoDB join writes back exactly the members the set
 * had (no seq with two members). */
START_TEST(test_cache_and_mongodb_answer_the_same_bytes)
{
    char room[96], user[64], key[CHAT_RECENT_KEY_MAX];
    room_filled("recent", 60, room, user, key);
    ck_assert_int_eq(redis_int("ZCARD %s", key), 61);
    assert_marker_current(key);
    ck_assert_int_gt(redis_int("PTTL %s", key), 167LL * 3600 * 1000); /* CHAT_RECENT_TTL 168h */

    raw_frames_t cj = {0}, mj = {0}, ch1 = {0}, mh1 = {0}, ch2 = {0}, mh2 = {0};
    uint64_t hits = reads("join", "hit"), untrusted = reads("join", "untrusted");
    uint64_t hhits = reads("history", "hit"), huntrusted = reads("history", "untrusted");
    chat_tc_t *a = chat_tc_connect_demo(0, user);
    raw_join(a, room, 10, 50, &cj);
    check_join(&cj, 60, 11, 60);
    raw_history(a, room, 0, 30, &ch1);
    raw_history(a, room, 31, 30, &ch2);
    ck_assert_uint_eq(reads("join", "hit"), hits + 1);
    ck_assert_uint_eq(reads("history", "hit"), hhits + 2);

    marker_bogus(key);
    chat_tc_t *b = chat_tc_connect_demo(0, user);
    raw_join(b, room, 10, 50, &mj);
    ck_assert_uint_eq(reads("join", "untrusted"), untrusted + 1);
    assert_same_frames(&cj, &mj);
    /* The join filled the set from MongoDB with the run_id of now: same members, trusted. */
    ck_assert_int_eq(redis_int("ZCARD %s", key), 61);
    assert_marker_current(key);

    marker_bogus(key);
    raw_history(b, room, 0, 30, &mh1);
    raw_history(b, room, 31, 30, &mh2);
    ck_assert_uint_eq(reads("history", "untrusted"), huntrusted + 2);
    assert_same_frames(&ch1, &mh1);
    assert_same_frames(&ch2, &mh2);
    cJSON *h = cJSON_Parse(ch2.f[0]);
    ck_assert(!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "more")));
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(h, "msgs")), 30);
    cJSON_Delete(h);

    raw_clear(&cj);
    raw_clear(&mj);
    raw_clear(&ch1);
    raw_clear(&mh1);
    raw_clear(&ch2);
    raw_clear(&mh2);
    chat_tc_close(a);
    chat_tc_close(b);
}
END_TEST

/* The set lost its oldest members (as if trimmed): a resume and a page that reach below them
 * are answered from MongoDB, exactly, and the join's fill restores what it read. */
START_TEST(test_beyond_cached_range_falls_back)
{
    char room[96], user[64], key[CHAT_RECENT_KEY_MAX];
    room_filled("trim", 40, room, user, key);
    chat_tc_t *c = chat_tc_connect_demo(0, user);
    raw_frames_t hit = {0}, gap = {0}, page_hit = {0}, page_gap = {0};
    raw_join(c, room, 5, 35, &hit);
    raw_history(c, room, 21, 10, &page_hit);

    redis_do("ZREMRANGEBYRANK %s 1 %s", key, "20"); /* seqs 1..20 gone: 21..40 remain */
    ck_assert_int_eq(redis_int("ZCARD %s", key), 21);
    uint64_t gaps = reads("join", "gap"),
             fills = chat_test_ops_metric(chat_test_ops_port_gateway(0),
                                          "chat_gateway_recent_fills_total{result=\"written\"}");
    uint64_t hgaps = reads("history", "gap");
    chat_tc_t *d = chat_tc_connect_demo(0, user);
    raw_join(d, room, 5, 35, &gap);
    check_join(&gap, 40, 6, 40);
    assert_same_frames(&hit, &gap);
    ck_assert_uint_eq(reads("join", "gap"), gaps + 1);
    ck_assert_uint_eq(chat_test_ops_metric(chat_test_ops_port_gateway(0),
                                           "chat_gateway_recent_fills_total{result=\"written\"}"),
                      fills + 1);
    ck_assert_int_eq(redis_int("ZCARD %s", key), 41);

    redis_do("ZREMRANGEBYRANK %s 1 %s", key, "20");
    raw_history(d, room, 21, 10, &page_gap);
    ck_assert_uint_eq(reads("history", "gap"), hgaps + 1);
    assert_same_frames(&page_hit, &page_gap);

    raw_clear(&hit);
    raw_clear(&gap);
    raw_clear(&page_hit);
    raw_clear(&page_gap);
    chat_tc_close(c);
    chat_tc_close(d);
}
END_TEST

/* A cold room (its key gone: expired, evicted) is read from MongoDB and filled; the next join
 * is a hit. A room without any message is remembered as one: one MongoDB read, then hits. */
START_TEST(test_cold_and_empty_rooms)
{
    char room[96], empty[96], user[64], key[CHAT_RECENT_KEY_MAX], ekey[CHAT_RECENT_KEY_MAX];
    chat_test_unique(room, sizeof room, "cold");
    chat_test_unique(empty, sizeof empty, "empty");
    chat_test_unique(user, sizeof user, "reader");
    room_key(room, key, sizeof key);
    room_key(empty, ekey, sizeof ekey);
    fill_room(room, 12);
    redis_del(key);
    uint64_t misses = reads("join", "miss"), hits = reads("join", "hit");

    chat_tc_t *c = chat_tc_connect_demo(0, user);
    raw_frames_t cold = {0}, warm = {0};
    raw_join(c, room, 3, 9, &cold);
    check_join(&cold, 12, 4, 12);
    ck_assert_uint_eq(reads("join", "miss"), misses + 1);
    ck_assert_int_eq(redis_int("ZCARD %s", key), 13);
    assert_marker_current(key);
    ck_assert_int_gt(redis_int("PTTL %s", key), 0);
    chat_tc_t *d = chat_tc_connect_demo(0, user);
    raw_join(d, room, 3, 9, &warm);
    assert_same_frames(&cold, &warm);
    ck_assert_uint_eq(reads("join", "hit"), hits + 1);

    /* The empty room: a miss, then a set holding only the marker, then hits. */
    cJSON *j = chat_tc_join(c, empty, 0);
    ck_assert_int_eq(chat_json_int(j, "seq"), 0);
    cJSON_Delete(j);
    ck_assert_uint_eq(reads("join", "miss"), misses + 2);
    ck_assert_int_eq(redis_int("ZCARD %s", ekey), 1);
    assert_marker_current(ekey);
    j = chat_tc_join(d, empty, -1);
    ck_assert_int_eq(chat_json_int(j, "seq"), 0);
    cJSON_Delete(j);
    ck_assert_uint_eq(reads("join", "hit"), hits + 2);
    cJSON *h = chat_tc_history(d, empty, 0, 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(h, "msgs")), 0);
    ck_assert(!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(h, "more")));
    cJSON_Delete(h);
    /* Its first message extends the marker-only set: the next join replays it from Redis. */
    fill_room(empty, 1);
    ck_assert_int_eq(redis_int("ZCARD %s", ekey), 2);
    chat_tc_t *e = chat_tc_connect_demo(1, user);
    raw_frames_t one = {0};
    raw_join(e, empty, 0, 1, &one);
    check_join(&one, 1, 1, 1);

    raw_clear(&cold);
    raw_clear(&warm);
    raw_clear(&one);
    chat_tc_close(c);
    chat_tc_close(d);
    chat_tc_close(e);
}
END_TEST

/* ---- below the services: the write, the fill, a restarted server ---- */

static chat_recent_entry_t entry(int64_t seq, const char *frame)
{
    return (chat_recent_entry_t){.seq = seq, .frame = frame, .len = strlen(frame)};
}

/* Runs one merge on r and checks it was applied. */
static void merge(chat_redis_t *r, const char *key, const char *run_id,
                  const chat_recent_entry_t *e, size_t n, int64_t max, int64_t ttl_ms)
{
    size_t replies = 0;
    bool applied = false;
    ck_assert_int_eq(chat_recent_queue_merge(r, key, run_id, e, n, max, ttl_ms, &replies), CHAT_OK);
    ck_assert_int_eq(chat_recent_merge_result(r, replies, &applied), CHAT_OK);
    ck_assert(applied);
}

/* The write transaction: one marker, one member per seq (new bytes replace old ones), the
 * newest max kept, the expiry set. */
START_TEST(test_merge_transaction)
{
    char key[CHAT_RECENT_KEY_MAX];
    char room[96];
    chat_test_unique(room, sizeof room, "merge");
    room_key(room, key, sizeof key);
    const chat_recent_entry_t first[] = {entry(1, "{\"a\":1}"), entry(2, "{\"a\":2}"),
                                         entry(3, "{\"a\":3}"), entry(5, "{\"a\":5}")};
    merge(redis, key, "run-one", first, 4, 4, 60000);
    ck_assert_int_eq(redis_int("ZCARD %s", key), 5);
    /* seq 3 with other bytes, 4 and 6 new; bound 4: 1 and 2 go. */
    const chat_recent_entry_t second[] = {entry(3, "{\"a\":33}"), entry(4, "{\"a\":4}"),
                                          entry(6, "{\"a\":6}")};
    merge(redis, key, "run-two", second, 3, 4, 90000);
    chat_err_t err;
    redisReply *all = chat_redis_command(redis, &err, "ZRANGE %s 0 -1 WITHSCORES", key);
    ck_assert_ptr_nonnull(all);
    const char *want[] = {"run-two", "0",         "{\"a\":33}", "3",         "{\"a\":4}",
                          "4",       "{\"a\":5}", "5",          "{\"a\":6}", "6"};
    ck_assert_uint_eq(all->elements, 10);
    for (size_t i = 0; i < 10; i++)
        ck_assert_str_eq(all->element[i]->str, want[i]);
    freeReplyObject(all);
    long long pttl = redis_int("PTTL %s", key);
    ck_assert(pttl > 60000 && pttl <= 90000);
    /* A write that cannot vouch for the top (republished messages only) keeps the marker. */
    const chat_recent_entry_t again[] = {entry(4, "{\"a\":4}")};
    merge(redis, key, NULL, again, 1, 4, 90000);
    all = chat_redis_command(redis, &err, "ZRANGEBYSCORE %s 0 0", key);
    ck_assert_ptr_nonnull(all);
    ck_assert_uint_eq(all->elements, 1);
    ck_assert_str_eq(all->element[0]->str, "run-two");
    freeReplyObject(all);
    ck_assert_int_eq(redis_int("ZCARD %s", key), 5);
    /* Only the marker: an empty room. */
    merge(redis, key, "run-three", NULL, 0, 4, 1000);
    ck_assert_int_eq(redis_int("ZCARD %s", key), 5);
    redis_del(key);
    /* Bad input queues nothing. */
    size_t replies = 9;
    const chat_recent_entry_t unordered[] = {entry(2, "x"), entry(2, "y")};
    ck_assert_int_eq(chat_recent_queue_merge(redis, key, "r", unordered, 2, 4, 1000, &replies),
                     CHAT_ERR_INVALID);
    ck_assert_uint_eq(replies, 0);
    ck_assert_int_eq(chat_redis_ping(redis), CHAT_OK);
}
END_TEST

static gw_outq_entry_t *outq_entries(int64_t lo, int64_t hi)
{
    gw_outq_entry_t *e = calloc((size_t)(hi - lo + 1), sizeof *e);
    ck_assert_ptr_nonnull(e);
    for (int64_t s = lo; s <= hi; s++) {
        char frame[64];
        snprintf(frame, sizeof frame, "{\"type\":\"msg\",\"seq\":%lld}", (long long)s);
        e[s - lo] = (gw_outq_entry_t){.buf = gw_buf_new(frame, strlen(frame)), .seq = s};
    }
    return e;
}

static void outq_entries_free(gw_outq_entry_t *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gw_buf_unref(e[i].buf);
    free(e);
}

/* A fill gives way to a write made after its WATCH (the message service stored and wrote a
 * newer message meanwhile: the fill's answer is stale); without one it is written, trusted. */
START_TEST(test_fill_gives_way_to_a_newer_write)
{
    const char *tenant = chat_test_demo_tenant();
    char room[96], key[CHAT_RECENT_KEY_MAX];
    chat_test_unique(room, sizeof room, "fill");
    room_key(room, key, sizeof key);
    chat_redis_t *gw = NULL;
    ck_assert_int_eq(chat_redis_connect(chat_test_stack_get("CHAT_REDIS_URL"), 5000, &gw), CHAT_OK);
    gw_outq_entry_t *e = outq_entries(1, 5);

    gw_recent_fill_t f;
    ck_assert(gw_recent_fill_begin(gw, tenant, room, &f));
    const char *run_id = NULL;
    ck_assert_int_eq(chat_redis_run_id(redis, &run_id), CHAT_OK);
    const chat_recent_entry_t newer[] = {entry(6, "{\"type\":\"msg\",\"seq\":6}")};
    merge(redis, key, run_id, newer, 1, 500, 60000); /* the writer, on its own connection */
    ck_assert_int_eq(gw_recent_fill_end(gw, &f, e, 5, 500, 60000), GW_RECENT_FILL_RACED);
    ck_assert_int_eq(redis_int("ZCARD %s", key), 2);

    ck_assert(gw_recent_fill_begin(gw, tenant, room, &f));
    ck_assert_int_eq(gw_recent_fill_end(gw, &f, e, 5, 500, 60000), GW_RECENT_FILL_WRITTEN);
    ck_assert_int_eq(redis_int("ZCARD %s", key), 7);
    int64_t latest = 0;
    gw_outq_entry_t *replay = NULL;
    size_t n = 0;
    ck_assert_int_eq(gw_recent_join(gw, tenant, room, true, 2, 500, &latest, &replay, &n),
                     CHAT_RECENT_HIT);
    ck_assert_int_eq(latest, 6);
    ck_assert_uint_eq(n, 4);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(replay[i].seq, (int64_t)i + 3);
    outq_entries_free(replay, n);

    /* A cancelled fill leaves nothing WATCHed: a later transaction goes through. */
    ck_assert(gw_recent_fill_begin(gw, tenant, room, &f));
    gw_recent_fill_cancel(gw, &f);
    merge(redis, key, run_id, newer, 1, 500, 60000);
    ck_assert(gw_recent_fill_begin(gw, tenant, room, &f));
    ck_assert_int_eq(gw_recent_fill_end(gw, &f, e, 5, 500, 60000), GW_RECENT_FILL_WRITTEN);

    outq_entries_free(e, 5);
    redis_del(key);
    chat_redis_free(gw);
}
END_TEST

/* A Redis server restarted from its append-only file keeps the set, but its run_id is new:
 * the set is untrusted until a write renews its marker. */
START_TEST(test_restarted_redis_is_not_trusted)
{
    char dir[] = "/tmp/chat-it-recent-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    int port = chat_test_free_port();
    char portstr[16], url[64];
    snprintf(portstr, sizeof portstr, "%d", port);
    snprintf(url, sizeof url, "redis://127.0.0.1:%d/0", port);
    const char *server = getenv("REDIS_SERVER") != NULL ? getenv("REDIS_SERVER") : "redis-server";
    const char *const argv[] = {
        server,   "--port", portstr,        "--bind", "127.0.0.1",     "--dir",  dir,
        "--save", "",       "--appendonly", "yes",    "--appendfsync", "always", NULL};
    int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ck_assert_int_ge(devnull, 0);
    chat_redis_t *r = NULL;
    char first_run_id[64] = "";
    for (int life = 0; life < 2; life++) {
        pid_t pid = chat_test_spawn(argv, NULL, devnull, CHAT_TEST_SPAWN_INHERIT);
        int64_t deadline = chat_clock_mono_ms() + 20000;
        while (chat_redis_connect(url, 1000, &r) != CHAT_OK) {
            ck_assert_msg(!chat_test_spawn_exited(pid, NULL), "redis-server exited");
            ck_assert_msg(chat_clock_mono_ms() < deadline, "redis-server did not start");
            chat_clock_sleep_ms(100);
        }
        const char *run_id = NULL;
        ck_assert_int_eq(chat_redis_run_id(r, &run_id), CHAT_OK);
        int64_t latest = -1;
        gw_outq_entry_t *replay = NULL;
        size_t n = 0;
        chat_recent_result_t res =
            gw_recent_join(r, "t", "room", true, 0, 500, &latest, &replay, &n);
        if (life == 0) {
            snprintf(first_run_id, sizeof first_run_id, "%s", run_id);
            ck_assert_int_eq(res, CHAT_RECENT_MISS);
            char key[CHAT_RECENT_KEY_MAX];
            ck_assert_int_gt(chat_recent_key("t", "room", key, sizeof key), 0);
            const chat_recent_entry_t e[] = {entry(1, "{\"seq\":1}"), entry(2, "{\"seq\":2}")};
            merge(r, key, run_id, e, 2, 500, 600000);
            ck_assert_int_eq(gw_recent_join(r, "t", "room", true, 0, 500, &latest, &replay, &n),
                             CHAT_RECENT_HIT);
            ck_assert_int_eq(latest, 2);
            outq_entries_free(replay, n);
        } else {
            ck_assert_str_ne(run_id, first_run_id);
            ck_assert_int_eq(res, CHAT_RECENT_UNTRUSTED); /* the set survived, its marker not */
        }
        chat_redis_free(r);
        r = NULL;
        chat_test_spawn_stop(pid, SIGKILL, -1);
    }
    close(devnull);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    Suite *s = suite_create("recent-history");
    TCase *tc = tcase_create("e2e");
    tcase_set_timeout(tc, 300);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_cache_and_mongodb_answer_the_same_bytes);
    tcase_add_test(tc, test_beyond_cached_range_falls_back);
    tcase_add_test(tc, test_cold_and_empty_rooms);
    tcase_add_test(tc, test_merge_transaction);
    tcase_add_test(tc, test_fill_gives_way_to_a_newer_write);
    tcase_add_test(tc, test_restarted_redis_is_not_trusted);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
