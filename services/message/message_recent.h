/* The message service's use of Redis: the recent history of every room a batch wrote
 * (common/recent.h, key and contents in common/contract.h), one transaction per room and all
 * of a batch's rooms in one round trip. Implements the pipeline's recent port. With a bound of
 * 0 it keeps no history but deletes each written room's key instead, so that what a gateway
 * may have filled in from MongoDB never outlives the room's next message. Used from one
 * thread. */
#ifndef CHAT_MESSAGE_MESSAGE_RECENT_H
#define CHAT_MESSAGE_MESSAGE_RECENT_H

#include <stdint.h>

#include "common/err.h"
#include "services/message/pipeline.h"

typedef struct message_recent message_recent_t;

/* Connects to url within timeout_ms (also the command timeout). max: the newest messages kept
 * per room (0: none, keys deleted); ttl_ms: the keys' expiry after their last write. Returns
 * CHAT_ERR_CONFIG for a bad URL, CHAT_ERR_REDIS (logged) if Redis cannot be reached,
 * CHAT_ERR_INVALID, CHAT_ERR_NOMEM. */
chat_err_t message_recent_open(const char *url, int timeout_ms, int64_t max, int64_t ttl_ms,
                               message_recent_t **out);

/* Accepts NULL. */
void message_recent_close(message_recent_t *mr);

/* Fills port with this writer's functions (ctx = mr). */
void message_recent_port(message_recent_t *mr, message_recent_port_t *port);

#endif
