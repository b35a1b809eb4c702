/* The message service's Kafka side: the group consumer of chat.inbound and chat.moderation,
 * whose rebalances assign and revoke chat.inbound's partitions in the sequencer (the range
 * assignor gives chat.moderation's partitions of the same numbers to the same member), and
 * the chat.messages producer, whose failed deliveries turn a flush into an error. Implements
 * the pipeline's bus port. One thread. */
#ifndef CHAT_MESSAGE_MESSAGE_BUS_H
#define CHAT_MESSAGE_MESSAGE_BUS_H

#include <stddef.h>

#include "common/bus.h"
#include "common/metrics.h"
#include "services/message/pipeline.h"
#include "services/message/sequencer.h"

typedef struct message_bus message_bus_t;

typedef struct message_bus_conf {
    const char *brokers;
    const char *inbound_topic;    /* consumed: chat.inbound (common/contract.h) */
    const char *moderation_topic; /* consumed: chat.moderation; NULL: not consumed */
    const char *messages_topic;   /* produced: chat.messages */
    const char *group;
    const char *instance_id; /* static group membership id, "" for none */
    const char *client_id;
    int connect_timeout_ms;
    int flush_timeout_ms;
    int commit_interval_ms;         /* stored offsets are committed on this cadence */
    message_sequencer_t *sequencer; /* borrowed: told about assignments and revocations */
    chat_metrics_t *metrics;        /* borrowed, may be NULL */
} message_bus_conf_t;

/* Creates the producer, then the consumer (subscribed to chat.inbound and chat.moderation). Returns
 * the failing creation's error (CHAT_ERR_TIMEOUT: no broker answered; CHAT_ERR_CONFIG: a bad
 * KAFKA_* variable, logged with its name). */
chat_err_t message_bus_open(const message_bus_conf_t *conf, message_bus_t **out);

/* Polls at most max records, waiting up to timeout_ms for the first; never waits for more. */
size_t message_bus_poll(message_bus_t *b, chat_bus_record_t *recs, size_t max, int timeout_ms);

/* Fills port with this bus's functions (ctx = b). */
void message_bus_port(message_bus_t *b, message_bus_port_t *port);

/* Leaves the group (commits nothing), flushes and destroys the producer, frees. Accepts NULL. */
void message_bus_close(message_bus_t *b);

#endif
