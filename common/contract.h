/* The platform's contract between its services, in one place (docs/message-path.md,
 * proto/topics/): the Kafka topics and what selects their partitions, the record key of a
 * room, the rule that a gateway's index is its partition of chat.deliver (and its id in
 * Redis and in event origins), and the Redis keys through which gateways tell broadcast
 * which rooms they follow. Every service includes this header rather than spelling a topic
 * or a key itself, and checks at start that the topics it uses exist. The recent history of
 * each room kept in Redis for joins and history pages is declared here too (last section). */
#ifndef CHAT_COMMON_CONTRACT_H
#define CHAT_COMMON_CONTRACT_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "common/err.h"
#include "common/names.h"

/* ---- topics (config/topics.conf creates them) ---- */

/* Default names. A deployment may rename them (side by side with another, or in tests) with
 * the CHAT_TOPIC_* variables below, which every service that uses a topic reads the same
 * way, so producers and consumers cannot disagree. */
#define CHAT_TOPIC_INBOUND "chat.inbound"   /* gateway -> message; key tenant/room */
#define CHAT_TOPIC_MESSAGES "chat.messages" /* message -> broadcast...; key tenant/room */
#define CHAT_TOPIC_DELIVER "chat.deliver"   /* broadcast -> gateway; partition = gateway index */
#define CHAT_TOPIC_EVENTS "chat.events"     /* gateway -> broadcast: typing, presence */
#define CHAT_TOPIC_MODERATION                                                                      \
    "chat.moderation"                           /* moderation, api -> message: verdicts;           \
                                                   key tenant/room */
#define CHAT_TOPIC_NOTIFY_DLQ "chat.notify.dlq" /* notify: notifications it gave up on */

/* Config table entries of the topic names (common/config.h), for the services that use them. */
#define CHAT_CFG_TOPIC_INBOUND(st, field)                                                          \
    CHAT_CFG_STRING("CHAT_TOPIC_INBOUND", st, field, CHAT_TOPIC_INBOUND,                           \
                    "topic of client sends (same name in every service)")
#define CHAT_CFG_TOPIC_MESSAGES(st, field)                                                         \
    CHAT_CFG_STRING("CHAT_TOPIC_MESSAGES", st, field, CHAT_TOPIC_MESSAGES,                         \
                    "topic of stored messages and outcomes (same name in every service)")
#define CHAT_CFG_TOPIC_DELIVER(st, field)                                                          \
    CHAT_CFG_STRING("CHAT_TOPIC_DELIVER", st, field, CHAT_TOPIC_DELIVER,                           \
                    "topic of deliveries, one partition per gateway (same name in every service)")
#define CHAT_CFG_TOPIC_EVENTS(st, field)                                                           \
    CHAT_CFG_STRING("CHAT_TOPIC_EVENTS", st, field, CHAT_TOPIC_EVENTS,                             \
                    "topic of ephemeral room events: typing, presence (same name in every "        \
                    "service)")

#define CHAT_CFG_TOPIC_MODERATION(st, field)                                                       \
    CHAT_CFG_STRING("CHAT_TOPIC_MODERATION", st, field, CHAT_TOPIC_MODERATION,                     \
                    "topic of moderation verdicts, as many partitions as the inbound topic "       \
                    "(same name in every service)")

#define CHAT_CFG_TOPIC_NOTIFY_DLQ(st, field)                                                       \
    CHAT_CFG_STRING("CHAT_TOPIC_NOTIFY_DLQ", st, field, CHAT_TOPIC_NOTIFY_DLQ,                     \
                    "topic of the notifications notify gave up on (dead letters)")

/* A topic a service uses, and the variable that named it (for the error at start). */
typedef struct chat_topic_use {
    const char *var;  /* e.g. "CHAT_TOPIC_DELIVER" */
    const char *name; /* the configured name */
} chat_topic_use_t;

/* Checks that each of the n topics exists, with one Kafka client and within timeout_ms.
 * partitions (may be NULL) gets each topic's partition count. Returns CHAT_OK;
 * CHAT_ERR_CONFIG for a missing topic (logged with its variable and name; *bad_var, if not
 * NULL, names the variable); CHAT_ERR_KAFKA if the brokers did not answer (logged;
 * *bad_var = "CHAT_KAFKA_BROKERS"); CHAT_ERR_CONFIG with *bad_var = "KAFKA_*" if librdkafka
 * refused a KAFKA_* setting (logged by the bus with its variable). */
chat_err_t chat_topics_check(const char *brokers, const chat_topic_use_t *topics, size_t n,
                             int timeout_ms, int *partitions, const char **bad_var);

/* ---- record keys ---- */

/* Size of a buffer that holds any record key of valid names, NUL included. */
#define CHAT_ROOM_KEY_MAX (CHAT_TENANT_MAX + 1 + CHAT_ROOM_MAX + 1)

/* Writes the record key "tenant/room" into buf: the key of every record about a room on
 * chat.inbound and chat.messages (so one partition orders the room), and the key of the
 * in-process tables of rooms. Returns its length, or -1 if it does not fit or tenant/room
 * are missing. */
int chat_room_key(const char *tenant, const char *room, char *buf, size_t buflen);

/* ---- gateways ---- */

/* A gateway's index (CHAT_GATEWAY_INDEX, unique per gateway) is its partition of
 * chat.deliver, and, written in decimal, its id: in the Redis registrations and in the
 * origin of the events its clients cause. */
#define CHAT_GATEWAY_INDEX_MAX 4095
#define CHAT_GATEWAY_ID_MAX 8 /* "4095" and the NUL, with room to spare */

/* Writes gateway index's id into buf. Returns its length, or -1 if index is outside
 * 0..CHAT_GATEWAY_INDEX_MAX or buf is too small. */
int chat_gateway_id(int64_t index, char *buf, size_t buflen);

/* The chat.deliver partition of the gateway with id s (its index): -1 if s is not a
 * gateway id (decimal digits without a leading zero, at most INT32_MAX). */
int32_t chat_gateway_partition(const char *s);

/* The chat.deliver partition a gateway with this index consumes: the index itself, or -1
 * outside 0..CHAT_GATEWAY_INDEX_MAX. A gateway whose partition is not below the topic's
 * partition count cannot start. */
int32_t chat_gateway_index_partition(int64_t index);

/* ---- Redis: the rooms each gateway follows, and who is online in them ----
 * Sorted sets per room, written by the gateways (with their registrations' expiry in ms as
 * the score) and read by broadcast: chat:room:{tenant/room}:gws (members: gateway ids) and
 * chat:room:{tenant/room}:online (members: "<gateway id>:<user>"). Beside them the hash
 * chat:room:{tenant/room}:presence (field: user, value: how many members of the online set
 * are that user's, one per gateway holding them), changed only together with the online
 * set by the gateways' scripts, so that a user's first entry and last exit are known
 * atomically across gateways (docs/message-path.md, "Presence"). The hash tag keeps a
 * room's keys in one cluster slot. */
typedef enum chat_registry_set {
    CHAT_REGISTRY_GWS,
    CHAT_REGISTRY_ONLINE,
    CHAT_REGISTRY_PRESENCE,
} chat_registry_set_t;

/* Size of a buffer that holds any registration key of valid names: the record key plus
 * "chat:room:{", "}:presence" and the NUL. */
#define CHAT_REGISTRY_KEY_MAX (CHAT_ROOM_KEY_MAX + 21)

/* Writes the key of tenant/room's registration set into buf. Returns its length, or -1 if
 * it does not fit or tenant/room are missing. */
int chat_registry_key(const char *tenant, const char *room, chat_registry_set_t set, char *buf,
                      size_t buflen);

/* ---- Redis: the recent history of a room ----
 * chat:room:{tenant/room}:recent, a sorted set written by the message service after a batch
 * is stored in MongoDB and before it is published (and by a gateway that fills a cold room
 * from MongoDB), read by the gateways for joins, resumes and history pages:
 * - one member per message: score = seq, member = the exact client `msg` frame
 *   (chat_frame_msg_new printed compactly: the bytes broadcast sends and a gateway replays);
 * - one marker member at score 0: the run_id (chat_redis_run_id) of the Redis server that
 *   took the last write. A set whose marker is not the run_id of the server answering now
 *   may have lost writes (a restart, a failover) and is not trusted;
 * - the newest CHAT_RECENT_MAX messages, the key expiring CHAT_RECENT_TTL after its last
 *   write, so that idle rooms go cold (and are read from MongoDB again).
 * docs/message-path.md has the invariants that make an answer from it exact. */

#define CHAT_RECENT_MARKER_SCORE 0

/* Size of a buffer that holds any recent-history key of valid names: the record key plus
 * "chat:room:{", "}:recent" and the NUL. */
#define CHAT_RECENT_KEY_MAX (CHAT_ROOM_KEY_MAX + 19)

/* Writes the key of tenant/room's recent history into buf. Returns its length, or -1 if it
 * does not fit or tenant/room are missing. */
int chat_recent_key(const char *tenant, const char *room, char *buf, size_t buflen);

/* ---- Redis: the latest update sequence of a room ----
 * chat:room:{tenant/room}:useq, a string "<run_id>:<useq>": the room's latest useq (the
 * sequence of changes to its messages: edits, deletes, reactions), written by the message
 * service after the recent history of a batch's updates and before publishing them (and by a
 * gateway that read it from MongoDB), read by the gateways for joined.useq. Trusted only when
 * run_id is the answering server's (docs/message-path.md). Expires like the recent history. */

/* Writes the key of tenant/room's latest useq into buf. Returns its length, or -1 if it does
 * not fit or tenant/room are missing. */
int chat_useq_key(const char *tenant, const char *room, char *buf, size_t buflen);

#define CHAT_USEQ_VALUE_MAX 96 /* a run id (40 hex digits here) and a decimal useq */

/* The useq key's value: "<run_id>:<useq>". Writes it into buf; returns its length, or -1 if
 * it does not fit. */
int chat_useq_value(const char *run_id, int64_t useq, char *buf, size_t buflen);

/* Reads a useq key's value of len bytes: true, with *useq, if it is well-formed and was written
 * under run_id (the answering server's: the value is trusted); false otherwise. */
bool chat_useq_value_parse(const char *value, size_t len, const char *run_id, int64_t *useq);

/* Config table entries of the recent history, for every service that writes or reads it:
 * the same values everywhere. The default keeps what a join replays at most (CHAT_REPLAY_MAX,
 * 500), so that any resume the gateway can answer at all is answered from Redis. */
#define CHAT_RECENT_MAX_DEFAULT 500
#define CHAT_CFG_RECENT_MAX(st, field)                                                             \
    CHAT_CFG_INTEGER("CHAT_RECENT_MAX", st, field, CHAT_CFG_QUOTE(CHAT_RECENT_MAX_DEFAULT), 0,     \
                     100000,                                                                       \
                     "newest messages of each room kept in Redis for joins and history (0: "       \
                     "none; the same in every service)")
#define CHAT_CFG_RECENT_TTL(st, field)                                                             \
    CHAT_CFG_DURATION("CHAT_RECENT_TTL", st, field, "168h", 1000, 2592000000LL,                    \
                      "how long a room's recent history stays in Redis after its last write")

/* ---- Redis: what a user's room list reads (services/gateway/room_list.c) ----
 * chat:room:{tenant/room}:summary, a hash the message service writes when it stores a
 * message (only ever forward: a write with a lower seq than the hash holds changes nothing):
 * `seq` (the room's latest seq), `ts` (its ts, ms: the room's last activity) and `last` (its
 * msg frame, the bytes of the recent history). Other writers may add fields of their own
 * (`useq`). No expiry: one small hash per room that ever had a message.
 * chat:user:{tenant/user}:rooms, a set of the rooms whose entry in MongoDB `user_rooms` the
 * gateways know to be written (a join checks it before writing MongoDB, so that reconnects
 * cost one SADD). Losing it only costs a repeated, idempotent write. */

/* Size of a buffer that holds any summary key of valid names. */
#define CHAT_ROOM_SUMMARY_KEY_MAX (CHAT_ROOM_KEY_MAX + 20)
/* Size of a buffer that holds any user-rooms key of valid names. */
#define CHAT_USER_ROOMS_KEY_MAX (CHAT_TENANT_MAX + 1 + CHAT_USER_MAX + 20)

/* Writes the key of tenant/room's summary hash into buf. Returns its length, or -1 if it does
 * not fit or tenant/room are missing. */
int chat_room_summary_key(const char *tenant, const char *room, char *buf, size_t buflen);

/* Writes the key of tenant/user's set of known rooms into buf. Returns its length, or -1 if
 * it does not fit or tenant/user are missing. */
int chat_user_rooms_key(const char *tenant, const char *user, char *buf, size_t buflen);

/* ---- the server API's reply channel (services/api, services/broadcast) ----
 * The api service produces sends, edits and deletes to chat.inbound like a gateway, with the
 * origin {gw: CHAT_API_ORIGIN, conn: <a token unique to the request>}. Broadcast, which routes
 * a gateway origin's answer (the ack or error frame) to that gateway's partition of
 * chat.deliver, routes an api origin's answer to the Redis list
 * chat:api:reply:{<conn>} instead (RPUSH of the client frame's JSON, then an expiry of
 * CHAT_API_REPLY_TTL_S), where the api instance that made the request waits for it (BLPOP). */
#define CHAT_API_ORIGIN "api"
#define CHAT_API_REPLY_TTL_S 120
/* The user id of system messages and of the tenant's own edits and deletes: reserved, no user
 * token may carry it (the gateway refuses it at auth), only the api service produces it. */
#define CHAT_SYSTEM_USER "system"
/* Size of a buffer that holds any reply key of a conn id of valid length. */
#define CHAT_ORIGIN_CONN_MAX 64 /* an origin's conn id, in bytes (proto defs conn_id) */
#define CHAT_API_REPLY_KEY_MAX (CHAT_ORIGIN_CONN_MAX + 24)

/* The `_id` of a `members` document (docs/server-api.md), which the api writes and gateways
 * read by: "tenant/room/user". A `rooms` document's `_id` is the room key (chat_room_key). */
#define CHAT_MEMBER_ID_MAX (CHAT_ROOM_KEY_MAX + 1 + CHAT_USER_MAX * 4)

/* Writes the `_id` of tenant/room's member user into buf. Returns its length, or -1 if it does
 * not fit or a part is missing. */
int chat_member_id(const char *tenant, const char *room, const char *user, char *buf,
                   size_t buflen);

/* True if origin_gw names the api service rather than a gateway. */
bool chat_origin_is_api(const char *origin_gw);

/* Writes the key of the reply list of conn into buf. Returns its length, or -1 if it does not
 * fit or conn is missing. */
int chat_api_reply_key(const char *conn, char *buf, size_t buflen);

#endif
