/* The JSON codec of the Kafka events described in proto/ (one JSON object per record,
 * always {"v":1,"type":...}). One flat struct carries every event type; a table per type
 * says which JSON fields it has and which are required, so decode validates and encode
 * emits exactly what proto/events/<type>.schema.json allows.
 * Also builds the client frames that more than one service sends (`msg`, `ack`, `error`),
 * because broadcast (live delivery) and gateway (replay, history, its own answers) must
 * produce identical bytes. */
#ifndef CHAT_COMMON_CODEC_H
#define CHAT_COMMON_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/names.h"

#define CHAT_EVENT_VERSION 1

typedef enum chat_event_type {
    CHAT_EV_INVALID = 0,
    /* chat.inbound: gateway -> message service */
    CHAT_EV_SEND,   /* "send" */
    CHAT_EV_EDIT,   /* "edit" */
    CHAT_EV_DELETE, /* "delete" */
    CHAT_EV_REACT,  /* "react" */
    /* chat.messages: message service -> broadcast, moderation, notify */
    CHAT_EV_MSG,    /* "msg": a new stored message */
    CHAT_EV_ACK,    /* "ack": the original ack for a resent cid (nothing new stored) */
    CHAT_EV_UPDATE, /* "update": edit, delete, react or moderate applied to a message */
    CHAT_EV_REJECT, /* "reject": the message service refused an inbound event */
    /* chat.events: ephemeral, gateway -> broadcast ("read" is also on chat.inbound) */
    CHAT_EV_TYPING,   /* "typing" */
    CHAT_EV_PRESENCE, /* "presence" */
    CHAT_EV_READ,     /* "read" */
    /* chat.moderation: moderation -> message service */
    CHAT_EV_VERDICT, /* "verdict" */
    /* chat.notify.dlq: notify's dead letters */
    CHAT_EV_NOTIFY_FAILED, /* "notify_failed" */
    CHAT_EV__COUNT
} chat_event_type_t;

/* A decoded or to-be-encoded event. Strings are borrowed: after chat_event_decode they
 * point into the event's own parse tree and live until chat_event_clear; for encoding they
 * belong to the caller. NULL strings and `has_*` false mean "absent". */
typedef struct chat_event {
    chat_event_type_t type;
    const char *tenant;
    const char *room;
    const char *user; /* acting user; JSON "from" in msg, "user" elsewhere */
    const char *name; /* display name of user (optional) */
    const char *cid;  /* client id of a send, echoed in ack/reject */
    const char *rid;  /* request id of edit/delete/react, echoed in reject */
    const char *id;   /* message id */
    const char *text;
    const char *emoji;
    const char *op;          /* update: "edit" | "delete" | "react" | "moderate" */
    const char *code;        /* reject: error code of the client protocol */
    const char *message;     /* reject: human-readable */
    const char *reason;      /* verdict, update(moderate) */
    const char *action;      /* verdict: "remove" | "flag" */
    const char *rule;        /* verdict */
    const char *channel;     /* notify_failed: "webpush" | "webhook" | "email" */
    const char *error;       /* notify_failed */
    const char *origin_gw;   /* gateway id of the connection the event came from */
    const char *origin_conn; /* connection (session) id on that gateway */
    int64_t seq;             /* msg, ack, update, read, verdict */
    int64_t ts;              /* ms since epoch */
    int64_t attempts;        /* notify_failed */
    bool on;                 /* react */
    bool online;             /* presence */
    bool removed;            /* update(moderate) */
    bool edited;             /* msg */
    bool has_seq, has_ts, has_on, has_online, has_removed, has_edited, has_attempts;
    cJSON *reactions; /* msg/update: {"emoji": ["user", ...]}; borrowed */
    cJSON *payload;   /* notify_failed: the event that could not be notified; borrowed */
    void *priv_;      /* parse tree of a decoded event */
} chat_event_t;

/* "send", "msg", ... ; NULL for an invalid type. */
const char *chat_event_type_name(chat_event_type_t type);
/* CHAT_EV_INVALID for an unknown name. */
chat_event_type_t chat_event_type_parse(const char *name);

/* Parses and validates one record value: JSON object, v == 1, known type, every required
 * field present with the right JSON type, names (tenant, room, user, cid) well-formed.
 * On failure returns CHAT_ERR_INVALID with a reason in errbuf (may be NULL) and leaves
 * *out cleared. On success the caller calls chat_event_clear. */
chat_err_t chat_event_decode(const void *buf, size_t len, chat_event_t *out, char *errbuf,
                             size_t errlen);

/* Frees what decode allocated and zeroes ev. Accepts a zeroed or encoded-only event. */
void chat_event_clear(chat_event_t *ev);

/* Encodes ev (its type's fields; absent optional fields are left out) as compact JSON.
 * Returns CHAT_ERR_INVALID if a required field is missing. *out is malloc'd, NUL-terminated;
 * the caller frees it. len may be NULL. */
chat_err_t chat_event_encode(const chat_event_t *ev, char **out, size_t *len);

/* Size of a buffer that holds any record key of valid names, NUL included. */
#define CHAT_ROOM_KEY_MAX (CHAT_TENANT_MAX + 1 + CHAT_ROOM_MAX + 1)

/* Writes the record key "tenant/room" into buf. Returns its length, or -1 if it does not fit
 * or tenant/room are missing. */
int chat_event_key(const char *tenant, const char *room, char *buf, size_t buflen);

/* The Redis registrations of a room (docs/message-path.md), the routing contract between
 * the gateways, which write them, and broadcast, which reads the gateways: sorted sets
 * chat:room:{tenant/room}:gws (members: gateway ids) and chat:room:{tenant/room}:online
 * (members: "<gateway id>:<user>"). The hash tag keeps a room's keys in one cluster slot. */
typedef enum chat_registry_set {
    CHAT_REGISTRY_GWS,
    CHAT_REGISTRY_ONLINE,
} chat_registry_set_t;

/* Size of a buffer that holds any registration key of valid names: the record key plus
 * "chat:room:{", "}:online" and the NUL. */
#define CHAT_REGISTRY_KEY_MAX (CHAT_ROOM_KEY_MAX + 19)

/* Writes the key of tenant/room's registration set into buf. Returns its length, or -1 if
 * it does not fit or tenant/room are missing. */
int chat_registry_key(const char *tenant, const char *room, chat_registry_set_t set, char *buf,
                      size_t buflen);

/* The client frame for a stored message (`msg` of the client protocol, proto/, README.md):
 * {"type":"msg","room","seq","id","from","name"?,"text","ts","cid"?,"edited"?,"reactions"?}.
 * Returns a new cJSON object (caller deletes) or NULL if ev is not a complete msg event. */
cJSON *chat_frame_msg_new(const chat_event_t *msg);

/* The client frame answering a send (`ack`): {"type":"ack","cid","room","seq","id","ts"},
 * from a msg event (the stored send) or an ack event (the original ack of a resent cid).
 * Returns a new cJSON object (caller deletes) or NULL if ev is neither or lacks one of
 * those fields, or out of memory. */
cJSON *chat_frame_ack_new(const chat_event_t *ev);

/* The client `error` frame: {"type":"error","code","message","rid"?,"cid"?} (rid and cid
 * left out when NULL). Returns a new cJSON object (caller deletes) or NULL if code or
 * message is missing or empty, or out of memory. */
cJSON *chat_frame_error_new(const char *code, const char *message, const char *rid,
                            const char *cid);

/* ---- chat.deliver: broadcast -> one gateway ----
 * {"v":1,"type":"deliver","items":[{"tenant","room","seq"?,"frame":{...},"conns"?:[...]}]}
 * An item without conns goes to every socket of the gateway subscribed to tenant/room; with
 * conns, only to those connections (acks, rejects). seq orders msg frames per room. */
typedef struct chat_deliver_item {
    const char *tenant;
    const char *room;
    int64_t seq;        /* 0 when the frame carries no seq */
    cJSON *frame;       /* the client frame; borrowed. May be a raw node (cJSON_CreateRaw)
                           holding the frame already serialised: a frame shared by several
                           records is then printed once, not once per record. */
    const char **conns; /* NULL: all subscribers */
    size_t nconns;
} chat_deliver_item_t;

typedef struct chat_deliver {
    chat_deliver_item_t *items;
    size_t nitems;
    void *priv_;
} chat_deliver_t;

/* Encodes items as one chat.deliver value. *out is malloc'd; caller frees. */
chat_err_t chat_deliver_encode(const chat_deliver_item_t *items, size_t n, char **out, size_t *len);

/* Decodes and validates a chat.deliver value. Frees with chat_deliver_clear. */
chat_err_t chat_deliver_decode(const void *buf, size_t len, chat_deliver_t *out, char *errbuf,
                               size_t errlen);
void chat_deliver_clear(chat_deliver_t *d);

#endif
