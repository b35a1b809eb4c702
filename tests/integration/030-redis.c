/* Integration test of common/redis.c against the stack's Redis: ping, binary-safe values,
 * error replies, pipelining, and reconnecting after the server killed the connection.
 * Keys start with a per-test unique prefix and are deleted in the teardown. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/redis.h"
#include "common/redis_int.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

static chat_redis_t *redis;
static chat_redis_t *redis_other_db; /* set by the test that uses a second db */
static char prefix[64];

static void setup(void)
{
    ck_assert_int_eq(chat_redis_connect(chat_test_stack_get("CHAT_REDIS_URL"), 2000, &redis),
                     CHAT_OK);
    chat_test_unique(prefix, sizeof prefix, "it030");
}

/* Deletes every key of the test, in any db a test selected. */
static void delete_keys(chat_redis_t *r)
{
    chat_err_t err;
    redisReply *keys = chat_redis_command(r, &err, "KEYS %s:*", prefix);
    ck_assert_ptr_nonnull(keys);
    for (size_t i = 0; i < keys->elements; i++) {
        redisReply *del =
            chat_redis_command(r, &err, "DEL %b", keys->element[i]->str, keys->element[i]->len);
        ck_assert_ptr_nonnull(del);
        freeReplyObject(del);
    }
    freeReplyObject(keys);
}

static void teardown(void)
{
    if (redis_other_db != NULL) {
        delete_keys(redis_other_db);
        chat_redis_free(redis_other_db);
        redis_other_db = NULL;
    }
    delete_keys(redis);
    chat_redis_free(redis);
    redis = NULL;
}

static void key(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s:%s", prefix, name);
}

/* The server-side id of r's current connection. */
static long long client_id(chat_redis_t *r)
{
    chat_err_t err;
    redisReply *reply = chat_redis_command(r, &err, "CLIENT ID");
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
    long long id = reply->integer;
    freeReplyObject(reply);
    return id;
}

/* Closes r's connection from the server side, through another connection. */
static void kill_connection(long long id)
{
    chat_redis_t *other = NULL;
    ck_assert_int_eq(chat_redis_connect(chat_test_stack_get("CHAT_REDIS_URL"), 2000, &other),
                     CHAT_OK);
    chat_err_t err;
    redisReply *reply = chat_redis_command(other, &err, "CLIENT KILL ID %lld", id);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
    ck_assert_int_eq(reply->integer, 1);
    freeReplyObject(reply);
    chat_redis_free(other);
}

START_TEST(ping_pongs)
{
    ck_assert_int_eq(chat_redis_ping(redis), CHAT_OK);
}
END_TEST

START_TEST(binary_values_round_trip)
{
    static const char value[] = "a\0b\0\xff\r\nc";
    const size_t value_len = sizeof value - 1;
    char k[96];
    key(k, sizeof k, "bin");
    const char *set[] = {"SET", k, value};
    const size_t set_len[] = {3, strlen(k), value_len};
    chat_err_t err = CHAT_ERR__COUNT;
    redisReply *reply = chat_redis_command_argv(redis, &err, 3, set, set_len);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(err, CHAT_OK);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);

    const char *get[] = {"GET", k};
    reply = chat_redis_command_argv(redis, &err, 2, get, NULL);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    ck_assert_uint_eq(reply->len, value_len);
    ck_assert(memcmp(reply->str, value, value_len) == 0);
    freeReplyObject(reply);

    reply = chat_redis_command(redis, &err, "STRLEN %s", k);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->integer, (long long)value_len);
    freeReplyObject(reply);
}
END_TEST

/* Reads back what the module logged into fd since offset 0. */
static void read_log(int fd, char *buf, size_t len)
{
    ssize_t n = pread(fd, buf, len - 1, 0);
    ck_assert_int_ge(n, 0);
    buf[n] = '\0';
}

START_TEST(error_reply_is_logged_and_connection_survives)
{
    char k[96];
    key(k, sizeof k, "not-a-number");
    chat_err_t err;
    redisReply *reply = chat_redis_command(redis, &err, "SET %s %s", k, "secret-value");
    ck_assert_ptr_nonnull(reply);
    freeReplyObject(reply);

    FILE *log_file = tmpfile();
    ck_assert_ptr_nonnull(log_file);
    int log_fd = fileno(log_file);
    chat_log_set_fd(log_fd);
    err = CHAT_OK;
    reply = chat_redis_command(redis, &err, "INCR %s", k);
    chat_log_set_fd(2);
    ck_assert_ptr_null(reply);
    ck_assert_int_eq(err, CHAT_ERR_REDIS);

    char log[4096];
    read_log(log_fd, log, sizeof log);
    fclose(log_file);
    ck_assert_msg(strstr(log, "\"command\":\"INCR\"") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, "not an integer") != NULL, "log: %s", log);
    ck_assert_msg(strstr(log, prefix) == NULL, "arguments leaked into the log: %s", log);

    ck_assert_int_eq(chat_redis_ping(redis), CHAT_OK);
    reply = chat_redis_command(redis, &err, "GET %s", k);
    ck_assert_ptr_nonnull(reply);
    ck_assert_str_eq(reply->str, "secret-value");
    freeReplyObject(reply);
}
END_TEST

START_TEST(pipeline_keeps_order)
{
    char list[96];
    key(list, sizeof list, "list");
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(chat_redis_append(redis, "RPUSH %s %d", list, i), CHAT_OK);
    for (int i = 0; i < 100; i++) {
        redisReply *reply = NULL;
        ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_OK);
        ck_assert_int_eq(reply->type, REDIS_REPLY_INTEGER);
        ck_assert_int_eq(reply->integer, i + 1);
        freeReplyObject(reply);
    }
    redisReply *extra = (redisReply *)&extra;
    ck_assert_int_eq(chat_redis_reply(redis, &extra), CHAT_ERR_INVALID);
    ck_assert_ptr_null(extra);

    chat_err_t err;
    redisReply *all = chat_redis_command(redis, &err, "LRANGE %s 0 -1", list);
    ck_assert_ptr_nonnull(all);
    ck_assert_uint_eq(all->elements, 100);
    ck_assert_str_eq(all->element[99]->str, "99");
    freeReplyObject(all);
}
END_TEST

START_TEST(pipeline_error_reply_does_not_stop_it)
{
    char k[96];
    key(k, sizeof k, "word");
    const char *incr[] = {"INCR", k};
    ck_assert_int_eq(chat_redis_append(redis, "SET %s word", k), CHAT_OK);
    ck_assert_int_eq(chat_redis_append_argv(redis, 2, incr, NULL), CHAT_OK);
    ck_assert_int_eq(chat_redis_append(redis, "GET %s", k), CHAT_OK);
    /* Replies must be read before another command. */
    chat_err_t err;
    ck_assert_ptr_null(chat_redis_command(redis, &err, "PING"));
    ck_assert_int_eq(err, CHAT_ERR_INVALID);

    redisReply *reply;
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_OK);
    freeReplyObject(reply);
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_ERR_REDIS);
    ck_assert_ptr_null(reply);
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_OK);
    ck_assert_str_eq(reply->str, "word");
    freeReplyObject(reply);
}
END_TEST

START_TEST(command_reconnects_after_kill)
{
    long long before = client_id(redis);
    kill_connection(before);
    chat_err_t err = CHAT_ERR__COUNT;
    redisReply *reply = chat_redis_command(redis, &err, "PING");
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(err, CHAT_OK);
    ck_assert_str_eq(reply->str, "PONG");
    freeReplyObject(reply);
    ck_assert_int_ne(client_id(redis), before);
}
END_TEST

START_TEST(reconnect_selects_the_db_again)
{
    chat_redis_url_t url;
    ck_assert_int_eq(chat_redis__parse_url(chat_test_stack_get("CHAT_REDIS_URL"), &url), CHAT_OK);
    int db = url.db == 3 ? 4 : 3;
    char db_url[512];
    snprintf(db_url, sizeof db_url, "redis://[%s]:%d/%d", url.host, url.port, db);
    ck_assert_int_eq(chat_redis_connect(db_url, 2000, &redis_other_db), CHAT_OK);
    chat_redis_t *r = redis_other_db;

    char k[96];
    key(k, sizeof k, "in-db");
    chat_err_t err;
    redisReply *reply = chat_redis_command(r, &err, "SET %s here", k);
    ck_assert_ptr_nonnull(reply);
    freeReplyObject(reply);
    /* The fixture's connection uses another db and must not see the key. */
    reply = chat_redis_command(redis, &err, "EXISTS %s", k);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->integer, 0);
    freeReplyObject(reply);

    kill_connection(client_id(r));
    reply = chat_redis_command(r, &err, "GET %s", k);
    ck_assert_ptr_nonnull(reply);
    ck_assert_int_eq(reply->type, REDIS_REPLY_STRING);
    ck_assert_str_eq(reply->str, "here");
    freeReplyObject(reply);
}
END_TEST

START_TEST(lost_pipeline_fails_then_recovers)
{
    long long id = client_id(redis);
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(chat_redis_append(redis, "PING"), CHAT_OK);
    kill_connection(id);
    redisReply *reply = (redisReply *)&reply;
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_ERR_REDIS);
    ck_assert_ptr_null(reply);
    /* The rest of the pipeline is gone with the connection. */
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_ERR_REDIS);

    ck_assert_int_eq(chat_redis_append(redis, "PING"), CHAT_OK);
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_OK);
    ck_assert_str_eq(reply->str, "PONG");
    freeReplyObject(reply);
    ck_assert_int_ne(client_id(redis), id);
}
END_TEST

/* chat_redis_op_seconds: one observation per command and one per pipeline (when its last reply
 * is read); chat_redis_errors_total: error replies, in a pipeline too, and a lost pipeline. */
START_TEST(round_trips_and_errors_are_measured)
{
    chat_metrics_t *m = chat_metrics_new();
    ck_assert_int_eq(chat_redis_metrics_attach(m), CHAT_OK);
    ck_assert(chat_test_registry_value(m, "chat_redis_op_seconds_count") == 0);
    ck_assert_int_eq(chat_redis_ping(redis), CHAT_OK);
    ck_assert(chat_test_registry_value(m, "chat_redis_op_seconds_count") == 1);
    ck_assert(chat_test_registry_value(m, "chat_redis_op_seconds_sum") > 0);

    char k[96];
    key(k, sizeof k, "metrics");
    ck_assert_int_eq(chat_redis_append(redis, "SET %s %s", k, "x"), CHAT_OK);
    ck_assert_int_eq(chat_redis_append(redis, "INCR %s", k), CHAT_OK); /* an error reply */
    ck_assert_int_eq(chat_redis_append(redis, "GET %s", k), CHAT_OK);
    redisReply *reply = NULL;
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_OK);
    freeReplyObject(reply);
    ck_assert(chat_test_registry_value(m, "chat_redis_op_seconds_count") == 1); /* not over yet */
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_ERR_REDIS);
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_OK);
    freeReplyObject(reply);
    ck_assert(chat_test_registry_value(m, "chat_redis_op_seconds_count") == 2);
    ck_assert(chat_test_registry_value(m, "chat_redis_errors_total") == 1);

    chat_err_t err;
    ck_assert_ptr_null(chat_redis_command(redis, &err, "INCR %s", k));
    ck_assert(chat_test_registry_value(m, "chat_redis_op_seconds_count") == 3);
    ck_assert(chat_test_registry_value(m, "chat_redis_errors_total") == 2);

    /* A lost pipeline: one failed round trip. (The helpers' own commands count too: the
     * counts are taken after them.) */
    long long id = client_id(redis);
    ck_assert_int_eq(chat_redis_append(redis, "PING"), CHAT_OK);
    ck_assert_int_eq(chat_redis_append(redis, "PING"), CHAT_OK);
    kill_connection(id);
    double trips = chat_test_registry_value(m, "chat_redis_op_seconds_count");
    double errors = chat_test_registry_value(m, "chat_redis_errors_total");
    ck_assert_int_eq(chat_redis_reply(redis, &reply), CHAT_ERR_REDIS);
    ck_assert(chat_test_registry_value(m, "chat_redis_errors_total") == errors + 1);
    ck_assert(chat_test_registry_value(m, "chat_redis_op_seconds_count") == trips + 1);
    /* The next command reconnects and is one more round trip. */
    ck_assert_int_eq(chat_redis_ping(redis), CHAT_OK);
    ck_assert(chat_test_registry_value(m, "chat_redis_op_seconds_count") == trips + 2);
    ck_assert(chat_test_registry_value(m, "chat_redis_errors_total") == errors + 1);
    chat_redis_metrics_attach(NULL);
    chat_metrics_destroy(m);
}
END_TEST

/* The run_id is the server's (INFO server), the same through every connection and after a
 * reconnect to the same server. */
START_TEST(run_id_is_the_servers)
{
    const char *id = NULL;
    ck_assert_int_eq(chat_redis_run_id(redis, &id), CHAT_OK);
    ck_assert_uint_eq(strlen(id), 40);
    char first[CHAT_REDIS_RUN_ID_MAX];
    snprintf(first, sizeof first, "%s", id);
    chat_err_t err;
    redisReply *info = chat_redis_command(redis, &err, "INFO server");
    ck_assert_ptr_nonnull(info);
    ck_assert_ptr_nonnull(strstr(info->str, first));
    freeReplyObject(info);

    kill_connection(client_id(redis));
    ck_assert_int_eq(chat_redis_ping(redis), CHAT_OK); /* reconnects */
    ck_assert_int_eq(chat_redis_run_id(redis, &id), CHAT_OK);
    ck_assert_str_eq(id, first);
}
END_TEST

START_TEST(auth_refused_fails_connect)
{
    chat_redis_url_t url;
    ck_assert_int_eq(chat_redis__parse_url(chat_test_stack_get("CHAT_REDIS_URL"), &url), CHAT_OK);
    /* A password the server does not have. A server without any password refuses AUTH as
     * well ("called without any password configured"), so this holds on every stack. */
    const char *wrong = strcmp(url.password, "not-the-password") != 0 ? "not-the-password"
                                                                      : "not-the-password-either";
    char bad[512];
    snprintf(bad, sizeof bad, "redis://:%s@[%s]:%d", wrong, url.host, url.port);
    chat_redis_t *r = (chat_redis_t *)&r;
    ck_assert_int_eq(chat_redis_connect(bad, 2000, &r), CHAT_ERR_REDIS);
    ck_assert_ptr_null(r);
}
END_TEST

static Suite *redis_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("server");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, ping_pongs);
    tcase_add_test(tc, binary_values_round_trip);
    tcase_add_test(tc, error_reply_is_logged_and_connection_survives);
    tcase_add_test(tc, pipeline_keeps_order);
    tcase_add_test(tc, pipeline_error_reply_does_not_stop_it);
    tcase_add_test(tc, command_reconnects_after_kill);
    tcase_add_test(tc, reconnect_selects_the_db_again);
    tcase_add_test(tc, lost_pipeline_fails_then_recovers);
    tcase_add_test(tc, run_id_is_the_servers);
    tcase_add_test(tc, round_trips_and_errors_are_measured);
    tcase_add_test(tc, auth_refused_fails_connect);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    chat_test_stack_load();
    chat_log_init("it-030", CHAT_LOG_INFO);
    /* As in the services (chat_signals_install): a write to a killed connection must be an
     * error return, not a SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return chat_test_suite_run(redis_suite(), false);
}
