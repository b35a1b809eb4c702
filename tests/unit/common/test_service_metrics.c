/* Unit tests of common/service_metrics: the process metrics read at render time have sane
 * values, chat_build_info names the version and the service, and the MongoDB and Redis
 * families are registered with every label value at 0 before the first command; a Redis
 * connection that fails counts as an error. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/redis.h"
#include "common/service_metrics.h"
#include "common/store.h"
#include "tests/support/util.h"

static chat_metrics_t *m;

static void setup(void)
{
    m = chat_metrics_new();
    ck_assert_ptr_nonnull(m);
}

static void teardown(void)
{
    chat_store_metrics_attach(NULL);
    chat_redis_metrics_attach(NULL);
    chat_metrics_destroy(m);
    m = NULL;
}

/* The value of the sample line that starts with "name " or "name{...} " (labels as given). */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p != NULL && *p != '\0';) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    ck_abort_msg("no sample %s in:\n%s", series, text);
    return 0;
}

START_TEST(process_metrics_are_sane)
{
    ck_assert_int_eq(chat_process_metrics_register(m), CHAT_OK);
    /* Burn a little CPU so that the counter has something to show. */
    volatile double x = 0;
    for (long i = 0; i < 20000000; i++)
        x += (double)i * 0.5;
    char *text = chat_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_ptr_nonnull(strstr(text, "# TYPE process_cpu_seconds_total counter\n"));
    ck_assert_ptr_nonnull(strstr(text, "# TYPE process_resident_memory_bytes gauge\n"));
    double cpu = sample(text, "process_cpu_seconds_total");
    ck_assert_msg(cpu > 0 && cpu < 3600, "cpu %g", cpu);
    double rss = sample(text, "process_resident_memory_bytes");
    ck_assert_msg(rss > 100 * 1024 && rss < 64.0 * 1024 * 1024 * 1024, "rss %g", rss);
    struct rlimit rl;
    ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
    double max_fds = sample(text, "process_max_fds");
    ck_assert(max_fds == (rl.rlim_cur == RLIM_INFINITY ? -1.0 : (double)rl.rlim_cur));
    double fds = sample(text, "process_open_fds");
    ck_assert_msg(fds >= 3 && fds < 10000, "fds %g", fds);
    double start = sample(text, "process_start_time_seconds");
    double now = (double)time(NULL);
    ck_assert_msg(start > now - 600 && start <= now + 1, "start %f now %f", start, now);
    free(text);

    /* Read at each render: two more descriptors show at the next one. */
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    text = chat_metrics_render(m, NULL);
    ck_assert(sample(text, "process_open_fds") == fds + 2);
    ck_assert(sample(text, "process_cpu_seconds_total") >= cpu);
    free(text);
    close(sv[0]);
    close(sv[1]);
}
END_TEST

START_TEST(attach_registers_build_info_and_store_and_redis)
{
    ck_assert_int_eq(chat_service_metrics_attach(m, "message"), CHAT_OK);
    ck_assert_int_eq(chat_service_metrics_attach(NULL, "message"), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_service_metrics_attach(m, NULL), CHAT_ERR_INVALID);
    ck_assert_str_ne(chat_build_version, "");
    char *text = chat_metrics_render(m, NULL);
    char line[256];
    snprintf(line, sizeof line, "chat_build_info{version=\"%s\",service=\"message\"}",
             chat_build_version);
    ck_assert(sample(text, line) == 1);
    for (size_t i = 0; i < chat_store_metric_nops; i++) {
        snprintf(line, sizeof line, "chat_mongo_op_seconds_count{op=\"%s\"}",
                 chat_store_metric_ops[i]);
        ck_assert(sample(text, line) == 0);
        snprintf(line, sizeof line, "chat_mongo_errors_total{op=\"%s\"}", chat_store_metric_ops[i]);
        ck_assert(sample(text, line) == 0);
    }
    ck_assert(sample(text, "chat_redis_op_seconds_count") == 0);
    ck_assert(sample(text, "chat_redis_errors_total") == 0);
    ck_assert_ptr_nonnull(strstr(text, "process_start_time_seconds "));
    free(text);
}
END_TEST

/* A free local port: bound, then closed, so nothing listens on it. */
static int unused_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

START_TEST(redis_connect_failure_is_an_error)
{
    ck_assert_int_eq(chat_service_metrics_attach(m, "api"), CHAT_OK);
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", unused_port());
    chat_redis_t *r = NULL;
    ck_assert_int_eq(chat_redis_connect(url, 500, &r), CHAT_ERR_REDIS);
    char *text = chat_metrics_render(m, NULL);
    ck_assert(sample(text, "chat_redis_errors_total") == 1);
    free(text);
    /* Detached: nothing more is counted. */
    chat_redis_metrics_attach(NULL);
    ck_assert_int_eq(chat_redis_connect(url, 500, &r), CHAT_ERR_REDIS);
    text = chat_metrics_render(m, NULL);
    ck_assert(sample(text, "chat_redis_errors_total") == 1);
    free(text);
}
END_TEST

START_TEST(mongo_op_names)
{
    ck_assert_str_eq(chat_store_metric_ops[chat_store_metric_op("insert")], "insert");
    ck_assert_str_eq(chat_store_metric_ops[chat_store_metric_op("findAndModify")], "findAndModify");
    ck_assert_str_eq(chat_store_metric_ops[chat_store_metric_op("getMore")], "getMore");
    ck_assert_str_eq(chat_store_metric_ops[chat_store_metric_op("ping")], "ping");
    /* Anything else, and a name differing in case, is "other": a bounded label. */
    ck_assert_str_eq(chat_store_metric_ops[chat_store_metric_op("endSessions")], "other");
    ck_assert_str_eq(chat_store_metric_ops[chat_store_metric_op("INSERT")], "other");
    ck_assert_str_eq(chat_store_metric_ops[chat_store_metric_op("")], "other");
    ck_assert_str_eq(chat_store_metric_ops[chat_store_metric_op(NULL)], "other");
    ck_assert_uint_eq(chat_store_metric_op("other"), chat_store_metric_nops - 1);
}
END_TEST

int main(void)
{
    chat_log_set_level(CHAT_LOG_ERROR);
    Suite *s = suite_create("service_metrics");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, process_metrics_are_sane);
    tcase_add_test(tc, attach_registers_build_info_and_store_and_redis);
    tcase_add_test(tc, redis_connect_failure_is_an_error);
    tcase_add_test(tc, mongo_op_names);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
