/* Unit tests of common/service and the shared configuration entries of common/config.h:
 * a loaded table sets the log level from CHAT_LOG_LEVEL (info without the entry), logs the
 * configuration with the URL secret masked and installs the stop signals; --help and a bad
 * value return at once with the struct freed and nothing installed. The signal handlers are
 * process-wide, so every test runs in its own forked process (CK_FORK). */
#include <check.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/config.h"
#include "common/log.h"
#include "common/service.h"
#include "common/signals.h"

typedef struct svc_cfg {
    char *brokers;
    char *redis_url;
    long long ops_port;
    char *log_level;
} svc_cfg_t;

static const chat_cfg_entry_t table[] = {
    CHAT_CFG_KAFKA_BROKERS(svc_cfg_t, brokers),
    CHAT_CFG_REDIS_URL(svc_cfg_t, redis_url),
    CHAT_CFG_OPS_PORT(svc_cfg_t, ops_port, "7999"),
    CHAT_CFG_LOG_LEVEL(svc_cfg_t, log_level),
    CHAT_CFG_END,
};

static const chat_cfg_entry_t table_without_level[] = {
    CHAT_CFG_KAFKA_BROKERS(svc_cfg_t, brokers),
    CHAT_CFG_END,
};

static char *program_argv[] = {"svc", NULL};
static int log_pipe[2] = {-1, -1};

static void setup(void)
{
    for (const chat_cfg_entry_t *e = table; e->name != NULL; e++)
        unsetenv(e->name);
    ck_assert_int_eq(pipe(log_pipe), 0);
    ck_assert_int_eq(fcntl(log_pipe[0], F_SETFL, O_NONBLOCK), 0);
    chat_log_init("svctest", CHAT_LOG_DEBUG);
    chat_log_set_fd(log_pipe[1]);
}

static void teardown(void)
{
    chat_log_set_fd(2);
    close(log_pipe[0]);
    close(log_pipe[1]);
}

/* Everything logged so far, NUL-terminated (malloc'd). */
static char *logged(void)
{
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    ck_assert_ptr_nonnull(buf);
    ssize_t n;
    while ((n = read(log_pipe[0], buf + len, cap - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return buf;
}

static chat_cfg_result_t configure(const chat_cfg_entry_t *t, svc_cfg_t *cfg)
{
    return chat_service_configure(t, cfg, 1, program_argv, "svc", "svc: a test service");
}

START_TEST(test_loaded_sets_level_and_logs)
{
    setenv("CHAT_LOG_LEVEL", "debug", 1);
    setenv("CHAT_REDIS_URL", "redis://:pw-xyz@127.0.0.1:1/2", 1);
    chat_log_set_level(CHAT_LOG_ERROR);
    svc_cfg_t cfg = {0};
    ck_assert_int_eq(configure(table, &cfg), CHAT_CFG_LOADED);
    ck_assert(chat_log_enabled(CHAT_LOG_DEBUG));
    ck_assert_str_eq(cfg.brokers, "127.0.0.1:7400");
    ck_assert_str_eq(cfg.redis_url, "redis://:pw-xyz@127.0.0.1:1/2");
    ck_assert_int_eq(cfg.ops_port, 7999);
    char *text = logged();
    ck_assert_msg(strstr(text, "\"msg\":\"configuration\"") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "\"CHAT_OPS_PORT\":7999") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "\"CHAT_KAFKA_BROKERS\":\"127.0.0.1:7400\"") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "pw-xyz") == NULL, "the Redis password was logged: %s", text);
    free(text);
    chat_cfg_free(table, &cfg);
}
END_TEST

START_TEST(test_level_warn_hides_info)
{
    setenv("CHAT_LOG_LEVEL", "warn", 1);
    svc_cfg_t cfg = {0};
    ck_assert_int_eq(configure(table, &cfg), CHAT_CFG_LOADED);
    ck_assert(!chat_log_enabled(CHAT_LOG_INFO));
    ck_assert(chat_log_enabled(CHAT_LOG_WARN));
    char *text = logged();
    ck_assert_msg(strstr(text, "configuration") == NULL, "%s", text);
    free(text);
    chat_cfg_free(table, &cfg);
}
END_TEST

START_TEST(test_info_without_level_entry)
{
    svc_cfg_t cfg = {0};
    ck_assert_int_eq(configure(table_without_level, &cfg), CHAT_CFG_LOADED);
    ck_assert(!chat_log_enabled(CHAT_LOG_DEBUG));
    ck_assert(chat_log_enabled(CHAT_LOG_INFO));
    chat_cfg_free(table_without_level, &cfg);
}
END_TEST

START_TEST(test_loaded_installs_signals)
{
    svc_cfg_t cfg = {0};
    ck_assert_int_eq(chat_signals_stop_fd(), -1);
    ck_assert_int_eq(configure(table, &cfg), CHAT_CFG_LOADED);
    ck_assert_int_ge(chat_signals_stop_fd(), 0);
    ck_assert(!chat_signals_stop_requested());
    ck_assert_int_eq(raise(SIGTERM), 0);
    ck_assert(chat_signals_stop_requested());
    chat_cfg_free(table, &cfg);
}
END_TEST

/* The string loaded before the bad port must be freed by the helper (LeakSanitizer). */
START_TEST(test_bad_value_frees_and_names_var)
{
    setenv("CHAT_KAFKA_BROKERS", "k:1", 1);
    setenv("CHAT_OPS_PORT", "70000", 1);
    svc_cfg_t cfg = {0};
    ck_assert_int_eq(configure(table, &cfg), CHAT_CFG_FAILED);
    ck_assert_ptr_null(cfg.brokers);
    ck_assert_ptr_null(cfg.redis_url);
    ck_assert_int_eq(chat_signals_stop_fd(), -1);
    char *text = logged();
    ck_assert_msg(strstr(text, "\"var\":\"CHAT_OPS_PORT\"") != NULL, "%s", text);
    ck_assert_msg(strstr(text, "\"msg\":\"configuration\"") == NULL, "%s", text);
    free(text);
}
END_TEST

START_TEST(test_help_prints_and_returns)
{
    int out[2];
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(fcntl(out[0], F_SETFL, O_NONBLOCK), 0);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    ck_assert_int_eq(dup2(out[1], STDOUT_FILENO), STDOUT_FILENO);
    char *argv[] = {"svc", "--help", NULL};
    svc_cfg_t cfg = {0};
    chat_cfg_result_t res = chat_service_configure(table, &cfg, 2, argv, "svc", "svc: help");
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    char help[8192];
    ssize_t n = read(out[0], help, sizeof help - 1);
    close(out[0]);
    close(out[1]);
    ck_assert_int_eq(res, CHAT_CFG_HELP);
    ck_assert_int_gt(n, 0);
    help[n] = '\0';
    ck_assert_msg(strstr(help, "CHAT_OPS_PORT") != NULL, "%s", help);
    ck_assert_msg(strstr(help, "7999") != NULL, "%s", help);
    ck_assert_msg(strstr(help, "(0: any free port)") != NULL, "%s", help);
    ck_assert_msg(strstr(help, "redis://127.0.0.1:7403/0") == NULL, "secret default shown: %s",
                  help);
    ck_assert_ptr_null(cfg.brokers);
    ck_assert_int_eq(chat_signals_stop_fd(), -1);
}
END_TEST

static Suite *service_suite(void)
{
    Suite *s = suite_create("service");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_loaded_sets_level_and_logs);
    tcase_add_test(tc, test_level_warn_hides_info);
    tcase_add_test(tc, test_info_without_level_entry);
    tcase_add_test(tc, test_loaded_installs_signals);
    tcase_add_test(tc, test_bad_value_frees_and_names_var);
    tcase_add_test(tc, test_help_prints_and_returns);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(service_suite());
    srunner_set_fork_status(sr, CK_FORK); /* even with CK_FORK=no: see the top of the file */
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
