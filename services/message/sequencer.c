/* Per-room seqs (see sequencer.h): the remembered rooms in the platform's string map keyed
 * by "tenant/room", with a recency list for trimming and the partition each room came
 * through, so that a revoke forgets exactly the rooms of the revoked partitions; and the
 * arithmetic of a batch's plan. */
#include "services/message/sequencer.h"

#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/contract.h"
#include "common/strmap.h"

typedef struct seq_room {
    struct seq_room *newer, *older; /* recency list */
    int32_t partition;
    int64_t last;      /* last seq, if has_last */
    int64_t last_useq; /* last useq, if has_useq */
    bool has_last, has_useq;
    char key[]; /* "tenant/room", as in the map */
} seq_room_t;

struct message_sequencer {
    size_t max_rooms;
    chat_strmap_t *rooms; /* key -> seq_room_t */
    seq_room_t *newest, *oldest;
    int32_t *owned; /* assigned partitions */
    size_t nowned, owned_cap;
};

message_sequencer_t *message_sequencer_new(size_t max_rooms)
{
    message_sequencer_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->rooms = chat_strmap_new();
    if (s->rooms == NULL) {
        free(s);
        return NULL;
    }
    s->max_rooms = max_rooms > 0 ? max_rooms : 1;
    return s;
}

void message_sequencer_destroy(message_sequencer_t *s)
{
    if (s == NULL)
        return;
    seq_room_t *r = s->newest;
    while (r != NULL) {
        seq_room_t *next = r->older;
        free(r);
        r = next;
    }
    chat_strmap_free(s->rooms);
    free(s->owned);
    free(s);
}

static void recency_unlink(message_sequencer_t *s, seq_room_t *r)
{
    if (r->newer != NULL)
        r->newer->older = r->older;
    else
        s->newest = r->older;
    if (r->older != NULL)
        r->older->newer = r->newer;
    else
        s->oldest = r->newer;
    r->newer = r->older = NULL;
}

static void recency_push(message_sequencer_t *s, seq_room_t *r)
{
    r->older = s->newest;
    r->newer = NULL;
    if (s->newest != NULL)
        s->newest->newer = r;
    s->newest = r;
    if (s->oldest == NULL)
        s->oldest = r;
}

static void room_touch(message_sequencer_t *s, seq_room_t *r)
{
    if (s->newest != r) {
        recency_unlink(s, r);
        recency_push(s, r);
    }
}

static void room_remove(message_sequencer_t *s, seq_room_t *r)
{
    chat_strmap_remove(s->rooms, r->key);
    recency_unlink(s, r);
    free(r);
}

/* Adds an empty room (neither seq nor useq known); NULL if out of memory. */
static seq_room_t *room_add(message_sequencer_t *s, const char *key, int32_t partition)
{
    size_t len = strlen(key);
    seq_room_t *r = calloc(1, sizeof *r + len + 1);
    if (r == NULL)
        return NULL;
    memcpy(r->key, key, len + 1);
    r->partition = partition;
    if (!chat_strmap_put(s->rooms, r->key, r)) {
        free(r);
        return NULL;
    }
    recency_push(s, r);
    return r;
}

/* The remembered room tenant/room, added if new; NULL for names too long for a key (*err
 * CHAT_ERR_INVALID) or out of memory. */
static seq_room_t *room_get_or_add(message_sequencer_t *s, const char *tenant, const char *room,
                                   int32_t partition, chat_err_t *err)
{
    char key[CHAT_ROOM_KEY_MAX];
    *err = CHAT_ERR_INVALID;
    if (chat_room_key(tenant, room, key, sizeof key) < 0)
        return NULL;
    seq_room_t *r = chat_strmap_get(s->rooms, key);
    if (r != NULL) {
        room_touch(s, r);
        r->partition = partition;
    } else {
        r = room_add(s, key, partition);
    }
    *err = r != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
    return r;
}

/* The remembered room tenant/room, or NULL. */
static seq_room_t *room_lookup(const message_sequencer_t *s, const char *tenant, const char *room)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, room, key, sizeof key) < 0)
        return NULL;
    return chat_strmap_get(s->rooms, key);
}

chat_err_t message_sequencer_assign(message_sequencer_t *s, const int32_t *partitions, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (message_sequencer_owns(s, partitions[i]))
            continue;
        int32_t *owned = chat_array_grow(s->owned, &s->owned_cap, s->nowned + 1, sizeof *owned);
        if (owned == NULL)
            return CHAT_ERR_NOMEM;
        s->owned = owned;
        s->owned[s->nowned++] = partitions[i];
    }
    return CHAT_OK;
}

static bool partition_listed(const int32_t *partitions, size_t n, int32_t partition)
{
    for (size_t i = 0; i < n; i++)
        if (partitions[i] == partition)
            return true;
    return false;
}

void message_sequencer_revoke(message_sequencer_t *s, const int32_t *partitions, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->nowned; i++)
        if (!partition_listed(partitions, n, s->owned[i]))
            s->owned[kept++] = s->owned[i];
    s->nowned = kept;
    seq_room_t *r = s->newest;
    while (r != NULL) {
        seq_room_t *next = r->older;
        if (partition_listed(partitions, n, r->partition))
            room_remove(s, r);
        r = next;
    }
}

bool message_sequencer_owns(const message_sequencer_t *s, int32_t partition)
{
    return partition_listed(s->owned, s->nowned, partition);
}

/* ---- a batch's plan ---- */

bool message_sequencer_plan_begin(message_sequencer_t *s, const char *tenant, const char *room,
                                  message_seq_plan_t *plan)
{
    *plan = (message_seq_plan_t){0};
    if (!message_sequencer_get(s, tenant, room, &plan->last))
        return false;
    plan->planned = plan->last;
    return true;
}

void message_seq_plan_taken(message_seq_plan_t *plan, int64_t seq)
{
    if (plan->last < seq)
        plan->last = seq;
}

void message_seq_plan_restart(message_seq_plan_t *plan)
{
    plan->planned = plan->last;
}

int64_t message_seq_plan_next(message_seq_plan_t *plan)
{
    return ++plan->planned;
}

void message_sequencer_plan_end(message_sequencer_t *s, const char *tenant, const char *room,
                                int32_t partition, const message_seq_plan_t *plan, bool stored)
{
    if (!stored || message_sequencer_set(s, tenant, room, partition, plan->last) != CHAT_OK)
        message_sequencer_forget(s, tenant, room);
}

/* ---- the rooms remembered ---- */

bool message_sequencer_get(message_sequencer_t *s, const char *tenant, const char *room,
                           int64_t *last)
{
    seq_room_t *r = room_lookup(s, tenant, room);
    if (r == NULL || !r->has_last)
        return false;
    room_touch(s, r);
    *last = r->last;
    return true;
}

chat_err_t message_sequencer_set(message_sequencer_t *s, const char *tenant, const char *room,
                                 int32_t partition, int64_t last)
{
    chat_err_t err;
    seq_room_t *r = room_get_or_add(s, tenant, room, partition, &err);
    if (r != NULL) {
        r->last = last;
        r->has_last = true;
    }
    return err;
}

bool message_sequencer_useq_get(message_sequencer_t *s, const char *tenant, const char *room,
                                int64_t *last_useq)
{
    seq_room_t *r = room_lookup(s, tenant, room);
    if (r == NULL || !r->has_useq)
        return false;
    room_touch(s, r);
    *last_useq = r->last_useq;
    return true;
}

chat_err_t message_sequencer_useq_set(message_sequencer_t *s, const char *tenant, const char *room,
                                      int32_t partition, int64_t last_useq)
{
    chat_err_t err;
    seq_room_t *r = room_get_or_add(s, tenant, room, partition, &err);
    if (r != NULL) {
        r->last_useq = last_useq;
        r->has_useq = true;
    }
    return err;
}

void message_sequencer_forget(message_sequencer_t *s, const char *tenant, const char *room)
{
    seq_room_t *r = room_lookup(s, tenant, room);
    if (r != NULL)
        room_remove(s, r);
}

size_t message_sequencer_rooms(const message_sequencer_t *s)
{
    return chat_strmap_count(s->rooms);
}

void message_sequencer_trim(message_sequencer_t *s)
{
    while (chat_strmap_count(s->rooms) > s->max_rooms)
        room_remove(s, s->oldest);
}
