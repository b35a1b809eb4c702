/* Edits, deletes, reactions and moderation's removals of stored messages: the update record
 * (one document of the `updates` collection per change: who asked, the request key that makes
 * a resend idempotent, the room's useq it took, and the message's whole state after it) and
 * the rules that turn a request (or a verdict) and the message's current state into a change,
 * a no-op or a refusal. No I/O: the pipeline reads and writes through its store port. */
#ifndef CHAT_MESSAGE_UPDATES_H
#define CHAT_MESSAGE_UPDATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/events.h"
#include "services/message/message_doc.h"

#define MESSAGE_UPDATES_COLLECTION "updates"
/* "rid:" + a rid (64), "src:" + a src, or "mod:" + a message id, and the NUL. */
#define MESSAGE_UPDATE_REQ_MAX 72
/* Who acts in the update record of a verdict: moderation is not a user, and its update
 * events carry no user (proto/events/update.schema.json). Its request key is the message's
 * ("mod:<id>"): however many verdicts name a message, it is removed once, with one useq. */
#define MESSAGE_UPDATE_MODERATION_USER "moderation"

/* One change to a message. Every string and reactions are owned (message_update_rec_clear
 * frees them). */
typedef struct message_update_rec {
    char *tenant;
    char *room;
    char *user; /* who asked; MESSAGE_UPDATE_MODERATION_USER for a verdict */
    char *req;  /* request key: "rid:<rid>", or "src:<partition>:<offset>" without a rid, or
                   "mod:<id>" for a verdict */
    char *src;  /* the record that made the change: "<partition>:<offset>" of chat.inbound,
                   "mod:<partition>:<offset>" of chat.moderation */
    char *id;   /* the message */
    char *op;   /* "edit", "delete", "react", "moderate" */
    int64_t seq;
    int64_t useq;
    int64_t ts; /* when the change was made (ms since the epoch) */
    /* The message's state after the change. */
    char *text;     /* NULL once deleted */
    int64_t edited; /* ts of the last edit, 0: never edited */
    bool deleted;
    bool removed;     /* removed by moderation (op moderate) */
    char *reason;     /* removed: the verdict's reason */
    cJSON *reactions; /* NULL: none */
} message_update_rec_t;

/* Frees what r owns and zeroes it. Accepts a zeroed record. */
void message_update_rec_clear(message_update_rec_t *r);

/* dst = a deep copy of src (dst is overwritten, not freed first). CHAT_ERR_NOMEM leaves dst
 * zeroed. */
chat_err_t message_update_rec_copy(message_update_rec_t *dst, const message_update_rec_t *src);

/* Writes the request key of request ev from record src into buf: "rid:<rid>" if the client
 * gave a rid (a resend carries the same one), else "src:<src>" (only a replay of the same
 * record repeats it); for a verdict "mod:<id>" (every verdict about the message). */
void message_update_req_key(const chat_event_t *ev, const char *src, char *buf, size_t len);

typedef enum message_update_verdict {
    MESSAGE_UPDATE_CHANGE,    /* out holds the state after the change */
    MESSAGE_UPDATE_NOOP,      /* nothing changes (a reaction already there or not there, a
                                 delete of a deleted or removed message, a verdict about a
                                 message already gone): acknowledged, no useq */
    MESSAGE_UPDATE_FORBIDDEN, /* edit or delete of someone else's message */
    MESSAGE_UPDATE_NOT_FOUND, /* edit or react of a deleted or removed message */
    MESSAGE_UPDATE_TOO_MANY,  /* a reaction beyond CHAT_REACTIONS_MAX_EMOJI distinct emoji */
    MESSAGE_UPDATE_NOMEM,
} message_update_verdict_t;

/* Decides request ev (an edit, delete or react event by ev->user, or a verdict with action
 * remove) against the message msg as stored. On CHANGE, out gets op, seq, id, ts = now and
 * the state after the change (its other fields are left to the caller); on anything else out
 * stays zeroed, and *reason (for refusals) is a static text for the client. Rules: edit and
 * delete by the author only, or by CHAT_SYSTEM_USER (the tenant through the server API;
 * services/message/inbound.c lets only the api origin act as it);
 * edit and react of a deleted or removed message: not found; delete removes text, edit mark
 * and reactions, and is a no-op on a removed message; a verdict (op moderate) removes text,
 * edit mark and reactions, sets removed and the verdict's reason, and is a no-op on a message
 * already deleted or removed. */
message_update_verdict_t message_update_decide(const chat_event_t *ev, const message_doc_t *msg,
                                               int64_t now, message_update_rec_t *out,
                                               const char **reason);

/* The op name of a request type: "edit", "delete", "react", "moderate" (a verdict); NULL for
 * other types. */
const char *message_update_op(chat_event_type_t type);

#endif
