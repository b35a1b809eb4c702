/* Redis registrations of the gateway (see registry.h). Each operation is one pipeline:
 * commands are queued, then exactly as many replies are read; the first failure is
 * returned (chat_redis logs the details). */
#include "services/gateway/registry.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/array.h"
#include "common/contract.h"
#include "common/log.h"
#include "common/names.h"

/* "<gateway id>:<user>": a decimal gateway index, ':' and the longest user id in UTF-8. */
#define MEMBER_MAX (32 + CHAT_USER_MAX * 4 + 1)

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

static int str_compare(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted, so that duplicates are neighbours: O(n log n) for a busy room, where comparing
 * every user with every other would be quadratic. */
size_t gw_registry_users(const char *const *members, size_t n, const char **users)
{
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        const char *colon = strchr(members[i], ':');
        if (colon != NULL && colon[1] != '\0')
            users[found++] = colon + 1;
    }
    if (found == 0)
        return 0;
    qsort(users, found, sizeof *users, str_compare);
    size_t distinct = 1;
    for (size_t i = 1; i < found; i++) {
        if (strcmp(users[i], users[distinct - 1]) != 0)
            users[distinct++] = users[i];
    }
    return distinct;
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

/* Copies the user ids out of a ZRANGEBYSCORE reply of online members. Returns
 * CHAT_ERR_REDIS if the reply is not an array, CHAT_ERR_NOMEM (nothing returned). */
static chat_err_t users_from_reply(const redisReply *reply, char ***users, size_t *nusers)
{
    *users = NULL;
    *nusers = 0;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY)
        return CHAT_ERR_REDIS;
    size_t n = reply->elements;
    const char **members = calloc(n > 0 ? n : 1, sizeof *members);
    const char **ids = calloc(n > 0 ? n : 1, sizeof *ids);
    char **copies = NULL;
    size_t nids = 0, ncopies = 0;
    if (members != NULL && ids != NULL) {
        size_t nmembers = 0;
        for (size_t i = 0; i < n; i++) {
            if (reply->element[i]->type == REDIS_REPLY_STRING)
                members[nmembers++] = reply->element[i]->str;
        }
        nids = gw_registry_users(members, nmembers, ids);
        copies = calloc(nids > 0 ? nids : 1, sizeof *copies);
    }
    while (copies != NULL && ncopies < nids && (copies[ncopies] = strdup(ids[ncopies])) != NULL)
        ncopies++;
    free(members);
    free(ids);
    if (copies == NULL || ncopies < nids) {
        gw_registry_users_free(copies, ncopies);
        return CHAT_ERR_NOMEM;
    }
    *users = copies;
    *nusers = ncopies;
    return CHAT_OK;
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

/* An argument vector being filled (chat_redis_append_argv). */
typedef struct args {
    const char **v;
    size_t *len;
    size_t n;
} args_t;

static void arg_add(args_t *a, const char *s, size_t len)
{
    a->v[a->n] = s;
    a->len[a->n++] = len;
}

/* Queues one command on key naming every user of room as a member "<gw>:<user>":
 * "ZADD key score member..." if score is given, else "ZREM key member...". */
static chat_err_t queue_members(chat_redis_t *r, const char *key, const char *score, const char *gw,
                                const gw_registry_room_t *room)
{
    size_t argc = 2 + (score != NULL ? 2 : 1) * room->nusers, gwlen = strlen(gw), bytes = 0;
    for (size_t i = 0; i < room->nusers; i++)
        bytes += gwlen + 1 + strlen(room->users[i]);
    args_t args = {.v = calloc(argc, sizeof *args.v), .len = calloc(argc, sizeof *args.len)};
    char *members = malloc(bytes > 0 ? bytes : 1);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (args.v != NULL && args.len != NULL && members != NULL && argc <= INT_MAX) {
        arg_add(&args, score != NULL ? "ZADD" : "ZREM", 4);
        arg_add(&args, key, strlen(key));
        char *m = members;
        for (size_t i = 0; i < room->nusers; i++) {
            size_t ulen = strlen(room->users[i]);
            memcpy(m, gw, gwlen);
            m[gwlen] = ':';
            memcpy(m + gwlen + 1, room->users[i], ulen);
            if (score != NULL)
                arg_add(&args, score, strlen(score));
            arg_add(&args, m, gwlen + 1 + ulen);
            m += gwlen + 1 + ulen;
        }
        err = chat_redis_append_argv(r, (int)argc, args.v, args.len);
    }
    free(args.v);
    free(args.len);
    free(members);
    return err;
}

/* err, counting one more reply to read in *queued if the command was queued. */
static chat_err_t counted(chat_err_t err, size_t *queued)
{
    if (err == CHAT_OK)
        (*queued)++;
    return err;
}

/* Queues the refresh (add) or removal of one room's registrations, counting the replies
 * to read in *queued: per key one ZADD (every member at once) and one PEXPIRE, or one ZREM.
 * expiry and ttl are decimal text (unused for a removal). */
static chat_err_t queue_room(chat_redis_t *r, const char *gw, const char *expiry, const char *ttl,
                             const gw_registry_room_t *room, bool add, size_t *queued)
{
    char gws[CHAT_REGISTRY_KEY_MAX], online[CHAT_REGISTRY_KEY_MAX];
    if (chat_registry_key(room->tenant, room->room, CHAT_REGISTRY_GWS, gws, sizeof gws) < 0 ||
        chat_registry_key(room->tenant, room->room, CHAT_REGISTRY_ONLINE, online, sizeof online) <
            0)
        return CHAT_ERR_INVALID;
    chat_err_t err = add ? chat_redis_append(r, "ZADD %s %s %s", gws, expiry, gw)
                         : chat_redis_append(r, "ZREM %s %s", gws, gw);
    err = counted(err, queued);
    if (err == CHAT_OK && add)
        err = counted(chat_redis_append(r, "PEXPIRE %s %s", gws, ttl), queued);
    if (err == CHAT_OK && room->nusers > 0)
        err = counted(queue_members(r, online, add ? expiry : NULL, gw, room), queued);
    if (err == CHAT_OK && room->nusers > 0 && add)
        err = counted(chat_redis_append(r, "PEXPIRE %s %s", online, ttl), queued);
    return err;
}

static chat_err_t rooms_pipeline(chat_redis_t *r, const char *gw, int64_t expiry_ms, int64_t ttl_ms,
                                 const gw_registry_room_t *rooms, size_t n, bool add)
{
    char expiry[24], ttl[24];
    snprintf(expiry, sizeof expiry, "%lld", (long long)expiry_ms);
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
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
