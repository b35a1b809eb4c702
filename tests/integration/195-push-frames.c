/* The gateway's part of notifications (docs/notify.md, PROTOCOL v1.1 "Push subscriptions"),
 * against the stack's gateways, MongoDB and Redis:
 * - welcome carries vapid (the stack's CHAT_VAPID_PUBLIC_KEY) and the token's exp;
 * - push_subscribe stores {_id: tenant/user/<32 hex of SHA-256(endpoint)>, ...}, answered ok
 *   {rid}; the same endpoint again keeps one document; an 11th subscription drops the oldest;
 *   bad keys or endpoints are bad_request with the rid and store nothing;
 * - push_unsubscribe removes the document; push_prefs stores a preference, "default" removes it;
 * - the gateways' online hashes: a user is online while a connection is open on either gateway,
 *   also after one of two connections closed, and offline once all are closed; the hash is
 *   re-expired by the heartbeat. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/sha.h>

#include "common/clock.h"
#include "common/notify_store.h"
#include "common/redis.h"
#include "common/store.h"
#include "tests/support/chat.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"
#include "tools/client/client_frames.h"

#define WAIT_MS 10000
#define POLL_MS 50

/* A P-256 public key and an auth secret as a browser gives them (base64url, unpadded). */
#define P256DH                                                                                     \
    "BNQiSdw2bimpdhNHvcfqad36miWHrMZnP0US6CmXQWpCjP52_P9qqcTyIR1UlC2i2L2bY_o3SLCRATGLKfaehN4"
#define AUTH "3PyscyymmgFhhcbm6PAA1w"
/* 0x04 then 64 zero bytes: the right length and prefix, but no point of the curve */
#define P256DH_OFF_CURVE                                                                           \
    "BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

static struct {
    chat_store_t *store;
    chat_redis_t *redis;
    const char *tenant;
    const char *secret;
    unsigned rid;
} it;

static void setup(void)
{
    it.tenant = chat_test_demo_tenant();
    it.secret = chat_test_demo_secret();
    ck_assert_int_eq(chat_store_new(chat_test_stack_get("CHAT_MONGO_URI"), "it-195", &it.store),
                     CHAT_OK);
    ck_assert_int_eq(chat_redis_connect(chat_test_stack_get("CHAT_REDIS_URL"), 5000, &it.redis),
                     CHAT_OK);
}

static void teardown(void)
{
    chat_redis_free(it.redis);
    chat_store_destroy(it.store);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A fresh rid "p<n>" into buf. */
static const char *next_rid(char *buf, size_t len)
{
    snprintf(buf, len, "p%u", ++it.rid);
    return buf;
}

/* Sends frame (a builder's) with rid and returns the answer about rid (caller frees). */
static cJSON *ask(chat_tc_t *c, char *frame, const char *rid)
{
    cJSON *a = chat_tc_ask(c, frame, rid);
    ck_assert_str_eq(chat_json_str(a, "rid"), rid);
    return a;
}

/* Sends frame and expects `ok` {rid}. */
static void ask_ok(chat_tc_t *c, char *frame, const char *rid)
{
    cJSON *a = ask(c, frame, rid);
    ck_assert_msg(chat_json_is(a, "ok"), "expected ok for %s, got %s %s", rid,
                  chat_json_str(a, "type"), chat_json_str(a, "message"));
    cJSON_Delete(a);
}

/* Sends frame and expects `error` bad_request {rid}; returns its message (static copy). */
static const char *ask_bad(chat_tc_t *c, char *frame, const char *rid)
{
    static char message[256];
    cJSON *a = ask(c, frame, rid);
    ck_assert_msg(chat_json_is(a, "error"), "expected an error for %s, got %s", rid,
                  chat_json_str(a, "type"));
    ck_assert_str_eq(chat_json_str(a, "code"), "bad_request");
    snprintf(message, sizeof message, "%s", chat_json_str(a, "message"));
    cJSON_Delete(a);
    return message;
}

static void subscribe_ok(chat_tc_t *c, const char *endpoint, const char *p256dh, const char *auth)
{
    char rid[16];
    next_rid(rid, sizeof rid);
    ask_ok(c, chat_client_frame_push_subscribe(endpoint, p256dh, auth, rid), rid);
}

/* ---- MongoDB ---- */

/* "<tenant>/<user>/<32 hex of SHA-256(endpoint)>" */
static void sub_id(const char *user, const char *endpoint, char *buf, size_t len)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)endpoint, strlen(endpoint), md);
    int n = snprintf(buf, len, "%s/%s/", it.tenant, user);
    for (int i = 0; i < 16; i++)
        n += snprintf(buf + n, len - (size_t)n, "%02x", md[i]);
}

/* The document of collection with _id id, or NULL (caller destroys). */
static bson_t *doc_get(const char *collection, const char *id)
{
    bson_t *filter = BCON_NEW("_id", BCON_UTF8(id));
    bson_t *doc = NULL;
    chat_err_t rc = chat_store_find_one(it.store, collection, filter, &doc);
    bson_destroy(filter);
    ck_assert_msg(rc == CHAT_OK || rc == CHAT_ERR_NOT_FOUND, "find in %s: %s", collection,
                  chat_err_str(rc));
    return rc == CHAT_OK ? doc : NULL;
}

static const char *doc_str(const bson_t *doc, const char *key)
{
    bson_iter_t i;
    return bson_iter_init_find(&i, doc, key) && BSON_ITER_HOLDS_UTF8(&i) ? bson_iter_utf8(&i, NULL)
                                                                         : "";
}

static int64_t doc_int(const bson_t *doc, const char *key)
{
    bson_iter_t i;
    return bson_iter_init_find(&i, doc, key) ? bson_iter_as_int64(&i) : -1;
}

/* Documents of user in push_subscriptions. */
static int64_t subs_count(const char *user)
{
    mongoc_client_t *client = chat_store_acquire(it.store);
    mongoc_collection_t *col = chat_store_collection(it.store, client, CHAT_PUSH_SUBS_COLLECTION);
    bson_t *filter = BCON_NEW("tenant", BCON_UTF8(it.tenant), "user", BCON_UTF8(user));
    bson_error_t error;
    int64_t n = mongoc_collection_count_documents(col, filter, NULL, NULL, NULL, &error);
    ck_assert_msg(n >= 0, "count: %s", error.message);
    bson_destroy(filter);
    mongoc_collection_destroy(col);
    chat_store_release(it.store, client);
    return n;
}

/* ---- welcome ---- */

/* welcome.vapid is the stack's key (unpadded base64url of a 65-byte point) and welcome.exp
 * the token's exp. */
START_TEST(test_welcome_vapid_and_exp)
{
    char user[64];
    chat_test_unique(user, sizeof user, "push-w");
    int64_t before = chat_clock_wall_ms() / 1000;
    char *tok = chat_test_token(it.tenant, it.secret, user, NULL, 3600);
    int64_t after = chat_clock_wall_ms() / 1000 + 1;
    for (size_t gw = 0; gw < chat_test_gateway_count(); gw++) {
        chat_tc_t *c = chat_tc_open(chat_test_gateway_url(gw));
        chat_tc_send_frame(c, chat_client_frame_auth(tok));
        cJSON *w = chat_tc_expect(c, "welcome", WAIT_MS);
        const char *vapid = chat_json_str(w, "vapid");
        ck_assert_msg(vapid != NULL,
                      "welcome of gateway %zu has no vapid: the stack's gateways "
                      "need CHAT_VAPID_PUBLIC_KEY",
                      gw);
        const char *want = getenv("CHAT_VAPID_PUBLIC_KEY");
        if (want != NULL && want[0] != '\0')
            ck_assert_str_eq(vapid, want);
        ck_assert_uint_eq(strlen(vapid), 87);
        ck_assert_uint_eq(strspn(vapid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789-_"),
                          87);
        ck_assert_msg(vapid[0] == 'B', "not an uncompressed point (0x04 first): %s", vapid);
        int64_t exp = chat_json_int(w, "exp");
        ck_assert_msg(exp >= before + 3600 && exp <= after + 3600, "exp %lld not the token's",
                      (long long)exp);
        cJSON_Delete(w);
        chat_tc_close(c);
    }
    free(tok);
}
END_TEST

/* ---- subscriptions ---- */

/* Stored under its id with the keys as given; a renewal of the same endpoint keeps one
 * document (with the new keys); unsubscribe removes it, and again is still ok. */
START_TEST(test_subscribe_renew_unsubscribe)
{
    char user[64], endpoint[160], id[256], rid[16];
    chat_test_unique(user, sizeof user, "push-s");
    snprintf(endpoint, sizeof endpoint, "https://push.example/send/%s", user);
    chat_tc_t *c = chat_tc_connect_user(0, it.tenant, it.secret, user, NULL);
    int64_t t0 = chat_clock_wall_ms();
    subscribe_ok(c, endpoint, P256DH, AUTH);
    sub_id(user, endpoint, id, sizeof id);
    bson_t *doc = doc_get(CHAT_PUSH_SUBS_COLLECTION, id);
    ck_assert_msg(doc != NULL, "no document %s", id);
    ck_assert_str_eq(doc_str(doc, "tenant"), it.tenant);
    ck_assert_str_eq(doc_str(doc, "user"), user);
    ck_assert_str_eq(doc_str(doc, "endpoint"), endpoint);
    ck_assert_str_eq(doc_str(doc, "p256dh"), P256DH);
    ck_assert_str_eq(doc_str(doc, "auth"), AUTH);
    int64_t created = doc_int(doc, "created");
    ck_assert_msg(created >= t0 - 1000 && created <= chat_clock_wall_ms() + 1000, "created %lld",
                  (long long)created);
    bson_destroy(doc);

    /* the same endpoint again (padded keys this time): one document, the new keys */
    subscribe_ok(c, endpoint, P256DH "=", "AAAAAAAAAAAAAAAAAAAAAA==");
    ck_assert_int_eq(subs_count(user), 1);
    doc = doc_get(CHAT_PUSH_SUBS_COLLECTION, id);
    ck_assert_ptr_nonnull(doc);
    ck_assert_str_eq(doc_str(doc, "auth"), "AAAAAAAAAAAAAAAAAAAAAA==");
    bson_destroy(doc);

    /* from another gateway too: the store is the same */
    chat_tc_t *c1 =
        chat_tc_connect_user(chat_test_gateway_count() - 1, it.tenant, it.secret, user, NULL);
    next_rid(rid, sizeof rid);
    ask_ok(c1, chat_client_frame_push_unsubscribe(endpoint, rid), rid);
    ck_assert_ptr_null(doc_get(CHAT_PUSH_SUBS_COLLECTION, id));
    ck_assert_int_eq(subs_count(user), 0);
    next_rid(rid, sizeof rid);
    ask_ok(c1, chat_client_frame_push_unsubscribe(endpoint, rid), rid);
    chat_tc_close(c1);
    chat_tc_close(c);
}
END_TEST

/* Eleven subscriptions keep the newest ten: the first one is gone. */
START_TEST(test_eleven_keep_ten)
{
    char user[64], endpoint[11][160];
    chat_test_unique(user, sizeof user, "push-l");
    chat_tc_t *c = chat_tc_connect_user(0, it.tenant, it.secret, user, NULL);
    for (int i = 0; i < 11; i++) {
        snprintf(endpoint[i], sizeof endpoint[i], "https://push.example/%s/%d", user, i);
        subscribe_ok(c, endpoint[i], P256DH, AUTH);
        sleep_ms(5); /* created is in ms: one per ms at least, so "oldest" is clear */
        ck_assert_int_eq(subs_count(user), i < 10 ? i + 1 : 10);
    }
    chat_push_sub_t *subs = NULL;
    size_t n = 0;
    ck_assert_int_eq(chat_push_subs_list(it.store, it.tenant, user, &subs, &n), CHAT_OK);
    ck_assert_uint_eq(n, 10);
    for (size_t i = 0; i < n; i++) /* newest first: 10, 9, ..., 1 */
        ck_assert_str_eq(subs[i].endpoint, endpoint[10 - i]);
    chat_push_subs_free(subs, n);
    char id[256];
    sub_id(user, endpoint[0], id, sizeof id);
    ck_assert_ptr_null(doc_get(CHAT_PUSH_SUBS_COLLECTION, id));
    chat_tc_close(c);
}
END_TEST

/* Keys that are no P-256 point or auth secret, and endpoints the gateway will not send to, are
 * bad_request with the rid; nothing is stored. */
START_TEST(test_bad_subscriptions)
{
    char user[64], endpoint[160], rid[16];
    chat_test_unique(user, sizeof user, "push-b");
    snprintf(endpoint, sizeof endpoint, "https://push.example/%s", user);
    chat_tc_t *c = chat_tc_connect_user(0, it.tenant, it.secret, user, NULL);
    const char *m;
    next_rid(rid, sizeof rid);
    m = ask_bad(c, chat_client_frame_push_subscribe(endpoint, P256DH_OFF_CURVE, AUTH, rid), rid);
    ck_assert_msg(strstr(m, "p256dh") != NULL, "message: %s", m);
    next_rid(rid, sizeof rid);
    m = ask_bad(c, chat_client_frame_push_subscribe(endpoint, "BNQiSdw2", AUTH, rid), rid);
    ck_assert_msg(strstr(m, "p256dh") != NULL, "message: %s", m);
    next_rid(rid, sizeof rid); /* 12 bytes, not 16 */
    m = ask_bad(c, chat_client_frame_push_subscribe(endpoint, P256DH, "3PyscyymmgFhhcbm", rid),
                rid);
    ck_assert_msg(strstr(m, "auth") != NULL, "message: %s", m);
    next_rid(rid, sizeof rid); /* not base64url at all: the frame's own rule */
    ask_bad(c, chat_client_frame_push_subscribe(endpoint, P256DH, "a/b+", rid), rid);
    /* user info in the URL: refused by the egress rules whatever the deployment allows */
    next_rid(rid, sizeof rid);
    m = ask_bad(c,
                chat_client_frame_push_subscribe("https://me:pw@push.example/x", P256DH, AUTH, rid),
                rid);
    ck_assert_msg(strstr(m, "endpoint") != NULL, "message: %s", m);
    next_rid(rid, sizeof rid);
    ask_bad(c, chat_client_frame_push_subscribe("wss://push.example/x", P256DH, AUTH, rid), rid);
    next_rid(rid, sizeof rid);
    ask_bad(c, chat_client_frame_push_subscribe("https://", P256DH, AUTH, rid), rid);
    ck_assert_int_eq(subs_count(user), 0);
    /* the connection is fine afterwards */
    subscribe_ok(c, endpoint, P256DH, AUTH);
    ck_assert_int_eq(subs_count(user), 1);
    next_rid(rid, sizeof rid);
    ask_ok(c, chat_client_frame_push_unsubscribe(endpoint, rid), rid);
    chat_tc_close(c);
}
END_TEST

/* ---- preferences ---- */

/* A room's mode and the every-room mode are stored as documents; "default" removes them; the
 * effective mode follows (room first, then "*", then the default of the kind). */
START_TEST(test_prefs)
{
    char user[64], room[96], id[256], rid[16];
    chat_test_unique(user, sizeof user, "push-p");
    chat_test_unique(room, sizeof room, "push-room");
    chat_tc_t *c = chat_tc_connect_user(0, it.tenant, it.secret, user, NULL);
    const char *users[] = {user};
    chat_push_mode_t mode;

    next_rid(rid, sizeof rid);
    ask_ok(c, chat_client_frame_push_prefs(room, "none", rid), rid);
    snprintf(id, sizeof id, "%s/%s/%s", it.tenant, user, room);
    bson_t *doc = doc_get(CHAT_PUSH_PREFS_COLLECTION, id);
    ck_assert_msg(doc != NULL, "no document %s", id);
    ck_assert_str_eq(doc_str(doc, "mode"), "none");
    ck_assert_str_eq(doc_str(doc, "room"), room);
    ck_assert_str_eq(doc_str(doc, "user"), user);
    ck_assert_str_eq(doc_str(doc, "tenant"), it.tenant);
    ck_assert_int_gt(doc_int(doc, "updated"), 0);
    bson_destroy(doc);

    next_rid(rid, sizeof rid);
    ask_ok(c, chat_client_frame_push_prefs(NULL, "all", rid), rid);
    snprintf(id, sizeof id, "%s/%s/*", it.tenant, user);
    doc = doc_get(CHAT_PUSH_PREFS_COLLECTION, id);
    ck_assert_msg(doc != NULL, "no document %s", id);
    ck_assert_str_eq(doc_str(doc, "mode"), "all");
    ck_assert_str_eq(doc_str(doc, "room"), "*");
    bson_destroy(doc);

    ck_assert_int_eq(
        chat_push_prefs_effective(it.store, it.tenant, room, "public", users, 1, &mode), CHAT_OK);
    ck_assert_int_eq(mode, CHAT_PUSH_MODE_NONE);

    next_rid(rid, sizeof rid);
    ask_ok(c, chat_client_frame_push_prefs(room, "default", rid), rid);
    snprintf(id, sizeof id, "%s/%s/%s", it.tenant, user, room);
    ck_assert_ptr_null(doc_get(CHAT_PUSH_PREFS_COLLECTION, id));
    ck_assert_int_eq(
        chat_push_prefs_effective(it.store, it.tenant, room, "public", users, 1, &mode), CHAT_OK);
    ck_assert_int_eq(mode, CHAT_PUSH_MODE_ALL); /* the every-room preference */

    next_rid(rid, sizeof rid);
    ask_ok(c, chat_client_frame_push_prefs(NULL, "default", rid), rid);
    snprintf(id, sizeof id, "%s/%s/*", it.tenant, user);
    ck_assert_ptr_null(doc_get(CHAT_PUSH_PREFS_COLLECTION, id));
    ck_assert_int_eq(
        chat_push_prefs_effective(it.store, it.tenant, room, "public", users, 1, &mode), CHAT_OK);
    ck_assert_int_eq(mode, CHAT_PUSH_MODE_MENTIONS); /* a public room's default */

    next_rid(rid, sizeof rid);
    ask_bad(c, chat_client_frame_push_prefs(room, "loud", rid), rid);
    next_rid(rid, sizeof rid);
    ask_bad(c, chat_client_frame_push_prefs("no room", "all", rid), rid);
    chat_tc_close(c);
}
END_TEST

/* ---- online users ---- */

static bool online_now(const char *user)
{
    const char *users[] = {user};
    bool online = false;
    ck_assert_int_eq(
        chat_online_users(it.redis, (int)chat_test_gateway_count(), it.tenant, users, 1, &online),
        CHAT_OK);
    return online;
}

/* Waits until user's online state is want; fails the test after WAIT_MS. */
static void expect_online(const char *user, bool want, const char *when)
{
    int64_t end = chat_clock_mono_ms() + WAIT_MS;
    while (online_now(user) != want) {
        ck_assert_msg(chat_clock_mono_ms() < end, "%s: %s is not %s", when, user,
                      want ? "online" : "offline");
        sleep_ms(POLL_MS);
    }
}

/* The count of user on gateway gw ("" if the field is absent). */
static void online_field(size_t gw, const char *user, char *buf, size_t len)
{
    char g[16], key[64], field[160];
    snprintf(g, sizeof g, "%zu", gw);
    chat_online_key(g, key, sizeof key);
    snprintf(field, sizeof field, "%s/%s", it.tenant, user);
    redisReply *r = chat_redis_command(it.redis, NULL, "HGET %s %s", key, field);
    ck_assert_ptr_nonnull(r);
    snprintf(buf, len, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
}

/* Waits until user's count on gateway gw reads want ("" for absent). */
static void expect_field(size_t gw, const char *user, const char *want)
{
    char got[32];
    int64_t end = chat_clock_mono_ms() + WAIT_MS;
    for (;;) {
        online_field(gw, user, got, sizeof got);
        if (strcmp(got, want) == 0)
            return;
        ck_assert_msg(chat_clock_mono_ms() < end, "gateway %zu count of %s: %s, not %s", gw, user,
                      got, want);
        sleep_ms(POLL_MS);
    }
}

/* Online while a connection is open on either gateway; with two connections, online after
 * one of them closed; offline once both closed. */
START_TEST(test_online_across_gateways)
{
    size_t last = chat_test_gateway_count() - 1;
    char user[64];
    chat_test_unique(user, sizeof user, "push-o");
    ck_assert(!online_now(user));

    chat_tc_t *a = chat_tc_connect_user(0, it.tenant, it.secret, user, NULL);
    expect_online(user, true, "connected to gateway 0");
    expect_field(0, user, "1");
    chat_tc_close(a);
    expect_online(user, false, "closed on gateway 0");
    expect_field(0, user, "");

    chat_tc_t *b = chat_tc_connect_user(last, it.tenant, it.secret, user, NULL);
    expect_online(user, true, "connected to the last gateway");
    chat_tc_t *c = chat_tc_connect_user(0, it.tenant, it.secret, user, NULL);
    expect_field(0, user, "1");
    chat_tc_close(b); /* the other connection stays */
    if (last != 0)
        expect_field(last, user, "");
    ck_assert(online_now(user));
    chat_tc_free(c); /* dropped without a close frame counts the same */
    expect_online(user, false, "both closed");

    /* two connections on one gateway: the count is 2, then 1 */
    a = chat_tc_connect_user(0, it.tenant, it.secret, user, NULL);
    b = chat_tc_connect_user(0, it.tenant, it.secret, user, NULL);
    expect_field(0, user, "2");
    chat_tc_close(a);
    expect_field(0, user, "1");
    ck_assert(online_now(user));
    chat_tc_close(b);
    expect_field(0, user, "");
    ck_assert(!online_now(user));
}
END_TEST

/* The heartbeat gives each gateway's hash the registrations' expiry (3 heartbeats). */
START_TEST(test_online_hash_expires)
{
    char user[64];
    chat_test_unique(user, sizeof user, "push-t");
    chat_tc_t *a = chat_tc_connect_user(0, it.tenant, it.secret, user, NULL);
    expect_field(0, user, "1");
    char key[64];
    chat_online_key("0", key, sizeof key);
    int64_t end = chat_clock_mono_ms() + WAIT_MS, pttl = -1;
    while (pttl <= 0) {
        redisReply *r = chat_redis_command(it.redis, NULL, "PTTL %s", key);
        ck_assert_ptr_nonnull(r);
        pttl = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
        freeReplyObject(r);
        if (pttl <= 0) {
            ck_assert_msg(chat_clock_mono_ms() < end, "%s never got an expiry", key);
            sleep_ms(POLL_MS * 4);
        }
    }
    ck_assert_msg(pttl <= 60000, "%s expires in %lld ms", key, (long long)pttl);
    chat_tc_close(a);
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    mongoc_init();
    Suite *s = suite_create("push-frames");
    TCase *tc = tcase_create("push");
    tcase_set_timeout(tc, 120);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_welcome_vapid_and_exp);
    tcase_add_test(tc, test_subscribe_renew_unsubscribe);
    tcase_add_test(tc, test_eleven_keep_ten);
    tcase_add_test(tc, test_bad_subscriptions);
    tcase_add_test(tc, test_prefs);
    tcase_add_test(tc, test_online_across_gateways);
    tcase_add_test(tc, test_online_hash_expires);
    suite_add_tcase(s, tc);
    int rc = chat_test_suite_run(s, false);
    mongoc_cleanup();
    return rc;
}
