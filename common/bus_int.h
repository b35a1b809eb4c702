/* Internal to the bus module (common/bus.c and common/bus_admin.c): what the topic
 * administration borrows from the client set-up. bus.c defines everything here and does not
 * call into bus_admin.c, so the dependency runs one way. Not for use by services. */
#ifndef CHAT_COMMON_BUS_INT_H
#define CHAT_COMMON_BUS_INT_H

#include <librdkafka/rdkafka.h>

#include "common/err.h"

/* A producer-type handle that only carries admin requests, with the base settings and the
 * KAFKA_* variables (security settings apply to admin traffic too). It never asks brokers to
 * auto-create a topic it looks up. Waits up to timeout_ms for the brokers. Returns CHAT_OK
 * with *out (the caller destroys it with rd_kafka_destroy), CHAT_ERR_CONFIG on a bad KAFKA_*
 * variable, CHAT_ERR_TIMEOUT if no broker answered. */
chat_err_t chat_bus__admin_handle_new(const char *brokers, int timeout_ms, rd_kafka_t **out);

/* The entry of topic name in md, or NULL. Borrowed from md. */
const rd_kafka_metadata_topic_t *chat_bus__metadata_topic(const struct rd_kafka_metadata *md,
                                                          const char *name);

/* The partition count of topic through rk; -1 if it does not exist; CHAT_BUS__NO_ANSWER if no
 * broker answered within timeout_ms (logged). */
#define CHAT_BUS__NO_ANSWER (-2)
int chat_bus__partitions(rd_kafka_t *rk, const char *topic, int timeout_ms);

#endif
