/* The rooms of one batch, indexed by "tenant/room" in the platform's string map, and their
 * follower gateways read from Redis in one pipelined round trip per batch. */
#include "services/broadcast/followers.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/names.h"
#include "common/strmap.h"

typedef struct room_entry {
    char key[CHAT_ROOM_KEY_MAX];         /* tenant/room */
    char gws_key[CHAT_REGISTRY_KEY_MAX]; /* its gateways' set in Redis */
    int32_t *gws;
    size_t ngws, gws_cap;
} room_entry_t;

struct broadcast_followers {
    room_entry_t *rooms; /* in insertion order; reused across batches */
    size_t nrooms, rooms_cap;
    chat_strmap_t *index; /* tenant/room -> 1 + index in rooms */
};

broadcast_followers_t *broadcast_followers_new(void)
{
    broadcast_followers_t *f = calloc(1, sizeof *f);
    if (f != NULL && (f->index = chat_strmap_new()) == NULL) {
        free(f);
        return NULL;
    }
    return f;
}

void broadcast_followers_free(broadcast_followers_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->rooms_cap; i++)
        free(f->rooms[i].gws);
    free(f->rooms);
    chat_strmap_free(f->index);
    free(f);
}

void broadcast_followers_reset(broadcast_followers_t *f)
{
    for (size_t i = 0; i < f->nrooms; i++)
        f->rooms[i].ngws = 0;
    f->nrooms = 0;
    chat_strmap_clear(f->index);
}

size_t broadcast_followers_count(const broadcast_followers_t *f)
{
    return f->nrooms;
}

/* The entry of key, or NULL. */
static room_entry_t *room_find(const broadcast_followers_t *f, const char *key)
{
    uintptr_t slot = (uintptr_t)chat_strmap_get(f->index, key);
    return slot != 0 ? &f->rooms[slot - 1] : NULL;
}

/* Finds or adds tenant/room; returns its entry or NULL (*err set). */
static room_entry_t *room_upsert(broadcast_followers_t *f, const char *tenant, const char *room,
                                 chat_err_t *err)
{
    char key[CHAT_ROOM_KEY_MAX];
    if (chat_room_key(tenant, room, key, sizeof key) < 0) {
        *err = CHAT_ERR_INVALID;
        return NULL;
    }
    room_entry_t *e = room_find(f, key);
    if (e != NULL)
        return e;
    *err = CHAT_ERR_NOMEM;
    size_t old_cap = f->rooms_cap;
    room_entry_t *rooms = chat_array_grow(f->rooms, &f->rooms_cap, f->nrooms + 1, sizeof *rooms);
    if (rooms == NULL)
        return NULL;
    memset(rooms + old_cap, 0, (f->rooms_cap - old_cap) * sizeof *rooms);
    f->rooms = rooms;
    if (!chat_strmap_put(f->index, key, (void *)(uintptr_t)(f->nrooms + 1)))
        return NULL;
    e = &f->rooms[f->nrooms++];
    /* Fits whenever the record key did: the buffer sizes are derived from each other. */
    chat_registry_key(tenant, room, CHAT_REGISTRY_GWS, e->gws_key, sizeof e->gws_key);
    memcpy(e->key, key, sizeof key);
    e->ngws = 0;
    return e;
}

chat_err_t broadcast_followers_add(broadcast_followers_t *f, const char *tenant, const char *room)
{
    chat_err_t err;
    return room_upsert(f, tenant, room, &err) != NULL ? CHAT_OK : err;
}

/* Appends gateway gw to e's list. */
static bool gws_push(room_entry_t *e, int32_t gw)
{
    int32_t *gws = chat_array_grow(e->gws, &e->gws_cap, e->ngws + 1, sizeof *gws);
    if (gws == NULL)
        return false;
    e->gws = gws;
    e->gws[e->ngws++] = gw;
    return true;
}

chat_err_t broadcast_followers_set(broadcast_followers_t *f, const char *tenant, const char *room,
                                   const int32_t *gws, size_t n)
{
    chat_err_t err;
    room_entry_t *e = room_upsert(f, tenant, room, &err);
    if (e == NULL)
        return err;
    e->ngws = 0;
    for (size_t i = 0; i < n; i++) {
        if (!gws_push(e, gws[i]))
            return CHAT_ERR_NOMEM;
    }
    return CHAT_OK;
}

const int32_t *broadcast_followers_get(const broadcast_followers_t *f, const char *tenant,
                                       const char *room, size_t *n)
{
    *n = 0;
    char key[CHAT_ROOM_KEY_MAX];
    if (tenant == NULL || room == NULL || chat_room_key(tenant, room, key, sizeof key) < 0)
        return NULL;
    const room_entry_t *e = room_find(f, key);
    if (e == NULL || e->ngws == 0)
        return NULL;
    *n = e->ngws;
    return e->gws;
}

/* Queues ZRANGEBYSCORE for room e: members whose expiry is after now. */
static chat_err_t lookup_append(chat_redis_t *r, const room_entry_t *e, const char *min)
{
    const char *argv[] = {"ZRANGEBYSCORE", e->gws_key, min, "+inf"};
    size_t argvlen[] = {13, strlen(e->gws_key), strlen(min), 4};
    return chat_redis_append_argv(r, 4, argv, argvlen);
}

/* Fills e's gateways from a ZRANGEBYSCORE reply. Returns false if the reply is not an
 * array (the pipeline answered something else: treated as a Redis failure). */
static bool lookup_take(room_entry_t *e, const redisReply *reply, bool *nomem)
{
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return false;
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *m = reply->element[i];
        int32_t gw = m->type == REDIS_REPLY_STRING ? chat_gateway_partition(m->str) : -1;
        if (gw < 0) {
            chat_log_warn("redis gws member is not a gateway index; skipped",
                          CHAT_F_STR("room", e->key),
                          CHAT_F_STR("member", m->type == REDIS_REPLY_STRING ? m->str : "?"));
            continue;
        }
        if (!gws_push(e, gw)) {
            *nomem = true;
            return true;
        }
    }
    return true;
}

/* Reads the n queued replies (all of them, so the connection stays in step), filling
 * the rooms from first on. */
static chat_err_t lookup_collect(broadcast_followers_t *f, chat_redis_t *r, size_t first, size_t n,
                                 bool fill)
{
    chat_err_t result = CHAT_OK;
    bool nomem = false;
    for (size_t i = 0; i < n; i++) {
        redisReply *reply = NULL;
        chat_err_t err = chat_redis_reply(r, &reply);
        if (fill && result == CHAT_OK &&
            (err != CHAT_OK || !lookup_take(&f->rooms[first + i], reply, &nomem))) {
            if (err == CHAT_OK)
                chat_log_error("redis ZRANGEBYSCORE answered with an unexpected reply type",
                               CHAT_F_INT("type", reply != NULL ? reply->type : -1));
            result = CHAT_ERR_REDIS;
        }
        if (reply != NULL)
            freeReplyObject(reply);
    }
    return result != CHAT_OK ? result : nomem ? CHAT_ERR_NOMEM : CHAT_OK;
}

chat_err_t broadcast_followers_lookup(broadcast_followers_t *f, chat_redis_t *r, int64_t now_ms)
{
    if (f == NULL || r == NULL)
        return CHAT_ERR_INVALID;
    for (size_t i = 0; i < f->nrooms; i++)
        f->rooms[i].ngws = 0;
    if (f->nrooms == 0)
        return CHAT_OK;
    /* "(" makes the bound exclusive: a registration is live while its expiry is > now. */
    char min[32];
    snprintf(min, sizeof min, "(%lld", (long long)now_ms);
    size_t queued = 0;
    chat_err_t err = CHAT_OK;
    while (queued < f->nrooms && err == CHAT_OK) {
        err = lookup_append(r, &f->rooms[queued], min);
        if (err == CHAT_OK)
            queued++;
    }
    chat_err_t collected = lookup_collect(f, r, 0, queued, err == CHAT_OK);
    if (err != CHAT_OK || collected != CHAT_OK) {
        for (size_t i = 0; i < f->nrooms; i++)
            f->rooms[i].ngws = 0;
        return err != CHAT_OK ? (err == CHAT_ERR_NOMEM ? err : CHAT_ERR_REDIS) : collected;
    }
    return CHAT_OK;
}
