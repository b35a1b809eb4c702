/* The JSON codec of the Kafka events described in proto/ (one JSON object per record,
 * always {"v":1,"type":...}) on chat.inbound, chat.messages, chat.events, chat.moderation and
 * chat.notify.dlq. One flat struct carries every event type; a table per type says which
 * JSON fields it has and which are required, so decode validates and encode emits exactly
 * what proto/events/<type>.schema.json allows. Record keys and topic names are in
 * contract.h; chat.deliver's batches in deliver_codec.h. */
#ifndef CHAT_COMMON_EVENTS_H
#define CHAT_COMMON_EVENTS_H

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
    CHAT_EV_ACK,    /* "ack": the original ack of a resent cid, or of an edit, delete or react
                       that changed nothing new (a resend, a reaction already there) */
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
    const char *rid;  /* request id of edit/delete/react, echoed in ack/reject */
    const char *id;   /* message id */
    const char *text;
    const char *emoji;
    const char *op;          /* update: "edit" | "delete" | "react" | "moderate" */
    const char *code;        /* reject: error code of the client protocol */
    const char *message;     /* reject: human-readable */
    const char *reason;      /* verdict, update(moderate, delete), delete */
    const char *action;      /* verdict: "remove" | "flag" */
    const char *rule;        /* verdict */
    const char *channel;     /* notify_failed: "webpush" | "webhook" | "email" */
    const char *error;       /* notify_failed */
    const char *origin_gw;   /* gateway id of the connection the event came from */
    const char *origin_conn; /* connection (session) id on that gateway */
    const char *notice;      /* send, msg from CHAT_SYSTEM_USER: room_created, member_added, ... */
    const char *target;      /* send, msg with a member notice: the member */
    int64_t seq;             /* msg, ack, update, read, verdict */
    int64_t useq;            /* update, ack of an update: the room's update sequence */
    int64_t ts;              /* ms since epoch */
    int64_t edited;          /* msg, update: ts of the message's last edit */
    int64_t sent;            /* msg: when its send was received (the send's ts), optional */
    int64_t attempts;        /* notify_failed */
    bool on;                 /* react */
    bool online;             /* presence */
    bool removed;            /* update(moderate); msg frames of removed messages */
    bool deleted;            /* msg, update: the message was deleted (no text) */
    bool has_seq, has_useq, has_ts, has_on, has_online, has_removed, has_edited, has_deleted,
        has_attempts, has_sent;
    cJSON *reactions; /* msg/update: {"emoji": ["user", ...]}; borrowed */
    cJSON *payload;   /* notify_failed: the event that could not be notified; borrowed */
    void *priv_;      /* parse tree of a decoded event */
} chat_event_t;

/* True if s is one of the notices of a system send (room_created, member_added,
 * member_removed, room_renamed, room_deleted). */
bool chat_event_notice_valid(const char *s);

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

/* True if the message ev describes is gone (deleted, or removed by moderation): its events and
 * frames carry no text. */
bool chat_event_msg_gone(const chat_event_t *ev);

/* Frees what decode allocated and zeroes ev. Accepts a zeroed or encoded-only event. */
void chat_event_clear(chat_event_t *ev);

/* Encodes ev (its type's fields; absent optional fields are left out) as compact JSON.
 * Returns CHAT_ERR_INVALID if a required field is missing. *out is malloc'd, NUL-terminated;
 * the caller frees it. len may be NULL. */
chat_err_t chat_event_encode(const chat_event_t *ev, char **out, size_t *len);

#endif
