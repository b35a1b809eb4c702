/* MongoDB `reads` for the message service: one document per (tenant, room, user) {tenant,
 * room, user, seq, ts}, moved forward only by a conditional upsert. Implements the pipeline's
 * reads port (services/message/reads.h). Used from the consumer thread only. */
#ifndef CHAT_MESSAGE_READS_STORE_H
#define CHAT_MESSAGE_READS_STORE_H

#include "common/err.h"
#include "common/store.h"
#include "services/message/reads.h"

typedef struct message_reads_store message_reads_store_t;

/* Ensures the indexes of `reads` -- unique (tenant, room, user): the mark, and the upsert's
 * guard; (tenant, user): a user's marks for the room list -- and returns the store (store is
 * borrowed). The index's error, or CHAT_ERR_NOMEM. */
chat_err_t message_reads_store_open(chat_store_t *store, message_reads_store_t **out);

/* Accepts NULL. */
void message_reads_store_close(message_reads_store_t *rs);

/* Fills port with this store's functions (ctx = rs). */
void message_reads_store_port(message_reads_store_t *rs, message_reads_port_t *port);

#endif
