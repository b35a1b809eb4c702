/* Kafka for every service: an idempotent producer (acks=all, delivery reports, flush on
 * destroy) and a consumer that never commits on its own (the service commits after its
 * output is produced or written), with rebalance callbacks and batch polling.
 * Environment variables KAFKA_<NAME> are passed to librdkafka as <name> with '_' -> '.'
 * (KAFKA_LINGER_MS=2 sets linger.ms=2) after the project's own settings, so an operator can
 * override any of them; an unknown property fails creation with a log naming the variable. */
#ifndef CHAT_COMMON_BUS_H
#define CHAT_COMMON_BUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/metrics.h"

#define CHAT_BUS_PARTITION_ANY (-1) /* partition by key (murmur2, as the Java client) */
#define CHAT_BUS_OFFSET_BEGINNING (-2)
#define CHAT_BUS_OFFSET_END (-1)
#define CHAT_BUS_NO_WAIT (-1) /* chat_bus_producer_conf_t.queue_full_wait_ms */
/* linger.ms of a producer that flushes after every batch it produces: the records wait for
 * the flush (which sends at once, ignoring linger.ms) and then go out together, one request
 * per broker. With linger 0 the first record of a batch left alone in a request of its own
 * and the rest in a second one. */
#define CHAT_BUS_LINGER_UNTIL_FLUSH 1000

typedef struct chat_bus_producer chat_bus_producer_t;
typedef struct chat_bus_consumer chat_bus_consumer_t;

/* ---- producer ---- */

/* One call per produced record, from chat_bus_producer_poll/flush or the poll thread.
 * opaque is what was given to chat_bus_produce. err is CHAT_OK once the record is on all
 * in-sync replicas; otherwise reason says why (the record is lost for this producer). */
typedef void (*chat_bus_delivery_fn)(void *ud, void *opaque, chat_err_t err, const char *reason,
                                     int32_t partition, int64_t offset);

typedef struct chat_bus_producer_conf {
    const char *brokers;   /* bootstrap servers, required */
    const char *client_id; /* shows in broker logs and metrics */
    int linger_ms;         /* linger.ms, chosen per producer (each hop of the path pays it) */
    bool poll_thread;      /* serve delivery reports on an internal thread */
    chat_bus_delivery_fn on_delivery; /* may be NULL */
    void *ud;
    int connect_timeout_ms; /* >0: creation fails with CHAT_ERR_TIMEOUT if no broker answers */
    /* Optional: chat_kafka_produced_total{topic} and chat_kafka_produce_errors_total{topic},
     * created for each topic on its first record, or at creation for the topics listed. */
    chat_metrics_t *metrics;
    const char *const *topics; /* NULL-terminated, may be NULL: topics this producer writes */
    /* How long chat_bus_produce waits for room in a full local queue: 0 means 5 s;
     * CHAT_BUS_NO_WAIT fails at once, for threads that must not block (an event loop). */
    int queue_full_wait_ms;
} chat_bus_producer_conf_t;

/* Creates the producer. Returns CHAT_ERR_CONFIG on a bad KAFKA_* variable (logged with
 * its name), CHAT_ERR_TIMEOUT if connect_timeout_ms passed without broker metadata. */
chat_err_t chat_bus_producer_new(const chat_bus_producer_conf_t *conf, chat_bus_producer_t **out);

/* Queues one record; copies key and value. partition may be CHAT_BUS_PARTITION_ANY.
 * Never blocks for the broker; if the local queue is full it serves delivery reports
 * and retries for up to queue_full_wait_ms (see the conf), then returns CHAT_ERR_TIMEOUT. */
chat_err_t chat_bus_produce(chat_bus_producer_t *p, const char *topic, int32_t partition,
                            const void *key, size_t keylen, const void *value, size_t len,
                            void *opaque);

/* Serves delivery reports for up to timeout_ms. Returns the number served.
 * Not needed (and not allowed) with poll_thread. */
int chat_bus_producer_poll(chat_bus_producer_t *p, int timeout_ms);

/* Waits until every record produced so far has its delivery report (callbacks run).
 * Returns CHAT_ERR_TIMEOUT if some are still in flight after timeout_ms. */
chat_err_t chat_bus_producer_flush(chat_bus_producer_t *p, int timeout_ms);

/* Records queued and not yet reported. */
int chat_bus_producer_outstanding(chat_bus_producer_t *p);

/* How long the producer has had records outstanding without the broker acknowledging any:
 * ms since the last acknowledged record, or since the first record produced while none was
 * outstanding; 0 while nothing is outstanding. A few seconds of it means the brokers cannot
 * be reached (or cannot take records): nothing produced now would be acknowledged soon. */
int64_t chat_bus_producer_stalled_ms(chat_bus_producer_t *p);

/* Number of partitions of topic, asked over the producer's own broker connections (no new
 * client, unlike chat_bus_topic_partitions), or -1 if the topic does not exist or brokers
 * do not answer within timeout_ms. Meant for a topic the producer writes to: the lookup
 * counts as a use of the topic, so a broker that auto-creates topics may create it. */
int chat_bus_producer_partitions(chat_bus_producer_t *p, const char *topic, int timeout_ms);

/* Flushes for up to 10 s (logging how many records were lost if that is not enough),
 * stops the poll thread and frees. Accepts NULL. */
void chat_bus_producer_destroy(chat_bus_producer_t *p);

/* ---- consumer ---- */

typedef struct chat_bus_record {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key; /* NULL if the record has no key */
    size_t keylen;
    const void *value;
    size_t len;
    int64_t timestamp_ms; /* producer create time, or -1 */
    void *priv_;          /* the librdkafka message; released by chat_bus_records_release */
} chat_bus_record_t;

typedef struct chat_bus_tp {
    const char *topic;
    int32_t partition;
} chat_bus_tp_t;

/* Called from chat_bus_consumer_poll when partitions are assigned (assigned=true) or about
 * to be revoked (false; offsets of finished work should already be committed). */
typedef void (*chat_bus_rebalance_fn)(void *ud, bool assigned, const chat_bus_tp_t *tps, size_t n);

typedef struct chat_bus_consumer_conf {
    const char *brokers; /* required */
    const char *client_id;
    /* Group mode: subscribe to topics (NULL-terminated) as group_id. */
    const char *group_id;
    /* Optional static membership (group.instance.id, unique per instance): a restarted
     * instance with the same id gets its partitions back at once instead of after a
     * rebalance; a stopped one keeps them until the session times out. NULL: dynamic. */
    const char *group_instance_id;
    const char *const *topics;
    chat_bus_rebalance_fn on_rebalance; /* may be NULL */
    void *ud;
    const char *auto_offset_reset; /* where a group without committed offsets starts;
                                      NULL = "earliest" */
    /* Manual mode (group_id == NULL): read exactly one partition from a start offset,
     * without a group and without commits. */
    const char *assign_topic;
    int32_t assign_partition;
    int64_t assign_offset;  /* CHAT_BUS_OFFSET_END, CHAT_BUS_OFFSET_BEGINNING or an offset */
    int connect_timeout_ms; /* >0: creation fails with CHAT_ERR_TIMEOUT if no broker answers */
    /* Optional: chat_kafka_consumed_total{topic} (created for the configured topics),
     * chat_kafka_commits_total, chat_kafka_consume_errors_total, and
     * chat_kafka_consumer_lag{topic,partition} for the assigned partitions (high watermark -
     * committed offset, or - position without a commit: common/kafka_stats.h), from librdkafka's
     * statistics (statistics.interval.ms 5000, KAFKA_STATISTICS_INTERVAL_MS to change; they
     * are served by chat_bus_consumer_poll). A revoked partition's lag is set to 0. */
    chat_metrics_t *metrics;
    /* Group mode: > 0 commits on a cadence: the service marks finished records with
     * chat_bus_consumer_store and the stored offsets are committed every commit_interval_ms,
     * before partitions are revoked and on close. A crash replays at most that much, which
     * consumers whose output is idempotent absorb; a commit per batch would cost the broker a
     * request (and a write to __consumer_offsets) per batch. 0: chat_bus_consumer_commit. */
    int commit_interval_ms;
    /* How long the broker may hold a fetch to gather fetch_min_bytes (librdkafka's
     * fetch.wait.max.ms and fetch.min.bytes); 0 keeps librdkafka's default. Larger values
     * mean fewer, fuller fetch responses and up to fetch_wait_max_ms more latency. */
    int fetch_wait_max_ms;
    int fetch_min_bytes;
} chat_bus_consumer_conf_t;

chat_err_t chat_bus_consumer_new(const chat_bus_consumer_conf_t *conf, chat_bus_consumer_t **out);

/* Waits up to timeout_ms for a first record, then adds whatever else is already fetched, up
 * to max. Returns how many records were stored in recs (0 on timeout). Each must be given
 * back with chat_bus_records_release. Rebalance callbacks run inside this call.
 * Consumer errors are logged and counted, never returned as records. */
size_t chat_bus_consumer_poll(chat_bus_consumer_t *c, chat_bus_record_t *recs, size_t max,
                              int timeout_ms);

/* Frees the records' memory. */
void chat_bus_records_release(chat_bus_record_t *recs, size_t n);

/* Commits, per partition present in recs, the offset after its highest record. sync waits
 * for the broker's answer. Group mode only. */
chat_err_t chat_bus_consumer_commit(chat_bus_consumer_t *c, const chat_bus_record_t *recs, size_t n,
                                    bool sync);

/* Marks recs as finished (commit_interval_ms > 0): per partition present in recs, the offset
 * after its highest record is stored, to be committed with the next periodic commit, before
 * a revoke or on close. Records of partitions no longer assigned are ignored. Returns
 * CHAT_ERR_INVALID in manual mode or without a commit interval. */
chat_err_t chat_bus_consumer_store(chat_bus_consumer_t *c, const chat_bus_record_t *recs, size_t n);

/* Leaves the group (the revoke callback runs) and frees. Commits nothing but what
 * chat_bus_consumer_store stored. Accepts NULL. */
void chat_bus_consumer_close(chat_bus_consumer_t *c);

/* ---- admin ---- */

typedef struct chat_bus_topic_spec {
    const char *name;
    int partitions;
    int replication;            /* -1: the broker's default */
    const char *const *configs; /* NULL-terminated "key=value" list, may be NULL */
} chat_bus_topic_spec_t;

/* Creates the topics that do not exist yet; an existing topic with fewer partitions than
 * asked gets more (Kafka cannot reduce them: that case is logged and left alone).
 * Returns the first failure. */
chat_err_t chat_bus_topics_ensure(const char *brokers, const chat_bus_topic_spec_t *specs, size_t n,
                                  int timeout_ms);

/* Number of partitions of topic, or -1 if the topic does not exist or brokers do not
 * answer within timeout_ms. */
int chat_bus_topic_partitions(const char *brokers, const char *topic, int timeout_ms);

/* The partition counts of n topics through one client, within timeout_ms in all:
 * partitions[i] is the count of topics[i], or -1 if it does not exist. Returns CHAT_OK, or
 * CHAT_ERR_TIMEOUT (no broker answered), CHAT_ERR_CONFIG (a bad KAFKA_* variable). */
chat_err_t chat_bus_topics_partitions(const char *brokers, const char *const *topics, size_t n,
                                      int timeout_ms, int *partitions);

/* ---- consumer groups, from the brokers' side (chat-admin lag serve) ---- */

/* A long-lived admin client (KAFKA_* variables apply; it never auto-creates a topic). */
typedef struct chat_bus_admin chat_bus_admin_t;

/* Waits up to timeout_ms for a broker. CHAT_ERR_CONFIG (bad KAFKA_* variable),
 * CHAT_ERR_TIMEOUT, CHAT_ERR_KAFKA, all logged. */
chat_err_t chat_bus_admin_new(const char *brokers, int timeout_ms, chat_bus_admin_t **out);
void chat_bus_admin_destroy(chat_bus_admin_t *a); /* accepts NULL */

/* The names of every consumer group the cluster knows (groups without members but with
 * committed offsets included). *groups is malloc'd, free it with chat_bus_strings_free.
 * CHAT_ERR_KAFKA (logged) if the request failed (*n = 0), or if some broker did not answer:
 * then the groups of the others are still returned. */
chat_err_t chat_bus_groups_list(chat_bus_admin_t *a, int timeout_ms, char ***groups, size_t *n);
void chat_bus_strings_free(char **s, size_t n);

typedef struct chat_bus_offset {
    char *topic;
    int32_t partition;
    int64_t offset; /* committed: the next record the group reads; -1 if none */
} chat_bus_offset_t;

/* The committed offsets of group, every partition it committed to. *out is malloc'd, free
 * it with chat_bus_offsets_free. A group unknown to the cluster has none (CHAT_OK, n 0).
 * CHAT_ERR_KAFKA (logged) if the request failed, or some partition's offset could not be
 * read (those are left out). */
chat_err_t chat_bus_group_offsets(chat_bus_admin_t *a, const char *group, int timeout_ms,
                                  chat_bus_offset_t **out, size_t *n);
void chat_bus_offsets_free(chat_bus_offset_t *o, size_t n);

typedef struct chat_bus_watermarks {
    int partitions;
    int64_t *low;  /* by partition: the earliest retained offset */
    int64_t *high; /* by partition: the offset the next record will get */
} chat_bus_watermarks_t;

/* The watermarks of every partition of topic (one request per partition). CHAT_ERR_NOT_FOUND
 * if the topic does not exist, CHAT_ERR_TIMEOUT or CHAT_ERR_KAFKA (logged) otherwise. Free
 * with chat_bus_watermarks_free. */
chat_err_t chat_bus_topic_watermarks(chat_bus_admin_t *a, const char *topic, int timeout_ms,
                                     chat_bus_watermarks_t *out);
void chat_bus_watermarks_free(chat_bus_watermarks_t *w);

#endif
