/* The gateway's local room table: tenant/room -> the subscriptions of this gateway's
 * sockets, with the join protocol of docs/message-path.md: a subscription starts pending
 * (live deliveries are held for it), becomes active once its replay has been queued (held
 * deliveries follow, above the last seq sent), and filters msg frames at or below the last
 * seq it sent and update frames at or below the last useq it sent. Owned by the event loop;
 * no I/O: the table reports registration changes and hands frames to its sink. */
#ifndef CHAT_GATEWAY_ROOMS_H
#define CHAT_GATEWAY_ROOMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "services/gateway/outq.h"

typedef struct gw_rooms gw_rooms_t;

/* Who may use a room (docs/server-api.md): dm rooms their two members, public rooms
 * everyone, private rooms their members. A room's kind is kept while the gateway has
 * subscriptions to it (the subscription is the cache: it goes with the room's last one). */
typedef enum gw_room_kind {
    GW_ROOM_KIND_UNKNOWN = 0, /* not known here: read MongoDB's `rooms` */
    GW_ROOM_KIND_PUBLIC,
    GW_ROOM_KIND_PRIVATE,
} gw_room_kind_t;
typedef struct gw_sub gw_sub_t;

/* Where the table sends things; every callback runs on the loop. */
typedef struct gw_rooms_sink {
    /* Queue buf (a reference the callee takes over) to the subscription's owner. seq is the
     * msg frame's seq, 0 for other frames. */
    void (*deliver)(void *ud, void *owner, gw_buf_t *buf, int64_t seq);
    /* A pending subscription could hold no more deliveries: its owner is too slow. Called
     * once per join generation. */
    void (*overflow)(void *ud, void *owner);
    /* A subscription went away: room_empty if it was the room's last one on this gateway,
     * user_gone if it was user's last one in the room. Strings live for the call. */
    void (*released)(void *ud, const char *tenant, const char *room, const char *user,
                     bool room_empty, bool user_gone);
    void *ud;
} gw_rooms_sink_t;

/* held_max bounds the deliveries a pending subscription holds. sink is copied. NULL if out
 * of memory. */
gw_rooms_t *gw_rooms_new(size_t held_max, const gw_rooms_sink_t *sink);

/* Frees the table and any subscription still in it, without callbacks; owners' list heads
 * become dangling, so owners must be gone first. Accepts NULL. */
void gw_rooms_free(gw_rooms_t *r);

/* Subscribes owner (whose subscription list starts at *owner_subs) to tenant/room as user.
 * An existing subscription of the owner to that room is reused. Either way the
 * subscription becomes pending, with nothing held and a generation the table never handed
 * out before (also not to an earlier subscription to the room that was left since). Returns NULL if
 * out of memory. */
gw_sub_t *gw_rooms_join(gw_rooms_t *r, gw_sub_t **owner_subs, void *owner, const char *tenant,
                        const char *room, const char *user);

/* The owner's subscription to room (owners live in one tenant), or NULL. */
gw_sub_t *gw_rooms_find(gw_sub_t *owner_subs, const char *room);

/* Removes sub (freeing what it holds) and reports it to sink.released. */
void gw_rooms_leave(gw_rooms_t *r, gw_sub_t **owner_subs, gw_sub_t *sub);

/* gw_rooms_leave for every subscription of the owner. */
void gw_rooms_leave_all(gw_rooms_t *r, gw_sub_t **owner_subs);

/* A live delivery for every subscription of tenant/room. order says what the frame is: > 0 a
 * msg with that seq, < 0 an update with useq -order, 0 anything else. Active subscriptions get
 * buf unless it is a msg at or below their last seq, or an update at or below their last useq;
 * pending ones hold it. buf stays the caller's (the table takes references). Returns how many
 * subscriptions took it. */
size_t gw_rooms_deliver(gw_rooms_t *r, const char *tenant, const char *room, gw_buf_t *buf,
                        int64_t order);

/* Makes a pending sub active with last_seq and last_useq as the last seq and useq it sent,
 * then hands over its held deliveries, dropping msgs and updates at or below them. */
void gw_rooms_activate(gw_rooms_t *r, gw_sub_t *sub, int64_t last_seq, int64_t last_useq);

/* gw_rooms_deliver, skipping the subscriptions of except_user (NULL: nobody skipped): a
 * typing frame does not go back to the typer's own connections. */
size_t gw_rooms_deliver_except(gw_rooms_t *r, const char *tenant, const char *room, gw_buf_t *buf,
                               int64_t order, const char *except_user);

/* The typing throttle of sub's user in sub's room on this gateway (every connection of the
 * user counts together): true, and now_us remembered, if the user's last typing there that
 * was let through is at least interval_us old (or there was none); false otherwise. The
 * memory goes with the user's last subscription to the room. */
bool gw_rooms_typing_allow(gw_sub_t *sub, int64_t now_us, int64_t interval_us);

uint32_t gw_sub_gen(const gw_sub_t *sub);
bool gw_sub_active(const gw_sub_t *sub);
int64_t gw_sub_last_seq(const gw_sub_t *sub);
int64_t gw_sub_last_useq(const gw_sub_t *sub);
size_t gw_sub_held(const gw_sub_t *sub);

/* The kind of tenant/room that a joined subscription learnt (gw_rooms_kind_set), or
 * GW_ROOM_KIND_UNKNOWN (no subscription here, or none that finished its join). */
gw_room_kind_t gw_rooms_kind(const gw_rooms_t *r, const char *tenant, const char *room);

/* Remembers the kind of sub's room, for as long as the room has subscriptions here. */
void gw_rooms_kind_set(gw_sub_t *sub, gw_room_kind_t kind);

/* Ends subscriptions to tenant/room after a notice (docs/server-api.md): those of user, or
 * every one if user is NULL. For each, calls ended(ud, owner) on the loop; the owner leaves
 * the subscription there (gw_rooms_leave). The owners are collected before the first call, so
 * ended may change the table. Returns how many were ended, or SIZE_MAX if out of memory
 * (none was). */
size_t gw_rooms_end(gw_rooms_t *r, const char *tenant, const char *room, const char *user,
                    void (*ended)(void *ud, void *owner), void *ud);

/* Among the active subscriptions to tenant/room: the lowest and highest last seq sent, and the
 * lowest last useq sent; false if it has none. */
bool gw_rooms_marks(const gw_rooms_t *r, const char *tenant, const char *room, int64_t *min_seq,
                    int64_t *max_seq, int64_t *min_useq);

/* Rooms with at least one subscription. */
size_t gw_rooms_count(const gw_rooms_t *r);

/* Calls fn for each room with its distinct users (valid during the call). */
void gw_rooms_foreach(const gw_rooms_t *r,
                      void (*fn)(const char *tenant, const char *room, const char *const *users,
                                 size_t nusers, void *ud),
                      void *ud);

#endif
