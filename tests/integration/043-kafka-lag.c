/* Kafka lag, both ways, against the stack's Kafka:
 *  - chat-admin lag serve (the broker-side exporter) reports a consumer group's lag as
 *    high watermark - committed offset per partition, summed per topic, a partition without
 *    a commit counting from its low watermark; it drops to 0 once everything is committed;
 *    it serves the platform topics' high watermarks; it stops cleanly on SIGTERM.
 *  - the bus's own chat_kafka_consumer_lag gauge (librdkafka statistics) shows the same
 *    committed lag in the consuming process;
 *  - the services of the stack expose chat_kafka_consumer_lag and chat_kafka_produced_total
 *    for their topics once a message went through. */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "tests/support/chat.h"
#include "tests/support/spawn.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

#define WAIT_MS 30000
#define P0_RECORDS 7
#define P1_RECORDS 5
#define P0_COMMITTED 3 /* records of partition 0 the group commits first */

static const char *brokers;

static const char *topic_name(const char *var, const char *fallback)
{
    const char *v = getenv(var);
    return v != NULL && *v != '\0' ? v : fallback;
}

/* The exporter's /metrics body (malloc'd), or NULL if it does not answer 200. */
static char *metrics_of(int port)
{
    chat_test_http_reply_t r;
    if (!chat_test_http_request(port, "GET", "/metrics", 5000, &r))
        return NULL;
    char *body = r.status == 200 ? strdup(r.body) : NULL;
    chat_test_http_reply_free(&r);
    return body;
}

/* Waits until every series[i] of the ops server on port reads want[i]; fails the test with
 * the last body otherwise. */
static void wait_metrics(int port, const char *const *series, const uint64_t *want, size_t n)
{
    int64_t deadline = chat_clock_mono_ms() + WAIT_MS;
    char *body = NULL;
    for (;;) {
        free(body);
        body = metrics_of(port);
        bool all = body != NULL;
        for (size_t i = 0; all && i < n; i++) {
            uint64_t v;
            all = chat_test_metric_find(body, series[i], &v) && v == want[i];
        }
        if (all)
            break;
        if (chat_clock_mono_ms() > deadline) {
            for (size_t i = 0; i < n; i++)
                fprintf(stderr, "want %s %llu\n", series[i], (unsigned long long)want[i]);
            ck_abort_msg("lag not reported as expected; last /metrics:\n%.6000s",
                         body != NULL ? body : "(none)");
        }
        chat_clock_sleep_ms(300);
    }
    free(body);
}

/* promtool check metrics on text; returns its output (malloc'd) and sets *ok. */
static char *promtool_check(const char *text, bool *ok)
{
    char path[] = "/tmp/it-lag-metrics-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s 2>&1", path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char *out = calloc(1, 8192);
    size_t got = fread(out, 1, 8191, p);
    out[got] = '\0';
    int status = pclose(p);
    unlink(path);
    *ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return out;
}

/* A record of topic/partition at offset, for committing offset + 1 through the bus. */
static chat_bus_record_t at(const char *topic, int32_t partition, int64_t offset)
{
    return (chat_bus_record_t){.topic = topic, .partition = partition, .offset = offset};
}

START_TEST(test_group_lag_exporter)
{
    char topic[128], group[128];
    chat_test_unique(topic, sizeof topic, "it-lag");
    /* chat-*: the exporter's default selection finds it without --groups */
    chat_test_unique(group, sizeof group, "chat-it-lag");
    chat_bus_topic_spec_t spec = {.name = topic, .partitions = 2, .replication = -1};
    ck_assert_int_eq(chat_bus_topics_ensure(brokers, &spec, 1, WAIT_MS), CHAT_OK);

    chat_bus_producer_conf_t pc = {
        .brokers = brokers, .client_id = "it-lag", .connect_timeout_ms = WAIT_MS};
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&pc, &p), CHAT_OK);
    for (int i = 0; i < P0_RECORDS + P1_RECORDS; i++)
        ck_assert_int_eq(chat_bus_produce(p, topic, i < P0_RECORDS ? 0 : 1, NULL, 0, "x", 1, NULL),
                         CHAT_OK);
    ck_assert_int_eq(chat_bus_producer_flush(p, WAIT_MS), CHAT_OK);
    chat_bus_producer_destroy(p);

    /* The group reads everything, commits the first P0_COMMITTED of partition 0 only. */
    setenv("KAFKA_STATISTICS_INTERVAL_MS", "500", 1);
    chat_metrics_t *m = chat_metrics_new();
    const char *const topics[] = {topic, NULL};
    chat_bus_consumer_conf_t cc = {.brokers = brokers,
                                   .client_id = "it-lag",
                                   .group_id = group,
                                   .topics = topics,
                                   .connect_timeout_ms = WAIT_MS,
                                   .metrics = m};
    chat_bus_consumer_t *c = NULL;
    ck_assert_int_eq(chat_bus_consumer_new(&cc, &c), CHAT_OK);
    unsetenv("KAFKA_STATISTICS_INTERVAL_MS");
    chat_bus_record_t recs[32];
    int got = 0;
    int64_t deadline = chat_clock_mono_ms() + WAIT_MS;
    while (got < P0_RECORDS + P1_RECORDS && chat_clock_mono_ms() < deadline) {
        size_t n = chat_bus_consumer_poll(c, recs, 32, 200);
        got += (int)n;
        chat_bus_records_release(recs, n);
    }
    ck_assert_int_eq(got, P0_RECORDS + P1_RECORDS);
    chat_bus_record_t first = at(topic, 0, P0_COMMITTED - 1);
    ck_assert_int_eq(chat_bus_consumer_commit(c, &first, 1, true), CHAT_OK);

    /* In the consumer's own process: partition 0 lags by what is not committed; partition 1
     * has no commit, and its lag is then counted from the position (everything read). */
    char lag0[256], lag1[256];
    snprintf(lag0, sizeof lag0, "chat_kafka_consumer_lag{topic=\"%s\",partition=\"0\"}", topic);
    snprintf(lag1, sizeof lag1, "chat_kafka_consumer_lag{topic=\"%s\",partition=\"1\"}", topic);
    uint64_t v0 = 0, v1 = 99;
    deadline = chat_clock_mono_ms() + WAIT_MS;
    for (;;) {
        size_t n = chat_bus_consumer_poll(c, recs, 32, 200); /* serves the statistics */
        chat_bus_records_release(recs, n);
        char *text = chat_metrics_render(m, NULL);
        bool found =
            chat_test_metric_find(text, lag0, &v0) && chat_test_metric_find(text, lag1, &v1);
        if ((found && v0 == P0_RECORDS - P0_COMMITTED && v1 == 0) ||
            chat_clock_mono_ms() > deadline) {
            ck_assert_msg(found && v0 == P0_RECORDS - P0_COMMITTED && v1 == 0,
                          "consumer lag not reported:\n%.6000s", text);
            free(text);
            break;
        }
        free(text);
    }

    /* The exporter, from the brokers' side. */
    int port = chat_test_free_port();
    char port_s[16];
    snprintf(port_s, sizeof port_s, "%d", port);
    const char *build = chat_test_stack_get("CHAT_BUILD_DIR");
    char admin[1024];
    snprintf(admin, sizeof admin, "%s/tools/chat-admin/chat-admin", build);
    const char *const argv[] = {admin,    "lag",       "serve",      "--port", port_s,
                                "--addr", "127.0.0.1", "--interval", "1",      NULL};
    char env_brokers[256];
    snprintf(env_brokers, sizeof env_brokers, "CHAT_KAFKA_BROKERS=%s", brokers);
    const char *const env[] = {env_brokers, NULL};
    pid_t pid = chat_test_spawn(argv, env, CHAT_TEST_SPAWN_INHERIT, CHAT_TEST_SPAWN_INHERIT);
    ck_assert_msg(chat_test_wait_ready(port, WAIT_MS), "lag exporter not ready");

    char sum[512], max[512];
    snprintf(sum, sizeof sum, "chat_kafka_group_lag{group=\"%s\",topic=\"%s\"}", group, topic);
    snprintf(max, sizeof max, "chat_kafka_group_lag_max{group=\"%s\",topic=\"%s\"}", group, topic);
    /* Partition 0: 7 - 3; partition 1: no commit, 5 - low watermark 0. */
    const char *const series[] = {sum, max};
    const uint64_t lagging[] = {(P0_RECORDS - P0_COMMITTED) + P1_RECORDS,
                                P1_RECORDS > P0_RECORDS - P0_COMMITTED ? P1_RECORDS
                                                                       : P0_RECORDS - P0_COMMITTED};
    wait_metrics(port, series, lagging, 2);

    /* Everything committed: 0 on both partitions. */
    chat_bus_record_t last[] = {at(topic, 0, P0_RECORDS - 1), at(topic, 1, P1_RECORDS - 1)};
    ck_assert_int_eq(chat_bus_consumer_commit(c, last, 2, true), CHAT_OK);
    const uint64_t caught_up[] = {0, 0};
    wait_metrics(port, series, caught_up, 2);
    chat_bus_consumer_close(c);
    chat_metrics_destroy(m);

    /* The platform topics' sizes, and a collection that went well. */
    char *body = metrics_of(port);
    ck_assert_ptr_nonnull(body);
    const char *platform[] = {topic_name("CHAT_TOPIC_INBOUND", "chat.inbound"),
                              topic_name("CHAT_TOPIC_MESSAGES", "chat.messages"),
                              topic_name("CHAT_TOPIC_DELIVER", "chat.deliver"),
                              topic_name("CHAT_TOPIC_NOTIFY_DLQ", "chat.notify.dlq")};
    for (size_t i = 0; i < sizeof platform / sizeof platform[0]; i++) {
        char s[512];
        snprintf(s, sizeof s, "chat_kafka_topic_high_watermark{topic=\"%s\"}", platform[i]);
        chat_test_metric_value(body, s);
    }
    chat_test_metric_value(body, "chat_kafka_lag_scrape_errors_total");
    ck_assert_msg(strstr(body, "chat_kafka_lag_scrape_seconds ") != NULL, "%s", body);
    /* Prometheus' lint: clean. */
    bool ok;
    char *lint = promtool_check(body, &ok);
    ck_assert_msg(ok, "promtool check metrics:\n%s", lint);
    free(lint);
    free(body);

    /* SIGTERM: a clean stop. */
    int status = chat_test_spawn_stop(pid, SIGTERM, 10000);
    ck_assert_msg(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "lag exporter did not stop cleanly: status %d", status);
}
END_TEST

/* A message through gateway 0: the gateway produced it to the inbound topic and reads its
 * deliveries partition, the message service consumed the inbound topic and produced to the
 * messages topic; each says so in its /metrics, lag included (librdkafka statistics every
 * 5 s, so within a few seconds of start). */
START_TEST(test_service_series)
{
    const char *inbound = topic_name("CHAT_TOPIC_INBOUND", "chat.inbound");
    const char *messages = topic_name("CHAT_TOPIC_MESSAGES", "chat.messages");
    const char *deliver = topic_name("CHAT_TOPIC_DELIVER", "chat.deliver");
    char user[64], room[64];
    chat_test_unique(user, sizeof user, "lag");
    chat_test_unique(room, sizeof room, "lag-room");
    chat_tc_t *tc = chat_tc_connect_demo(0, user);
    cJSON_Delete(chat_tc_join(tc, room, -1));
    ck_assert_int_gt(chat_tc_send(tc, room, "c1", "lag metrics"), 0);
    chat_tc_close(tc);

    char s[256];
    int msg_port = chat_test_ops_port_message(), gw_port = chat_test_ops_port_gateway(0);
    snprintf(s, sizeof s, "chat_kafka_produced_total{topic=\"%s\"}", messages);
    ck_assert_uint_ge(chat_test_ops_metric(msg_port, s), 1);
    snprintf(s, sizeof s, "chat_kafka_produce_errors_total{topic=\"%s\"}", messages);
    chat_test_ops_metric(msg_port, s);
    snprintf(s, sizeof s, "chat_kafka_consumed_total{topic=\"%s\"}", inbound);
    ck_assert_uint_ge(chat_test_ops_metric(msg_port, s), 1);
    snprintf(s, sizeof s, "chat_kafka_produced_total{topic=\"%s\"}", inbound);
    ck_assert_uint_ge(chat_test_ops_metric(gw_port, s), 1);
    snprintf(s, sizeof s, "chat_kafka_consumer_lag{topic=\"%s\",partition=\"0\"}", deliver);
    chat_test_ops_metric(gw_port, s);

    /* The message service's group has every inbound partition (one instance): a lag series
     * for each of them. */
    chat_test_http_reply_t r;
    ck_assert(chat_test_http_request(msg_port, "GET", "/metrics", 5000, &r));
    snprintf(s, sizeof s, "chat_kafka_consumer_lag{topic=\"%s\",partition=\"", inbound);
    ck_assert_msg(strstr(r.body, s) != NULL, "no %s in:\n%.6000s", s, r.body);
    chat_test_http_reply_free(&r);
}
END_TEST

static void setup(void)
{
    chat_test_stack_load();
    brokers = chat_test_stack_get("CHAT_KAFKA_BROKERS");
}

int main(void)
{
    Suite *suite = suite_create("kafka_lag");
    TCase *tc = tcase_create("kafka_lag");
    tcase_set_timeout(tc, 300);
    tcase_add_unchecked_fixture(tc, setup, NULL);
    tcase_add_test(tc, test_group_lag_exporter);
    tcase_add_test(tc, test_service_series);
    suite_add_tcase(suite, tc);
    return chat_test_suite_run(suite, true);
}
