/* The order, cursor and limit of a user's room list (see room_list_page.h). The cursor is a
 * position in the order, (activity, room) of the last room of the page, not an offset: a
 * room that becomes active between two pages moves to the front instead of shifting every
 * later room by one (no room is shown twice in the pages after it; one that moved up is
 * found again on the first page). */
#include "common/room_list_page.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses cursor s into its activity and room (pointing into s). */
static bool cursor_parse(const char *s, int64_t *activity, const char **room)
{
    if (s == NULL)
        return false;
    const char *dot = strchr(s, '.');
    if (dot == NULL || dot == s || dot - s > 19)
        return false;
    for (const char *c = s; c < dot; c++)
        if (*c < '0' || *c > '9')
            return false;
    if (dot - s > 1 && s[0] == '0')
        return false;
    errno = 0;
    long long v = strtoll(s, NULL, 10);
    if (errno != 0 || v < 0 || !chat_name_room_valid(dot + 1))
        return false;
    *activity = v;
    *room = dot + 1;
    return true;
}

bool chat_room_page_cursor_valid(const char *s)
{
    int64_t activity;
    const char *room;
    return cursor_parse(s, &activity, &room);
}

void chat_room_page_cursor_make(const chat_room_rank_t *r, char *buf, size_t buflen)
{
    snprintf(buf, buflen, "%" PRId64 ".%s", r->activity < 0 ? 0 : r->activity, r->room);
}

/* The list's order: negative if (activity, room) a comes before b. */
static int rank_cmp(int64_t a_act, const char *a_room, int64_t b_act, const char *b_room)
{
    if (a_act != b_act)
        return a_act > b_act ? -1 : 1;
    return strcmp(a_room, b_room);
}

static int rank_qsort_cmp(const void *a, const void *b)
{
    const chat_room_rank_t *x = a, *y = b;
    return rank_cmp(x->activity, x->room, y->activity, y->room);
}

void chat_room_page_sort(chat_room_rank_t *rooms, size_t n)
{
    if (n > 1)
        qsort(rooms, n, sizeof *rooms, rank_qsort_cmp);
}

bool chat_room_page_select(const chat_room_rank_t *rooms, size_t n, const char *cursor,
                           size_t limit, size_t *first, size_t *count, bool *more)
{
    size_t start = 0;
    if (cursor != NULL) {
        int64_t activity;
        const char *room;
        if (!cursor_parse(cursor, &activity, &room))
            return false;
        while (start < n && rank_cmp(rooms[start].activity, rooms[start].room, activity, room) <= 0)
            start++;
    }
    size_t left = n - start;
    *first = start;
    *count = left < limit ? left : limit;
    *more = left > limit;
    return true;
}
