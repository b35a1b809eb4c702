/* Who may join and page a room (docs/server-api.md, "How a gateway enforces membership"): a
 * room that is not a dm room is what its `rooms` document says (none: public; kind
 * "private": private; deleted: gone), and a private room is open to the users with a
 * `members` document. Worker threads only: MongoDB reads by _id, one for the kind (none when
 * the caller knows it) and one for the membership of a private room. */
#ifndef CHAT_GATEWAY_ROOM_ACCESS_H
#define CHAT_GATEWAY_ROOM_ACCESS_H

#include <stdbool.h>

#include "common/err.h"
#include "common/store.h"
#include "services/gateway/frames.h"
#include "services/gateway/rooms.h"

#define GW_ROOMS_COLLECTION "rooms"
#define GW_MEMBERS_COLLECTION "members"

typedef enum gw_access {
    GW_ACCESS_OK,         /* public, or private with the user a member */
    GW_ACCESS_GONE,       /* the room was deleted: not_found */
    GW_ACCESS_NOT_MEMBER, /* private, the user is not a member: forbidden */
} gw_access_t;

/* Reads tenant/room's `rooms` document: *kind GW_ROOM_KIND_PUBLIC (none) or _PRIVATE, *gone
 * true for a deleted room. Returns CHAT_OK or the driver's error (logged). */
chat_err_t gw_access_room_kind(chat_store_t *st, mongoc_client_t *client, const char *tenant,
                               const char *room, gw_room_kind_t *kind, bool *gone);

/* Decides user's access to tenant/room (not a dm room). known is the kind the caller has
 * cached (GW_ROOM_KIND_UNKNOWN: read it); *kind gets the kind used. Returns CHAT_OK with
 * *verdict set, or the driver's error (logged; *verdict unset). */
chat_err_t gw_access_check(chat_store_t *st, const char *tenant, const char *room, const char *user,
                           gw_room_kind_t known, gw_room_kind_t *kind, gw_access_t *verdict);

/* The error a refused request gets: code and a static message. */
void gw_access_refusal(gw_access_t verdict, gw_code_t *code, const char **message);

#endif
