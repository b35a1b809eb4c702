/* The broadcast loop: poll a batch of chat.messages and chat.events (one subscription to
 * both), decode it, look up the followers of
 * its rooms in Redis, fan it out into per-gateway chat.deliver records, produce and flush
 * them, then commit the input offsets. Owns its Kafka and Redis clients. */
#ifndef CHAT_BROADCAST_PIPELINE_H
#define CHAT_BROADCAST_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "common/metrics.h"

typedef struct broadcast_pipeline broadcast_pipeline_t;

typedef struct broadcast_pipeline_conf {
    const char *brokers;
    const char *redis_url;
    const char *group;          /* consumer group on messages_topic and events_topic */
    const char *instance_id;    /* static membership id, "" for none */
    const char *messages_topic; /* chat.messages */
    const char *deliver_topic;  /* chat.deliver */
    const char *events_topic;   /* chat.events: typing, presence */
    size_t batch_max;           /* records per poll */
    int connect_timeout_ms;     /* for Kafka, Redis and Redis commands */
    int commit_interval_ms;     /* finished offsets are committed on this cadence */
    chat_metrics_t *metrics;    /* borrowed; must outlive the pipeline */
} broadcast_pipeline_conf_t;

/* Connects to Redis and Kafka (producer, then the consumer group) and reads the partition
 * count of the deliver topic, all within connect_timeout_ms. On failure returns the error
 * (logged) and sets *bad_var to the configuration variable to look at. Free with
 * broadcast_pipeline_free. */
chat_err_t broadcast_pipeline_new(const broadcast_pipeline_conf_t *conf, broadcast_pipeline_t **out,
                                  const char **bad_var);

/* Processes batches until a stop is requested (common/signals.h). Returns CHAT_OK after the
 * last batch is produced and committed; CHAT_ERR_STOPPED if the stop came while Redis was
 * failing (that batch was not committed and will be consumed again); CHAT_ERR_KAFKA if
 * producing failed (nothing of that batch was committed: the caller exits non-zero). */
chat_err_t broadcast_pipeline_run(broadcast_pipeline_t *p);

/* chat_ops_ready_fn: ready once the consumer joined its group and while Redis answers. */
bool broadcast_pipeline_ready(void *pipeline, char *reason, size_t reason_len);

/* Leaves the group, flushes the producer, closes Redis and frees. Accepts NULL. */
void broadcast_pipeline_free(broadcast_pipeline_t *p);

#endif
