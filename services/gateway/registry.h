/* The gateway's registrations in Redis (docs/message-path.md): which gateways follow a room
 * and which users are online in it, the sets of chat_registry_key (common/contract.h), both
 * sorted sets scored by expiry time (ms), and the presence hash that counts each user's
 * members of the online set. Every write also sets the keys' own expiry to the same TTL, so
 * the keys of abandoned rooms disappear. Each command that changes the online set is one
 * Lua script (atomic on the server), which also tells whether a user's first member in the
 * room appeared or their last one went, whatever the other gateways do at the same time;
 * joins and heartbeats also remove the members that expired (a gateway that died) and tell
 * which users went offline with them. Worker threads only (one chat_redis_t each);
 * registrations.c and join.c decide when, on the worker of the room's shard. */
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

/* Told of each presence change a command caused: user's first member in tenant/room
 * appeared (online) or their last one went (!online; expired: removed because its gateway
 * stopped refreshing it). Runs on the calling (worker) thread; strings live for the call. */
typedef struct gw_registry_presence {
    void (*changed)(void *ud, const char *tenant, const char *room, const char *user, bool online,
                    bool expired);
    void *ud;
} gw_registry_presence_t;

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
 * expiry now_ms + ttl_ms, removes the expired members, then reads the users online now, in
 * one script. pres (may be NULL) hears whether the user came online and who went offline
 * with the expired members. On CHAT_OK *users is a malloc'd array of *nusers malloc'd
 * strings (free with gw_registry_users_free). */
chat_err_t gw_registry_join(chat_redis_t *r, const char *gw, int64_t now_ms, int64_t ttl_ms,
                            const char *tenant, const char *room, const char *user, char ***users,
                            size_t *nusers, const gw_registry_presence_t *pres);

void gw_registry_users_free(char **users, size_t n);

/* Removes gw from the room's gws set (room_gone) and/or gw:user from its online set
 * (user_gone), in one script; pres (may be NULL) hears if that was the user's last member. */
chat_err_t gw_registry_release(chat_redis_t *r, const char *gw, const char *tenant,
                               const char *room, const char *user, bool room_gone, bool user_gone,
                               const gw_registry_presence_t *pres);

/* Heartbeat: re-adds gw and its users to every listed room with a new expiry and removes the
 * room's expired members, in one pipeline of one script per room. pres (may be NULL) hears
 * who went offline with the expired members, and who came back online (a member of this
 * gateway that had expired before its refresh, its user gone meanwhile). lapsed (n flags,
 * may be NULL) tells the rooms where gw itself had expired: broadcast did not send them here
 * for a while (a heartbeat that came too late); false where the reply did not come. */
chat_err_t gw_registry_refresh(chat_redis_t *r, const char *gw, int64_t now_ms, int64_t ttl_ms,
                               const gw_registry_room_t *rooms, size_t n,
                               const gw_registry_presence_t *pres, bool *lapsed);

/* Shutdown: removes gw and its users from every listed room, in one pipeline of one script
 * per room; pres (may be NULL) hears whose last member that was. */
chat_err_t gw_registry_remove(chat_redis_t *r, const char *gw, const gw_registry_room_t *rooms,
                              size_t n, const gw_registry_presence_t *pres);

#endif
