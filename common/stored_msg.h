/* Stored messages (MongoDB `messages` documents, docs/message-path.md) as the client frames
 * live subscribers got, byte for byte once printed: the msg frame of a message in its current
 * state and the update frame of its last change. Pure; the gateway's history, replays and room
 * lists and the server API's room lists read messages through them. */
#ifndef CHAT_COMMON_STORED_MSG_H
#define CHAT_COMMON_STORED_MSG_H

#include <bson/bson.h>
#include <cjson/cJSON.h>

/* The msg frame of a stored message document in its current state (edited, deleted,
 * reactions; a notice's notice and target), or NULL if the document lacks a required field.
 * A new object: the caller deletes it. */
cJSON *chat_stored_msg_frame(const bson_t *doc);

/* The update frame of a stored message that changed (useq and uop set): its current state,
 * with the op of its last change; NULL if it never changed or lacks a field. */
cJSON *chat_stored_update_frame(const bson_t *doc);

#endif
