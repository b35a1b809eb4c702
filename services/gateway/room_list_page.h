/* One page of a user's room list (the `rooms` frame): the order (most recent activity first,
 * then by room name), the opaque cursor that continues after a page, and the limit. Pure
 * functions over the user's rooms with their activity, unit-tested; room_list.c reads the
 * rooms and builds the frame. */
#ifndef CHAT_GATEWAY_ROOM_LIST_PAGE_H
#define CHAT_GATEWAY_ROOM_LIST_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/names.h"

#define GW_ROOMS_LIMIT_DEFAULT 50
#define GW_ROOMS_LIMIT_MAX 100
/* A cursor: "<activity>.<room>" -- at most 20 digits, the dot and a room name. */
#define GW_ROOM_CURSOR_MAX (20 + 1 + CHAT_ROOM_MAX + 1)

/* A room of the list and when it was last active (ms: its latest message's ts, or when the
 * user joined it if it has no message). */
typedef struct gw_room_rank {
    const char *room;
    int64_t activity;
} gw_room_rank_t;

/* True if s is a cursor this gateway makes: an activity in decimal, a dot, a room name. */
bool gw_room_page_cursor_valid(const char *s);

/* Writes the cursor that continues after r into buf (GW_ROOM_CURSOR_MAX bytes). */
void gw_room_page_cursor_make(const gw_room_rank_t *r, char *buf, size_t buflen);

/* Sorts the n rooms into the list's order: activity descending, then room ascending. */
void gw_room_page_sort(gw_room_rank_t *rooms, size_t n);

/* The page of the sorted rooms after cursor (NULL: from the start), at most limit of them:
 * rooms[*first .. *first + *count), and *more if rooms follow it. A cursor that names a
 * position rather than a room, it continues after wherever (activity, room) would sort, so
 * a room whose activity changed between two pages does not break paging. Returns false for
 * a cursor that is not valid (nothing set). */
bool gw_room_page_select(const gw_room_rank_t *rooms, size_t n, const char *cursor, size_t limit,
                         size_t *first, size_t *count, bool *more);

#endif
