/* Unit tests of common/store.c that need no server: URI validation, the database name, the
 * driver-error mapping, the pool's size limit and a ping that times out. */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/store.h"
#include "tests/support/util.h"

static const char *const bad_uris[] = {
    "",
    "not a uri",
    "http://127.0.0.1:27017/chat",
    "mongodb://",
    "mongodb://127.0.0.1:99999/chat",
    "mongodb://127.0.0.1:27017/bad.db",
};

START_TEST(bad_uri_is_config_error)
{
    chat_store_t *s = (chat_store_t *)&s; /* must be reset to NULL */
    ck_assert_msg(chat_store_new(bad_uris[_i], "test", &s) == CHAT_ERR_CONFIG, "accepted %s",
                  bad_uris[_i]);
    ck_assert_ptr_null(s);
}
END_TEST

START_TEST(null_uri_is_config_error)
{
    chat_store_t *s = (chat_store_t *)&s;
    ck_assert_int_eq(chat_store_new(NULL, "test", &s), CHAT_ERR_CONFIG);
    ck_assert_ptr_null(s);
    ck_assert_int_eq(chat_store_new("mongodb://127.0.0.1/chat", "test", NULL), CHAT_ERR_INVALID);
}
END_TEST

static const struct {
    const char *uri;
    const char *db;
} db_names[] = {
    {"mongodb://127.0.0.1:27017", "chat"},
    {"mongodb://127.0.0.1:27017/", "chat"},
    {"mongodb://127.0.0.1/history", "history"},
    {"mongodb://user:pw@127.0.0.1:27017/msgs?authSource=admin&appname=x", "msgs"},
    {"mongodb://a:1,b:2/chat_eu?replicaSet=rs0", "chat_eu"},
};

START_TEST(db_name_from_path_or_default)
{
    chat_store_t *s = NULL;
    ck_assert_int_eq(chat_store_new(db_names[_i].uri, NULL, &s), CHAT_OK);
    ck_assert_str_eq(chat_store_db_name(s), db_names[_i].db);
    chat_store_destroy(s);
}
END_TEST

static const struct {
    uint32_t domain;
    uint32_t code;
    chat_err_t want;
} error_map[] = {
    {MONGOC_ERROR_SERVER, 11000, CHAT_ERR_DUPLICATE},
    {MONGOC_ERROR_SERVER, 11001, CHAT_ERR_DUPLICATE},
    {MONGOC_ERROR_COLLECTION, 11000, CHAT_ERR_DUPLICATE}, /* error API version 1 */
    {MONGOC_ERROR_WRITE_CONCERN, 11000, CHAT_ERR_DUPLICATE},
    {MONGOC_ERROR_SERVER_SELECTION, MONGOC_ERROR_SERVER_SELECTION_FAILURE, CHAT_ERR_TIMEOUT},
    {MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_SOCKET, CHAT_ERR_IO},
    {MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_CONNECT, CHAT_ERR_IO},
    {MONGOC_ERROR_STREAM, MONGOC_ERROR_STREAM_NAME_RESOLUTION, CHAT_ERR_IO},
    {MONGOC_ERROR_SERVER, 2, CHAT_ERR_MONGO},
    {MONGOC_ERROR_SERVER, 86, CHAT_ERR_MONGO},
    {MONGOC_ERROR_WRITE_CONCERN, 64, CHAT_ERR_MONGO},
    {MONGOC_ERROR_CLIENT, MONGOC_ERROR_CLIENT_AUTHENTICATE, CHAT_ERR_MONGO},
    {0, 0, CHAT_ERR_MONGO},
};

START_TEST(driver_error_mapping)
{
    bson_error_t e;
    bson_set_error(&e, error_map[_i].domain, error_map[_i].code, "test");
    ck_assert_msg(chat_store_err(&e) == error_map[_i].want, "domain %u code %u -> %s",
                  error_map[_i].domain, error_map[_i].code, chat_err_name(chat_store_err(&e)));
}
END_TEST

START_TEST(null_error_is_mongo)
{
    ck_assert_int_eq(chat_store_err(NULL), CHAT_ERR_MONGO);
}
END_TEST

START_TEST(destroy_null)
{
    chat_store_destroy(NULL);
}
END_TEST

typedef struct blocked_acquire {
    chat_store_t *store;
    atomic_bool done;
    mongoc_client_t *client;
} blocked_acquire_t;

static void *acquire_thread(void *arg)
{
    blocked_acquire_t *b = arg;
    b->client = chat_store_acquire(b->store);
    atomic_store(&b->done, true);
    return NULL;
}

/* Takes max clients, checks that one more blocks until one is given back. Acquiring does not
 * connect, so no server is needed. */
static void check_pool_limit(const char *options, int max)
{
    char uri[128];
    snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/chat%s", chat_test_free_port(), options);
    chat_store_t *s = NULL;
    ck_assert_int_eq(chat_store_new(uri, "test", &s), CHAT_OK);
    mongoc_client_t *clients[32];
    ck_assert_int_le(max, 32);
    for (int i = 0; i < max; i++)
        clients[i] = chat_store_acquire(s);

    blocked_acquire_t b = {.store = s};
    pthread_t thread;
    ck_assert_int_eq(pthread_create(&thread, NULL, acquire_thread, &b), 0);
    chat_clock_sleep_ms(200);
    ck_assert_msg(!atomic_load(&b.done), "acquire %d did not block", max + 1);
    chat_store_release(s, clients[0]);
    pthread_join(thread, NULL);
    ck_assert(atomic_load(&b.done));
    ck_assert_ptr_eq(b.client, clients[0]);
    clients[0] = b.client;

    for (int i = 0; i < max; i++)
        chat_store_release(s, clients[i]);
    chat_store_destroy(s);
}

START_TEST(pool_max_defaults_to_16)
{
    check_pool_limit("", 16);
}
END_TEST

START_TEST(pool_max_from_uri)
{
    check_pool_limit("?maxPoolSize=3", 3);
}
END_TEST

START_TEST(ping_unreachable_times_out)
{
    char uri[128];
    snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/chat", chat_test_free_port());
    chat_store_t *s = NULL;
    ck_assert_int_eq(chat_store_new(uri, "test", &s), CHAT_OK);
    int64_t start = chat_clock_mono_ms();
    ck_assert_int_eq(chat_store_ping(s, 400), CHAT_ERR_TIMEOUT);
    int64_t took = chat_clock_mono_ms() - start;
    ck_assert_int_ge(took, 300);
    ck_assert_int_lt(took, 2000);
    chat_store_destroy(s);
}
END_TEST

START_TEST(insert_nothing_is_ok)
{
    chat_store_t *s = NULL;
    ck_assert_int_eq(chat_store_new("mongodb://127.0.0.1:1/chat", "test", &s), CHAT_OK);
    ck_assert_int_eq(chat_store_insert_many(s, "messages", NULL, 0, false, NULL), CHAT_OK);
    chat_store_destroy(s);
}
END_TEST

/* Ordered or not (_i), nothing reached a server: every document is unknown (MONGO), none is
 * reported as not attempted. */
START_TEST(insert_unreachable_marks_every_document)
{
    char uri[128];
    snprintf(uri, sizeof uri, "mongodb://127.0.0.1:%d/chat?serverSelectionTimeoutMS=300",
             chat_test_free_port());
    chat_store_t *s = NULL;
    ck_assert_int_eq(chat_store_new(uri, "test", &s), CHAT_OK);
    bson_t *docs[3] = {BCON_NEW("a", BCON_INT32(1)), BCON_NEW("a", BCON_INT32(2)),
                       BCON_NEW("a", BCON_INT32(3))};
    chat_err_t results[3] = {CHAT_OK, CHAT_ERR_DUPLICATE, CHAT_ERR_STOPPED};
    bool ordered = _i == 1;
    ck_assert_int_eq(
        chat_store_insert_many(s, "messages", (const bson_t *const *)docs, 3, ordered, results),
        CHAT_ERR_MONGO);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(results[i], CHAT_ERR_MONGO);
        bson_destroy(docs[i]);
    }
    chat_store_destroy(s);
}
END_TEST

static Suite *store_suite(void)
{
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("config");
    tcase_add_loop_test(tc, bad_uri_is_config_error, 0,
                        (int)(sizeof bad_uris / sizeof bad_uris[0]));
    tcase_add_test(tc, null_uri_is_config_error);
    tcase_add_loop_test(tc, db_name_from_path_or_default, 0,
                        (int)(sizeof db_names / sizeof db_names[0]));
    tcase_add_test(tc, destroy_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, driver_error_mapping, 0, (int)(sizeof error_map / sizeof error_map[0]));
    tcase_add_test(tc, null_error_is_mongo);
    suite_add_tcase(s, tc);

    tc = tcase_create("pool");
    tcase_add_test(tc, pool_max_defaults_to_16);
    tcase_add_test(tc, pool_max_from_uri);
    tcase_add_test(tc, ping_unreachable_times_out);
    tcase_add_test(tc, insert_nothing_is_ok);
    tcase_add_loop_test(tc, insert_unreachable_marks_every_document, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    chat_log_init("test_store", CHAT_LOG_WARN);
    return chat_test_suite_run(store_suite(), false);
}
