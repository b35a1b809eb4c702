/* The write of a room's recent history in Redis (the sorted set of chat_recent_key,
 * common/contract.h): one MULTI/EXEC transaction that merges messages into the set, renews
 * its run_id marker, trims it to the newest messages and sets its expiry. The message service
 * writes each batch's messages with it before publishing them; a gateway fills a cold room
 * with what it read from MongoDB. Both write exactly the same way, so the set means the same
 * whoever wrote it last. */
#ifndef CHAT_COMMON_RECENT_H
#define CHAT_COMMON_RECENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/redis.h"

/* One message of the set. */
typedef struct chat_recent_entry {
    int64_t seq;       /* > 0 */
    const char *frame; /* the msg frame's bytes (chat_frame_msg_new printed compactly) */
    size_t len;
} chat_recent_entry_t;

/* Queues (chat_redis_append) one transaction on key: MULTI; the marker (score 0) replaced by
 * run_id, unless run_id is NULL (a write that cannot vouch for the set's top: the marker stays
 * as it is); for each run of consecutive seqs among the n entries (ascending, distinct), every
 * member the set holds at those seqs removed, so that a message has one member even if its
 * bytes were to change; the entries added; everything but the lowest member (the marker) and
 * the newest max messages removed; the key's expiry set to ttl_ms; EXEC. n may be 0 (only the
 * marker: a room known to hold no message). *replies gets how many replies were queued, which
 * the caller reads with chat_recent_merge_result even when this fails. Returns
 * CHAT_ERR_INVALID (max or ttl_ms below 1, seqs not ascending or not positive, nothing to
 * write: nothing queued), CHAT_ERR_NOMEM or CHAT_ERR_REDIS (the connection could not be
 * made). */
chat_err_t chat_recent_queue_merge(chat_redis_t *r, const char *key, const char *run_id,
                                   const chat_recent_entry_t *entries, size_t n, int64_t max,
                                   int64_t ttl_ms, size_t *replies);

/* Reads the replies of a queued merge (replies of them, all of them in every case). Returns
 * CHAT_OK with *applied true if the transaction ran, or false if it was discarded because a
 * key the connection WATCHed changed meanwhile (EXEC answered nil); CHAT_ERR_REDIS (logged) if
 * a command failed or the connection was lost; CHAT_ERR_INVALID if replies is 0. */
chat_err_t chat_recent_merge_result(chat_redis_t *r, size_t replies, bool *applied);

#endif
