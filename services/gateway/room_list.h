/* The gateway's side of a user's room list: the index MongoDB `user_rooms`, one document per
 * (tenant, user, room) {kind, joined, name?}, written when a user first joins a room (a dm
 * room: for both its members) and removed when they leave a public one (private rooms'
 * documents come from the server API), and the `rooms` request, whose page is read by
 * common/room_list.h (shared with the server API). Worker threads only, except where noted. */
#ifndef CHAT_GATEWAY_ROOM_LIST_H
#define CHAT_GATEWAY_ROOM_LIST_H

#include "common/err.h"
#include "common/redis.h"
#include "common/room_list.h"
#include "common/store.h"
#include "services/gateway/gateway.h"

/* Creates the indexes of user_rooms: unique (tenant, user, room). At start. */
chat_err_t gw_room_list_open(chat_store_t *st);

/* Carries out req (gw_session_ops_t.submit_rooms); the answer comes through
 * gw_session_rooms_done. CHAT_ERR_NOMEM if the job could not be made. Loop. */
chat_err_t gw_room_list_submit(gw_gateway_t *gw, const gw_rooms_req_t *req);

/* A join of room by user succeeded: makes sure user_rooms lists it (one SADD to the user's
 * set of known rooms when it does already; a MongoDB upsert the first time). Failures are
 * logged and counted, never the join's. Worker (the room's shard, in order with leaves). */
void gw_room_list_note_join(gw_gateway_t *gw, chat_redis_t *redis, const char *tenant,
                            const char *room, const char *user);

/* user left room: a public room leaves the list (dm rooms stay). Queued on the room's shard
 * worker, in order with the joins. Loop. */
void gw_room_list_note_leave(gw_gateway_t *gw, const char *tenant, const char *room,
                             const char *user);

#endif
