/* The message service's memory of each room's last seq: the rooms touched since their
 * chat.inbound partition was assigned to this process, with the seq last stored in each, so that
 * a batch plans without asking MongoDB. The pipeline loads a room from MongoDB on first touch
 * and records what it stored; a revoke forgets the partition's rooms, so that a new owner starts
 * from what is stored. Not thread-safe: the pipeline and the rebalance callback run on the
 * consumer's thread. */
#ifndef CHAT_MESSAGE_SEQUENCER_H
#define CHAT_MESSAGE_SEQUENCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct message_sequencer message_sequencer_t;

/* Creates an empty sequencer owning no partition. max_rooms bounds the rooms kept between
 * batches (message_sequencer_trim). NULL on allocation failure. */
message_sequencer_t *message_sequencer_new(size_t max_rooms);

/* Frees every room. Accepts NULL. */
void message_sequencer_destroy(message_sequencer_t *s);

/* Records that partitions were assigned to this process. */
chat_err_t message_sequencer_assign(message_sequencer_t *s, const int32_t *partitions, size_t n);

/* Gives up partitions and forgets exactly the rooms that were set through them. */
void message_sequencer_revoke(message_sequencer_t *s, const int32_t *partitions, size_t n);

/* True if partition is currently assigned to this process. */
bool message_sequencer_owns(const message_sequencer_t *s, int32_t partition);

/* True, with the room's last seq in *last, if tenant/room is remembered (it becomes the most
 * recently used); false if its next use must load it from MongoDB. */
bool message_sequencer_get(message_sequencer_t *s, const char *tenant, const char *room,
                           int64_t *last);

/* Remembers last as the room's last seq, under partition (whose revoke forgets it). Returns
 * CHAT_ERR_INVALID for names too long for a key, or CHAT_ERR_NOMEM (nothing changed). */
chat_err_t message_sequencer_set(message_sequencer_t *s, const char *tenant, const char *room,
                                 int32_t partition, int64_t last);

/* Forgets one room: its next use loads it again. */
void message_sequencer_forget(message_sequencer_t *s, const char *tenant, const char *room);

/* Number of rooms remembered. */
size_t message_sequencer_rooms(const message_sequencer_t *s);

/* Forgets the least recently used rooms beyond max_rooms. */
void message_sequencer_trim(message_sequencer_t *s);

#endif
