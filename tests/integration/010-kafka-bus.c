/* Integration tests of common/bus against the stack's Kafka: topic creation and growth,
 * keyed produce/consume with per-key order, commit and restart in a group, rebalance
 * callbacks, manual partition reading from the end, and flush. Every case uses its own
 * topics and groups (chat_test_unique), so runs never see each other's records. */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/bus.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/metrics.h"
#include "tests/support/stack.h"
#include "tests/support/util.h"

#define MAX_RECORDS 256
#define WAIT_MS 30000
#define TOPIC_TIMEOUT_MS 30000
#define NKEYS 7

static const char *brokers;

/* Creates a fresh topic and returns once brokers show it (topics_ensure waits). */
static void topic_make(char *name, size_t len, const char *prefix, int partitions)
{
    chat_test_unique(name, len, prefix);
    chat_bus_topic_spec_t spec = {.name = name, .partitions = partitions, .replication = -1};
    ck_assert_int_eq(chat_bus_topics_ensure(brokers, &spec, 1, TOPIC_TIMEOUT_MS), CHAT_OK);
}

/* ---- producing ---- */

/* Delivery reports by record number (the opaque is number + 1). */
typedef struct delivery {
    pthread_mutex_t lock;
    int calls;
    int failures;
    bool slow; /* callbacks take 2 ms: widens the window in which a flush could return early */
    int32_t partition[MAX_RECORDS];
    int64_t offset[MAX_RECORDS];
} delivery_t;

static void on_delivery(void *ud, void *opaque, chat_err_t err, const char *reason,
                        int32_t partition, int64_t offset)
{
    delivery_t *d = ud;
    int i = (int)((intptr_t)opaque - 1);
    if (d->slow)
        chat_clock_sleep_ms(2);
    pthread_mutex_lock(&d->lock);
    d->calls++;
    if (err != CHAT_OK) {
        d->failures++;
        fprintf(stderr, "delivery of %d failed: %s (%s)\n", i, chat_err_name(err), reason);
    }
    if (i >= 0 && i < MAX_RECORDS) {
        d->partition[i] = partition;
        d->offset[i] = offset;
    }
    pthread_mutex_unlock(&d->lock);
}

static int delivery_calls(delivery_t *d)
{
    pthread_mutex_lock(&d->lock);
    int calls = d->calls;
    pthread_mutex_unlock(&d->lock);
    return calls;
}

static chat_bus_producer_t *producer_make(delivery_t *d, bool poll_thread, int linger_ms,
                                          chat_metrics_t *metrics)
{
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->lock, NULL);
    chat_bus_producer_conf_t conf = {.brokers = brokers,
                                     .client_id = "it-bus",
                                     .linger_ms = linger_ms,
                                     .poll_thread = poll_thread,
                                     .on_delivery = on_delivery,
                                     .ud = d,
                                     .connect_timeout_ms = WAIT_MS,
                                     .metrics = metrics};
    chat_bus_producer_t *p = NULL;
    ck_assert_int_eq(chat_bus_producer_new(&conf, &p), CHAT_OK);
    return p;
}

/* Produces records first..first+n-1: value "<i>", key "key-<i % NKEYS>". */
static void produce_range(chat_bus_producer_t *p, const char *topic, int32_t partition, int first,
                          int n)
{
    for (int i = first; i < first + n; i++) {
        char key[16], value[16];
        snprintf(key, sizeof key, "key-%d", i % NKEYS);
        snprintf(value, sizeof value, "%d", i);
        ck_assert_int_eq(chat_bus_produce(p, topic, partition, key, strlen(key), value,
                                          strlen(value), (void *)(intptr_t)(i + 1)),
                         CHAT_OK);
    }
}

/* ---- consuming ---- */

/* What a consumer got, by arrival order. */
typedef struct seen {
    int n;
    int value[MAX_RECORDS];
    int key[MAX_RECORDS];
    int32_t partition[MAX_RECORDS];
    int64_t offset[MAX_RECORDS];
} seen_t;

static int parse_int(const void *p, size_t len)
{
    char buf[32];
    ck_assert_uint_lt(len, sizeof buf);
    memcpy(buf, p, len);
    buf[len] = '\0';
    return atoi(buf);
}

static void seen_add(seen_t *s, const chat_bus_record_t *r)
{
    ck_assert_int_lt(s->n, MAX_RECORDS);
    ck_assert_ptr_nonnull(r->key);
    ck_assert_uint_gt(r->keylen, 4);
    s->value[s->n] = parse_int(r->value, r->len);
    s->key[s->n] = parse_int((const char *)r->key + 4, r->keylen - 4);
    s->partition[s->n] = r->partition;
    s->offset[s->n] = r->offset;
    s->n++;
}

/* Polls until s holds want records (never asking for more) or timeout_ms passes; with
 * commit, commits each batch synchronously after recording it. */
static void consume_until(chat_bus_consumer_t *c, seen_t *s, int want, int timeout_ms, bool commit)
{
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    chat_bus_record_t recs[32];
    while (s->n < want && chat_clock_mono_ms() < deadline) {
        size_t max = (size_t)(want - s->n) < 32 ? (size_t)(want - s->n) : 32;
        size_t n = chat_bus_consumer_poll(c, recs, max, 200);
        ck_assert_uint_le(n, max);
        for (size_t i = 0; i < n; i++)
            seen_add(s, &recs[i]);
        if (commit && n > 0)
            ck_assert_int_eq(chat_bus_consumer_commit(c, recs, n, true), CHAT_OK);
        chat_bus_records_release(recs, n);
    }
}

/* Nothing more arrives within ms. */
static void assert_quiet(chat_bus_consumer_t *c, int ms)
{
    seen_t *extra = calloc(1, sizeof *extra);
    consume_until(c, extra, 1, ms, false);
    ck_assert_msg(extra->n == 0, "unexpected record %d", extra->value[0]);
    free(extra);
}

/* Polls until s holds want records, storing each batch (cadence commits). */
static void consume_storing(chat_bus_consumer_t *c, seen_t *s, int want, int timeout_ms)
{
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    chat_bus_record_t recs[32];
    while (s->n < want && chat_clock_mono_ms() < deadline) {
        size_t max = (size_t)(want - s->n) < 32 ? (size_t)(want - s->n) : 32;
        size_t n = chat_bus_consumer_poll(c, recs, max, 200);
        for (size_t i = 0; i < n; i++)
            seen_add(s, &recs[i]);
        if (n > 0)
            ck_assert_int_eq(chat_bus_consumer_store(c, recs, n), CHAT_OK);
        chat_bus_records_release(recs, n);
    }
}

static chat_bus_consumer_t *group_consumer_every(const char *topic, const char *group,
                                                 int commit_interval_ms, chat_metrics_t *metrics)
{
    const char *topics[] = {topic, NULL};
    chat_bus_consumer_conf_t conf = {.brokers = brokers,
                                     .client_id = "it-bus",
                                     .group_id = group,
                                     .topics = topics,
                                     .connect_timeout_ms = WAIT_MS,
                                     .metrics = metrics,
                                     .commit_interval_ms = commit_interval_ms};
    chat_bus_consumer_t *c = NULL;
    ck_assert_int_eq(chat_bus_consumer_new(&conf, &c), CHAT_OK);
    return c;
}

static chat_bus_consumer_t *group_consumer(const char *topic, const char *group,
                                           chat_bus_rebalance_fn fn, void *ud,
                                           chat_metrics_t *metrics)
{
    const char *topics[] = {topic, NULL};
    chat_bus_consumer_conf_t conf = {.brokers = brokers,
                                     .client_id = "it-bus",
                                     .group_id = group,
                                     .topics = topics,
                                     .on_rebalance = fn,
                                     .ud = ud,
                                     .connect_timeout_ms = WAIT_MS,
                                     .metrics = metrics};
    chat_bus_consumer_t *c = NULL;
    ck_assert_int_eq(chat_bus_consumer_new(&conf, &c), CHAT_OK);
    return c;
}

static chat_bus_consumer_t *manual_consumer(const char *topic, int32_t partition, int64_t offset)
{
    chat_bus_consumer_conf_t conf = {.brokers = brokers,
                                     .client_id = "it-bus-manual",
                                     .assign_topic = topic,
                                     .assign_partition = partition,
                                     .assign_offset = offset,
                                     .connect_timeout_ms = WAIT_MS};
    chat_bus_consumer_t *c = NULL;
    ck_assert_int_eq(chat_bus_consumer_new(&conf, &c), CHAT_OK);
    return c;
}

/* Value of series in m's rendered text; fails the test if m does not render it. */
static uint64_t metric_value(chat_metrics_t *m, const char *series)
{
    char *text = chat_metrics_render(m, NULL);
    ck_assert_ptr_nonnull(text);
    uint64_t v = chat_test_metric_value(text, series);
    free(text);
    return v;
}

/* ---- (a) topics ---- */

START_TEST(test_topics_ensure_and_grow)
{
    char name[128];
    chat_test_unique(name, sizeof name, "it-bus-topics");
    const char *configs[] = {"retention.ms=3600000", NULL};
    chat_bus_topic_spec_t spec = {
        .name = name, .partitions = 3, .replication = -1, .configs = configs};
    ck_assert_int_eq(chat_bus_topic_partitions(brokers, name, 5000), -1);
    ck_assert_int_eq(chat_bus_topics_ensure(brokers, &spec, 1, TOPIC_TIMEOUT_MS), CHAT_OK);
    ck_assert_int_eq(chat_bus_topic_partitions(brokers, name, 5000), 3);

    /* Idempotent. */
    ck_assert_int_eq(chat_bus_topics_ensure(brokers, &spec, 1, TOPIC_TIMEOUT_MS), CHAT_OK);
    ck_assert_int_eq(chat_bus_topic_partitions(brokers, name, 5000), 3);

    /* Grows, together with a new topic in the same call. */
    char other[128];
    chat_test_unique(other, sizeof other, "it-bus-topics");
    chat_bus_topic_spec_t specs[2] = {spec, {.name = other, .partitions = 2, .replication = 1}};
    specs[0].partitions = 4;
    ck_assert_int_eq(chat_bus_topics_ensure(brokers, specs, 2, TOPIC_TIMEOUT_MS), CHAT_OK);
    ck_assert_int_eq(chat_bus_topic_partitions(brokers, name, 5000), 4);
    ck_assert_int_eq(chat_bus_topic_partitions(brokers, other, 5000), 2);

    /* Kafka cannot shrink a topic: asked for fewer, it is left alone and that is fine. */
    spec.partitions = 2;
    ck_assert_int_eq(chat_bus_topics_ensure(brokers, &spec, 1, TOPIC_TIMEOUT_MS), CHAT_OK);
    ck_assert_int_eq(chat_bus_topic_partitions(brokers, name, 5000), 4);

    /* A broker refusal (5 replicas on the one-broker stack) is a Kafka failure. */
    char bad[128];
    chat_test_unique(bad, sizeof bad, "it-bus-topics");
    chat_bus_topic_spec_t refused = {.name = bad, .partitions = 1, .replication = 5};
    ck_assert_int_eq(chat_bus_topics_ensure(brokers, &refused, 1, TOPIC_TIMEOUT_MS),
                     CHAT_ERR_KAFKA);
    ck_assert_int_eq(chat_bus_topic_partitions(brokers, bad, 5000), -1);
}
END_TEST

/* ---- (b) keyed produce and consume ---- */

START_TEST(test_produce_consume_keyed)
{
    char topic[128], group[128];
    topic_make(topic, sizeof topic, "it-bus-keyed", 3);
    chat_test_unique(group, sizeof group, "it-bus-keyed-group");
    chat_metrics_t *metrics = chat_metrics_new();

    delivery_t *d = malloc(sizeof *d);
    chat_bus_producer_t *p = producer_make(d, false, 5, metrics);
    produce_range(p, topic, CHAT_BUS_PARTITION_ANY, 0, 100);
    ck_assert_int_eq(chat_bus_producer_flush(p, WAIT_MS), CHAT_OK);
    ck_assert_int_eq(d->calls, 100);
    ck_assert_int_eq(d->failures, 0);
    for (int i = 0; i < 100; i++) {
        ck_assert_int_ge(d->offset[i], 0);
        ck_assert_int_ge(d->partition[i], 0);
        ck_assert_int_lt(d->partition[i], 3);
        /* Same key, same partition, later offset. */
        if (i >= NKEYS) {
            ck_assert_int_eq(d->partition[i], d->partition[i - NKEYS]);
            ck_assert_int_gt(d->offset[i], d->offset[i - NKEYS]);
        }
    }
    char series[256];
    snprintf(series, sizeof series, "chat_kafka_produced_total{topic=\"%s\"}", topic);
    ck_assert_uint_eq(metric_value(metrics, series), 100);
    chat_bus_producer_destroy(p);

    seen_t *s = calloc(1, sizeof *s);
    chat_bus_consumer_t *c = group_consumer(topic, group, NULL, NULL, metrics);
    consume_until(c, s, 100, WAIT_MS, false);
    ck_assert_int_eq(s->n, 100);
    assert_quiet(c, 1000);
    chat_bus_consumer_close(c);
    snprintf(series, sizeof series, "chat_kafka_consumed_total{topic=\"%s\"}", topic);
    ck_assert_uint_eq(metric_value(metrics, series), 100);

    bool got[100] = {false};
    int last_of_key[NKEYS];
    for (int k = 0; k < NKEYS; k++)
        last_of_key[k] = -1;
    for (int i = 0; i < s->n; i++) {
        int v = s->value[i];
        ck_assert_int_ge(v, 0);
        ck_assert_int_lt(v, 100);
        ck_assert_msg(!got[v], "record %d read twice", v);
        got[v] = true;
        ck_assert_int_eq(s->key[i], v % NKEYS);
        ck_assert_int_eq(s->partition[i], d->partition[v]);
        ck_assert_int_eq(s->offset[i], d->offset[v]);
        ck_assert_msg(v > last_of_key[s->key[i]], "key %d: %d after %d", s->key[i], v,
                      last_of_key[s->key[i]]);
        last_of_key[s->key[i]] = v;
    }
    free(s);
    free(d);
    chat_metrics_destroy(metrics);
}
END_TEST

/* ---- (c) commit and restart ---- */

START_TEST(test_commit_and_restart)
{
    char topic[128], group[128];
    topic_make(topic, sizeof topic, "it-bus-commit", 3);
    chat_test_unique(group, sizeof group, "it-bus-commit-group");

    delivery_t *d = malloc(sizeof *d);
    chat_bus_producer_t *p = producer_make(d, false, 5, NULL);
    produce_range(p, topic, CHAT_BUS_PARTITION_ANY, 0, 100);
    ck_assert_int_eq(chat_bus_producer_flush(p, WAIT_MS), CHAT_OK);
    ck_assert_int_eq(d->failures, 0);
    chat_bus_producer_destroy(p);

    seen_t *a = calloc(1, sizeof *a);
    chat_bus_consumer_t *ca = group_consumer(topic, group, NULL, NULL, NULL);
    consume_until(ca, a, 50, WAIT_MS, true);
    ck_assert_int_eq(a->n, 50);
    chat_bus_consumer_close(ca);

    seen_t *b = calloc(1, sizeof *b);
    chat_bus_consumer_t *cb = group_consumer(topic, group, NULL, NULL, NULL);
    consume_until(cb, b, 50, WAIT_MS, false);
    ck_assert_int_eq(b->n, 50);
    assert_quiet(cb, 1500);
    chat_bus_consumer_close(cb);

    int times[100] = {0};
    for (int i = 0; i < 50; i++) {
        times[a->value[i]]++;
        times[b->value[i]]++;
    }
    for (int v = 0; v < 100; v++)
        ck_assert_msg(times[v] == 1, "record %d read %d times", v, times[v]);
    free(a);
    free(b);
    free(d);
}
END_TEST

/* Stored offsets are committed on a cadence, not per batch: a consumer that stored a few
 * hundred records in many small batches commits a handful of times; and a member that
 * closes or gives partitions away commits what it stored first, so nothing it finished is
 * read again and nothing is skipped. */
START_TEST(test_store_commits_on_a_cadence)
{
    char topic[128], group[128];
    topic_make(topic, sizeof topic, "it-bus-store", 3);
    chat_test_unique(group, sizeof group, "it-bus-store-group");
    delivery_t *d = malloc(sizeof *d);
    chat_bus_producer_t *p = producer_make(d, false, 5, NULL);
    produce_range(p, topic, CHAT_BUS_PARTITION_ANY, 0, 100);
    ck_assert_int_eq(chat_bus_producer_flush(p, WAIT_MS), CHAT_OK);
    ck_assert_int_eq(d->failures, 0);

    chat_metrics_t *m = chat_metrics_new();
    seen_t *a = calloc(1, sizeof *a);
    chat_bus_consumer_t *ca = group_consumer_every(topic, group, 500, m);
    chat_bus_consumer_t *manual = manual_consumer(topic, 0, CHAT_BUS_OFFSET_BEGINNING);
    ck_assert_int_eq(chat_bus_consumer_store(manual, NULL, 0), CHAT_ERR_INVALID);
    chat_bus_consumer_close(manual);
    /* 100 records in batches of at most 32, storing each. */
    consume_storing(ca, a, 100, WAIT_MS);
    ck_assert_int_eq(a->n, 100);
    /* An idle second: the stored offsets go out with the periodic commit. */
    seen_t *idle = calloc(1, sizeof *idle);
    consume_storing(ca, idle, 1, 1200);
    ck_assert_int_eq(idle->n, 0);
    uint64_t commits = metric_value(m, "chat_kafka_commits_total");
    ck_assert_msg(commits >= 1 && commits <= 4, "%llu commits for 100 stored records",
                  (unsigned long long)commits);

    /* A second member takes some partitions: the first commits before it gives them up. */
    produce_range(p, topic, CHAT_BUS_PARTITION_ANY, 100, 200);
    ck_assert_int_eq(chat_bus_producer_flush(p, WAIT_MS), CHAT_OK);
    ck_assert_int_eq(d->failures, 0);
    seen_t *b = calloc(1, sizeof *b);
    chat_bus_consumer_t *cb = group_consumer_every(topic, group, 500, NULL);
    int64_t deadline = chat_clock_mono_ms() + WAIT_MS;
    while (a->n + b->n < 250 && chat_clock_mono_ms() < deadline) {
        consume_storing(ca, a, a->n + 10, 200);
        consume_storing(cb, b, b->n + 10, 200);
    }
    /* The first closes; the second takes over and reads the rest. */
    chat_bus_consumer_close(ca);
    consume_storing(cb, b, 300 - a->n, WAIT_MS);
    assert_quiet(cb, 1500);
    chat_bus_consumer_close(cb);

    int times[300] = {0};
    for (int i = 0; i < a->n; i++)
        times[a->value[i]]++;
    for (int i = 0; i < b->n; i++)
        times[b->value[i]]++;
    for (int v = 0; v < 300; v++)
        ck_assert_msg(times[v] == 1, "record %d read %d times", v, times[v]);
    chat_bus_producer_destroy(p);
    chat_metrics_destroy(m);
    free(a);
    free(b);
    free(idle);
    free(d);
}
END_TEST

/* ---- (d) rebalance callbacks ---- */

/* What one consumer was told: its current assignment and whether each revocation listed
 * exactly what it owned. */
typedef struct owner {
    const char *topic;
    int assigns;
    int revokes;
    int bad_revokes;
    bool owned[8];
} owner_t;

static int owned_count(const owner_t *o)
{
    int n = 0;
    for (int i = 0; i < 8; i++)
        n += o->owned[i];
    return n;
}

static void on_rebalance(void *ud, bool assigned, const chat_bus_tp_t *tps, size_t n)
{
    owner_t *o = ud;
    if (assigned) {
        o->assigns++;
        for (size_t i = 0; i < n; i++) {
            ck_assert_str_eq(tps[i].topic, o->topic);
            ck_assert_int_lt(tps[i].partition, 8);
            o->owned[tps[i].partition] = true;
        }
        return;
    }
    o->revokes++;
    bool match = (int)n == owned_count(o);
    for (size_t i = 0; i < n; i++)
        match = match && tps[i].partition < 8 && o->owned[tps[i].partition];
    if (!match)
        o->bad_revokes++;
    memset(o->owned, 0, sizeof o->owned);
}

/* Polls both consumers until cond holds for the owners or timeout. */
static bool poll_until(chat_bus_consumer_t *c1, chat_bus_consumer_t *c2,
                       bool (*cond)(const owner_t *, const owner_t *), const owner_t *o1,
                       const owner_t *o2)
{
    chat_bus_record_t recs[8];
    int64_t deadline = chat_clock_mono_ms() + WAIT_MS;
    while (!cond(o1, o2) && chat_clock_mono_ms() < deadline) {
        size_t n = chat_bus_consumer_poll(c1, recs, 8, 100);
        chat_bus_records_release(recs, n);
        if (c2 != NULL) {
            n = chat_bus_consumer_poll(c2, recs, 8, 100);
            chat_bus_records_release(recs, n);
        }
    }
    return cond(o1, o2);
}

static bool first_owns_all(const owner_t *o1, const owner_t *o2)
{
    (void)o2;
    return owned_count(o1) == 3;
}

/* Both own part, together all three, none twice. */
static bool shared(const owner_t *o1, const owner_t *o2)
{
    for (int i = 0; i < 3; i++)
        if (o1->owned[i] == o2->owned[i])
            return false;
    return owned_count(o1) > 0 && owned_count(o2) > 0;
}

START_TEST(test_rebalance_callbacks)
{
    char topic[128], group[128];
    topic_make(topic, sizeof topic, "it-bus-rebalance", 3);
    chat_test_unique(group, sizeof group, "it-bus-rebalance-group");

    owner_t o1 = {.topic = topic}, o2 = {.topic = topic};
    chat_bus_consumer_t *c1 = group_consumer(topic, group, on_rebalance, &o1, NULL);
    ck_assert_msg(poll_until(c1, NULL, first_owns_all, &o1, &o2), "no assignment");
    ck_assert_int_eq(o1.assigns, 1);
    ck_assert(o1.owned[0] && o1.owned[1] && o1.owned[2]);

    /* A second member: the first gives everything back, then both get a share. */
    chat_bus_consumer_t *c2 = group_consumer(topic, group, on_rebalance, &o2, NULL);
    ck_assert_msg(poll_until(c1, c2, shared, &o1, &o2), "partitions not shared");
    ck_assert_int_ge(o1.revokes, 1);
    ck_assert_int_ge(o1.assigns, 2);

    /* Closing revokes exactly what each one owns. */
    int revokes2 = o2.revokes;
    chat_bus_consumer_close(c2);
    ck_assert_int_eq(o2.revokes, revokes2 + 1);
    ck_assert_int_eq(owned_count(&o2), 0);
    int revokes1 = o1.revokes;
    chat_bus_consumer_close(c1);
    ck_assert_int_ge(o1.revokes, revokes1 + 1);
    ck_assert_int_eq(owned_count(&o1), 0);
    ck_assert_int_eq(o1.bad_revokes, 0);
    ck_assert_int_eq(o2.bad_revokes, 0);
}
END_TEST

/* ---- (d2) a static member the broker fenced ---- */

/* Polls c until it owns a partition (o) or timeout; records are released. */
static bool poll_one_until_owned(chat_bus_consumer_t *c, const owner_t *o, int timeout_ms)
{
    chat_bus_record_t recs[8];
    int64_t deadline = chat_clock_mono_ms() + timeout_ms;
    while (owned_count(o) == 0 && chat_clock_mono_ms() < deadline) {
        size_t n = chat_bus_consumer_poll(c, recs, 8, 100);
        chat_bus_records_release(recs, n);
    }
    return owned_count(o) > 0;
}

static chat_bus_consumer_t *static_consumer(const char *topic, const char *group,
                                            const char *instance, owner_t *o,
                                            chat_metrics_t *metrics)
{
    const char *topics[] = {topic, NULL};
    chat_bus_consumer_conf_t conf = {.brokers = brokers,
                                     .client_id = "it-bus-static",
                                     .group_id = group,
                                     .group_instance_id = instance,
                                     .topics = topics,
                                     .on_rebalance = on_rebalance,
                                     .ud = o,
                                     .connect_timeout_ms = WAIT_MS,
                                     .metrics = metrics};
    chat_bus_consumer_t *c = NULL;
    ck_assert_int_eq(chat_bus_consumer_new(&conf, &c), CHAT_OK);
    return c;
}

/* A join under the same group.instance.id fences the first member, which librdkafka reports
 * as a fatal error: the handle never consumes again. (After a broker restart librdkafka
 * itself rejoins that way; the fault campaign found the message and broadcast services idle
 * for good after Kafka restarted.) The consumer must replace its handle: revoke what it owned,
 * subscribe anew, and consume what is produced next. */
START_TEST(test_fenced_static_member_renews)
{
    char topic[128], group[128], instance[128];
    topic_make(topic, sizeof topic, "it-bus-fenced", 1);
    chat_test_unique(group, sizeof group, "it-bus-fenced-group");
    chat_test_unique(instance, sizeof instance, "it-bus-fenced-instance");
    chat_metrics_t *m = chat_metrics_new();
    ck_assert_ptr_nonnull(m);

    owner_t o1 = {.topic = topic}, o2 = {.topic = topic};
    chat_bus_consumer_t *c1 = static_consumer(topic, group, instance, &o1, m);
    ck_assert_msg(poll_one_until_owned(c1, &o1, WAIT_MS), "first member got no partition");

    /* The same instance id again: the broker hands the partition to it and fences c1 (its
     * next heartbeat is answered FENCED_INSTANCE_ID). c1 is not polled meanwhile. */
    chat_bus_consumer_t *c2 = static_consumer(topic, group, instance, &o2, NULL);
    ck_assert_msg(poll_one_until_owned(c2, &o2, WAIT_MS), "second member got no partition");
    chat_clock_sleep_ms(5000); /* two heartbeat intervals: c1 has learnt it is fenced */
    chat_bus_consumer_close(c2);

    delivery_t *d = malloc(sizeof *d);
    chat_bus_producer_t *p = producer_make(d, true, 0, NULL);
    produce_range(p, topic, 0, 0, 3);
    ck_assert_int_eq(chat_bus_producer_flush(p, WAIT_MS), CHAT_OK);

    seen_t *s = calloc(1, sizeof *s);
    consume_until(c1, s, 3, WAIT_MS, true);
    ck_assert_msg(s->n == 3, "the fenced consumer got %d of 3 records", s->n);
    ck_assert_int_ge(o1.revokes, 1);
    ck_assert_int_ge(o1.assigns, 2);
    ck_assert_int_eq(o1.bad_revokes, 0);
    ck_assert_uint_eq(metric_value(m, "chat_kafka_consumer_renewals_total"), 1);

    chat_bus_consumer_close(c1);
    chat_bus_producer_destroy(p);
    chat_metrics_destroy(m);
    free(s);
    free(d);
}
END_TEST

/* ---- (e) manual mode ---- */

START_TEST(test_manual_from_end)
{
    char topic[128];
    topic_make(topic, sizeof topic, "it-bus-manual", 2);
    delivery_t *d = malloc(sizeof *d);
    chat_bus_producer_t *p = producer_make(d, false, 0, NULL);
    produce_range(p, topic, 0, 0, 10);
    produce_range(p, topic, 1, 100, 5); /* the other partition is never read */
    ck_assert_int_eq(chat_bus_producer_flush(p, WAIT_MS), CHAT_OK);

    /* Produced right after creation, with no pause: nothing may slip between. */
    chat_bus_consumer_t *from_end = manual_consumer(topic, 0, CHAT_BUS_OFFSET_END);
    produce_range(p, topic, 0, 10, 10);
    ck_assert_int_eq(chat_bus_producer_flush(p, WAIT_MS), CHAT_OK);
    ck_assert_int_eq(d->failures, 0);

    seen_t *s = calloc(1, sizeof *s);
    consume_until(from_end, s, 10, WAIT_MS, false);
    ck_assert_int_eq(s->n, 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(s->value[i], 10 + i);
        ck_assert_int_eq(s->partition[i], 0);
        ck_assert_int_eq(s->offset[i], 10 + i);
    }
    assert_quiet(from_end, 1000);
    chat_bus_record_t rec = {.topic = topic, .partition = 0, .offset = 3};
    ck_assert_int_eq(chat_bus_consumer_commit(from_end, &rec, 1, true), CHAT_ERR_INVALID);
    chat_bus_consumer_close(from_end);

    /* From the beginning and from an offset, in order. */
    memset(s, 0, sizeof *s);
    chat_bus_consumer_t *from_start = manual_consumer(topic, 0, CHAT_BUS_OFFSET_BEGINNING);
    consume_until(from_start, s, 20, WAIT_MS, false);
    ck_assert_int_eq(s->n, 20);
    for (int i = 0; i < 20; i++)
        ck_assert_int_eq(s->value[i], i);
    chat_bus_consumer_close(from_start);

    memset(s, 0, sizeof *s);
    chat_bus_consumer_t *from_five = manual_consumer(topic, 0, 5);
    consume_until(from_five, s, 15, WAIT_MS, false);
    ck_assert_int_eq(s->n, 15);
    ck_assert_int_eq(s->value[0], 5);
    ck_assert_int_eq(s->value[14], 19);
    assert_quiet(from_five, 500);
    chat_bus_consumer_close(from_five);

    chat_bus_producer_destroy(p);
    free(s);
    free(d);
}
END_TEST

/* ---- (f) flush ---- */

START_TEST(test_flush_waits_for_reports)
{
    char topic[128];
    topic_make(topic, sizeof topic, "it-bus-flush", 3);
    for (int thread = 0; thread < 2; thread++) {
        delivery_t *d = malloc(sizeof *d);
        /* A long linger: only flush makes these go out before 2 s. */
        chat_bus_producer_t *p = producer_make(d, thread == 1, 2000, NULL);
        d->slow = true;
        produce_range(p, topic, CHAT_BUS_PARTITION_ANY, 0, 60);
        ck_assert_int_gt(chat_bus_producer_outstanding(p), 0);
        int64_t start = chat_clock_mono_ms();
        ck_assert_int_eq(chat_bus_producer_flush(p, WAIT_MS), CHAT_OK);
        ck_assert_int_lt(chat_clock_mono_ms() - start, 1900);
        ck_assert_int_eq(delivery_calls(d), 60);
        ck_assert_int_eq(d->failures, 0);
        ck_assert_int_eq(chat_bus_producer_outstanding(p), 0);
        if (!thread)
            ck_assert_int_eq(chat_bus_producer_poll(p, 0), 0);
        /* Destroy has nothing left to wait for. */
        start = chat_clock_mono_ms();
        chat_bus_producer_destroy(p);
        ck_assert_int_lt(chat_clock_mono_ms() - start, 1000);
        free(d);
    }
}
END_TEST

int main(void)
{
    chat_test_stack_load();
    brokers = chat_test_stack_get("CHAT_KAFKA_BROKERS");
    chat_log_init("it-kafka-bus", CHAT_LOG_INFO);

    Suite *s = suite_create("kafka-bus");
    TCase *tc = tcase_create("kafka");
    tcase_set_timeout(tc, 180);
    tcase_add_test(tc, test_topics_ensure_and_grow);
    tcase_add_test(tc, test_produce_consume_keyed);
    tcase_add_test(tc, test_commit_and_restart);
    tcase_add_test(tc, test_store_commits_on_a_cadence);
    tcase_add_test(tc, test_rebalance_callbacks);
    tcase_add_test(tc, test_fenced_static_member_renews);
    tcase_add_test(tc, test_manual_from_end);
    tcase_add_test(tc, test_flush_waits_for_reports);
    suite_add_tcase(s, tc);
    return chat_test_suite_run(s, false);
}
