/* Fan-out of one batch of chat.messages and chat.events into per-gateway chat.deliver records:
 * which frame goes to which gateway (and connection), in input order, split into records of bounded
 * size. Pure logic: no I/O, the followers of each room are given by the caller. */
#ifndef CHAT_BROADCAST_FANOUT_H
#define CHAT_BROADCAST_FANOUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/events.h"
#include "common/err.h"

/* A gateway's items go into records of at most this many bytes (more records if needed):
 * well below Kafka's default message.max.bytes (1 MB), so a burst never makes a record the
 * broker refuses. */
#define BROADCAST_RECORD_MAX ((size_t)512 * 1024)

typedef struct broadcast_fanout broadcast_fanout_t;

/* Counters of the current batch (since the last reset). */
typedef struct broadcast_fanout_stats {
    uint64_t msg_items;              /* msg frames queued, one per following gateway */
    uint64_t update_items;           /* update frames queued, one per following gateway */
    uint64_t ack_items;              /* ack frames queued for origin connections */
    uint64_t error_items;            /* error frames (from reject) queued for origin connections */
    uint64_t typing_items;           /* typing frames queued, one per following gateway */
    uint64_t presence_items;         /* presence frames queued, one per following gateway */
    uint64_t read_items;             /* read frames queued, one per following gateway */
    uint64_t api_replies;            /* ack and error frames for api origins (api_replies) */
    uint64_t unknown_gateway;        /* deliveries dropped: index outside chat.deliver */
    int32_t unknown_gateway_example; /* one such index, for the log (-1: not a number) */
    uint64_t unhandled;              /* events of types broadcast does not route (yet) */
    uint64_t incomplete;             /* events the frame builders refused (fields missing) */
} broadcast_fanout_stats_t;

/* An answer (ack or error frame) to a request of the api service (origin gw CHAT_API_ORIGIN):
 * it goes to the Redis list chat_api_reply_key(conn), not to chat.deliver (contract.h). */
typedef struct broadcast_api_reply {
    const char *conn;  /* the origin's conn (borrowed from the event) */
    const char *frame; /* the frame's compact JSON (owned by the fan-out until its reset) */
    size_t len;
} broadcast_api_reply_t;

/* Called for each record, gateway by gateway (ascending index), and within a gateway in
 * item order. value is valid during the call only. A non-OK return stops the emit. */
typedef chat_err_t (*broadcast_record_fn)(void *ud, int32_t gateway, const char *value, size_t len,
                                          size_t nitems);

/* Returns a new fan-out (no gateways until the first reset) or NULL when out of memory.
 * Free with broadcast_fanout_free. */
broadcast_fanout_t *broadcast_fanout_new(void);

/* Frees f and every frame it still holds. Accepts NULL. */
void broadcast_fanout_free(broadcast_fanout_t *f);

/* Starts a batch for gateways 0..ngateways-1 (the partitions of chat.deliver): drops the
 * items, frames and counters of the previous batch. Returns CHAT_ERR_INVALID for
 * ngateways < 0, CHAT_ERR_NOMEM when out of memory. */
chat_err_t broadcast_fanout_reset(broadcast_fanout_t *f, int32_t ngateways);

/* Routes one decoded event, appending to the gateways' item lists:
 *   msg    -> its msg frame (built once, shared) to every follower, then an ack frame to
 *             the origin connection on the origin gateway (if the event has an origin); a
 *             member_removed or room_deleted notice's items carry end (deliver_codec.h);
 *   update -> its update frame (built once, shared) to every follower, as an item whose seq
 *             is the update's useq (the gateways filter updates by it), then the actor's
 *             ack frame {rid?, room, id, seq, op, useq} to the origin connection;
 *   ack    -> the ack frame to the origin connection (of a send, or of an update: a resend
 *             or a change that changed nothing);
 *   reject -> an error frame to the origin connection;
 *   (an origin whose gw is CHAT_API_ORIGIN gets its ack or error frame in the api replies
 *   instead: broadcast_fanout_api_replies);
 *   typing -> the typing frame {room, user, name?} to every follower, skipping the typer's
 *             own sockets there (the item's except_user);
 *   presence -> the presence frame {room, user, online} to every follower, skipping the
 *             user's own sockets there (except_user) too;
 *   read   -> its read frame to every follower (a read mark moved);
 *   others -> counted as unhandled and skipped.
 * followers: the gateway indexes following the event's room (duplicates are ignored);
 * msg, update, typing, presence and read use them. Indexes outside 0..ngateways-1 are
 * counted and skipped. ev's strings are borrowed until the emit is done. Returns
 * CHAT_ERR_NOMEM only; what cannot be routed is counted in the stats. */
chat_err_t broadcast_fanout_add(broadcast_fanout_t *f, const chat_event_t *ev,
                                const int32_t *followers, size_t nfollowers);

/* Encodes every gateway's items as chat.deliver values of at most max_bytes each (an item
 * bigger than that alone makes one record) and hands them to emit. Returns the first error
 * of emit or of the encoder. */
chat_err_t broadcast_fanout_emit(broadcast_fanout_t *f, size_t max_bytes, broadcast_record_fn emit,
                                 void *ud);

/* The answers of the current batch to api origins, in input order (*n of them); valid until
 * the next reset. */
const broadcast_api_reply_t *broadcast_fanout_api_replies(const broadcast_fanout_t *f, size_t *n);

/* The counters of the current batch. */
const broadcast_fanout_stats_t *broadcast_fanout_stats(const broadcast_fanout_t *f);

#endif
