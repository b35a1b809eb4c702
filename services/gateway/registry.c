/* Redis registrations of the gateway (see registry.h). Each operation is one script per room,
 * pipelined: scripts are queued, then exactly as many replies are read; the first failure is
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

/* ---- the scripts: KEYS gws, online, presence of one room; every change of the online set
 * goes through one of them, so the presence hash always counts each user's members ---- */

/* Removes the online members whose expiry is not after now (their gateway stopped
 * refreshing them: it died or lost Redis) and returns the users whose last member that was. */
#define LUA_SWEEP                                                                                  \
    "local function sweep(online, presence, now)\n"                                                \
    "  local gone = {}\n"                                                                          \
    "  for _, m in ipairs(redis.call('ZRANGEBYSCORE', online, '-inf', now)) do\n"                  \
    "    redis.call('ZREM', online, m)\n"                                                          \
    "    local u = string.match(m, '^[^:]*:(.+)$')\n"                                              \
    "    if u and redis.call('HINCRBY', presence, u, -1) <= 0 then\n"                              \
    "      redis.call('HDEL', presence, u)\n"                                                      \
    "      gone[#gone + 1] = u\n"                                                                  \
    "    end\n"                                                                                    \
    "  end\n"                                                                                      \
    "  return gone\n"                                                                              \
    "end\n"

/* Adds member gw:user; true if it is new and the user had no other member (first in). */
#define LUA_ADD                                                                                    \
    "local function add(online, presence, expiry, gw, user)\n"                                     \
    "  return redis.call('ZADD', online, expiry, gw .. ':' .. user) == 1 and\n"                    \
    "         redis.call('HINCRBY', presence, user, 1) == 1\n"                                     \
    "end\n"

/* Removes member gw:user; true if it was there and was the user's last (last out). */
#define LUA_REMOVE                                                                                 \
    "local function remove(online, presence, gw, user)\n"                                          \
    "  if redis.call('ZREM', online, gw .. ':' .. user) == 1 and\n"                                \
    "     redis.call('HINCRBY', presence, user, -1) <= 0 then\n"                                   \
    "    redis.call('HDEL', presence, user)\n"                                                     \
    "    return true\n"                                                                            \
    "  end\n"                                                                                      \
    "  return false\n"                                                                             \
    "end\n"

/* ARGV gw, user, now, expiry, ttl -> {first (0/1), {users gone}, {online members}} */
static const char join_lua[] =
    LUA_SWEEP LUA_ADD "local gw, user, now, expiry, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], "
                      "ARGV[5]\n"
                      "redis.call('ZADD', KEYS[1], expiry, gw)\n"
                      "redis.call('PEXPIRE', KEYS[1], ttl)\n"
                      "local first = add(KEYS[2], KEYS[3], expiry, gw, user) and 1 or 0\n"
                      "local gone = sweep(KEYS[2], KEYS[3], now)\n"
                      "redis.call('PEXPIRE', KEYS[2], ttl)\n"
                      "redis.call('PEXPIRE', KEYS[3], ttl)\n"
                      "return {first, gone, redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. now, "
                      "'+inf')}\n";

/* ARGV gw, user, room_gone (0/1), user_gone (0/1) -> 1 if the user's last member went */
static const char release_lua[] = LUA_REMOVE
    "if ARGV[3] == '1' then redis.call('ZREM', KEYS[1], ARGV[1]) end\n"
    "if ARGV[4] == '1' and remove(KEYS[2], KEYS[3], ARGV[1], ARGV[2]) then return 1 end\n"
    "return 0\n";

/* ARGV gw, now, expiry, ttl, users... -> {{users back online}, {users gone}, lapsed}: lapsed
 * is 1 if gw's registration had expired (or was swept) before this refresh: broadcast did not
 * send the room here meanwhile. */
static const char refresh_lua[] =
    LUA_SWEEP LUA_ADD "local gw, now, expiry, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
                      "local had = redis.call('ZSCORE', KEYS[1], gw)\n"
                      "local lapsed = (not had or tonumber(had) <= tonumber(now)) and 1 or 0\n"
                      "redis.call('ZADD', KEYS[1], expiry, gw)\n"
                      "redis.call('PEXPIRE', KEYS[1], ttl)\n"
                      "local back = {}\n"
                      "for i = 5, #ARGV do\n"
                      "  if add(KEYS[2], KEYS[3], expiry, gw, ARGV[i]) then back[#back + 1] = "
                      "ARGV[i] end\n"
                      "end\n"
                      "local gone = sweep(KEYS[2], KEYS[3], now)\n"
                      "redis.call('PEXPIRE', KEYS[2], ttl)\n"
                      "redis.call('PEXPIRE', KEYS[3], ttl)\n"
                      "return {back, gone, lapsed}\n";

/* ARGV gw, users... -> {users gone} */
static const char remove_lua[] = LUA_REMOVE "redis.call('ZREM', KEYS[1], ARGV[1])\n"
                                            "local gone = {}\n"
                                            "for i = 2, #ARGV do\n"
                                            "  if remove(KEYS[2], KEYS[3], ARGV[1], ARGV[i]) "
                                            "then gone[#gone + 1] = ARGV[i] end\n"
                                            "end\n"
                                            "return gone\n";

#define SCRIPT_FIXED_ARGS 6 /* EVAL, the script, the key count, the three keys */

/* The three keys of a room's registration, in the scripts' order. */
typedef struct room_keys {
    char gws[CHAT_REGISTRY_KEY_MAX], online[CHAT_REGISTRY_KEY_MAX], presence[CHAT_REGISTRY_KEY_MAX];
} room_keys_t;

static bool room_keys_make(room_keys_t *k, const char *tenant, const char *room)
{
    return chat_registry_key(tenant, room, CHAT_REGISTRY_GWS, k->gws, sizeof k->gws) > 0 &&
           chat_registry_key(tenant, room, CHAT_REGISTRY_ONLINE, k->online, sizeof k->online) > 0 &&
           chat_registry_key(tenant, room, CHAT_REGISTRY_PRESENCE, k->presence,
                             sizeof k->presence) > 0;
}

/* Queues EVAL script 3 gws online presence argv... (nargs of them). Scripts go as EVAL with
 * their body: Redis compiles a body once and keeps it by its SHA1, and a restarted Redis
 * needs nothing reloaded. */
static chat_err_t queue_script(chat_redis_t *r, const char *script, const room_keys_t *k,
                               const char *const *argv, size_t nargs)
{
    size_t argc = SCRIPT_FIXED_ARGS + nargs;
    const char **v = calloc(argc, sizeof *v);
    size_t *len = calloc(argc, sizeof *len);
    chat_err_t err = CHAT_ERR_NOMEM;
    if (v != NULL && len != NULL && argc <= INT_MAX) {
        const char *fixed[SCRIPT_FIXED_ARGS] = {"EVAL", script,    "3",
                                                k->gws, k->online, k->presence};
        for (size_t i = 0; i < argc; i++) {
            v[i] = i < SCRIPT_FIXED_ARGS ? fixed[i] : argv[i - SCRIPT_FIXED_ARGS];
            len[i] = strlen(v[i]);
        }
        err = chat_redis_append_argv(r, (int)argc, v, len);
    }
    free(v);
    free(len);
    return err;
}

/* Tells pres of every user named in list (an array reply of strings). */
static void presence_tell(const gw_registry_presence_t *pres, const char *tenant, const char *room,
                          const redisReply *list, bool online, bool expired)
{
    if (pres == NULL || pres->changed == NULL || list == NULL || list->type != REDIS_REPLY_ARRAY)
        return;
    for (size_t i = 0; i < list->elements; i++) {
        if (list->element[i]->type == REDIS_REPLY_STRING)
            pres->changed(pres->ud, tenant, room, list->element[i]->str, online, expired);
    }
}

/* A reply that is an array of n elements, or NULL. */
static const redisReply *array_of(const redisReply *reply, size_t n)
{
    return reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == n ? reply : NULL;
}

chat_err_t gw_registry_join(chat_redis_t *r, const char *gw, int64_t now_ms, int64_t ttl_ms,
                            const char *tenant, const char *room, const char *user, char ***users,
                            size_t *nusers, const gw_registry_presence_t *pres)
{
    room_keys_t k;
    *users = NULL;
    *nusers = 0;
    if (!room_keys_make(&k, tenant, room) || user == NULL || *user == '\0')
        return CHAT_ERR_INVALID;
    char now[24], expiry[24], ttl[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(expiry, sizeof expiry, "%lld", (long long)(now_ms + ttl_ms));
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    const char *args[] = {gw, user, now, expiry, ttl};
    chat_err_t err = queue_script(r, join_lua, &k, args, 5);
    redisReply *reply = NULL;
    if (err == CHAT_OK)
        err = chat_redis_reply(r, &reply);
    const redisReply *a = err == CHAT_OK ? array_of(reply, 3) : NULL;
    if (err == CHAT_OK && (a == NULL || a->element[0]->type != REDIS_REPLY_INTEGER))
        err = CHAT_ERR_REDIS;
    if (err == CHAT_OK)
        err = users_from_reply(a->element[2], users, nusers);
    if (err == CHAT_OK && a->element[0]->integer == 1 && pres != NULL && pres->changed != NULL)
        pres->changed(pres->ud, tenant, room, user, true, false);
    if (err == CHAT_OK)
        presence_tell(pres, tenant, room, a->element[1], false, true);
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}

void gw_registry_users_free(char **users, size_t n)
{
    for (size_t i = 0; users != NULL && i < n; i++)
        free(users[i]);
    free(users);
}

chat_err_t gw_registry_release(chat_redis_t *r, const char *gw, const char *tenant,
                               const char *room, const char *user, bool room_gone, bool user_gone,
                               const gw_registry_presence_t *pres)
{
    room_keys_t k;
    if (!room_keys_make(&k, tenant, room) || user == NULL || *user == '\0')
        return CHAT_ERR_INVALID;
    const char *args[] = {gw, user, room_gone ? "1" : "0", user_gone ? "1" : "0"};
    chat_err_t err = queue_script(r, release_lua, &k, args, 4);
    redisReply *reply = NULL;
    if (err == CHAT_OK)
        err = chat_redis_reply(r, &reply);
    if (err == CHAT_OK && (reply == NULL || reply->type != REDIS_REPLY_INTEGER))
        err = CHAT_ERR_REDIS;
    if (err == CHAT_OK && reply->integer == 1 && pres != NULL && pres->changed != NULL)
        pres->changed(pres->ud, tenant, room, user, false, false);
    if (reply != NULL)
        freeReplyObject(reply);
    return err;
}

/* Queues one room's refresh (add) or removal script. expiry, ttl and now are decimal text
 * (unused for a removal). */
static chat_err_t queue_room(chat_redis_t *r, const char *gw, const char *now, const char *expiry,
                             const char *ttl, const gw_registry_room_t *room, bool add)
{
    room_keys_t k;
    if (!room_keys_make(&k, room->tenant, room->room))
        return CHAT_ERR_INVALID;
    size_t fixed = add ? 4 : 1;
    const char **args = calloc(fixed + room->nusers, sizeof *args);
    if (args == NULL)
        return CHAT_ERR_NOMEM;
    args[0] = gw;
    if (add) {
        args[1] = now;
        args[2] = expiry;
        args[3] = ttl;
    }
    for (size_t i = 0; i < room->nusers; i++)
        args[fixed + i] = room->users[i];
    chat_err_t err =
        queue_script(r, add ? refresh_lua : remove_lua, &k, args, fixed + room->nusers);
    free(args);
    return err;
}

/* Reads the replies of n queued room scripts, telling pres what changed; keeps the first
 * failure but reads every reply. */
static chat_err_t rooms_replies(chat_redis_t *r, const gw_registry_room_t *rooms, size_t n,
                                bool add, const gw_registry_presence_t *pres, bool *lapsed)
{
    chat_err_t first = CHAT_OK;
    for (size_t i = 0; i < n; i++) {
        redisReply *reply = NULL;
        chat_err_t err = chat_redis_reply(r, &reply);
        if (err == CHAT_OK && add && array_of(reply, 3) != NULL) {
            presence_tell(pres, rooms[i].tenant, rooms[i].room, reply->element[0], true, false);
            presence_tell(pres, rooms[i].tenant, rooms[i].room, reply->element[1], false, true);
            if (lapsed != NULL)
                lapsed[i] = reply->element[2]->type == REDIS_REPLY_INTEGER &&
                            reply->element[2]->integer == 1;
        } else if (err == CHAT_OK && !add && reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
            presence_tell(pres, rooms[i].tenant, rooms[i].room, reply, false, false);
        } else if (err == CHAT_OK) {
            err = CHAT_ERR_REDIS;
        }
        if (err != CHAT_OK && first == CHAT_OK)
            first = err;
        if (reply != NULL)
            freeReplyObject(reply);
    }
    return first;
}

static chat_err_t rooms_pipeline(chat_redis_t *r, const char *gw, int64_t now_ms, int64_t ttl_ms,
                                 const gw_registry_room_t *rooms, size_t n, bool add,
                                 const gw_registry_presence_t *pres, bool *lapsed)
{
    char now[24], expiry[24], ttl[24];
    snprintf(now, sizeof now, "%lld", (long long)now_ms);
    snprintf(expiry, sizeof expiry, "%lld", (long long)(now_ms + ttl_ms));
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_ms);
    size_t queued = 0;
    chat_err_t err = CHAT_OK;
    for (; queued < n && err == CHAT_OK; queued++)
        err = queue_room(r, gw, now, expiry, ttl, &rooms[queued], add);
    if (err != CHAT_OK)
        queued--; /* the failed one was not queued */
    chat_err_t rerr = rooms_replies(r, rooms, queued, add, pres, lapsed);
    return err != CHAT_OK ? err : rerr;
}

chat_err_t gw_registry_refresh(chat_redis_t *r, const char *gw, int64_t now_ms, int64_t ttl_ms,
                               const gw_registry_room_t *rooms, size_t n,
                               const gw_registry_presence_t *pres, bool *lapsed)
{
    for (size_t i = 0; lapsed != NULL && i < n; i++)
        lapsed[i] = false;
    return rooms_pipeline(r, gw, now_ms, ttl_ms, rooms, n, true, pres, lapsed);
}

chat_err_t gw_registry_remove(chat_redis_t *r, const char *gw, const gw_registry_room_t *rooms,
                              size_t n, const gw_registry_presence_t *pres)
{
    return rooms_pipeline(r, gw, 0, 0, rooms, n, false, pres, NULL);
}
