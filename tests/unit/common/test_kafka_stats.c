/* Unit tests of common/kafka_stats: lags read from librdkafka statistics (real samples of
 * librdkafka's output, captured from a consumer against the local stack: a group consumer
 * with a commit on partition 0 and a stored offset on partition 1, and a manual assignment
 * that never commits), and the group lag arithmetic of chat-admin lag serve. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kafka_stats.h"
#include "tests/support/util.h"

#define MAX_SEEN 16

typedef struct seen {
    int n;
    char topic[MAX_SEEN][64];
    int32_t partition[MAX_SEEN];
    int64_t lag[MAX_SEEN];
} seen_t;

static void record(void *ud, const char *topic, int32_t partition, int64_t lag)
{
    seen_t *s = ud;
    ck_assert_int_lt(s->n, MAX_SEEN);
    snprintf(s->topic[s->n], sizeof s->topic[0], "%s", topic);
    s->partition[s->n] = partition;
    s->lag[s->n] = lag;
    s->n++;
}

/* The lag reported for topic/partition, or -1 if none was. */
static int64_t lag_of(const seen_t *s, const char *topic, int32_t partition)
{
    for (int i = 0; i < s->n; i++)
        if (s->partition[i] == partition && strcmp(s->topic[i], topic) == 0)
            return s->lag[i];
    return -1;
}

static char *fixture(const char *name, size_t *len)
{
    const char *src = getenv("CHAT_SOURCE_DIR");
    ck_assert_msg(src != NULL, "CHAT_SOURCE_DIR is not set");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/unit/common/%s", src, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)size);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf; /* not NUL-terminated, as librdkafka's is not promised to be */
}

/* Partition 0: committed 4 of 10 (consumer_lag 6). Partition 1: nothing committed, 7 stored
 * (consumer_lag_stored 3). The internal partition -1 is never reported. */
START_TEST(test_group_sample)
{
    size_t len;
    char *json = fixture("kafka_stats_group.json", &len);
    seen_t s = {0};
    ck_assert_int_eq(chat_kafka_stats_lags(json, len, record, &s), 2);
    ck_assert_int_eq(lag_of(&s, "chat.capture", 0), 6);
    ck_assert_int_eq(lag_of(&s, "chat.capture", 1), 3);
    ck_assert_int_eq(lag_of(&s, "chat.capture", -1), -1);
    free(json);
}
END_TEST

/* A manual assignment (the gateway's chat.deliver) never commits or stores: the lag is the
 * high watermark (10) minus the next record the application gets (8). Partitions not
 * assigned have no offsets and are skipped. */
START_TEST(test_manual_sample)
{
    size_t len;
    char *json = fixture("kafka_stats_manual.json", &len);
    seen_t s = {0};
    ck_assert_int_eq(chat_kafka_stats_lags(json, len, record, &s), 1);
    ck_assert_int_eq(lag_of(&s, "chat.capture", 0), 2);
    ck_assert_int_eq(lag_of(&s, "chat.capture", 1), -1);
    free(json);
}
END_TEST

START_TEST(test_order_and_unknown)
{
    static const char json[] =
        "{\"type\":\"consumer\",\"topics\":{"
        "\"a\":{\"partitions\":{"
        /* committed wins over stored and position */
        "\"0\":{\"partition\":0,\"consumer_lag\":5,\"consumer_lag_stored\":2,"
        "\"hi_offset\":100,\"app_offset\":99},"
        /* nothing fetched, nothing committed: unknown, skipped */
        "\"1\":{\"partition\":1,\"consumer_lag\":-1,\"consumer_lag_stored\":-1,"
        "\"hi_offset\":100,\"app_offset\":-1001},"
        /* position past a stale high watermark: 0, never negative */
        "\"2\":{\"partition\":2,\"consumer_lag\":-1,\"hi_offset\":7,\"app_offset\":9},"
        "\"-1\":{\"partition\":-1,\"consumer_lag\":3}}},"
        "\"b\":{\"partitions\":{\"0\":{\"partition\":0,\"consumer_lag\":0}}},"
        "\"c\":{\"no_partitions\":true}}}";
    seen_t s = {0};
    ck_assert_int_eq(chat_kafka_stats_lags(json, sizeof json - 1, record, &s), 3);
    ck_assert_int_eq(lag_of(&s, "a", 0), 5);
    ck_assert_int_eq(lag_of(&s, "a", 1), -1);
    ck_assert_int_eq(lag_of(&s, "a", 2), 0);
    ck_assert_int_eq(lag_of(&s, "b", 0), 0);
    /* A producer's statistics, or a handle without topics, report nothing. */
    ck_assert_int_eq(chat_kafka_stats_lags("{\"type\":\"producer\"}", 20, record, &s), 0);
    ck_assert_int_eq(chat_kafka_stats_lags("{\"topics\":[]}", 13, NULL, NULL), 0);
}
END_TEST

START_TEST(test_not_json)
{
    ck_assert_int_eq(chat_kafka_stats_lags(NULL, 0, record, NULL), -1);
    ck_assert_int_eq(chat_kafka_stats_lags("", 0, record, NULL), -1);
    ck_assert_int_eq(chat_kafka_stats_lags("{\"topics\":", 10, record, NULL), -1);
    ck_assert_int_eq(chat_kafka_stats_lags("[1,2]", 5, record, NULL), -1);
    /* len bounds the parse: the object is cut short */
    ck_assert_int_eq(chat_kafka_stats_lags("{}garbage", 2, record, NULL), 0);
}
END_TEST

START_TEST(test_partition_lag)
{
    ck_assert_int_eq(chat_kafka_partition_lag(0, 10, 4), 6);
    ck_assert_int_eq(chat_kafka_partition_lag(0, 10, 10), 0);
    /* no committed offset: from the low watermark (records deleted by retention excluded) */
    ck_assert_int_eq(chat_kafka_partition_lag(0, 10, -1), 10);
    ck_assert_int_eq(chat_kafka_partition_lag(3, 10, -1), 7);
    /* a commit before the low watermark still counts from the commit: those records are
     * gone, but the group has not moved past them (what kafka-consumer-groups shows too) */
    ck_assert_int_eq(chat_kafka_partition_lag(5, 10, 2), 8);
    /* committed past the high watermark (topic recreated): 0 */
    ck_assert_int_eq(chat_kafka_partition_lag(0, 10, 12), 0);
    /* empty partition */
    ck_assert_int_eq(chat_kafka_partition_lag(0, 0, -1), 0);
}
END_TEST

START_TEST(test_topic_lag)
{
    const int64_t low[] = {0, 0, 2, 0};
    const int64_t high[] = {10, 5, 9, 0};
    const int64_t committed[] = {4, -1, -1, -1};
    chat_kafka_topic_lag_t t = chat_kafka_topic_lag(low, high, committed, 4);
    ck_assert_int_eq(t.sum, 6 + 5 + 7 + 0);
    ck_assert_int_eq(t.max, 7);
    t = chat_kafka_topic_lag(low, high, committed, 0);
    ck_assert_int_eq(t.sum, 0);
    ck_assert_int_eq(t.max, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("kafka_stats");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_group_sample);
    tcase_add_test(tc, test_manual_sample);
    tcase_add_test(tc, test_order_and_unknown);
    tcase_add_test(tc, test_not_json);
    tcase_add_test(tc, test_partition_lag);
    tcase_add_test(tc, test_topic_lag);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
