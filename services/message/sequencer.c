/* Per-room seq counters in a chained hash table keyed by "tenant/room", with a recency list
 * for trimming and the partition each room came through, so that a revoke forgets exactly the
 * rooms of the revoked partitions. */
#include "services/message/sequencer.h"

#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/contract.h"
#include "common/hash.h"

#define SEQ_INITIAL_BUCKETS 1024

typedef struct seq_room {
    struct seq_room *chain;         /* next in the bucket */
    struct seq_room *newer, *older; /* recency list */
    uint64_t hash;
    int32_t partition;
    int64_t last;
    char key[]; /* "tenant/room" */
} seq_room_t;

struct message_sequencer {
    size_t max_rooms;
    seq_room_t **buckets;
    size_t nbuckets; /* power of two */
    size_t nrooms;
    seq_room_t *newest, *oldest;
    int32_t *owned; /* assigned partitions */
    size_t nowned, owned_cap;
};

message_sequencer_t *message_sequencer_new(size_t max_rooms)
{
    message_sequencer_t *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->buckets = calloc(SEQ_INITIAL_BUCKETS, sizeof *s->buckets);
    if (s->buckets == NULL) {
        free(s);
        return NULL;
    }
    s->nbuckets = SEQ_INITIAL_BUCKETS;
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
    free(s->buckets);
    free(s->owned);
    free(s);
}

static seq_room_t *room_find(const message_sequencer_t *s, const char *key, uint64_t hash)
{
    for (seq_room_t *r = s->buckets[hash & (s->nbuckets - 1)]; r != NULL; r = r->chain)
        if (r->hash == hash && strcmp(r->key, key) == 0)
            return r;
    return NULL;
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
    seq_room_t **link = &s->buckets[r->hash & (s->nbuckets - 1)];
    while (*link != r)
        link = &(*link)->chain;
    *link = r->chain;
    recency_unlink(s, r);
    s->nrooms--;
    free(r);
}

/* Doubles the bucket array when rooms outnumber buckets; on allocation failure the table
 * simply stays denser. */
static void buckets_grow(message_sequencer_t *s)
{
    if (s->nrooms < s->nbuckets)
        return;
    size_t n = s->nbuckets * 2;
    seq_room_t **b = calloc(n, sizeof *b);
    if (b == NULL)
        return;
    for (size_t i = 0; i < s->nbuckets; i++) {
        seq_room_t *r = s->buckets[i];
        while (r != NULL) {
            seq_room_t *next = r->chain;
            r->chain = b[r->hash & (n - 1)];
            b[r->hash & (n - 1)] = r;
            r = next;
        }
    }
    free(s->buckets);
    s->buckets = b;
    s->nbuckets = n;
}

static chat_err_t room_add(message_sequencer_t *s, const char *key, uint64_t hash,
                           int32_t partition, int64_t last)
{
    size_t len = strlen(key);
    seq_room_t *r = calloc(1, sizeof *r + len + 1);
    if (r == NULL)
        return CHAT_ERR_NOMEM;
    memcpy(r->key, key, len + 1);
    r->hash = hash;
    r->partition = partition;
    r->last = last;
    buckets_grow(s);
    size_t b = hash & (s->nbuckets - 1);
    r->chain = s->buckets[b];
    s->buckets[b] = r;
    recency_push(s, r);
    s->nrooms++;
    return CHAT_OK;
}

/* The remembered room tenant/room, or NULL. */
static seq_room_t *room_lookup(const message_sequencer_t *s, const char *tenant, const char *room)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, room, key, sizeof key) < 0)
        return NULL;
    return room_find(s, key, chat_hash(key));
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

bool message_sequencer_get(message_sequencer_t *s, const char *tenant, const char *room,
                           int64_t *last)
{
    seq_room_t *r = room_lookup(s, tenant, room);
    if (r == NULL)
        return false;
    room_touch(s, r);
    *last = r->last;
    return true;
}

chat_err_t message_sequencer_set(message_sequencer_t *s, const char *tenant, const char *room,
                                 int32_t partition, int64_t last)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, room, key, sizeof key) < 0)
        return CHAT_ERR_INVALID;
    uint64_t hash = chat_hash(key);
    seq_room_t *r = room_find(s, key, hash);
    if (r == NULL)
        return room_add(s, key, hash, partition, last);
    room_touch(s, r);
    r->partition = partition;
    r->last = last;
    return CHAT_OK;
}

void message_sequencer_forget(message_sequencer_t *s, const char *tenant, const char *room)
{
    seq_room_t *r = room_lookup(s, tenant, room);
    if (r != NULL)
        room_remove(s, r);
}

size_t message_sequencer_rooms(const message_sequencer_t *s)
{
    return s->nrooms;
}

void message_sequencer_trim(message_sequencer_t *s)
{
    while (s->nrooms > s->max_rooms)
        room_remove(s, s->oldest);
}
