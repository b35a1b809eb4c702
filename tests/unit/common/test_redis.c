/* Unit tests of common/redis.c that need no server: URL parsing, argument checks, and a
 * connection refused quickly with CHAT_ERR_REDIS. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/redis.h"
#include "common/redis_int.h"
#include "tests/support/util.h"

typedef struct valid_url {
    const char *url;
    const char *host;
    int port;
    int db;
    const char *username;
    const char *password;
} valid_url_t;

static const valid_url_t valid_urls[] = {
    {"redis://127.0.0.1:6379/0", "127.0.0.1", 6379, 0, "", ""},
    {"redis://localhost", "localhost", 6379, 0, "", ""},
    {"redis://cache.internal:7001", "cache.internal", 7001, 0, "", ""},
    {"redis://h/5", "h", 6379, 5, "", ""},
    {"redis://h:1/", "h", 1, 0, "", ""},
    {"redis://h:65535/2147483647", "h", 65535, 2147483647, "", ""},
    {"REDIS://Host:6380/1", "Host", 6380, 1, "", ""},
    {"redis://:secret@h:7000/3", "h", 7000, 3, "", "secret"},
    {"redis://alice:s3cr%40t@h", "h", 6379, 0, "alice", "s3cr@t"},
    {"redis://:p@ss/w:rd@h:1/2", "h", 1, 2, "", "p@ss/w:rd"},
    {"redis://:@h", "h", 6379, 0, "", ""},
    {"redis://[::1]:6380/1", "::1", 6380, 1, "", ""},
    {"redis://[::1]", "::1", 6379, 0, "", ""},
};

static const char *const invalid_urls[] = {
    "",
    "http://h:6379",
    "rediss://h:6379",
    "redis:/h",
    "redis://",
    "redis://:6379",
    "redis:///0",
    "redis://h:",
    "redis://h:0",
    "redis://h:65536",
    "redis://h:99999999999999999999",
    "redis://h:12a",
    "redis://h:-1",
    "redis://h:+1",
    "redis://h:1:2",
    "redis://h/abc",
    "redis://h/-1",
    "redis://h/2147483648",
    "redis://h/1/2",
    "redis://h/1?timeout=3",
    "redis://secret@h",
    "redis://:bad%zz@h",
    "redis://:bad%4@h",
    "redis://:nul%00byte@h",
    "redis://:x@",
    "redis://[::1",
    "redis://[::1]x",
    "redis://[]:6379",
};

START_TEST(parse_valid_url)
{
    const valid_url_t *c = &valid_urls[_i];
    chat_redis_url_t u;
    ck_assert_msg(chat_redis__parse_url(c->url, &u) == CHAT_OK, "rejected %s", c->url);
    ck_assert_str_eq(u.host, c->host);
    ck_assert_int_eq(u.port, c->port);
    ck_assert_int_eq(u.db, c->db);
    ck_assert_str_eq(u.username, c->username);
    ck_assert_str_eq(u.password, c->password);
}
END_TEST

START_TEST(parse_invalid_url)
{
    chat_redis_url_t u;
    ck_assert_msg(chat_redis__parse_url(invalid_urls[_i], &u) == CHAT_ERR_CONFIG, "accepted %s",
                  invalid_urls[_i]);
}
END_TEST

START_TEST(parse_null_url)
{
    chat_redis_url_t u;
    ck_assert_int_eq(chat_redis__parse_url(NULL, &u), CHAT_ERR_CONFIG);
}
END_TEST

START_TEST(parse_long_password_and_host)
{
    char url[1024];
    char secret[CHAT_REDIS_SECRET_MAX + 1];
    memset(secret, 'p', sizeof secret - 1);
    secret[sizeof secret - 1] = '\0';
    chat_redis_url_t u;

    snprintf(url, sizeof url, "redis://:%s@h", secret);
    ck_assert_int_eq(chat_redis__parse_url(url, &u), CHAT_ERR_CONFIG);
    secret[CHAT_REDIS_SECRET_MAX - 1] = '\0'; /* exactly fits with its NUL */
    snprintf(url, sizeof url, "redis://:%s@h", secret);
    ck_assert_int_eq(chat_redis__parse_url(url, &u), CHAT_OK);
    ck_assert_uint_eq(strlen(u.password), CHAT_REDIS_SECRET_MAX - 1);

    char host[CHAT_REDIS_HOST_MAX + 1];
    memset(host, 'h', sizeof host - 1);
    host[sizeof host - 1] = '\0';
    snprintf(url, sizeof url, "redis://%s:1", host);
    ck_assert_int_eq(chat_redis__parse_url(url, &u), CHAT_ERR_CONFIG);
}
END_TEST

START_TEST(connect_refused_fails_fast)
{
    char url[64];
    snprintf(url, sizeof url, "redis://:pw@127.0.0.1:%d/1", chat_test_free_port());
    chat_redis_t *r = (chat_redis_t *)&r; /* must be reset to NULL */
    int64_t start = chat_clock_mono_ms();
    ck_assert_int_eq(chat_redis_connect(url, 2000, &r), CHAT_ERR_REDIS);
    ck_assert_ptr_null(r);
    ck_assert_int_lt(chat_clock_mono_ms() - start, 1000);
}
END_TEST

START_TEST(connect_rejects_bad_arguments)
{
    chat_redis_t *r = (chat_redis_t *)&r;
    ck_assert_int_eq(chat_redis_connect("http://127.0.0.1:6379", 1000, &r), CHAT_ERR_CONFIG);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(chat_redis_connect("redis://127.0.0.1:6379", 0, &r), CHAT_ERR_INVALID);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(chat_redis_connect("redis://127.0.0.1:6379", 1000, NULL), CHAT_ERR_INVALID);
}
END_TEST

START_TEST(free_null)
{
    chat_redis_free(NULL);
}
END_TEST

#define RUN_ID "4c7a8c1e0f2b3d4a5e6f708192a3b4c5d6e7f809"

START_TEST(info_run_id_found)
{
    static const char info[] = "# Server\r\nredis_version:7.0.15\r\nredis_mode:standalone\r\n"
                               "run_id:" RUN_ID "\r\ntcp_port:6379\r\n";
    char id[CHAT_REDIS_RUN_ID_MAX];
    ck_assert(chat_redis__info_run_id(info, strlen(info), id));
    ck_assert_str_eq(id, RUN_ID);
    /* The last line, without its CRLF, and with LF alone. */
    static const char last[] = "# Server\nrun_id:" RUN_ID;
    ck_assert(chat_redis__info_run_id(last, strlen(last), id));
    ck_assert_str_eq(id, RUN_ID);
}
END_TEST

START_TEST(info_run_id_missing_or_malformed)
{
    static const char *const infos[] = {
        "",
        "# Server\r\nredis_version:7.0.15\r\n",
        "run_id:\r\n",
        "run_id:4c7a8c1e0f2b3d4a5e6f708192a3b4c5d6e7f80\r\n",   /* 39 digits */
        "run_id:4c7a8c1e0f2b3d4a5e6f708192a3b4c5d6e7f8090\r\n", /* 41 */
        "run_id:4c7a8c1e0f2b3d4a5e6f708192a3b4c5d6e7f8zz\r\n",
        "xrun_id:" RUN_ID "\r\n",
    };
    for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++) {
        char id[CHAT_REDIS_RUN_ID_MAX] = "junk";
        ck_assert_msg(!chat_redis__info_run_id(infos[i], strlen(infos[i]), id), "accepted %s",
                      infos[i]);
        ck_assert_str_eq(id, "");
    }
    char id[CHAT_REDIS_RUN_ID_MAX];
    ck_assert(!chat_redis__info_run_id(NULL, 0, id));
    /* A reply cut in the middle of the value is not read past its length. */
    static const char cut[] = "run_id:" RUN_ID;
    ck_assert(!chat_redis__info_run_id(cut, strlen(cut) - 1, id));
}
END_TEST

static Suite *redis_suite(void)
{
    Suite *s = suite_create("redis");
    TCase *tc = tcase_create("url");
    tcase_add_loop_test(tc, parse_valid_url, 0, (int)(sizeof valid_urls / sizeof valid_urls[0]));
    tcase_add_loop_test(tc, parse_invalid_url, 0,
                        (int)(sizeof invalid_urls / sizeof invalid_urls[0]));
    tcase_add_test(tc, parse_null_url);
    tcase_add_test(tc, parse_long_password_and_host);
    suite_add_tcase(s, tc);

    tc = tcase_create("connect");
    tcase_add_test(tc, connect_refused_fails_fast);
    tcase_add_test(tc, connect_rejects_bad_arguments);
    tcase_add_test(tc, free_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("run_id");
    tcase_add_test(tc, info_run_id_found);
    tcase_add_test(tc, info_run_id_missing_or_malformed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    chat_log_init("test_redis", CHAT_LOG_WARN);
    return chat_test_suite_run(redis_suite(), false);
}
