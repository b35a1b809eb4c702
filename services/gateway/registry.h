/* The gateway's registrations in Redis (docs/message-path.md): which gateways follow a room
 * and which users are online in it, the sets of chat_registry_key (common/contract.h), both
 * sorted sets scored by expiry time (ms). Every write also sets the key's own expiry to the
 * same TTL, so the sets of abandoned rooms disappear. Worker threads only (one chat_redis_t
 * each); registrations.c and join.c decide when, on the worker of the room's shard. */
#ifndef CHAT_GATEWAY_REGISTRY_H
#define CHAT_GATEWAY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/redis.h"

/* A room with the users this gateway holds in it (for refreshes and the final removal). */
typedef struct gw_registry_room {
    const char *tenant;
    const char *room;
    const char *const *users;
    size_t nusers;
} gw_registry_room_t;

/* Appends a deep copy of tenant/room with its users to *rooms (*n entries, capacity *cap,
 * grown as needed). Returns false if out of memory: then nothing was appended and *rooms
 * still holds the *n entries before. */
bool gw_registry_rooms_append(gw_registry_room_t **rooms, size_t *n, size_t *cap,
                              const char *tenant, const char *room, const char *const *users,
                              size_t nusers);

/* Frees n copies made by gw_registry_rooms_append, and the array. Accepts NULL. */
void gw_registry_rooms_free(gw_registry_room_t *rooms, size_t n);

/* The online members (as read from Redis) to user ids: strips the "<gateway>:" prefix and
 * drops duplicates (a user online through two gateways is one user). Fills users (room
 * for n) with pointers into members, in byte order; returns how many. */
size_t gw_registry_users(const char *const *members, size_t n, const char **users);

/* Step (1) of a join: adds gw to the room's gws set and gw:user to its online set with
 * expiry now_ms + ttl_ms, then reads the users online now. On CHAT_OK *users is a
 * malloc'd array of *nusers malloc'd strings (free with gw_registry_users_free). */
chat_err_t gw_registry_join(chat_redis_t *r, const char *gw, int64_t now_ms, int64_t ttl_ms,
                            const char *tenant, const char *room, const char *user, char ***users,
                            size_t *nusers);

void gw_registry_users_free(char **users, size_t n);

/* Removes gw from the room's gws set (room_gone) and/or gw:user from its online set
 * (user_gone). */
chat_err_t gw_registry_release(chat_redis_t *r, const char *gw, const char *tenant,
                               const char *room, const char *user, bool room_gone, bool user_gone);

/* Heartbeat: re-adds gw and its users to every listed room with a new expiry, in one
 * pipeline of one ZADD and one PEXPIRE per key (every user of a room in one ZADD). */
chat_err_t gw_registry_refresh(chat_redis_t *r, const char *gw, int64_t now_ms, int64_t ttl_ms,
                               const gw_registry_room_t *rooms, size_t n);

/* Shutdown: removes gw and its users from every listed room, in one pipeline of one ZREM
 * per key. */
chat_err_t gw_registry_remove(chat_redis_t *r, const char *gw, const gw_registry_room_t *rooms,
                              size_t n);

#endif
