/* The message service's per-room seq counters: the last seq of every room touched since its
 * chat.inbound partition was assigned to this process, loaded from MongoDB on first touch and
 * forgotten when that partition is revoked, so that a new owner starts from what is stored.
 * Not thread-safe: the pipeline and the rebalance callback run on the consumer's thread. */
#ifndef CHAT_MESSAGE_SEQUENCER_H
#define CHAT_MESSAGE_SEQUENCER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct message_sequencer message_sequencer_t;

/* Reads the highest stored seq of tenant/room into *highest (0 for a room without messages).
 * Any error is returned to the caller of message_sequencer_last unchanged. */
typedef chat_err_t (*message_seq_load_fn)(void *ctx, const char *tenant, const char *room,
                                          int64_t *highest);

/* Creates an empty sequencer owning no partition. load and ctx are borrowed. max_rooms bounds
 * the rooms kept between batches (message_sequencer_trim). NULL on allocation failure. */
message_sequencer_t *message_sequencer_new(message_seq_load_fn load, void *ctx, size_t max_rooms);

/* Frees every room. Accepts NULL. */
void message_sequencer_destroy(message_sequencer_t *s);

/* Records that partitions were assigned to this process. */
chat_err_t message_sequencer_assign(message_sequencer_t *s, const int32_t *partitions, size_t n);

/* Gives up partitions and forgets exactly the rooms that were touched through them. */
void message_sequencer_revoke(message_sequencer_t *s, const int32_t *partitions, size_t n);

/* True if partition is currently assigned to this process. */
bool message_sequencer_owns(const message_sequencer_t *s, int32_t partition);

/* Stores the room's last seq in *last, loading it through the loader on first touch; the room
 * is then remembered under partition. Returns the loader's error (nothing is remembered),
 * CHAT_ERR_INVALID for names too long for a key, or CHAT_ERR_NOMEM. */
chat_err_t message_sequencer_last(message_sequencer_t *s, const char *tenant, const char *room,
                                  int32_t partition, int64_t *last);

/* Takes the next seq of a room that message_sequencer_last already returned: last + 1, which
 * becomes the room's last. Returns 0 (and changes nothing) for an unknown room. */
int64_t message_sequencer_next(message_sequencer_t *s, const char *tenant, const char *room);

/* Raises a known room's last seq to seq if it is lower (a stored message seen again). */
void message_sequencer_observe(message_sequencer_t *s, const char *tenant, const char *room,
                               int64_t seq);

/* Forgets one room: its next touch loads it again. */
void message_sequencer_forget(message_sequencer_t *s, const char *tenant, const char *room);

/* Number of rooms remembered. */
size_t message_sequencer_rooms(const message_sequencer_t *s);

/* Forgets the least recently touched rooms beyond max_rooms. Call between batches only: a
 * room forgotten in the middle of a batch would be reloaded without that batch's seqs. */
void message_sequencer_trim(message_sequencer_t *s);

#endif
