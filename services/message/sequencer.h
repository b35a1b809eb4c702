/* Where a room's seqs are assigned. The sequencer remembers, for the rooms touched since
 * their chat.inbound partition was assigned to this process, the last seq stored in each, so
 * that a batch plans without asking MongoDB; and a batch assigns each send of a room the
 * room's next seq through a plan (message_seq_plan_t) that holds, in one place, the highest
 * seq known to be taken and the last one the plan handed out. A room the sequencer does not
 * remember is loaded from MongoDB by the pipeline; a revoke forgets the partition's rooms, so
 * that a new owner starts from what is stored. Not thread-safe: the pipeline and the
 * rebalance callback run on the consumer's thread. */
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

/* ---- a batch's plan for one room ---- */

/* One room's seqs while a batch is planned and stored. Only the functions below change it. */
typedef struct message_seq_plan {
    int64_t last;    /* highest seq known to be taken: remembered, loaded, stored or found */
    int64_t planned; /* last seq handed out by the current plan */
} message_seq_plan_t;

/* Starts tenant/room's plan from what the sequencer remembers. Returns true if it did;
 * false if the room must first be loaded from MongoDB (message_seq_plan_taken with the
 * highest stored seq, 0 for an empty room). */
bool message_sequencer_plan_begin(message_sequencer_t *s, const char *tenant, const char *room,
                                  message_seq_plan_t *plan);

/* seq is taken (stored by this batch, found stored, or the highest stored): raises what the
 * plan knows is taken. Every lower seq is taken too (stored documents are prefixes of
 * plans). */
void message_seq_plan_taken(message_seq_plan_t *plan, int64_t seq);

/* Starts a new plan from what is known taken (after a duplicate key changed what is known). */
void message_seq_plan_restart(message_seq_plan_t *plan);

/* The room's next seq in the current plan: each call hands out the following one, so the
 * sends of a room planned in order take consecutive seqs. */
int64_t message_seq_plan_next(message_seq_plan_t *plan);

/* Ends the plan of tenant/room (through partition): if stored, the sequencer remembers
 * plan->last as the room's last seq; if not (the batch failed, or the room could not be
 * remembered), it forgets the room, whose next use loads it again. */
void message_sequencer_plan_end(message_sequencer_t *s, const char *tenant, const char *room,
                                int32_t partition, const message_seq_plan_t *plan, bool stored);

/* ---- the rooms remembered ---- */

/* True, with the room's last seq in *last, if tenant/room is remembered (it becomes the most
 * recently used); false if its next use must load it from MongoDB. */
bool message_sequencer_get(message_sequencer_t *s, const char *tenant, const char *room,
                           int64_t *last);

/* Remembers last as the room's last seq, under partition (whose revoke forgets it). Returns
 * CHAT_ERR_INVALID for names too long for a key, or CHAT_ERR_NOMEM (nothing changed). */
chat_err_t message_sequencer_set(message_sequencer_t *s, const char *tenant, const char *room,
                                 int32_t partition, int64_t last);

/* ---- a room's update sequence (useq: edits, deletes, reactions), the same way ----
 * Remembered beside the room's seq, under the same partition, and forgotten with it; each
 * of the two may be known without the other. */

/* True, with the room's last useq in *last_useq, if it is remembered; false if it must be
 * loaded (the highest useq of the room's update records). */
bool message_sequencer_useq_get(message_sequencer_t *s, const char *tenant, const char *room,
                                int64_t *last_useq);

/* Remembers last_useq as the room's last useq, under partition. CHAT_ERR_INVALID for names
 * too long for a key, or CHAT_ERR_NOMEM (nothing changed). */
chat_err_t message_sequencer_useq_set(message_sequencer_t *s, const char *tenant, const char *room,
                                      int32_t partition, int64_t last_useq);

/* Forgets one room (seq and useq): its next use loads it again. */
void message_sequencer_forget(message_sequencer_t *s, const char *tenant, const char *room);

/* Number of rooms remembered. */
size_t message_sequencer_rooms(const message_sequencer_t *s);

/* Forgets the least recently used rooms beyond max_rooms. */
void message_sequencer_trim(message_sequencer_t *s);

#endif
