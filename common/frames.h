/* The client frames (client protocol: proto/, README.md) that more than one service builds,
 * so that they come out byte for byte the same whoever sends them: broadcast builds `msg`,
 * `ack` and `error` for live delivery, the gateway builds `msg` for replays and history and
 * `error` for its own answers. Frames only one service sends live with that service. */
#ifndef CHAT_COMMON_FRAMES_H
#define CHAT_COMMON_FRAMES_H

#include <cjson/cJSON.h>

#include "common/events.h"

/* The client frame for a stored message (`msg` of the client protocol, proto/, README.md) in
 * its current state: {"type":"msg","room","seq","id","from","name"?,"text"?,"notice"?,
 * "target"?,"ts","cid"?,
 * "edited"?,"deleted"?,"removed"?,"reason"?,"reactions"?} (text left out once deleted or
 * removed). Returns a new cJSON object (caller deletes) or NULL if ev is not a complete msg
 * event. */
cJSON *chat_frame_msg_new(const chat_event_t *msg);

/* The client frame of a change to a message (`update`), carrying the message's whole state
 * after it: {"type":"update","room","id","seq","useq","op","text"?,"edited"?,"deleted"?,
 * "removed"?,"reason"? (of a moderation or a delete),"reactions"?,"user"?,"ts"?}. Returns a
 * new cJSON object (caller deletes) or NULL if ev is not an update event with room, id, seq, useq
 * and op. */
cJSON *chat_frame_update_new(const chat_event_t *ev);

/* The client frame answering a request (`ack`):
 * - a send: {"type":"ack","cid","room","seq","id","ts"}, from a msg event (the stored send)
 *   or an ack event with a cid (the original ack of a resent cid);
 * - an edit, delete or react: {"type":"ack","rid"?,"room","id","seq","op","useq"?}, from an
 *   update event (the change it made) or an ack event with an op (a resend: the original
 *   change's useq; a react that changed nothing: the message's last useq, none if it never
 *   changed).
 * Returns a new cJSON object (caller deletes) or NULL if ev is none of these or lacks one of
 * those fields, or out of memory. */
cJSON *chat_frame_ack_new(const chat_event_t *ev);

/* The client `error` frame: {"type":"error","code","message","rid"?,"cid"?} (rid and cid
 * left out when NULL). Returns a new cJSON object (caller deletes) or NULL if code or
 * message is missing or empty, or out of memory. */
cJSON *chat_frame_error_new(const char *code, const char *message, const char *rid,
                            const char *cid);

/* The client `read` frame of a read event (a user's read mark moved):
 * {"type":"read","room","user","seq"}. Returns a new cJSON object (caller deletes) or NULL if
 * ev is not a read event with those fields, or out of memory. */
cJSON *chat_frame_read_new(const chat_event_t *ev);

#endif
