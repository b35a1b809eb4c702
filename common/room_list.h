/* A user's room list as the gateway's `rooms` frame and the server API's GET
 * /v1/users/{user}/rooms show it, one implementation for both: the index MongoDB `user_rooms`
 * (one document per (tenant, user, room) {kind, joined, name?}; the gateway writes public and
 * dm entries on first joins, the server API private ones), every room's summary in Redis in
 * one pipelined round trip (chat_room_summary_key: latest seq, ts, last message, useq), the
 * order by activity and the page (common/room_list_page.h), and for the page's rooms only: the
 * newest message of a room without a summary (MongoDB), the user's read marks (one query) and
 * the unread counts (common/unread.h). No room's messages are scanned. Blocking: worker or
 * request threads. */
#ifndef CHAT_COMMON_ROOM_LIST_H
#define CHAT_COMMON_ROOM_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>
#include <mongoc/mongoc.h>

#include "common/err.h"
#include "common/recent_read.h"
#include "common/redis.h"
#include "common/room_list_page.h"
#include "common/store.h"

#define CHAT_USER_ROOMS_COLLECTION "user_rooms"
/* The most rooms a list considers (a user in more sees the most recently joined ones). */
#define CHAT_ROOM_LIST_MAX 10000

/* One room of a user's list. */
typedef struct chat_room_list_entry {
    char *room;
    char *kind; /* "public", "dm" or "private" */
    char *name; /* NULL if none */
    int64_t joined, seq, ts, useq, read, unread;
    char *last;                         /* the newest message's msg frame (JSON), or NULL */
    bool summary;                       /* the room's summary hash exists */
    chat_recent_result_t unread_source; /* CHAT_RECENT_HIT: counted from Redis (or nothing to) */
} chat_room_list_entry_t;

/* One page of the list; owns everything it points to (chat_room_list_page_clear). */
typedef struct chat_room_list_page {
    chat_room_list_entry_t *entries; /* every room of the user, in index order */
    size_t n;
    chat_room_list_entry_t **page; /* the page's rooms, in the list's order */
    size_t count;
    char next[CHAT_ROOM_CURSOR_MAX]; /* the cursor of the next page; "" if none */
} chat_room_list_page_t;

/* The kind of a room the index does not say: "dm" for a dm: room, else "public". */
const char *chat_room_list_kind(const char *room);

/* Reads the page of tenant/user's rooms after cursor (NULL: the first), at most limit rooms.
 * redis may be NULL (or recent_max 0) for no unread counts from the recent history. Returns
 * CHAT_ERR_INVALID for a cursor that is not valid (chat_room_page_cursor_valid), else the
 * MongoDB/Redis error (logged) or CHAT_ERR_NOMEM; *out is cleared by
 * chat_room_list_page_clear in every case. */
chat_err_t chat_room_list_read(chat_store_t *st, mongoc_client_t *client, chat_redis_t *redis,
                               int64_t recent_max, const char *tenant, const char *user,
                               const char *cursor, size_t limit, chat_room_list_page_t *out);

/* The page's rooms as the `rooms` frame lists them: [{room, kind, name?, seq, useq, read,
 * unread, last?}] (last: the cached frame's bytes as they are). A new array (caller deletes);
 * NULL if out of memory. */
cJSON *chat_room_list_json(const chat_room_list_page_t *p);

/* Frees what p holds and zeroes it. Accepts a zeroed page. */
void chat_room_list_page_clear(chat_room_list_page_t *p);

#endif
