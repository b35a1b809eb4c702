/* The expiry wheel (see expiry.h): slot = exp second modulo GW_EXPIRY_SLOTS, a doubly-linked
 * list per slot; a node's kind is GW_EXPIRY_QUEUED while it is in, -1 otherwise (as
 * gw_timeout_init leaves it). */
#include "services/gateway/expiry.h"

#include <string.h>

#define GW_EXPIRY_QUEUED 1000 /* a kind no timeouts.c queue uses */

static size_t slot_of(int64_t s)
{
    return (size_t)(s % GW_EXPIRY_SLOTS);
}

void gw_expiry_init(gw_expiry_t *w, int64_t now_s)
{
    memset(w, 0, sizeof *w);
    w->next_s = now_s;
}

void gw_expiry_clear(gw_expiry_t *w, gw_timeout_t *t)
{
    if (t->kind != GW_EXPIRY_QUEUED)
        return;
    if (t->prev != NULL)
        t->prev->next = t->next;
    else
        w->slot[slot_of(t->due_ms / 1000)] = t->next;
    if (t->next != NULL)
        t->next->prev = t->prev;
    w->count--;
    gw_timeout_init(t);
}

void gw_expiry_set(gw_expiry_t *w, gw_timeout_t *t, int64_t exp_s)
{
    gw_expiry_clear(w, t);
    if (exp_s < w->next_s) /* already past: the next processing takes it */
        exp_s = w->next_s;
    t->kind = GW_EXPIRY_QUEUED;
    t->due_ms = exp_s * 1000;
    size_t i = slot_of(exp_s);
    t->prev = NULL;
    t->next = w->slot[i];
    if (t->next != NULL)
        t->next->prev = t;
    w->slot[i] = t;
    w->count++;
}

gw_timeout_t *gw_expiry_expired(gw_expiry_t *w, int64_t now_s)
{
    while (w->count > 0 && w->next_s <= now_s) {
        /* A slot holds this turn's second and, rarely, later turns' (passed over). */
        for (gw_timeout_t *t = w->slot[slot_of(w->next_s)]; t != NULL; t = t->next) {
            if (t->due_ms / 1000 <= now_s) {
                gw_expiry_clear(w, t);
                return t;
            }
        }
        w->next_s++;
    }
    if (w->count == 0 && w->next_s <= now_s)
        w->next_s = now_s + 1; /* nothing queued: no second left to look at */
    return NULL;
}
