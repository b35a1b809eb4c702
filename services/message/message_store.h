/* The message service's use of MongoDB (the `messages` collection): its unique indexes, the
 * ordered batch insert through chat_store_insert_many, and the reads of the rare paths: the
 * highest seq of rooms touched for the first time, the stored messages matching sends that met
 * a duplicate key, which ids exist. Implements the pipeline's store port. Used from one thread. */
#ifndef CHAT_MESSAGE_MESSAGE_STORE_H
#define CHAT_MESSAGE_MESSAGE_STORE_H

#include "common/err.h"
#include "common/store.h"
#include "services/message/pipeline.h"

#define MESSAGE_COLLECTION "messages"

typedef struct message_store message_store_t;

/* Wraps store (borrowed; must outlive the result) and creates the unique indexes room_seq
 * (tenant, room, seq) and room_sender_cid (tenant, room, from, cid) if missing. Returns the
 * index creation's error (logged) or CHAT_ERR_NOMEM. */
chat_err_t message_store_open(chat_store_t *store, message_store_t **out);

/* Accepts NULL. */
void message_store_close(message_store_t *ms);

/* Fills port with this store's functions (ctx = ms). */
void message_store_port(message_store_t *ms, message_store_port_t *port);

#endif
