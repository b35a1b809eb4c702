/* One page of a user's room list (the `rooms` frame): the order (most recent activity first,
 * then by room name), the opaque cursor that continues after a page, and the limit. Pure
 * functions over the user's rooms with their activity, unit-tested; common/room_list.c reads
 * the rooms (for the gateway's rooms frame and the server API). */
#ifndef CHAT_COMMON_ROOM_LIST_PAGE_H
#define CHAT_COMMON_ROOM_LIST_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/names.h"

#define CHAT_ROOMS_LIMIT_DEFAULT 50
#define CHAT_ROOMS_LIMIT_MAX 100
/* A cursor: "<activity>.<room>" -- at most 20 digits, the dot and a room name. */
#define CHAT_ROOM_CURSOR_MAX (20 + 1 + CHAT_ROOM_MAX + 1)

/* A room of the list and when it was last active (ms: its latest message's ts, or when the
 * user joined it if it has no message). */
typedef struct chat_room_rank {
    const char *room;
    int64_t activity;
} chat_room_rank_t;

/* True if s is a cursor this gateway makes: an activity in decimal, a dot, a room name. */
bool chat_room_page_cursor_valid(const char *s);

/* Writes the cursor that continues after r into buf (CHAT_ROOM_CURSOR_MAX bytes). */
void chat_room_page_cursor_make(const chat_room_rank_t *r, char *buf, size_t buflen);

/* Sorts the n rooms into the list's order: activity descending, then room ascending. */
void chat_room_page_sort(chat_room_rank_t *rooms, size_t n);

/* The page of the sorted rooms after cursor (NULL: from the start), at most limit of them:
 * rooms[*first .. *first + *count), and *more if rooms follow it. A cursor that names a
 * position rather than a room, it continues after wherever (activity, room) would sort, so
 * a room whose activity changed between two pages does not break paging. Returns false for
 * a cursor that is not valid (nothing set). */
bool chat_room_page_select(const chat_room_rank_t *rooms, size_t n, const char *cursor,
                           size_t limit, size_t *first, size_t *count, bool *more);

#endif
