/* The message service's reading of mutes (common/mutes.h) in Redis: which of a batch's
 * senders are muted (one HMGET per tenant) and whether a tenant has any mute at all (EXISTS of
 * its hash, for the pipeline's hint). Implements the pipeline's mutes port over its own Redis
 * connection. Used from one thread. */
#ifndef CHAT_MESSAGE_MESSAGE_MUTES_H
#define CHAT_MESSAGE_MESSAGE_MUTES_H

#include "common/err.h"
#include "services/message/pipeline.h"

typedef struct message_mutes message_mutes_t;

/* Connects to url within timeout_ms (also the command timeout). Returns CHAT_ERR_CONFIG for a
 * bad URL, CHAT_ERR_REDIS (logged) if Redis cannot be reached, CHAT_ERR_NOMEM. */
chat_err_t message_mutes_open(const char *url, int timeout_ms, message_mutes_t **out);

/* Accepts NULL. */
void message_mutes_close(message_mutes_t *mm);

/* Fills port with this reader's functions (ctx = mm). */
void message_mutes_port(message_mutes_t *mm, message_mutes_port_t *port);

#endif
