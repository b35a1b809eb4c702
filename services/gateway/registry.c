/* Redis registrations of the gateway (see registry.h). Each operation is one pipeline:
 * commands are queued, then exactly as many replies are read; the first failure is
 * returned (chat_redis logs the details). */
#include "services/gateway/registry.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/codec.h"
#include "common/log.h"

#define MEMBER_MAX 160

/* Frees the strings of one copy made by gw_registry_rooms_append. */
static void room_copy_clear(gw_registry_room_t *r)
{
    for (size_t u = 0; u < r->nusers; u++)
        free((char *)r->users[u]);
    free((void *)r->users);
    free((char *)r->tenant);
    free((char *)r->room);
}

bool gw_registry_rooms_append(gw_registry_room_t **rooms, size_t *n, size_t *cap,
                              const char *tenant, const char *room, const char *const *users,
                              size_t nusers)
{
    gw_registry_room_t *grown = chat_array_grow(*rooms, cap, *n + 1, sizeof *grown);
    if (grown == NULL)
        return false;
    *rooms = grown;
    const char **copy = calloc(nusers > 0 ? nusers : 1, sizeof *copy);
    gw_registry_room_t r = {.tenant = strdup(tenant), .room = strdup(room), .users = copy};
    bool ok = copy != NULL && r.tenant != NULL && r.room != NULL;
    for (size_t u = 0; ok && u < nusers; u++) {
        copy[u] = strdup(users[u]);
        ok = copy[u] != NULL;
        r.nusers += ok;
    }
    if (!ok) {
        room_copy_clear(&r);
        return false;
    }
    grown[(*n)++] = r;
    return true;
}

void gw_registry_rooms_free(gw_registry_room_t *rooms, size_t n)
{
    for (size_t i = 0; rooms != NULL && i < n; i++)
        room_copy_clear(&rooms[i]);
    free(rooms);
}

static bool member_make(char *buf, const char *gw, const char *user)
{
    int n = snprintf(buf, MEMBER_MAX, "%s:%s", gw, user);
    return n > 0 && n < MEMBER_MAX;
}

size_t gw_registry_users(const char *const *members, size_t n, const char **users)
{
    size_t out = 0;
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(members[i], ':');
        if (colon == NULL || colon[1] == '\0')
            continue;
        const char *user = colon + 1;
        bool seen = false;
        for (size_t j = 0; j < out && !seen; j++)
            seen = strcmp(users[j], user) == 0;
        if (!seen)
            users[out++] = user;
    }
    return out;
}

/* Reads n queued replies, keeping the first failure; *last gets the final reply if asked
 * (the caller frees it). */
static chat_err_t replies_read(chat_redis_t *r, size_t n, redisReply **last)
{
    chat_err_t first = CHAT_OK;
    for (size_t i = 0; i < n; i++) {
        redisReply *reply = NULL;
        chat_err_t err = chat_redis_reply(r, &reply);
        if (err != CHAT_OK && first == CHAT_OK)
            first = err;
        if (last != NULL && i + 1 == n && err == CHAT_OK)
            *last = reply;
        else if (reply != NULL)
            freeReplyObject(reply);
    }
    return first;
}

/* Queues ZADD key expiry member and PEXPIRE key ttl: 2 replies. */
static chat_err_t queue_add(chat_redis_t *r, const char *key, int64_t expiry, int64_t ttl,
                            const char *member)
{
    chat_err_t err = chat_redis_append(r, "ZADD %s %lld %s", key, (long long)expiry, member);
    if (err == CHAT_OK)
        err = chat_redis_append(r, "PEXPIRE %s %lld", key, (long long)ttl);
    return err;
}

/* Copies the user ids out of a ZRANGEBYSCORE reply of online members. */
static chat_err_t users_from_reply(const redisReply *reply, char ***users, size_t *nusers)
{
    *users = NULL;
    *nusers = 0;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return CHAT_ERR_REDIS;
    size_t n = reply->elements;
    const char **members = calloc(n > 0 ? n : 1, sizeof *members);
    const char **ids = calloc(n > 0 ? n : 1, sizeof *ids);
    size_t nm = 0;
    for (size_t i = 0; members != NULL && i < n; i++) {
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            members[nm++] = reply->element[i]->str;
    }
    size_t nu = members != NULL && ids != NULL ? gw_registry_users(members, nm, ids) : 0;
    *users = calloc(nu > 0 ? nu : 1, sizeof **users);
    for (size_t i = 0; *users != NULL && i < nu; i++)
        (*users)[(*nusers)++] = strdup(ids[i]);
    free(members);
    free(ids);
    return *users != NULL ? CHAT_OK : CHAT_ERR_NOMEM;
}

chat_err_t gw_registry_join(chat_redis_t *r, const char *gw, int64_t now_ms, int64_t ttl_ms,
                            const char *tenant, const char *room, const char *user, char ***users,
                            size_t *nusers)
{
    char gws[CHAT_REGISTRY_KEY_MAX], online[CHAT_REGISTRY_KEY_MAX], member[MEMBER_MAX];
    *users = NULL;
    *nusers = 0;
    if (chat_registry_key(tenant, room, CHAT_REGISTRY_GWS, gws, sizeof gws) < 0 ||
        chat_registry_key(tenant, room, CHAT_REGISTRY_ONLINE, online, sizeof online) < 0 ||
        !member_make(member, gw, user))
        return CHAT_ERR_INVALID;
    int64_t expiry = now_ms + ttl_ms;
    size_t queued = 0;
    chat_err_t err = queue_add(r, gws, expiry, ttl_ms, gw);
    queued += err == CHAT_OK ? 2 : 0;
    if (err == CHAT_OK && (err = queue_add(r, online, expiry, ttl_ms, member)) == CHAT_OK)
        queued += 2;
    /* Expired members of gateways that died are pruned by whoever joins next. */
    if (err == CHAT_OK && (err = chat_redis_append(r, "ZREMRANGEBYSCORE %s -inf %lld", online,
                                                   (long long)now_ms)) == CHAT_OK)
        queued++;
    if (err == CHAT_OK && (err = chat_redis_append(r, "ZRANGEBYSCORE %s (%lld +inf", online,
                                                   (long long)now_ms)) == CHAT_OK)
        queued++;
    redisReply *last = NULL;
    chat_err_t rerr = replies_read(r, queued, err == CHAT_OK ? &last : NULL);
    if (err == CHAT_OK)
        err = rerr;
    if (err == CHAT_OK)
        err = users_from_reply(last, users, nusers);
    if (last != NULL)
        freeReplyObject(last);
    return err;
}

void gw_registry_users_free(char **users, size_t n)
{
    for (size_t i = 0; users != NULL && i < n; i++)
        free(users[i]);
    free(users);
}

chat_err_t gw_registry_release(chat_redis_t *r, const char *gw, const char *tenant,
                               const char *room, const char *user, bool room_gone, bool user_gone)
{
    char key[CHAT_REGISTRY_KEY_MAX], member[MEMBER_MAX];
    size_t queued = 0;
    chat_err_t err = CHAT_OK;
    if (room_gone && chat_registry_key(tenant, room, CHAT_REGISTRY_GWS, key, sizeof key) > 0 &&
        (err = chat_redis_append(r, "ZREM %s %s", key, gw)) == CHAT_OK)
        queued++;
    if (err == CHAT_OK && user_gone && member_make(member, gw, user) &&
        chat_registry_key(tenant, room, CHAT_REGISTRY_ONLINE, key, sizeof key) > 0 &&
        (err = chat_redis_append(r, "ZREM %s %s", key, member)) == CHAT_OK)
        queued++;
    chat_err_t rerr = replies_read(r, queued, NULL);
    return err != CHAT_OK ? err : rerr;
}

/* Queues the refresh (add) or removal of one room's registrations; counts replies. */
static chat_err_t queue_room(chat_redis_t *r, const char *gw, int64_t expiry, int64_t ttl,
                             const gw_registry_room_t *room, bool add, size_t *queued)
{
    char gws[CHAT_REGISTRY_KEY_MAX], online[CHAT_REGISTRY_KEY_MAX], member[MEMBER_MAX];
    if (chat_registry_key(room->tenant, room->room, CHAT_REGISTRY_GWS, gws, sizeof gws) < 0 ||
        chat_registry_key(room->tenant, room->room, CHAT_REGISTRY_ONLINE, online, sizeof online) <
            0)
        return CHAT_ERR_INVALID;
    chat_err_t err =
        add ? queue_add(r, gws, expiry, ttl, gw) : chat_redis_append(r, "ZREM %s %s", gws, gw);
    if (err != CHAT_OK)
        return err;
    *queued += add ? 2 : 1;
    for (size_t i = 0; i < room->nusers; i++) {
        if (!member_make(member, gw, room->users[i]))
            continue;
        err = add ? queue_add(r, online, expiry, ttl, member)
                  : chat_redis_append(r, "ZREM %s %s", online, member);
        if (err != CHAT_OK)
            return err;
        *queued += add ? 2 : 1;
    }
    return CHAT_OK;
}

static chat_err_t rooms_pipeline(chat_redis_t *r, const char *gw, int64_t expiry, int64_t ttl,
                                 const gw_registry_room_t *rooms, size_t n, bool add)
{
    size_t queued = 0;
    chat_err_t err = CHAT_OK;
    for (size_t i = 0; i < n && err == CHAT_OK; i++)
        err = queue_room(r, gw, expiry, ttl, &rooms[i], add, &queued);
    chat_err_t rerr = replies_read(r, queued, NULL);
    return err != CHAT_OK ? err : rerr;
}

chat_err_t gw_registry_refresh(chat_redis_t *r, const char *gw, int64_t now_ms, int64_t ttl_ms,
                               const gw_registry_room_t *rooms, size_t n)
{
    return rooms_pipeline(r, gw, now_ms + ttl_ms, ttl_ms, rooms, n, true);
}

chat_err_t gw_registry_remove(chat_redis_t *r, const char *gw, const gw_registry_room_t *rooms,
                              size_t n)
{
    return rooms_pipeline(r, gw, 0, 0, rooms, n, false);
}
