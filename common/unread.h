/* Read marks and unread counts as the gateway's joins and the room lists (the gateway's and
 * the server API's) read them, on threads that may block: a user's mark in a room (MongoDB
 * `reads`, written by the message service), and the exact number of others' messages above
 * it, deleted and removed ones not counted -- from the room's recent history in Redis when it
 * holds every message above the mark (one round trip), otherwise one count on MongoDB
 * `messages` (the room_seq index: tenant, room, seq). */
#ifndef CHAT_COMMON_UNREAD_H
#define CHAT_COMMON_UNREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mongoc/mongoc.h>

#include "common/err.h"
#include "common/recent.h"
#include "common/recent_read.h"
#include "common/redis.h"
#include "common/store.h"

#define CHAT_READS_COLLECTION "reads"

/* Whether a msg frame counts as unread for user: someone else's, neither deleted nor
 * removed. A frame that does not parse counts (better a badge too many than a lost one). */
bool chat_unread_frame_counts(const char *frame, size_t len, const char *user);

/* Decides the unread count of user from a snapshot (entries newest first, seq in
 * (read, latest]): HIT with *unread if the snapshot is trusted and holds latest, latest - 1,
 * ..., read + 1 without a hole; why not otherwise. Pure. */
chat_recent_result_t chat_unread_decide(const chat_recent_view_t *v, int64_t read, int64_t latest,
                                        const char *user, int64_t *unread);

/* The user's read mark in tenant/room, 0 if none. */
chat_err_t chat_unread_read_mark(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                                 const char *room, const char *user, int64_t *read);

/* One room of chat_unread_count_many. */
typedef struct chat_unread_item {
    const char *room;
    int64_t read, latest;
    int64_t unread;              /* out */
    chat_recent_result_t source; /* out: CHAT_RECENT_HIT if Redis answered (or nothing to count) */
} chat_unread_item_t;

/* chat_unread_count for n rooms of tenant: the recent histories of all of them in one Redis
 * round trip, then one MongoDB count for each room it could not answer. */
chat_err_t chat_unread_count_many(chat_redis_t *redis, int64_t recent_max, chat_store_t *st,
                                  mongoc_client_t *client, const char *tenant, const char *user,
                                  chat_unread_item_t *items, size_t n);

/* The unread count of user in tenant/room for messages (read, latest]: 0 if latest <= read;
 * from the recent history if it answers exactly (redis may be NULL, recent_max is the
 * configured bound: a range longer than it is not asked for), else MongoDB. *source (may be
 * NULL) gets the recent history's answer (CHAT_RECENT_HIT: Redis answered). */
chat_err_t chat_unread_count(chat_redis_t *redis, int64_t recent_max, chat_store_t *st,
                             mongoc_client_t *client, const char *tenant, const char *room,
                             const char *user, int64_t read, int64_t latest, int64_t *unread,
                             chat_recent_result_t *source);

#endif
