/* Unit tests of common/bus that need no broker: KAFKA_* variables reach librdkafka (and a
 * bad one fails creation with a log naming it), argument checks, the connect timeout
 * against a closed port, delivery failure reports and their metric, and cheap teardown.
 * Logs are captured in a temporary file through chat_log_set_fd. */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "tests/support/util.h"

/* Nothing listens there (port 1 needs root to bind); connections are refused at once. */
#define DEAD_BROKER "127.0.0.1:1"

static FILE *log_file;

static void capture_setup(void)
{
    log_file = tmpfile();
    ck_assert_ptr_nonnull(log_file);
    chat_log_init("bustest", CHAT_LOG_INFO);
    chat_log_set_fd(fileno(log_file));
}

static void capture_teardown(void)
{
    chat_log_set_fd(2);
    fclose(log_file);
}

/* Everything logged so far, NUL-terminated (malloc'd). The logger writes with write(2),
 * so the file's size, not the stdio position, says how much there is. */
static char *captured(void)
{
    struct stat st;
    ck_assert_int_eq(fstat(fileno(log_file), &st), 0);
    char *buf = calloc(1, (size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fileno(log_file), buf, (size_t)st.st_size, 0), st.st_size);
    return buf;
}

static bool log_contains(const char *needle)
{
    char *text = captured();
    bool found = strstr(text, needle) != NULL;
    if (!found)
        fprintf(stderr, "log lacks %s:\n%s\n", needle, text);
    free(text);
    return found;
}

static chat_bus_producer_conf_t producer_conf(const char *brokers)
{
    return (chat_bus_producer_conf_t){.brokers = brokers, .client_id = "bustest", .linger_ms = 1};
}

START_TEST(test_env_property_accepted)
{
    setenv("KAFKA_LINGER_MS", "3", 1);
    /* A consumer-only property on a producer: librdkafka only warns. */
    setenv("KAFKA_SESSION_TIMEOUT_MS", "10000", 1);
    chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
    ck_assert_ptr_nonnull(p);
    chat_bus_producer_destroy(p);
    ck_assert(log_contains("consumer property and will be ignored"));
    unsetenv("KAFKA_LINGER_MS");
    unsetenv("KAFKA_SESSION_TIMEOUT_MS");
}
END_TEST

/* A bad value is refused by librdkafka, which proves the variable maps to linger.ms. */
START_TEST(test_env_bad_value_names_variable)
{
    setenv("KAFKA_LINGER_MS", "soon", 1);
    chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_ERR_CONFIG);
    ck_assert_ptr_null(p);
    ck_assert(log_contains("\"var\":\"KAFKA_LINGER_MS\""));
    ck_assert(log_contains("\"property\":\"linger.ms\""));
    unsetenv("KAFKA_LINGER_MS");
}
END_TEST

/* Kubernetes service links and Kafka's script options are not librdkafka settings and must
 * not stop a service; a near miss that is neither still fails. */
START_TEST(test_env_foreign_variables_ignored)
{
    static const char *const foreign[] = {"KAFKA_PORT", "KAFKA_PORT_9092_TCP_ADDR",
                                          "KAFKA_SERVICE_HOST", "KAFKA_HEAP_OPTS", "KAFKA_OPTS"};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        setenv(foreign[i], "tcp://10.0.0.1:9092", 1);
    chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
    chat_bus_producer_destroy(p);
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++)
        unsetenv(foreign[i]);

    setenv("KAFKA_PORTS", "1", 1);
    p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_ERR_CONFIG);
    ck_assert(log_contains("\"var\":\"KAFKA_PORTS\""));
    unsetenv("KAFKA_PORTS");
}
END_TEST

START_TEST(test_env_unknown_property)
{
    setenv("KAFKA_NO_SUCH_PROPERTY", "1", 1);
    chat_bus_producer_conf_t pconf = producer_conf(DEAD_BROKER);
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&pconf, &p), CHAT_ERR_CONFIG);
    ck_assert_ptr_null(p);
    ck_assert(log_contains("\"level\":\"error\""));
    ck_assert(log_contains("\"var\":\"KAFKA_NO_SUCH_PROPERTY\""));

    const char *topics[] = {"t", NULL};
    chat_bus_consumer_conf_t cconf = {.brokers = DEAD_BROKER, .group_id = "g", .topics = topics};
    chat_bus_consumer_t *c = NULL;
    ck_assert_int_eq(chat_bus_consumer_new(&cconf, &c), CHAT_ERR_CONFIG);
    ck_assert_ptr_null(c);
    unsetenv("KAFKA_NO_SUCH_PROPERTY");
}
END_TEST

START_TEST(test_missing_arguments)
{
    chat_bus_producer_t *p = NULL;
    chat_bus_producer_conf_t pconf = producer_conf(NULL);
    ck_assert_int_eq(chat_bus_producer_new(&pconf, &p), CHAT_ERR_INVALID);
    pconf.brokers = "";
    ck_assert_int_eq(chat_bus_producer_new(&pconf, &p), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_bus_producer_new(NULL, &p), CHAT_ERR_INVALID);
    ck_assert_ptr_null(p);

    const char *topics[] = {"t", NULL};
    const char *no_topics[] = {NULL};
    chat_bus_consumer_t *c = NULL;
    chat_bus_consumer_conf_t cconf = {.group_id = "g", .topics = topics};
    ck_assert_int_eq(chat_bus_consumer_new(&cconf, &c), CHAT_ERR_INVALID);
    cconf.brokers = DEAD_BROKER;
    cconf.topics = no_topics;
    ck_assert_int_eq(chat_bus_consumer_new(&cconf, &c), CHAT_ERR_INVALID);
    /* Manual mode needs a topic, a partition and a start offset. */
    chat_bus_consumer_conf_t manual = {
        .brokers = DEAD_BROKER, .assign_partition = 0, .assign_offset = CHAT_BUS_OFFSET_BEGINNING};
    ck_assert_int_eq(chat_bus_consumer_new(&manual, &c), CHAT_ERR_INVALID);
    manual.assign_topic = "t";
    manual.assign_partition = -1;
    ck_assert_int_eq(chat_bus_consumer_new(&manual, &c), CHAT_ERR_INVALID);
    manual.assign_partition = 0;
    manual.assign_offset = -7;
    ck_assert_int_eq(chat_bus_consumer_new(&manual, &c), CHAT_ERR_INVALID);
    ck_assert_ptr_null(c);

    ck_assert_int_eq(chat_bus_topics_ensure(NULL, NULL, 0, 1000), CHAT_ERR_INVALID);
    chat_bus_topic_spec_t bad = {.name = "t", .partitions = 0, .replication = -1};
    ck_assert_int_eq(chat_bus_topics_ensure(DEAD_BROKER, &bad, 1, 1000), CHAT_ERR_INVALID);
    const char *bad_configs[] = {"retention.ms", NULL};
    bad = (chat_bus_topic_spec_t){
        .name = "t", .partitions = 1, .replication = -1, .configs = bad_configs};
    ck_assert_int_eq(chat_bus_topics_ensure(DEAD_BROKER, &bad, 1, 1000), CHAT_ERR_INVALID);
    ck_assert_int_eq(chat_bus_topic_partitions(NULL, "t", 1000), -1);
}
END_TEST

START_TEST(test_connect_timeout)
{
    char brokers[32];
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", chat_test_free_port());
    chat_bus_producer_conf_t conf = producer_conf(brokers);
    conf.connect_timeout_ms = 1500;
    chat_bus_producer_t *p = NULL;
    int64_t start = chat_clock_mono_us();
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_ERR_TIMEOUT);
    double took = chat_clock_seconds_since(start);
    ck_assert_ptr_null(p);
    ck_assert_msg(took >= 1.4 && took < 3.0, "timed out after %.2f s", took);
    char expect[64];
    snprintf(expect, sizeof expect, "\"brokers\":\"%s\"", brokers);
    ck_assert(log_contains("kafka brokers unreachable"));
    ck_assert(log_contains(expect));
}
END_TEST

START_TEST(test_consumer_connect_timeout)
{
    char brokers[32];
    snprintf(brokers, sizeof brokers, "127.0.0.1:%d", chat_test_free_port());
    const char *topics[] = {"t", NULL};
    chat_bus_consumer_conf_t conf = {
        .brokers = brokers, .group_id = "g", .topics = topics, .connect_timeout_ms = 500};
    chat_bus_consumer_t *c = NULL;
    ck_assert_int_eq(chat_bus_consumer_new(&conf, &c), CHAT_ERR_TIMEOUT);
    ck_assert_ptr_null(c);
}
END_TEST

START_TEST(test_destroy_idle_is_quick)
{
    chat_bus_producer_destroy(NULL);
    chat_bus_consumer_close(NULL);
    chat_bus_records_release(NULL, 0);
    for (int thread = 0; thread < 2; thread++) {
        chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
        conf.poll_thread = thread == 1;
        chat_bus_producer_t *p = NULL;
        ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
        ck_assert_int_eq(chat_bus_producer_outstanding(p), 0);
        ck_assert_int_eq(chat_bus_producer_flush(p, 0), CHAT_OK);
        ck_assert_int_eq(chat_bus_producer_poll(p, 0), 0);
        int64_t start = chat_clock_mono_us();
        chat_bus_producer_destroy(p);
        ck_assert_msg(chat_clock_seconds_since(start) < 1.0, "destroy took %.2f s",
                      chat_clock_seconds_since(start));
    }
}
END_TEST

typedef struct delivery_log {
    int calls;
    chat_err_t err;
    char reason[128];
    void *opaque;
} delivery_log_t;

static void record_delivery(void *ud, void *opaque, chat_err_t err, const char *reason,
                            int32_t partition, int64_t offset)
{
    (void)partition;
    (void)offset;
    delivery_log_t *d = ud;
    d->calls++;
    d->err = err;
    d->opaque = opaque;
    snprintf(d->reason, sizeof d->reason, "%s", reason != NULL ? reason : "(null)");
}

/* With no broker the record times out: exactly one report, CHAT_ERR_TIMEOUT with
 * librdkafka's reason, counted as an error in the metrics. */
START_TEST(test_delivery_timeout_reported)
{
    setenv("KAFKA_MESSAGE_TIMEOUT_MS", "300", 1);
    chat_metrics_t *m = chat_metrics_new();
    ck_assert_ptr_nonnull(m);
    delivery_log_t d = {0};
    chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
    conf.on_delivery = record_delivery;
    conf.ud = &d;
    conf.metrics = m;
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
    int tag;
    ck_assert_int_eq(chat_bus_produce(p, "bus.unit", CHAT_BUS_PARTITION_ANY, "k", 1, "v", 1, &tag),
                     CHAT_OK);
    ck_assert_int_eq(chat_bus_producer_outstanding(p), 1);
    ck_assert_int_eq(chat_bus_producer_flush(p, 3000), CHAT_OK);
    ck_assert_int_eq(chat_bus_producer_outstanding(p), 0);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(d.err, CHAT_ERR_TIMEOUT);
    ck_assert_ptr_eq(d.opaque, &tag);
    ck_assert_msg(strstr(d.reason, "timed out") != NULL, "reason: %s", d.reason);

    char *text = chat_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "chat_kafka_produce_errors_total{topic=\"bus.unit\"} 1") != NULL &&
                      strstr(text, "chat_kafka_produced_total{topic=\"bus.unit\"} 0") != NULL,
                  "%s", text);
    free(text);
    chat_bus_producer_destroy(p);
    ck_assert_int_eq(d.calls, 1);
    chat_metrics_destroy(m);
    unsetenv("KAFKA_MESSAGE_TIMEOUT_MS");
}
END_TEST

/* The same with the poll thread: flush returns only after the callback has finished. */
START_TEST(test_delivery_timeout_poll_thread)
{
    setenv("KAFKA_MESSAGE_TIMEOUT_MS", "300", 1);
    delivery_log_t d = {0};
    chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
    conf.on_delivery = record_delivery;
    conf.ud = &d;
    conf.poll_thread = true;
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(chat_bus_produce(p, "bus.unit", 0, NULL, 0, "v", 1, NULL), CHAT_OK);
    ck_assert_int_eq(chat_bus_producer_flush(p, 50), CHAT_ERR_TIMEOUT);
    ck_assert_int_eq(chat_bus_producer_flush(p, 3000), CHAT_OK);
    ck_assert_int_eq(d.calls, 3);
    ck_assert_int_eq(d.err, CHAT_ERR_TIMEOUT);
    chat_bus_producer_destroy(p);
    unsetenv("KAFKA_MESSAGE_TIMEOUT_MS");
}
END_TEST

/* With no broker nothing is acknowledged: stalled_ms counts from the first record produced
 * (0 before it and once its report is in), and later records do not restart it. */
START_TEST(test_stalled_without_broker)
{
    setenv("KAFKA_MESSAGE_TIMEOUT_MS", "1500", 1);
    chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
    conf.poll_thread = true;
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
    ck_assert_int_eq(chat_bus_producer_stalled_ms(p), 0);
    ck_assert_int_eq(chat_bus_produce(p, "bus.unit", 0, NULL, 0, "v", 1, NULL), CHAT_OK);
    usleep(400 * 1000);
    ck_assert_int_eq(chat_bus_produce(p, "bus.unit", 0, NULL, 0, "v", 1, NULL), CHAT_OK);
    int64_t stalled = chat_bus_producer_stalled_ms(p);
    ck_assert_msg(stalled >= 350 && stalled < 1500, "stalled %lld ms", (long long)stalled);
    ck_assert_int_eq(chat_bus_producer_flush(p, 5000), CHAT_OK); /* both timed out */
    ck_assert_int_eq(chat_bus_producer_stalled_ms(p), 0);
    ck_assert_int_eq(chat_bus_producer_stalled_ms(NULL), 0);
    chat_bus_producer_destroy(p);
    unsetenv("KAFKA_MESSAGE_TIMEOUT_MS");
}
END_TEST

/* A full local queue: CHAT_BUS_NO_WAIT fails the next record at once (an event loop must
 * not block), a positive wait tries for that long. Nothing is lost: the queued record
 * still gets its delivery report. */
START_TEST(test_queue_full_wait_or_not)
{
    setenv("KAFKA_QUEUE_BUFFERING_MAX_MESSAGES", "1", 1);
    setenv("KAFKA_MESSAGE_TIMEOUT_MS", "2000", 1);
    int waits[] = {CHAT_BUS_NO_WAIT, 300};
    for (size_t i = 0; i < 2; i++) {
        delivery_log_t d = {0};
        chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
        conf.on_delivery = record_delivery;
        conf.ud = &d;
        conf.queue_full_wait_ms = waits[i];
        chat_bus_producer_t *p = NULL;
        ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
        ck_assert_int_eq(chat_bus_produce(p, "bus.unit", 0, NULL, 0, "a", 1, NULL), CHAT_OK);
        int64_t start = chat_clock_mono_us();
        ck_assert_int_eq(chat_bus_produce(p, "bus.unit", 0, NULL, 0, "b", 1, NULL),
                         CHAT_ERR_TIMEOUT);
        double took = chat_clock_seconds_since(start);
        if (waits[i] == CHAT_BUS_NO_WAIT)
            ck_assert_msg(took < 0.1, "no-wait produce took %.3f s", took);
        else
            ck_assert_msg(took >= 0.25 && took < 1.5, "300 ms wait took %.3f s", took);
        ck_assert_int_eq(chat_bus_producer_flush(p, 4000), CHAT_OK);
        ck_assert_int_eq(d.calls, 1);
        chat_bus_producer_destroy(p);
    }
    unsetenv("KAFKA_QUEUE_BUFFERING_MAX_MESSAGES");
    unsetenv("KAFKA_MESSAGE_TIMEOUT_MS");
}
END_TEST

/* The partition count over the producer's own connection: -1 for bad arguments, and -1
 * within the timeout when no broker answers. */
START_TEST(test_producer_partitions_without_broker)
{
    chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
    ck_assert_int_eq(chat_bus_producer_partitions(NULL, "t", 100), -1);
    ck_assert_int_eq(chat_bus_producer_partitions(p, NULL, 100), -1);
    ck_assert_int_eq(chat_bus_producer_partitions(p, "", 100), -1);
    ck_assert_int_eq(chat_bus_producer_partitions(p, "t", 0), -1);
    int64_t start = chat_clock_mono_us();
    ck_assert_int_eq(chat_bus_producer_partitions(p, "t", 500), -1);
    double took = chat_clock_seconds_since(start);
    ck_assert_msg(took >= 0.4 && took < 2.0, "lookup took %.3f s", took);
    chat_bus_producer_destroy(p);
}
END_TEST

/* Each topic has its own counters, from two threads at once: the per-topic cache must not
 * mix them up, and a topic's error series reads 0 until it has an error. */
typedef struct topic_burst {
    chat_bus_producer_t *p;
    const char *topic;
    int n;
} topic_burst_t;

static void *produce_burst(void *arg)
{
    topic_burst_t *b = arg;
    for (int i = 0; i < b->n; i++)
        ck_assert_int_eq(chat_bus_produce(b->p, b->topic, 0, NULL, 0, "v", 1, NULL), CHAT_OK);
    return NULL;
}

START_TEST(test_topic_counters_separate)
{
    setenv("KAFKA_MESSAGE_TIMEOUT_MS", "300", 1);
    chat_metrics_t *m = chat_metrics_new();
    chat_bus_producer_conf_t conf = producer_conf(DEAD_BROKER);
    conf.metrics = m;
    conf.poll_thread = true;
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
    topic_burst_t a = {p, "bus.alpha", 7}, b = {p, "bus.beta", 3};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, produce_burst, &a);
    pthread_create(&tb, NULL, produce_burst, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    ck_assert_int_eq(chat_bus_producer_flush(p, 4000), CHAT_OK);
    char *text = chat_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(text);
    ck_assert_msg(strstr(text, "chat_kafka_produce_errors_total{topic=\"bus.alpha\"} 7"), "%s",
                  text);
    ck_assert_msg(strstr(text, "chat_kafka_produce_errors_total{topic=\"bus.beta\"} 3"), "%s",
                  text);
    ck_assert_msg(strstr(text, "chat_kafka_produced_total{topic=\"bus.alpha\"} 0"), "%s", text);
    free(text);
    chat_bus_producer_destroy(p);
    chat_metrics_destroy(m);
    unsetenv("KAFKA_MESSAGE_TIMEOUT_MS");
}
END_TEST

/* Manual mode: no commits, and polling without a broker just times out. */
START_TEST(test_manual_consumer_without_broker)
{
    chat_bus_consumer_conf_t conf = {.brokers = DEAD_BROKER,
                                     .assign_topic = "bus.unit",
                                     .assign_partition = 0,
                                     .assign_offset = CHAT_BUS_OFFSET_BEGINNING};
    chat_bus_consumer_t *c = NULL;
    ck_assert_int_eq(chat_bus_consumer_new(&conf, &c), CHAT_OK);
    chat_bus_record_t recs[4];
    ck_assert_uint_eq(chat_bus_consumer_poll(c, recs, 4, 100), 0);
    ck_assert_uint_eq(chat_bus_consumer_poll(c, recs, 0, 100), 0);
    chat_bus_record_t fake = {.topic = "bus.unit", .partition = 0, .offset = 1};
    ck_assert_int_eq(chat_bus_consumer_commit(c, &fake, 1, true), CHAT_ERR_INVALID);
    chat_bus_consumer_close(c);
}
END_TEST

/* With metrics, the series of a consumer exist from creation: consumed_total for its topic,
 * and the lag of its assigned partition (0 until statistics say otherwise, 0 after close);
 * the statistics interval the bus sets is accepted by librdkafka, and a KAFKA_* override
 * of it too. Producers pre-create the series of the topics they list. */
START_TEST(test_series_created_up_front)
{
    setenv("KAFKA_STATISTICS_INTERVAL_MS", "200", 1);
    chat_metrics_t *m = chat_metrics_new();
    chat_bus_consumer_conf_t conf = {.brokers = DEAD_BROKER,
                                     .assign_topic = "bus.lag",
                                     .assign_partition = 3,
                                     .assign_offset = CHAT_BUS_OFFSET_BEGINNING,
                                     .metrics = m};
    chat_bus_consumer_t *c = NULL;
    ck_assert_int_eq(chat_bus_consumer_new(&conf, &c), CHAT_OK);
    chat_bus_record_t recs[4];
    /* Statistics without a broker carry no lag: the series stays at 0. */
    ck_assert_uint_eq(chat_bus_consumer_poll(c, recs, 4, 500), 0);
    char *text = chat_metrics_render(m, NULL);
    ck_assert_msg(strstr(text, "chat_kafka_consumed_total{topic=\"bus.lag\"} 0") != NULL, "%s",
                  text);
    ck_assert_msg(strstr(text, "chat_kafka_consumer_lag{topic=\"bus.lag\",partition=\"3\"} 0") !=
                      NULL,
                  "%s", text);
    ck_assert_msg(strstr(text, "# TYPE chat_kafka_consumer_lag gauge") != NULL, "%s", text);
    free(text);
    chat_bus_consumer_close(c);

    const char *const topics[] = {"bus.out", NULL};
    chat_bus_producer_conf_t pc = producer_conf(DEAD_BROKER);
    pc.metrics = m;
    pc.topics = topics;
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&pc, &p), CHAT_OK);
    text = chat_metrics_render(m, NULL);
    ck_assert_msg(strstr(text, "chat_kafka_produced_total{topic=\"bus.out\"} 0") != NULL, "%s",
                  text);
    ck_assert_msg(strstr(text, "chat_kafka_produce_errors_total{topic=\"bus.out\"} 0") != NULL,
                  "%s", text);
    free(text);
    chat_bus_producer_destroy(p);
    chat_metrics_destroy(m);
    unsetenv("KAFKA_STATISTICS_INTERVAL_MS");
}
END_TEST

/* KAFKA_* variables of the developer's shell would change what these tests check. */
static void scrub_kafka_environment(void)
{
    extern char **environ;
    for (bool again = true; again;) {
        again = false;
        for (char **env = environ; *env != NULL; env++) {
            if (strncmp(*env, "KAFKA_", 6) == 0 && strchr(*env, '=') != NULL) {
                char name[256];
                snprintf(name, sizeof name, "%.*s", (int)(strchr(*env, '=') - *env), *env);
                unsetenv(name);
                again = true;
                break;
            }
        }
    }
}

int main(void)
{
    scrub_kafka_environment();
    Suite *s = suite_create("bus");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, capture_setup, capture_teardown);
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, test_env_property_accepted);
    tcase_add_test(tc, test_env_bad_value_names_variable);
    tcase_add_test(tc, test_env_unknown_property);
    tcase_add_test(tc, test_env_foreign_variables_ignored);
    tcase_add_test(tc, test_missing_arguments);
    tcase_add_test(tc, test_connect_timeout);
    tcase_add_test(tc, test_consumer_connect_timeout);
    tcase_add_test(tc, test_destroy_idle_is_quick);
    tcase_add_test(tc, test_delivery_timeout_reported);
    tcase_add_test(tc, test_delivery_timeout_poll_thread);
    tcase_add_test(tc, test_stalled_without_broker);
    tcase_add_test(tc, test_manual_consumer_without_broker);
    tcase_add_test(tc, test_series_created_up_front);
    tcase_add_test(tc, test_queue_full_wait_or_not);
    tcase_add_test(tc, test_producer_partitions_without_broker);
    tcase_add_test(tc, test_topic_counters_separate);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
