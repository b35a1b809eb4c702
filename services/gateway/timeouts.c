/* Deadline FIFOs (see timeouts.h). */
#include "services/gateway/timeouts.h"

#include <string.h>

void gw_timeouts_init(gw_timeouts_t *q)
{
    memset(q, 0, sizeof *q);
}

void gw_timeout_init(gw_timeout_t *t)
{
    t->prev = t->next = NULL;
    t->kind = -1;
}

void gw_timeouts_clear(gw_timeouts_t *q, gw_timeout_t *t)
{
    if (t->kind < 0)
        return;
    int k = t->kind;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        q->head[k] = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    else
        q->tail[k] = t->prev;
    q->count[k]--;
    gw_timeout_init(t);
}

void gw_timeouts_set(gw_timeouts_t *q, gw_timeout_t *t, gw_timeout_kind_t kind, int64_t due_ms)
{
    gw_timeouts_clear(q, t);
    t->kind = (int)kind;
    t->due_ms = due_ms;
    /* From the tail: a deadline earlier than the last one (a shorter wait of the same kind)
     * walks back to its place; the usual one stays at the tail. */
    gw_timeout_t *after = q->tail[kind];
    while (after != NULL && after->due_ms > due_ms)
        after = after->prev;
    t->prev = after;
    t->next = after != NULL ? after->next : q->head[kind];
    if (t->next != NULL)
        t->next->prev = t;
    else
        q->tail[kind] = t;
    if (after != NULL)
        after->next = t;
    else
        q->head[kind] = t;
    q->count[kind]++;
}

gw_timeout_t *gw_timeouts_expired(gw_timeouts_t *q, int64_t now_ms, gw_timeout_kind_t *kind)
{
    gw_timeout_t *first = NULL;
    for (int k = 0; k < GW_TIMEOUT__COUNT; k++) {
        gw_timeout_t *h = q->head[k];
        if (h != NULL && h->due_ms <= now_ms && (first == NULL || h->due_ms < first->due_ms))
            first = h;
    }
    if (first != NULL) {
        *kind = (gw_timeout_kind_t)first->kind;
        gw_timeouts_clear(q, first);
    }
    return first;
}
