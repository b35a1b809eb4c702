/* Kafka lag arithmetic, kept apart from the clients so it can be tested without a broker:
 * the consumer lag of each partition in librdkafka's statistics JSON (the bus's
 * chat_kafka_consumer_lag gauges), and a consumer group's lag from its committed offsets
 * and the partitions' watermarks (chat-admin lag serve). */
#ifndef CHAT_COMMON_KAFKA_STATS_H
#define CHAT_COMMON_KAFKA_STATS_H

#include <stddef.h>
#include <stdint.h>

/* One partition's lag as found in the statistics. topic is borrowed from the parse and only
 * valid during the callback. */
typedef void (*chat_kafka_stats_lag_fn)(void *ud, const char *topic, int32_t partition,
                                        int64_t lag);

/* Walks the statistics JSON librdkafka hands its stats callback (len bytes, need not be
 * NUL-terminated) and calls fn for every real partition (the internal "unassigned" partition
 * -1 is skipped) whose lag is known, chosen in this order:
 *   consumer_lag          high watermark - committed offset (group consumers that commit);
 *   consumer_lag_stored   high watermark - stored offset (stored, not yet committed);
 *   hi_offset - app_offset  high watermark - the next record the application will be given
 *                         (consumers that never commit, e.g. a manual assignment).
 * A partition with none of these (nothing fetched, nothing committed) is skipped: its lag
 * is unknown, not 0. Returns the number of partitions reported, or -1 if the text is not
 * a JSON object. Partitions listed are every partition librdkafka knows of for the topics
 * the handle uses, assigned or not: the caller filters by its assignment. */
int chat_kafka_stats_lags(const char *json, size_t len, chat_kafka_stats_lag_fn fn, void *ud);

/* A partition's lag for a consumer group: high - committed, or high - low when the group has
 * no committed offset for it (committed < 0): a group that starts reading at the earliest
 * offset has every retained record ahead of it. Never negative (a committed offset past the
 * high watermark, e.g. after the topic was recreated, counts 0). */
int64_t chat_kafka_partition_lag(int64_t low, int64_t high, int64_t committed);

/* Sum and maximum of the lags of a topic's n partitions; committed[i] < 0 means none. */
typedef struct chat_kafka_topic_lag {
    int64_t sum;
    int64_t max;
} chat_kafka_topic_lag_t;

chat_kafka_topic_lag_t chat_kafka_topic_lag(const int64_t *low, const int64_t *high,
                                            const int64_t *committed, size_t n);

#endif
